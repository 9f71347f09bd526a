//! Server configuration: the apps it hosts (id, secret, plan, limits), where it
//! stores data, the notification delay, and test-only violations. `main.rs`
//! builds it from flags; tests build it with [`Config::for_tests`].

use crate::violation::{Violation, Violations};
use supergroup_protocol::limits::Plan;

/// One hosted app. Apps are isolated: ids in one never collide with another's.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub id: String,
    /// The app secret: REST bearer token, JWT key, webhook signing key.
    pub secret: String,
    pub plan: Plan,
    /// Participants per conversation; the plan's when `None`.
    pub participant_limit: Option<u32>,
    /// Concurrent guests per conversation; the plan's when `None`.
    pub guest_limit: Option<u32>,
    /// Default of a conversation's `guestAccess`.
    pub guest_access: bool,
}

impl AppConfig {
    pub fn new(id: &str, secret: &str, plan: Plan) -> AppConfig {
        AppConfig {
            id: id.into(),
            secret: secret.into(),
            plan,
            participant_limit: None,
            guest_limit: None,
            guest_access: true,
        }
    }

    pub fn participant_limit(&self) -> u32 {
        self.participant_limit.unwrap_or(self.plan.participant_limit())
    }

    pub fn guest_limit(&self) -> u32 {
        self.guest_limit.unwrap_or(self.plan.guest_limit())
    }
}

/// Everything `serve` needs besides the listener.
#[derive(Debug, Clone)]
pub struct Config {
    pub apps: Vec<AppConfig>,
    /// SQLite file path, or `:memory:`.
    pub db: String,
    /// How long a notification window stays open (`notificationDelayMs`).
    pub notification_delay_ms: u64,
    /// Frames a connection may have queued before it is closed as a slow consumer.
    pub outbound_queue: usize,
    /// Rules to break on purpose (conformance self-test only).
    pub violations: Violations,
    /// After the shutdown signal, how long HTTP is still served (with `/readyz`
    /// at 503 and realtime connections closed with 1001) before the listener
    /// closes, so a load balancer can take the server out first.
    pub shutdown_drain_ms: u64,
    /// TLS, timeouts, connection caps, liveness and rate limits.
    pub transport: crate::transport::Transport,
}

impl Config {
    /// One app `demo` / `sk_demo` on the basic plan, in memory, 200 ms notification delay.
    pub fn for_tests() -> Config {
        Config {
            apps: vec![AppConfig::new("demo", "sk_demo", Plan::Basic)],
            db: ":memory:".into(),
            notification_delay_ms: 200,
            outbound_queue: DEFAULT_OUTBOUND_QUEUE,
            violations: Violations::default(),
            shutdown_drain_ms: 0,
            transport: crate::transport::Transport::default(),
        }
    }

    /// The same configuration, breaking `v` on purpose.
    pub fn violating(mut self, v: Violation) -> Config {
        self.violations = Violations::new(self.violations.iter().chain([v]).collect());
        self
    }
}

/// Default per-connection outbound queue, in frames.
pub const DEFAULT_OUTBOUND_QUEUE: usize = 1024;
