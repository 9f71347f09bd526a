Feature: Conversations and participants
  Conversations are created and merged with PUT; participants are added,
  changed and removed with PUT, PATCH and DELETE.

  @SG-CONV-1 @SG-CONV-4 @SG-CONV-5
  Scenario: PUT creates an empty conversation that takes the app's guest access
    When the app stores the conversation "fresh" with subject "Fresh"
    Then the request succeeds with {}
    And "fresh" has no last message and the app's guest access
    And the subject of "fresh" is "Fresh"
    And the member list of "fresh" is nobody

  @SG-CONV-2 @SG-CONV-3
  Scenario: PUT merges: absent fields stay, listed participants are added, others stay
    Given a conversation "team" with participants alice and bob
    And the app changes bob in "team" to Read access
    And alice has posted "before the merge" to "team"
    When the app stores the conversation "team" with subject "Renamed" and participants bob and carol
    Then the request succeeds with {}
    And the member list of "team" is alice, bob and carol
    And bob has Read access and notify true in "team"
    And carol has ReadWrite access and notify true in "team"
    And the subject of "team" is "Renamed"
    And the history of "team" is "before the merge"
    And the createdAt of "team" did not change

  @SG-CONV-5
  Scenario: lastMessage is the newest message
    Given a conversation "team" with participants alice
    When alice posts "first" to "team"
    And alice posts "newest" to "team"
    Then the last message of "team" is "newest"

  @SG-CONV-6
  Scenario Outline: Routes on an unknown conversation get conversation_not_found
    When the app sends <method> <path> with <body>
    Then the answer is 404 conversation_not_found

    Examples:
      | method | path                                        | body                                              |
      | GET    | /conversations/{nowhere}                    | <none>                                            |
      | DELETE | /conversations/{nowhere}                    | <none>                                            |
      | PUT    | /conversations/{nowhere}/participants/{bob} | {}                                                |
      | PATCH  | /conversations/{nowhere}/participants/{bob} | {}                                                |
      | DELETE | /conversations/{nowhere}/participants/{bob} | <none>                                            |
      | POST   | /conversations/{nowhere}/messages           | [{"type":"SystemMessage","text":"x"}]             |
      | GET    | /conversations/{nowhere}/messages           | <none>                                            |

  @SG-CONV-7
  Scenario: DELETE removes the conversation, its members, messages and keys
    Given a conversation "team" with participants alice
    And alice has posted "old" to "team" with idempotency key "k1"
    When the app deletes "team"
    Then the request succeeds with {}
    And "team" no longer exists
    And alice's conversations are nobody
    When the app stores the conversation "team" with subject "Again"
    Then the member list of "team" is nobody
    And the history of "team" is empty
    Given alice is a participant of "team"
    When alice posts "new" to "team" with idempotency key "k1"
    Then the history of "team" is "new"

  @SG-CONV-9
  Scenario: A conversation PUT listing more than 1,000 participants is refused
    When the app stores the conversation "huge" with 1001 participants
    Then the request fails with 400 invalid_request

  @SG-PART-1 @SG-REST-1
  Scenario: PUT participant adds with defaults and creates the user
    Given a conversation "team" with participants alice
    When the app adds newbie to "team"
    Then the request succeeds with {}
    And newbie has ReadWrite access and notify true in "team"
    And user newbie exists

  @SG-PART-2
  Scenario: PUT of an existing participant sets both settings, defaults for absent ones
    Given a conversation "team" with participants alice
    And bob is a participant of "team" with Read access and notify false
    When the app adds bob to "team" with Read access
    Then the request succeeds with {}
    And bob has Read access and notify true in "team"

  @SG-PART-3
  Scenario: PATCH changes only the given fields
    Given a conversation "team" with participants alice
    And bob is a participant of "team" with Read access and notify false
    When the app changes bob in "team" to notify MentionsOnly
    Then the request succeeds with {}
    And bob has Read access and notify MentionsOnly in "team"

  @SG-PART-4
  Scenario: PATCH or DELETE of someone who is not a participant is 404
    Given a conversation "team" with participants alice
    When the app changes stranger in "team" to notify false
    Then the request fails with 404 participant_not_found
    When stranger leaves "team"
    Then the request fails with 404 participant_not_found
