//! Edges between rules: null refs, frames on unknown conversations, promoted
//! guests (SG-GUEST-17 with typing, notifications and webhook roles), unread
//! state from the moment of joining, joins by conversation PUT, unusual but
//! valid ids end to end.

use crate::helpers::*;
use supergroup_protocol::frames::{ClientFrame, Role, ServerFrame, Ui};
use supergroup_protocol::rest::{ConversationUpsert, PageQuery};

#[tokio::test]
async fn null_ref_is_no_ref_and_frames_on_unknown_conversations_are_conversation_not_found_sg_rt_7_8_10() {
    let app = spawn_app().await;
    let mut rt = app.connect("alice").await;
    rt.send_text(r#"{"type":"close","ref":null,"conversationId":"x"}"#.into()).await.unwrap();
    let closed = rt.wait_for("closed", WAIT, |f| matches!(f, ServerFrame::Closed { .. })).await.unwrap();
    assert_eq!(closed, ServerFrame::Closed { reference: None, conversation_id: "x".into() });
    for frame in [
        r#"{"type":"typing","ref":"t","conversationId":"ghost","isTyping":true}"#,
        r#"{"type":"read","ref":"r","conversationId":"ghost"}"#,
        r#"{"type":"send","ref":"s","conversationId":"ghost","text":"x"}"#,
        r#"{"type":"open","ref":"o","conversationId":"ghost","asGuest":true}"#,
    ] {
        rt.send_text(frame.into()).await.unwrap();
        let reply = rt.wait_for("an error", WAIT, |f| matches!(f, ServerFrame::Error { .. })).await.unwrap();
        expect_error(&reply, "conversation_not_found");
        assert!(reply.reference().is_some(), "ref echoed on {frame}: {reply:?}");
    }
}

#[tokio::test]
async fn promoted_guest_types_as_guest_on_the_guest_open_and_is_reported_as_participant_sg_guest_17_sg_hook_11() {
    let app = spawn_app().await;
    let mut hooks = Hooks::start().await;
    app.register_webhook(&hooks.url).await;
    app.conversation("c", &["alice"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut g = app.guest("g", "c").await;
    app.add_participant("c", "g", Default::default()).await;
    alice
        .wait_for("joined g", WAIT, |f| matches!(f, ServerFrame::ParticipantJoined { user_id, .. } if user_id == "g"))
        .await
        .unwrap();
    // Typing on the guest open is a guest's: nobody sees it. Alice's typing is the control.
    g.send(&ClientFrame::Typing { reference: None, conversation_id: "c".into(), is_typing: true }).await.unwrap();
    barrier(&mut g).await;
    alice.send(&ClientFrame::Typing { reference: None, conversation_id: "c".into(), is_typing: true }).await.unwrap();
    g.wait_for("alice typing", WAIT, |f| matches!(f, ServerFrame::Typing { .. })).await.unwrap();
    let seen = quiet_collect(&mut alice, |f| matches!(f, ServerFrame::Typing { user_id, .. } if user_id == "g")).await;
    assert!(seen.is_empty(), "typing on a guest open was shown: {seen:?}");
    // The message.sent role is decided by membership at send time: participant.
    let ServerFrame::Ack { message_id, .. } = g.send_message("c", "promoted", None, WAIT).await.unwrap() else {
        panic!("send")
    };
    let d = hooks.message_sent(&message_id).await;
    assert_eq!(d.json["data"]["sender"], serde_json::json!({"id": "g", "role": "participant"}));
}

#[tokio::test]
async fn participant_holding_it_open_as_guest_is_not_notified_sg_notify_3() {
    let app = spawn_app().await;
    let mut hooks = Hooks::start().await;
    app.register_webhook(&hooks.url).await;
    app.conversation("c", &["alice", "bob"]).await;
    let _g = app.guest("g", "c").await;
    app.add_participant("c", "g", Default::default()).await;
    let id = app.post("c", "alice", "who is away?").await;
    assert_eq!(hooks.notification_for("bob").await.message_ids(), [id]);
    let wrong = hooks.quiet_notifications_for("g").await;
    assert!(wrong.is_empty(), "g has it open (as guest) and was notified: {wrong:?}");
}

#[tokio::test]
async fn unread_counts_only_messages_after_joining_sg_list_4() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    app.post("c", "alice", "before bob").await;
    app.post("c", "alice", "also before bob").await;
    app.add_participant("c", "bob", Default::default()).await;
    let entry = &app.rest.user_conversations("bob", &PageQuery::default()).await.unwrap().data[0];
    assert_eq!((entry.unread_count, entry.is_unread), (0, false));
    app.post("c", "alice", "after bob").await;
    let entry = &app.rest.user_conversations("bob", &PageQuery::default()).await.unwrap().data[0];
    assert_eq!((entry.unread_count, entry.is_unread), (1, true));
}

#[tokio::test]
async fn conversation_put_listing_a_new_member_sends_joined_sg_part_10() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut guest = app.guest("g", "c").await;
    let body = ConversationUpsert { participants: Some(vec!["alice".into(), "bob".into()]), ..Default::default() };
    app.rest.put_conversation("c", &body).await.unwrap();
    for rt in [&mut alice, &mut guest] {
        let f = rt.wait_for("joined", WAIT, |f| matches!(f, ServerFrame::ParticipantJoined { .. })).await.unwrap();
        assert_eq!(f, ServerFrame::ParticipantJoined { conversation_id: "c".into(), user_id: "bob".into() });
    }
    let extra = quiet_collect(&mut alice, |f| matches!(f, ServerFrame::ParticipantJoined { .. })).await;
    assert!(extra.is_empty(), "alice, already a member, was announced again: {extra:?}");
}

#[tokio::test]
async fn unusual_valid_ids_work_end_to_end_sg_id_1_3() {
    let app = spawn_app().await;
    let conv = "lobby ü #1?&=+";
    let user = "Zoë Smith@example.com";
    app.conversation(conv, &[user]).await;
    assert_eq!(app.rest.get_conversation(conv).await.unwrap().id, conv);
    let mut rt = app.connect(user).await;
    expect_opened(&rt.open(conv, Ui::Inbox, false, WAIT).await.unwrap(), Role::Participant);
    let ServerFrame::Ack { message_id, .. } = rt.send_message(conv, "hi", None, WAIT).await.unwrap() else {
        panic!("send")
    };
    let history = app.history(conv).await;
    assert_eq!((history[0].id.as_str(), history[0].sender_id.as_deref()), (message_id.as_str(), Some(user)));
    let listed = app.rest.user_conversations(user, &PageQuery::default()).await.unwrap().data;
    assert_eq!(listed[0].conversation.id, conv);
    expect_api_error(app.rest.user_conversations("nobody", &PageQuery::default()).await, 404, "user_not_found");
}

#[tokio::test]
async fn starting_after_a_message_of_another_conversation_is_invalid_request_sg_msg_14() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    app.conversation("d", &["alice"]).await;
    app.post("c", "alice", "in c").await;
    let foreign = app.post("d", "alice", "in d").await;
    let query = PageQuery { limit: None, starting_after: Some(foreign) };
    expect_api_error(app.rest.messages("c", &query).await, 400, "invalid_request");
}
