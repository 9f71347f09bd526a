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
//! One wake per batch: [`Hub::publish`] takes everything one group commit
//! stored (see [`crate::writer`]) and, in one pass under the lock, queues each
//! connection one item per room holding all of that room's new frames (an
//! `Arc<[Utf8Bytes]>` shared by every member), and in the same pass tells the
//! caller which notification candidates do not have the room open. A
//! connection is therefore woken once per batch and writes the whole batch
//! with one flush, and a participant opening the room is either in the pass
//! (gets the frames, no notification) or after it (notified).
//!
//! Queue policy: each connection's outbound queue is a bounded `mpsc` channel
//! of `--outbound-queue` items (default 1,024); an item is one frame or one
//! room's frames of one group commit (at most [`crate::writer::MAX_JOBS`] x 10
//! frames, shared, not copied, between connections). When an item does not
//! fit, the hub does not wait and does not drop the frame silently: it fires
//! the connection's slow-consumer signal, and the connection closes itself
//! with 1008 `slow consumer`. Other connections are never slowed by one slow
//! reader.
//!
//! Membership epochs: `open` reads membership from the database and then
//! registers here; a participant or conversation DELETE commits and then
//! evicts here. So that a DELETE landing between the two cannot leave a
//! removed member registered, every eviction bumps the epoch of the room's
//! stripe (under the lock), and a registration made with an older epoch is
//! refused as [`Opened::Stale`]: the caller reads membership again.

use axum::extract::ws::Utf8Bytes;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use supergroup_protocol::frames::Role;
use tokio::sync::{Notify, mpsc};

/// Identifies one realtime connection for its lifetime.
pub type ConnId = u64;

/// A conversation of an app: `(appId, conversationId)`.
pub type RoomKey = (String, String);

/// One item of a connection's outbound queue: a frame, or several frames of
/// one room stored by one group commit, in commit order.
#[derive(Clone)]
pub enum Frames {
    One(Utf8Bytes),
    Many(Arc<[Utf8Bytes]>),
}

impl Frames {
    /// The frames, in order.
    pub fn as_slice(&self) -> &[Utf8Bytes] {
        match self {
            Frames::One(f) => std::slice::from_ref(f),
            Frames::Many(fs) => fs,
        }
    }
}

/// The seam to a cluster (see [`crate::cluster`]): where the frames of
/// connections held by another node go. The hub keeps deciding everything
/// (presence, guest slots, epochs) for those connections exactly as for its
/// own; only delivery differs: a group commit's frames go to each node once
/// per room ([`Relay::room`]), and the node fans them out to its sockets,
/// which it knows from [`Relay::joined`] and [`Relay::left`], sent in the
/// same order as everything else. A single server never builds one.
///
/// Every method is called with the hub's lock held and must not block. A
/// relay whose bounded queue is full drops the item and marks a gap the node
/// sees (its policy is [`crate::cluster::relay`]'s).
pub trait Relay: Send + Sync {
    /// Identifies the node, so [`Hub::publish`] sends it a room's frames once.
    fn node(&self) -> u64;
    /// Frames for one connection of the node (a reply, a typing frame, `closed`).
    fn conn(&self, conn: u64, frames: Frames);
    /// A room's frames, for every connection of the node that has it open.
    fn room(&self, key: &RoomKey, frames: &Frames);
    /// The connection opened `key` (the node adds it to the room's sockets).
    fn joined(&self, conn: u64, key: &RoomKey);
    /// The connection no longer has `key` open.
    fn left(&self, conn: u64, key: &RoomKey);
}

/// Where a connection's frames go.
#[derive(Clone)]
enum Route {
    /// A socket of this process: its bounded queue (policy: module doc).
    Local(mpsc::Sender<Frames>),
    /// A socket held by another node of a cluster, known there as `conn`.
    Remote { relay: Arc<dyn Relay>, conn: u64 },
}

/// The sending side of a connection, as the hub holds it.
#[derive(Clone)]
pub struct Outbox {
    pub id: ConnId,
    pub user: Arc<str>,
    route: Route,
    /// Fired when the queue overflowed: the connection closes with 1008.
    slow: Arc<Notify>,
}

