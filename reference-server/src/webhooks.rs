//! Outgoing webhooks: events are signed and POSTed to the app's registered
//! URL. Each delivery attempt has a 5 s timeout; a failed attempt (transport
//! error, timeout, non-2xx, or a redirect, which is never followed) is
//! retried once one second later with the same body (SG-HOOK-8).
//!
//! One queue per app, each with its own sender task and its own limit of
//! deliveries in flight (`--webhook-concurrency`, default 16): an event waits
//! only for deliveries of its own app, and only while that many are in
//! flight, so one app's dead endpoint never delays another app's events.
//!
//! Queue policy, per app: the events queued or in flight are bounded by
//! bytes (`--webhook-budget-bytes`, default 64 MiB, each event counted as the
//! body it will send) and by count (`--webhook-queue-events`, default
//! 10,000). An event that would pass either bound is dropped and counted; the
//! first drop and every 1,000th are logged with the app's total. Nothing
//! waits on a full queue, so a dead endpoint never slows message delivery.
//!
//! Memory: a `notification.triggered` event holds its messages as the
//! shared JSON bytes its notification window held ([`SharedMessage`]); the
//! body is assembled only when its delivery starts.
//!
//! Shutdown: [`Webhooks::drain`] waits, up to a bound, until every queue is
//! empty and nothing is in flight, then stops the senders.

use crate::config::HookLimits;
use crate::state::App;
use crate::webhook_target::{self, GuardedResolver};
use bytes::Bytes;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use supergroup_protocol::webhook::{Envelope, NOTIFICATION_TRIGGERED, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Log one drop line per this many drops (and the first one).
const LOG_EVERY_DROPS: u64 = 1_000;

/// A message serialized once as JSON and shared by every notification window
/// and webhook event that carries it.
pub type SharedMessage = Bytes;

/// What an event will send.
enum Payload {
    /// A body serialized at emit time.
    Ready(Bytes),
    /// A `notification.triggered`, assembled from shared messages at delivery.
    Notification { created_at: i64, recipient: String, conversation: String, messages: Vec<SharedMessage> },
}

impl Payload {
    /// The body's size in bytes, without building it.
    fn cost(&self) -> usize {
        match self {
            Payload::Ready(b) => b.len(),
            Payload::Notification { recipient, conversation, messages, .. } => {
                160 + 2 * (recipient.len() + conversation.len()) + messages.iter().map(|m| m.len() + 1).sum::<usize>()
            }
        }
    }

    fn body(&self) -> Bytes {
        match self {
            Payload::Ready(b) => b.clone(),
            Payload::Notification { created_at, recipient, conversation, messages } => {
                notification_body(*created_at, recipient, conversation, messages)
            }
        }
    }
}

/// `{"type":"notification.triggered","createdAt","data":{"recipient","conversation","messages"}}`,
/// byte for byte what serializing `Envelope<NotificationTriggered>` gives.
fn notification_body(created_at: i64, recipient: &str, conversation: &str, messages: &[SharedMessage]) -> Bytes {
    let id = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let mut out = Vec::with_capacity(200 + messages.iter().map(|m| m.len() + 1).sum::<usize>());
    out.extend_from_slice(format!("{{\"type\":\"{NOTIFICATION_TRIGGERED}\",\"createdAt\":{created_at},").as_bytes());
    out.extend_from_slice(
        format!(
            "\"data\":{{\"recipient\":{{\"id\":{}}},\"conversation\":{{\"id\":{}}},\"messages\":[",
            id(recipient),
            id(conversation)
        )
        .as_bytes(),
    );
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(m);
    }
    out.extend_from_slice(b"]}}");
    Bytes::from(out)
}

struct Event {
    kind: &'static str,
    url: String,
    secret: Arc<str>,
    payload: Payload,
    /// Bytes counted against the app's budget until the delivery ends.
    cost: usize,
}

/// One app's queue: events waiting, and the totals of waiting plus in flight.
#[derive(Default)]
struct Pending {
    events: VecDeque<Event>,
    /// Events queued or in flight.
    count: usize,
    /// Bytes of events queued or in flight.
    bytes: usize,
    /// Events dropped at the bounds since start.
    dropped: u64,
}

struct AppQueue {
    app: String,
    pending: Mutex<Pending>,
    /// Woken when an event is queued.
    queued: Notify,
    /// Woken when a delivery ends.
    settled: Notify,
    /// Outcomes since start, for `GET /metrics`.
    outcomes: Outcomes,
}

