//! The per-user connection cap: how many realtime connections each user of
//! an app holds, so one token cannot open connections without bound. A
//! connection takes a [`UserSlot`] before the upgrade (one more than
//! `--max-connections-per-user` is answered HTTP 429 `too_many_connections`)
//! and gives it back when its task ends, however it ends (the slot's `Drop`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Connections per `(appId, userId)`; entries at zero are removed.
#[derive(Default, Clone)]
pub struct UserConnections {
    counts: Arc<Mutex<HashMap<(String, String), u32>>>,
}

/// One held connection of a user; dropping it frees the slot.
pub struct UserSlot {
    counts: Arc<Mutex<HashMap<(String, String), u32>>>,
    key: (String, String),
}

impl UserConnections {
    /// A slot for `user` of `app`, or `None` when the user holds `limit` already.
    pub fn try_take(&self, app: &str, user: &str, limit: u32) -> Option<UserSlot> {
        let key = (app.to_string(), user.to_string());
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key.clone()).or_default();
        if *n >= limit {
            if *n == 0 {
                counts.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(UserSlot { counts: self.counts.clone(), key })
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
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
}
