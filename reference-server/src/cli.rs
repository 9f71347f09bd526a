//! Command-line flags of the server, shared by `supergroup-server` and by the
//! load generator, which starts the same server as a child process. Every flag
//! can also come from an environment variable `SUPERGROUP_*`.

use crate::config::{AppConfig, Config, DEFAULT_OUTBOUND_QUEUE};
use crate::config::{
    DEFAULT_DRAIN_MS, DEFAULT_NOTIFICATION_BUDGET_BYTES, DEFAULT_WEBHOOK_BUDGET_BYTES, DEFAULT_WEBHOOK_CONCURRENCY,
    DEFAULT_WEBHOOK_QUEUE_EVENTS, HookLimits,
};
use crate::transport::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_USER,
    DEFAULT_MAX_OPEN_PER_CONNECTION, DEFAULT_SEND_BURST, DEFAULT_SEND_RATE, DEFAULT_TYPING_RATE,
    DEFAULT_WS_IDLE_TIMEOUT, DEFAULT_WS_PING_INTERVAL, DEFAULT_WS_WRITE_TIMEOUT, Transport,
};
use crate::violation::{Violation, Violations};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use supergroup_protocol::limits::Plan;

/// Flags of a server process. `Debug` masks the secrets of `--app`.
#[derive(Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SUPERGROUP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// SQLite database file, or `:memory:`.
    #[arg(long, env = "SUPERGROUP_DB", default_value = "supergroup.db")]
    pub db: String,
    /// An app as `id:secret` (repeatable; apps are isolated from each other).
    #[arg(long = "app", env = "SUPERGROUP_APP", value_delimiter = ',', default_value = "demo:sk_demo")]
    pub apps: Vec<String>,
    /// Plan of every app: basic (100 participants, 300 guests) or growth (300, 1250).
    #[arg(long, env = "SUPERGROUP_PLAN", default_value = "basic")]
    pub plan: Plan,
    /// Override the plan's participants per conversation.
    #[arg(long, env = "SUPERGROUP_PARTICIPANT_LIMIT")]
    pub participant_limit: Option<u32>,
    /// Override the plan's concurrent guests per conversation.
    #[arg(long, env = "SUPERGROUP_GUEST_LIMIT")]
    pub guest_limit: Option<u32>,
    /// Default of a conversation's guestAccess.
    #[arg(long, env = "SUPERGROUP_GUEST_ACCESS", default_value_t = true, action = clap::ArgAction::Set)]
    pub guest_access: bool,
    /// How long a notification window stays open, in milliseconds.
    #[arg(long, env = "SUPERGROUP_NOTIFICATION_DELAY_MS", default_value_t = 1000)]
    pub notification_delay_ms: u64,
    /// Queue items a connection may hold before it is closed with 1008 "slow consumer"; one item is a
    /// reply, or every frame of one room from one group commit.
    #[arg(long, env = "SUPERGROUP_OUTBOUND_QUEUE", default_value_t = DEFAULT_OUTBOUND_QUEUE)]
    pub outbound_queue: usize,
    /// Log lines as human text or as one JSON object per line (`RUST_LOG` filters either).
    #[arg(long, env = "SUPERGROUP_LOG_FORMAT", value_enum, default_value_t = crate::logging::LogFormat::Text)]
    pub log_format: crate::logging::LogFormat,
    /// After SIGINT/SIGTERM, keep serving HTTP this long (milliseconds) with /readyz at 503, then close.
    #[arg(long, env = "SUPERGROUP_SHUTDOWN_DRAIN_MS", default_value_t = 0)]
    pub shutdown_drain_ms: u64,
    // ---- memory budgets of notifications and webhooks, shutdown drain (issue 8, items 6, 10, 12, 16) ----
    /// Bytes of messages all open notification windows may hold (each message counted once per window);
    /// past it, the window a message joins closes at once (SPEC section 13).
    #[arg(long, env = "SUPERGROUP_NOTIFICATION_BUDGET_BYTES", default_value_t = DEFAULT_NOTIFICATION_BUDGET_BYTES)]
    pub notification_budget_bytes: usize,
    /// Bytes of webhook events one app may have queued or in flight; past it, new events are dropped and counted.
    #[arg(long, env = "SUPERGROUP_WEBHOOK_BUDGET_BYTES", default_value_t = DEFAULT_WEBHOOK_BUDGET_BYTES)]
    pub webhook_budget_bytes: usize,
    /// Webhook events one app may have queued or in flight; past it, new events are dropped and counted.
    #[arg(long, env = "SUPERGROUP_WEBHOOK_QUEUE_EVENTS", default_value_t = DEFAULT_WEBHOOK_QUEUE_EVENTS)]
    pub webhook_queue_events: usize,
    /// Webhook deliveries of one app in flight at once (each app has its own).
    #[arg(long, env = "SUPERGROUP_WEBHOOK_CONCURRENCY", default_value_t = DEFAULT_WEBHOOK_CONCURRENCY)]
    pub webhook_concurrency: usize,
    /// On shutdown, how long to spend closing notification windows and delivering queued webhook events.
    #[arg(long, env = "SUPERGROUP_WEBHOOK_DRAIN_MS", default_value_t = DEFAULT_DRAIN_MS)]
    pub webhook_drain_ms: u64,
    // ---- end of memory budgets ----
    /// TEST ONLY: break one rule on purpose (repeatable), to prove the conformance suite catches it.
    #[arg(long = "violate", env = "SUPERGROUP_VIOLATE", value_delimiter = ',')]
    pub violations: Vec<Violation>,
    /// TLS, timeouts, connection caps, liveness and rate limits.
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Join a cluster through this NATS server (e.g. nats://127.0.0.1:4222); see the README's "Cluster".
    #[arg(long, env = "SUPERGROUP_CLUSTER")]
    pub cluster: Option<String>,
    /// This node's id in the cluster (letters, digits, - and _), unique per node.
    #[arg(long, env = "SUPERGROUP_NODE_ID", requires = "cluster")]
    pub node_id: Option<String>,
    /// core: owns the database and decides everything (exactly one per cluster); edge: forwards to the core.
    #[arg(long, env = "SUPERGROUP_CLUSTER_ROLE", value_enum, requires = "cluster")]
    pub cluster_role: Option<crate::cluster::ClusterRole>,
    /// Milliseconds without an edge's heartbeat after which the core ends its connections (frees their guest slots).
    #[arg(long, env = "SUPERGROUP_CLUSTER_LIVENESS_MS", default_value_t = crate::cluster::DEFAULT_LIVENESS_MS)]
    pub cluster_liveness_ms: u64,
}

