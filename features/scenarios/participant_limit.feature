Feature: The participant limit
  A conversation has at most participantLimit participants (GET /v1/{appId}).
  Guests never count toward it.

  @SG-PART-6 @SG-PART-7 @SG-APP-2
  Scenario: Exactly the plan's number of participants fit and the next is refused
    Given a conversation "club" with the plan's participant limit of participants
    When the app adds newcomer to "club"
    Then the request fails with 409 participant_limit_reached
    And "club" has exactly the plan's participant limit of participants
    And newcomer is not a participant of "club"

  @SG-PART-7
  Scenario: The addition that reaches the limit succeeds
    Given a conversation "club" with the plan's participant limit minus 1 of participants
    When the app adds last to "club"
    Then the request succeeds with {}
    And "club" has exactly the plan's participant limit of participants

  @SG-PART-2
  Scenario: PUT of an existing participant succeeds even when the conversation is full
    Given a conversation "club" with the plan's participant limit of participants
    When the app adds member1 to "club" with Read access and notify false
    Then the request succeeds with {}
    And member1 has Read access and notify false in "club"
    And "club" has exactly the plan's participant limit of participants

  @SG-PART-8
  Scenario: A conversation PUT that would pass the limit applies nothing
    Given a conversation "club" with the plan's participant limit minus 1 of participants
    When the app updates "club" with subject "renamed" and participants late1 and late2
    Then the request fails with 409 participant_limit_reached
    And "club" has exactly the plan's participant limit minus 1 of participants
    And the subject of "club" is not "renamed"

  @SG-PART-9
  Scenario: A freed place can be taken again
    Given a conversation "club" with the plan's participant limit of participants
    When member1 leaves "club"
    And the app adds newcomer to "club"
    Then the request succeeds with {}
    And "club" has exactly the plan's participant limit of participants

  @SG-GUEST-2
  Scenario: Guests do not count toward the participant limit
    Given a conversation "club" with the plan's participant limit minus 1 of participants
    And dave has "club" open as a guest
    And erin has "club" open as a guest
    When the app adds last to "club"
    Then the request succeeds with {}
    When the app adds newcomer to "club"
    Then the request fails with 409 participant_limit_reached

  @SG-GUEST-2
  Scenario: Guests can still open a conversation that is full of participants
    Given a conversation "club" with the plan's participant limit of participants
    When dave opens "club" as a guest
    Then dave is in "club" as a guest
