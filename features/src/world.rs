//! The World of a scenario: what one scenario knows while it runs. It holds
//! the run's shared [`Suite`] (REST client, app info, webhook inbox), a random
//! id prefix so that every user and conversation of the scenario is its own,
//! and the realtime connections it opened, by user name. Steps speak in
//! names ("alice", "lobby"); the World turns them into unique ids.

use crate::webhook_receiver::Inbox;
use regex::Regex;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::LazyLock;
use std::time::Duration;
use supergroup_protocol::client::{ApiError, Realtime, Rest, WsConfig};
use supergroup_protocol::frames::{ServerFrame, Ui};
use supergroup_protocol::rest::{AppInfo, WebhookRegistration};

/// The least time the suite allows a server between closing a notification
/// window and the event arriving at the receiver (see [`Suite::notification_deadline`]).
pub const DELIVERY_ALLOWANCE: Duration = Duration::from_millis(500);

/// What every scenario of one run shares.
#[derive(Debug)]
pub struct Suite {
    /// REST client for the app under test, on the first target.
    pub rest: Rest,
    /// One REST client per target node (`--target URL1,URL2,...`), the first
    /// being [`Suite::rest`]. A scenario spreads its users and REST calls over
    /// them (see [`SgWorld::rest`] and [`SgWorld::realtime_url`]).
    pub nodes: Vec<Rest>,
    /// `GET /v1/{appId}` as read at the start of the run: plan, limits, notification delay.
    pub app: AppInfo,
    /// Deliveries to the suite's webhook receiver.
    pub inbox: Inbox,
    /// Bound of every wait for a reply or an event.
    pub wait: Duration,
    /// The webhook URL the suite registered (scenarios that change the registration restore it).
    pub hook_url: String,
    /// A second app on the same server, for the isolation scenarios.
    pub other_app: Option<Rest>,
    /// Whether the target is the in-process reference server, so a scenario may start servers of its own.
    pub in_process: bool,
}

impl Suite {
    /// How long to wait for a notification: the app's delay plus a margin.
    pub fn notification_wait(&self) -> Duration {
        Duration::from_millis(self.app.notification_delay_ms) + self.wait
    }

    /// The latest a notification may come after the first message of its
    /// window was sent: `notificationDelayMs` plus the delivery allowance,
    /// the larger of the delay itself and [`DELIVERY_ALLOWANCE`].
    pub fn notification_deadline(&self) -> Duration {
        let delay = Duration::from_millis(self.app.notification_delay_ms);
        delay + delay.max(DELIVERY_ALLOWANCE)
    }
}

/// The answer to one REST call, kept for the `Then` steps that judge it.
#[derive(Debug, Clone)]
pub struct RestOutcome {
    pub status: u16,
    /// The error code, when the body was an error body.
    pub code: Option<String>,
    /// The body, or the error text.
    pub body: String,
}

impl RestOutcome {
    /// From a typed call.
    pub fn of<T: fmt::Debug>(r: &Result<T, ApiError>) -> RestOutcome {
        match r {
            Ok(v) => RestOutcome { status: 200, code: None, body: format!("{v:?}") },
            Err(ApiError::Api { status, code, message }) => RestOutcome {
                status: *status,
                code: Some(code.clone()),
                body: serde_json::json!({"error": {"code": code, "message": message}}).to_string(),
            },
            Err(e) => {
                RestOutcome { status: e.status().unwrap_or(0), code: e.code().map(str::to_owned), body: e.to_string() }
            }
        }
    }

    /// From a raw call (status and body text).
    pub fn raw(status: u16, body: String) -> RestOutcome {
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.pointer("/error/code").and_then(|c| c.as_str()).map(str::to_owned));
        RestOutcome { status, code, body }
    }
}

impl fmt::Display for RestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "HTTP {} {code} ({})", self.status, self.body),
            None => write!(f, "HTTP {} {}", self.status, self.body),
        }
    }
}

