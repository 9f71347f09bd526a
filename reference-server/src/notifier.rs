//! Notifications (`notification.triggered`): one window per recipient and
//! conversation. The first notifiable message opens it; messages inside the
//! window join it; `notificationDelayMs` after the first message it closes,
//! and if the recipient still does not have the conversation open on any
//! connection, one event lists the window's messages, oldest first.
//!
//! Memory bound, in bytes: a message is serialized once and its JSON bytes
//! are shared by every window holding it and by the events they become
//! ([`SharedMessage`]). The windows together may hold
//! `--notification-budget-bytes` (default 64 MiB), each message counted
//! once per window holding it (so the real memory is at most that). When a
//! message joining a window takes the total over the budget, that window
//! closes at once, with the same open check, and the next message opens a
//! new one (SPEC section 13, "Memory bound"). Nothing is dropped here; the
//! event then meets the webhook queue's own budget. Early closes are counted
//! and logged (the first and every 1,000th).
//!
//! Shutdown closes every open window at once ([`fire_all`]).

use crate::state::{App, AppState};
use crate::webhooks::SharedMessage;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use supergroup_protocol::rest::Message;

/// Log one early-close line per this many (and the first one).
const LOG_EVERY_EARLY: u64 = 1_000;

/// (app, conversation, recipient).
type WindowKey = (String, String, String);

struct Window {
    /// Distinguishes this window from a later one under the same key.
    id: u64,
    messages: Vec<SharedMessage>,
    /// Bytes of `messages`, as counted against the budget.
    bytes: usize,
    /// Skip the "has it open" check at window close (only under the notify-open-not-rechecked violation).
    unchecked: bool,
}

#[derive(Default)]
struct Windows {
    open: HashMap<WindowKey, Window>,
    /// Sum of `bytes` of every open window.
    bytes: usize,
}

impl Windows {
    fn take(&mut self, key: &WindowKey) -> Option<Window> {
        let w = self.open.remove(key)?;
        self.bytes -= w.bytes;
        Some(w)
    }
}

/// Open notification windows.
pub struct Notifier {
    windows: Mutex<Windows>,
    delay: Duration,
    /// Bytes all open windows may hold before the one that passes it closes early.
    budget: usize,
    runtime: tokio::runtime::Handle,
    next_id: AtomicU64,
    /// Windows closed early at the budget since start.
    early: AtomicU64,
}

impl Notifier {
    /// Must be called inside the runtime: timers are spawned on it.
    pub fn new(delay: Duration, budget_bytes: usize) -> Notifier {
        Notifier {
            windows: Mutex::default(),
            delay,
            budget: budget_bytes,
            runtime: tokio::runtime::Handle::current(),
            next_id: AtomicU64::new(0),
            early: AtomicU64::new(0),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes the open windows hold now, as counted against the budget.
    pub fn held_bytes(&self) -> usize {
        self.windows().bytes
    }

    /// Windows open now.
    pub fn open_windows(&self) -> usize {
        self.windows().open.len()
    }

    /// Windows closed early at the budget since start.
    pub fn closed_early(&self) -> u64 {
        self.early.load(Ordering::Relaxed)
    }
}

/// Adds `msg` to the window of each recipient. `unchecked` recipients are
/// notified even with the conversation open at window close
/// (notify-open-not-rechecked violation only).
pub fn add(state: &AppState, app: &Arc<App>, msg: &Message, recipients: Vec<String>, unchecked: bool) {
    if recipients.is_empty() {
        return;
    }
    let n = &state.notifier;
    let shared: SharedMessage = Bytes::from(serde_json::to_vec(msg).expect("messages serialize"));
    let cost = shared.len();
    for user in recipients {
        let key = (app.config.id.clone(), msg.conversation_id.clone(), user);
        let mut windows = n.windows();
        windows.bytes += cost;
        let over = windows.bytes > n.budget;
        match windows.open.get_mut(&key) {
            Some(w) => {
                w.messages.push(shared.clone());
                w.bytes += cost;
            }
            None => {
                let id = n.next_id.fetch_add(1, Ordering::Relaxed);
                let w = Window { id, messages: vec![shared.clone()], bytes: cost, unchecked };
                windows.open.insert(key.clone(), w);
                let (state, app, key, delay) = (state.clone(), app.clone(), key.clone(), n.delay);
                n.runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let mut windows = state.notifier.windows();
                    if windows.open.get(&key).is_some_and(|w| w.id == id) {
                        let w = windows.take(&key).expect("just found");
                        drop(windows);
                        fire(&state, &app, &key, w);
                    }
                });
            }
        }
        if over {
            let w = windows.take(&key).expect("just added to");
            let held = windows.bytes;
            drop(windows);
            let early = n.early.fetch_add(1, Ordering::Relaxed) + 1;
            if early == 1 || early.is_multiple_of(LOG_EVERY_EARLY) {
                tracing::warn!(
                    app = %app.config.id, held_bytes = held, closed_early_total = early,
                    "notification windows are at their budget of {} bytes; a window closed early", n.budget
                );
            }
            fire(state, app, &key, w);
        }
    }
}

/// Closes every open window now (shutdown), each with the usual open check.
pub fn fire_all(state: &AppState) {
    let open: Vec<(WindowKey, Window)> = {
        let mut windows = state.notifier.windows();
        windows.bytes = 0;
        windows.open.drain().collect()
    };
    for (key, w) in open {
        if let Some(app) = state.apps.get(&key.0) {
            fire(state, app, &key, w);
        }
    }
}

/// Closes a window: sends the event unless the recipient has the conversation open now.
fn fire(state: &AppState, app: &App, key: &WindowKey, w: Window) {
    let (_, conv, user) = key;
    if !w.unchecked && state.hub.user_has_open(&app.room(conv), user) {
        return;
    }
    let messages = crate::violation::faults::notification_messages(state, w.messages);
    state.webhooks.emit_notification(app, user, conv, messages);
}
