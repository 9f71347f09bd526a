//! A guest: one WebSocket that opens one conversation as a guest (chatbox UI)
//! and then only receives. Joining (connect, `open`, `opened`) runs inside a
//! goose transaction and is timed there. Receiving runs in a tokio task of
//! its own, owned by the guest's goose session: goose runs a user's
//! transactions one after the other, so a read loop inside a transaction
//! would leave the socket unread between transactions and stamp deliveries
//! late by however long goose took in between. The task stamps
//! `Instant::now()` the moment a frame comes off the socket, before parsing;
//! it finds a delivery's three load fields by scanning the text (no JSON
//! parse on the hot path; other frames get a typed, borrowing parse), records the delivery, and stops when the guest's stop token is cancelled
//! (the guest's `on_stop` transaction, or the end of the run), closing the
//! socket cleanly. Every wait here is bounded.

use crate::completeness::{DeliveryTracker, Observation};
use crate::context::Ctx;
use crate::recorder::{GuestOutcome, Interval, IntervalEnd, SHARDS};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use supergroup_protocol::client::{Ws, WsConfig, connect_ws_tls};
use supergroup_protocol::frames::{ClientFrame, ServerFrame, Ui};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Longest wait for a connect or for the reply to `open`.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a clean close at the end.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The `ref` of the `open` request.
const OPEN_REF: &str = "open";

/// Why a guest (or talker) could not join its conversation.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("connect: {0}")]
    Connect(String),
    /// The server answered `open` with an error frame.
    #[error("open: {0}")]
    Refused(String),
    #[error("open: {0}")]
    Open(String),
}

impl JoinError {
    /// The key under which the error is counted (e.g. `open: guest_limit_reached`).
    pub fn key(&self) -> String {
        self.to_string()
    }
}

/// A joined connection.
pub struct Joined {
    pub ws: Ws,
    pub connect: Duration,
    pub open: Duration,
    /// When `opened` arrived, µs on the run clock.
    pub opened_at: u64,
}

/// Connects to node `node` as `user_id` and opens `conversation_id`, as a guest or as a participant.
pub async fn join(
    ctx: &Ctx,
    node: usize,
    user_id: &str,
    conversation_id: &str,
    as_guest: bool,
) -> Result<Joined, JoinError> {
    let rest = ctx.node(node);
    let url = rest.realtime_url(&rest.token(user_id));
    let started = Instant::now();
    let mut ws = match tokio::time::timeout(JOIN_TIMEOUT, connect_ws_tls(&url, WsConfig::default(), rest.tls())).await {
        Err(_) => return Err(JoinError::Connect(format!("timed out after {JOIN_TIMEOUT:?}"))),
        Ok(Err(e)) => return Err(JoinError::Connect(short_error(&e.to_string()))),
        Ok(Ok(ws)) => ws,
    };
    let connect = started.elapsed();
    let open_started = Instant::now();
    let frame = ClientFrame::Open {
        reference: Some(OPEN_REF.into()),
        conversation_id: conversation_id.into(),
        ui: Ui::Chatbox,
        as_guest,
    };
    let text = serde_json::to_string(&frame).expect("frames always serialize");
    if let Err(e) = ws.send(Message::text(text)).await {
        return Err(JoinError::Open(short_error(&e.to_string())));
    }
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    loop {
        let next = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err(JoinError::Open(format!("no reply within {JOIN_TIMEOUT:?}"))),
            Ok(next) => next,
        };
        let arrival = Instant::now();
        match next {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerFrame>(t.as_str()) {
                Ok(ServerFrame::Opened { reference, .. }) if reference.as_deref() == Some(OPEN_REF) => {
                    return Ok(Joined {
                        ws,
                        connect,
                        open: arrival.duration_since(open_started),
                        opened_at: ctx.recorder.clock().micros_at(arrival),
                    });
                }
                Ok(ServerFrame::Error { reference, code, .. }) if reference.as_deref() == Some(OPEN_REF) => {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
                    return Err(JoinError::Refused(code));
                }
                Ok(_) => {}
                Err(_) => return Err(JoinError::Open("a reply that is not protocol".into())),
            },
            Some(Ok(Message::Close(c))) => {
                let code = c.map(|c| u16::from(c.code).to_string()).unwrap_or_else(|| "no code".into());
                return Err(JoinError::Open(format!("closed by the server ({code})")));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(JoinError::Open(short_error(&e.to_string()))),
            None => return Err(JoinError::Open("connection ended".into())),
        }
    }
}

