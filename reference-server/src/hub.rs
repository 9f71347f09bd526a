//! The fan-out hub: who has which conversation open, with which role, and the
//! outbound queue of each connection. It is the only place that knows about
//! presence, so the guest limit, "has it open" (notifications) and broadcasts
//! all read one consistent picture.
//!
//! Locking: one std `Mutex` over all rooms, held only for map updates and for
//! `try_send` into bounded queues; nothing awaits while holding it. A frame is
//! serialized once by the caller into [`Utf8Bytes`] and every recipient's
//! queue gets a reference-counted clone of the same bytes.
//!
//! Queue policy: each connection's outbound queue is a bounded `mpsc` channel
//! (`--outbound-queue`, default 1,024 frames). When a frame does not fit, the
//! hub does not wait and does not drop the frame silently: it fires the
//! connection's slow-consumer signal, and the connection closes itself with
//! 1008 `slow consumer`. Other connections are never slowed by one slow reader.

use axum::extract::ws::Utf8Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use supergroup_protocol::frames::Role;
use tokio::sync::{Notify, mpsc};

/// Identifies one realtime connection for its lifetime.
pub type ConnId = u64;

/// A conversation of an app: `(appId, conversationId)`.
pub type RoomKey = (String, String);

/// The sending side of a connection, as the hub holds it.
#[derive(Clone)]
pub struct Outbox {
    pub id: ConnId,
    pub user: Arc<str>,
    /// Bounded queue to the connection's socket.
    tx: mpsc::Sender<Utf8Bytes>,
    /// Fired when the queue overflowed: the connection closes with 1008.
    slow: Arc<Notify>,
}

impl Outbox {
    /// A new outbox and the receiving ends its connection task owns.
    pub fn new(user: &str, capacity: usize) -> (Outbox, mpsc::Receiver<Utf8Bytes>, Arc<Notify>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::channel(capacity);
        let slow = Arc::new(Notify::new());
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        (Outbox { id, user: user.into(), tx, slow: slow.clone() }, rx, slow)
    }

    /// Queues a frame without waiting; a full queue marks the connection slow.
    pub fn push(&self, frame: Utf8Bytes) {
        match self.tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.slow.notify_one(),
            // The connection is gone; its cleanup will remove it from every room.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// One connection's presence in a room.
struct Member {
    role: Role,
    out: Outbox,
}

/// Everyone who has one conversation open.
#[derive(Default)]
struct Room {
    members: HashMap<ConnId, Member>,
    /// Guest users with the conversation open, and on how many connections.
    guests: HashMap<Arc<str>, u32>,
    /// Every user with the conversation open (any role), and on how many
    /// connections: "has it open" is asked once per participant per message.
    present: HashMap<Arc<str>, u32>,
}

impl Room {
    fn insert(&mut self, role: Role, out: &Outbox) {
        if role == Role::Guest {
            *self.guests.entry(out.user.clone()).or_default() += 1;
        }
        *self.present.entry(out.user.clone()).or_default() += 1;
        self.members.insert(out.id, Member { role, out: out.clone() });
    }

    fn remove(&mut self, conn: ConnId) -> Option<Member> {
        let member = self.members.remove(&conn)?;
        if member.role == Role::Guest {
            decrement(&mut self.guests, &member.out.user);
        }
        decrement(&mut self.present, &member.out.user);
        Some(member)
    }
}

fn decrement(counts: &mut HashMap<Arc<str>, u32>, user: &Arc<str>) {
    if let Some(n) = counts.get_mut(user) {
        *n -= 1;
        if *n == 0 {
            counts.remove(user);
        }
    }
}

/// The outcome of [`Hub::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Newly opened with this role.
    New(Role),
    /// The connection already had it open, with this role.
    Already(Role),
    /// The guest limit is reached (and this user holds no slot yet).
    GuestLimitReached,
}

/// Presence and fan-out for every app and conversation.
#[derive(Default)]
pub struct Hub {
    rooms: Mutex<HashMap<RoomKey, Room>>,
}

impl Hub {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<RoomKey, Room>> {
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens `key` on `out` with `role`. A guest takes a slot unless its user
    /// already holds one; `guest_limit: None` means unlimited.
    pub fn open(&self, key: &RoomKey, out: &Outbox, role: Role, guest_limit: Option<u32>) -> Opened {
        let mut rooms = self.rooms();
        let room = rooms.entry(key.clone()).or_default();
        if let Some(m) = room.members.get(&out.id) {
            return Opened::Already(m.role);
        }
        if role == Role::Guest {
            let holds_slot = room.guests.contains_key(&out.user);
            if !holds_slot && guest_limit.is_some_and(|limit| room.guests.len() as u64 >= u64::from(limit)) {
                if room.members.is_empty() {
                    rooms.remove(key);
                }
                return Opened::GuestLimitReached;
            }
        }
        room.insert(role, out);
        Opened::New(role)
    }

    /// Ends the connection's presence in `key`; returns whether it had it open.
    pub fn close(&self, key: &RoomKey, conn: ConnId) -> bool {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(key) else { return false };
        if room.remove(conn).is_none() {
            return false;
        }
        if room.members.is_empty() {
            rooms.remove(key);
        }
        true
    }

    /// The role the connection holds in `key`, if it has it open.
    pub fn role_of(&self, key: &RoomKey, conn: ConnId) -> Option<Role> {
        self.rooms().get(key).and_then(|r| r.members.get(&conn)).map(|m| m.role)
    }

    /// Whether `user` has `key` open on any connection, in any role.
    pub fn user_has_open(&self, key: &RoomKey, user: &str) -> bool {
        self.rooms().get(key).is_some_and(|r| r.present.contains_key(user))
    }