/// One scenario's state.
#[derive(Default, cucumber::World)]
pub struct SgWorld {
    /// Set by the run's `before` hook.
    suite: Option<Arc<Suite>>,
    /// Prepended to every name, so concurrent scenarios never share an id.
    prefix: String,
    /// Realtime connections by user name.
    pub conns: HashMap<String, Realtime>,
    /// The last realtime reply each user got (to `open`, `close`, `send`).
    pub replies: HashMap<String, ServerFrame>,
    /// The last REST answer.
    pub last_rest: Option<RestOutcome>,
    /// Message ids by text, as the server acknowledged them.
    pub message_ids: HashMap<String, String>,
    /// Extra guest connections of the guest-limit scenarios, with their user ids.
    pub crowd: Vec<(String, Realtime)>,
    /// Set when a scenario changed the webhook registration; the after hook restores it.
    pub registration_changed: bool,
    /// `createdAt` of users and conversations as first read, by name.
    pub created_at: HashMap<String, i64>,
    /// When the request that stored each message (by text) was sent, and when
    /// the last one of each conversation (by id) was: the bounds of the
    /// notification timing checks.
    pub sent_at: HashMap<String, std::time::Instant>,
    pub last_sent: HashMap<String, std::time::Instant>,
    /// Anything else a scenario needs to carry from one step to the next, by name.
    pub notes: HashMap<String, String>,
    /// A reference server the scenario started for itself (shutdown scenario).
    pub own_server: Option<supergroup_server::Running>,
    /// That server stopping in the background.
    pub stopping: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// A connection that stopped reading (slow-consumer scenario), raw, with its user.
    pub slow: Option<(String, supergroup_protocol::client::Ws)>,
    /// Held while an `@serial` scenario runs (see `run::SERIAL`).
    pub serial: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// User names in the order the scenario first connected them: the k-th
    /// user's realtime connections go to target node k mod N.
    users: std::sync::Mutex<Vec<String>>,
    /// REST calls made so far: call k goes to target node k mod N.
    rest_calls: std::sync::atomic::AtomicUsize,
}

impl fmt::Debug for SgWorld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SgWorld")
            .field("prefix", &self.prefix)
            .field("connections", &self.conns.keys().collect::<Vec<_>>())
            .field("replies", &self.replies)
            .field("last_rest", &self.last_rest)
            .field("crowd", &self.crowd.len())
            .finish()
    }
}

impl SgWorld {
    /// Called by the `before` hook: joins the run and draws a fresh prefix.
    pub fn join(&mut self, suite: Arc<Suite>) {
        self.suite = Some(suite);
        self.prefix = format!("c{:08x}-", rand::random::<u32>());
    }

    /// The run's shared state.
    pub fn suite(&self) -> Arc<Suite> {
        self.suite.clone().expect("the before hook sets the suite of every scenario")
    }

    /// A REST client for the next call: with several target nodes the
    /// scenario's calls take the nodes in turn, so every node answers REST
    /// and a write on one node is read back on another.
    pub fn rest(&self) -> Rest {
        let suite = self.suite();
        let k = self.rest_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        suite.nodes.get(k % suite.nodes.len().max(1)).unwrap_or(&suite.rest).clone()
    }

    /// The target node of `user` (a name or a connection name): the k-th user
    /// the scenario connects gets node k mod N, so the users of one scenario
    /// are spread over the nodes and cross-node delivery, order and limits
    /// are what the scenario checks. With one target every user gets it.
    pub fn node_of(&self, user: &str) -> Rest {
        let suite = self.suite();
        let name = Self::user_of(user);
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let k = users.iter().position(|u| u == name).unwrap_or_else(|| {
            users.push(name.to_string());
            users.len() - 1
        });
        suite.nodes.get(k % suite.nodes.len().max(1)).unwrap_or(&suite.rest).clone()
    }

    pub fn wait(&self) -> Duration {
        self.suite().wait
    }

    /// Notes that the messages `texts` of conversation `conv_id` were sent by a
    /// request that left at `before`.
    pub fn mark_sent(&mut self, conv_id: &str, texts: &[&str], before: std::time::Instant) {
        for t in texts {
            self.sent_at.insert((*t).to_string(), before);
        }
        self.last_sent.insert(conv_id.to_string(), before);
    }

    /// When the request that sent message `text` left.
    pub fn sent_at(&self, text: &str) -> anyhow::Result<std::time::Instant> {
        self.sent_at.get(text).copied().ok_or_else(|| anyhow::anyhow!("the scenario sent no message {text:?}"))
    }

