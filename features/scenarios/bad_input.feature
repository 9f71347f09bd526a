Feature: Bad input
  Malformed or invalid requests get the documented error and change nothing.
  Path templates name scenario objects in braces: {team} is the id of the
  conversation "team"; {x*256} is 256 times "x".

  Background:
    Given a conversation "team" with participants alice

  @SG-REST-3
  Scenario Outline: A body that is not JSON is refused with invalid_json
    When the app sends <method> <path> with <body>
    Then the answer is 400 invalid_json

    Examples:
      | method | path                               | body       |
      | PUT    | /users/{bob}                       | {"name":   |
      | PUT    | /conversations/{team}              | not json   |
      | POST   | /conversations/{team}/messages     | <empty>    |
      | PUT    | /conversations/{team}/participants/{bob} | [1,2 |
      | PUT    | /conversations/{team}              | {"name":   |
      | POST   | /conversations/{team}/messages     | {          |
      | PUT    | /users/{bob}                       | <empty>    |
      | PUT    | /conversations/{team}              | <empty>    |
      | PUT    | /conversations/{team}/participants/{bob} | <empty> |

  @SG-REST-4
  Scenario Outline: A body of the wrong shape is refused with invalid_request
    When the app sends <method> <path> with <body>
    Then the answer is 400 invalid_request

    Examples:
      | method | path                                     | body                                   |
      | PUT    | /users/{bob}                             | {"name": 42}                           |
      | PUT    | /users/{bob}                             | {"nickname": "b"}                      |
      | PUT    | /users/{bob}                             | {"custom": {"a": 1}}                   |
      | PUT    | /conversations/{team}                    | {"guestAccess": "yes"}                 |
      | PUT    | /conversations/{team}/participants/{bob} | {"access": "Admin"}                    |
      | PUT    | /conversations/{team}/participants/{bob} | {"notify": "Sometimes"}                |
      | POST   | /conversations/{team}/messages           | [{"type":"UserMessage","text":"no sender"}] |
      | POST   | /conversations/{team}/messages           | [{"type":"Shout","text":"x"}]          |
      | POST   | /conversations/{team}/messages           | [["UserMessage","{alice}","in order"]] |
      | POST   | /conversations/{team}/messages           | [{"type":"SystemMessage","text":"x","sender":null}] |
      | POST   | /conversations/{team}/messages           | [{"type":"SystemMessage","text":"x","idempotencyKey":null}] |

  @SG-REST-4 @SG-REST-8
  Scenario: An array where an object is expected is refused and creates nothing
    When the app sends PUT /users/{bob} with ["bob"]
    Then the answer is 400 invalid_request
    And user bob does not exist
    When the app sends PUT /conversations/{fresh} with ["bob"]
    Then the answer is 400 invalid_request
    And the conversation "fresh" does not exist

  @SG-REST-4 @SG-MSG-5
  Scenario Outline: A message body that is empty or not an array is refused
    When the app sends POST /conversations/{team}/messages with <body>
    Then the answer is 400 invalid_request

    Examples:
      | body                                                       |
      | []                                                         |
      | {"type":"UserMessage","sender":"{alice}","text":"single"}  |

  @SG-REST-5 @SG-REST-6
  Scenario Outline: Unknown routes and methods
    When the app sends <method> <path> with <body>
    Then the answer is <status> <code>

    Examples:
      | method | path                  | body    | status | code               |
      | GET    | /nothing/here         | <none>  | 404    | not_found          |
      | GET    | /users/               | <none>  | 404    | not_found          |
      | GET    | /webhooks             | <none>  | 405    | method_not_allowed |
      | POST   | /users/{bob}          | {}      | 405    | method_not_allowed |
      | PATCH  | /conversations/{team} | {}      | 405    | method_not_allowed |

  @SG-REST-6
  Scenario Outline: HEAD is the method of no route
    When the app sends HEAD <path> with <body>
    Then the answer is 405 without a body

    Examples:
      | path                  | body   |
      | /users/{alice}        | <none> |
      | /conversations/{team} | <none> |

  @SG-REST-7
  Scenario: A body over 1 MiB is refused with payload_too_large
    When the app sends PUT /users/{bob} with a body of 1048577 bytes
    Then the answer is 413 payload_too_large
    And user bob does not exist

  @SG-ID-1
  Scenario Outline: Path ids that break the id rule are refused
    When the app sends <method> <path> with <body>
    Then the answer is 400 invalid_id

    Examples:
      | method | path                         | body   |
      | PUT    | /users/{x*256}               | {}     |
      | GET    | /users/a%0Ab                 | <none> |
      | PUT    | /conversations/{x*256}       | {}     |
      | GET    | /conversations/tab%09id      | <none> |

  @SG-ID-1 @SG-ID-3
  Scenario: Any id of 1 to 255 bytes that keeps the rule is accepted and reachable
    When the app stores user "{x*255}" named "Longest"
    Then the request succeeds with {}
    And user "{x*255}" exists with name "Longest"
    When the app stores user "ünï cødé ✓" named "Unicode"
    Then user "ünï cødé ✓" exists with name "Unicode"

  @SG-ID-3
  Scenario Outline: An encoded slash or bytes that are not UTF-8 in a path id are refused
    When the app sends GET <path> with <body>
    Then the answer is 400 invalid_id

    Examples:
      | path                 | body   |
      | /users/a%2Fb         | <none> |
      | /users/%FF           | <none> |
      | /conversations/x%FFy | <none> |

  @SG-REST-11
  Scenario: A bad query parameter is refused before the conversation is looked up
    When the app sends GET /conversations/{nowhere}/messages?limit=0 with <none>
    Then the answer is 400 invalid_request

  @SG-ID-4
  Scenario: Ids are case-sensitive
    When the app stores user "{Kim}" named "Upper"
    And the app stores user "{kim}" named "Lower"
    Then user "{Kim}" exists with name "Upper"
    And user "{kim}" exists with name "Lower"

  @SG-ID-2
  Scenario Outline: Body ids that break the id rule are refused
    When the app sends <method> <path> with <body>
    Then the answer is 400 invalid_id

    Examples:
      | method | path                           | body                                                  |
      | PUT    | /conversations/{team}          | {"participants": ["ok", ""]}                          |
      | PUT    | /conversations/{team}          | {"participants": ["a/b"]}                             |
      | POST   | /conversations/{team}/messages | [{"type":"UserMessage","sender":"","text":"x"}]       |
      | POST   | /conversations/{team}/messages | [{"type":"UserMessage","sender":"{x*256}","text":"x"}] |

  @SG-ID-5
  Scenario Outline: Custom fields over their limits are refused with invalid_custom
    When the app sends <method> <path> with <body>
    Then the answer is 400 invalid_custom

    Examples:
      | method | path                           | body                                                                   |
      | PUT    | /users/{bob}                   | {"custom": {custom*51}}                                                |
      | PUT    | /users/{bob}                   | {"custom": {"": "empty key"}}                                          |
      | PUT    | /conversations/{team}          | {"custom": {"{k*256}": "v"}}                                           |
      | POST   | /conversations/{team}/messages | [{"type":"UserMessage","sender":"{alice}","text":"x","custom":{"k":"{v*4097}"}}] |

  @SG-ID-5 @SG-RT-4
  Scenario: Custom fields at their limits are accepted, and a realtime send over them is refused
    Given alice has "team" open
    When the app sends PUT /users/{bob} with {"custom": {custom*50}}
    Then the answer is 200 {}
    When alice sends the frame {"type":"send","ref":"s1","conversationId":"{team}","text":"x","custom":{"k":"{v*4097}"}}
    Then alice receives a frame {"type":"error","ref":"s1","code":"invalid_custom"}
    And the history of "team" is empty

  @SG-ID-6
  Scenario Outline: Idempotency keys must be 1 to 255 bytes
    Given alice has "team" open
    When the app sends POST /conversations/{team}/messages with [{"type":"UserMessage","sender":"{alice}","text":"x","idempotencyKey":"<key>"}]
    Then the answer is 400 invalid_request
    When alice sends the frame {"type":"send","ref":"s1","conversationId":"{team}","text":"x","idempotencyKey":"<key>"}
    Then alice receives a frame {"type":"error","ref":"s1","code":"invalid_frame"}
    And the history of "team" is empty

    Examples:
      | key      |
      |          |
      | {k*256}  |

  @SG-REST-8
  Scenario: A refused request changes nothing
    Given user bob is stored with name "Bob"
    When the app sends PUT /users/{bob} with {"name": "Robert", "custom": {"a": 1}}
    Then the answer is 400 invalid_request
    And user bob exists with name "Bob"
    When the app sends PUT /conversations/{team} with {"subject": "new", "participants": ["ok", ""]}
    Then the answer is 400 invalid_id
    And the subject of "team" is not "new"
    And the member list of "team" is alice

  @SG-REST-11
  Scenario Outline: Several faults at once get the error of the earliest check
    When a client sends <method> <path> with <body> and the secret "<secret>"
    Then the answer is <status> <code>

    Examples:
      | method | path                                      | body                                          | secret  | status | code                   |
      | GET    | /nothing/here                             | <none>                                        | wrong   | 404    | not_found              |
      | PUT    | /users/{x*256}                            | {"name":                                      | wrong   | 401    | unauthorized           |
      | PUT    | /users/{x*256}                            | {"name":                                      | {app-secret} | 400    | invalid_id             |
      | PUT    | /conversations/{nowhere}/participants/{bob} | {"access":                                  | {app-secret} | 400    | invalid_json           |
      | POST   | /conversations/{nowhere}/messages         | [{"type":"UserMessage","sender":"","text":"x"}] | {app-secret} | 404    | conversation_not_found |

  @SG-REST-11 @SG-MSG-4
  Scenario Outline: A batch's item shapes are checked before its size, and both before the conversation
    When the app sends POST /conversations/{nowhere}/messages with <body>
    Then the answer is 400 <code>

    Examples:
      | body | code |
      | [{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"}] | too_many_messages |
      | [{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"Bogus","text":"x"}] | invalid_request |
      | [{"type":"SystemMessage"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"},{"type":"SystemMessage","text":"x"}] | invalid_request |
      | [] | invalid_request |
      | {"type":"SystemMessage","text":"x"} | invalid_request |

  @SG-REST-11
  Scenario Outline: Within an item the field rules run in order, and the first failing item is reported
    When the app sends POST /conversations/{team}/messages with <body>
    Then the answer is 400 <code>
    And the history of "team" is empty

    Examples:
      | body | code |
      | [{"type":"UserMessage","sender":"","text":"{y*20001}","idempotencyKey":""}] | invalid_request |
      | [{"type":"UserMessage","sender":"","text":"{y*20001}"}] | invalid_id |
      | [{"type":"UserMessage","sender":"{alice}","text":"{y*20001}","custom":{"":"v"}}] | message_too_long |
      | [{"type":"UserMessage","sender":"{stranger}","text":"x","custom":{"":"v"}}] | invalid_custom |
      | [{"type":"UserMessage","sender":"{alice}","text":"x","custom":{"":"v"}},{"type":"UserMessage","sender":"","text":"x"}] | invalid_custom |

  @SG-REST-9
  Scenario: A JSON body is accepted whatever its Content-Type says
    When the app sends PUT /users/{bob} with {"name": "Plain"} as text/plain
    Then the answer is 200 {}
    And user bob exists with name "Plain"

  @SG-REST-2
  Scenario: Every error has the error body with a code and a message
    When the app sends GET /conversations/{nowhere} with <none>
    Then the answer is 404 conversation_not_found
    And the error message is not empty
