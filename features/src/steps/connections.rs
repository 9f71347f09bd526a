//! Whole connections: a server shutting down (1001) and a client that stops
//! reading (1008 "slow consumer"), with a reader next to it that must keep up.

use super::describe;
use crate::world::SgWorld;
use cucumber::{given, then, when};
use futures_util::StreamExt as _;
use std::time::Duration;
use supergroup_protocol::client::{Realtime, Rest, WsConfig, connect_ws_on};
use supergroup_protocol::frames::{ServerFrame, Ui};
use supergroup_protocol::rest::{ConversationUpsert, NewMessage, WebhookRegistration};
use supergroup_protocol::webhook::NOTIFICATION_TRIGGERED;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

/// Characters per flood message: large, so the server's socket buffers fill with few messages.
const FLOOD_TEXT: usize = 16_000;
/// Most messages one flood posts before giving up (about 190 MB of text): the
/// reference server with its defaults (1,024-item queue, 10 s write timeout)
/// needs about 4,000 at the rate a debug build takes them (SPEC.md 10.5).
const FLOOD_BUDGET: usize = 12_000;
/// Longest a flood posts before giving up.
const FLOOD_TIME: Duration = Duration::from_secs(40);
/// Receive buffer of the connection that stops reading, so the flood fills it fast.
const SLOW_RCVBUF: u32 = 8 * 1024;

#[given(regex = r#"^a server of its own with a connected user$"#)]
async fn own_server(w: &mut SgWorld) -> anyhow::Result<()> {
    anyhow::ensure!(w.suite().in_process, "this scenario needs the in-process reference server");
    let server = supergroup_server::spawn(supergroup_server::Config::for_tests()).await?;
    let app = &supergroup_server::Config::for_tests().apps[0];
    let rest = Rest::new(&server.base_url(), &app.id, &app.secret);
    let mut rt = Realtime::connect(&rest.realtime_url(&rest.token("shutdown-user"))).await?;
    rest.put_conversation(
        "shutdown-room",
        &ConversationUpsert { participants: Some(vec!["shutdown-user".into()]), ..Default::default() },
    )
    .await?;
    let reply = rt.open("shutdown-room", Ui::Chatbox, false, w.wait()).await?;
    anyhow::ensure!(matches!(reply, ServerFrame::Opened { .. }), "expected opened; received {}", describe(&reply));
    w.conns.insert("own-server-user".into(), rt);
    w.own_server = Some(server);
    Ok(())
}

#[when(regex = r#"^that server shuts down$"#)]
async fn shuts_down(w: &mut SgWorld) -> anyhow::Result<()> {
    let server = w.own_server.take().ok_or_else(|| anyhow::anyhow!("no server of its own"))?;
    // Stop in the background: the close frames are read below while it stops.
    w.stopping = Some(tokio::spawn(async move { server.stop().await }));
    Ok(())
}

#[then(regex = r#"^the user's connection is closed with code (\d+)$"#)]
async fn user_closed(w: &mut SgWorld, code: u16) -> anyhow::Result<()> {
    let wait = w.wait();
    let rt = w.conns.get_mut("own-server-user").ok_or_else(|| anyhow::anyhow!("no connection"))?;
    let (got, reason) = rt.wait_closed(wait).await?;
    if let Some(stopping) = w.stopping.take() {
        let _ = tokio::time::timeout(wait, stopping).await;
    }
    anyhow::ensure!(got == Some(code), "expected close code {code} on shutdown; received {got:?} {reason:?}");
    Ok(())
}

#[given(regex = r#"^(\w+) has "([^"]+)" open as a guest, is then made a participant, and stops reading$"#)]
async fn stops_reading(w: &mut SgWorld, user: String, conv: String) -> anyhow::Result<()> {
    let url = w.realtime_url(&user);
    // The user's own node: the URL above names it, and the socket must reach it.
    let addr = w.node_of(&user).base().trim_start_matches("http://").trim_start_matches("https://").to_string();
    let addr = tokio::net::lookup_host(&addr).await?.next().ok_or_else(|| anyhow::anyhow!("cannot resolve {addr}"))?;
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_recv_buffer_size(SLOW_RCVBUF)?;
    let stream = socket.connect(addr).await?;
    // Over TLS too: the handshake runs on this small-buffered socket.
    let mut ws = connect_ws_on(stream, &url, WsConfig::default(), w.rest().tls()).await?;
    let open = format!(r#"{{"type":"open","ref":"slow","conversationId":"{}","asGuest":true}}"#, w.id(&conv));
    futures_util::SinkExt::send(&mut ws, Message::text(open)).await?;
    // The reply is the first frame carrying our ref (a broadcast may come before it).
    let reply = tokio::time::timeout(w.wait(), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if !t.as_str().contains("\"ref\":\"slow\"") => continue,
                other => break other,
            }
        }
    })
    .await?;
    let ok = matches!(&reply, Some(Ok(Message::Text(t))) if t.as_str().contains("\"opened\""));
    anyhow::ensure!(ok, "expected {user} to open {conv} as a guest; received {reply:?}");
    // Also a participant, so the server's notification tells when it dropped the connection.
    w.rest().put_participant(&w.id(&conv), &w.id(&user), &Default::default()).await?;
    w.slow = Some((user, ws));
    Ok(())
}

