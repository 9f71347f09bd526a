//! One realtime connection, as one task: it reads client frames and handles
//! them in order, and writes whatever the hub or its own replies queued. A
//! single task (no separate writer) keeps an idle connection small.
//!
//! Talkers: at its first frame that waits for the writer (a `send`), the
//! connection moves, whole, to the talkers' runtime ([`crate::talkers`]), if
//! it has a place left, and lives there on; so a sender's frames and acks are
//! not queued behind the fan-out rounds of thousands of listeners.
//!
//! Pipelining: a `send` is queued to the group-commit writer and the
//! connection reads on; replies wait in a FIFO ([`FuturesOrdered`]) so they
//! go out in the order of the frames they answer (SG-RT-2), a ready reply
//! behind a pending ack included. At most [`MAX_IN_FLIGHT`] replies may be
//! pending; at that bound the connection stops reading its socket until the
//! oldest is answered (backpressure, not an error; SPEC.md 10.1).
//!
//! Writing: every frame already queued is fed to the socket before one flush,
//! so a burst (a whole group commit arrives as one queue item) costs one
//! syscall per connection rather than one per frame.
//!
//! A slow consumer is a peer that does not read: first the kernel's socket
//! buffers fill, then our writes stall, then the outbound queue overflows.
//! Either sign, the queue overflowing (see [`crate::hub`]) even while a write
//! is stuck, or one write not finishing in `--ws-write-timeout` (10 s), closes the
//! connection with 1008 `slow consumer`: queued frames are dropped, and the
//! close frame follows the bytes already written, so a peer that reads again
//! sees every frame it was sent and then the close.
//!
//! Other closes: 1009 for a message over 64 KiB, 1001 on shutdown. On the way
//! out the connection leaves every conversation it had open, which frees
//! guest slots and leaves no trace of a guest.
//!
//! Liveness: the server pings every `--ws-ping-interval` (25 s); a connection
//! from which nothing arrives, pongs included, for `--ws-idle-timeout` (60 s)
//! is closed with 4000 `idle timeout`, so a phone that dropped off the network
//! gives back its guest slots. On shutdown, frames already queued (acks of
//! frames already handled, broadcasts) are written before the 1001 close,
//! for at most [`FLUSH_ON_SHUTDOWN`].

use super::handler::{Answer, Handler, Pending};
use super::user_cap::UserSlot;
use crate::hub::{Frames, Outbox};
use crate::metrics::Metrics;
use crate::state::{App, AppState};
use crate::talkers::Place;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::FuturesOrdered;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use supergroup_protocol::frames::close;

/// How long the close frame may wait for the peer (a slow consumer's close
/// follows the bytes already written, so it gets this long to read them).
pub(crate) const CLOSE_WRITE_LIMIT: Duration = Duration::from_secs(10);
/// Frames fed before a flush, at most, so one busy connection cannot starve the runtime.
const BATCH: usize = 256;
/// How long a shutting-down connection may spend writing its queued frames before the 1001 close.
pub(crate) const FLUSH_ON_SHUTDOWN: Duration = Duration::from_secs(2);
/// Replies of one connection waiting for the writer, at most (SPEC.md 10.1):
/// at this bound the connection stops reading until the oldest is answered.
pub const MAX_IN_FLIGHT: usize = 32;
/// How long the socket is kept after a 1009 close. The oversized message's
/// remaining bytes are still unread (tungstenite stops at the frame header and
/// reads nothing more); dropping the socket at once would make the kernel answer
/// with a reset that can reach the peer before our close frame does, or break
/// its write still in progress. One second per oversized message, bounded.
pub(crate) const LINGER_AFTER_TOO_BIG: Duration = Duration::from_secs(1);

pub async fn run(state: AppState, app: Arc<App>, user: String, slot: UserSlot, socket: WebSocket) {
    let conn = Conn::new(state, app, user, slot, socket);
    if let Some(conn) = conn.serve().await {
        // It sent: the rest of its life runs on the talkers' runtime. This
        // task waits for it (the server's tracker still counts it).
        let talkers = conn.state.talkers.handle().clone();
        let _ = talkers.spawn(async move { conn.serve().await }).await;
    }
}

/// Everything one connection owns, so that it can move to the talkers' runtime whole.
struct Conn {
    state: AppState,
    app_id: String,
    user: String,
    _counted: crate::metrics::ConnectionGuard,
    socket: WebSocket,
    rx: tokio::sync::mpsc::Receiver<Frames>,
    slow: Arc<tokio::sync::Notify>,
    replies: Outbox,
    handler: Handler,
    pending: FuturesOrdered<Pending>,
    /// Its place on the talkers' runtime, once moved there.
    place: Option<Place>,
}

