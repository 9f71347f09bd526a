//! The REST resources themselves: app info and isolation (SG-APP-*), users
//! (SG-USER-*), conversations (SG-CONV-*), participants (SG-PART-1..5),
//! messages and history (SG-MSG-1..3, 7, 11..14), webhook registration
//! (SG-HOOK-2) and the validation order (SG-REST-11).

use crate::helpers::*;
use reqwest::Method;
use supergroup_protocol::client::{Realtime, RealtimeError};
use supergroup_protocol::frames::ServerFrame;
use supergroup_protocol::rest::{
    Access, ConversationUpsert, MessageType, NewMessage, Notify, Origin, PageQuery, ParticipantSettings,
    ParticipantUpsert, UserUpsert, WebhookRegistration,
};
use supergroup_server::{AppConfig, Config};

fn page(limit: Option<&str>, after: Option<&str>) -> PageQuery {
    PageQuery { limit: limit.map(str::to_owned), starting_after: after.map(str::to_owned) }
}

#[tokio::test]
async fn app_info_reports_plan_limits_and_defaults_sg_app_1_4() {
    let app = spawn_app().await;
    let (status, body) = app.rest.raw(Method::GET, "", None, Some(SECRET)).await.unwrap();
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"id": "demo", "plan": "basic", "participantLimit": 100, "guestLimit": 300,
            "guestAccess": true, "notificationDelayMs": 200})
    );
}

#[tokio::test]
async fn apps_are_isolated_from_each_other_sg_app_5() {
    let mut config = Config::for_tests();
    config.apps.push(AppConfig::new("other", "sk_other", supergroup_protocol::limits::Plan::Basic));
    let app = spawn_app_with(config).await;
    let other = app.rest.with_app("other", "sk_other");
    let mut hooks = Hooks::start().await;
    app.register_webhook(&hooks.url).await;
    other
        .put_conversation("c", &ConversationUpsert { participants: Some(vec!["alice".into()]), ..Default::default() })
        .await
        .unwrap();
    other.post_messages("c", &[user_message("alice", "other app")]).await.unwrap();
    expect_api_error(app.rest.get_conversation("c").await, 404, "conversation_not_found");
    expect_api_error(app.rest.get_user("alice").await, 404, "user_not_found");
    // demo's secret does not open the other app, nor does a demo token.
    expect_api_error(app.rest.with_app("other", SECRET).app().await, 401, "unauthorized");
    let cross = other.realtime_url(&app.rest.token("alice"));
    assert!(matches!(Realtime::connect(&cross).await, Err(RealtimeError::Rejected { status: 401 })));
    // The same ids in demo are a separate conversation.
    app.conversation("c", &["alice"]).await;
    assert!(app.history("c").await.is_empty());
    let mine = app.post("c", "alice", "demo app").await;
    // Positive control: demo's message reaches demo's webhook; the other app's never does.
    hooks.message_sent(&mine).await;
    let leaked = hooks.collect_for(QUIET, |d| d.json["data"]["message"]["text"] == "other app").await;
    assert!(leaked.is_empty(), "the other app's event reached demo's webhook: {leaked:?}");
    assert_eq!(other.messages("c", &PageQuery::default()).await.unwrap().data.len(), 1);
}

