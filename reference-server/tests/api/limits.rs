//! The participant limit (SG-PART-2, SG-PART-6..9) and the guest limit
//! (SG-GLIMIT-1..6), at lowered limits for speed and once at the basic plan's
//! real numbers (100 participants, 300 guests). SG-APP-2: the limits
//! `GET /v1/{appId}` reports are the ones enforced.

use crate::helpers::*;
use supergroup_protocol::frames::{Role, ServerFrame, Ui};
use supergroup_protocol::rest::{ConversationUpsert, PageQuery, ParticipantUpsert};

async fn participant_count(app: &TestApp, conv: &str) -> usize {
    app.rest.get_conversation(conv).await.unwrap().participants.len()
}

#[tokio::test]
async fn exactly_participant_limit_fit_and_the_next_gets_409_changing_nothing_sg_part_6_7() {
    let app = spawn_app_with(config_with_limits(Some(3), None)).await;
    assert_eq!(app.rest.app().await.unwrap().participant_limit, 3, "SG-APP-2");
    app.conversation("c", &["p1", "p2"]).await;
    let mut p1 = app.participant("p1", "c").await;
    app.add_participant("c", "p3", Default::default()).await;
    p1.wait_for("joined p3", WAIT, |f| matches!(f, ServerFrame::ParticipantJoined { user_id, .. } if user_id == "p3"))
        .await
        .unwrap();
    expect_api_error(app.rest.put_participant("c", "p4", &Default::default()).await, 409, "participant_limit_reached");
    assert_eq!(participant_count(&app, "c").await, 3);
    // Nothing changed: p4 was not created and has no conversation, and no member event went out.
    expect_api_error(app.rest.get_user("p4").await, 404, "user_not_found");
    let events = quiet_collect(&mut p1, |f| matches!(f, ServerFrame::ParticipantJoined { .. })).await;
    assert!(events.is_empty(), "member events after the refusal: {events:?}");
    // SG-PART-2: a PUT of an existing participant succeeds while full, and sets the settings.
    let read = ParticipantUpsert { access: Some(supergroup_protocol::rest::Access::Read), notify: None };
    app.rest.put_participant("c", "p2", &read).await.expect("PUT of an existing participant when full");
    let conv = app.rest.get_conversation("c").await.unwrap();
    assert_eq!(conv.participants.len(), 3);
    assert_eq!(conv.participants["p2"].access, supergroup_protocol::rest::Access::Read);
}

#[tokio::test]
async fn conversation_put_past_the_limit_is_409_and_applies_nothing_sg_part_8() {
    let app = spawn_app_with(config_with_limits(Some(3), None)).await;
    let body = ConversationUpsert {
        subject: Some("before".into()),
        participants: Some(vec!["p1".into()]),
        ..Default::default()
    };
    app.rest.put_conversation("c", &body).await.unwrap();
    let over = ConversationUpsert {
        subject: Some("after".into()),
        participants: Some(vec!["p1".into(), "p2".into(), "p3".into(), "p4".into()]),
        guest_access: Some(false),
        custom: Some([("k".to_string(), "v".to_string())].into_iter().collect()),
    };
    expect_api_error(app.rest.put_conversation("c", &over).await, 409, "participant_limit_reached");
    let conv = app.rest.get_conversation("c").await.unwrap();
    assert_eq!(conv.subject.as_deref(), Some("before"));
    assert_eq!(conv.participants.keys().collect::<Vec<_>>(), ["p1"]);
    assert!(conv.guest_access && conv.custom.is_empty());
    expect_api_error(app.rest.get_user("p2").await, 404, "user_not_found");
    // A new conversation over the limit is not created either.
    expect_api_error(app.rest.put_conversation("d", &over).await, 409, "participant_limit_reached");
    expect_api_error(app.rest.get_conversation("d").await, 404, "conversation_not_found");
    // Positive control: exactly the limit in one PUT fits; listed twice counts once.
    let exact = ConversationUpsert {
        participants: Some(vec!["p1".into(), "p2".into(), "p2".into(), "p3".into()]),
        ..Default::default()
    };
    app.rest.put_conversation("c", &exact).await.expect("3 distinct participants fit");
    assert_eq!(participant_count(&app, "c").await, 3);
}