/// How an app's deliveries ended, counted since start.
#[derive(Default)]
struct Outcomes {
    /// Events answered 2xx.
    delivered: AtomicU64,
    /// Attempts that failed and were tried again.
    retried: AtomicU64,
    /// Events given up: the last attempt failed, or the URL was refused.
    failed: AtomicU64,
}

/// One app's webhook figures, as `GET /metrics` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStats {
    pub app: String,
    /// Events queued or in flight, and their body bytes.
    pub queued_events: usize,
    pub queued_bytes: usize,
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
    /// Dropped at the queue's bounds.
    pub dropped: u64,
}

impl AppQueue {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The webhook senders of every app.
pub struct Webhooks {
    queues: HashMap<String, Arc<AppQueue>>,
    limits: HookLimits,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Webhooks {
    /// Starts one sender task per app on the current runtime.
    pub fn start(app_ids: impl IntoIterator<Item = String>, limits: HookLimits) -> anyhow::Result<Webhooks> {
        let mut http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver));
        if let Some(pem) = &limits.extra_root_pem {
            http = http.tls_certs_merge([reqwest::Certificate::from_pem(pem)?]);
        }
        let http = http.build()?;
        let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
        let mut queues = HashMap::new();
        for app in app_ids {
            let q = Arc::new(AppQueue {
                app: app.clone(),
                pending: Mutex::default(),
                queued: Notify::new(),
                settled: Notify::new(),
                outcomes: Outcomes::default(),
            });
            tasks.spawn(send_loop(
                q.clone(),
                http.clone(),
                limits.webhook_concurrency.max(1),
                stop.clone(),
                tasks.clone(),
            ));
            queues.insert(app, q);
        }
        Ok(Webhooks { queues, limits, stop, tasks })
    }

    /// Queues event `kind` for `app` if it registered a webhook that wants it.
    /// Never waits: safe to call while holding any lock.
    pub fn emit<T: Serialize>(&self, app: &App, kind: &'static str, data: &T) {
        if wanted(app, kind).is_none() {
            return;
        }
        let envelope = Envelope { kind: kind.to_string(), created_at: crate::now_ms(), data };
        let body = Bytes::from(serde_json::to_vec(&envelope).expect("events serialize"));
        self.push(app, kind, Payload::Ready(body));
    }

    /// Queues a `notification.triggered` for `recipient` listing `messages`
    /// (oldest first), sharing their bytes with the window that held them.
    pub fn emit_notification(&self, app: &App, recipient: &str, conversation: &str, messages: Vec<SharedMessage>) {
        let payload = Payload::Notification {
            created_at: crate::now_ms(),
            recipient: recipient.into(),
            conversation: conversation.into(),
            messages,
        };
        self.push(app, NOTIFICATION_TRIGGERED, payload);
    }

    fn push(&self, app: &App, kind: &'static str, payload: Payload) {
        let Some(url) = wanted(app, kind) else { return };
        let Some(q) = self.queues.get(&app.config.id) else { return };
        let cost = payload.cost();
        let event = Event { kind, url, secret: app.config.secret.as_str().into(), payload, cost };
        let mut p = q.pending();
        if p.count + 1 > self.limits.webhook_queue_events || p.bytes + cost > self.limits.webhook_budget_bytes {
            p.dropped += 1;
            let (dropped, count, bytes) = (p.dropped, p.count, p.bytes);
            drop(p);
            if dropped == 1 || dropped.is_multiple_of(LOG_EVERY_DROPS) {
                tracing::error!(
                    app = %app.config.id, event = kind, event_bytes = cost, queued_events = count, queued_bytes = bytes,
                    dropped_total = dropped,
                    "webhook queue of this app is at its bound ({} events, {} bytes); event dropped",
                    self.limits.webhook_queue_events, self.limits.webhook_budget_bytes
                );
            }
            return;
        }
        p.count += 1;
        p.bytes += cost;
        p.events.push_back(event);
        drop(p);
        q.queued.notify_one();
    }

    /// Events dropped at the bounds of `app` since start.
    pub fn dropped(&self, app: &str) -> u64 {
        self.queues.get(app).map(|q| q.pending().dropped).unwrap_or(0)
    }

    /// Every app's queue and delivery outcomes, sorted by app.
    pub fn stats(&self) -> Vec<AppStats> {
        let mut all: Vec<AppStats> = self
            .queues
            .values()
            .map(|q| {
                let p = q.pending();
                let o = &q.outcomes;
                AppStats {
                    app: q.app.clone(),
                    queued_events: p.count,
                    queued_bytes: p.bytes,
                    delivered: o.delivered.load(Ordering::Relaxed),
                    retried: o.retried.load(Ordering::Relaxed),
                    failed: o.failed.load(Ordering::Relaxed),
                    dropped: p.dropped,
                }
            })
            .collect();
        all.sort_by(|a, b| a.app.cmp(&b.app));
        all
    }

