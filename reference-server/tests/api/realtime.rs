//! Realtime delivery: fan-out to every connection in storage order
//! (SG-RT-23, SG-RT-24), slow consumers (SG-RT-25, SG-RT-26), shutdown
//! (SG-RT-27) and member events (SG-PART-10..12, SG-CONV-8).

use crate::helpers::*;
use futures_util::{SinkExt, StreamExt};
use supergroup_protocol::client::Realtime;
use supergroup_protocol::frames::{ServerFrame, Ui};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Reads `n` message frames of `conv` and returns their ids in arrival order.
async fn read_messages(rt: &mut Realtime, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(next_message(rt).await.id);
    }
    ids
}

// Two worker threads, so senders, server and receivers really run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_guest_receives_every_message_once_in_storage_order_sender_included_sg_rt_23_24() {
    const GUESTS: usize = 6;
    const PER_SENDER: usize = 10;
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut guests = Vec::new();
    for i in 0..GUESTS {
        guests.push(app.guest(&format!("g{i}"), "c").await);
    }
    // Every guest sends concurrently while alice posts over REST.
    let mut senders = Vec::new();
    for (i, mut g) in guests.into_iter().enumerate() {
        senders.push(tokio::spawn(async move {
            for k in 0..PER_SENDER {
                let reply = g.send_message("c", &format!("g{i}-{k}"), None, WAIT).await.unwrap();
                assert!(matches!(reply, ServerFrame::Ack { .. }), "g{i} send {k}: {reply:?}");
            }
            g
        }));
    }
    for k in 0..PER_SENDER {
        app.rest.post_messages("c", &[user_message("alice", &format!("rest-{k}"))]).await.unwrap();
    }
    let mut guests = Vec::new();
    for s in senders {
        guests.push(s.await.expect("sender task"));
    }
    let total = (GUESTS + 1) * PER_SENDER;
    let stored: Vec<String> = {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let q = supergroup_protocol::rest::PageQuery { limit: Some("100".into()), starting_after: after.clone() };
            let page = app.rest.messages("c", &q).await.unwrap().data;
            if page.is_empty() {
                break;
            }
            after = page.last().map(|m| m.id.clone());
            all.extend(page.into_iter().map(|m| m.id));
        }
        all.into_iter().rev().collect()
    };
    assert_eq!(stored.len(), total);
    for (i, g) in guests.iter_mut().enumerate() {
        assert_eq!(read_messages(g, total).await, stored, "guest g{i} order differs from storage order");
    }
    assert_eq!(read_messages(&mut alice, total).await, stored, "participant order");
    // Exactly once: nothing more arrives after the full sequence.
    for g in guests.iter_mut().take(2) {
        let extra = quiet_collect(g, |f| matches!(f, ServerFrame::Message { .. })).await;
        assert!(extra.is_empty(), "duplicate deliveries: {extra:?}");
    }
}