/// Error texts become counter keys: keep them short and free of addresses.
fn short_error(e: &str) -> String {
    let e = e.split(" (os error").next().unwrap_or(e);
    e.chars().take(80).collect()
}

/// The guest's goose session: how to stop its read task and how it ended.
pub struct GuestSession {
    pub guest: usize,
    /// Cancelled by the guest's `on_stop` transaction; a child of the run's stop token.
    stop: CancellationToken,
    /// The read task, taken when the guest stops.
    task: Mutex<Option<JoinHandle<()>>>,
    /// Woken when the server closes the connection.
    pub closed: Notify,
    /// How the server closed it (code, reason, lifetime), until the receive transaction reports it to goose.
    close: Mutex<Option<(Option<u16>, String, Duration)>>,
}

impl GuestSession {
    /// Takes the server's close, once.
    pub fn take_close(&self) -> Option<(Option<u16>, String, Duration)> {
        self.close.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Stops the read task (which closes the socket) and waits for it, bounded.
    pub async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT * 2, task).await;
        }
    }
}

/// Starts the read task of guest `guest` on its joined connection.
pub fn start_receiving(ctx: &Ctx, guest: usize, joined: Joined) -> Arc<GuestSession> {
    let session = Arc::new(GuestSession {
        guest,
        stop: ctx.stop.child_token(),
        task: Mutex::new(None),
        closed: Notify::new(),
        close: Mutex::new(None),
    });
    let task = tokio::spawn(receive(ctx.clone(), session.clone(), joined.ws, joined.opened_at));
    *session.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    session
}

/// The parts of a server frame the hot path reads; everything else is skipped unparsed.
#[derive(Deserialize)]
struct FrameHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    /// A `message` frame's message; an `error` frame's `message` is its text, which is skipped.
    #[serde(default, borrow)]
    message: Option<MessageField<'a>>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
}

/// The `message` member: an object in a `message` frame, a string in an `error` frame.
enum MessageField<'a> {
    Message(MessageHead<'a>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for MessageField<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Either<'a> {
            type Value = MessageField<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a message object or a text")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                MessageHead::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(MessageField::Message)
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(MessageField::Other)
            }
        }
        d.deserialize_any(Either(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct MessageHead<'a> {
    #[serde(default, borrow)]
    custom: Option<LoadFields<'a>>,
}

/// What a talker puts in `custom`: who sent it, which one it is, when it was meant to go.
#[derive(Deserialize)]
struct LoadFields<'a> {
    #[serde(rename = "lg.k", borrow)]
    talker: Option<Cow<'a, str>>,
    #[serde(rename = "lg.seq", borrow)]
    seq: Option<Cow<'a, str>>,
    #[serde(rename = "lg.t", borrow)]
    intended: Option<Cow<'a, str>>,
}

/// `(talker, seq, intended µs)` of one of this run's messages.
fn load_fields(m: &MessageField<'_>) -> Option<(usize, u64, u64)> {
    let MessageField::Message(m) = m else { return None };
    let c = m.custom.as_ref()?;
    Some((c.talker.as_ref()?.parse().ok()?, c.seq.as_ref()?.parse().ok()?, c.intended.as_ref()?.parse().ok()?))
}