#[tokio::test]
async fn user_put_creates_merges_and_null_clears_sg_user_1_2_3() {
    let app = spawn_app().await;
    let create = UserUpsert {
        name: Some("Alice".into()),
        email: Some(Some(vec!["a@example.com".into()])),
        phone: Some(Some(vec!["+100".into()])),
        role: Some("host".into()),
        custom: Some([("team".to_string(), "red".to_string())].into_iter().collect()),
    };
    app.rest.put_user("alice", &create).await.unwrap();
    let before = app.rest.get_user("alice").await.unwrap();
    assert_eq!((before.name.as_deref(), before.role.as_deref()), (Some("Alice"), Some("host")));
    // Merge: only present fields change; null clears email; custom replaces the map.
    let (status, body) = app
        .rest
        .raw(Method::PUT, "/users/alice", Some(r#"{"email":null,"custom":{"lang":"en"}}"#.into()), Some(SECRET))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "{}"));
    let after = app.rest.get_user("alice").await.unwrap();
    assert_eq!(after.email, None);
    assert_eq!(after.phone, before.phone);
    assert_eq!((after.name, after.role, after.created_at), (before.name, before.role, before.created_at));
    assert_eq!(after.custom, [("lang".to_string(), "en".to_string())].into_iter().collect());
    // An unset user has nulls and {} (SG-USER-3).
    app.rest.put_user("bare", &UserUpsert::default()).await.unwrap();
    let (_, body) = app.rest.raw(Method::GET, "/users/bare", None, Some(SECRET)).await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    for field in ["name", "email", "phone", "role"] {
        assert!(json[field].is_null() && json.get(field).is_some(), "{field} in {body}");
    }
    assert_eq!(json["custom"], serde_json::json!({}));
}

#[tokio::test]
async fn conversation_put_creates_merges_and_only_adds_participants_sg_conv_1_2_3_5() {
    let app = spawn_app().await;
    let create = ConversationUpsert { subject: Some("Lobby".into()), ..Default::default() };
    app.rest.put_conversation("c", &create).await.unwrap();
    let first = app.rest.get_conversation("c").await.unwrap();
    assert!(first.last_message.is_none() && first.participants.is_empty() && first.guest_access);
    app.add_participant("c", "alice", ParticipantUpsert { access: Some(Access::Read), notify: Some(Notify::Off) })
        .await;
    let merge = ConversationUpsert { participants: Some(vec!["alice".into(), "bob".into()]), ..Default::default() };
    app.rest.put_conversation("c", &merge).await.unwrap();
    let conv = app.rest.get_conversation("c").await.unwrap();
    assert_eq!((conv.subject.as_deref(), conv.created_at), (Some("Lobby"), first.created_at));
    assert_eq!(conv.participants["alice"], ParticipantSettings { access: Access::Read, notify: Notify::Off });
    assert_eq!(conv.participants["bob"], ParticipantSettings::default());
    app.rest.get_user("bob").await.expect("listed unknown users are created");
    let id = app.post("c", "bob", "hi").await;
    assert_eq!(app.rest.get_conversation("c").await.unwrap().last_message.map(|m| m.id), Some(id));
}

#[tokio::test]
async fn conversation_guest_access_defaults_to_the_apps_sg_conv_4() {
    let mut config = Config::for_tests();
    config.apps[0].guest_access = false;
    let app = spawn_app_with(config).await;
    assert!(!app.rest.app().await.unwrap().guest_access);
    app.conversation("c", &["alice"]).await;
    assert!(!app.rest.get_conversation("c").await.unwrap().guest_access);
    let mut g = app.connect("g").await;
    expect_error(&g.open("c", Default::default(), true, WAIT).await.unwrap(), "guest_access_disabled");
}

#[tokio::test]
async fn deleting_a_conversation_removes_messages_members_and_keys_sg_conv_6_7() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let keyed = NewMessage::UserMessage {
        sender: "alice".into(),
        text: "x".into(),
        custom: None,
        idempotency_key: Some("k".into()),
    };
    let old = app.rest.post_messages("c", std::slice::from_ref(&keyed)).await.unwrap()[0].id.clone();
    app.rest.delete_conversation("c").await.unwrap();
    expect_api_error(app.rest.get_conversation("c").await, 404, "conversation_not_found");
    expect_api_error(app.rest.messages("c", &PageQuery::default()).await, 404, "conversation_not_found");
    expect_api_error(app.rest.delete_conversation("c").await, 404, "conversation_not_found");
    expect_api_error(app.rest.put_participant("c", "bob", &Default::default()).await, 404, "conversation_not_found");
    assert!(app.rest.user_conversations("alice", &PageQuery::default()).await.unwrap().data.is_empty());
    app.conversation("c", &["alice"]).await;
    assert!(app.history("c").await.is_empty());
    assert_eq!(app.rest.get_conversation("c").await.unwrap().participants.len(), 1);
    let new = app.rest.post_messages("c", &[keyed]).await.unwrap()[0].id.clone();
    assert_ne!(new, old, "the idempotency key went with the deleted conversation");
}

#[tokio::test]
async fn more_than_1000_listed_participants_is_invalid_request_sg_conv_9() {
    let app = spawn_app().await;
    let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let body = ConversationUpsert { participants: Some(many), ..Default::default() };
    expect_api_error(app.rest.put_conversation("c", &body).await, 400, "invalid_request");
    expect_api_error(app.rest.get_conversation("c").await, 404, "conversation_not_found");
}

#[tokio::test]
async fn participant_put_patch_delete_sg_part_1_3_4_5() {
    let app = spawn_app().await;
    app.conversation("c", &[]).await;
    app.add_participant("c", "newcomer", Default::default()).await;
    app.rest.get_user("newcomer").await.expect("PUT participant creates the user");
    let set = ParticipantUpsert { access: Some(Access::Read), notify: Some(Notify::MentionsOnly) };
    app.rest.put_participant("c", "newcomer", &set).await.unwrap();
    let notify_only = ParticipantUpsert { access: None, notify: Some(Notify::Off) };
    app.rest.patch_participant("c", "newcomer", &notify_only).await.unwrap();
    let p = app.rest.get_conversation("c").await.unwrap().participants["newcomer"];
    assert_eq!(p, ParticipantSettings { access: Access::Read, notify: Notify::Off }, "PATCH kept access");
    // PUT sets both: an absent field takes its default.
    app.rest.put_participant("c", "newcomer", &notify_only).await.unwrap();
    let p = app.rest.get_conversation("c").await.unwrap().participants["newcomer"];
    assert_eq!(p, ParticipantSettings { access: Access::ReadWrite, notify: Notify::Off });
    expect_api_error(app.rest.patch_participant("c", "stranger", &notify_only).await, 404, "participant_not_found");
    expect_api_error(app.rest.delete_participant("c", "stranger").await, 404, "participant_not_found");
    app.rest.delete_participant("c", "newcomer").await.unwrap();
    assert!(app.rest.get_conversation("c").await.unwrap().participants.is_empty());
    assert!(app.rest.user_conversations("newcomer", &PageQuery::default()).await.unwrap().data.is_empty());
    expect_api_error(app.rest.delete_participant("c", "newcomer").await, 404, "participant_not_found");
}

#[tokio::test]
async fn rest_sender_must_be_a_read_write_participant_sg_msg_7() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    app.add_participant("c", "reader", ParticipantUpsert { access: Some(Access::Read), notify: None }).await;
    app.rest.put_user("outsider", &UserUpsert::default()).await.unwrap();
    for sender in ["reader", "outsider", "nobody"] {
        let batch = [user_message("alice", "fine"), user_message(sender, "refused")];
        expect_api_error(app.rest.post_messages("c", &batch).await, 400, "sender_not_participant");
    }
    assert!(app.history("c").await.is_empty());
    expect_api_error(app.rest.get_user("nobody").await, 404, "user_not_found");
}

