//! The guest rules (SPEC.md section 11, SG-GUEST-1..18). Rules 1, 3 and 5
//! have their main tests next to notifications (`webhooks.rs`), typing
//! (`typing.rs`) and user conversations (`user_conversations.rs`).

use crate::helpers::*;
use supergroup_protocol::frames::{ClientFrame, Role, ServerFrame, Ui};
use supergroup_protocol::rest::{ConversationUpsert, PageQuery};

fn is_member_event_of(user: &str) -> impl Fn(&ServerFrame) -> bool + '_ {
    move |f| match f {
        ServerFrame::ParticipantJoined { user_id, .. } | ServerFrame::ParticipantLeft { user_id, .. } => {
            user_id == user
        }
        _ => false,
    }
}

#[tokio::test]
async fn guests_do_not_count_toward_participant_limit_sg_guest_2() {
    let app = spawn_app_with(config_with_limits(Some(3), None)).await;
    app.conversation("c", &["p1"]).await;
    let mut guests = Vec::new();
    for i in 0..5 {
        guests.push(app.guest(&format!("g{i}"), "c").await);
    }
    app.add_participant("c", "p2", Default::default()).await;
    app.add_participant("c", "p3", Default::default()).await;
    let refused = app.rest.put_participant("c", "p4", &Default::default()).await;
    expect_api_error(refused, 409, "participant_limit_reached");
    assert_eq!(app.rest.get_conversation("c").await.unwrap().participants.len(), 3);
}

#[tokio::test]
async fn read_from_a_guest_is_a_silent_no_op_sg_guest_4() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut guest = app.guest("g", "c").await;
    app.post("c", "alice", "hello").await;
    next_message(&mut guest).await;
    guest.send(&ClientFrame::Read { reference: None, conversation_id: "c".into() }).await.unwrap();
    barrier(&mut guest).await;
    // Nothing came back for the read (the barrier's reply is the only frame).
    let extra = quiet_collect(&mut guest, |_| true).await;
    assert!(extra.is_empty(), "read from a guest got a reply: {extra:?}");
    // No inbox state appeared.
    assert!(app.rest.user_conversations("g", &PageQuery::default()).await.unwrap().data.is_empty());
}

#[tokio::test]
async fn guest_only_in_chatbox_or_popup_never_inbox_sg_guest_6() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut rt = app.connect("g").await;
    expect_error(&rt.open("c", Ui::Inbox, true, WAIT).await.unwrap(), "guest_inbox_not_allowed");
    expect_opened(&rt.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
    let mut other = app.connect("h").await;
    expect_opened(&other.open("c", Ui::Popup, true, WAIT).await.unwrap(), Role::Guest);
    // The refused inbox open had no effect: a send on a connection that only tried inbox is not_open.
    let mut refused = app.connect("k").await;
    expect_error(&refused.open("c", Ui::Inbox, true, WAIT).await.unwrap(), "guest_inbox_not_allowed");
    expect_error(&refused.send_message("c", "x", None, WAIT).await.unwrap(), "not_open");
}

#[tokio::test]
async fn guests_are_not_in_member_list_or_member_events_sg_guest_7() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut guest = app.connect("g").await;
    let members = expect_opened(&guest.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
    assert_eq!(members, ["alice"], "opened.participants of the guest");
    let second = app.guest("h", "c").await;
    assert_eq!(app.rest.get_conversation("c").await.unwrap().participants.keys().collect::<Vec<_>>(), ["alice"]);
    // A participant opening afterwards does not see guests either.
    app.add_participant("c", "bob", Default::default()).await;
    let mut bob = app.connect("bob").await;
    let mut members = expect_opened(&bob.open("c", Ui::Chatbox, false, WAIT).await.unwrap(), Role::Participant);
    members.sort();
    assert_eq!(members, ["alice", "bob"]);
    guest.close_conversation("c", WAIT).await.unwrap();
    second.disconnect().await;
    // Positive control: a real member change reaches alice; nothing about the guests came before it.
    app.add_participant("c", "carol", Default::default()).await;
    alice
        .wait_for(
            "joined carol",
            WAIT,
            |f| matches!(f, ServerFrame::ParticipantJoined { user_id, .. } if user_id == "carol"),
        )
        .await
        .unwrap();
    for user in ["g", "h"] {
        let events = quiet_collect(&mut alice, is_member_event_of(user)).await;
        assert!(events.is_empty(), "member events about guest {user}: {events:?}");
    }
}

