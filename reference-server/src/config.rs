//! Server configuration: the apps it hosts (id, secret, plan, limits), where it
//! stores data, the notification delay, and test-only violations. `main.rs`
//! builds it from flags; tests build it with [`Config::for_tests`].

use crate::violation::{Violation, Violations};
use supergroup_protocol::limits::Plan;

/// One hosted app. Apps are isolated: ids in one never collide with another's.
/// `Debug` shows the secret masked ([`mask_secret`]).
#[derive(Clone)]
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

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("id", &self.id)
            .field("secret", &mask_secret(&self.secret))
            .field("plan", &self.plan)
            .field("participant_limit", &self.participant_limit)
            .field("guest_limit", &self.guest_limit)
            .field("guest_access", &self.guest_access)
            .finish()
    }
}

/// A secret as it may appear in logs and output: its first 3 characters
/// when it has at least 12 (enough to tell two apart), then `***`; a shorter
/// secret shows nothing of itself.
pub fn mask_secret(secret: &str) -> String {
    if secret.chars().count() >= 12 {
        format!("{}***", secret.chars().take(3).collect::<String>())
    } else {
        "***".into()
    }
}

/// Everything `serve` needs besides the listener. `Debug` masks the app
/// secrets (through [`AppConfig`]'s).
#[derive(Debug, Clone)]
pub struct Config {
    pub apps: Vec<AppConfig>,
    /// SQLite file path, or `:memory:`.
    pub db: String,
    /// How long a notification window stays open (`notificationDelayMs`).
    pub notification_delay_ms: u64,
    /// Queue items (a reply, or one room's frames of one group commit) a connection may hold before it is closed as a slow consumer.
    pub outbound_queue: usize,
    /// Rules to break on purpose (conformance self-test only).
    pub violations: Violations,
    /// After the shutdown signal, how long HTTP is still served (with `/readyz`
    /// at 503 and realtime connections closed with 1001) before the listener
    /// closes, so a load balancer can take the server out first.
    pub shutdown_drain_ms: u64,
    /// TLS, timeouts, connection caps, liveness and rate limits.
    pub transport: crate::transport::Transport,
    /// Memory bounds and limits of webhooks and notification windows.
    pub hooks: HookLimits,
    /// This node's place in a cluster (`--cluster`); `None`: a single server.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

/// Memory bounds of notifications and webhooks, and how long shutdown waits
/// for them. Every figure is a flag of `supergroup-server` (see `cli.rs`).
#[derive(Debug, Clone)]
pub struct HookLimits {
    /// Bytes of messages all open notification windows may hold, counted as
    /// each message's JSON size once per window holding it. Past it, the
    /// window a message just joined closes at once (SPEC section 13).
    pub notification_budget_bytes: usize,
    /// Bytes of webhook events one app may have queued or in flight, counted
    /// as the body each will send. An event past it is dropped and counted
    /// in a log line (SPEC section 14.2).
    pub webhook_budget_bytes: usize,
    /// Events one app may have queued or in flight, whatever their size.
    pub webhook_queue_events: usize,
    /// Deliveries of one app in flight at once; other apps have their own.
    pub webhook_concurrency: usize,
    /// How long shutdown spends closing notification windows and delivering
    /// queued webhook events before it stops.
    pub drain: std::time::Duration,
    /// TEST ONLY: an extra root certificate (PEM) trusted for `https://`
    /// webhooks, so a test can run a TLS receiver with a certificate it made.
    pub extra_root_pem: Option<Vec<u8>>,
}

impl Default for HookLimits {
    fn default() -> HookLimits {
        HookLimits {
            notification_budget_bytes: DEFAULT_NOTIFICATION_BUDGET_BYTES,
            webhook_budget_bytes: DEFAULT_WEBHOOK_BUDGET_BYTES,
            webhook_queue_events: DEFAULT_WEBHOOK_QUEUE_EVENTS,
            webhook_concurrency: DEFAULT_WEBHOOK_CONCURRENCY,
            drain: std::time::Duration::from_millis(DEFAULT_DRAIN_MS),
            extra_root_pem: None,
        }
    }
}

/// Default budget of open notification windows: 64 MiB.
pub const DEFAULT_NOTIFICATION_BUDGET_BYTES: usize = 64 << 20;
/// Default budget of one app's undelivered webhook events: 64 MiB.
pub const DEFAULT_WEBHOOK_BUDGET_BYTES: usize = 64 << 20;
/// Default count bound of one app's undelivered webhook events.
pub const DEFAULT_WEBHOOK_QUEUE_EVENTS: usize = 10_000;
/// Default deliveries in flight per app.
pub const DEFAULT_WEBHOOK_CONCURRENCY: usize = 16;
/// Default time shutdown spends draining notifications and webhooks.
pub const DEFAULT_DRAIN_MS: u64 = 5_000;

impl Config {
    /// One app `demo` / `sk_demo` on the basic plan, in memory, 200 ms
    /// notification delay, 1 s shutdown drain, default budgets.
    pub fn for_tests() -> Config {
        Config {
            apps: vec![AppConfig::new("demo", "sk_demo", Plan::Basic)],
            db: ":memory:".into(),
            notification_delay_ms: 200,
            outbound_queue: DEFAULT_OUTBOUND_QUEUE,
            violations: Violations::default(),
            shutdown_drain_ms: 0,
            transport: crate::transport::Transport::default(),
            // A short drain: a test that leaves a dead endpoint behind stops in 1 s.
            hooks: HookLimits { drain: std::time::Duration::from_secs(1), ..HookLimits::default() },
            cluster: None,
        }
    }

    /// What a server process prints at startup about its apps: id, plan and
    /// limits, the secret masked. Secrets are never printed whole.
    pub fn banner(&self) -> Vec<String> {
        self.apps
            .iter()
            .map(|app| {
                format!(
                    "  app {} secret {} plan {} (participants {}, guests {})",
                    app.id,
                    mask_secret(&app.secret),
                    app.plan,
                    app.participant_limit(),
                    app.guest_limit()
                )
            })
            .collect()
    }

    /// The same configuration, breaking `v` on purpose.
    pub fn violating(mut self, v: Violation) -> Config {
        self.violations = Violations::new(self.violations.iter().chain([v]).collect());
        self
    }
}

/// Default per-connection outbound queue, in items (a reply, or one room's frames of one group commit).
pub const DEFAULT_OUTBOUND_QUEUE: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_banner_never_show_a_secret() {
        let mut config = Config::for_tests();
        config.apps.push(AppConfig::new("prod", "sk_live_9f8e7d6c5b4a", Plan::Growth));
        let shown = format!("{config:?}\n{:#?}\n{}", config.apps, config.banner().join("\n"));
        assert!(!shown.contains("sk_demo"), "{shown}");
        assert!(!shown.contains("sk_live_9f8e7d6c5b4a") && !shown.contains("9f8e"), "{shown}");
        assert!(shown.contains("app prod secret sk_*** plan growth"), "{shown}");
        assert!(shown.contains("app demo secret *** plan basic"), "{shown}");
    }
}
