//! What `open` needs to know of a conversation (does it admit guests, who
//! are its participants, which of them only read), kept between opens so
//! that a storm of guests opening one conversation reads the database once,
//! not once per guest (each read was a blocking-pool hop and two queries on
//! the writer's connection).
//!
//! Only the group-commit writer changes memberships, and after each COMMIT it
//! [forgets](Rosters::forget) the rosters of the conversations its changes
//! touched ([`crate::changes::Change::membership_of`]) before it answers them
//! or publishes their announcements. A roster read from the database is kept
//! only if no conversation was forgotten since the read began (a generation
//! counter taken before the read), so a read that raced a change can never
//! outlive it. An `open` that meets the old roster between the COMMIT and the
//! forget is ordered before the change, as it would have been had it read
//! the database a moment earlier; the hub's membership epochs still catch a
//! removal that lands after the decision ([`crate::hub`]).
//!
//! Bound: at most [`MAX_ROOMS`] conversations are kept, each with at most the
//! plan's participant limit of ids (300 for growth); when full, an arbitrary
//! one is dropped for the newcomer. Unknown conversations are not kept, so
//! probing random ids cannot push real rosters out.

use crate::hub::RoomKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Conversations whose roster is kept, at most (see the module doc).
pub const MAX_ROOMS: usize = 1024;

/// One conversation's roster.
pub struct Roster {
    /// Whether guests may open it (the app's default already applied).
    pub guest_access: bool,
    pub participants: Vec<String>,
    /// Participants with `read` access.
    pub read_only: Vec<String>,
}

/// The handle: clone it freely.
#[derive(Clone, Default)]
pub struct Rosters(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    /// Bumped by every [`Rosters::forget`].
    generation: u64,
    rooms: HashMap<RoomKey, Arc<Roster>>,
}

impl Rosters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every critical section leaves the map consistent; a panic elsewhere cannot break it.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kept roster of `room`, if any.
    pub fn get(&self, room: &RoomKey) -> Option<Arc<Roster>> {
        self.lock().rooms.get(room).cloned()
    }

    /// Take this before reading a roster from the database; hand it to [`Rosters::keep`].
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `roster`, read from the database after `generation` was taken,
    /// unless a change was committed since (then it may be stale: dropped).
    pub fn keep(&self, room: RoomKey, roster: Arc<Roster>, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.rooms.len() >= MAX_ROOMS && !inner.rooms.contains_key(&room) {
            let victim = inner.rooms.keys().next().cloned();
            if let Some(victim) = victim {
                inner.rooms.remove(&victim);
            }
        }
        inner.rooms.insert(room, roster);
    }

    /// Drops the rosters of `rooms` (after a COMMIT that changed their membership).
    pub fn forget<'a>(&self, rooms: impl IntoIterator<Item = &'a RoomKey>) {
        let mut inner = self.lock();
        inner.generation += 1;
        for room in rooms {
            inner.rooms.remove(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster(p: &[&str]) -> Arc<Roster> {
        Arc::new(Roster {
            guest_access: true,
            participants: p.iter().map(|s| s.to_string()).collect(),
            read_only: vec![],
        })
    }

    fn room(c: &str) -> RoomKey {
        ("app".into(), c.into())
    }

    #[test]
    fn a_roster_read_before_a_change_is_not_kept() {
        let r = Rosters::default();
        let g = r.generation();
        r.forget([&room("other")]);
        r.keep(room("c"), roster(&["a"]), g);
        assert!(r.get(&room("c")).is_none(), "a change committed during the read makes it stale");
        let g = r.generation();
        r.keep(room("c"), roster(&["a", "b"]), g);
        assert_eq!(r.get(&room("c")).expect("kept").participants, ["a", "b"]);
        r.forget([&room("c")]);
        assert!(r.get(&room("c")).is_none(), "forgotten after its change");
    }

    #[test]
    fn at_most_max_rooms_are_kept() {
        let r = Rosters::default();
        for i in 0..MAX_ROOMS + 10 {
            let g = r.generation();
            r.keep(room(&i.to_string()), roster(&[]), g);
        }
        assert_eq!(r.lock().rooms.len(), MAX_ROOMS);
        assert!(r.get(&room(&(MAX_ROOMS + 9).to_string())).is_some(), "the newest is kept");
    }
}
