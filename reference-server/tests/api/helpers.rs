//! Shared test plumbing: a real server on `127.0.0.1:0` per test
//! ([`spawn_app`]), its typed REST client, realtime connections through the
//! protocol crate's client, and a real HTTP webhook receiver ([`Hooks`]).
//! Every wait is bounded by [`WAIT`]; negative checks use [`QUIET`] and only
//! after a positive control has arrived.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use supergroup_protocol::client::{Realtime, Rest};
use supergroup_protocol::frames::{ClientFrame, Role, ServerFrame, Ui};
use supergroup_protocol::rest::{
    ConversationUpsert, Message, NewMessage, PageQuery, ParticipantUpsert, WebhookRegistration,
};
use supergroup_protocol::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use supergroup_server::{Config, Running};
use tokio::sync::mpsc;

/// Longest wait for anything that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// Window of a negative check, taken only after a positive control arrived.
pub const QUIET: Duration = Duration::from_millis(300);
/// The test app's id and secret (`Config::for_tests`).
pub const APP: &str = "demo";
pub const SECRET: &str = "sk_demo";

/// One server under test and a REST client for its `demo` app.
pub struct TestApp {
    pub server: Running,
    pub rest: Rest,
}

/// A server with `Config::for_tests()` (basic plan, in memory, 200 ms notification delay).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Config::for_tests()).await
}

/// A server with `config` (its first app must be `demo`/`sk_demo`).
///
/// Mutation check: with `SG_TEST_VIOLATE=<rule>` (a `--violate` spelling such
/// as `guest-notified`) every server breaks that rule on purpose, and the
/// test of that rule must fail, proving it can. Unset in normal runs.
pub async fn spawn_app_with(mut config: Config) -> TestApp {
    if let Ok(rule) = std::env::var("SG_TEST_VIOLATE") {
        let violation = rule.parse().unwrap_or_else(|e| panic!("SG_TEST_VIOLATE={rule}: {e}"));
        config = config.violating(violation);
    }
    let server = supergroup_server::spawn(config).await.expect("the server starts");
    let rest = Rest::new(&server.base_url(), APP, SECRET);
    TestApp { server, rest }
}

/// `Config::for_tests()` with lowered limits.
pub fn config_with_limits(participants: Option<u32>, guests: Option<u32>) -> Config {
    let mut config = Config::for_tests();
    config.apps[0].participant_limit = participants;
    config.apps[0].guest_limit = guests;
    config
}

impl TestApp {
    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.server.stop().await.expect("the server stops cleanly");
    }

    /// A realtime connection for `user` with a valid one-hour token.
    pub async fn connect(&self, user: &str) -> Realtime {
        let url = self.rest.realtime_url(&self.rest.token(user));
        Realtime::connect(&url).await.unwrap_or_else(|e| panic!("{user} connects: {e}"))
    }

    /// Creates conversation `id` with these participants (default settings).
    pub async fn conversation(&self, id: &str, participants: &[&str]) {
        let body = ConversationUpsert {
            participants: Some(participants.iter().map(|p| p.to_string()).collect()),
            ..Default::default()
        };
        self.rest.put_conversation(id, &body).await.expect("conversation PUT succeeds");
    }

    /// Adds `user` as participant of `conv` with the given settings.
    pub async fn add_participant(&self, conv: &str, user: &str, settings: ParticipantUpsert) {
        self.rest.put_participant(conv, user, &settings).await.expect("participant PUT succeeds");
    }

    /// Connects `user` and opens `conv` as a guest (chatbox), asserting role `guest`.
    pub async fn guest(&self, user: &str, conv: &str) -> Realtime {
        let mut rt = self.connect(user).await;
        let reply = rt.open(conv, Ui::Chatbox, true, WAIT).await.expect("open reply");
        expect_opened(&reply, Role::Guest);
        rt
    }

    /// Connects `user` and opens `conv`, asserting role `participant`.
    pub async fn participant(&self, user: &str, conv: &str) -> Realtime {
        let mut rt = self.connect(user).await;
        let reply = rt.open(conv, Ui::Chatbox, false, WAIT).await.expect("open reply");
        expect_opened(&reply, Role::Participant);
        rt
    }

    /// Posts one UserMessage over REST and returns its id.
    pub async fn post(&self, conv: &str, sender: &str, text: &str) -> String {
        let ids = self.rest.post_messages(conv, &[user_message(sender, text)]).await.expect("message POST succeeds");
        assert_eq!(ids.len(), 1);
        ids[0].id.clone()
    }

    /// The whole history of `conv`, newest first (at most 100 messages).
    pub async fn history(&self, conv: &str) -> Vec<Message> {
        let query = PageQuery { limit: Some("100".into()), starting_after: None };
        self.rest.messages(conv, &query).await.expect("history GET succeeds").data
    }

    /// Registers `url` as the app's webhook for every event.
    pub async fn register_webhook(&self, url: &str) {
        let reg = WebhookRegistration { url: url.into(), events: None };
        self.rest.put_webhook(&reg).await.expect("webhook PUT succeeds");
    }
}

