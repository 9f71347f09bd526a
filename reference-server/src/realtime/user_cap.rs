//! What is bounded per user rather than per connection: how many realtime
//! connections each user of an app holds, so one token cannot open
//! connections without bound, and the typing throttle, so a user cannot
//! multiply it by opening more connections. A connection takes a [`UserSlot`]
//! before the upgrade (one more than `--max-connections-per-user` is answered
//! HTTP 429 `too_many_connections`) and gives it back when its task ends,
//! however it ends (the slot's `Drop`).

use crate::transport::Bucket;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Typing buckets kept per user, at most. A bucket that has refilled is the
/// same as a fresh one, so full buckets are forgotten first; a user typing in
/// more conversations than this within one refill has the extra frames
/// dropped, as the throttle drops any excess (SPEC.md section 12).
const MAX_TYPING_BUCKETS: usize = 256;

/// A user's typing throttle: one bucket per conversation, shared by all the
/// user's connections.
type TypingBuckets = Arc<Mutex<HashMap<String, Bucket>>>;

/// Per `(appId, userId)`: connections held and the typing buckets; entries
/// at zero connections are removed.
type Users = Arc<Mutex<HashMap<(String, String), (u32, TypingBuckets)>>>;

/// Connections per `(appId, userId)`; entries at zero are removed.
#[derive(Default, Clone)]
pub struct UserConnections {
    counts: Users,
}

/// One held connection of a user; dropping it frees the slot.
pub struct UserSlot {
    counts: Users,
    key: (String, String),
    typing: TypingBuckets,
}

impl UserConnections {
    /// A slot for `user` of `app`, or `None` when the user holds `limit` already.
    pub fn try_take(&self, app: &str, user: &str, limit: u32) -> Option<UserSlot> {
        let key = (app.to_string(), user.to_string());
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (n, typing) = counts.entry(key.clone()).or_default();
        if *n >= limit {
            if *n == 0 {
                counts.remove(&key);
            }
            return None;
        }
        *n += 1;
        let typing = typing.clone();
        Some(UserSlot { counts: self.counts.clone(), key, typing })
    }
}

impl UserSlot {
    /// Whether one more `typing` frame of this user in `conv` may be passed
    /// on: `rate` a second with bursts of `rate` (at least 1), across all the
    /// user's connections.
    pub fn typing_allowed(&self, conv: &str, rate: f64) -> bool {
        let burst = rate.max(1.0);
        let mut buckets = self.typing.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(conv) && buckets.len() >= MAX_TYPING_BUCKETS {
            buckets.retain(|_, b| !b.is_full(rate, burst));
            if buckets.len() >= MAX_TYPING_BUCKETS {
                return false;
            }
        }
        buckets.entry(conv.to_string()).or_insert_with(|| Bucket::full(burst)).take(rate, burst)
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, _)) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_limit_slots_and_one_more_after_a_drop() {
        let users = UserConnections::default();
        let a = users.try_take("app", "u", 2).unwrap();
        let _b = users.try_take("app", "u", 2).unwrap();
        assert!(users.try_take("app", "u", 2).is_none());
        assert!(users.try_take("app", "other", 2).is_some());
        drop(a);
        assert!(users.try_take("app", "u", 2).is_some());
    }

    #[test]
    fn typing_is_throttled_per_user_across_connections() {
        let users = UserConnections::default();
        let a = users.try_take("app", "u", 4).unwrap();
        let b = users.try_take("app", "u", 4).unwrap();
        let other = users.try_take("app", "v", 4).unwrap();
        // rate 2: a burst of 2 for the user, whichever connection types.
        assert!(a.typing_allowed("c", 2.0));
        assert!(b.typing_allowed("c", 2.0));
        assert!(!a.typing_allowed("c", 2.0));
        assert!(!b.typing_allowed("c", 2.0));
        // Another conversation, another user: their own buckets.
        assert!(a.typing_allowed("d", 2.0));
        assert!(other.typing_allowed("c", 2.0));
    }

    #[test]
    fn typing_buckets_are_bounded_and_full_ones_forgotten_first() {
        let users = UserConnections::default();
        let a = users.try_take("app", "u", 1).unwrap();
        // A rate so slow nothing refills during the test: every bucket stays used.
        for i in 0..MAX_TYPING_BUCKETS {
            assert!(a.typing_allowed(&format!("c{i}"), 0.001));
        }
        assert!(!a.typing_allowed("one-too-many", 0.001), "over the bound the frame is dropped");
        assert_eq!(a.typing.lock().unwrap().len(), MAX_TYPING_BUCKETS);
        // At 1 a second a used bucket has refilled after 1 s: the full ones make room.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(a.typing_allowed("one-more", 1.0));
        assert!(a.typing.lock().unwrap().len() <= MAX_TYPING_BUCKETS);
    }
}
