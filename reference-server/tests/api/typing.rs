//! Typing (SG-TYPING-1..4) and the guest typing rule (SG-GUEST-3): a
//! participant's typing reaches everyone else with it open, guests included;
//! a guest's typing reaches nobody. The guest types first and proves it was
//! processed with a barrier; the participant's typing is the positive control
//! after which the receivers are checked for the guest's.

use crate::helpers::*;
use supergroup_protocol::client::Realtime;
use supergroup_protocol::frames::{ClientFrame, ServerFrame};
use supergroup_protocol::rest::{Access, ParticipantUpsert};

fn typing(conv: &str, is_typing: bool) -> ClientFrame {
    ClientFrame::Typing { reference: None, conversation_id: conv.into(), is_typing }
}

fn typing_of(user: &str) -> impl FnMut(&ServerFrame) -> bool + '_ {
    move |f| matches!(f, ServerFrame::Typing { user_id, .. } if user_id == user)
}

async fn expect_typing(rt: &mut Realtime, user: &str, is: bool) {
    let what = format!("typing of {user}");
    let frame = rt.wait_for(&what, WAIT, typing_of(user)).await.unwrap();
    assert_eq!(frame, ServerFrame::Typing { conversation_id: "c".into(), user_id: user.into(), is_typing: is });
}

#[tokio::test]
async fn participant_typing_reaches_guests_and_participants_but_guest_typing_reaches_nobody_sg_typing_1_sg_guest_3() {
    let app = spawn_app().await;
    app.conversation("c", &["alice", "bob"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut bob = app.participant("bob", "c").await;
    let mut guest = app.guest("g", "c").await;
    let mut other_guest = app.guest("h", "c").await;

    guest.send(&typing("c", true)).await.unwrap();
    barrier(&mut guest).await;
    alice.send(&typing("c", true)).await.unwrap();

    expect_typing(&mut bob, "alice", true).await;
    expect_typing(&mut guest, "alice", true).await;
    expect_typing(&mut other_guest, "alice", true).await;
    for (name, rt) in [("alice", &mut alice), ("bob", &mut bob), ("h", &mut other_guest)] {
        let seen = quiet_collect(rt, typing_of("g")).await;
        assert!(seen.is_empty(), "{name} saw the guest type: {seen:?}");
    }
    // SG-GUEST-3: no reply to the guest's typing either (only the barrier's reply and alice's typing came).
    let replies = quiet_collect(&mut guest, |f| !matches!(f, ServerFrame::Typing { .. })).await;
    assert!(replies.is_empty(), "the guest got {replies:?}");
}

#[tokio::test]
async fn typist_gets_no_echo_and_no_reply_sg_typing_2_3() {
    let app = spawn_app().await;
    app.conversation("c", &["alice", "bob"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut alice_phone = app.participant("alice", "c").await;
    let mut bob = app.participant("bob", "c").await;
    alice.send(&typing("c", true)).await.unwrap();
    alice.send(&typing("c", false)).await.unwrap();
    barrier(&mut alice).await;
    expect_typing(&mut bob, "alice", true).await;
    expect_typing(&mut bob, "alice", false).await;
    for rt in [&mut alice, &mut alice_phone] {
        let got = quiet_collect(rt, |_| true).await;
        assert!(got.is_empty(), "the typist's connections got {got:?}");
    }
}

#[tokio::test]
async fn read_only_participant_typing_is_shown_sg_typing_4() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    app.add_participant("c", "reader", ParticipantUpsert { access: Some(Access::Read), notify: None }).await;
    let mut alice = app.participant("alice", "c").await;
    let mut reader = app.participant("reader", "c").await;
    reader.send(&typing("c", true)).await.unwrap();
    expect_typing(&mut alice, "reader", true).await;
}

#[tokio::test]
async fn typing_without_the_conversation_open_is_not_open_sg_rt_19() {
    let app = spawn_app().await;
    app.conversation("c", &["alice", "bob"]).await;
    let mut bob = app.participant("bob", "c").await;
    let mut alice = app.connect("alice").await;
    let reference = alice.fresh_ref();
    let frame = ClientFrame::Typing { reference: Some(reference), conversation_id: "c".into(), is_typing: true };
    expect_error(&alice.request(&frame, WAIT).await.unwrap(), "not_open");
    // Positive control: once open, alice's typing reaches bob, and it is the first typing bob sees.
    alice.open("c", Default::default(), false, WAIT).await.unwrap();
    alice.send(&typing("c", false)).await.unwrap();
    expect_typing(&mut bob, "alice", false).await;
}
