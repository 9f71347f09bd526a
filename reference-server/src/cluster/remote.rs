//! A realtime connection held by an edge, as the core runs it: the same
//! frame [`Handler`] as a local connection (every check, limit and reply is
//! the single server's), fed with the client frames the edge forwards, and
//! answering through an outbox that goes to the edge's relay.
//!
//! Inbound policy: at most [`INBOUND`] client frames of one connection wait
//! for the handler; the handler takes them in order and stops taking at
//! [`MAX_IN_FLIGHT`] pending replies, as a local connection stops reading.
//! An edge cannot be told to stop reading over NATS, so a connection that
//! gets past [`INBOUND`] anyway is closed with 1008 `slow consumer`.
//!
//! A `None` frame stands for a binary one (answered `invalid_frame`).
//!
//! The task ends when the edge says the socket is gone (the frames already
//! forwarded are handled first, as a single server handles what it read
//! before a close), when the edge is
//! declared dead (no heartbeat) or its relay broke, or on shutdown (1001,
//! after the replies already due, for at most [`FLUSH_ON_SHUTDOWN`]).
//! However it ends, dropping the handler leaves every room (guest slots and
//! presence freed) and the user's connection slot is given back.

use super::relay::EdgeRelay;
use crate::hub::Outbox;
use crate::realtime::UserSlot;
use crate::realtime::connection::{FLUSH_ON_SHUTDOWN, MAX_IN_FLIGHT, queue_answer};
use crate::realtime::handler::{Handler, Pending};
use crate::state::{App, AppState};
use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use std::sync::Arc;
use supergroup_protocol::frames::close;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Client frames of one remote connection waiting for its handler, at most.
pub const INBOUND: usize = 1024;

/// What the core keeps of one remote connection.
pub struct RemoteConn {
    /// The edge's forwarded frames (bounded, policy above).
    pub frames: mpsc::Sender<Option<Utf8Bytes>>,
    /// Cancelled when the edge said the socket is gone, or the edge is gone.
    pub end: CancellationToken,
    /// Cancelled when `frames` was full (the connection closes with 1008).
    pub overflow: CancellationToken,
    /// Cancelled by the task when it has ended: the connection's rooms are left.
    pub finished: CancellationToken,
}

/// Runs one remote connection until it ends (module doc).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    state: AppState,
    app: Arc<App>,
    user: String,
    relay: Arc<EdgeRelay>,
    edge_conn: u64,
    mut inbound: mpsc::Receiver<Option<Utf8Bytes>>,
    end: CancellationToken,
    overflow: CancellationToken,
    slot: UserSlot,
    finished: CancellationToken,
) {
    let _finished = finished.drop_guard();
    let (outbox, slow) = Outbox::remote(&user, relay.clone(), edge_conn);
    let replies: Outbox = outbox.clone();
    // The handler holds the user's slot (and the typing throttle shared by the user's connections).
    let mut handler = Handler::new(state.clone(), app, outbox, slot);
    let mut pending: FuturesOrdered<Pending> = FuturesOrdered::new();
    let slow_fired = slow.notified();
    tokio::pin!(slow_fired);
    let closing = loop {
        tokio::select! {
            biased;
            _ = state.shutdown.cancelled() => break Some((close::GOING_AWAY, "server shutting down")),
            _ = end.cancelled() => break None,
            _ = overflow.cancelled() => break Some((close::POLICY, close::SLOW_CONSUMER_REASON)),
            _ = &mut slow_fired => break Some((close::POLICY, close::SLOW_CONSUMER_REASON)),
            Some(reply) = pending.next(), if !pending.is_empty() => replies.push(reply),
            frame = inbound.recv(), if pending.len() < MAX_IN_FLIGHT => match frame {
                Some(Some(text)) => {
                    let answer = Box::pin(handler.on_text(text.as_str())).await;
                    queue_answer(answer, &mut pending, &replies);
                }
                Some(None) => queue_answer(handler.on_binary(), &mut pending, &replies),
                None => break None,
            },
        }
    };
    drop(handler);
    if let Some((code, reason)) = closing {
        if code == close::GOING_AWAY {
            let flush = async {
                while let Some(reply) = pending.next().await {
                    replies.push(reply);
                }
            };
            let _ = tokio::time::timeout(FLUSH_ON_SHUTDOWN, flush).await;
        }
        relay.close(edge_conn, code, reason);
    }
}