    /// Waits until every app's queue is empty with nothing in flight, or
    /// until `within` has passed; then stops the senders (a delivery still in
    /// flight is abandoned). Returns the events left undelivered.
    pub async fn drain(&self, within: Duration) -> usize {
        let all_settled = async {
            for q in self.queues.values() {
                loop {
                    let settled = q.settled.notified();
                    if q.pending().count == 0 {
                        break;
                    }
                    settled.await;
                }
            }
        };
        let _ = tokio::time::timeout(within, all_settled).await;
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        let left: usize = self.queues.values().map(|q| q.pending().count).sum();
        if left > 0 {
            tracing::warn!(left, "shutdown: webhook events not delivered within {within:?}");
        }
        left
    }
}

/// The URL to deliver `kind` to, if `app` registered a webhook that wants it.
fn wanted(app: &App, kind: &str) -> Option<String> {
    let reg = app.webhook()?;
    if reg.events.as_ref().is_some_and(|evs| !evs.iter().any(|e| e == kind)) {
        return None;
    }
    Some(reg.url)
}

/// One app's sender: takes events in order, at most `in_flight` delivering at once.
async fn send_loop(
    q: Arc<AppQueue>,
    http: reqwest::Client,
    in_flight: usize,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let event = loop {
            let queued = q.queued.notified();
            if let Some(e) = q.pending().events.pop_front() {
                break e;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = queued => {}
            }
        };
        let (q, http, stop) = (q.clone(), http.clone(), stop.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = deliver(&http, &q.app, &event, &q.outcomes) => {}
            }
            let mut p = q.pending();
            p.count -= 1;
            p.bytes -= event.cost;
            drop(p);
            q.settled.notify_waiters();
            drop(permit);
        });
    }
}

async fn deliver(http: &reqwest::Client, app: &str, e: &Event, outcomes: &Outcomes) {
    let shown = webhook_target::for_logs(&e.url);
    if let Err(why) = webhook_target::check(&e.url) {
        tracing::warn!(app, event = e.kind, url = %shown, "webhook not sent: {why}");
        outcomes.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let body = e.payload.body();
    for attempt in 1..=2 {
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|t| t.as_secs()).unwrap_or(0).to_string();
        let result = http
            .post(&e.url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, &ts)
            .header(SIGNATURE_HEADER, sign(&e.secret, &ts, &body))
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => {
                outcomes.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(resp) => {
                tracing::warn!(app, event = e.kind, url = %shown, status = %resp.status(), attempt, "webhook refused")
            }
            Err(err) => {
                // reqwest's error text names the URL; show it without credentials.
                let err = err.without_url();
                tracing::warn!(app, event = e.kind, url = %shown, error = %err, attempt, "webhook failed")
            }
        }
        if attempt == 1 {
            outcomes.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
    outcomes.failed.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use supergroup_protocol::rest::{Message, MessageType, Origin};
    use supergroup_protocol::webhook::{IdRef, NotificationTriggered};

    #[test]
    fn an_assembled_notification_body_is_what_serde_writes() {
        let msg = |id: &str, text: &str| Message {
            id: id.into(),
            conversation_id: "lobby \"1\"".into(),
            sender_id: Some("alice".into()),
            kind: MessageType::UserMessage,
            text: text.into(),
            custom: Default::default(),
            created_at: 5,
            origin: Origin::Rest,
        };
        let messages = vec![msg("m1", "hi"), msg("m2", "ünï \n \"q\"")];
        let shared: Vec<SharedMessage> = messages.iter().map(|m| Bytes::from(serde_json::to_vec(m).unwrap())).collect();
        let built = notification_body(42, "bob", "lobby \"1\"", &shared);
        let data = NotificationTriggered {
            recipient: IdRef { id: "bob".into() },
            conversation: IdRef { id: "lobby \"1\"".into() },
            messages,
        };
        let expected =
            serde_json::to_vec(&Envelope { kind: NOTIFICATION_TRIGGERED.into(), created_at: 42, data }).unwrap();
        assert_eq!(std::str::from_utf8(&built).unwrap(), std::str::from_utf8(&expected).unwrap());
        let payload = Payload::Notification {
            created_at: 42,
            recipient: "bob".into(),
            conversation: "lobby \"1\"".into(),
            messages: shared,
        };
        assert!(payload.cost() >= built.len(), "the budget never counts less than the body");
    }
}
