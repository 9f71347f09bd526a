//! Idempotency keys (SG-MSG-9, SG-MSG-10): a key is scoped to the
//! conversation and shared by REST and realtime; a replay returns the
//! original id and stores, broadcasts and notifies nothing.

use crate::helpers::*;
use supergroup_protocol::client::Realtime;
use supergroup_protocol::frames::ServerFrame;
use supergroup_protocol::rest::NewMessage;

fn keyed(sender: &str, text: &str, key: &str) -> NewMessage {
    NewMessage::UserMessage {
        sender: sender.into(),
        text: text.into(),
        custom: None,
        idempotency_key: Some(key.into()),
    }
}

async fn ack_id(rt: &mut Realtime, conv: &str, text: &str, key: &str) -> (String, i64) {
    match rt.send_message(conv, text, Some(key), WAIT).await.unwrap() {
        ServerFrame::Ack { message_id, created_at, .. } => (message_id, created_at),
        other => panic!("expected ack, got {other:?}"),
    }
}

/// Asserts that after `control` (a fresh message) the watcher saw only
/// `first` and `control`, the receiver got one `message.sent` per message,
/// and bob, away, is notified of `first` exactly once.
async fn assert_one_effect(app: &TestApp, watcher: &mut Realtime, hooks: &mut Hooks, first: &str) {
    let control = app.post("c", "alice", "control").await;
    assert_eq!(next_message(watcher).await.id, first);
    assert_eq!(next_message(watcher).await.id, control, "a replay was broadcast");
    hooks.message_sent(first).await;
    hooks.message_sent(&control).await;
    let again =
        hooks.collect_for(QUIET, |d| d.kind() == "message.sent" && d.json["data"]["message"]["id"] == first).await;
    assert!(again.is_empty(), "a replay produced message.sent: {again:?}");
    let history: Vec<String> = app.history("c").await.into_iter().map(|m| m.id).collect();
    assert_eq!(history, [control.clone(), first.to_string()]);
    let mut notified: Vec<String> = Vec::new();
    let n = hooks.notification_for("bob").await;
    notified.extend(n.message_ids());
    for more in hooks.quiet_notifications_for("bob").await {
        notified.extend(more.message_ids());
    }
    assert_eq!(notified.iter().filter(|id| *id == first).count(), 1, "bob notified of {notified:?}");
}

async fn setup() -> (TestApp, Realtime, Hooks) {
    let app = spawn_app().await;
    let hooks = Hooks::start().await;
    app.register_webhook(&hooks.url).await;
    app.conversation("c", &["alice", "bob"]).await;
    let watcher = app.guest("watcher", "c").await;
    (app, watcher, hooks)
}

#[tokio::test]
async fn key_used_over_rest_then_replayed_over_rest_and_realtime_returns_the_original_sg_msg_9_10() {
    let (app, mut watcher, mut hooks) = setup().await;
    let first = app.rest.post_messages("c", &[keyed("alice", "once", "k1")]).await.unwrap()[0].id.clone();
    let replay = app.rest.post_messages("c", &[keyed("alice", "different text", "k1")]).await.unwrap();
    assert_eq!(replay[0].id, first);
    let mut alice = app.participant("alice", "c").await;
    let (id, created_at) = ack_id(&mut alice, "c", "again", "k1").await;
    assert_eq!(id, first);
    let stored = app.history("c").await;
    assert_eq!((stored[0].created_at, stored[0].text.as_str()), (created_at, "once"));
    alice.disconnect().await;
    assert_one_effect(&app, &mut watcher, &mut hooks, &first).await;
}

#[tokio::test]
async fn key_used_over_realtime_then_replayed_over_rest_returns_the_original_sg_msg_9_10() {
    let (app, mut watcher, mut hooks) = setup().await;
    let mut alice = app.participant("alice", "c").await;
    let (first, _) = ack_id(&mut alice, "c", "once", "k2").await;
    let (again, _) = ack_id(&mut alice, "c", "twice", "k2").await;
    assert_eq!(again, first);
    // Within one batch, a repeated key is a replay of the earlier item.
    let batch = [keyed("alice", "x", "k2"), keyed("alice", "y", "k3"), keyed("alice", "z", "k3")];
    let ids = app.rest.post_messages("c", &batch).await.unwrap();
    assert_eq!(ids[0].id, first);
    assert_eq!(ids[1].id, ids[2].id);
    // The sender saw its message once, too.
    assert_eq!(next_message(&mut alice).await.id, first);
    alice.disconnect().await;
    let second = ids[1].id.clone();
    let control = app.post("c", "alice", "control").await;
    for want in [&first, &second, &control] {
        assert_eq!(&next_message(&mut watcher).await.id, want);
    }
    assert_eq!(app.history("c").await.len(), 3);
    for id in [&first, &second, &control] {
        hooks.message_sent(id).await;
    }
    let extra = hooks.collect_for(QUIET, |d| d.kind() == "message.sent").await;
    assert!(extra.is_empty(), "replays produced message.sent: {extra:?}");
}

#[tokio::test]
async fn same_key_in_another_conversation_stores_a_new_message_sg_msg_9() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    app.conversation("d", &["alice"]).await;
    let a = app.rest.post_messages("c", &[keyed("alice", "one", "k")]).await.unwrap()[0].id.clone();
    let b = app.rest.post_messages("d", &[keyed("alice", "one", "k")]).await.unwrap()[0].id.clone();
    assert_ne!(a, b);
    assert_eq!(app.history("d").await[0].id, b);
}
