//! Webhooks to a real HTTP receiver (SG-HOOK-5..11) and notifications
//! (SG-NOTIFY-1..8, SG-GUEST-1). `Config::for_tests()` has a 200 ms
//! notification window; the grouping tests widen it to 1 s so that two
//! sequential REST posts surely fall inside one window.

use crate::helpers::*;
use std::time::Instant;
use supergroup_protocol::frames::ServerFrame;
use supergroup_protocol::rest::{NewMessage, Notify, ParticipantUpsert, WebhookRegistration};
use supergroup_server::Config;

async fn app_with_hooks(config: Config) -> (TestApp, Hooks) {
    let app = spawn_app_with(config).await;
    let hooks = Hooks::start().await;
    app.register_webhook(&hooks.url).await;
    (app, hooks)
}

fn wide_window() -> Config {
    let mut config = Config::for_tests();
    config.notification_delay_ms = 1000;
    config
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn message_sent_carries_message_conversation_sender_role_and_a_valid_signature_sg_hook_6_7_10_11() {
    let (app, mut hooks) = app_with_hooks(Config::for_tests()).await;
    app.conversation("c", &["alice"]).await;
    let by_participant = app.post("c", "alice", "from alice").await;
    let mut guest = app.guest("g", "c").await;
    let ServerFrame::Ack { message_id: by_guest, .. } = guest.send_message("c", "from g", None, WAIT).await.unwrap()
    else {
        panic!("guest send")
    };
    let system = app.rest.post_messages("c", &[NewMessage::SystemMessage { text: "sys".into(), custom: None }]).await;
    let system = system.unwrap()[0].id.clone();
    let history = app.history("c").await;
    for (id, sender) in [
        (&by_participant, serde_json::json!({"id": "alice", "role": "participant"})),
        (&by_guest, serde_json::json!({"id": "g", "role": "guest"})),
        (&system, serde_json::Value::Null),
    ] {
        let d = hooks.message_sent(id).await;
        assert!(d.signed_by_app(), "signature of {id} does not verify: {d:?}");
        assert!(d.content_type.starts_with("application/json"), "content-type {:?}", d.content_type);
        let ts: i64 = d.timestamp.parse().expect("timestamp is decimal seconds");
        assert!((ts - now_secs()).abs() <= 60, "timestamp {ts} is not Unix seconds of now");
        assert!(d.json["createdAt"].as_i64().is_some_and(|ms| (ms / 1000 - now_secs()).abs() <= 60));
        assert_eq!(d.json["data"]["conversation"], serde_json::json!({"id": "c"}));
        assert_eq!(d.json["data"]["sender"], sender, "sender of {id}");
        let stored = history.iter().find(|m| &m.id == id).unwrap();
        assert_eq!(
            d.json["data"]["message"],
            serde_json::to_value(stored).unwrap(),
            "data.message is the full message"
        );
        // A tampered body or another secret does not verify.
        assert!(!supergroup_protocol::webhook::verify("sk_other", &d.timestamp, &d.body, &d.signature));
        let mut tampered = d.body.to_vec();
        tampered.push(b' ');
        assert!(!supergroup_protocol::webhook::verify(SECRET, &d.timestamp, &tampered, &d.signature));
    }
}

#[tokio::test]
async fn messages_inside_the_window_are_grouped_into_one_event_oldest_first_sg_notify_1_5_8() {
    let (app, mut hooks) = app_with_hooks(wide_window()).await;
    app.conversation("c", &["alice", "bob"]).await;
    let started = Instant::now();
    let first = app.post("c", "alice", "one").await;
    let second = app.post("c", "alice", "two").await;
    let event = hooks.notification_for("bob").await;
    assert!(started.elapsed().as_millis() >= 900, "the event came before the 1 s window closed");
    assert!(event.signed_by_app());
    assert_eq!(event.json["data"]["conversation"], serde_json::json!({"id": "c"}));
    assert_eq!(event.json["data"]["recipient"], serde_json::json!({"id": "bob"}));
    assert_eq!(event.message_ids(), [first.clone(), second.clone()], "one event, oldest first");
    let history = app.history("c").await;
    let full: Vec<serde_json::Value> = history.iter().rev().map(|m| serde_json::to_value(m).unwrap()).collect();
    assert_eq!(event.json["data"]["messages"], serde_json::Value::Array(full), "messages in full shape");
    let more = hooks.quiet_notifications_for("bob").await;
    assert!(more.is_empty(), "a second event for the same window: {more:?}");
    // The sender is never notified of their own messages.
    assert!(hooks.quiet_notifications_for("alice").await.is_empty());
}

#[tokio::test]
async fn guest_is_never_notified_while_a_participant_is_sg_guest_1_sg_notify_7() {
    let (app, mut hooks) = app_with_hooks(Config::for_tests()).await;
    app.conversation("c", &["alice", "bob"]).await;
    // g has it open as guest; h was a guest and left.
    let mut g = app.guest("g", "c").await;
    let mut h = app.guest("h", "c").await;
    h.close_conversation("c", WAIT).await.unwrap();
    let from_alice = app.post("c", "alice", "hello everyone").await;
    // A guest-written message notifies participants (SG-NOTIFY-7).
    let ServerFrame::Ack { message_id: from_guest, .. } = g.send_message("c", "hi @alice", None, WAIT).await.unwrap()
    else {
        panic!("guest send")
    };
    let mut bob_got = hooks.notification_for("bob").await.message_ids();
    let alice_got = hooks.notification_for("alice").await.message_ids();
    for more in hooks.quiet_notifications_for("bob").await {
        bob_got.extend(more.message_ids());
    }
    assert_eq!(bob_got, [from_alice, from_guest.clone()]);
    assert_eq!(alice_got, [from_guest]);
    for guest in ["g", "h"] {
        let wrong = hooks.quiet_notifications_for(guest).await;
        assert!(wrong.is_empty(), "guest {guest} was notified: {wrong:?}");
    }
}

#[tokio::test]
async fn participant_with_the_conversation_open_is_not_notified_sg_notify_3() {
    let (app, mut hooks) = app_with_hooks(Config::for_tests()).await;
    app.conversation("c", &["alice", "bob", "carol"]).await;
    let mut carol = app.participant("carol", "c").await;
    let id = app.post("c", "alice", "hi both").await;
    assert_eq!(next_message(&mut carol).await.id, id);
    assert_eq!(hooks.notification_for("bob").await.message_ids(), [id]);
    let wrong = hooks.quiet_notifications_for("carol").await;
    assert!(wrong.is_empty(), "carol had it open and was notified: {wrong:?}");
}

#[tokio::test]
async fn participant_who_opens_before_the_window_closes_gets_no_event_sg_notify_4() {
    let (app, mut hooks) = app_with_hooks(wide_window()).await;
    app.conversation("c", &["alice", "bob", "carol"]).await;
    let id = app.post("c", "alice", "are you there?").await;
    // carol opens within the 1 s window; bob stays away (positive control).
    let _carol = app.participant("carol", "c").await;
    assert_eq!(hooks.notification_for("bob").await.message_ids(), [id]);
    let wrong = hooks.quiet_notifications_for("carol").await;
    assert!(wrong.is_empty(), "carol opened before the window closed: {wrong:?}");
}

#[tokio::test]
async fn system_message_never_notifies_sg_notify_6() {
    let (app, mut hooks) = app_with_hooks(wide_window()).await;
    app.conversation("c", &["alice", "bob"]).await;
    app.rest.post_messages("c", &[NewMessage::SystemMessage { text: "sys".into(), custom: None }]).await.unwrap();
    let user = app.post("c", "alice", "user message").await;
    let event = hooks.notification_for("bob").await;
    assert_eq!(event.message_ids(), [user], "the system message must not be in the event");
    assert!(hooks.quiet_notifications_for("bob").await.is_empty());
}

#[tokio::test]
async fn mentions_only_is_notified_only_of_mentions_sg_notify_2() {
    let (app, mut hooks) = app_with_hooks(wide_window()).await;
    app.conversation("c", &["alice", "bob", "carol"]).await;
    let mentions = ParticipantUpsert { access: None, notify: Some(Notify::MentionsOnly) };
    app.rest.patch_participant("c", "bob", &mentions).await.unwrap();
    let off = ParticipantUpsert { access: None, notify: Some(Notify::Off) };
    app.rest.patch_participant("c", "carol", &off).await.unwrap();
    app.post("c", "alice", "hello all, not bob").await;
    app.post("c", "alice", "hi @Bob (other case)").await;
    let mention = app.post("c", "alice", "hey @bob and @carol").await;
    let event = hooks.notification_for("bob").await;
    assert_eq!(event.message_ids(), [mention]);
    assert!(hooks.quiet_notifications_for("bob").await.is_empty());
    assert!(hooks.quiet_notifications_for("carol").await.is_empty(), "notify false was notified");
}

#[tokio::test]
async fn failed_delivery_is_retried_once_with_the_same_body_sg_hook_8() {
    let (app, mut hooks) = app_with_hooks(Config::for_tests()).await;
    let only_sent = WebhookRegistration { url: hooks.url.clone(), events: Some(vec!["message.sent".into()]) };
    app.rest.put_webhook(&only_sent).await.unwrap();
    app.conversation("c", &["alice"]).await;
    hooks.fail_next(1);
    let id = app.post("c", "alice", "retry me").await;
    let first = hooks.message_sent(&id).await;
    let started = Instant::now();
    let retry = hooks.message_sent(&id).await;
    assert!(started.elapsed().as_millis() >= 500, "the retry came {:?} after the failure", started.elapsed());
    assert_eq!(retry.body, first.body, "the retry body is byte-identical");
    assert!(retry.signed_by_app());
    // Exactly once: a successful retry is not repeated.
    let third = hooks.collect_for(std::time::Duration::from_millis(1500), |d| d.kind() == "message.sent").await;
    assert!(third.is_empty(), "more than one retry: {third:?}");
}

#[tokio::test]
async fn events_filter_and_delete_stop_deliveries_sg_hook_4_5() {
    let (app, mut hooks) = app_with_hooks(Config::for_tests()).await;
    app.conversation("c", &["alice", "bob"]).await;
    let only_notify =
        WebhookRegistration { url: hooks.url.clone(), events: Some(vec!["notification.triggered".into()]) };
    app.rest.put_webhook(&only_notify).await.unwrap();
    let id = app.post("c", "alice", "filtered").await;
    assert_eq!(hooks.notification_for("bob").await.message_ids(), [id]);
    let sent = hooks.collect_for(QUIET, |d| d.kind() == "message.sent").await;
    assert!(sent.is_empty(), "message.sent delivered although not subscribed: {sent:?}");
    app.rest.delete_webhook().await.unwrap();
    app.rest.delete_webhook().await.expect("DELETE when none is registered is 200");
    let unregistered = app.post("c", "alice", "after delete").await;
    // Positive control: register again; the next message arrives, the one sent while unregistered never does.
    app.register_webhook(&hooks.url).await;
    let control = app.post("c", "alice", "registered again").await;
    hooks.message_sent(&control).await;
    let after = hooks.collect_for(QUIET, |d| d.json["data"]["message"]["id"] == unregistered).await;
    assert!(after.is_empty(), "delivered after DELETE: {after:?}");
}