/// `(talker, seq, intended µs)` read straight from the text of a `message` frame
/// of this run: the values of the keys `"lg.k"`, `"lg.seq"` and `"lg.t"` (each a
/// string of digits). Only a talker of this run writes those keys, and the
/// sequence `"lg.k":` cannot occur inside a JSON string (a quote in a string is
/// escaped), so three hits are the message's own fields. `None` when any is
/// missing or not digits: the caller then parses the frame properly.
fn scan_load_fields(text: &str) -> Option<(usize, u64, u64)> {
    Some((digits_after(text, "\"lg.k\"")?, digits_after(text, "\"lg.seq\"")?, digits_after(text, "\"lg.t\"")?))
}

/// The number in `KEY : "DIGITS"` (JSON whitespace allowed around the colon).
fn digits_after<T: std::str::FromStr>(text: &str, key: &str) -> Option<T> {
    let rest = text[text.find(key)? + key.len()..].trim_start_matches([' ', '\t', '\n', '\r']);
    let rest = rest.strip_prefix(':')?.trim_start_matches([' ', '\t', '\n', '\r']).strip_prefix('"')?;
    let end = rest.find('"')?;
    let digits = &rest[..end];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

async fn receive(ctx: Ctx, session: Arc<GuestSession>, mut ws: Ws, opened_at: u64) {
    let plan = &ctx.plan;
    let rec = &ctx.recorder;
    let clock = rec.clock();
    let conversation = plan.guest_conversation(session.guest);
    let conversations = plan.workload.conversations;
    let mut tracker = DeliveryTracker::new(plan.workload.talkers_in(conversation), plan.messages_per_talker());
    let shard = session.guest % SHARDS;
    let mut closed_by_server_at = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = session.stop.cancelled() => break,
            next = ws.next() => next,
        };
        let arrival = Instant::now();
        match next {
            Some(Ok(Message::Text(t))) => {
                // Fast path: a message of this run, found by its three load fields without
                // parsing the frame; anything else goes through the typed parse below.
                if let Some((k, seq, intended)) = scan_load_fields(t.as_str()) {
                    if k % conversations != conversation {
                        rec.error("guest: a message from another conversation");
                    } else if tracker.observe(k / conversations, seq) != Observation::Unexpected {
                        rec.delivery(shard, k, seq, intended, clock.micros_at(arrival));
                    }
                    continue;
                }
                let Ok(head) = serde_json::from_str::<FrameHead<'_>>(t.as_str()) else {
                    rec.error("guest: a frame that is not protocol");
                    continue;
                };
                match head.kind.as_ref() {
                    "message" => {
                        // A message without load fields was not sent by this run: not counted.
                        let Some((k, seq, intended)) = head.message.as_ref().and_then(load_fields) else { continue };
                        if k % conversations != conversation {
                            rec.error("guest: a message from another conversation");
                            continue;
                        }
                        if tracker.observe(k / conversations, seq) != Observation::Unexpected {
                            rec.delivery(shard, k, seq, intended, clock.micros_at(arrival));
                        }
                    }
                    "error" => rec.error(format!("guest: {}", head.code.as_deref().unwrap_or("error without code"))),
                    _ => {}
                }
            }
            Some(Ok(Message::Close(c))) => {
                let (code, reason) = c.map(|c| (Some(u16::from(c.code)), c.reason.to_string())).unwrap_or_default();
                closed_by_server_at = Some(server_closed(&ctx, &session, code, reason, arrival, opened_at));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let reason = short_error(&e.to_string());
                closed_by_server_at = Some(server_closed(&ctx, &session, None, reason, arrival, opened_at));
                break;
            }
            None => {
                closed_by_server_at =
                    Some(server_closed(&ctx, &session, None, "connection ended".into(), arrival, opened_at));
                break;
            }
        }
    }
    if closed_by_server_at.is_none() {
        close_cleanly(&mut ws).await;
    }
    let c = rec.counters();
    c.guests_connected.fetch_sub(1, Relaxed);
    c.guests_open.fetch_sub(1, Relaxed);
    rec.guest_open_changed(conversation, false);
    rec.guest_finished(GuestOutcome {
        node: plan.guest_node(session.guest),
        conversation,
        opened_at,
        intervals: vec![Interval { opened_at, end: IntervalEnd::Open }],
        open_at_end: closed_by_server_at.is_none(),
        closed_by_server_at,
        tracker,
    });
}

