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
//! socket cleanly. With churn or a reconnect storm (see [`crate::churn`]) the
//! same task also leaves (`close`, `closed`, clean close) or drops its socket
//! on the guest's turns and rejoins, recording each stretch it had the
//! conversation open as an [`Interval`] for the completeness count. Every
//! wait here is bounded.

use crate::churn::{CHURN_PAUSE, Disruption, REJOIN_ATTEMPTS, REJOIN_BACKOFF, Turns};
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
/// The `ref` of a churning guest's `close`.
const CLOSE_REF: &str = "leave";

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
    /// The `ref` of a reply (`closed` to a churning guest's `close`).
    #[serde(rename = "ref", default, borrow)]
    reference: Option<Cow<'a, str>>,
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

/// How reading one connection ended.
enum ReadEnd {
    /// The run stopped the guest.
    Stopped,
    /// The server closed the connection (or it failed), at this time (µs).
    ServerClosed(u64),
    /// The first message's time became known: plan the turns.
    StartKnown,
    /// A churn turn or the reconnect storm is due.
    Due(Disruption),
}

/// What a guest waits for besides frames.
enum Due {
    /// Nothing planned (no churn, no storm, or none left).
    Never,
    /// Turns are planned from the first message's time, not fixed yet.
    WaitStart,
    /// This disruption at this instant.
    At(tokio::time::Instant, Disruption),
}

/// A frame that matters to the guest's own requests.
#[derive(PartialEq)]
enum Seen {
    Other,
    /// The `closed` answering the guest's `close` (a churn turn).
    Closed,
}

/// A guest's receive side across its connections: the delivery tracker (kept over every
/// re-open, so a duplicate or a reordering across a rejoin is still seen) and where it records.
struct Receiver {
    ctx: Ctx,
    session: Arc<GuestSession>,
    tracker: DeliveryTracker,
    shard: usize,
    conversation: usize,
    /// On a connection re-opened after a leave or drop: deliveries go to the "returned" fan-out too.
    returned: bool,
}

