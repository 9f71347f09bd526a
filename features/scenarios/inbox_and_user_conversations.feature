Feature: Inbox and user conversations
  A user's conversation list holds the conversations where they are a
  participant, with unread state. Conversations opened as a guest never
  appear in it, and no unread state is kept for guests.

  @SG-GUEST-5 @SG-LIST-1
  Scenario: A conversation opened as a guest is never in the user's conversations
    Given a conversation "team" with participants dave
    And a conversation "lobby" with participants host
    When dave has "lobby" open as a guest
    Then dave's conversations are "team"
    When dave sends "guest words" in "lobby"
    Then dave's conversations are "team"
    When dave closes "lobby"
    Then dave's conversations are "team"

  @SG-LIST-2
  Scenario: Conversations are ordered by latest activity, newest first
    Given a conversation "old" with participants alice and bob
    And a conversation "middle" with participants alice and bob
    And a conversation "new" with participants alice and bob
    When bob posts "revive" to "old"
    Then alice's conversations are "old", "new", "middle"

  @SG-LIST-2
  Scenario: Ties in latest activity are ordered by conversation id
    Given alice is a participant of 12 conversations
    Then alice's conversation list is ordered by latest activity, ties by id

  @SG-LIST-4
  Scenario: Messages from before a participant joined are not unread for them
    Given a conversation "team" with participants alice
    When alice posts "before bob" to "team"
    And the app adds bob to "team"
    And alice posts "after bob" to "team"
    Then bob has 1 unread in "team"

  @SG-LIST-3 @SG-LIST-4
  Scenario: Unread counts count the others' messages since the user became a participant
    Given a conversation "team" with participants alice and bob
    When bob posts "one" to "team"
    And bob posts "two" to "team"
    And alice posts "mine" to "team"
    And the app posts the system message "system note" to "team"
    Then alice has 3 unread in "team"
    And bob has 2 unread in "team"
    And each of alice's conversations is the conversation object plus unread state

  @SG-LIST-5
  Scenario: A read frame zeroes the unread count, with or without the conversation open
    Given a conversation "team" with participants alice and bob
    And a conversation "other" with participants alice and bob
    When bob posts "one" to "team"
    And bob posts "two" to "other"
    And alice has "team" open
    And alice marks "team" as read
    And alice marks "other" as read
    Then alice got no reply to her read frames
    And alice has 0 unread in "team"
    And alice has 0 unread in "other"

  @SG-GUEST-4
  Scenario: A guest's read frame is a silent no-op
    Given a conversation "lobby" with participants host
    And dave has "lobby" open as a guest
    When dave marks "lobby" as read
    Then dave got no reply to his read frames
    And dave's conversations are nobody

  @SG-MSG-12 @SG-MSG-13 @SG-LIST-1
  Scenario: The conversation list pages like the message history
    Given alice is a participant of 5 conversations
    Then paging through alice's conversations 2 at a time returns all 5 once
    When the app lists alice's conversations with limit "0"
    Then the request fails with 400 invalid_request

  @SG-MSG-14
  Scenario: startingAfter that names no conversation of the list is refused
    Given a conversation "team" with participants alice
    And a conversation "elsewhere" with participants bob
    When the app lists alice's conversations starting after "elsewhere"
    Then the request fails with 400 invalid_request

  @SG-USER-4
  Scenario: The conversation list of an unknown user is 404
    When the app lists nobody123's conversations
    Then the request fails with 404 user_not_found
