Feature: Guest notifications
  Participants who are away are told about the messages they missed, through
  the notification.triggered webhook. Guests never are: they are not members.

  @SG-GUEST-1 @SG-NOTIFY-1
  Scenario: A guest who has the conversation open is never notified, an absent participant is
    Given a conversation "lobby" with participants alice and bob
    And dave has "lobby" open as a guest
    And alice has "lobby" open
    When alice sends "Doors open at nine" in "lobby"
    Then bob is notified of "Doors open at nine" in "lobby"
    And dave is not notified about "lobby"
    And alice is not notified about "lobby"

  @SG-GUEST-1
  Scenario: A guest who closed the conversation is not notified either
    Given a conversation "lobby" with participants alice and bob
    And dave has "lobby" open as a guest
    And dave has sent "hi, I am a guest" in "lobby"
    When dave closes "lobby"
    And alice posts "did the guest leave?" to "lobby"
    Then bob is notified of "did the guest leave?" in "lobby"
    And dave is not notified about "lobby"

  @SG-NOTIFY-7 @SG-GUEST-1
  Scenario: A guest's message notifies the participants who are away
    Given a conversation "lobby" with participants alice and bob
    And dave has "lobby" open as a guest
    When dave sends "question from the audience" in "lobby"
    Then alice is notified of "question from the audience" in "lobby"
    And bob is notified of "question from the audience" in "lobby"
    And dave is not notified about "lobby"

  @serial @SG-NOTIFY-3
  Scenario: A participant who has the conversation open when a message is stored is not notified, even after closing it
    Given a conversation "team" with participants alice, bob and carol
    And bob has "team" open
    When alice posts "standup in five" to "team"
    And bob closes "team"
    Then carol is notified of "standup in five" in "team"
    And bob is not notified about "team"

  @serial @SG-NOTIFY-4
  Scenario: A participant who opens the conversation before the window closes gets no event
    Given a conversation "team" with participants alice, bob and carol
    And bob is connected
    When alice posts "are you there?" to "team"
    And bob has "team" open
    Then carol is notified of "are you there?" in "team"
    And bob is not notified about "team"

  @SG-RT-3 @SG-NOTIFY-1
  Scenario: A participant whose connection ended is notified again
    Given a conversation "team" with participants alice and bob
    And bob has "team" open
    When bob disconnects
    And alice posts "you dropped off" to "team"
    Then bob is notified of "you dropped off" in "team"

  @SG-NOTIFY-1
  Scenario: The sender is not notified of their own message, and notify false means never
    Given a conversation "team" with participants alice and carol
    And bob is a participant of "team" and notify false
    When alice posts "lunch?" to "team"
    Then carol is notified of "lunch?" in "team"
    And alice is not notified about "team"
    And bob is not notified about "team"

  @SG-NOTIFY-2
  Scenario: MentionsOnly participants are notified only when mentioned
    Given a conversation "team" with participants alice and carol
    And bob is a participant of "team" and notify MentionsOnly
    And erin is a participant of "team" and notify MentionsOnly
    When alice posts "ping @{bob}" to "team"
    Then bob is notified of "ping @{bob}" in "team"
    And carol is notified of "ping @{bob}" in "team"
    And erin is not notified about "team"

  @SG-NOTIFY-5
  Scenario: Messages inside the delay are grouped into one event, oldest first
    Given a conversation "team" with participants alice and bob
    When alice posts "first" and "second" to "team" in one request
    Then bob gets one notification for "team" listing "first", "second"

  @serial @SG-NOTIFY-5
  Scenario: Messages of separate requests inside the delay are grouped into one event too
    Given a conversation "team" with participants alice and bob
    When alice posts "first" to "team"
    And alice posts "second" to "team"
    Then bob gets one notification for "team" listing "first", "second"

  @serial @SG-NOTIFY-5 @SG-APP-2
  Scenario: The event is sent when the window closes, notificationDelayMs after the first message
    Given a conversation "team" with participants alice and bob
    When alice posts "on time" to "team"
    Then bob is notified of "on time" in "team" when the window closes

  @SG-NOTIFY-6
  Scenario: A system message never notifies
    Given a conversation "quiet" with participants alice and bob
    And a conversation "busy" with participants alice and bob
    When the app posts the system message "maintenance tonight" to "quiet"
    And alice posts "real message" to "busy"
    Then bob is notified of "real message" in "busy"
    And bob is not notified about "quiet"

  @SG-NOTIFY-8
  Scenario: A notification names the recipient and the conversation and carries the messages in full
    Given a conversation "team" with participants alice and bob
    When alice posts "agenda attached" to "team"
    Then bob's notification of "agenda attached" in "team" has the full data shape