#[when(regex = r#"^(\w+) floods "([^"]+)" until (\w+) is dropped$"#)]
async fn flood(w: &mut SgWorld, sender: String, conv: String, slow: String) -> anyhow::Result<()> {
    let (conv_id, sender_id, slow_id) = (w.id(&conv), w.id(&sender), w.id(&slow));
    let rest = w.rest();
    let suite = w.suite();
    // The drop is seen through slowpoke's notification. Without a filter,
    // every flood message's message.sent (16 KB each) would queue ahead of it
    // at the server, the drop would be seen seconds late, and the dropped
    // reader could start reading after the server gave up the close frame it
    // keeps for it (SPEC.md 10.5). The scenario is @serial: no other scenario
    // misses an event meanwhile; the registration is restored after the flood.
    let only_notifications =
        WebhookRegistration { url: suite.hook_url.clone(), events: Some(vec![NOTIFICATION_TRIGGERED.to_string()]) };
    rest.put_webhook(&only_notifications)
        .await
        .map_err(|e| anyhow::anyhow!("registering for notifications only: {e}"))?;
    w.registration_changed = true;
    // The reader keeps reading in the background while the flood runs.
    let mut reader = w.conns.remove("reader").ok_or_else(|| anyhow::anyhow!("reader has no connection"))?;
    // The reader stops once it has as many flood messages as were posted
    // (known after the flood), or when told to stop at the deadline.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (target_tx, target_rx) = tokio::sync::watch::channel(usize::MAX);
    let reading_conv = conv_id.clone();
    let reading = tokio::spawn(async move {
        let mut texts = Vec::new();
        while texts.len() < *target_rx.borrow() {
            tokio::select! {
                _ = &mut stop_rx => break,
                ev = reader.next_event(Duration::from_millis(200)) => match ev {
                    Ok(supergroup_protocol::client::Event::Frame(ServerFrame::Message { message })) if message.conversation_id == reading_conv => {
                        texts.push(message.text.split(' ').take(2).collect::<Vec<_>>().join(" "));
                    }
                    Ok(supergroup_protocol::client::Event::Frame(_)) => {}
                    // A quiet moment: look at the target again.
                    Err(supergroup_protocol::client::RealtimeError::Timeout { .. }) => {}
                    _ => break,
                },
            }
        }
        (reader, texts)
    });
    let padding = "x".repeat(FLOOD_TEXT);
    let mut posted = 0;
    let dropped = |suite: &crate::world::Suite| {
        suite
            .inbox
            .deliveries(&conv_id)
            .iter()
            .any(|d| d.kind == NOTIFICATION_TRIGGERED && d.recipient() == Some(slow_id.as_str()))
    };
    let flooding = std::time::Instant::now();
    while posted < FLOOD_BUDGET && flooding.elapsed() < FLOOD_TIME && !dropped(&suite) {
        let batch: Vec<NewMessage> = (posted..posted + 10)
            .map(|i| NewMessage::UserMessage {
                sender: sender_id.clone(),
                text: format!("flood {i} {padding}"),
                custom: None,
                idempotency_key: None,
            })
            .collect();
        rest.post_messages(&conv_id, &batch)
            .await
            .map_err(|e| anyhow::anyhow!("posting flood batch at {posted}: {e}"))?;
        posted += 10;
    }
    super::notifications::restore_registration(w).await?;
    // Once dropped, the notification window must close before the event shows; wait for it.
    let seen = suite
        .inbox
        .wait_for(
            &conv_id,
            &format!("{slow} to be dropped (seen as a notification for it) after {posted} messages"),
            suite.notification_wait(),
            |d| d.kind == NOTIFICATION_TRIGGERED && d.recipient() == Some(slow_id.as_str()),
        )
        .await;
    // Give the reader time to receive everything posted, then stop it.
    let _ = target_tx.send(posted);
    let mut reading = reading;
    let (reader, texts) = match tokio::time::timeout(suite.wait, &mut reading).await {
        Ok(done) => done?,
        Err(_) => {
            let _ = stop_tx.send(());
            reading.await?
        }
    };
    w.notes.insert("flood-posted".into(), posted.to_string());
    w.conns.insert("reader".into(), reader);
    w.notes.insert("flood-read".into(), texts.join("|"));
    seen.map(drop)
}

#[then(regex = r#"^(\w+) is dropped with close code 1008 and reason "slow consumer"$"#)]
async fn slow_closed(w: &mut SgWorld, user: String) -> anyhow::Result<()> {
    let (_, mut ws) = w.slow.take().ok_or_else(|| anyhow::anyhow!("{user} has no slow connection"))?;
    let deadline = tokio::time::Instant::now() + w.wait() * 2;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => {
                anyhow::bail!("expected {user}'s connection to be closed with 1008 \"slow consumer\"; it is still open")
            }
            Ok(Some(Ok(Message::Close(Some(c))))) => {
                let (code, reason) = (u16::from(c.code), c.reason.to_string());
                anyhow::ensure!(
                    code == 1008 && reason == "slow consumer",
                    "expected close 1008 \"slow consumer\"; received {code} {reason:?}"
                );
                return Ok(());
            }
            Ok(Some(Ok(Message::Close(None)))) => {
                anyhow::bail!("expected close 1008 \"slow consumer\"; received a close frame without code")
            }
            Ok(None) | Ok(Some(Err(_))) => {
                anyhow::bail!("expected close 1008 \"slow consumer\"; the connection ended without a close frame")
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

#[then(regex = r#"^reader received every flood message in order$"#)]
async fn reader_kept_up(w: &mut SgWorld) -> anyhow::Result<()> {
    let posted: usize = w.notes.get("flood-posted").and_then(|s| s.parse().ok()).unwrap_or(0);
    let read: Vec<String> =
        w.notes.get("flood-read").map(|s| s.split('|').map(str::to_owned).collect()).unwrap_or_default();
    let want: Vec<String> = (0..posted).map(|i| format!("flood {i}")).collect();
    anyhow::ensure!(
        read == want,
        "expected the reader to get all {posted} flood messages in order; it got {} (first differences: {:?})",
        read.len(),
        read.iter().zip(&want).find(|(a, b)| a != b)
    );
    Ok(())
}
