//! Transport hardening (issue 8 items 8, 9, 11, 16) on real sockets with
//! short flag values: slow-header sockets closed by the header timeout while
//! REST answers, the connection cap answered 503 `server_busy`, a silent
//! WebSocket closed with 4000 and its guest slot freed, a live one kept, the
//! per-user connection cap (429), the open-per-connection cap, the send
//! token bucket (`rate_limited`) and the typing throttle.

use crate::helpers::*;
use std::time::{Duration, Instant};
use supergroup_protocol::client::{Realtime, RealtimeError};
use supergroup_protocol::frames::{ClientFrame, Role, ServerFrame, Ui, close};
use supergroup_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(f: impl FnOnce(&mut supergroup_server::transport::Transport)) -> Config {
    let mut config = Config::for_tests();
    f(&mut config.transport);
    config
}

/// Reads until the server closes the socket (EOF or reset); returns what it sent.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_connections_are_closed_by_the_header_timeout_while_rest_keeps_answering() {
    let app = spawn_app_with(config(|t| t.header_timeout = Duration::from_secs(1))).await;
    let started = Instant::now();
    let mut trickling = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(app.server.addr).await.unwrap();
        s.write_all(b"GET /v1/demo HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        trickling.push(s);
    }
    // One header byte per socket every 200 ms: never a whole head.
    let mut closed = vec![false; trickling.len()];
    for _ in 0..25 {
        for (s, done) in trickling.iter_mut().zip(closed.iter_mut()) {
            if !*done && s.write_all(b"X").await.is_err() {
                *done = true;
            }
        }
        app.rest.app().await.expect("REST answers while slow clients hang on");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for s in &mut trickling {
        assert!(read_to_close(s, Duration::from_secs(1)).await.is_some(), "a slow-header socket is still open");
    }
    println!("20 slow-header sockets closed; checked after {:?}", started.elapsed());
    app.stop().await;
}

