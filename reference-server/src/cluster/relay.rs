//! The core's ordered stream to one edge process: the [`Relay`] behind the
//! outboxes of that edge's connections in the core's hub.
//!
//! Order: every item gets the next sequence number and enters one bounded
//! queue under one small lock, so the edge receives items in the order the
//! hub produced them (a `joined` before the room frames that follow it, a
//! reply after the registration it answers). One publisher task drains the
//! queue, packs items into NATS messages of at most `max_payload` bytes and
//! publishes them on [`super::subjects::node`].
//!
//! Queue policy: [`QUEUE`] items. When it is full the item is dropped, its
//! sequence number is spent anyway (the edge sees the gap and closes every
//! connection with 1012, so no client silently misses a frame) and the relay
//! is marked broken: the core then ends every connection of that edge,
//! freeing their guest slots. Memory: an item holds reference-counted frames
//! shared with every other recipient, so the bound is items, not copies.

use super::wire::{self, Down, Incarnation};
use crate::hub::{Frames, Relay, RoomKey};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Items waiting to be published to one edge, at most.
pub const QUEUE: usize = 65_536;
/// Items taken per publish round, at most.
const ROUND: usize = 1024;

/// One edge's relay.
pub struct EdgeRelay {
    /// Unique among the core's relays ([`Relay::node`]).
    key: u64,
    /// The next sequence number, and the queue it is spent into (one lock, so order is sequence order).
    next: Mutex<(u64, mpsc::Sender<(u64, Down)>)>,
    /// Cancelled when an item was dropped (the queue was full).
    pub broken: CancellationToken,
}

impl EdgeRelay {
    /// A relay publishing to `subject` through `client`, and its publisher task.
    pub fn start(client: async_nats::Client, subject: String, core_boot: u64) -> std::sync::Arc<EdgeRelay> {
        let (relay, rx) = EdgeRelay::with_queue(QUEUE);
        tokio::spawn(publish(client, subject, Incarnation { core_boot, link: relay.key }, rx));
        std::sync::Arc::new(relay)
    }

    /// A relay over a queue of `capacity` items, and the queue's receiving end.
    fn with_queue(capacity: usize) -> (EdgeRelay, mpsc::Receiver<(u64, Down)>) {
        static KEYS: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::channel(capacity);
        let relay = EdgeRelay {
            key: KEYS.fetch_add(1, Ordering::Relaxed),
            next: Mutex::new((1, tx)),
            broken: CancellationToken::new(),
        };
        (relay, rx)
    }

    fn push(&self, item: Down) {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let seq = next.0;
        next.0 += 1;
        if next.1.try_send((seq, item)).is_err() {
            self.broken.cancel();
        }
    }

    /// Tells the edge to close its connection `conn` with `code` and `reason`.
    pub fn close(&self, conn: u64, code: u16, reason: &str) {
        self.push(Down::Close { conn, code, reason: reason.into() });
    }
}

impl Relay for EdgeRelay {
    fn node(&self) -> u64 {
        self.key
    }
    fn conn(&self, conn: u64, frames: Frames) {
        self.push(Down::Conn { conn, frames: frames.as_slice().to_vec() });
    }
    fn room(&self, key: &RoomKey, frames: &Frames) {
        self.push(Down::Room { app: key.0.clone(), conv: key.1.clone(), frames: frames.as_slice().to_vec() });
    }
    fn joined(&self, conn: u64, key: &RoomKey) {
        self.push(Down::Joined { conn, app: key.0.clone(), conv: key.1.clone() });
    }
    fn left(&self, conn: u64, key: &RoomKey) {
        self.push(Down::Left { conn, app: key.0.clone(), conv: key.1.clone() });
    }
}

