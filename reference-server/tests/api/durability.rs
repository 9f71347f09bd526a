//! Durability (SG-RT-21 and the server's restart promise): with a database
//! file, everything acknowledged survives a stop and a start of a new server
//! on the same file: users, conversations, participants with their settings,
//! messages (REST and realtime, guests' included), idempotency keys and the
//! webhook registration. Guest presence does not survive (SG-GUEST-9).

use crate::helpers::*;
use supergroup_protocol::frames::{Role, ServerFrame, Ui};
use supergroup_protocol::rest::{Access, ConversationUpsert, NewMessage, Notify, ParticipantUpsert, UserUpsert};
use supergroup_server::Config;

fn file_config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config::for_tests();
    config.db = dir.path().join("supergroup.db").to_string_lossy().into_owned();
    config
}

#[tokio::test]
async fn a_restart_on_the_same_file_keeps_everything_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut hooks = Hooks::start().await;

    let app = spawn_app_with(file_config(&dir)).await;
    app.register_webhook(&hooks.url).await;
    let user = UserUpsert { name: Some("Alice".into()), role: Some("host".into()), ..Default::default() };
    app.rest.put_user("alice", &user).await.unwrap();
    let conv = ConversationUpsert {
        subject: Some("Lobby".into()),
        participants: Some(vec!["alice".into()]),
        custom: Some([("event".to_string(), "launch".to_string())].into_iter().collect()),
        guest_access: Some(true),
    };
    app.rest.put_conversation("lobby", &conv).await.unwrap();
    let bob = ParticipantUpsert { access: Some(Access::Read), notify: Some(Notify::MentionsOnly) };
    app.rest.put_participant("lobby", "bob", &bob).await.unwrap();
    let keyed = NewMessage::UserMessage {
        sender: "alice".into(),
        text: "welcome".into(),
        custom: None,
        idempotency_key: Some("k1".into()),
    };
    let rest_id = app.rest.post_messages("lobby", std::slice::from_ref(&keyed)).await.unwrap()[0].id.clone();
    let mut guest = app.guest("g", "lobby").await;
    let ServerFrame::Ack { message_id: guest_id, .. } = guest.send_message("lobby", "hi", None, WAIT).await.unwrap()
    else {
        panic!("guest send")
    };
    let before_conv = app.rest.get_conversation("lobby").await.unwrap();
    let before_user = app.rest.get_user("alice").await.unwrap();
    let before_history = app.history("lobby").await;
    assert_eq!(before_history.len(), 2);
    app.stop().await;

    let app = spawn_app_with(file_config(&dir)).await;
    assert_eq!(app.rest.get_user("alice").await.unwrap(), before_user);
    app.rest.get_user("g").await.expect("the guest's user (created on connect) stays");
    assert_eq!(app.rest.get_conversation("lobby").await.unwrap(), before_conv);
    let history = app.history("lobby").await;
    assert_eq!(history, before_history);
    assert_eq!(history.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [guest_id.as_str(), rest_id.as_str()]);
    // The idempotency key survives: a replay returns the original id and stores nothing.
    assert_eq!(app.rest.post_messages("lobby", &[keyed]).await.unwrap()[0].id, rest_id);
    assert_eq!(app.history("lobby").await.len(), 2);
    // Guest presence did not survive: g is still no participant.
    let mut g = app.connect("g").await;
    expect_error(&g.open("lobby", Ui::Chatbox, false, WAIT).await.unwrap(), "not_a_participant");
    expect_opened(&g.open("lobby", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
    // The webhook registration survives: a new message is delivered to the receiver.
    let after = app.post("lobby", "alice", "after restart").await;
    let delivery = hooks.message_sent(&after).await;
    assert!(delivery.signed_by_app());
}