#[tokio::test]
async fn messages_have_the_full_shape_and_history_is_newest_first_sg_msg_1_2_3_11() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let custom: supergroup_protocol::rest::Custom = [("pinned".to_string(), "yes".to_string())].into_iter().collect();
    let batch = [
        NewMessage::UserMessage {
            sender: "alice".into(),
            text: "first".into(),
            custom: Some(custom.clone()),
            idempotency_key: None,
        },
        NewMessage::SystemMessage { text: "second".into(), custom: None },
    ];
    let ids = app.rest.post_messages("c", &batch).await.unwrap();
    let mut alice = app.participant("alice", "c").await;
    let ServerFrame::Ack { message_id, .. } = alice.send_message("c", "third", None, WAIT).await.unwrap() else {
        panic!("send")
    };
    let history = app.history("c").await;
    let got: Vec<_> = history.iter().map(|m| (m.id.as_str(), m.kind, m.sender_id.as_deref(), m.origin)).collect();
    assert_eq!(
        got,
        [
            (message_id.as_str(), MessageType::UserMessage, Some("alice"), Origin::Realtime),
            (ids[1].id.as_str(), MessageType::SystemMessage, None, Origin::Rest),
            (ids[0].id.as_str(), MessageType::UserMessage, Some("alice"), Origin::Rest),
        ]
    );
    assert!(history.iter().all(|m| m.id.starts_with("msg_") && m.conversation_id == "c"));
    assert!(history.windows(2).all(|w| w[0].created_at >= w[1].created_at), "createdAt never decreases");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(history.iter().all(|m| (now_ms - m.created_at).abs() < 60_000), "createdAt is Unix ms");
    assert_eq!(history[2].custom, custom);
    assert!(history[1].custom.is_empty());
}

