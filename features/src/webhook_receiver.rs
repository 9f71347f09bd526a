//! The suite's own webhook endpoint: a real HTTP server (axum) that the
//! server under test POSTs its events to. Every delivery is kept with what
//! the suite needs to judge it: the event type, the conversation it is about,
//! whether its signature verified, and when it came. Scenarios share one
//! receiver (the webhook endpoint is per app) and each reads only the events
//! of its own conversations, waiting with a bounded timeout.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use supergroup_protocol::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

/// Largest webhook body the receiver takes, in bytes (axum's default is 2 MB).
/// A notification lists every message of its window: the slow-consumer flood
/// puts megabytes in one, and the reference server bounds its open windows at
/// 64 MiB in all (SPEC.md 15). A bigger body is answered 413.
const BODY_LIMIT: usize = 128 * 1024 * 1024;

/// Deliveries kept per conversation; past it the oldest is dropped. A run
/// produces a few per message, so this is never reached by the suite itself;
/// it only stops a misbehaving server from growing the receiver without end.
const KEPT_PER_CONVERSATION: usize = 1_000;

/// Deliveries listed in a failure message, at most (the most recent ones).
const SHOWN_IN_FAILURE: usize = 10;
/// Characters of a message text shown in a failure message, at most.
const TEXT_SHOWN: usize = 60;

fn shorten(text: &str) -> String {
    match text.char_indices().nth(TEXT_SHOWN) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text.to_string(),
    }
}

/// The path of the URL the suite registers.
pub const DEFAULT_PATH: &str = "/webhooks";

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `type` of the envelope (`message.sent`, `notification.triggered`, ...).
    pub kind: String,
    /// `data.conversation.id`, the key scenarios filter on.
    pub conversation_id: String,
    /// The whole envelope.
    pub body: serde_json::Value,
    /// Whether `X-Supergroup-Signature` is the HMAC of timestamp + "." + body.
    pub signature_ok: bool,
    /// `X-Supergroup-Timestamp` as sent.
    pub timestamp: Option<String>,
    /// The HTTP status the receiver answered (500 when told to fail it).
    pub answered: u16,
    /// When it arrived.
    pub at: Instant,
    /// The request path, to tell two registered URLs apart.
    pub path: String,
    /// The HTTP method (the protocol uses POST).
    pub method: String,
    /// `Content-Type` as sent.
    pub content_type: Option<String>,
    /// The body bytes, to compare a retry with the first attempt.
    pub raw: Bytes,
}

impl Delivery {
    /// `data.recipient.id` of a `notification.triggered`.
    pub fn recipient(&self) -> Option<&str> {
        self.body.pointer("/data/recipient/id").and_then(|v| v.as_str())
    }

    /// The texts of `data.messages` (notification) or `data.message` (message.sent).
    pub fn texts(&self) -> Vec<String> {
        let one = self.body.pointer("/data/message/text").and_then(|v| v.as_str()).map(str::to_owned);
        let many: Option<Vec<String>> = self
            .body
            .pointer("/data/messages")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|m| m.get("text").and_then(|t| t.as_str()).map(str::to_owned)).collect());
        one.into_iter().chain(many.unwrap_or_default()).collect()
    }
}

/// The shared state of the receiver: a cheap-clone handle.
#[derive(Clone)]
pub struct Inbox {
    shared: Arc<Shared>,
}

struct Shared {
    /// The app secret the signatures are checked with.
    secret: String,
    /// Deliveries by conversation id, oldest first. A std mutex: it is never
    /// held across an `.await`.
    by_conversation: Mutex<HashMap<String, VecDeque<Delivery>>>,
    /// Conversation ids whose next deliveries are answered 500 (to see the retry), with how many.
    fail_next: Mutex<HashMap<String, u32>>,
    /// Conversation ids whose next delivery is answered only after this long (to see the timeout).
    hold_next: Mutex<HashMap<String, Duration>>,
    /// Woken on every delivery, for [`Inbox::wait_for`].
    arrived: Notify,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

impl Inbox {
    fn new(secret: &str) -> Inbox {
        Inbox {
            shared: Arc::new(Shared {
                secret: secret.into(),
                by_conversation: Mutex::new(HashMap::new()),
                fail_next: Mutex::new(HashMap::new()),
                hold_next: Mutex::new(HashMap::new()),
                arrived: Notify::new(),
            }),
        }
    }

