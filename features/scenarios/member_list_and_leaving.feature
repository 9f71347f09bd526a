Feature: The member list and leaving
  Only participants are members. Guests never appear in a member list, and
  when a guest leaves nothing of them remains but the messages they wrote.

  @SG-GUEST-7 @SG-RT-13
  Scenario: Guests are not in the opened reply nor in GET conversation
    Given a conversation "lobby" with participants alice and bob
    And dave has "lobby" open as a guest
    When erin opens "lobby" as a guest
    Then erin is in "lobby" as a guest
    And erin's opened reply lists alice and bob
    And the member list of "lobby" is alice and bob
    When alice opens "lobby"
    Then alice's opened reply lists alice and bob

  @SG-GUEST-7 @SG-PART-10 @SG-PART-11
  Scenario: Members are told when a participant joins or leaves, never when a guest comes or goes
    Given a conversation "lobby" with participants alice
    And alice has "lobby" open
    And erin has "lobby" open as a guest
    When dave has "lobby" open as a guest
    And dave closes "lobby"
    And the app adds bob to "lobby"
    Then alice is told that bob joined "lobby"
    And erin is told that bob joined "lobby"
    When bob leaves "lobby"
    Then alice is told that bob left "lobby"
    And erin is told that bob left "lobby"
    And alice was never told that dave joined or left "lobby"
    And erin was never told that dave joined or left "lobby"

  @SG-PART-10
  Scenario: The new member's own connection is told, and a repeated PUT or a PATCH tells nobody
    Given a conversation "lobby" with participants alice
    And alice has "lobby" open
    And bob has "lobby" open as a guest
    When the app adds bob to "lobby"
    Then bob is told that bob joined "lobby"
    And alice is told that bob joined "lobby"
    When the app adds bob to "lobby"
    And the app changes bob in "lobby" to notify false
    And the app adds carol to "lobby"
    Then alice is told that carol joined "lobby"
    And alice was told only once that bob joined "lobby"

  @SG-PART-10 @SG-CONV-3
  Scenario: A conversation PUT that lists a new participant announces them
    Given a conversation "lobby" with participants alice
    And alice has "lobby" open
    When the app creates "lobby" with participants alice and bob
    Then alice is told that bob joined "lobby"

  @SG-PART-11 @SG-PART-12 @SG-GUEST-18
  Scenario: A removed member is told, their open ends, and they may come back as a guest
    Given a conversation "lobby" with participants alice and bob
    And alice has "lobby" open
    And bob has "lobby" open
    When bob leaves "lobby"
    Then bob is told that bob left "lobby"
    And alice is told that bob left "lobby"
    And bob's connection is told "lobby" was closed
    When alice sends "after bob left" in "lobby"
    Then bob got no message of "lobby"
    When bob opens "lobby" as a guest
    Then bob is in "lobby" as a guest

  @SG-GUEST-8
  Scenario: A guest's messages stay after the guest closed the conversation
    Given a conversation "lobby" with participants alice
    And dave has "lobby" open as a guest
    And dave has sent "remember me" in "lobby"
    When dave closes "lobby"
    Then the history of "lobby" has "remember me" from dave by realtime
    And the last message of "lobby" is "remember me"

  @SG-GUEST-8 @SG-RT-3
  Scenario: A guest's messages stay after the guest disconnected
    Given a conversation "lobby" with participants alice
    And dave has "lobby" open as a guest
    And dave has sent "gone but not forgotten" in "lobby"
    When dave disconnects
    Then the history of "lobby" has "gone but not forgotten" from dave by realtime

  @SG-GUEST-10
  Scenario: A user who is not a participant must ask to be a guest
    Given a conversation "lobby" with participants alice
    When dave opens "lobby"
    Then dave is refused with not_a_participant

  @SG-GUEST-9
  Scenario: A guest's presence leaves no trace
    Given a conversation "lobby" with participants alice
    And dave has "lobby" open as a guest
    When dave closes "lobby"
    And dave opens "lobby"
    Then dave is refused with not_a_participant
    And the member list of "lobby" is alice

  @SG-PART-5
  Scenario: A participant who leaves is gone from the member list and from their conversations
    Given a conversation "lobby" with participants alice and bob
    When bob leaves "lobby"
    Then the request succeeds with {}
    And the member list of "lobby" is alice
    And bob's conversations are nobody
