//! Bad input over REST: each gets its documented error and stores nothing
//! (SG-REST-3..8, SG-ID-1..5, SG-MSG-4..8). "Nothing stored" is checked by
//! reading back (GET, history) after the refusal, next to a positive control.

use crate::helpers::*;
use reqwest::Method;
use supergroup_protocol::rest::{Access, ConversationUpsert, NewMessage, ParticipantUpsert, UserUpsert};

fn put(path: &str, body: &str) -> (Method, String, Option<String>) {
    (Method::PUT, path.to_string(), Some(body.to_string()))
}

async fn raw(app: &TestApp, (method, path, body): (Method, String, Option<String>)) -> (u16, String) {
    app.rest.raw(method, &path, body, Some(SECRET)).await.expect("server answers")
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json_and_stores_nothing_sg_rest_3() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    for body in ["", "not json", "nul", "@"] {
        for (method, path) in routes_with_bodies() {
            let answer = raw(&app, (method.clone(), path.into(), Some(body.into()))).await;
            assert_eq!(answer.0, 400, "{method} {path} {body:?} -> {answer:?}");
            expect_raw_error(answer, 400, "invalid_json");
        }
    }
    assert_nothing_stored(&app).await;
}

/// Every route that takes a body, on conversation `c` (existing) and `d` (not).
fn routes_with_bodies() -> [(Method, &'static str); 5] {
    [
        (Method::PUT, "/users/bob"),
        (Method::PUT, "/conversations/d"),
        (Method::POST, "/conversations/c/messages"),
        (Method::PUT, "/conversations/c/participants/bob"),
        (Method::PUT, "/webhooks"),
    ]
}

async fn assert_nothing_stored(app: &TestApp) {
    expect_api_error(app.rest.get_user("bob").await, 404, "user_not_found");
    expect_api_error(app.rest.get_conversation("d").await, 404, "conversation_not_found");
    assert_eq!(app.rest.get_conversation("c").await.unwrap().participants.len(), 1);
    assert!(app.history("c").await.is_empty());
}

/// Syntax is checked before shape: a truncated body, or one with trailing
/// garbage, is `invalid_json` even when a field before the break is unknown
/// to the route (SG-REST-3, SG-REST-11 step 4).
#[tokio::test]
async fn broken_json_is_invalid_json_even_after_an_unknown_field_sg_rest_3() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    for body in [
        "{",
        "{]",
        "[1,",
        r#"{"name":"#,
        r#"{"subject":"x","#,
        r#"{"name":"x"} trailing"#,
        r#"[{"type":"UserMessage","#,
    ] {
        for (method, path) in routes_with_bodies() {
            let answer = raw(&app, (method.clone(), path.into(), Some(body.into()))).await;
            assert_eq!(answer.0, 400, "{method} {path} {body:?} -> {answer:?}");
            let code = serde_json::from_str::<serde_json::Value>(&answer.1).unwrap()["error"]["code"].clone();
            assert_eq!(code, "invalid_json", "{method} {path} {body:?} -> {answer:?}");
        }
    }
    assert_nothing_stored(&app).await;
}