    /// Every delivery about `conversation_id` so far, oldest first.
    pub fn deliveries(&self, conversation_id: &str) -> Vec<Delivery> {
        let map = self.shared.by_conversation.lock().expect("inbox lock poisoned");
        map.get(conversation_id).map(|q| q.iter().cloned().collect()).unwrap_or_default()
    }

    /// Answers the next `n` deliveries about `conversation_id` with HTTP 500.
    pub fn fail_next(&self, conversation_id: &str, n: u32) {
        self.shared.fail_next.lock().expect("inbox lock poisoned").insert(conversation_id.into(), n);
    }

    /// Answers the next delivery about `conversation_id` only after `hold`.
    pub fn hold_next(&self, conversation_id: &str, hold: Duration) {
        self.shared.hold_next.lock().expect("inbox lock poisoned").insert(conversation_id.into(), hold);
    }

    /// Waits until a delivery about `conversation_id` matches `pred`; fails
    /// after `timeout` with a message naming `what`.
    pub async fn wait_for(
        &self,
        conversation_id: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Delivery) -> bool,
    ) -> anyhow::Result<Delivery> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(d) = self.deliveries(conversation_id).into_iter().find(|d| pred(d)) {
                return Ok(d);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let all = self.deliveries(conversation_id);
                // The last few, each shortened: a flood must not turn one
                // failure message into megabytes of report.
                let seen: Vec<String> = all
                    .iter()
                    .skip(all.len().saturating_sub(SHOWN_IN_FAILURE))
                    .map(|d| {
                        let texts: Vec<String> = d.texts().iter().map(|t| shorten(t)).collect();
                        format!("{} to {:?} {:?}", d.kind, d.recipient(), texts)
                    })
                    .collect();
                anyhow::bail!(
                    "expected {what} within {timeout:?}; received {} webhook(s) for this conversation{}: [{}]",
                    all.len(),
                    if all.len() > SHOWN_IN_FAILURE { format!(", the last {SHOWN_IN_FAILURE}") } else { String::new() },
                    seen.join("; ")
                );
            }
        }
    }

    /// Keeps one request; returns the status to answer and how long to hold the answer.
    fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: Bytes) -> (u16, Duration) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let timestamp = header(TIMESTAMP_HEADER);
        let signature_ok = match (&timestamp, header(SIGNATURE_HEADER)) {
            (Some(ts), Some(sig)) => verify(&self.shared.secret, ts, &body, &sig),
            _ => false,
        };
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        let conversation_id =
            json.pointer("/data/conversation/id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let answered = {
            let mut fail = self.shared.fail_next.lock().expect("inbox lock poisoned");
            match fail.get_mut(&conversation_id) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    500
                }
                _ => 200,
            }
        };
        let hold =
            self.shared.hold_next.lock().expect("inbox lock poisoned").remove(&conversation_id).unwrap_or_default();
        let delivery = Delivery {
            kind: json.get("type").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
            conversation_id: conversation_id.clone(),
            body: json,
            signature_ok,
            timestamp,
            answered,
            at: Instant::now(),
            path: uri.path().to_string(),
            method: method.to_string(),
            content_type: header("content-type"),
            raw: body,
        };
        {
            let mut map = self.shared.by_conversation.lock().expect("inbox lock poisoned");
            let q = map.entry(conversation_id).or_default();
            if q.len() == KEPT_PER_CONVERSATION {
                q.pop_front();
            }
            q.push_back(delivery);
        }
        self.shared.arrived.notify_waiters();
        (answered, hold)
    }
}

/// A running receiver.
pub struct Receiver {
    pub inbox: Inbox,
    /// Where it listens.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Binds `listen` and starts serving; signatures are checked with `secret`.
    pub async fn start(listen: SocketAddr, secret: &str) -> anyhow::Result<Receiver> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("webhook receiver cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let inbox = Inbox::new(secret);
        let app = Router::new()
            .fallback(receive)
            .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(inbox.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Receiver { inbox, addr, stop, task })
    }

    /// The URL to register for a receiver on this machine.
    pub fn local_url(&self) -> String {
        format!("http://{}{DEFAULT_PATH}", self.addr)
    }

    /// Stops serving.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn receive(State(inbox): State<Inbox>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let (status, hold) = inbox.record(&method, &uri, &headers, body);
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
