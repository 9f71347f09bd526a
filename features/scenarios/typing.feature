Feature: Typing indicators
  A participant's typing is shown to everyone else who has the conversation
  open, guests included. A guest's typing is shown to nobody.

  Background:
    Given a conversation "lobby" with participants alice and bob
    And alice has "lobby" open
    And bob has "lobby" open
    And dave has "lobby" open as a guest
    And erin has "lobby" open as a guest

  @SG-TYPING-1 @SG-TYPING-3
  Scenario: Everyone else sees a participant type, guests included
    When alice starts typing in "lobby"
    Then bob sees alice typing in "lobby"
    And dave sees alice typing in "lobby"
    And erin sees alice typing in "lobby"
    And alice got no reply to typing

  @SG-TYPING-3
  Scenario: Typing faster than the server passes it on still gets no reply
    When alice types in "lobby" 12 times in a row
    Then bob sees alice typing in "lobby"
    And alice got no reply to typing

  @SG-TYPING-2
  Scenario: The typist sees no echo of their own typing
    When alice starts typing in "lobby"
    And alice starts typing in "lobby" on a second connection
    Then bob sees alice typing in "lobby"
    And alice has not seen alice typing

  @SG-GUEST-3 @SG-TYPING-3
  Scenario: Nobody sees a guest type
    When dave starts typing in "lobby"
    And dave sends "typed by a guest" in "lobby"
    And bob starts typing in "lobby"
    Then alice sees bob typing in "lobby"
    And erin sees bob typing in "lobby"
    And alice receives the message "typed by a guest"
    And alice has not seen dave typing
    And erin has not seen dave typing
    And bob has not seen dave typing
    And dave got no reply to typing

  @SG-TYPING-1 @SG-GUEST-17
  Scenario: A guest made a participant is shown typing where they hold the conversation as participant
    When the app adds dave to "lobby"
    And dave opens "lobby" on a second connection and types there
    Then alice sees dave typing in "lobby"

  @SG-TYPING-4
  Scenario: A read-only participant's typing is shown like anyone's
    Given carol is a participant of "lobby" with Read access
    And carol has "lobby" open
    When carol starts typing in "lobby"
    Then alice sees carol typing in "lobby"
    And dave sees carol typing in "lobby"
