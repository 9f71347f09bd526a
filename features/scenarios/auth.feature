Feature: Authentication
  REST requests carry the app secret as a bearer token; realtime connections
  carry a user token signed with it. Anything else gets 401 unauthorized.

  @SG-AUTH-1
  Scenario Outline: REST requests without a bearer secret are refused
    When a client sends GET /users/alice with the Authorization header "<header>"
    Then the answer is 401 unauthorized

    Examples:
      | header              |
      | <none>              |
      |                     |
      | Basic c2tfZGVtbzp4  |
      | sk_demo             |

  @SG-AUTH-2
  Scenario: A wrong secret or an unknown app is refused
    When a client sends GET /users/alice with the secret "wrong-secret"
    Then the answer is 401 unauthorized
    When a client sends GET to an unknown app with the right secret
    Then the answer is 401 unauthorized

  @SG-AUTH-3 @SG-AUTH-4 @SG-AUTH-5 @SG-RT-1
  Scenario Outline: Realtime upgrades with a bad token are refused before the upgrade
    When dave connects with <token>
    Then the upgrade is refused with HTTP 401 unauthorized

    Examples:
      | token                                   |
      | no token                                |
      | a malformed token                       |
      | an expired token                        |
      | a token without exp                     |
      | a token signed with another secret      |
      | a token for another app                 |
      | a token for an unknown app in the URL   |
      | a token with tokenType admin            |
      | a token whose sub breaks the id rule    |
      | a token signed with HS512               |

  @SG-RT-1 @SG-AUTH-6
  Scenario: A valid token connects and creates the user, who stays after the connection closed
    When dave connects with a valid token named "Dave"
    Then the upgrade succeeds
    And user dave exists with name "Dave"