impl Conn {
    fn new(state: AppState, app: Arc<App>, user: String, slot: UserSlot, socket: WebSocket) -> Conn {
        let (_counted, app_id) = (state.metrics.connection(), app.config.id.clone());
        let (outbox, rx, slow) = Outbox::new(&user, state.config.outbound_queue);
        let replies = outbox.clone();
        let handler = Handler::new(state.clone(), app, outbox, slot);
        let pending = FuturesOrdered::new();
        Conn { state, app_id, user, _counted, socket, rx, slow, replies, handler, pending, place: None }
    }

    /// Serves the connection until it ends (`None`), or until its first frame
    /// that waits for the writer finds a place on the talkers' runtime: then
    /// it returns itself, to be served on from there.
    async fn serve(mut self) -> Option<Conn> {
        // Both signals are awaited through futures made once and pinned here: a
        // fresh `cancelled()` or `notified()` per loop turn would register with the
        // server-wide token (one lock for every connection) on every frame written.
        let (shutdown, slow) = (self.state.shutdown.clone(), self.slow.clone());
        let stopping = shutdown.cancelled();
        tokio::pin!(stopping);
        let slow_fired = slow.notified();
        tokio::pin!(slow_fired);
        let (ping_every, idle) =
            (self.state.config.transport.ws_ping_interval, self.state.config.transport.ws_idle_timeout);
        let write_timeout = self.state.config.transport.ws_write_timeout;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let idle_deadline = tokio::time::sleep(idle);
        tokio::pin!(idle_deadline);
        let closing = loop {
            tokio::select! {
                biased;
                _ = &mut stopping => break Some((close::GOING_AWAY, "server shutting down")),
                _ = &mut slow_fired => break Some((close::POLICY, close::SLOW_CONSUMER_REASON)),
                _ = &mut idle_deadline => break Some((close::IDLE, close::IDLE_REASON)),
                _ = ping.tick() => match tokio::time::timeout(write_timeout, self.socket.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(_) => break Some((close::POLICY, close::SLOW_CONSUMER_REASON)),
                },
                // The futures of writing and handling are boxed: they exist only while
                // busy, so an idle connection's task stays small.
                Some(reply) = self.pending.next(), if !self.pending.is_empty() => self.replies.push(reply),
                Some(first) = self.rx.recv() => {
                    self.state.metrics.outbound_depth(self.rx.len() + 1);
                    let write = Box::pin(write_batch(&mut self.socket, first, &mut self.rx, write_timeout, Some(&self.state.metrics)));
                    // No shutdown arm here: a batch taken from the queue is written
                    // (bounded by the write timeout) rather than dropped half way.
                    tokio::select! {
                        biased;
                        _ = &mut slow_fired => break Some((close::POLICY, close::SLOW_CONSUMER_REASON)),
                        written = write => match written {
                            Written::Done => {}
                            Written::Stalled => break Some((close::POLICY, close::SLOW_CONSUMER_REASON)),
                            Written::Failed => break None,
                        },
                    }
                }
                incoming = self.socket.recv(), if self.pending.len() < MAX_IN_FLIGHT => {
                    // Anything from the client, a pong included, proves it alive.
                    idle_deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                    match incoming {
                        None | Some(Ok(Message::Close(_))) => break None,
                        Some(Ok(Message::Text(text))) => {
                            let answer = Box::pin(self.handler.on_text(text.as_str())).await;
                            let waits = matches!(answer, Answer::Later(_));
                            queue_answer(answer, &mut self.pending, &self.replies);
                            if waits && self.place.is_none()
                                && let Some(place) = self.state.talkers.place()
                            {
                                self.place = Some(place);
                                return Some(self);
                            }
                        }
                        Some(Ok(Message::Binary(_))) => queue_answer(self.handler.on_binary(), &mut self.pending, &self.replies),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Err(e)) if is_too_big(&e) => break Some((close::TOO_BIG, "frame over 65536 bytes")),
                        Some(Err(_)) => break None,
                    }
                }
            }
        };
        let Conn { state, app_id, user, mut socket, mut rx, replies, handler, mut pending, .. } = self;
        // Leaves every conversation (the handler's presence guard does it on drop,
        // also when this task panics).
        drop(handler);
        if let Some((close::GOING_AWAY, _)) = closing {
            // Acks of frames already handled (those still being committed
            // included) go out before the close (bounded).
            let flush = async {
                while let Some(reply) = pending.next().await {
                    replies.push(reply);
                }
                write_queued(&mut socket, &mut rx).await
            };
            let _ = tokio::time::timeout(FLUSH_ON_SHUTDOWN, flush).await;
        }
        record_close(&state, &app_id, &user, closing);
        if let Some((code, reason)) = closing {
            send_close(&mut socket, code, reason).await;
        }
        None
    }
}

