Feature: Apps and users
  GET /v1/{appId} describes the app and the limits the server enforces.
  Users are created and merged with PUT and read with GET.

  @SG-APP-1
  Scenario: The app describes its plan, limits and defaults
    When the app fetches itself
    Then the app info has id, plan, participantLimit, guestLimit, guestAccess and notificationDelayMs

  @SG-APP-3
  Scenario: The plan presets have their documented limits
    When the app fetches itself
    Then a basic plan has 100 participants and 300 guests, a growth plan 300 and 1250

  @other-app @SG-APP-5
  Scenario: Apps are isolated from each other
    Given a conversation "shared" with participants alice
    And alice has posted "only in the first app" to "shared"
    When the other app fetches the conversation "shared"
    Then the request fails with 404 conversation_not_found
    When the other app stores the conversation "shared" with participants bob
    Then the member list of "shared" is alice
    And the history of "shared" is "only in the first app"

  @SG-USER-1 @SG-USER-3 @SG-REST-1
  Scenario: PUT creates a user, GET returns every field
    When the app stores user "{alice}" with name "Alice", email "alice@example.com", role "speaker" and custom team "red"
    Then the request succeeds with {}
    And user alice has name "Alice", email "alice@example.com", no phone, role "speaker" and custom team "red"

  @SG-USER-3
  Scenario: Unset fields read as null, custom as {}
    When the app stores user "{bare}" with no fields
    Then user bare has no name, no email, no phone, no role and an empty custom

  @SG-USER-2
  Scenario: PUT merges: only the given fields change, null clears email and phone
    Given the app stored user "{alice}" with name "Alice", email "alice@example.com", role "speaker" and custom team "red"
    When the app stores user "{alice}" with name "Alicia", email null and custom color "blue"
    Then user alice has name "Alicia", no email, no phone, role "speaker" and custom color "blue"
    And the createdAt of user alice did not change

  @SG-USER-2
  Scenario: null for name or role is the same as leaving it out
    Given the app stored user "{alice}" with name "Alice" and role "speaker"
    When the app sends PUT /users/{alice} with {"name": null, "role": null}
    Then the request succeeds with {}
    And user alice has name "Alice", no email, no phone, role "speaker" and an empty custom

  @SG-USER-4
  Scenario: An unknown user is 404
    When the app fetches user nobody
    Then the request fails with 404 user_not_found
