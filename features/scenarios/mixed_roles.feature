Feature: Mixed roles
  A user may be a participant of some conversations and a guest of others,
  even on one connection. A participant who asks to be a guest stays a
  participant.

  @SG-GUEST-15
  Scenario: A participant asking to open as a guest is opened as a participant
    Given a conversation "lobby" with participants alice
    When alice opens "lobby" as a guest
    Then alice is in "lobby" as a participant

  @SG-GUEST-15
  Scenario: A participant is admitted as participant even when guest access is disabled
    Given a conversation "closed" with guest access disabled
    And alice is a participant of "closed"
    When alice opens "closed" as a guest
    Then alice is in "closed" as a participant

  @SG-GUEST-16
  Scenario: One connection holds one conversation as participant and another as guest
    Given a conversation "team" with participants dave
    And a conversation "lobby" with participants host
    When dave opens "team"
    Then dave is in "team" as a participant
    When dave opens "lobby" as a guest
    Then dave is in "lobby" as a guest
    When host posts "to the lobby" to "lobby"
    Then dave receives the message "to the lobby"

  @SG-GUEST-17
  Scenario: A guest made a participant keeps the guest open until it is closed
    Given a conversation "lobby" with participants host
    And dave has "lobby" open as a guest
    When the app adds dave to "lobby"
    And dave opens "lobby" as a guest
    Then dave is in "lobby" as a guest
    When dave closes "lobby"
    And dave opens "lobby" as a guest
    Then dave is in "lobby" as a participant

  @SG-GUEST-12
  Scenario: Turning guest access off keeps the guests already in
    Given a conversation "lobby" with participants host
    And host has "lobby" open
    And dave has "lobby" open as a guest
    When the app sets guest access of "lobby" to disabled
    And erin opens "lobby" as a guest
    Then erin is refused with guest_access_disabled
    When dave sends "still here" in "lobby"
    Then host receives the message "still here"
    When host posts "welcome back" to "lobby"
    Then dave receives the message "welcome back"

  @SG-GUEST-11
  Scenario: A conversation without guest access refuses guests
    Given a conversation "closed" with guest access disabled
    When dave opens "closed" as a guest
    Then dave is refused with guest_access_disabled