impl Outbox {
    fn next_id() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    /// A new outbox and the receiving ends its connection task owns.
    pub fn new(user: &str, capacity: usize) -> (Outbox, mpsc::Receiver<Frames>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(capacity);
        let slow = Arc::new(Notify::new());
        (Outbox { id: Self::next_id(), user: user.into(), route: Route::Local(tx), slow: slow.clone() }, rx, slow)
    }

    /// The outbox of a connection held by another node (`conn` there),
    /// delivered through `relay`; and its slow-consumer signal.
    pub fn remote(user: &str, relay: Arc<dyn Relay>, conn: u64) -> (Outbox, Arc<Notify>) {
        let slow = Arc::new(Notify::new());
        (
            Outbox { id: Self::next_id(), user: user.into(), route: Route::Remote { relay, conn }, slow: slow.clone() },
            slow,
        )
    }

    /// Queues a frame without waiting; a full queue marks the connection slow.
    pub fn push(&self, frame: Utf8Bytes) {
        self.push_frames(Frames::One(frame));
    }

    /// Queues frames as one item without waiting; a full queue marks the connection slow.
    pub fn push_frames(&self, frames: Frames) {
        match &self.route {
            Route::Local(tx) => match tx.try_send(frames) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => self.slow.notify_one(),
                // The connection is gone; its cleanup will remove it from every room.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            },
            Route::Remote { relay, conn } => relay.conn(*conn, frames),
        }
    }