#[tokio::test]
async fn slow_consumer_is_closed_with_1008_while_others_receive_everything_in_order_sg_rt_25_26() {
    // One message per POST: a batch of more frames than the queue holds would
    // overflow every connection's queue at once, the healthy one's included.
    const POSTS: usize = 600;
    let mut config = supergroup_server::Config::for_tests();
    config.outbound_queue = 4;
    let app = spawn_app_with(config).await;
    app.conversation("c", &["alice"]).await;
    // The slow guest: a small kernel receive buffer, and it stops reading after `opened`.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.server.addr).await.unwrap();
    let url = app.rest.realtime_url(&app.rest.token("slow"));
    let (mut slow, _) = tokio_tungstenite::client_async(url.as_str(), stream).await.expect("slow guest connects");
    let open = r#"{"type":"open","ref":"o","conversationId":"c","asGuest":true}"#;
    slow.send(WsMessage::text(open)).await.unwrap();
    let opened = tokio::time::timeout(WAIT, slow.next()).await.unwrap().unwrap().unwrap();
    assert!(opened.to_text().unwrap().contains(r#""opened""#), "{opened:?}");
    // The healthy guest reads everything concurrently.
    let mut healthy = app.guest("healthy", "c").await;
    let total = POSTS;
    let reader = tokio::spawn(async move { read_messages(&mut healthy, total).await });
    let text = "x".repeat(10_000);
    let mut posted = Vec::with_capacity(total);
    for _ in 0..POSTS {
        posted.push(app.post("c", "alice", &text).await);
    }
    let received = tokio::time::timeout(WAIT * 4, reader).await.expect("healthy guest keeps up").unwrap();
    assert_eq!(received, posted, "the healthy guest got every message in order");
    // Now read the slow connection: it ends with close 1008 "slow consumer".
    let mut close = None;
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    let mut frames_read = 0usize;
    while let Ok(Some(item)) = tokio::time::timeout_at(deadline, slow.next()).await {
        match item {
            Ok(WsMessage::Close(frame)) => {
                close = frame;
                break;
            }
            Ok(_) => frames_read += 1,
            Err(e) => panic!("slow connection ended without a close frame after {frames_read} frames: {e}"),
        }
    }
    let close = close.unwrap_or_else(|| panic!("no close frame after {frames_read} frames"));
    assert_eq!((close.code, close.reason.as_str()), (CloseCode::Policy, "slow consumer"));
    assert!(frames_read < total, "the slow guest was not cut off ({frames_read} frames)");
}

#[tokio::test]
async fn shutdown_closes_connections_with_1001_sg_rt_27() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut guest = app.guest("g", "c").await;
    let idle = app.connect("idle").await;
    let stopping = tokio::spawn(app.stop());
    for rt in [&mut alice, &mut guest] {
        let (code, _) = rt.wait_closed(WAIT).await.unwrap();
        assert_eq!(code, Some(1001));
    }
    let mut idle = idle;
    assert_eq!(idle.wait_closed(WAIT).await.unwrap().0, Some(1001));
    tokio::time::timeout(WAIT * 2, stopping).await.expect("the server stops").unwrap();
}

#[tokio::test]
async fn member_changes_reach_everyone_with_it_open_and_removal_closes_the_member_sg_part_10_11_12() {
    let app = spawn_app().await;
    app.conversation("c", &["alice", "bob"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut bob = app.participant("bob", "c").await;
    let mut guest = app.guest("g", "c").await;
    app.add_participant("c", "carol", Default::default()).await;
    for rt in [&mut alice, &mut bob, &mut guest] {
        let f = rt.wait_for("joined", WAIT, |f| matches!(f, ServerFrame::ParticipantJoined { .. })).await.unwrap();
        assert_eq!(f, ServerFrame::ParticipantJoined { conversation_id: "c".into(), user_id: "carol".into() });
    }
    // A PUT of an existing participant or a PATCH is no join.
    app.add_participant("c", "carol", Default::default()).await;
    app.rest.patch_participant("c", "carol", &Default::default()).await.unwrap();
    app.rest.delete_participant("c", "bob").await.unwrap();
    for rt in [&mut alice, &mut bob, &mut guest] {
        let f = rt.wait_for("left", WAIT, |f| matches!(f, ServerFrame::ParticipantLeft { .. })).await.unwrap();
        assert_eq!(f, ServerFrame::ParticipantLeft { conversation_id: "c".into(), user_id: "bob".into() });
    }
    let closed = bob.wait_for("closed", WAIT, |f| matches!(f, ServerFrame::Closed { .. })).await.unwrap();
    assert_eq!(closed, ServerFrame::Closed { reference: None, conversation_id: "c".into() });
    let id = app.post("c", "alice", "after bob left").await;
    assert_eq!(next_message(&mut guest).await.id, id);
    let leaked = quiet_collect(&mut bob, |f| matches!(f, ServerFrame::Message { .. })).await;
    assert!(leaked.is_empty(), "bob still receives after removal: {leaked:?}");
    let joins = quiet_collect(&mut alice, |f| matches!(f, ServerFrame::ParticipantJoined { .. })).await;
    assert!(joins.is_empty(), "PUT of an existing participant or PATCH produced {joins:?}");
    // Bob can come back as a guest on the same connection (SG-GUEST-18).
    expect_opened(&bob.open("c", Ui::Chatbox, true, WAIT).await.unwrap(), supergroup_protocol::frames::Role::Guest);
}

#[tokio::test]
async fn deleting_a_conversation_sends_closed_to_everyone_with_it_open_sg_conv_8() {
    let app = spawn_app().await;
    app.conversation("c", &["alice"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut guest = app.guest("g", "c").await;
    app.rest.delete_conversation("c").await.unwrap();
    for rt in [&mut alice, &mut guest] {
        let closed = rt.wait_for("closed", WAIT, |f| matches!(f, ServerFrame::Closed { .. })).await.unwrap();
        assert_eq!(closed, ServerFrame::Closed { reference: None, conversation_id: "c".into() });
    }
    expect_api_error(app.rest.get_conversation("c").await, 404, "conversation_not_found");
    expect_error(&guest.send_message("c", "x", None, WAIT).await.unwrap(), "conversation_not_found");
}