/// Writes every frame already queued, then flushes (the caller bounds the time).
pub(crate) async fn write_queued(
    socket: &mut WebSocket,
    rx: &mut tokio::sync::mpsc::Receiver<Frames>,
) -> Result<(), axum::Error> {
    while let Ok(frames) = rx.try_recv() {
        for frame in frames.as_slice() {
            socket.feed(Message::Text(frame.clone())).await?;
        }
    }
    socket.flush().await
}

/// Sends the close frame (bounded by [`CLOSE_WRITE_LIMIT`]); after a 1009 the
/// socket is kept [`LINGER_AFTER_TOO_BIG`] so the close is not lost to a reset.
pub(crate) async fn send_close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = Message::Close(Some(CloseFrame { code, reason: reason.to_string().into() }));
    let _ = tokio::time::timeout(CLOSE_WRITE_LIMIT, socket.send(frame)).await;
    if code == close::TOO_BIG {
        tokio::time::sleep(LINGER_AFTER_TOO_BIG).await;
    }
}

/// Puts a frame's answer out in frame order: straight to the outbox when no
/// earlier reply is pending, otherwise behind the pending ones.
pub(crate) fn queue_answer(answer: Answer, pending: &mut FuturesOrdered<Pending>, replies: &Outbox) {
    match answer {
        Answer::Nothing => {}
        Answer::Now(frame) if pending.is_empty() => replies.push(frame),
        Answer::Now(frame) => pending.push_back(Box::pin(std::future::ready(frame))),
        Answer::Later(reply) => pending.push_back(reply),
    }
}

/// How a batch write ended.
pub(crate) enum Written {
    Done,
    /// The peer did not take the bytes within the write timeout.
    Stalled,
    /// The socket failed (reset, closed).
    Failed,
}

/// Feeds `first` and everything else already queued (items are taken while
/// fewer than [`BATCH`] frames were fed), then flushes once; counts them in
/// `metrics` when given (a cluster edge has no `/metrics` yet).
pub(crate) async fn write_batch(
    socket: &mut WebSocket,
    first: Frames,
    rx: &mut tokio::sync::mpsc::Receiver<Frames>,
    stall: Duration,
    metrics: Option<&Metrics>,
) -> Written {
    let write = async {
        let (mut fed, mut bytes) = (0, 0);
        let mut item = Some(first);
        while let Some(frames) = item.take() {
            for frame in frames.as_slice() {
                socket.feed(Message::Text(frame.clone())).await?;
                bytes += frame.len();
            }
            fed += frames.as_slice().len();
            if fed < BATCH {
                item = rx.try_recv().ok();
            }
        }
        if let Some(m) = metrics {
            m.written(fed, bytes);
        }
        socket.flush().await
    };
    match tokio::time::timeout(stall, write).await {
        Ok(Ok(())) => Written::Done,
        Ok(Err(_)) => Written::Failed,
        Err(_) => Written::Stalled,
    }
}

/// Whether a read error is tungstenite's "message or frame too long".
pub(crate) fn is_too_big(e: &axum::Error) -> bool {
    use std::error::Error as _;
    use tungstenite::Error as WsError;
    e.source().and_then(|s| s.downcast_ref::<WsError>()).is_some_and(|e| matches!(e, WsError::Capacity(_)))
}

/// Counts how the connection ended (`supergroup_realtime_closes_total`) and
/// logs one line when the server closed it for a fault of the peer (1008
/// slow consumer, 1009 message too big, 4000 idle timeout); 1001 (shutdown)
/// and a close by the peer are not logged.
fn record_close(state: &AppState, app: &str, user: &str, closing: Option<(u16, &str)>) {
    state.metrics.closed(closing.map(|(code, _)| code));
    if let Some((code, reason)) = closing.filter(|(code, _)| *code != close::GOING_AWAY) {
        tracing::warn!(close_code = code, reason, app, user, "realtime connection closed by the server");
    }
}