    /// Tells a remote connection's node that it opened (`true`) or left `key`.
    fn membership(&self, key: &RoomKey, joined: bool) {
        if let Route::Remote { relay, conn } = &self.route {
            if joined { relay.joined(*conn, key) } else { relay.left(*conn, key) }
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
    fn insert(&mut self, key: &RoomKey, role: Role, out: &Outbox) {
        out.membership(key, true);
        if role == Role::Guest {
            *self.guests.entry(out.user.clone()).or_default() += 1;
        }
        *self.present.entry(out.user.clone()).or_default() += 1;
        self.members.insert(out.id, Member { role, out: out.clone() });
    }

    fn remove(&mut self, key: &RoomKey, conn: ConnId) -> Option<Member> {
        let member = self.members.remove(&conn)?;
        member.out.membership(key, false);
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
    /// Membership of the room changed since the caller read it (an eviction
    /// bumped the epoch): nothing was registered; read membership again.
    Stale,
}

/// Stripes of membership epochs: rooms share a stripe by hash, so a stale
/// answer can be spurious (another room of the stripe changed), never missed.
const EPOCH_STRIPES: usize = 64;

/// A membership epoch, read with [`Hub::epoch`] before reading membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(u64);

/// One room's share of a group commit, for [`Hub::publish`].
pub struct RoomBatch {
    pub key: RoomKey,
    /// The room's new frames, in commit order.
    pub frames: Arc<[Utf8Bytes]>,
    /// Notification candidates, one list per message; `publish` keeps only
    /// those who do not have the room open.
    pub notify: Vec<Vec<String>>,
}

/// Presence and fan-out for every app and conversation.
pub struct Hub {
    rooms: Mutex<HashMap<RoomKey, Room>>,
    epochs: [AtomicU64; EPOCH_STRIPES],
    /// Fixed hasher for stripe choice.
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub { rooms: Mutex::default(), epochs: std::array::from_fn(|_| AtomicU64::new(0)), hasher: Default::default() }
    }
}

impl Hub {
    fn stripe(&self, key: &RoomKey) -> &AtomicU64 {
        &self.epochs[(self.hasher.hash_one(key) as usize) % EPOCH_STRIPES]
    }

    /// The membership epoch of `key`, to pass to [`Hub::open`] after reading membership.
    pub fn epoch(&self, key: &RoomKey) -> Epoch {
        Epoch(self.stripe(key).load(Ordering::Acquire))
    }

    /// Marks a membership change of `key`; called with the rooms lock held.
    fn bump(&self, key: &RoomKey) {
        self.stripe(key).fetch_add(1, Ordering::AcqRel);
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<RoomKey, Room>> {
        // Every critical section leaves the map consistent, so a poisoned lock is still usable.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens `key` on `out` with `role`, decided from membership read at
    /// `epoch`. A guest takes a slot unless its user already holds one;
    /// `guest_limit: None` means unlimited.
    pub fn open(&self, key: &RoomKey, out: &Outbox, role: Role, guest_limit: Option<u32>, epoch: Epoch) -> Opened {
        let mut rooms = self.rooms();
        if let Some(m) = rooms.get(key).and_then(|r| r.members.get(&out.id)) {
            return Opened::Already(m.role);
        }
        if self.epoch(key) != epoch {
            return Opened::Stale;
        }
        let room = rooms.entry(key.clone()).or_default();
        if role == Role::Guest {
            let holds_slot = room.guests.contains_key(&out.user);
            if !holds_slot && guest_limit.is_some_and(|limit| room.guests.len() as u64 >= u64::from(limit)) {
                if room.members.is_empty() {
                    rooms.remove(key);
                }
                return Opened::GuestLimitReached;
            }
        }
        room.insert(key, role, out);
        Opened::New(role)
    }

    /// Ends the connection's presence in `key`; returns whether it had it open.
    pub fn close(&self, key: &RoomKey, conn: ConnId) -> bool {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(key) else { return false };
        if room.remove(key, conn).is_none() {
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

    /// How many distinct guest users have `key` open now (the guest slots taken).
    pub fn guest_count(&self, key: &RoomKey) -> usize {
        self.rooms().get(key).map_or(0, |r| r.guests.len())
    }

    /// Whether no connection has anything open.
    pub fn is_empty(&self) -> bool {
        self.rooms().is_empty()
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

    /// Queues a group commit's frames (module doc: one wake per batch) and, in
    /// the same pass, keeps in each `notify` list only the users who do not
    /// have the room open.
    pub fn publish(&self, batch: &mut [RoomBatch]) {
        let rooms = self.rooms();
        for rb in batch.iter_mut() {
            let room = rooms.get(&rb.key);
            for candidates in &mut rb.notify {
                candidates.retain(|u| room.is_none_or(|r| !r.present.contains_key(u.as_str())));
            }
            let Some(room) = room else { continue };
            let frames =
                if rb.frames.len() == 1 { Frames::One(rb.frames[0].clone()) } else { Frames::Many(rb.frames.clone()) };
            // Nodes of a cluster already sent this room's frames (a handful at most).
            let mut nodes: Vec<u64> = Vec::new();
            for m in room.members.values() {
                match &m.out.route {
                    Route::Local(_) => m.out.push_frames(frames.clone()),
                    Route::Remote { relay, .. } => {
                        if !nodes.contains(&relay.node()) {
                            nodes.push(relay.node());
                            relay.room(&rb.key, &frames);
                        }
                    }
                }
            }
        }
    }

    /// Ends `user`'s participant presence in `key` (they were removed), sending
    /// each of their connections `closed` (built by `closed_frame`).
    pub fn evict_participant(&self, key: &RoomKey, user: &str, closed_frame: &Utf8Bytes) {
        let mut rooms = self.rooms();
        self.bump(key);
        let Some(room) = rooms.get_mut(key) else { return };
        let evicted: Vec<ConnId> = room
            .members
            .iter()
            .filter(|(_, m)| m.role == Role::Participant && &*m.out.user == user)
            .map(|(id, _)| *id)
            .collect();
        for id in evicted {
            if let Some(m) = room.remove(key, id) {
                m.out.push(closed_frame.clone());
            }
        }
        if room.members.is_empty() {
            rooms.remove(key);
        }
    }

    /// Ends everyone's presence in `key` (the conversation was deleted).
    pub fn evict_all(&self, key: &RoomKey, closed_frame: &Utf8Bytes) {
        let mut rooms = self.rooms();
        self.bump(key);
        if let Some(room) = rooms.remove(key) {
            for m in room.members.values() {
                m.out.push(closed_frame.clone());
                m.out.membership(key, false);
            }
        }
    }
}

/// What one connection has open, as a guard: dropping it (the connection
/// ending normally, failing, or its task panicking) closes every room it
/// holds, which frees its guest slots and its presence (SG-RT-3).
pub struct Presence {
    hub: Arc<Hub>,
    conn: ConnId,
    /// Rooms this connection opened (an evicted one may linger: closing it again is a no-op).
    rooms: Vec<RoomKey>,
}

impl Presence {
    pub fn new(hub: Arc<Hub>, conn: ConnId) -> Presence {
        Presence { hub, conn, rooms: Vec::new() }
    }

    /// Records that the connection opened `key`.
    pub fn opened(&mut self, key: &RoomKey) {
        if !self.rooms.contains(key) {
            self.rooms.push(key.clone());
        }
    }

    /// How many rooms the connection holds (an evicted one counts until closed).
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether the connection holds no room.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Closes every room the connection holds; returns each with the role it
    /// held there (None if it had been evicted).
    pub fn leave_all(&mut self) -> Vec<(RoomKey, Option<Role>)> {
        let rooms: Vec<RoomKey> = self.rooms.drain(..).collect();
        rooms
            .into_iter()
            .map(|key| {
                let role = self.hub.role_of(&key, self.conn);
                self.hub.close(&key, self.conn);
                (key, role)
            })
            .collect()
    }

    /// Closes `key` on the connection; returns whether it had it open.
    pub fn close(&mut self, key: &RoomKey) -> bool {
        self.rooms.retain(|k| k != key);
        self.hub.close(key, self.conn)
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        for key in self.rooms.drain(..) {
            self.hub.close(&key, self.conn);
        }
    }
}

/// Test-only faults (`--violate`): what a wrong server would do instead.
impl Hub {
    /// Connections holding `key` as guest (guest-slot-per-connection).
    pub fn guest_connections(&self, key: &RoomKey) -> u64 {
        self.rooms().get(key).map_or(0, |r| r.guests.values().map(|n| u64::from(*n)).sum())
    }

    /// Distinct guest users over every conversation of `app` (guest-limit-per-app).
    pub fn guest_users_of_app(&self, app: &str) -> std::collections::HashSet<Arc<str>> {
        let rooms = self.rooms();
        rooms.iter().filter(|((a, _), _)| a == app).flat_map(|(_, r)| r.guests.keys().cloned()).collect()
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
            if let Some(m) = room.remove(key, id) {
                m.out.push(closed_frame.clone());
            }
        }
        if room.members.is_empty() {
            rooms.remove(key);
        }
    }
}

/// What `GET /metrics` reads from the hub at scrape time ([`crate::metrics`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Conversations that at least one connection has open.
    pub rooms: usize,
    /// (connection, conversation) pairs held as guest, and as participant.
    pub guest_presences: usize,
    pub participant_presences: usize,
    /// Guest counts (distinct guest users) of the rooms with the most guests, largest first.
    pub top_guests: Vec<usize>,
}

impl Hub {
    /// Counts presence in one pass under the lock (O(rooms + members), once per scrape).
    pub fn census(&self, top: usize) -> Census {
        let rooms = self.rooms();
        let mut census = Census { rooms: rooms.len(), ..Census::default() };
        for room in rooms.values() {
            let guests = room.members.values().filter(|m| m.role == Role::Guest).count();
            census.guest_presences += guests;
            census.participant_presences += room.members.len() - guests;
            census.top_guests.push(room.guests.len());
        }
        drop(rooms);
        census.top_guests.sort_unstable_by(|a, b| b.cmp(a));
        census.top_guests.truncate(top);
        census
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RoomKey {
        ("app".into(), "c".into())
    }

    fn open(hub: &Hub, out: &Outbox, role: Role, limit: Option<u32>) -> Opened {
        hub.open(&key(), out, role, limit, hub.epoch(&key()))
    }

    #[test]
    fn one_guest_user_on_two_connections_takes_one_slot() {
        let hub = Hub::default();
        let (a1, _r1, _) = Outbox::new("alice", 4);
        let (a2, _r2, _) = Outbox::new("alice", 4);
        let (b, _r3, _) = Outbox::new("bob", 4);
        assert_eq!(open(&hub, &a1, Role::Guest, Some(1)), Opened::New(Role::Guest));
        assert_eq!(open(&hub, &a2, Role::Guest, Some(1)), Opened::New(Role::Guest));
        assert_eq!(open(&hub, &b, Role::Guest, Some(1)), Opened::GuestLimitReached);
        hub.close(&key(), a1.id);
        assert_eq!(open(&hub, &b, Role::Guest, Some(1)), Opened::GuestLimitReached);
        hub.close(&key(), a2.id);
        assert_eq!(open(&hub, &b, Role::Guest, Some(1)), Opened::New(Role::Guest));
    }

    #[test]
    fn a_full_queue_fires_the_slow_signal_and_others_still_receive() {
        let hub = Hub::default();
        let (slow, _slow_rx, slow_signal) = Outbox::new("slow", 1);
        let (fast, mut fast_rx, _) = Outbox::new("fast", 8);
        open(&hub, &slow, Role::Guest, None);
        open(&hub, &fast, Role::Guest, None);
        let frame: Utf8Bytes = "x".into();
        hub.broadcast(&key(), &frame, None);
        hub.broadcast(&key(), &frame, None);
        assert_eq!(fast_rx.try_recv().unwrap().as_slice()[0].as_str(), "x");
        assert_eq!(fast_rx.try_recv().unwrap().as_slice()[0].as_str(), "x");
        let fired = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(100), slow_signal.notified()).await.is_ok()
        });
        assert!(fired);
    }

    #[test]
    fn publish_queues_one_item_per_room_and_filters_notifications_by_presence() {
        let hub = Hub::default();
        let (guest, mut guest_rx, _) = Outbox::new("g", 8);
        let (bob, mut bob_rx, _) = Outbox::new("bob", 8);
        open(&hub, &guest, Role::Guest, None);
        open(&hub, &bob, Role::Participant, None);
        let frames: Arc<[Utf8Bytes]> = vec!["m1".into(), "m2".into(), "m3".into()].into();
        let mut batch = vec![RoomBatch {
            key: key(),
            frames,
            notify: vec![vec!["bob".into(), "carol".into()], vec![], vec!["carol".into()]],
        }];
        hub.publish(&mut batch);
        for rx in [&mut guest_rx, &mut bob_rx] {
            let item = rx.try_recv().expect("one item");
            assert_eq!(item.as_slice().iter().map(|f| f.as_str()).collect::<Vec<_>>(), ["m1", "m2", "m3"]);
            assert!(rx.try_recv().is_err(), "the whole batch is one queue item: one wake");
        }
        // bob has it open: not notified; carol does not: notified.
        assert_eq!(batch[0].notify, vec![vec!["carol".to_string()], vec![], vec!["carol".to_string()]]);
    }

    #[test]
    fn an_eviction_between_reading_membership_and_registering_makes_the_open_stale() {
        let hub = Hub::default();
        let (bob, _rx, _) = Outbox::new("bob", 4);
        let seen = hub.epoch(&key());
        hub.evict_participant(&key(), "bob", &"closed".into());
        assert_eq!(hub.open(&key(), &bob, Role::Participant, None, seen), Opened::Stale);
        assert!(hub.is_empty(), "a stale open registers nothing");
        assert_eq!(open(&hub, &bob, Role::Participant, None), Opened::New(Role::Participant));
    }

    #[test]
    fn a_panicking_connection_still_leaves_every_room() {
        let hub = Arc::new(Hub::default());
        let (out, _rx, _) = Outbox::new("g", 4);
        let h = hub.clone();
        let panicked = std::thread::spawn(move || {
            let mut presence = Presence::new(h.clone(), out.id);
            for conv in ["a", "b"] {
                let room: RoomKey = ("app".into(), conv.into());
                h.open(&room, &out, Role::Guest, Some(1), h.epoch(&room));
                presence.opened(&room);
            }
            panic!("a connection task fails");
        })
        .join();
        assert!(panicked.is_err());
        assert!(hub.is_empty(), "guest slots and presence freed by the guard");
    }

    #[test]
    fn the_census_counts_presence_by_role_and_ranks_rooms_by_guests() {
        let hub = Hub::default();
        let room = |c: &str| -> RoomKey { ("app".into(), c.into()) };
        let mut keep = Vec::new();
        for (conv, user, role) in [
            ("a", "g1", Role::Guest),
            ("a", "g1", Role::Guest),
            ("a", "g2", Role::Guest),
            ("b", "g3", Role::Guest),
            ("b", "p", Role::Participant),
        ] {
            let (out, rx, _) = Outbox::new(user, 4);
            assert!(matches!(hub.open(&room(conv), &out, role, None, hub.epoch(&room(conv))), Opened::New(_)));
            keep.push((out, rx));
        }
        let census = hub.census(1);
        // g1 holds one slot on two connections: `a` has 3 guest presences and 2 guests.
        assert_eq!(census, Census { rooms: 2, guest_presences: 4, participant_presences: 1, top_guests: vec![2] });
    }

    mod property {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap as Map;

        const CONNS: usize = 6;
        const USERS: [&str; 3] = ["u0", "u1", "u2"];
        const ROOMS: usize = 2;
        const LIMIT: u32 = 2;

        #[derive(Debug, Clone)]
        enum Op {
            Open(usize, usize, bool),
            Close(usize, usize),
            EvictParticipant(usize, usize),
            EvictAll(usize),
            Disconnect(usize),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..CONNS, 0..ROOMS, any::<bool>()).prop_map(|(c, r, g)| Op::Open(c, r, g)),
                2 => (0..CONNS, 0..ROOMS).prop_map(|(c, r)| Op::Close(c, r)),
                1 => (0..ROOMS, 0..USERS.len()).prop_map(|(r, u)| Op::EvictParticipant(r, u)),
                1 => (0..ROOMS).prop_map(Op::EvictAll),
                1 => (0..CONNS).prop_map(Op::Disconnect),
            ]
        }

        fn room(r: usize) -> RoomKey {
            ("app".into(), format!("c{r}"))
        }

        proptest! {
            /// Random open/close/evict/disconnect sequences: the hub agrees with a
            /// plain model on every answer, the guest count is the number of
            /// distinct guests present, and nothing is left once every
            /// connection is gone.
            #[test]
            fn presence_matches_the_model_and_leaves_nothing(ops in proptest::collection::vec(op(), 0..60)) {
                let hub = Arc::new(Hub::default());
                let mut conns: Vec<(Outbox, mpsc::Receiver<Frames>, Presence)> = (0..CONNS)
                    .map(|i| {
                        let (out, rx, _) = Outbox::new(USERS[i % USERS.len()], 1024);
                        let presence = Presence::new(hub.clone(), out.id);
                        (out, rx, presence)
                    })
                    .collect();
                // (conn, room) -> role held
                let mut model: Map<(usize, usize), Role> = Map::new();
                let user = |c: usize| USERS[c % USERS.len()];
                for op in ops {
                    match op {
                        Op::Open(c, r, as_guest) => {
                            let role = if as_guest { Role::Guest } else { Role::Participant };
                            let key = room(r);
                            let got = hub.open(&key, &conns[c].0, role, Some(LIMIT), hub.epoch(&key));
                            let guests: std::collections::HashSet<&str> = model
                                .iter()
                                .filter(|((_, rr), role)| *rr == r && **role == Role::Guest)
                                .map(|((cc, _), _)| user(*cc))
                                .collect();
                            let expected = match model.get(&(c, r)) {
                                Some(held) => Opened::Already(*held),
                                None if role == Role::Guest && !guests.contains(user(c)) && guests.len() >= LIMIT as usize => {
                                    Opened::GuestLimitReached
                                }
                                None => Opened::New(role),
                            };
                            prop_assert_eq!(got, expected);
                            if let Opened::New(role) = got {
                                model.insert((c, r), role);
                                conns[c].2.opened(&key);
                            }
                        }
                        Op::Close(c, r) => {
                            let had = conns[c].2.close(&room(r));
                            prop_assert_eq!(had, model.remove(&(c, r)).is_some());
                        }
                        Op::EvictParticipant(r, u) => {
                            hub.evict_participant(&room(r), USERS[u], &"closed".into());
                            model.retain(|(c, rr), role| !(*rr == r && *role == Role::Participant && user(*c) == USERS[u]));
                        }
                        Op::EvictAll(r) => {
                            hub.evict_all(&room(r), &"closed".into());
                            model.retain(|(_, rr), _| *rr != r);
                        }
                        Op::Disconnect(c) => {
                            let (out, rx, _) = Outbox::new(user(c), 1024);
                            let presence = Presence::new(hub.clone(), out.id);
                            conns[c] = (out, rx, presence);
                            model.retain(|(cc, _), _| *cc != c);
                        }
                    }
                    for r in 0..ROOMS {
                        let distinct: std::collections::HashSet<&str> = model
                            .iter()
                            .filter(|((_, rr), role)| *rr == r && **role == Role::Guest)
                            .map(|((c, _), _)| user(*c))
                            .collect();
                        prop_assert_eq!(hub.guest_count(&room(r)), distinct.len());
                        for u in USERS {
                            let present = model.keys().any(|(c, rr)| *rr == r && user(*c) == u);
                            prop_assert_eq!(hub.user_has_open(&room(r), u), present);
                        }
                    }
                }
                drop(conns);
                prop_assert!(hub.is_empty());
            }
        }
    }
}
