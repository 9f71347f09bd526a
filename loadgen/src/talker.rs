//! A talker: a participant (ReadWrite) who sends on a fixed schedule, the
//! open model of wrk2. Message `seq` of a talker is intended to go at
//! `send_start + seq / rate`; that time travels in the message
//! (`custom["lg.t"]`) and every latency is measured from it, so a talker that
//! falls behind (a slow `send`, a stalled server) makes later messages look
//! late instead of quietly sending them later. Nothing is corrected twice:
//! the schedule is the only correction.
//!
//! The first message's time is fixed by the run's conductor once every user
//! has joined (see `run.rs`); until then `send` returns after 20 ms.
//! The goose `send` transaction writes every message that is due, for at
//! most one second, then returns so goose can stop the user. Acks come back
//! on the talker's own read task (like a guest's), which records send-to-ack
//! latency (from the intended time) and queues it for the next `send`
//! transaction to report to goose.

use crate::context::Ctx;
use crate::guest::{CLOSE_TIMEOUT, Joined, close_cleanly};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use supergroup_protocol::client::Ws;
use supergroup_protocol::frames::ClientFrame;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Longest a `send` transaction runs, so goose can stop the user.
pub const TRANSACTION_BOUND: Duration = Duration::from_secs(1);
/// Longest wait for one frame to be written.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Acks queued for goose; past this, acks are still in the HDR histogram but not in goose's report.
const ACK_QUEUE: usize = 10_000;

/// The `ref` of message `seq`.
fn send_ref(seq: u64) -> String {
    format!("m{seq}")
}

/// The talker's goose session.
pub struct TalkerSession {
    /// Global talker number.
    pub talker: usize,
    /// The write half of the socket; only the `send` transaction and the stop use it (`None` once stopped).
    sink: tokio::sync::Mutex<Option<SplitSink<Ws, Message>>>,
    /// The next message to send.
    next_seq: Mutex<u64>,
    /// Send-to-ack latencies not yet reported to goose (bounded by [`ACK_QUEUE`], newest dropped).
    acks: Mutex<VecDeque<Duration>>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<SplitStream<Ws>>>>,
}

impl TalkerSession {
    /// Starts the read task of talker `talker` on its joined connection.
    pub fn start(ctx: &Ctx, talker: usize, joined: Joined) -> Arc<TalkerSession> {
        let (sink, stream) = joined.ws.split();
        let session = Arc::new(TalkerSession {
            talker,
            sink: tokio::sync::Mutex::new(Some(sink)),
            next_seq: Mutex::new(0),
            acks: Mutex::new(VecDeque::new()),
            stop: ctx.stop.child_token(),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(read_acks(ctx.clone(), session.clone(), stream));
        *session.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        session
    }

    /// Send-to-ack latencies since the last call.
    pub fn take_acks(&self) -> Vec<Duration> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect()
    }

    /// Sends what is due for at most [`TRANSACTION_BOUND`]; returns how many went out.
    pub async fn send_due(&self, ctx: &Ctx) -> Result<u64, String> {
        let plan = &ctx.plan;
        let clock = ctx.recorder.clock();
        let per = plan.messages_per_talker();
        let deadline = Instant::now() + TRANSACTION_BOUND;
        let mut sent = 0;
        let Some(send_start) = ctx.recorder.send_start() else {
            // Joins are still going on: wait (bounded) for the conductor to fix the start.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Ok(0);
        };
        loop {
            let seq = *self.next_seq.lock().unwrap_or_else(|e| e.into_inner());
            let intended = plan.intended_micros(send_start, seq);
            // Done, stopping (the connection ended: the read task cancelled `stop`), or a staged
            // run crossed its line: idle out the transaction's time. Not a moment less: goose
            // calls `send` again at once, and a transaction that never waits would hog a runtime
            // thread (this is what kept a run from ending when its server died).
            if seq >= per || self.stop.is_cancelled() || ctx.recorder.send_stop().is_some_and(|stop| intended >= stop) {
                tokio::time::sleep_until(deadline.into()).await;
                return Ok(sent);
            }
            let due = clock.instant_at(intended);
            if due > deadline {
                tokio::time::sleep_until(deadline.into()).await;
                return Ok(sent);
            }
            tokio::time::sleep_until(due.into()).await;
            let mut custom = BTreeMap::new();
            custom.insert("lg.k".to_string(), self.talker.to_string());
            custom.insert("lg.seq".to_string(), seq.to_string());
            custom.insert("lg.t".to_string(), intended.to_string());
            let frame = ClientFrame::Send {
                reference: Some(send_ref(seq)),
                conversation_id: plan.conversation_id(plan.talker_conversation(self.talker)),
                text: ctx.text.to_string(),
                custom: Some(custom),
                idempotency_key: None,
            };
            let text = serde_json::to_string(&frame).expect("frames always serialize");
            let mut guard = self.sink.lock().await;
            let Some(sink) = guard.as_mut() else {
                drop(guard);
                tokio::time::sleep_until(deadline.into()).await;
                return Ok(sent);
            };
            // Recorded before the write, so an ack can never arrive before its send is known.
            ctx.recorder.message_sent(self.talker, seq, intended, clock.now_micros());
            *self.next_seq.lock().unwrap_or_else(|e| e.into_inner()) = seq + 1;
            match tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::text(text))).await {
                Ok(Ok(())) => sent += 1,
                Ok(Err(e)) => {
                    ctx.recorder.counters().send_failed.fetch_add(1, Relaxed);
                    ctx.recorder.error("send: write failed");
                    return Err(e.to_string());
                }
                Err(_) => {
                    ctx.recorder.counters().send_failed.fetch_add(1, Relaxed);
                    ctx.recorder.error("send: write timed out");
                    return Err(format!("write timed out after {WRITE_TIMEOUT:?}"));
                }
            }
        }
    }

    /// Stops the read task and closes the socket cleanly, bounded.
    pub async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(task) = task else { return };
        if let Ok(Ok(stream)) = tokio::time::timeout(CLOSE_TIMEOUT, task).await {
            let sink = self.sink.lock().await.take();
            if let Some(Ok(mut ws)) = sink.map(|s| s.reunite(stream)) {
                close_cleanly(&mut ws).await;
            }
        }
    }
}