/// A UserMessage batch item.
pub fn user_message(sender: &str, text: &str) -> NewMessage {
    NewMessage::UserMessage { sender: sender.into(), text: text.into(), custom: None, idempotency_key: None }
}

/// Asserts `frame` is `opened` with `role`; returns its participants.
pub fn expect_opened(frame: &ServerFrame, role: Role) -> Vec<String> {
    match frame {
        ServerFrame::Opened { role: got, participants, .. } if *got == role => participants.clone(),
        other => panic!("expected opened with role {role:?}, got {other:?}"),
    }
}

/// Asserts `frame` is an `error` frame with `code`.
pub fn expect_error(frame: &ServerFrame, code: &str) {
    match frame {
        ServerFrame::Error { code: got, .. } if got == code => {}
        other => panic!("expected error {code}, got {other:?}"),
    }
}

/// Asserts a REST result is the error `code` with HTTP `status`.
#[track_caller]
pub fn expect_api_error<T: std::fmt::Debug>(
    result: Result<T, supergroup_protocol::client::ApiError>,
    status: u16,
    code: &str,
) {
    match result {
        Err(e) if e.status() == Some(status) && e.code() == Some(code) => {}
        other => panic!("expected HTTP {status} {code}, got {other:?}"),
    }
}

/// Asserts a raw `(status, body)` answer is the error `code` with `status`.
#[track_caller]
pub fn expect_raw_error(answer: (u16, String), status: u16, code: &str) {
    let (got, body) = answer;
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("error body is not JSON: {body:?}"));
    assert_eq!((got, json["error"]["code"].as_str()), (status, Some(code)), "body: {body}");
    assert!(json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "error message empty: {body}");
}

/// Waits for the next `message` frame on `rt`.
pub async fn next_message(rt: &mut Realtime) -> Message {
    match rt.wait_for("a message frame", WAIT, |f| matches!(f, ServerFrame::Message { .. })).await {
        Ok(ServerFrame::Message { message }) => message,
        other => panic!("expected a message frame, got {other:?}"),
    }
}

/// Waits for the reply to a frame carrying `reference`.
pub async fn reply_to(rt: &mut Realtime, reference: &str) -> ServerFrame {
    let what = format!("the reply to {reference}");
    rt.wait_for(&what, WAIT, |f| f.reference() == Some(reference)).await.expect("a reply")
}

/// Sends an idempotent `close` of a conversation that is not open and waits
/// for `closed`: a barrier proving every earlier frame of this connection was
/// processed (frames are handled in order, SG-RT-2).
pub async fn barrier(rt: &mut Realtime) {
    let reference = rt.fresh_ref();
    let frame = ClientFrame::Close { reference: Some(reference.clone()), conversation_id: "barrier-never-open".into() };
    match rt.request(&frame, WAIT).await {
        Ok(ServerFrame::Closed { .. }) => {}
        other => panic!("barrier: expected closed, got {other:?}"),
    }
}

/// Frames matching `pred` that are kept or arrive within [`QUIET`].
pub async fn quiet_collect(rt: &mut Realtime, pred: impl FnMut(&ServerFrame) -> bool) -> Vec<ServerFrame> {
    rt.collect_for(QUIET, pred).await.expect("collecting frames")
}

/// One webhook delivery as the receiver got it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub timestamp: String,
    pub signature: String,
    pub content_type: String,
    /// The raw body, exactly as received.
    pub body: Bytes,
    pub json: serde_json::Value,
}

impl Delivery {
    /// The event type.
    pub fn kind(&self) -> &str {
        self.json["type"].as_str().unwrap_or("")
    }

    /// Whether the signature verifies with the test app's secret.
    pub fn signed_by_app(&self) -> bool {
        supergroup_protocol::webhook::verify(SECRET, &self.timestamp, &self.body, &self.signature)
    }