#[tokio::test]
async fn history_paging_and_limits_sg_msg_12_13_14() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut posted = Vec::new();
    for chunk in 0..4 {
        let batch: Vec<NewMessage> = (0..10).map(|i| user_message("alice", &format!("m{}", chunk * 10 + i))).collect();
        posted.extend(app.rest.post_messages("c", &batch).await.unwrap().into_iter().map(|c| c.id));
    }
    posted.reverse();
    let default_page = app.rest.messages("c", &PageQuery::default()).await.unwrap().data;
    assert_eq!(default_page.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), posted[..30]);
    let mut paged: Vec<String> = Vec::new();
    for _ in 0..20 {
        let data = app.rest.messages("c", &page(Some("7"), paged.last().map(String::as_str))).await.unwrap().data;
        assert!(data.len() <= 7);
        if data.is_empty() {
            break;
        }
        paged.extend(data.into_iter().map(|m| m.id));
    }
    assert_eq!(paged, posted, "every message exactly once, newest first");
    for limit in ["0", "101", "x", "1.5", ""] {
        expect_api_error(app.rest.messages("c", &page(Some(limit), None)).await, 400, "invalid_request");
    }
    assert_eq!(app.rest.messages("c", &page(Some("100"), None)).await.unwrap().data.len(), 40);
    expect_api_error(app.rest.messages("c", &page(None, Some("msg_nope"))).await, 400, "invalid_request");
}

#[tokio::test]
async fn idempotency_key_outside_1_to_255_bytes_is_invalid_request_sg_id_6() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    for key in [String::new(), "k".repeat(256)] {
        let msg = NewMessage::UserMessage {
            sender: "alice".into(),
            text: "x".into(),
            custom: None,
            idempotency_key: Some(key),
        };
        expect_api_error(app.rest.post_messages("c", &[msg]).await, 400, "invalid_request");
    }
    assert!(app.history("c").await.is_empty());
    let ok = NewMessage::UserMessage {
        sender: "alice".into(),
        text: "x".into(),
        custom: None,
        idempotency_key: Some("k".repeat(255)),
    };
    app.rest.post_messages("c", &[ok]).await.expect("a 255-byte key is fine");
}

#[tokio::test]
async fn invalid_webhook_url_is_refused_and_keeps_the_old_registration_sg_hook_1_2() {
    let app = spawn_app().await;
    let mut hooks = Hooks::start().await;
    app.register_webhook(&hooks.url).await;
    for url in ["not a url", "ftp://127.0.0.1/x", "/relative/path", "http://", "127.0.0.1:9/hook"] {
        let reg = WebhookRegistration { url: url.into(), events: None };
        expect_api_error(app.rest.put_webhook(&reg).await, 400, "invalid_webhook_url");
    }
    app.conversation("c", &["alice"]).await;
    let id = app.post("c", "alice", "still registered").await;
    hooks.message_sent(&id).await;
}