impl Receiver {
    /// Handles one text frame that arrived at `arrival`.
    fn on_text(&mut self, text: &str, arrival: Instant) -> Seen {
        let rec = &self.ctx.recorder;
        let conversations = self.ctx.plan.workload.conversations;
        // Fast path: a message of this run, found by its three load fields without
        // parsing the frame; anything else goes through the typed parse below.
        let fields = match scan_load_fields(text) {
            Some(f) => Some(f),
            None => {
                let Ok(head) = serde_json::from_str::<FrameHead<'_>>(text) else {
                    rec.error("guest: a frame that is not protocol");
                    return Seen::Other;
                };
                match head.kind.as_ref() {
                    // A message without load fields was not sent by this run: not counted.
                    "message" => head.message.as_ref().and_then(load_fields),
                    "error" => {
                        rec.error(format!("guest: {}", head.code.as_deref().unwrap_or("error without code")));
                        return Seen::Other;
                    }
                    "closed" if head.reference.as_deref() == Some(CLOSE_REF) => return Seen::Closed,
                    _ => return Seen::Other,
                }
            }
        };
        let Some((k, seq, intended)) = fields else { return Seen::Other };
        if k % conversations != self.conversation {
            rec.error("guest: a message from another conversation");
        } else if self.tracker.observe(k / conversations, seq) != Observation::Unexpected {
            let at = rec.clock().micros_at(arrival);
            if self.returned {
                rec.delivery_returned(self.shard, k, seq, intended, at);
            } else {
                rec.delivery(self.shard, k, seq, intended, at);
            }
        }
        Seen::Other
    }

    /// Reads `ws` until the run stops the guest, the server closes it, or `due` comes.
    async fn read(&mut self, ws: &mut Ws, due: Due, opened_at: u64) -> ReadEnd {
        let (deadline, what) = match due {
            Due::At(at, what) => (Some(at), Some(what)),
            _ => (None, None),
        };
        // Polled only when armed: a guest without churn pays nothing per frame.
        let sleep = tokio::time::sleep_until(deadline.unwrap_or_else(|| tokio::time::Instant::now() + DAY));
        tokio::pin!(sleep);
        let started = self.ctx.recorder.started();
        let start_known = started.cancelled();
        tokio::pin!(start_known);
        let wait_start = matches!(due, Due::WaitStart);
        loop {
            let next = tokio::select! {
                biased;
                _ = self.session.stop.cancelled() => return ReadEnd::Stopped,
                _ = &mut sleep, if what.is_some() => return ReadEnd::Due(what.expect("armed only with a disruption")),
                _ = &mut start_known, if wait_start => return ReadEnd::StartKnown,
                next = ws.next() => next,
            };
            let arrival = Instant::now();
            let (code, reason) = match next {
                Some(Ok(Message::Text(t))) => {
                    self.on_text(t.as_str(), arrival);
                    continue;
                }
                Some(Ok(Message::Close(c))) => {
                    c.map(|c| (Some(u16::from(c.code)), c.reason.to_string())).unwrap_or_default()
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => (None, short_error(&e.to_string())),
                None => (None, "connection ended".into()),
            };
            return ReadEnd::ServerClosed(server_closed(&self.ctx, &self.session, code, reason, arrival, opened_at));
        }
    }

    /// A churn turn: `close` the conversation, read until `closed` (deliveries still count),
    /// close the socket cleanly. Every message acked before the `close` went out was stored
    /// while the guest had the conversation open, so it must have arrived by `closed`.
    async fn leave(&mut self, ws: &mut Ws) -> IntervalEnd {
        let rec = self.ctx.recorder.clone();
        let at = rec.clock().now_micros();
        let frame = ClientFrame::Close {
            reference: Some(CLOSE_REF.into()),
            conversation_id: self.ctx.plan.conversation_id(self.conversation),
        };
        let text = serde_json::to_string(&frame).expect("frames always serialize");
        match tokio::time::timeout(CLOSE_TIMEOUT, ws.send(Message::text(text))).await {
            Ok(Ok(())) => {
                let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
                loop {
                    let next = match tokio::time::timeout_at(deadline, ws.next()).await {
                        Err(_) => {
                            rec.error(format!("churn: no `closed` within {CLOSE_TIMEOUT:?}"));
                            break;
                        }
                        Ok(next) => next,
                    };
                    let arrival = Instant::now();
                    match next {
                        Some(Ok(Message::Text(t))) => {
                            if self.on_text(t.as_str(), arrival) == Seen::Closed {
                                break;
                            }
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            rec.error("churn: the connection ended before `closed`");
                            break;
                        }
                        Some(Ok(_)) => {}
                    }
                }
            }
            Ok(Err(e)) => rec.error(format!("churn: close: {}", short_error(&e.to_string()))),
            Err(_) => rec.error(format!("churn: close not written within {CLOSE_TIMEOUT:?}")),
        }
        close_cleanly(ws).await;
        IntervalEnd::Left { at }
    }

    /// Reconnects and opens again: up to [`REJOIN_ATTEMPTS`] attempts, [`REJOIN_BACKOFF`]
    /// apart, each failure counted. `None` when every attempt failed (the guest gives up) or
    /// the run stopped.
    async fn rejoin(&self) -> Option<Joined> {
        let (ctx, stop) = (&self.ctx, &self.session.stop);
        let plan = &ctx.plan;
        let g = self.session.guest;
        let c = ctx.recorder.counters();
        let (conversation, user) = (plan.conversation_id(self.conversation), plan.guest_id(g));
        for attempt in 0..REJOIN_ATTEMPTS {
            if attempt > 0 {
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(REJOIN_BACKOFF[attempt - 1]) => {}
                }
            }
            let result = tokio::select! {
                biased;
                _ = stop.cancelled() => return None,
                r = join(ctx, plan.guest_node(g), &user, &conversation, true) => r,
            };
            match result {
                Ok(joined) => {
                    ctx.recorder.rejoin_times(joined.connect, joined.open);
                    c.rejoined.fetch_add(1, Relaxed);
                    return Some(joined);
                }
                Err(e) => {
                    match e {
                        JoinError::Refused(_) => c.reopen_refused.fetch_add(1, Relaxed),
                        _ => c.reconnect_failed.fetch_add(1, Relaxed),
                    };
                    ctx.recorder.error(format!("rejoin {}", e.key()));
                }
            }
        }
        c.rejoin_gave_up.fetch_add(1, Relaxed);
        None
    }
}

/// Far enough never to come within a run.
const DAY: Duration = Duration::from_secs(86_400);

/// The first message's time and the end of the turns (µs after it: the send window's end, or
/// where a staged run stopped sending), once the first is fixed.
fn turn_window(ctx: &Ctx) -> Option<(u64, u64)> {
    let rec = &ctx.recorder;
    let start = rec.send_start()?;
    let window_end = start + (ctx.plan.workload.duration * 1e6) as u64;
    Some((start, rec.send_stop().map_or(window_end, |s| s.min(window_end)).saturating_sub(start)))
}