    /// `data.recipient.id` of a `notification.triggered`.
    pub fn recipient(&self) -> &str {
        self.json["data"]["recipient"]["id"].as_str().unwrap_or("")
    }

    /// Ids of `data.messages` of a `notification.triggered`, in order.
    pub fn message_ids(&self) -> Vec<String> {
        self.json["data"]["messages"]
            .as_array()
            .map(|ms| ms.iter().map(|m| m["id"].as_str().unwrap_or("").to_string()).collect())
            .unwrap_or_default()
    }
}

/// Receiver state shared with its handler.
#[derive(Clone)]
struct Sink {
    tx: mpsc::Sender<Delivery>,
    /// Deliveries still to be refused with HTTP 500.
    fail_next: Arc<AtomicUsize>,
}

/// A real HTTP webhook receiver on `127.0.0.1:0`.
///
/// Queue policy: deliveries wait in a bounded channel of 4,096; when it is
/// full the handler waits, which only slows the server's webhook sender.
pub struct Hooks {
    pub url: String,
    rx: mpsc::Receiver<Delivery>,
    /// Deliveries received but not yet taken by a matching wait, oldest first.
    kept: Vec<Delivery>,
    fail_next: Arc<AtomicUsize>,
}

impl Hooks {
    pub async fn start() -> Hooks {
        let (tx, rx) = mpsc::channel(4096);
        let fail_next = Arc::new(AtomicUsize::new(0));
        let sink = Sink { tx, fail_next: fail_next.clone() };
        let router = axum::Router::new().route("/hook", post(receive)).with_state(sink);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("receiver binds");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Hooks { url: format!("http://{addr}/hook"), rx, kept: Vec::new(), fail_next }
    }

    /// Answers the next `n` deliveries with HTTP 500.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Waits for the first delivery matching `pred`; others are kept.
    pub async fn next(&mut self, what: &str, mut pred: impl FnMut(&Delivery) -> bool) -> Delivery {
        if let Some(i) = self.kept.iter().position(&mut pred) {
            return self.kept.remove(i);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(d)) if pred(&d) => return d,
                Ok(Some(d)) => self.kept.push(d),
                Ok(None) => panic!("webhook receiver stopped while waiting for {what}"),
                Err(_) => panic!("no webhook {what} within {WAIT:?}; kept: {:?}", self.kept),
            }
        }
    }

    /// Every delivery matching `pred` kept or arriving within `window`.
    pub async fn collect_for(&mut self, window: Duration, mut pred: impl FnMut(&Delivery) -> bool) -> Vec<Delivery> {
        let (mut found, kept): (Vec<_>, Vec<_>) = self.kept.drain(..).partition(&mut pred);
        self.kept = kept;
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(d)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            if pred(&d) { found.push(d) } else { self.kept.push(d) }
        }
        found
    }

    /// Waits for the `message.sent` of message `id`.
    pub async fn message_sent(&mut self, id: &str) -> Delivery {
        let what = format!("message.sent for {id}");
        self.next(&what, |d| d.kind() == "message.sent" && d.json["data"]["message"]["id"] == id).await
    }

    /// Waits for a `notification.triggered` for `recipient`.
    pub async fn notification_for(&mut self, recipient: &str) -> Delivery {
        let what = format!("notification.triggered for {recipient}");
        self.next(&what, |d| d.kind() == "notification.triggered" && d.recipient() == recipient).await
    }

    /// `notification.triggered` events for `recipient` kept or arriving within [`QUIET`].
    pub async fn quiet_notifications_for(&mut self, recipient: &str) -> Vec<Delivery> {
        self.collect_for(QUIET, |d| d.kind() == "notification.triggered" && d.recipient() == recipient).await
    }
}

async fn receive(State(sink): State<Sink>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let delivery = Delivery {
        timestamp: header(TIMESTAMP_HEADER),
        signature: header(SIGNATURE_HEADER),
        content_type: header("content-type"),
        body,
        json,
    };
    let _ = sink.tx.send(delivery).await;
    let refuse = sink.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if refuse { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
}

/// `GET /metrics`: the text.
pub async fn scrape(base: &str) -> String {
    let resp = reqwest::get(format!("{base}/metrics")).await.expect("GET /metrics");
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    resp.text().await.unwrap()
}

/// The value of the sample line `series` (`name{labels}` exactly), if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `/metrics` (bounded: 50 x 50 ms) until `series` reads `want`; returns the last text.
pub async fn scrape_until(base: &str, series: &str, want: f64) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        text = scrape(base).await;
        if sample(&text, series) == Some(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    text
}