#[tokio::test]
async fn guest_messages_remain_after_the_guest_leaves_sg_guest_8() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut guest = app.guest("g", "c").await;
    let ack = guest.send_message("c", "I was here", None, WAIT).await.unwrap();
    let ServerFrame::Ack { message_id, .. } = ack else { panic!("{ack:?}") };
    guest.disconnect().await;
    let mut other = app.guest("h", "c").await;
    let ack = other.send_message("c", "me too", None, WAIT).await.unwrap();
    let ServerFrame::Ack { message_id: second, .. } = ack else { panic!("{ack:?}") };
    other.close_conversation("c", WAIT).await.unwrap();
    let history = app.history("c").await;
    let got: Vec<(&str, Option<&str>)> = history.iter().map(|m| (m.id.as_str(), m.sender_id.as_deref())).collect();
    assert_eq!(got, [(second.as_str(), Some("h")), (message_id.as_str(), Some("g"))]);
    let last = app.rest.get_conversation("c").await.unwrap().last_message.expect("lastMessage");
    assert_eq!((last.id.as_str(), last.sender_id.as_deref()), (second.as_str(), Some("h")));
}

#[tokio::test]
async fn guest_presence_leaves_no_trace_sg_guest_9() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    // Left by close.
    let mut guest = app.guest("g", "c").await;
    guest.close_conversation("c", WAIT).await.unwrap();
    expect_error(&guest.open("c", Ui::Chatbox, false, WAIT).await.unwrap(), "not_a_participant");
    // Left by disconnect.
    let h = app.guest("h", "c").await;
    h.disconnect().await;
    let mut h = app.connect("h").await;
    expect_error(&h.open("c", Ui::Chatbox, false, WAIT).await.unwrap(), "not_a_participant");
    assert!(!app.rest.get_conversation("c").await.unwrap().participants.contains_key("h"));
}