/// Records a close the guest did not ask for; returns when it happened (µs).
fn server_closed(
    ctx: &Ctx,
    session: &GuestSession,
    code: Option<u16>,
    reason: String,
    at: Instant,
    opened_at: u64,
) -> u64 {
    let rec = &ctx.recorder;
    let code_text = code.map(|c| c.to_string()).unwrap_or_else(|| "no close frame".into());
    rec.error(format!("close: {code_text} {reason}").trim_end().to_string());
    rec.counters().guests_closed_by_server.fetch_add(1, Relaxed);
    let at_us = rec.clock().micros_at(at);
    let lifetime = Duration::from_micros(at_us.saturating_sub(opened_at));
    *session.close.lock().unwrap_or_else(|e| e.into_inner()) = Some((code, reason, lifetime));
    session.closed.notify_one();
    at_us
}

/// Sends a close frame and reads until the server's close arrives, bounded.
pub async fn close_cleanly(ws: &mut Ws) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if ws.close(None).await.is_ok() {
            while let Some(Ok(m)) = ws.next().await {
                if m.is_close() {
                    break;
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_load_fields_from_a_message_frame() {
        let text = r#"{"type":"message","message":{"id":"msg_1","conversationId":"c","senderId":"t","type":"UserMessage",
            "text":"x","custom":{"lg.k":"3","lg.seq":"17","lg.t":"123456","other":"y"},"createdAt":1,"origin":"realtime"}}"#;
        let head: FrameHead<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(head.kind, "message");
        assert_eq!(load_fields(head.message.as_ref().unwrap()), Some((3, 17, 123456)));
        let foreign: FrameHead<'_> =
            serde_json::from_str(r#"{"type":"message","message":{"custom":{"a":"b"},"text":"x"}}"#).unwrap();
        assert_eq!(load_fields(foreign.message.as_ref().unwrap()), None);
        let err: FrameHead<'_> = serde_json::from_str(r#"{"type":"error","code":"not_open","message":"m"}"#).unwrap();
        assert_eq!(err.code.as_deref(), Some("not_open"));
    }

    #[test]
    fn scans_load_fields_without_parsing_and_agrees_with_the_parser() {
        let text = r#"{"type":"message","message":{"id":"msg_1","conversationId":"c","senderId":"t","type":"UserMessage",
            "text":"say \"lg.k\":\"9\"","custom":{"lg.k":"3","lg.seq":"17","lg.t":"123456","other":"y"},"createdAt":1}}"#;
        assert_eq!(scan_load_fields(text), Some((3, 17, 123456)));
        let head: FrameHead<'_> = serde_json::from_str(text).unwrap();
        assert_eq!(load_fields(head.message.as_ref().unwrap()), scan_load_fields(text));
        let spaced = r#"{"type": "message", "message": {"custom": {"lg.k" : "1", "lg.seq": "2", "lg.t":"3"}}}"#;
        assert_eq!(scan_load_fields(spaced), Some((1, 2, 3)));
        assert_eq!(scan_load_fields(r#"{"type":"error","code":"not_open","message":"m"}"#), None);
        assert_eq!(scan_load_fields(r#"{"custom":{"lg.k":"x","lg.seq":"2","lg.t":"3"}}"#), None);
        assert_eq!(scan_load_fields(r#"{"custom":{"lg.k":"1","lg.t":"3"}}"#), None);
    }

    #[test]
    fn error_keys_drop_os_detail() {
        assert_eq!(short_error("IO error: Too many open files (os error 24)"), "IO error: Too many open files");
    }
}
