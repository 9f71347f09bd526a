Feature: The guest limit
  At most guestLimit distinct guest users may have one conversation open at
  the same time (GET /v1/{appId} tells the limit). Only presence counts.

  @serial @SG-GLIMIT-1 @SG-GLIMIT-2 @SG-GLIMIT-3 @SG-APP-2
  Scenario: Exactly the plan's number of guests fit, the next is refused, a freed slot is taken again
    Given a conversation "stage" with participants host
    When the plan's guest limit of guests open "stage" as guests
    Then every one of them is in "stage" as a guest
    When zed opens "stage" as a guest
    Then zed is refused with guest_limit_reached
    When one of the guests closes "stage"
    And zed opens "stage" as a guest
    Then zed is in "stage" as a guest
    When one of the guests disconnects
    And yan opens "stage" as a guest
    Then yan is in "stage" as a guest

  @serial @SG-GLIMIT-5 @SG-GUEST-15
  Scenario: Participants take no guest slot and are admitted when the guests are full
    Given a conversation "stage" with participants host and cohost
    When the plan's guest limit of guests open "stage" as guests
    And host opens "stage" as a guest
    And cohost opens "stage" in the inbox UI
    Then host is in "stage" as a participant
    And cohost is in "stage" as a participant
    When zed opens "stage" as a guest
    Then zed is refused with guest_limit_reached

  @serial @SG-GLIMIT-4
  Scenario: One guest on several connections takes one slot, released with the last connection
    Given a conversation "stage" with participants host
    When the plan's guest limit minus 1 of guests open "stage" as guests
    And dave opens "stage" as a guest
    And dave opens "stage" as a guest on a second connection
    Then dave is in "stage" as a guest on both connections
    When zed opens "stage" as a guest
    Then zed is refused with guest_limit_reached
    When dave closes "stage"
    And zed opens "stage" as a guest
    Then zed is refused with guest_limit_reached
    When dave closes "stage" on the second connection
    And zed opens "stage" as a guest
    Then zed is in "stage" as a guest

  @serial @SG-GLIMIT-6
  Scenario: The guest limit applies per conversation
    Given a conversation "stage" with participants host
    And a conversation "side" with participants host
    When the plan's guest limit of guests open "stage" as guests
    And zed opens "side" as a guest
    Then zed is in "side" as a guest

  @serial @SG-RT-15 @SG-GUEST-11
  Scenario: A full conversation without guest access answers guest_access_disabled first
    Given a conversation "stage" with participants host
    When the plan's guest limit of guests open "stage" as guests
    And the app sets guest access of "stage" to disabled
    And zed opens "stage" as a guest
    Then zed is refused with guest_access_disabled
