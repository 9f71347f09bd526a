//! Hostile clients against a running server, measured: slowloris, a dead
//! peer holding a guest slot, and a typing flood into a crowd of guests.
//! Every loop is bounded in count and time; only 127.0.0.0/8 targets.
//!
//! ```sh
//! supergroup-server --listen 127.0.0.1:18080 --db :memory: --guest-limit 2000 &
//! cargo run --release -p supergroup-server --example hostile -- 127.0.0.1:18080
//! ```
//!
//! The server needs a guest limit of at least 1,500 for the typing flood
//! (the plans' are 300 and 1,250); everything else is its defaults.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};
use supergroup_protocol::client::{Event, Realtime, RealtimeError, Rest};
use supergroup_protocol::frames::{ClientFrame, ServerFrame, Ui};
use supergroup_protocol::rest::ConversationUpsert;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Slowloris sockets.
const SLOW_SOCKETS: usize = 200;
/// Longest the slowloris phase runs.
const SLOW_LIMIT: Duration = Duration::from_secs(40);
/// Longest the dead-peer phase waits for the server to drop the silent guest.
const DEAD_LIMIT: Duration = Duration::from_secs(120);
/// Guests in the typing-flood room, and typing frames sent.
const GUESTS: usize = 1500;
const TYPING_FRAMES: usize = 2000;
/// Longest wait for the message after the flood to reach every guest.
const AFTER_LIMIT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18080".into()).parse()?;
    anyhow::ensure!(addr.ip().is_loopback(), "hostile clients only target 127.0.0.0/8");
    let rest = Rest::new(&format!("http://{addr}"), "demo", "sk_demo");
    rest.app().await.map_err(|e| anyhow::anyhow!("the server at {addr} does not answer: {e}"))?;
    slowloris(addr, &rest).await?;
    dead_peer(&rest, addr).await?;
    typing_flood(&rest).await?;
    Ok(())
}