#[tokio::test]
async fn a_body_trickled_past_the_body_timeout_is_answered_408_and_stores_nothing() {
    let app = spawn_app_with(config(|t| t.body_timeout = Duration::from_millis(500))).await;
    let mut s = TcpStream::connect(app.server.addr).await.unwrap();
    let body = br#"{"name":"Trickle"}"#;
    let head = format!(
        "PUT /v1/{APP}/users/trickle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // A few bytes of the body, then silence: the rest never comes in time.
    s.write_all(&body[..5]).await.unwrap();
    let answer = read_to_close(&mut s, WAIT).await.expect("the server answers and closes");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""code":"request_timeout""#), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(400), "answered before the timeout: {:?}", started.elapsed());
    // Nothing stored, and the same request sent whole within the limit works.
    assert!(app.rest.get_user("trickle").await.is_err());
    app.stop().await;
}

#[tokio::test]
async fn one_connection_over_the_cap_is_answered_503_server_busy() {
    let app = spawn_app_with(config(|t| t.max_connections = 2)).await;
    let held = [TcpStream::connect(app.server.addr).await.unwrap(), TcpStream::connect(app.server.addr).await.unwrap()];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(app.server.addr).await.unwrap();
    let answer = read_to_close(&mut third, WAIT).await.expect("the server answers and closes");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains(r#""code":"server_busy""#), "{text}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.rest.app().await.expect("a permit is back once a socket closes");
    app.stop().await;
}

/// A guest over a hand-made WebSocket on a raw socket: upgrade, `open` as
/// guest, read until `opened`. The caller then never writes (no pong ever).
async fn raw_guest(app: &TestApp, user: &str, conv: &str) -> TcpStream {
    let url = app.rest.realtime_url(&app.rest.token(user));
    let path = &url[url.find("/v1/").unwrap()..];
    let mut s = TcpStream::connect(app.server.addr).await.unwrap();
    let upgrade = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(upgrade.as_bytes()).await.unwrap();
    let open = format!(r#"{{"type":"open","conversationId":"{conv}","asGuest":true}}"#);
    // A masked text frame; an all-zero mask leaves the payload as it is.
    let mut frame = vec![0x81, 0x80 | open.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(open.as_bytes());
    s.write_all(&frame).await.unwrap();
    let (mut seen, mut buf) = (Vec::new(), [0u8; 1024]);
    while !String::from_utf8_lossy(&seen).contains(r#""type":"opened""#) {
        let n = tokio::time::timeout(WAIT, s.read(&mut buf)).await.expect("opened in time").unwrap();
        assert!(n > 0, "closed before opened: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_guest_is_closed_with_4000_and_its_slot_goes_to_the_next_guest() {
    let mut config = config(|t| {
        t.ws_ping_interval = Duration::from_millis(200);
        t.ws_idle_timeout = Duration::from_secs(1);
    });
    config.apps[0].guest_limit = Some(1);
    let app = spawn_app_with(config).await;
    app.conversation("c", &["host"]).await;
    // Opens as a guest over a hand-made WebSocket, then never reads or writes: it answers no ping.
    let mut silent = raw_guest(&app, "silent", "c").await;
    let started = Instant::now();
    let mut next = app.connect("next").await;
    let first = next.open("c", Ui::Chatbox, true, WAIT).await.unwrap();
    expect_error(&first, "guest_limit_reached");
    let opened = loop {
        assert!(started.elapsed() < Duration::from_secs(10), "the silent guest's slot was never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
        match next.open("c", Ui::Chatbox, true, WAIT).await.unwrap() {
            reply @ ServerFrame::Opened { .. } => break reply,
            other => expect_error(&other, "guest_limit_reached"),
        }
    };
    expect_opened(&opened, Role::Guest);
    println!("silent guest's slot freed after {:?} (idle timeout 1 s)", started.elapsed());
    // Everything the server wrote is still in the socket: pings, then the close, then EOF.
    let bytes = read_to_close(&mut silent, WAIT).await.expect("the server closed the silent socket");
    let mut close_frame = vec![0x88, 2 + close::IDLE_REASON.len() as u8];
    close_frame.extend_from_slice(&close::IDLE.to_be_bytes());
    close_frame.extend_from_slice(close::IDLE_REASON.as_bytes());
    assert!(bytes.windows(close_frame.len()).any(|w| w == close_frame), "no 4000 idle-timeout close frame");
    assert!(bytes.contains(&0x89), "the server sent no ping");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_answers_pings_stays_open_past_the_idle_timeout() {
    let app = spawn_app_with(config(|t| {
        t.ws_ping_interval = Duration::from_millis(200);
        t.ws_idle_timeout = Duration::from_secs(1);
    }))
    .await;
    app.conversation("c", &["alice"]).await;
    let mut alice = app.connect("alice").await;
    // Reading answers the server's pings (tungstenite replies to each one).
    let frames = alice.collect_for(Duration::from_millis(2500), |_| true).await.unwrap();
    assert!(frames.is_empty(), "{frames:?}");
    let reply = alice.open("c", Ui::Chatbox, false, WAIT).await.expect("still open after 2.5 s of pings");
    expect_opened(&reply, Role::Participant);
    app.stop().await;
}

#[tokio::test]
async fn one_connection_over_the_per_user_cap_is_refused_with_429() {
    let app = spawn_app_with(config(|t| t.max_connections_per_user = 2)).await;
    let url = app.rest.realtime_url(&app.rest.token("alice"));
    let first = app.connect("alice").await;
    let _second = app.connect("alice").await;
    match Realtime::connect(&url).await {
        Err(RealtimeError::Rejected { status: 429 }) => {}
        Err(e) => panic!("expected HTTP 429, got {e}"),
        Ok(_) => panic!("a third connection of alice was accepted"),
    }
    let _bob = app.connect("bob").await;
    first.disconnect().await;
    let deadline = Instant::now() + WAIT;
    while Realtime::connect(&url).await.is_err() {
        assert!(Instant::now() < deadline, "alice's slot did not come back after a disconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn opening_more_conversations_than_the_cap_is_answered_too_many_open() {
    let app = spawn_app_with(config(|t| t.max_open_per_connection = 2)).await;
    for c in ["a", "b", "c"] {
        app.conversation(c, &["alice"]).await;
    }
    let mut alice = app.connect("alice").await;
    for c in ["a", "b"] {
        expect_opened(&alice.open(c, Ui::Chatbox, false, WAIT).await.unwrap(), Role::Participant);
    }
    expect_error(&alice.open("c", Ui::Chatbox, false, WAIT).await.unwrap(), "too_many_open");
    // Re-opening one already open is no new conversation.
    expect_opened(&alice.open("a", Ui::Chatbox, false, WAIT).await.unwrap(), Role::Participant);
    alice.close_conversation("b", WAIT).await.unwrap();
    expect_opened(&alice.open("c", Ui::Chatbox, false, WAIT).await.unwrap(), Role::Participant);
    app.stop().await;
}

#[tokio::test]
async fn sends_past_the_burst_are_answered_rate_limited_and_not_stored() {
    let app = spawn_app_with(config(|t| {
        t.send_rate = 0.01;
        t.send_burst = 3.0;
    }))
    .await;
    app.conversation("c", &["alice"]).await;
    let mut alice = app.participant("alice", "c").await;
    for i in 0..3 {
        let reply = alice.send_message("c", &format!("m{i}"), None, WAIT).await.unwrap();
        assert!(matches!(reply, ServerFrame::Ack { .. }), "{reply:?}");
    }
    expect_error(&alice.send_message("c", "one too many", None, WAIT).await.unwrap(), "rate_limited");
    assert_eq!(app.history("c").await.len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn the_typing_throttle_is_per_user_not_per_connection() {
    let app = spawn_app_with(config(|t| t.typing_rate = 2.0)).await;
    app.conversation("c", &["alice", "bob"]).await;
    let mut tabs = Vec::new();
    for _ in 0..4 {
        tabs.push(app.participant("alice", "c").await);
    }
    let mut bob = app.participant("bob", "c").await;
    // 4 connections of one user, 10 frames each: per connection the burst
    // would pass 8; per user it passes 2 (3 if a token refills meanwhile).
    for tab in &mut tabs {
        for i in 0..10 {
            let frame = ClientFrame::Typing { reference: None, conversation_id: "c".into(), is_typing: i % 2 == 0 };
            tab.send(&frame).await.unwrap();
        }
    }
    for tab in &mut tabs {
        barrier(tab).await;
    }
    let typing = bob.collect_for(Duration::from_millis(300), |f| matches!(f, ServerFrame::Typing { .. })).await;
    let n = typing.unwrap().len();
    assert!((1..=3).contains(&n), "{n} typing frames passed on of 40 from 4 connections of one user");
    app.stop().await;
}

#[tokio::test]
async fn typing_past_the_rate_is_dropped_silently() {
    let app = spawn_app_with(config(|t| t.typing_rate = 2.0)).await;
    app.conversation("c", &["alice", "bob"]).await;
    let mut alice = app.participant("alice", "c").await;
    let mut bob = app.participant("bob", "c").await;
    for i in 0..40 {
        let frame = ClientFrame::Typing { reference: None, conversation_id: "c".into(), is_typing: i % 2 == 0 };
        alice.send(&frame).await.unwrap();
    }
    barrier(&mut alice).await;
    let typing = bob.collect_for(Duration::from_millis(300), |f| matches!(f, ServerFrame::Typing { .. })).await;
    let n = typing.unwrap().len();
    // The burst (2) passes, a token may have refilled meanwhile; 40 never do.
    assert!((1..=3).contains(&n), "{n} typing frames passed on of 40");
    // No reply frame, no error: alice's connection is fine.
    assert!(matches!(alice.next_event(Duration::from_millis(100)).await, Err(RealtimeError::Timeout { .. })));
    app.stop().await;
}
