Feature: Messages and history
  Messages are stored, delivered to everyone who has the conversation open,
  and kept in a history that reads newest first.

  @SG-GUEST-13 @SG-RT-18 @SG-RT-23 @SG-MSG-1
  Scenario: A guest sends a message; everyone with the conversation open gets it, the sender included
    Given a conversation "lobby" with participants alice
    And alice has "lobby" open
    And dave has "lobby" open as a guest
    And erin has "lobby" open as a guest
    When dave sends "hello from the audience" in "lobby"
    Then alice receives the message "hello from the audience" from dave
    And erin receives the message "hello from the audience" from dave
    And dave receives the message "hello from the audience" from dave
    And the history of "lobby" has "hello from the audience" from dave by realtime
    And dave's ack carries the stored id and createdAt of "hello from the audience"

  @SG-RT-23 @SG-MSG-1
  Scenario: REST messages and system messages reach every open connection
    Given a conversation "lobby" with participants alice
    And alice has "lobby" open
    And dave has "lobby" open as a guest
    When alice posts "over REST" to "lobby"
    And the app posts the system message "a system note" to "lobby"
    Then dave receives the message "over REST" from alice
    And dave receives the message "a system note"
    And alice receives the message "a system note"
    And the history of "lobby" has "over REST" from alice by rest
    And the history of "lobby" has the system message "a system note" with no sender

  @SG-GUEST-14 @SG-MSG-7
  Scenario: A guest cannot post over REST
    Given a conversation "lobby" with participants alice
    And dave has "lobby" open as a guest
    When dave posts "sneaky" to "lobby"
    Then the request fails with 400 sender_not_participant
    When alice posts "allowed" to "lobby"
    Then the request succeeds
    And the history of "lobby" is "allowed"

  @SG-MSG-7
  Scenario Outline: Only ReadWrite participants may be REST senders
    Given a conversation "team" with participants alice
    And reader is a participant of "team" with Read access
    And outsider has "team" open as a guest
    When <sender> posts "hello" to "team"
    Then the request fails with 400 sender_not_participant
    And the history of "team" is empty

    Examples:
      | sender   |
      | reader   |
      | stranger |
      | outsider |

  @SG-RT-20
  Scenario: A read-only participant cannot send over realtime
    Given a conversation "team" with participants alice
    And reader is a participant of "team" with Read access
    And reader has "team" open
    When reader tries to send "let me speak" in "team"
    Then reader is refused with read_only
    And the history of "team" is empty

  @SG-MSG-3 @SG-MSG-11
  Scenario: A batch is stored in order and the history reads newest first
    Given a conversation "team" with participants alice
    When alice posts a batch of 3 messages to "team"
    Then the batch is acknowledged with 3 distinct msg_ ids in order
    And the history of "team" is "batch 3", "batch 2", "batch 1"

  @SG-MSG-4
  Scenario: More than 10 messages in a batch are refused
    Given a conversation "team" with participants alice
    When alice posts a batch of 11 messages to "team"
    Then the request fails with 400 too_many_messages
    And the history of "team" is empty

  @SG-MSG-6 @SG-REST-8
  Scenario: A batch with one invalid item stores none and emits nothing
    Given a conversation "team" with participants alice
    And alice has "team" open
    When alice posts a batch of 3 messages to "team", the last one from stranger
    Then the request fails with 400 sender_not_participant
    And the history of "team" is empty
    When alice posts "control" to "team"
    Then alice's first message frame of "team" is "control"
    And the only message.sent webhook of "team" is for "control"

  @SG-MSG-8
  Scenario: Texts over 20,000 characters are refused, exactly 20,000 are accepted
    Given a conversation "team" with participants alice
    And alice has "team" open
    When alice posts a text of 20001 characters to "team"
    Then the request fails with 400 message_too_long
    When alice tries to send a text of 20001 characters in "team"
    Then alice is refused with message_too_long
    When alice posts a text of 20000 characters to "team"
    Then the request succeeds
    When alice tries to send a text of 20000 characters in "team"
    Then alice is acknowledged
    And the history of "team" holds 2 messages

  @SG-MSG-9 @SG-MSG-10
  Scenario: A replayed idempotency key returns the original id and stores, broadcasts and notifies nothing
    Given a conversation "team" with participants alice and bob
    And carol is a participant of "team"
    And carol has "team" open
    And alice has "team" open
    When alice posts "pay the invoice" to "team" with idempotency key "k1"
    And alice sends "pay the invoice again" in "team" with idempotency key "k1"
    Then alice is acknowledged with the id of the first "pay the invoice"
    When alice posts "pay the invoice once more" to "team" with idempotency key "k1"
    Then the REST answer carries the id of the first "pay the invoice"
    And the history of "team" is "pay the invoice"
    When alice posts "control" to "team"
    Then carol receives the message "control"
    And carol got exactly one message frame for "pay the invoice"
    And the only message.sent webhooks of "team" are for "pay the invoice", "control"
    And bob's notifications for "team" list only "pay the invoice", "control"

  @SG-MSG-9
  Scenario: A replay is validated like any message before it is recognised
    Given a conversation "team" with participants alice
    And alice has "team" open
    When alice sends "original" in "team" with idempotency key "k1"
    And alice sends the frame {"type":"send","ref":"r1","conversationId":"{team}","text":"{y*20001}","idempotencyKey":"{k1}"}
    Then alice receives a frame {"type":"error","ref":"r1","code":"message_too_long"}
    When the app sends POST /conversations/{team}/messages with [{"type":"UserMessage","sender":"{alice}","text":"{y*20001}","idempotencyKey":"{k1}"}]
    Then the answer is 400 message_too_long
    And the history of "team" is "original"

  @SG-MSG-9
  Scenario: The same key in another conversation stores a new message
    Given a conversation "one" with participants alice
    And a conversation "two" with participants alice
    When alice posts "in one" to "one" with idempotency key "k1"
    And alice posts "in two" to "two" with idempotency key "k1"
    Then the history of "one" is "in one"
    And the history of "two" is "in two"

  @SG-MSG-13 @SG-MSG-12
  Scenario: Paging through the history returns every message once
    Given a conversation "team" with participants alice
    When alice posts 5 messages to "team"
    Then paging through "team" 2 at a time gives "m5", "m4" then "m3", "m2" then "m1"

  @SG-MSG-12
  Scenario: The page size defaults to 30 and must be 1 to 100
    Given a conversation "team" with participants alice
    When alice posts 35 messages to "team"
    Then the default page of "team" holds 30 messages
    When the app lists the messages of "team" with limit "100"
    Then 35 messages are listed
    When the app lists the messages of "team" with limit "101"
    Then the request fails with 400 invalid_request
    When the app lists the messages of "team" with limit "abc"
    Then the request fails with 400 invalid_request

  @SG-MSG-14
  Scenario: startingAfter naming no message of the conversation is refused
    Given a conversation "team" with participants alice
    And a conversation "other" with participants alice
    When alice posts "elsewhere" to "other"
    And the app lists the messages of "team" starting after the id of "elsewhere"
    Then the request fails with 400 invalid_request

  @SG-MSG-2 @SG-RT-24
  Scenario: Messages arrive in storage order and createdAt never decreases
    Given a conversation "team" with participants alice and bob
    And alice has "team" open
    And bob has "team" open
    And dave has "team" open as a guest
    When alice and bob each send 10 messages in "team" without waiting
    Then dave received the 20 messages in the order of the history
    And alice received the 20 messages in the order of the history
    And createdAt never decreases along the history of "team"

  @SG-RT-21
  Scenario: A message is in the history once it is acknowledged
    Given a conversation "team" with participants alice
    And alice has "team" open
    When alice sends "stored before ack" in "team"
    Then alice's message is acknowledged only once it is in the history of "team"