/// The publisher: until every handle of the relay is gone, take what is
/// queued and publish it in messages under `max_payload`. A room item too
/// large for one message is split into several items of the same room
/// (frames stay in order; each frame is far below `max_payload`).
async fn publish(client: async_nats::Client, subject: String, at: Incarnation, mut rx: mpsc::Receiver<(u64, Down)>) {
    let limit = client.server_info().max_payload.saturating_sub(super::ENVELOPE).max(64 * 1024);
    let mut taken = Vec::with_capacity(ROUND);
    while rx.recv_many(&mut taken, ROUND).await > 0 {
        let mut message: Vec<(u64, Down)> = Vec::new();
        let mut size = 0;
        for (seq, item) in taken.drain(..) {
            for part in split(item, limit) {
                if size + part.size() > limit && !message.is_empty() {
                    send(&client, &subject, at, std::mem::take(&mut message)).await;
                    size = 0;
                }
                size += part.size();
                // Parts of one item share its sequence number; the edge accepts a repeat of the last one.
                message.push((seq, part));
            }
        }
        if !message.is_empty() {
            send(&client, &subject, at, message).await;
        }
    }
}

async fn send(client: &async_nats::Client, subject: &str, at: Incarnation, items: Vec<(u64, Down)>) {
    if let Err(e) = client.publish(subject.to_string(), wire::encode_down(at, &items)).await {
        // The edge will see the gap.
        tracing::warn!(%subject, "cluster: publishing to an edge failed: {e}");
    }
}

/// `item`, in parts under `limit` bytes when it holds many frames.
fn split(item: Down, limit: usize) -> Vec<Down> {
    if item.size() <= limit {
        return vec![item];
    }
    let (conn, room, frames) = match item {
        Down::Conn { conn, frames } => (Some(conn), None, frames),
        Down::Room { app, conv, frames } => (None, Some((app, conv)), frames),
        other => return vec![other],
    };
    let mut parts = Vec::new();
    let mut chunk: Vec<axum::extract::ws::Utf8Bytes> = Vec::new();
    let mut size = 0;
    let make = |frames| match (&conn, &room) {
        (Some(conn), _) => Down::Conn { conn: *conn, frames },
        (None, Some((app, conv))) => Down::Room { app: app.clone(), conv: conv.clone(), frames },
        (None, None) => unreachable!("one of the two is set above"),
    };
    for f in frames {
        if size + f.len() + 64 > limit && !chunk.is_empty() {
            parts.push(make(std::mem::take(&mut chunk)));
            size = 0;
        }
        size += f.len() + 4;
        chunk.push(f);
    }
    if !chunk.is_empty() {
        parts.push(make(chunk));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_spends_the_sequence_number_and_marks_the_relay_broken() {
        let (relay, mut rx) = EdgeRelay::with_queue(2);
        let key: RoomKey = ("a".into(), "c".into());
        relay.joined(1, &key);
        relay.room(&key, &Frames::One("m1".into()));
        assert!(!relay.broken.is_cancelled());
        relay.room(&key, &Frames::One("m2".into()));
        assert!(relay.broken.is_cancelled(), "the third item did not fit");
        assert_eq!(rx.try_recv().unwrap().0, 1);
        assert_eq!(rx.try_recv().unwrap().0, 2);
        relay.left(1, &key);
        // Seq 3 was dropped: the edge sees 2 then 4, a gap.
        assert_eq!(rx.try_recv().unwrap().0, 4);
    }

    #[test]
    fn a_room_item_over_the_limit_is_split_in_order_and_under_it() {
        let frames: Vec<axum::extract::ws::Utf8Bytes> = (0..100).map(|i| format!("{i:0>1000}").into()).collect();
        let item = Down::Room { app: "a".into(), conv: "c".into(), frames: frames.clone() };
        let parts = split(item, 10_000);
        assert!(parts.len() >= 10);
        let mut back = Vec::new();
        for p in parts {
            assert!(p.size() <= 10_000 + 1100, "part of {} bytes", p.size());
            let Down::Room { frames, .. } = p else { panic!("a room part") };
            back.extend(frames);
        }
        assert_eq!(back, frames);
    }
}
