Feature: UI modes
  A guest may open a conversation in the chatbox or popup UI, never in the
  inbox UI. Participants may open it in any UI.

  @SG-GUEST-6
  Scenario: A guest is refused the inbox UI and admitted in chatbox and popup
    Given a conversation "lobby" with participants alice
    When dave opens "lobby" as a guest in the inbox UI
    Then dave is refused with guest_inbox_not_allowed
    When dave opens "lobby" as a guest in the chatbox UI
    Then dave is in "lobby" as a guest
    When erin opens "lobby" as a guest in the popup UI
    Then erin is in "lobby" as a guest

  @SG-GUEST-15
  Scenario: A participant may open the inbox UI, asking to be a guest or not
    Given a conversation "lobby" with participants alice and bob
    When alice opens "lobby" in the inbox UI
    Then alice is in "lobby" as a participant
    When bob opens "lobby" as a guest in the inbox UI
    Then bob is in "lobby" as a participant

  @SG-RT-14
  Scenario: open defaults to the chatbox UI and not as a guest
    Given a conversation "lobby" with participants alice
    When dave sends the frame {"type":"open","ref":"o1","conversationId":"{lobby}"}
    Then dave receives a frame {"type":"error","ref":"o1","code":"not_a_participant"}
    When dave sends the frame {"type":"open","ref":"o2","conversationId":"{lobby}","asGuest":true}
    Then dave receives a frame {"type":"opened","ref":"o2","role":"guest"}
    When alice sends the frame {"type":"open","ref":"o3","conversationId":"{lobby}"}
    Then alice receives a frame {"type":"opened","ref":"o3","role":"participant"}

  @SG-RT-15
  Scenario Outline: open errors are decided in a fixed order
    Given a conversation "closed" with guest access disabled
    When dave sends the frame {"type":"open","ref":"o","conversationId":"<conversation>","ui":"<ui>","asGuest":<asGuest>}
    Then dave receives a frame {"type":"error","ref":"o","code":"<code>"}

    Examples:
      | conversation | ui     | asGuest | code                    |
      | {nowhere}    | inbox  | false   | conversation_not_found  |
      | {closed}     | inbox  | false   | not_a_participant       |
      | {closed}     | inbox  | true    | guest_inbox_not_allowed |
      | {closed}     | popup  | true    | guest_access_disabled   |