/// A JSON array where the route takes an object is a wrong shape (SG-REST-4),
/// not an object filled in field order.
#[tokio::test]
async fn array_body_where_an_object_is_expected_is_invalid_request_sg_rest_4() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    for (method, path) in routes_with_bodies() {
        if path.ends_with("/messages") {
            continue;
        }
        let answer = raw(&app, (method.clone(), path.into(), Some(r#"["bob"]"#.into()))).await;
        assert_eq!(answer.0, 400, "{method} {path} -> {answer:?}");
        expect_raw_error(answer, 400, "invalid_request");
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn wrong_shape_is_400_invalid_request_and_stores_nothing_sg_rest_4() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let cases = [
        put("/users/bob", r#"{"name":5}"#),
        put("/users/bob", r#"{"nickname":"b"}"#),
        put("/users/bob", r#"{"custom":{"k":1}}"#),
        put("/conversations/d", r#"{"participants":"alice"}"#),
        put("/conversations/d", r#"{"guestAccess":"yes"}"#),
        put("/conversations/c/participants/bob", r#"{"access":"Write"}"#),
        put("/conversations/c/participants/bob", r#"{"notify":"Sometimes"}"#),
        (
            Method::POST,
            "/conversations/c/messages".into(),
            Some(r#"{"type":"UserMessage","sender":"alice","text":"x"}"#.into()),
        ),
        (Method::POST, "/conversations/c/messages".into(), Some("[]".into())),
        (
            Method::POST,
            "/conversations/c/messages".into(),
            Some(r#"[{"type":"Shout","sender":"alice","text":"x"}]"#.into()),
        ),
        (Method::POST, "/conversations/c/messages".into(), Some(r#"[{"type":"UserMessage","sender":"alice"}]"#.into())),
        (
            Method::POST,
            "/conversations/c/messages".into(),
            Some(r#"[{"type":"UserMessage","sender":"alice","text":"x","extra":1}]"#.into()),
        ),
        put("/webhooks", r#"{"url":"http://127.0.0.1:9/h","events":["message.deleted"]}"#),
    ];
    for case in cases {
        let label = format!("{} {} {:?}", case.0, case.1, case.2);
        let answer = raw(&app, case).await;
        assert_eq!(answer.0, 400, "{label} -> {answer:?}");
        expect_raw_error(answer, 400, "invalid_request");
    }
    expect_api_error(app.rest.get_user("bob").await, 404, "user_not_found");
    expect_api_error(app.rest.get_conversation("d").await, 404, "conversation_not_found");
    let conv = app.rest.get_conversation("c").await.unwrap();
    assert_eq!(conv.participants.keys().collect::<Vec<_>>(), ["alice"]);
    assert!(app.history("c").await.is_empty());
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405_sg_rest_5_6() {
    let app = spawn_app().await;
    expect_raw_error(raw(&app, (Method::GET, "/nothing/here".into(), None)).await, 404, "not_found");
    expect_raw_error(raw(&app, (Method::GET, "/users/".into(), None)).await, 404, "not_found");
    expect_raw_error(raw(&app, (Method::GET, "/webhooks".into(), None)).await, 405, "method_not_allowed");
    expect_raw_error(
        raw(&app, (Method::POST, "/users/bob".into(), Some("{}".into()))).await,
        405,
        "method_not_allowed",
    );
    expect_api_error(app.rest.get_user("bob").await, 404, "user_not_found");
}

#[tokio::test]
async fn body_over_1_mib_is_413_payload_too_large_sg_rest_7() {
    let app = spawn_app().await;
    // A syntactically valid body of 1,048,577 bytes.
    let prefix = r#"{"name":""#;
    let suffix = r#""}"#;
    let name = "x".repeat(1_048_577 - prefix.len() - suffix.len());
    let body = format!("{prefix}{name}{suffix}");
    assert_eq!(body.len(), 1_048_577);
    expect_raw_error(raw(&app, put("/users/big", &body)).await, 413, "payload_too_large");
    expect_api_error(app.rest.get_user("big").await, 404, "user_not_found");
}

#[tokio::test]
async fn more_than_10_messages_is_too_many_messages_and_stores_none_sg_msg_4() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let eleven: Vec<NewMessage> = (0..11).map(|i| user_message("alice", &format!("m{i}"))).collect();
    expect_api_error(app.rest.post_messages("c", &eleven).await, 400, "too_many_messages");
    assert!(app.history("c").await.is_empty(), "an 11-item batch stored something");
    // Positive control: exactly 10 are accepted, stored in order (SG-MSG-3).
    let ids = app.rest.post_messages("c", &eleven[..10]).await.expect("10 items fit");
    let stored: Vec<String> = app.history("c").await.into_iter().rev().map(|m| m.id).collect();
    assert_eq!(stored, ids.into_iter().map(|c| c.id).collect::<Vec<_>>());
}

#[tokio::test]
async fn text_over_20000_chars_is_message_too_long_and_exactly_20000_is_stored_sg_msg_8() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    // Multi-byte characters: the limit counts characters, not bytes.
    let too_long = "é".repeat(20_001);
    expect_api_error(app.rest.post_messages("c", &[user_message("alice", &too_long)]).await, 400, "message_too_long");
    let system = NewMessage::SystemMessage { text: "s".repeat(20_001), custom: None };
    expect_api_error(app.rest.post_messages("c", &[system]).await, 400, "message_too_long");
    // All-or-nothing (SG-MSG-6): a valid first item is not stored either.
    let batch = [user_message("alice", "fine"), user_message("alice", &too_long)];
    expect_api_error(app.rest.post_messages("c", &batch).await, 400, "message_too_long");
    assert!(app.history("c").await.is_empty(), "a refused message was stored");
    let exact = "é".repeat(20_000);
    app.post("c", "alice", &exact).await;
    let history = app.history("c").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].text, exact, "the 20,000-character text is stored untruncated");
}

#[tokio::test]
async fn invalid_path_ids_are_400_invalid_id_and_create_nothing_sg_id_1_3() {
    let app = spawn_app().await;
    let long = "u".repeat(256);
    let bad = [long.clone(), "a%2Fb".into(), "a%2fb".into(), "ctl%01x".into(), "nl%0Ax".into(), "del%7Fx".into()];
    for id in &bad {
        expect_raw_error(raw(&app, put(&format!("/users/{id}"), "{}")).await, 400, "invalid_id");
        expect_raw_error(raw(&app, put(&format!("/conversations/{id}"), "{}")).await, 400, "invalid_id");
        expect_raw_error(raw(&app, (Method::GET, format!("/users/{id}"), None)).await, 400, "invalid_id");
    }
    // Nothing truncated or cleaned up into a valid id.
    for id in [&long[..255], "ab", "a", "b", "ctlx", "ctl"] {
        expect_api_error(app.rest.get_user(id).await, 404, "user_not_found");
        expect_api_error(app.rest.get_conversation(id).await, 404, "conversation_not_found");
    }
    // Positive control: 255 bytes, spaces and non-ASCII (percent-encoded by the client) are fine.
    for id in [&long[..255], "with space", "ünïcödé", "Alice"] {
        app.rest.put_user(id, &UserUpsert { name: Some(id.into()), ..Default::default() }).await.expect(id);
        assert_eq!(app.rest.get_user(id).await.unwrap().id, id);
    }
    // SG-ID-4: case-sensitive.
    expect_api_error(app.rest.get_user("alice").await, 404, "user_not_found");
}

#[tokio::test]
async fn invalid_ids_in_body_are_400_invalid_id_and_store_nothing_sg_id_2() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    for bad in ["", "a/b", "tab\tx", &"p".repeat(256)] {
        let upsert = ConversationUpsert { participants: Some(vec!["ok".into(), bad.into()]), ..Default::default() };
        expect_api_error(app.rest.put_conversation("d", &upsert).await, 400, "invalid_id");
        expect_api_error(app.rest.put_conversation("c", &upsert).await, 400, "invalid_id");
        expect_api_error(app.rest.post_messages("c", &[user_message(bad, "hi")]).await, 400, "invalid_id");
    }
    expect_api_error(app.rest.get_conversation("d").await, 404, "conversation_not_found");
    expect_api_error(app.rest.get_user("ok").await, 404, "user_not_found");
    assert_eq!(app.rest.get_conversation("c").await.unwrap().participants.len(), 1);
    assert!(app.history("c").await.is_empty());
}

#[tokio::test]
async fn invalid_custom_is_400_invalid_custom_and_stores_nothing_sg_id_5() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let map = |pairs: Vec<(String, String)>| pairs.into_iter().collect::<supergroup_protocol::rest::Custom>();
    let too_many = map((0..51).map(|i| (format!("k{i}"), "v".into())).collect());
    let empty_key = map(vec![(String::new(), "v".into())]);
    let long_key = map(vec![("k".repeat(256), "v".into())]);
    let long_value = map(vec![("k".into(), "v".repeat(4097))]);
    for custom in [too_many, empty_key, long_key, long_value] {
        let user = UserUpsert { custom: Some(custom.clone()), ..Default::default() };
        expect_api_error(app.rest.put_user("bob", &user).await, 400, "invalid_custom");
        let conv = ConversationUpsert { custom: Some(custom.clone()), ..Default::default() };
        expect_api_error(app.rest.put_conversation("d", &conv).await, 400, "invalid_custom");
        let msg = NewMessage::UserMessage {
            sender: "alice".into(),
            text: "hi".into(),
            custom: Some(custom),
            idempotency_key: None,
        };
        expect_api_error(app.rest.post_messages("c", &[msg]).await, 400, "invalid_custom");
    }
    expect_api_error(app.rest.get_user("bob").await, 404, "user_not_found");
    expect_api_error(app.rest.get_conversation("d").await, 404, "conversation_not_found");
    assert!(app.history("c").await.is_empty());
    // Positive control: the limits themselves fit.
    let mut edge = map((0..49).map(|i| (format!("k{i}"), "v".into())).collect());
    edge.insert("k".repeat(255), "v".repeat(4096));
    let user = UserUpsert { custom: Some(edge.clone()), ..Default::default() };
    app.rest.put_user("bob", &user).await.expect("50 keys, 255-byte key, 4,096-byte value fit");
    assert_eq!(app.rest.get_user("bob").await.unwrap().custom, edge);
}

#[tokio::test]
async fn refused_participant_requests_change_nothing_sg_rest_8() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let read = ParticipantUpsert { access: Some(Access::Read), notify: None };
    // Wrong shape on an existing participant: the setting stays.
    let answer = raw(&app, put("/conversations/c/participants/alice", r#"{"access":"Read","bogus":1}"#)).await;
    expect_raw_error(answer, 400, "invalid_request");
    assert_eq!(app.rest.get_conversation("c").await.unwrap().participants["alice"].access, Access::ReadWrite);
    // Unknown conversation: 404, and the user is not created (SG-CONV-6).
    expect_api_error(app.rest.put_participant("ghost", "zed", &read).await, 404, "conversation_not_found");
    expect_api_error(app.rest.get_user("zed").await, 404, "user_not_found");
    expect_api_error(app.rest.patch_participant("c", "zed", &read).await, 404, "participant_not_found");
    expect_api_error(app.rest.get_user("zed").await, 404, "user_not_found");
}

#[tokio::test]
async fn a_batch_item_of_the_wrong_shape_is_invalid_request_whatever_the_count_sg_rest_11() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let good: Vec<String> =
        (0..11).map(|i| format!(r#"{{"type":"UserMessage","sender":"alice","text":"m{i}"}}"#)).collect();
    let post =
        |items: &[String]| (Method::POST, "/conversations/c/messages".into(), Some(format!("[{}]", items.join(","))));
    // SPEC.md 3.2, step 4: the shape of the whole body before the batch size.
    let mut bad_last = good[..10].to_vec();
    bad_last.push(r#"{"type":"UserMessage","sender":7}"#.into());
    expect_raw_error(raw(&app, post(&bad_last)).await, 400, "invalid_request");
    let mut bad_first = good.clone();
    bad_first[0] = r#"{"type":"Bogus","text":"x"}"#.into();
    expect_raw_error(raw(&app, post(&bad_first)).await, 400, "invalid_request");
    // Only a well-formed batch is counted.
    expect_raw_error(raw(&app, post(&good)).await, 400, "too_many_messages");
    expect_raw_error(raw(&app, post(&[])).await, 400, "invalid_request");
    assert!(app.history("c").await.is_empty());
    app.stop().await;
}
