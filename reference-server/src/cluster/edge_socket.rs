//! One realtime connection on an edge, as one task: client frames go to the
//! core in order ([`super::wire::Up::Frame`]); frames the core sends for it,
//! or for a room it has open, come through its bounded queue and are written
//! in batches, as on a single server ([`crate::realtime::connection`]).
//!
//! What the edge decides itself is about the socket only: pings and the idle
//! timeout (4000), 1009 for a message over 64 KiB, 1008 when its queue
//! overflows (the same `--outbound-queue` bound and policy as a single
//! server's), 1001 on the edge's shutdown, and whatever close the core asks
//! for. When the connection ends it forgets it here and tells the core it is
//! gone, and waits until the core confirmed that it left every room (guest
//! slots and presence freed) before it writes the close frame and closes the
//! TCP connection, as a single server does (SPEC.md 10.1); the
//! [`Registered`] guard does the same, without waiting, if the task never
//! ran or panicked.

use super::edge::EdgeState;
use super::wire::Up;
use crate::hub::Frames;
use crate::hub::RoomKey;
use crate::realtime::connection::{FLUSH_ON_SHUTDOWN, Written, is_too_big, send_close, write_batch, write_queued};
use axum::extract::ws::{Message, WebSocket};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use supergroup_protocol::frames::close;
use tokio::sync::{Notify, mpsc};

/// Why a connection must close, set once; the socket task watches it.
#[derive(Default)]
pub struct Kill {
    why: Mutex<Option<(u16, String)>>,
    fired: Notify,
}

impl Kill {
    /// Asks the connection to close with `code` and `reason` (the first request wins).
    pub fn fire(&self, code: u16, reason: &str) {
        let mut why = self.why.lock().unwrap_or_else(|p| p.into_inner());
        if why.is_none() {
            *why = Some((code, reason.to_string()));
            self.fired.notify_one();
        }
    }

    fn reason(&self) -> Option<(u16, String)> {
        self.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A socket of the edge, as the dispatcher reaches it.
pub struct Local {
    tx: mpsc::Sender<Frames>,
    pub kill: Arc<Kill>,
    /// Rooms it has open, as the core said.
    pub rooms: HashSet<RoomKey>,
}

impl Local {
    /// A socket's entry, the receiving end of its queue, and its kill switch.
    pub fn new(_conn: u64, capacity: usize) -> (Local, mpsc::Receiver<Frames>, Arc<Kill>) {
        let (tx, rx) = mpsc::channel(capacity);
        let kill = Arc::new(Kill::default());
        (Local { tx, kill: kill.clone(), rooms: HashSet::new() }, rx, kill)
    }

    /// Queues frames without waiting; a full queue closes the connection as a slow consumer.
    pub fn push(&self, frames: Frames) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(frames) {
            self.kill.fire(close::POLICY, close::SLOW_CONSUMER_REASON);
        }
    }
}

/// The connection's registration on the edge and with the core; dropping it
/// undoes both (when [`Registered::leave`] did not already).
pub struct Registered {
    state: EdgeState,
    conn: u64,
    left: bool,
}

/// How long a closing connection waits for the core to confirm it left every room.
const LEAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Registered {
    pub fn new(state: EdgeState, conn: u64) -> Registered {
        Registered { state, conn, left: false }
    }

    fn gone(&self) -> Up {
        Up::Gone { edge: self.state.me.clone(), conn: self.conn }
    }

    /// Tells the core the connection ended and waits (at most [`LEAVE_WAIT`])
    /// until it has left every room there, before the TCP connection closes.
    async fn leave(&mut self) {
        self.state.sockets().remove(self.conn);
        let asked = self.state.client.request(super::subjects::INBOUND, self.gone().encode());
        let _ = tokio::time::timeout(LEAVE_WAIT, asked).await;
        self.left = true;
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        self.state.sockets().remove(self.conn);
        let (client, gone) = (self.state.client.clone(), self.gone().encode());
        tokio::spawn(async move {
            let _ = client.publish(super::subjects::INBOUND, gone).await;
        });
    }
}

/// Serves one socket until it closes (module doc).
pub async fn run(mut reg: Registered, mut socket: WebSocket, mut rx: mpsc::Receiver<Frames>, kill: Arc<Kill>) {
    let state = reg.state.clone();
    let (ping_every, idle) = (state.config.transport.ws_ping_interval, state.config.transport.ws_idle_timeout);
    let write_timeout = state.config.transport.ws_write_timeout;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle_deadline = tokio::time::sleep(idle);
    tokio::pin!(idle_deadline);
    let stopping = state.shutdown.cancelled();
    tokio::pin!(stopping);
    let killed = kill.fired.notified();
    tokio::pin!(killed);
    let closing: Option<(u16, String)> = loop {
        tokio::select! {
            biased;
            _ = &mut stopping => break Some((close::GOING_AWAY, "server shutting down".into())),
            _ = &mut killed => break kill.reason(),
            _ = &mut idle_deadline => break Some((close::IDLE, close::IDLE_REASON.into())),
            _ = ping.tick() => match tokio::time::timeout(write_timeout, socket.send(Message::Ping(Default::default()))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break None,
                Err(_) => break Some((close::POLICY, close::SLOW_CONSUMER_REASON.into())),
            },
            Some(first) = rx.recv() => {
                let write = Box::pin(write_batch(&mut socket, first, &mut rx, write_timeout, None));
                // A kill (the queue overflowed while this write is stuck) ends the write.
                tokio::select! {
                    biased;
                    _ = &mut killed => break kill.reason(),
                    written = write => match written {
                        Written::Done => {}
                        Written::Stalled => break Some((close::POLICY, close::SLOW_CONSUMER_REASON.into())),
                        Written::Failed => break None,
                    },
                }
            }
            incoming = socket.recv() => {
                idle_deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                match incoming {
                    None | Some(Ok(Message::Close(_))) => break None,
                    Some(Ok(Message::Text(text))) => {
                        let up = Up::Frame { edge: state.me.clone(), conn: reg.conn, text };
                        if state.client.publish(super::subjects::INBOUND, up.encode()).await.is_err() {
                            break Some((super::edge::LINK_LOST, super::edge::LINK_LOST_REASON.into()));
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let up = Up::Binary { edge: state.me.clone(), conn: reg.conn };
                        if state.client.publish(super::subjects::INBOUND, up.encode()).await.is_err() {
                            break Some((super::edge::LINK_LOST, super::edge::LINK_LOST_REASON.into()));
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Err(e)) if is_too_big(&e) => break Some((close::TOO_BIG, "frame over 65536 bytes".into())),
                    Some(Err(_)) => break None,
                }
            }
        }
    };
    // The connection has ended (SPEC.md 10.1): the core leaves its rooms now,
    // before the queued frames and the close frame are written, as a single
    // server drops its presence before writing them.
    reg.leave().await;
    if let Some((close::GOING_AWAY, _)) = &closing {
        let _ = tokio::time::timeout(FLUSH_ON_SHUTDOWN, write_queued(&mut socket, &mut rx)).await;
    }
    if let Some((code, reason)) = closing {
        send_close(&mut socket, code, &reason).await;
    }
}