    /// Guest users who have `key` open now.
    pub fn guests(&self, key: &RoomKey) -> Vec<String> {
        self.rooms().get(key).map(|r| r.guests.keys().map(|u| u.to_string()).collect()).unwrap_or_default()
    }

    /// Conversations of `app` where `user` is present as a guest now.
    pub fn rooms_where_guest(&self, app: &str, user: &str) -> Vec<String> {
        let rooms = self.rooms();
        rooms
            .iter()
            .filter(|((a, _), r)| a == app && r.guests.contains_key(user))
            .map(|((_, c), _)| c.clone())
            .collect()
    }

    /// Queues `frame` for every connection with `key` open, except those of `skip_user`.
    pub fn broadcast(&self, key: &RoomKey, frame: &Utf8Bytes, skip_user: Option<&str>) {
        let rooms = self.rooms();
        let Some(room) = rooms.get(key) else { return };
        for m in room.members.values() {
            if skip_user.is_some_and(|u| u == &*m.out.user) {
                continue;
            }
            m.out.push(frame.clone());
        }
    }

    /// Ends `user`'s participant presence in `key` (they were removed), sending
    /// each of their connections `closed` (built by `closed_frame`).
    pub fn evict_participant(&self, key: &RoomKey, user: &str, closed_frame: &Utf8Bytes) {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(key) else { return };
        let evicted: Vec<ConnId> = room
            .members
            .iter()
            .filter(|(_, m)| m.role == Role::Participant && &*m.out.user == user)
            .map(|(id, _)| *id)
            .collect();
        for id in evicted {
            if let Some(m) = room.remove(id) {
                m.out.push(closed_frame.clone());
            }
        }
        if room.members.is_empty() {
            rooms.remove(key);
        }
    }

    /// Ends everyone's presence in `key` (the conversation was deleted).
    pub fn evict_all(&self, key: &RoomKey, closed_frame: &Utf8Bytes) {
        if let Some(room) = self.rooms().remove(key) {
            for m in room.members.values() {
                m.out.push(closed_frame.clone());
            }
        }
    }
}

/// Test-only faults (`--violate`): what a wrong server would do instead.
impl Hub {
    /// Connections holding `key` as guest (guest-slot-per-connection).
    pub fn guest_connections(&self, key: &RoomKey) -> u64 {
        self.rooms().get(key).map_or(0, |r| r.guests.values().map(|n| u64::from(*n)).sum())
    }

    /// Queues `frame` for the participant connections of `key` only (guest-sees-no-typing).
    pub fn broadcast_participants(&self, key: &RoomKey, frame: &Utf8Bytes, skip_user: Option<&str>) {
        let rooms = self.rooms();
        let Some(room) = rooms.get(key) else { return };
        for m in room.members.values().filter(|m| m.role == Role::Participant) {
            if skip_user.is_none_or(|u| u != &*m.out.user) {
                m.out.push(frame.clone());
            }
        }
    }

    /// Counts `user` as holding a guest slot of `key` without a connection,
    /// for as long as the room lives (guest-slot-kept-on-disconnect).
    pub fn leak_guest_slot(&self, key: &RoomKey, user: &Arc<str>) {
        if let Some(room) = self.rooms().get_mut(key) {
            *room.guests.entry(user.clone()).or_default() += 1;
        }
    }

    /// Ends every guest presence in `key` with `closed` (guest-access-off-evicts-guests).
    pub fn evict_guests(&self, key: &RoomKey, closed_frame: &Utf8Bytes) {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(key) else { return };
        let guests: Vec<ConnId> =
            room.members.iter().filter(|(_, m)| m.role == Role::Guest).map(|(id, _)| *id).collect();
        for id in guests {
            if let Some(m) = room.remove(id) {
                m.out.push(closed_frame.clone());
            }
        }
        if room.members.is_empty() {
            rooms.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RoomKey {
        ("app".into(), "c".into())
    }

    #[test]
    fn one_guest_user_on_two_connections_takes_one_slot() {
        let hub = Hub::default();
        let (a1, _r1, _) = Outbox::new("alice", 4);
        let (a2, _r2, _) = Outbox::new("alice", 4);
        let (b, _r3, _) = Outbox::new("bob", 4);
        assert_eq!(hub.open(&key(), &a1, Role::Guest, Some(1)), Opened::New(Role::Guest));
        assert_eq!(hub.open(&key(), &a2, Role::Guest, Some(1)), Opened::New(Role::Guest));
        assert_eq!(hub.open(&key(), &b, Role::Guest, Some(1)), Opened::GuestLimitReached);
        hub.close(&key(), a1.id);
        assert_eq!(hub.open(&key(), &b, Role::Guest, Some(1)), Opened::GuestLimitReached);
        hub.close(&key(), a2.id);
        assert_eq!(hub.open(&key(), &b, Role::Guest, Some(1)), Opened::New(Role::Guest));
    }

    #[test]
    fn a_full_queue_fires_the_slow_signal_and_others_still_receive() {
        let hub = Hub::default();
        let (slow, _slow_rx, slow_signal) = Outbox::new("slow", 1);
        let (fast, mut fast_rx, _) = Outbox::new("fast", 8);
        hub.open(&key(), &slow, Role::Guest, None);
        hub.open(&key(), &fast, Role::Guest, None);
        let frame: Utf8Bytes = "x".into();
        hub.broadcast(&key(), &frame, None);
        hub.broadcast(&key(), &frame, None);
        assert_eq!(fast_rx.try_recv().unwrap().as_str(), "x");
        assert_eq!(fast_rx.try_recv().unwrap().as_str(), "x");
        let fired = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(100), slow_signal.notified()).await.is_ok()
        });
        assert!(fired);
    }
}