/// Transport flags: TLS, HTTP timeouts and caps, WebSocket liveness, rate limits.
#[derive(Debug, Clone, Args)]
pub struct TransportArgs {
    /// PEM certificate chain (leaf first): serve https and wss. Needs --tls-key.
    #[arg(long, env = "SUPERGROUP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SUPERGROUP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has for the TLS handshake and each request head; also how long an idle keep-alive connection is kept.
    #[arg(long, env = "SUPERGROUP_HTTP_HEADER_TIMEOUT", default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs_f64())]
    pub http_header_timeout: f64,
    /// Seconds a client has to send a whole request body; later it is answered 408 request_timeout.
    #[arg(long, env = "SUPERGROUP_HTTP_BODY_TIMEOUT", default_value_t = DEFAULT_BODY_TIMEOUT.as_secs_f64())]
    pub http_body_timeout: f64,
    /// Connections the kernel may hold completed but not yet accepted (the listen backlog; Linux caps it at net.core.somaxconn).
    #[arg(long, env = "SUPERGROUP_LISTEN_BACKLOG", default_value_t = crate::listener::DEFAULT_LISTEN_BACKLOG)]
    pub listen_backlog: u32,
    /// Connections (HTTP and realtime) held at once; one more is answered 503 server_busy.
    #[arg(long, env = "SUPERGROUP_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds between the server's pings on each realtime connection.
    #[arg(long, env = "SUPERGROUP_WS_PING_INTERVAL", default_value_t = DEFAULT_WS_PING_INTERVAL.as_secs_f64())]
    pub ws_ping_interval: f64,
    /// Seconds a realtime connection may send nothing (pongs included) before it is closed with 4000.
    #[arg(long, env = "SUPERGROUP_WS_IDLE_TIMEOUT", default_value_t = DEFAULT_WS_IDLE_TIMEOUT.as_secs_f64())]
    pub ws_idle_timeout: f64,
    /// Seconds one write to a realtime connection may wait for the peer to take the bytes before it is closed with 1008 slow consumer.
    #[arg(long, env = "SUPERGROUP_WS_WRITE_TIMEOUT", default_value_t = DEFAULT_WS_WRITE_TIMEOUT.as_secs_f64())]
    pub ws_write_timeout: f64,
    /// Realtime connections one user may hold at once; one more is refused with 429 too_many_connections.
    #[arg(long, env = "SUPERGROUP_MAX_CONNECTIONS_PER_USER", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_USER)]
    pub max_connections_per_user: u32,
    /// Conversations one connection may have open; one more open is answered too_many_open.
    #[arg(long, env = "SUPERGROUP_MAX_OPEN_PER_CONNECTION", default_value_t = DEFAULT_MAX_OPEN_PER_CONNECTION)]
    pub max_open_per_connection: usize,
    /// send frames per second a connection may sustain; past the burst they are answered rate_limited.
    #[arg(long, env = "SUPERGROUP_SEND_RATE", default_value_t = DEFAULT_SEND_RATE)]
    pub send_rate: f64,
    /// send frames a connection may make in a burst.
    #[arg(long, env = "SUPERGROUP_SEND_BURST", default_value_t = DEFAULT_SEND_BURST)]
    pub send_burst: f64,
    /// typing frames per second passed on per user and conversation (all its connections together); the excess is dropped silently.
    #[arg(long, env = "SUPERGROUP_TYPING_RATE", default_value_t = DEFAULT_TYPING_RATE)]
    pub typing_rate: f64,
}

