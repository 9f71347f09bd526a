Feature: The realtime protocol
  Frames are JSON text messages with a type; replies echo the ref of the
  frame they answer; errors leave the connection open.

  Background:
    Given a conversation "team" with participants alice

  @SG-RT-6 @SG-RT-11
  Scenario Outline: Frames that are not valid protocol get invalid_frame and the connection keeps working
    When alice sends the frame <frame>
    Then alice receives a frame {"type":"error","code":"invalid_frame"}
    And alice's connection still works

    Examples:
      | frame                                                            |
      | this is not json                                                 |
      | [1,2,3]                                                          |
      | {"ref":"r1","conversationId":"{team}"}                           |
      | {"type":"dance","ref":"r1"}                                      |
      | {"type":"open","ref":"r1"}                                       |
      | {"type":"open","ref":"r1","conversationId":"{team}","asGuest":"yes"} |
      | {"type":"open","ref":"r1","conversationId":"{team}","ui":"sidebar"} |
      | {"type":"send","ref":"r1","conversationId":"{team}","text":"x","color":"red"} |

  @SG-RT-5 @SG-RT-11
  Scenario: A binary message gets invalid_frame and the connection stays open
    When alice sends a binary message
    Then alice receives a frame {"type":"error","code":"invalid_frame"}
    And alice's connection still works

  @SG-RT-7
  Scenario: ref is echoed when sent, also on an unknown type, and left out otherwise
    When alice sends the frame {"type":"dance","ref":"echo-me"}
    Then alice receives a frame {"type":"error","ref":"echo-me","code":"invalid_frame"}
    When alice sends the frame {"type":"open","ref":"o1","conversationId":"{team}"}
    Then alice receives a frame {"type":"opened","ref":"o1","role":"participant"}
    When alice sends the frame {"type":"close","conversationId":"{team}"}
    Then alice receives a frame {"type":"closed","ref":"~absent~"}
    When alice sends the frame {"type":"dance"}
    Then alice receives a frame {"type":"error","ref":"~absent~","code":"invalid_frame"}

  @SG-RT-8
  Scenario Outline: A ref that is not a string of at most 255 bytes gets invalid_frame without ref
    When alice sends the frame {"type":"open","ref":<ref>,"conversationId":"{team}"}
    Then alice receives a frame {"type":"error","ref":"~absent~","code":"invalid_frame"}

    Examples:
      | ref         |
      | 42          |
      | {"a":"b"}   |
      | "{r*256}"   |

  @SG-RT-9
  Scenario: A conversationId that breaks the id rule gets invalid_id
    When alice sends the frame {"type":"open","ref":"o1","conversationId":"{x*256}"}
    Then alice receives a frame {"type":"error","ref":"o1","code":"invalid_id"}
    When alice sends the frame {"type":"open","ref":"o2","conversationId":"a/b"}
    Then alice receives a frame {"type":"error","ref":"o2","code":"invalid_id"}
    When alice sends the frame {"type":"close","ref":"c1","conversationId":"{x*256}"}
    Then alice receives a frame {"type":"error","ref":"c1","code":"invalid_id"}

  @SG-RT-10
  Scenario Outline: Frames naming a conversation that does not exist get conversation_not_found
    When alice sends the frame <frame>
    Then alice receives a frame {"type":"error","ref":"f1","code":"conversation_not_found"}

    Examples:
      | frame                                                                   |
      | {"type":"open","ref":"f1","conversationId":"{nowhere}"}                 |
      | {"type":"send","ref":"f1","conversationId":"{nowhere}","text":"x"}      |
      | {"type":"typing","ref":"f1","conversationId":"{nowhere}","isTyping":true} |
      | {"type":"read","ref":"f1","conversationId":"{nowhere}"}                 |

  @SG-RT-19 @SG-RT-4
  Scenario: send and typing without the conversation open get not_open and store nothing
    Given bob is a participant of "team"
    And bob has "team" open
    When alice sends the frame {"type":"send","ref":"s1","conversationId":"{team}","text":"not open"}
    Then alice receives a frame {"type":"error","ref":"s1","code":"not_open"}
    When alice sends the frame {"type":"typing","ref":"t1","conversationId":"{team}","isTyping":true}
    Then alice receives a frame {"type":"error","ref":"t1","code":"not_open"}
    And the history of "team" is empty
    When alice posts "control" to "team"
    Then bob receives the message "control"
    And bob has not seen alice typing

  @SG-RT-22
  Scenario: send errors are decided in a fixed order
    Given reader is a participant of "team" with Read access
    And reader has "team" open
    When alice tries to send a text of 20001 characters in "team"
    Then alice is refused with not_open
    When reader tries to send a text of 20001 characters in "team"
    Then reader is refused with read_only
    When alice sends the frame {"type":"send","ref":"s1","conversationId":"{nowhere}","text":"x"}
    Then alice receives a frame {"type":"error","ref":"s1","code":"conversation_not_found"}
    When alice sends the frame {"type":"send","ref":"s2","conversationId":"{x*256}","text":"x"}
    Then alice receives a frame {"type":"error","ref":"s2","code":"invalid_id"}
    Given alice has "team" open
    When alice sends the frame {"type":"send","ref":"s3","conversationId":"{team}","text":"{y*20001}","custom":{"":"v"}}
    Then alice receives a frame {"type":"error","ref":"s3","code":"message_too_long"}

  @SG-RT-2
  Scenario: Replies come in the order of the frames they answer
    Given a conversation "other" with participants alice
    When alice sends the frames without waiting:
      """
      {"type":"open","ref":"a","conversationId":"{team}"}
      {"type":"send","ref":"b","conversationId":"{team}","text":"one"}
      {"type":"dance","ref":"c"}
      {"type":"open","ref":"d","conversationId":"{other}"}
      {"type":"close","ref":"e","conversationId":"{team}"}
      {"type":"send","ref":"f","conversationId":"{team}","text":"two"}
      """
    Then alice's replies come in the order "a", "b", "c", "d", "e", "f"

  @SG-RT-12
  Scenario: A message of exactly 65,536 bytes is processed, one byte more closes the connection with 1009
    Given alice has "team" open
    When alice sends a send frame of exactly 65536 bytes in "team"
    Then alice is acknowledged
    When alice sends a send frame of exactly 65537 bytes in "team"
    Then alice's connection is closed with code 1009

  @SG-RT-16
  Scenario: Opening a conversation that is already open answers opened again and changes nothing
    Given bob is a participant of "team"
    And bob has "team" open
    And dave has "team" open as a guest
    When dave opens "team" as a guest
    Then dave is in "team" as a guest
    When alice opens "team"
    And alice opens "team"
    Then alice is in "team" as a participant
    When alice posts "once" to "team"
    Then bob receives the message "once"
    And alice got exactly one message frame for "once"
    And bob was never told that dave joined or left "team"

  @SG-RT-17
  Scenario: close answers closed, even when not open, and ends delivery
    Given a conversation "other" with participants alice
    And alice has "team" open
    And alice has "other" open
    When alice closes "team"
    And alice closes "team"
    And alice posts "to team" to "team"
    And alice posts "to other" to "other"
    Then alice receives the message "to other"
    And alice got no message of "team"

  @SG-CONV-8
  Scenario: Deleting a conversation closes it on every connection
    Given alice has "team" open
    And dave has "team" open as a guest
    When the app deletes "team"
    Then the request succeeds with {}
    And alice's connection is told "team" was closed
    And dave's connection is told "team" was closed

  @serial @own-server @SG-RT-27
  Scenario: Shutting the server down closes connections with 1001
    Given a server of its own with a connected user
    When that server shuts down
    Then the user's connection is closed with code 1001

  @serial @SG-RT-25 @SG-RT-26
  Scenario: A connection that does not read is closed as a slow consumer, the others keep up
    Given a conversation "flood" with participants alice
    And slowpoke has "flood" open as a guest, is then made a participant, and stops reading
    And reader has "flood" open as a guest
    When alice floods "flood" until slowpoke is dropped
    Then slowpoke is dropped with close code 1008 and reason "slow consumer"
    And reader received every flood message in order