#[tokio::test]
async fn freed_participant_place_can_be_taken_again_sg_part_9() {
    let app = spawn_app_with(config_with_limits(Some(2), None)).await;
    app.conversation("c", &["p1", "p2"]).await;
    expect_api_error(app.rest.put_participant("c", "p3", &Default::default()).await, 409, "participant_limit_reached");
    app.rest.delete_participant("c", "p1").await.unwrap();
    app.add_participant("c", "p3", Default::default()).await;
    let conv = app.rest.get_conversation("c").await.unwrap();
    assert_eq!(conv.participants.keys().collect::<Vec<_>>(), ["p2", "p3"]);
    let listed = app.rest.user_conversations("p3", &PageQuery::default()).await.unwrap().data;
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn exactly_guest_limit_guests_fit_and_the_next_is_refused_sg_glimit_1_2() {
    let app = spawn_app_with(config_with_limits(None, Some(5))).await;
    assert_eq!(app.rest.app().await.unwrap().guest_limit, 5, "SG-APP-2");
    app.conversation("c", &["alice"]).await;
    let mut guests = Vec::new();
    for i in 0..5 {
        guests.push(app.guest(&format!("g{i}"), "c").await);
    }
    let mut sixth = app.connect("g5").await;
    expect_error(&sixth.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
    // The refused connection does not have it open: no send, no messages.
    expect_error(&sixth.send_message("c", "x", None, WAIT).await.unwrap(), "not_open");
    let id = app.post("c", "alice", "to the five").await;
    for g in &mut guests {
        assert_eq!(next_message(g).await.id, id);
    }
    let leaked = quiet_collect(&mut sixth, |f| matches!(f, ServerFrame::Message { .. })).await;
    assert!(leaked.is_empty(), "the refused guest received {leaked:?}");
}

#[tokio::test]
async fn freed_guest_slot_is_available_at_once_after_close_or_disconnect_sg_glimit_3() {
    let app = spawn_app_with(config_with_limits(None, Some(2))).await;
    app.conversation("c", &["alice"]).await;
    let mut a = app.guest("a", "c").await;
    let b = app.guest("b", "c").await;
    let mut x = app.connect("x").await;
    expect_error(&x.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
    a.close_conversation("c", WAIT).await.unwrap();
    expect_opened(&x.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
    let mut y = app.connect("y").await;
    expect_error(&y.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
    b.disconnect().await;
    // The disconnect is processed asynchronously; retry the open a bounded number of times.
    let mut admitted = false;
    for _ in 0..50 {
        match y.open("c", Ui::Chatbox, true, WAIT).await.unwrap() {
            ServerFrame::Opened { role: Role::Guest, .. } => {
                admitted = true;
                break;
            }
            f => expect_error(&f, "guest_limit_reached"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(admitted, "the slot of a disconnected guest was not released within 1 s");
}

#[tokio::test]
async fn one_guest_user_on_many_connections_takes_one_slot_sg_glimit_4() {
    let app = spawn_app_with(config_with_limits(None, Some(2))).await;
    app.conversation("c", &["alice"]).await;
    let mut g1 = app.guest("g", "c").await;
    let _h = app.guest("h", "c").await;
    // Full, but g already holds a slot: further connections of g are admitted.
    let mut g2 = app.guest("g", "c").await;
    let mut g3 = app.guest("g", "c").await;
    let mut x = app.connect("x").await;
    expect_error(&x.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
    g1.close_conversation("c", WAIT).await.unwrap();
    g2.close_conversation("c", WAIT).await.unwrap();
    expect_error(&x.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
    g3.close_conversation("c", WAIT).await.unwrap();
    expect_opened(&x.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), Role::Guest);
}

#[tokio::test]
async fn participants_take_no_guest_slot_and_open_when_full_sg_glimit_5() {
    let app = spawn_app_with(config_with_limits(None, Some(1))).await;
    app.conversation("c", &["alice", "bob"]).await;
    let _alice = app.participant("alice", "c").await;
    let _g = app.guest("g", "c").await;
    let _bob = app.participant("bob", "c").await;
    let mut x = app.connect("x").await;
    expect_error(&x.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
}

#[tokio::test]
async fn guest_limit_is_per_conversation_sg_glimit_6() {
    let app = spawn_app_with(config_with_limits(None, Some(1))).await;
    app.conversation("c", &["alice"]).await;
    app.conversation("d", &["alice"]).await;
    let _g = app.guest("g", "c").await;
    let _h = app.guest("h", "d").await;
    let mut x = app.connect("x").await;
    expect_error(&x.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
    expect_error(&x.open("d", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
}

#[tokio::test]
async fn basic_plan_real_limits_100_participants_and_300_guests_sg_app_3() {
    let app = spawn_app().await;
    let info = app.rest.app().await.unwrap();
    assert_eq!((info.plan.as_str(), info.participant_limit, info.guest_limit), ("basic", 100, 300));
    let hundred: Vec<String> = (0..100).map(|i| format!("p{i:03}")).collect();
    let body = ConversationUpsert { participants: Some(hundred.clone()), ..Default::default() };
    app.rest.put_conversation("c", &body).await.expect("exactly 100 participants fit");
    expect_api_error(
        app.rest.put_participant("c", "p100", &Default::default()).await,
        409,
        "participant_limit_reached",
    );
    assert_eq!(participant_count(&app, "c").await, 100);
    let mut guests = Vec::with_capacity(300);
    for i in 0..300 {
        guests.push(app.guest(&format!("g{i:03}"), "c").await);
    }
    let mut extra = app.connect("g300").await;
    expect_error(&extra.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), "guest_limit_reached");
    // A participant still opens (SG-GLIMIT-5), and with 300 guests open the participant limit is unchanged (SG-GUEST-2).
    let _p = app.participant("p000", "c").await;
    expect_api_error(
        app.rest.put_participant("c", "p100", &Default::default()).await,
        409,
        "participant_limit_reached",
    );
}