impl TransportArgs {
    /// The transport settings these flags describe (reads the TLS files).
    pub fn transport(&self) -> anyhow::Result<Transport> {
        let secs = |name: &str, v: f64| -> anyhow::Result<Duration> {
            anyhow::ensure!(v.is_finite() && v > 0.0, "--{name} must be a positive number of seconds, got {v}");
            Ok(Duration::from_secs_f64(v))
        };
        anyhow::ensure!(
            self.send_rate > 0.0 && self.send_burst >= 1.0,
            "--send-rate must be > 0 and --send-burst >= 1"
        );
        anyhow::ensure!(self.typing_rate > 0.0, "--typing-rate must be > 0");
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
        Ok(Transport {
            tls,
            header_timeout: secs("http-header-timeout", self.http_header_timeout)?,
            body_timeout: secs("http-body-timeout", self.http_body_timeout)?,
            max_connections: self.max_connections.max(1),
            ws_ping_interval: secs("ws-ping-interval", self.ws_ping_interval)?,
            ws_idle_timeout: secs("ws-idle-timeout", self.ws_idle_timeout)?,
            ws_write_timeout: secs("ws-write-timeout", self.ws_write_timeout)?,
            max_connections_per_user: self.max_connections_per_user.max(1),
            max_open_per_connection: self.max_open_per_connection.max(1),
            send_rate: self.send_rate,
            send_burst: self.send_burst,
            typing_rate: self.typing_rate,
            ..Transport::default()
        })
    }
}

impl std::fmt::Debug for ServerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let apps: Vec<String> = self
            .apps
            .iter()
            .map(|spec| match spec.split_once(':') {
                Some((id, secret)) => format!("{id}:{}", crate::config::mask_secret(secret)),
                None => "<not id:secret>".into(),
            })
            .collect();
        f.debug_struct("ServerArgs")
            .field("listen", &self.listen)
            .field("db", &self.db)
            .field("apps", &apps)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl ServerArgs {
    /// The configuration these flags describe.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut apps = Vec::new();
        for spec in &self.apps {
            let Some((id, secret)) = spec.split_once(':') else {
                anyhow::bail!("--app takes id:secret, got `{spec}`");
            };
            if !supergroup_protocol::limits::is_valid_id(id) || secret.is_empty() {
                anyhow::bail!("--app `{spec}`: the id must follow the id rule and the secret must not be empty");
            }
            if apps.iter().any(|a: &AppConfig| a.id == id) {
                anyhow::bail!("--app `{id}` is given twice");
            }
            let mut app = AppConfig::new(id, secret, self.plan);
            app.participant_limit = self.participant_limit;
            app.guest_limit = self.guest_limit;
            app.guest_access = self.guest_access;
            apps.push(app);
        }
        let cluster = match &self.cluster {
            None => None,
            Some(nats) => {
                let node_id = self.node_id.clone().ok_or_else(|| anyhow::anyhow!("--cluster needs --node-id"))?;
                anyhow::ensure!(
                    crate::cluster::valid_node_id(&node_id),
                    "--node-id `{node_id}`: 1 to 64 letters, digits, - or _"
                );
                let role =
                    self.cluster_role.ok_or_else(|| anyhow::anyhow!("--cluster needs --cluster-role core|edge"))?;
                anyhow::ensure!(self.cluster_liveness_ms >= 2_000, "--cluster-liveness-ms must be at least 2000");
                Some(crate::cluster::ClusterConfig {
                    nats: nats.clone(),
                    node_id,
                    role,
                    liveness: Duration::from_millis(self.cluster_liveness_ms),
                })
            }
        };
        Ok(Config {
            cluster,
            apps,
            db: self.db.clone(),
            notification_delay_ms: self.notification_delay_ms,
            outbound_queue: self.outbound_queue.max(1),
            violations: Violations::new(self.violations.clone()),
            shutdown_drain_ms: self.shutdown_drain_ms,
            transport: self.transport.transport()?,
            hooks: HookLimits {
                notification_budget_bytes: self.notification_budget_bytes,
                webhook_budget_bytes: self.webhook_budget_bytes,
                webhook_queue_events: self.webhook_queue_events.max(1),
                webhook_concurrency: self.webhook_concurrency.max(1),
                drain: std::time::Duration::from_millis(self.webhook_drain_ms),
                extra_root_pem: None,
            },
        })
    }
}