/// The guest's next disruption, skipping (and counting) turns that passed while it was away.
fn next_due(ctx: &Ctx, turns: &mut Turns) -> Due {
    let rec = &ctx.recorder;
    let Some((start, stop)) = turn_window(ctx) else { return Due::WaitStart };
    let now = rec.clock().now_micros().saturating_sub(start);
    rec.counters().leaves_skipped.fetch_add(turns.skip_past(now), Relaxed);
    match turns.next(stop) {
        None => Due::Never,
        Some((at, what)) => Due::At(tokio::time::Instant::from_std(rec.clock().instant_at(start + at)), what),
    }
}

async fn receive(ctx: Ctx, session: Arc<GuestSession>, ws: Ws, first_opened_at: u64) {
    let plan = &ctx.plan;
    let rec = ctx.recorder.clone();
    let c = rec.counters();
    let conversation = plan.guest_conversation(session.guest);
    let mut turns = Turns::new(plan, session.guest);
    let churns = turns.any();
    let mut r = Receiver {
        tracker: DeliveryTracker::new(plan.workload.talkers_in(conversation), plan.messages_per_talker()),
        shard: session.guest % SHARDS,
        conversation,
        returned: false,
        ctx: ctx.clone(),
        session: session.clone(),
    };
    // The connection; `None` while away (a dropped socket is gone at once).
    let (mut conn, mut opened_at) = (Some(ws), first_opened_at);
    let mut intervals = Vec::new();
    let mut closed_by_server_at = None;
    // Connected with the conversation open: false while away and after giving up.
    let mut open = true;
    while let Some(ws) = conn.as_mut() {
        let due = if churns { next_due(&ctx, &mut turns) } else { Due::Never };
        let what = match r.read(ws, due, opened_at).await {
            ReadEnd::StartKnown => continue,
            ReadEnd::Stopped => {
                close_cleanly(ws).await;
                intervals.push(Interval { opened_at, end: IntervalEnd::Open });
                break;
            }
            ReadEnd::ServerClosed(at) => {
                intervals.push(Interval { opened_at, end: IntervalEnd::Open });
                closed_by_server_at = Some(at);
                break;
            }
            ReadEnd::Due(what) => what,
        };
        turns.taken(what);
        let end = match what {
            Disruption::Leave => {
                c.leaves.fetch_add(1, Relaxed);
                r.leave(ws).await
            }
            Disruption::Drop => {
                c.drops.fetch_add(1, Relaxed);
                IntervalEnd::Dropped { highest: r.tracker.highest() }
            }
        };
        intervals.push(Interval { opened_at, end });
        // A dropped socket goes without a word: dropping the stream closes the TCP connection.
        drop(conn.take());
        rec.guest_away(conversation, opened_at, &r.tracker);
        open = false;
        c.guests_connected.fetch_sub(1, Relaxed);
        c.guests_open.fetch_sub(1, Relaxed);
        rec.guest_open_changed(conversation, false);
        if what == Disruption::Leave {
            tokio::select! {
                _ = session.stop.cancelled() => break,
                _ = tokio::time::sleep(CHURN_PAUSE) => {}
            }
        }
        let Some(joined) = r.rejoin().await else { break };
        conn = Some(joined.ws);
        opened_at = joined.opened_at;
        open = true;
        r.returned = true;
        c.guests_connected.fetch_add(1, Relaxed);
        c.guests_open.fetch_add(1, Relaxed);
        rec.guest_open_changed(conversation, true);
    }
    // Turns left to a guest that gave up or was closed by the server are skipped, so turns
    // taken + skipped = planned whenever every guest opened.
    if let Some((_, stop)) = turn_window(&ctx).filter(|_| churns) {
        c.leaves_skipped.fetch_add(turns.skip_past(stop), Relaxed);
    }
    if open {
        c.guests_connected.fetch_sub(1, Relaxed);
        c.guests_open.fetch_sub(1, Relaxed);
        rec.guest_open_changed(conversation, false);
    }
    rec.guest_finished(GuestOutcome {
        node: plan.guest_node(session.guest),
        conversation,
        opened_at: first_opened_at,
        intervals,
        open_at_end: open && closed_by_server_at.is_none(),
        closed_by_server_at,
        tracker: r.tracker,
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