    /// The unique id of a user or conversation named `name` in this scenario.
    pub fn id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Replaces `{name}` with the id of `name`, `{x*N}` with N times `x`, and
    /// `{custom*N}` with a JSON object of N entries: the placeholders of
    /// feature-file texts, paths and frames.
    pub fn expand(&self, text: &str) -> String {
        static REPEAT: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"\{(\w+)\*(\d+)\}").expect("the repeat pattern is valid"));
        static NAME: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"\{([A-Za-z][\w-]*)\}").expect("the name pattern is valid"));
        let repeated = REPEAT.replace_all(text, |c: &regex::Captures<'_>| {
            let n: usize = c[2].parse().unwrap_or(0);
            if &c[1] == "custom" {
                let entries: Vec<String> = (0..n).map(|i| format!("\"k{i}\":\"v\"")).collect();
                format!("{{{}}}", entries.join(","))
            } else {
                c[1].repeat(n)
            }
        });
        NAME.replace_all(&repeated, |c: &regex::Captures<'_>| self.id(&c[1])).into_owned()
    }

    /// The user of a connection name: `alice#2` is alice's second connection.
    pub fn user_of(conn: &str) -> &str {
        conn.split('#').next().unwrap_or(conn)
    }

    /// The scenario name of an id (the id itself when it is not one of ours).
    pub fn name_of(&self, id: &str) -> String {
        id.strip_prefix(&self.prefix).unwrap_or(id).to_string()
    }

    /// A REST call whose answer is kept as it came (status, code, body text),
    /// for the steps that judge the exact answer. `path` segments are sent as given.
    pub async fn call(&mut self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> RestOutcome {
        let rest = self.rest();
        let outcome = match rest.raw(method, path, body.map(|b| b.to_string()), Some(rest.secret())).await {
            Ok((status, text)) => RestOutcome::raw(status, text),
            Err(e) => RestOutcome { status: e.status().unwrap_or(0), code: None, body: e.to_string() },
        };
        self.last_rest = Some(outcome.clone());
        outcome
    }

    /// `id` percent-encoded as one path segment.
    pub fn seg(id: &str) -> String {
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>().replace('+', "%20")
    }

    /// The realtime URL for `user` (a name, or a connection name like `alice#2`), with a valid token.
    pub fn realtime_url(&self, user: &str) -> String {
        let rest = self.node_of(user);
        rest.realtime_url(&rest.token(&self.id(Self::user_of(user))))
    }

    /// `user`'s connection, opening one if there is none yet.
    pub async fn conn(&mut self, user: &str) -> anyhow::Result<&mut Realtime> {
        if !self.conns.contains_key(user) {
            let url = self.realtime_url(user);
            let suite = self.suite();
            let connecting = Realtime::connect_tls(&url, WsConfig::default(), suite.rest.tls());
            let rt = tokio::time::timeout(self.wait(), connecting)
                .await
                .map_err(|_| anyhow::anyhow!("expected {user} to connect within {:?}; nothing came", self.wait()))?
                .map_err(|e| anyhow::anyhow!("expected {user} to connect; received {e}"))?;
            self.conns.insert(user.to_string(), rt);
        }
        Ok(self.conns.get_mut(user).expect("inserted above"))
    }

    /// `user` sends `open` for `conv`; the reply (opened or error) is kept and returned.
    pub async fn open(&mut self, user: &str, conv: &str, ui: Ui, as_guest: bool) -> anyhow::Result<ServerFrame> {
        let conv_id = self.id(conv);
        let wait = self.wait();
        let reply = self
            .conn(user)
            .await?
            .open(&conv_id, ui, as_guest, wait)
            .await
            .map_err(|e| anyhow::anyhow!("expected a reply to {user}'s open of {conv}; received {e}"))?;
        self.replies.insert(user.to_string(), reply.clone());
        Ok(reply)
    }

    /// Closes every connection of the scenario and restores the webhook
    /// registration if the scenario changed it (the `after` hook).
    pub async fn hang_up(&mut self) {
        if self.registration_changed
            && let Some(suite) = &self.suite
        {
            let reg = WebhookRegistration { url: suite.hook_url.clone(), events: None };
            let _ = suite.rest.put_webhook(&reg).await;
        }
        if let Some(server) = self.own_server.take() {
            let _ = server.stop().await;
        }
        let conns = self.conns.drain().map(|(_, c)| c).chain(self.crowd.drain(..).map(|(_, c)| c));
        let closing = futures_util::future::join_all(conns.map(|c| c.disconnect()));
        let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
    }
}