/// 200 sockets trickle one header byte a second; REST is asked every second meanwhile.
async fn slowloris(addr: SocketAddr, rest: &Rest) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut socks = Vec::new();
    for _ in 0..SLOW_SOCKETS {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET /v1/demo HTTP/1.1\r\nHost: x\r\n").await?;
        socks.push(Some(s));
    }
    let (mut rest_ok, mut rest_failed, mut last_closed) = (0, 0, None);
    while started.elapsed() < SLOW_LIMIT {
        let mut open = 0;
        for slot in socks.iter_mut() {
            let Some(s) = slot else { continue };
            let mut buf = [0u8; 64];
            let closed = match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => true,
                Ok(Ok(_)) => false,
                Err(_) => s.write_all(b"X").await.is_err(),
            };
            if closed {
                *slot = None;
                last_closed = Some(started.elapsed());
            } else {
                open += 1;
            }
        }
        match tokio::time::timeout(Duration::from_secs(2), rest.app()).await {
            Ok(Ok(_)) => rest_ok += 1,
            _ => rest_failed += 1,
        }
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let still_open = socks.iter().filter(|s| s.is_some()).count();
    println!(
        "slowloris: {SLOW_SOCKETS} sockets trickling header bytes; {} closed by the server, the last after {:.1} s; {still_open} still open after {:.0} s; REST meanwhile: {rest_ok} answered, {rest_failed} failed",
        SLOW_SOCKETS - still_open,
        last_closed.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// A guest opens a room over a hand-made WebSocket, then reads raw bytes
/// and never writes again: it answers no ping, like a phone that dropped off
/// the network. Measures until the server closes the socket (its guest slot
/// is freed in that same step, before the close frame is written).
async fn dead_peer(rest: &Rest, addr: SocketAddr) -> anyhow::Result<()> {
    let conv = format!("dead-{}", std::process::id());
    rest.put_conversation(&conv, &ConversationUpsert::default()).await?;
    let url = rest.realtime_url(&rest.token("silent-guest"));
    let path = url.split_once(&addr.to_string()).map(|(_, p)| p.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(addr).await?;
    let upgrade = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(upgrade.as_bytes()).await?;
    let open = format!(r#"{{"type":"open","ref":"o","conversationId":"{conv}","asGuest":true}}"#);
    anyhow::ensure!(open.len() < 126, "the open frame fits a short WebSocket frame");
    // A masked text frame with an all-zero mask (allowed; masking is then the identity).
    let mut frame = vec![0x81, 0x80 | open.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(open.as_bytes());
    s.write_all(&frame).await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"opened\"") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await??;
        anyhow::ensure!(n > 0, "the server closed before the guest opened: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let started = Instant::now();
    let (mut pings, mut closed_after) = (0, None);
    while started.elapsed() < DEAD_LIMIT {
        match tokio::time::timeout(DEAD_LIMIT, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(started.elapsed());
                break;
            }
            // Server frames: a ping starts with 0x89.
            Ok(Ok(n)) => pings += buf[..n].iter().filter(|b| **b == 0x89).count(),
            Err(_) => break,
        }
    }
    match closed_after {
        Some(after) => println!(
            "dead peer: a guest that answers no ping was closed (slot freed) {:.1} s after it went silent; about {pings} ping(s) received unanswered",
            after.as_secs_f64()
        ),
        None => println!("dead peer: still holding its slot after {DEAD_LIMIT:?}"),
    }
    Ok(())
}

/// 1,500 reading guests, one participant sends 2,000 typing frames as fast
/// as it can, then one message: guests dropped, and time for it to reach all.
async fn typing_flood(rest: &Rest) -> anyhow::Result<()> {
    let conv = format!("flood-{}", std::process::id());
    rest.put_conversation(&conv, &ConversationUpsert { participants: Some(vec!["host".into()]), ..Default::default() })
        .await?;
    let (closed, typing_seen) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Instant>(GUESTS);
    let mut tasks = Vec::new();
    for i in 0..GUESTS {
        let url = rest.realtime_url(&rest.token(&format!("guest-{i}")));
        let mut rt = Realtime::connect(&url).await?;
        let reply = rt.open(&conv, Ui::Chatbox, true, Duration::from_secs(10)).await?;
        anyhow::ensure!(matches!(reply, ServerFrame::Opened { .. }), "guest {i} could not open: {reply:?}");
        let (closed, typing_seen, tx) = (closed.clone(), typing_seen.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                match rt.next_event(Duration::from_secs(1)).await {
                    Ok(Event::Frame(ServerFrame::Typing { .. })) => {
                        typing_seen.fetch_add(1, Relaxed);
                    }
                    Ok(Event::Frame(ServerFrame::Message { .. })) => {
                        let _ = tx.send(Instant::now()).await;
                        return;
                    }
                    Ok(Event::Frame(_)) => {}
                    Ok(Event::Closed { .. }) | Err(RealtimeError::Closed { .. }) => {
                        closed.fetch_add(1, Relaxed);
                        return;
                    }
                    Err(_) => {}
                }
            }
        }));
    }
    drop(tx);
    let mut host = Realtime::connect(&rest.realtime_url(&rest.token("host"))).await?;
    host.open(&conv, Ui::Chatbox, false, Duration::from_secs(5)).await?;
    let flood_started = Instant::now();
    for i in 0..TYPING_FRAMES {
        let frame = ClientFrame::Typing { reference: None, conversation_id: conv.clone(), is_typing: i % 2 == 0 };
        host.send(&frame).await?;
    }
    let flood_took = flood_started.elapsed();
    let sent = Instant::now();
    let ack = host.send_message(&conv, "after the flood", None, Duration::from_secs(10)).await?;
    anyhow::ensure!(matches!(ack, ServerFrame::Ack { .. }), "the message after the flood was refused: {ack:?}");
    let (mut reached, mut last) = (0, Duration::ZERO);
    while let Ok(Some(at)) = tokio::time::timeout(AFTER_LIMIT, rx.recv()).await {
        reached += 1;
        last = last.max(at.saturating_duration_since(sent));
    }
    for t in tasks {
        t.abort();
    }
    println!(
        "typing flood: {TYPING_FRAMES} typing frames in {:.2} s into {GUESTS} guests; {} guests closed by the server; {} typing frames delivered in all ({:.1} per guest); the next message reached {reached} of {GUESTS}, the last after {:.0} ms",
        flood_took.as_secs_f64(),
        closed.load(Relaxed),
        typing_seen.load(Relaxed),
        typing_seen.load(Relaxed) as f64 / GUESTS as f64,
        last.as_secs_f64() * 1000.0
    );
    Ok(())
}
