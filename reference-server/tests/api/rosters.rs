//! The rosters `open` keeps between opens (reference-server/src/roster.rs):
//! every membership change is seen by the next `open` after the change was
//! answered, although the roster it changes was kept just before.

use crate::helpers::*;
use supergroup_protocol::frames::{ClientFrame, Role, Ui};
use supergroup_protocol::limits::MAX_TEXT_CHARS;
use supergroup_protocol::rest::{Access, ConversationUpsert, ParticipantUpsert};

#[tokio::test]
async fn every_membership_change_reaches_the_next_open_past_the_kept_roster() {
    let app = spawn_app().await;
    app.conversation("r", &["p1"]).await;
    // Each guest open below keeps the roster as it is before the next change.
    let mut g1 = app.guest("g1", "r").await;
    let members = expect_opened(&g1.open("r", Ui::Chatbox, true, WAIT).await.expect("reply"), Role::Guest);
    assert_eq!(members, ["p1"]);

    // A participant added: opens as a participant, and is in the member list.
    app.add_participant("r", "p2", ParticipantUpsert::default()).await;
    let mut p2 = app.participant("p2", "r").await;
    let _g2 = app.guest("g2", "r").await;

    // Made read-only: `read_only` comes before the content error (SPEC's order), so it must be known.
    let read = ParticipantUpsert { access: Some(Access::Read), notify: None };
    app.rest.patch_participant("r", "p2", &read).await.expect("PATCH");
    let too_long = ClientFrame::Send {
        reference: Some("s1".into()),
        conversation_id: "r".into(),
        text: "x".repeat(MAX_TEXT_CHARS + 1),
        custom: None,
        idempotency_key: None,
    };
    p2.send(&too_long).await.expect("send");
    expect_error(&reply_to(&mut p2, "s1").await, "read_only");

    // Guest access turned off: the next guest is refused.
    let _g3 = app.guest("g3", "r").await;
    let off = ConversationUpsert { guest_access: Some(false), ..Default::default() };
    app.rest.put_conversation("r", &off).await.expect("PUT");
    let mut g4 = app.connect("g4").await;
    expect_error(&g4.open("r", Ui::Chatbox, true, WAIT).await.expect("reply"), "guest_access_disabled");

    // A participant removed: may no longer open as one.
    let _p1 = app.participant("p1", "r").await;
    app.rest.delete_participant("r", "p1").await.expect("DELETE participant");
    let mut p1_again = app.connect("p1").await;
    expect_error(&p1_again.open("r", Ui::Chatbox, false, WAIT).await.expect("reply"), "not_a_participant");

    // The conversation deleted: not found.
    let _p2_again = app.participant("p2", "r").await;
    app.rest.delete_conversation("r").await.expect("DELETE conversation");
    let mut late = app.connect("late").await;
    expect_error(&late.open("r", Ui::Chatbox, true, WAIT).await.expect("reply"), "conversation_not_found");
    app.stop().await;
}
