//! Notifications (`notification.triggered`): one window per recipient and
//! conversation. The first notifiable message opens it; messages inside the
//! window join it; `notificationDelayMs` after the first message it closes,
//! and if the recipient still does not have the conversation open on any
//! connection, one event lists the window's messages, oldest first.
//!
//! Bound: a window holds at most 100 messages; the 100th closes it at once
//! (same open check), and the next message starts a new window. So memory is
//! bounded by recipients x conversations, and nothing is dropped.

use crate::state::{App, AppState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use supergroup_protocol::rest::Message;
use supergroup_protocol::webhook::{IdRef, NOTIFICATION_TRIGGERED, NotificationTriggered};

/// Messages one window holds before it closes early.
const WINDOW_CAP: usize = 100;

type WindowKey = (String, String, String);

struct Window {
    /// Distinguishes this window from a later one under the same key.
    id: u64,
    messages: Vec<Message>,
    /// Skip the "has it open" check at window close (only under the notify-open-not-rechecked violation).
    unchecked: bool,
}

/// Open notification windows.
pub struct Notifier {
    windows: Mutex<HashMap<WindowKey, Window>>,
    delay: Duration,
    runtime: tokio::runtime::Handle,
    next_id: std::sync::atomic::AtomicU64,
}

impl Notifier {
    /// Must be called inside the runtime: timers are spawned on it.
    pub fn new(delay: Duration) -> Notifier {
        Notifier {
            windows: Mutex::new(HashMap::new()),
            delay,
            runtime: tokio::runtime::Handle::current(),
            next_id: Default::default(),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, HashMap<WindowKey, Window>> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds `msg` to the window of each recipient. `unchecked` recipients are
/// notified even with the conversation open at window close
/// (notify-open-not-rechecked violation only).
pub fn add(state: &AppState, app: &Arc<App>, msg: &Message, recipients: Vec<String>, unchecked: bool) {
    let n = &state.notifier;
    for user in recipients {
        let key = (app.config.id.clone(), msg.conversation_id.clone(), user);
        let mut windows = n.windows();
        match windows.get_mut(&key) {
            Some(w) => {
                w.messages.push(msg.clone());
                if w.messages.len() >= WINDOW_CAP {
                    let w = windows.remove(&key).expect("just found");
                    drop(windows);
                    fire(state, app, &key, w);
                }
            }
            None => {
                let id = n.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                windows.insert(key.clone(), Window { id, messages: vec![msg.clone()], unchecked });
                drop(windows);
                let (state, app, delay) = (state.clone(), app.clone(), n.delay);
                n.runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let mut windows = state.notifier.windows();
                    if windows.get(&key).is_some_and(|w| w.id == id) {
                        let w = windows.remove(&key).expect("just found");
                        drop(windows);
                        fire(&state, &app, &key, w);
                    }
                });
            }
        }
    }
}

/// Closes a window: sends the event unless the recipient has the conversation open now.
fn fire(state: &AppState, app: &App, key: &WindowKey, w: Window) {
    let (_, conv, user) = key;
    if !w.unchecked && state.hub.user_has_open(&app.room(conv), user) {
        return;
    }
    let data = NotificationTriggered {
        recipient: IdRef { id: user.clone() },
        conversation: IdRef { id: conv.clone() },
        messages: w.messages,
    };
    state.webhooks.emit(app, NOTIFICATION_TRIGGERED, &data);
}