/// The parts of a frame a talker reads.
#[derive(Deserialize)]
struct ReplyHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "ref", default, borrow)]
    reference: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
}

async fn read_acks(ctx: Ctx, session: Arc<TalkerSession>, mut stream: SplitStream<Ws>) -> SplitStream<Ws> {
    let rec = &ctx.recorder;
    let clock = rec.clock();
    loop {
        let next = tokio::select! {
            biased;
            _ = session.stop.cancelled() => break,
            next = stream.next() => next,
        };
        let arrival = Instant::now();
        match next {
            Some(Ok(Message::Text(t))) => {
                let Ok(head) = serde_json::from_str::<ReplyHead<'_>>(t.as_str()) else {
                    rec.error("talker: a frame that is not protocol");
                    continue;
                };
                let seq =
                    head.reference.as_deref().and_then(|r| r.strip_prefix('m')).and_then(|s| s.parse::<u64>().ok());
                match (head.kind.as_ref(), seq) {
                    ("ack", Some(seq)) => {
                        if let Some(latency) = rec.message_acked(session.talker, seq, clock.micros_at(arrival)) {
                            let mut acks = session.acks.lock().unwrap_or_else(|e| e.into_inner());
                            if acks.len() < ACK_QUEUE {
                                acks.push_back(latency);
                            }
                        }
                    }
                    ("error", _) => {
                        if let Some(seq) = seq {
                            rec.message_refused(session.talker, seq);
                            rec.counters().send_failed.fetch_add(1, Relaxed);
                        }
                        rec.error(format!("send: {}", head.code.as_deref().unwrap_or("error without code")));
                    }
                    _ => {}
                }
            }
            Some(Ok(Message::Close(c))) => {
                let code = c.map(|c| format!("{} {}", u16::from(c.code), c.reason)).unwrap_or_else(|| "no code".into());
                rec.error(format!("talker close: {code}").trim_end().to_string());
                session.stop.cancel();
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                rec.error("talker close: connection ended");
                session.stop.cancel();
                break;
            }
        }
    }
    rec.counters().talkers_open.fetch_sub(1, Relaxed);
    stream
}

#[cfg(test)]
mod tests {
    #[test]
    fn refs_name_the_sequence_number() {
        assert_eq!(super::send_ref(17), "m17");
    }
}
