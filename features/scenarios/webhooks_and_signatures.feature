Feature: Webhooks and signatures
  The server POSTs signed events to the app's webhook endpoint: message.sent
  for every stored message, notification.triggered for absent participants.
  The suite's own receiver is registered at the start of the run.

  @SG-HOOK-10 @SG-HOOK-11 @SG-HOOK-6 @SG-HOOK-7
  Scenario: message.sent names the sender's role: participant, guest, or none for a system message
    Given a conversation "lobby" with participants alice
    And alice has "lobby" open
    And dave has "lobby" open as a guest
    When alice sends "from a member" in "lobby"
    And dave sends "from a guest" in "lobby"
    And the app posts the system message "from the system" to "lobby"
    Then a message.sent webhook for "from a member" names alice as participant
    And a message.sent webhook for "from a guest" names dave as guest
    And a message.sent webhook for "from the system" has no sender
    And every webhook about "lobby" is a signed JSON POST

  @SG-HOOK-11
  Scenario: A guest made a participant is reported as participant
    Given a conversation "lobby" with participants host
    And dave has "lobby" open as a guest
    When the app adds dave to "lobby"
    And dave sends "promoted" in "lobby"
    Then a message.sent webhook for "promoted" names dave as participant

  @SG-HOOK-2 @SG-HOOK-3
  Scenario Outline: Bad webhook registrations are refused
    When the app sends PUT /webhooks with <body>
    Then the answer is <status> <code>

    Examples:
      | body                                                       | status | code                |
      | {"url":"not a url"}                                        | 400    | invalid_webhook_url |
      | {"url":"ftp://example.com/hook"}                           | 400    | invalid_webhook_url |
      | {"url":"/relative/path"}                                   | 400    | invalid_webhook_url |
      | {"url":"http://127.0.0.1:9/hook","events":["message.read"]} | 400    | invalid_request     |

  @serial @SG-HOOK-1 @SG-HOOK-5
  Scenario: A new registration replaces the old one, and events filters what is delivered
    Given a conversation "team" with participants alice and bob
    When the suite registers its receiver at path "/other" for "notification.triggered" only
    Then the request succeeds with {}
    When alice posts "filtered" to "team"
    Then bob is notified of "filtered" in "team"
    And that notification came to path "/other"
    And no message.sent webhook came for "team"
    And the suite's registration is restored

  @serial @SG-HOOK-4
  Scenario: Deleting the registration stops delivery, and deleting again is fine
    Given a conversation "team" with participants alice and bob
    When the suite deletes the webhook registration
    Then the request succeeds with {}
    When the suite deletes the webhook registration
    Then the request succeeds with {}
    When alice posts "into the void" to "team"
    And the suite's registration is restored
    And alice posts "heard again" to "team"
    Then a message.sent webhook for "heard again" names alice as participant
    And no message.sent webhook came for the message "into the void"

  @SG-HOOK-8
  Scenario: A failed delivery is retried once, about a second later, byte for byte
    Given a conversation "team" with participants alice
    And the receiver answers the next delivery about "team" with HTTP 500
    When alice posts "try again" to "team"
    Then the message.sent webhook for "try again" is delivered twice about a second apart with identical signed bodies

  @SG-HOOK-8 @SG-HOOK-14
  Scenario: A delivery that takes longer than 5 seconds is abandoned and retried, and holds up no other event
    Given a conversation "team" with participants alice
    And a conversation "side" with participants alice
    And the receiver holds the next delivery about "team" for 7 seconds
    When alice posts "slow receiver" to "team"
    And alice posts "meanwhile" to "side"
    Then the message.sent webhook for "meanwhile" comes within 3 seconds of its post
    And the message.sent webhook for "slow receiver" is retried within 5 to 8 seconds