#[tokio::test]
async fn json_body_is_accepted_whatever_its_content_type_sg_rest_9() {
    let app = spawn_app().await;
    let resp = reqwest::Client::new()
        .put(app.rest.url("/users/plain"))
        .bearer_auth(SECRET)
        .header("content-type", "text/plain")
        .body(r#"{"name":"Plain"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(app.rest.get_user("plain").await.unwrap().name.as_deref(), Some("Plain"));
}

#[tokio::test]
async fn errors_follow_the_validation_order_sg_rest_11() {
    let app = spawn_app_with(config_with_limits(Some(1), None)).await;
    app.conversation("full", &["alice"]).await;
    let raw = |method: Method, path: &str, body: &str, secret: &str| {
        let rest = app.rest.clone();
        let (path, body, secret) = (path.to_string(), body.to_string(), secret.to_string());
        async move { rest.raw(method, &path, Some(body), Some(&secret)).await.unwrap() }
    };
    // auth before path ids and body.
    expect_raw_error(raw(Method::PUT, "/users/a%2Fb", "{", "sk_wrong").await, 401, "unauthorized");
    // path ids before body.
    expect_raw_error(raw(Method::PUT, "/users/a%2Fb", "{", SECRET).await, 400, "invalid_id");
    // body before existence.
    expect_raw_error(raw(Method::POST, "/conversations/ghost/messages", "nope", SECRET).await, 400, "invalid_json");
    let eleven = serde_json::to_string(&vec![user_message("alice", "x"); 11]).unwrap();
    expect_raw_error(
        raw(Method::POST, "/conversations/ghost/messages", &eleven, SECRET).await,
        400,
        "too_many_messages",
    );
    // existence before field rules.
    let long = serde_json::to_string(&[user_message("nobody", &"x".repeat(20_001))]).unwrap();
    expect_raw_error(
        raw(Method::POST, "/conversations/ghost/messages", &long, SECRET).await,
        404,
        "conversation_not_found",
    );
    // field rules before limits.
    let body = r#"{"participants":["bob"],"custom":{"":"empty key"}}"#;
    expect_raw_error(raw(Method::PUT, "/conversations/full", body, SECRET).await, 400, "invalid_custom");
    expect_raw_error(
        raw(Method::PUT, "/conversations/full", r#"{"participants":["bob"]}"#, SECRET).await,
        409,
        "participant_limit_reached",
    );
    // Within field rules, items in order: the first failing item's error.
    let batch =
        serde_json::to_string(&[user_message("nobody", "x"), user_message("alice", &"x".repeat(20_001))]).unwrap();
    expect_raw_error(
        raw(Method::POST, "/conversations/full/messages", &batch, SECRET).await,
        400,
        "sender_not_participant",
    );
}

#[tokio::test]
async fn reopen_answers_the_held_role_and_close_always_answers_closed_sg_rt_16_17() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut guest = app.guest("g", "c").await;
    let reopened = guest.open("c", supergroup_protocol::frames::Ui::Popup, true, WAIT).await.unwrap();
    expect_opened(&reopened, supergroup_protocol::frames::Role::Guest);
    // close of something not open, or not existing, answers closed.
    for conv in ["never-opened", "c", "c"] {
        let closed = guest.close_conversation(conv, WAIT).await.unwrap();
        assert!(
            matches!(closed, ServerFrame::Closed { ref conversation_id, .. } if conversation_id == conv),
            "{closed:?}"
        );
    }
    // After close nothing of the conversation arrives; a second guest is the positive control.
    let mut watcher = app.guest("w", "c").await;
    let id = app.post("c", "alice", "after close").await;
    assert_eq!(next_message(&mut watcher).await.id, id);
    let leaked = quiet_collect(&mut guest, |f| matches!(f, ServerFrame::Message { .. })).await;
    assert!(leaked.is_empty(), "received after close: {leaked:?}");
}
