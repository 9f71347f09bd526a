//! Outgoing webhooks: events are signed and POSTed to the app's registered
//! URL by a background sender. Each delivery has a 5 s timeout and one retry
//! one second after a failure (transport error or non-2xx).
//!
//! Queue policy: events wait in a bounded queue of 10,000; when it is full the
//! new event is dropped and logged at error level, so a dead endpoint can
//! never grow the server's memory or slow message delivery. At most 32
//! deliveries are in flight at once.

use crate::state::App;
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use supergroup_protocol::webhook::{Envelope, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use tokio::sync::{Semaphore, mpsc};

/// Undelivered events the server keeps before dropping new ones.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 32;
const TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_AFTER: Duration = Duration::from_secs(1);

struct Delivery {
    url: String,
    secret: String,
    kind: &'static str,
    body: Bytes,
}

/// The sending side of the webhook queue.
pub struct Webhooks {
    tx: mpsc::Sender<Delivery>,
}

impl Webhooks {
    /// Starts the sender task on the current runtime.
    pub fn start() -> Webhooks {
        let (tx, mut rx) = mpsc::channel::<Delivery>(QUEUE_CAPACITY);
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().expect("a client with a timeout builds");
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let http = http.clone();
                tokio::spawn(async move {
                    deliver(&http, &d).await;
                    drop(permit);
                });
            }
        });
        Webhooks { tx }
    }

    /// Queues event `kind` for `app` if it registered a webhook that wants it.
    /// Never waits: safe to call while holding the database lock.
    pub fn emit<T: Serialize>(&self, app: &App, kind: &'static str, data: &T) {
        let Some(reg) = app.webhook() else { return };
        if reg.events.as_ref().is_some_and(|evs| !evs.iter().any(|e| e == kind)) {
            return;
        }
        let envelope = Envelope { kind: kind.to_string(), created_at: crate::now_ms(), data };
        let body = Bytes::from(serde_json::to_vec(&envelope).expect("events serialize"));
        let delivery = Delivery { url: reg.url, secret: app.config.secret.clone(), kind, body };
        if let Err(mpsc::error::TrySendError::Full(d)) = self.tx.try_send(delivery) {
            tracing::error!(event = d.kind, app = %app.config.id, "webhook queue full ({QUEUE_CAPACITY}); event dropped");
        }
    }
}

async fn deliver(http: &reqwest::Client, d: &Delivery) {
    for attempt in 1..=2 {
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|t| t.as_secs()).unwrap_or(0).to_string();
        let result = http
            .post(&d.url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, &ts)
            .header(SIGNATURE_HEADER, sign(&d.secret, &ts, &d.body))
            .body(d.body.clone())
            .send()
            .await;
        match result {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => {
                tracing::warn!(event = d.kind, url = %d.url, status = %resp.status(), attempt, "webhook refused")
            }
            Err(e) => tracing::warn!(event = d.kind, url = %d.url, error = %e, attempt, "webhook failed"),
        }
        if attempt == 1 {
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
}