#[tokio::test]
async fn non_participant_without_as_guest_gets_not_a_participant_sg_guest_10() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut rt = app.connect("stranger").await;
    // asGuest defaults to false (SG-RT-14).
    let reference = rt.fresh_ref();
    rt.send_text(format!(r#"{{"type":"open","ref":"{reference}","conversationId":"c"}}"#)).await.unwrap();
    expect_error(&reply_to(&mut rt, &reference).await, "not_a_participant");
    expect_error(&rt.open("c", Ui::Popup, false, WAIT).await.unwrap(), "not_a_participant");
    // Order (SG-RT-15): not_a_participant before guest_inbox_not_allowed.
    expect_error(&rt.open("c", Ui::Inbox, false, WAIT).await.unwrap(), "not_a_participant");
    expect_error(&rt.send_message("c", "x", None, WAIT).await.unwrap(), "not_open");
}

#[tokio::test]
async fn guest_access_disabled_refuses_guests_sg_guest_11() {
    let app = spawn_app().await;
    let body = ConversationUpsert {
        participants: Some(vec!["alice".into()]),
        guest_access: Some(false),
        ..Default::default()
    };
    app.rest.put_conversation("c", &body).await.unwrap();
    let mut rt = app.connect("g").await;
    expect_error(&rt.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_access_disabled");
    // Order (SG-RT-15): inbox is refused first.
    expect_error(&rt.open("c", Ui::Inbox, true, WAIT).await.unwrap(), "guest_inbox_not_allowed");
    expect_error(&rt.send_message("c", "x", None, WAIT).await.unwrap(), "not_open");
    // Turning it on admits guests.
    let on = ConversationUpsert { guest_access: Some(true), ..Default::default() };
    app.rest.put_conversation("c", &on).await.unwrap();
    expect_opened(&rt.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
}

#[tokio::test]
async fn guest_access_turned_off_keeps_guests_already_in_sg_guest_12() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut guest = app.guest("g", "c").await;
    let off = ConversationUpsert { guest_access: Some(false), ..Default::default() };
    app.rest.put_conversation("c", &off).await.unwrap();
    let id = app.post("c", "alice", "still there?").await;
    assert_eq!(next_message(&mut guest).await.id, id);
    assert!(matches!(guest.send_message("c", "yes", None, WAIT).await.unwrap(), ServerFrame::Ack { .. }));
    let mut late = app.connect("late").await;
    expect_error(&late.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_access_disabled");
    assert_eq!(app.history("c").await.len(), 2);
}

#[tokio::test]
async fn guests_may_send_over_realtime_to_everyone_sg_guest_13() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut guest = app.guest("g", "c").await;
    let mut other = app.guest("h", "c").await;
    let ack = guest.send_message("c", "hi from a guest", None, WAIT).await.unwrap();
    let ServerFrame::Ack { message_id, created_at, .. } = ack else { panic!("{ack:?}") };
    for rt in [&mut alice, &mut guest, &mut other] {
        let m = next_message(rt).await;
        assert_eq!((m.id.as_str(), m.sender_id.as_deref(), m.created_at), (message_id.as_str(), Some("g"), created_at));
    }
    let stored = &app.history("c").await[0];
    assert_eq!((stored.id.as_str(), stored.text.as_str()), (message_id.as_str(), "hi from a guest"));
    assert_eq!(stored.origin, supergroup_protocol::rest::Origin::Realtime);
}

#[tokio::test]
async fn guest_cannot_send_over_rest_sg_guest_14() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let _guest = app.guest("g", "c").await;
    let refused = app.rest.post_messages("c", &[user_message("g", "via rest")]).await;
    expect_api_error(refused, 400, "sender_not_participant");
    assert!(app.history("c").await.is_empty());
}

#[tokio::test]
async fn participant_asking_as_guest_stays_participant_in_any_ui_sg_guest_15() {
    let app = spawn_app_with(config_with_limits(None, Some(1))).await;
    let body =
        ConversationUpsert { participants: Some(vec!["alice".into()]), guest_access: Some(true), ..Default::default() };
    app.rest.put_conversation("c", &body).await.unwrap();
    let _full = app.guest("g", "c").await;
    // Guest limit reached and guest access then disabled: the participant is still admitted.
    let off = ConversationUpsert { guest_access: Some(false), ..Default::default() };
    app.rest.put_conversation("c", &off).await.unwrap();
    for ui in [Ui::Chatbox, Ui::Popup, Ui::Inbox] {
        let mut alice = app.connect("alice").await;
        expect_opened(&alice.open("c", ui, true, WAIT).await.unwrap(), Role::Participant);
    }
}

#[tokio::test]
async fn one_connection_participant_here_and_guest_there_sg_guest_16() {
    let app = spawn_app().await;
    app.conversation("mine", &["alice"]).await;
    app.conversation("theirs", &["bob"]).await;
    let mut alice = app.connect("alice").await;
    expect_opened(&alice.open("mine", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Participant);
    expect_opened(&alice.open("theirs", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
    // Re-open answers the held role (SG-RT-16).
    expect_opened(&alice.open("theirs", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
    expect_opened(&alice.open("mine", Ui::Inbox, false, WAIT).await.unwrap(), Role::Participant);
}

#[tokio::test]
async fn guest_made_participant_keeps_guest_open_until_closed_sg_guest_17() {
    let app = spawn_app_with(config_with_limits(None, Some(1))).await;
    app.conversation("c", &["alice"]).await;
    let mut g = app.guest("g", "c").await;
    app.add_participant("c", "g", Default::default()).await;
    // Still a guest on this open: re-open answers guest, and the slot is still held.
    expect_opened(&g.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
    let mut other = app.connect("other").await;
    expect_error(&other.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
    g.close_conversation("c", WAIT).await.unwrap();
    expect_opened(&g.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Participant);
    // The slot was released by the close, and the participant open takes none.
    expect_opened(&other.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
}

#[tokio::test]
async fn removed_participant_can_come_back_as_guest_sg_guest_18() {
    let app = spawn_app().await;
    app.conversation("c", &["alice", "bob"]).await;
    app.rest.delete_participant("c", "bob").await.unwrap();
    let mut bob = app.connect("bob").await;
    expect_error(&bob.open("c", Ui::Chatbox, false, WAIT).await.unwrap(), "not_a_participant");
    expect_opened(&bob.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
}
