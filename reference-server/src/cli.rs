//! Command-line flags of the server, shared by `supergroup-server` and by the
//! load generator, which starts the same server as a child process. Every flag
//! can also come from an environment variable `SUPERGROUP_*`.

use crate::config::{AppConfig, Config, DEFAULT_OUTBOUND_QUEUE};
use crate::violation::{Violation, Violations};
use clap::Args;
use std::net::SocketAddr;
use supergroup_protocol::limits::Plan;

/// Flags of a server process.
#[derive(Debug, Clone, Args)]
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
    /// Frames a connection may have queued before it is closed with 1008 "slow consumer".
    #[arg(long, env = "SUPERGROUP_OUTBOUND_QUEUE", default_value_t = DEFAULT_OUTBOUND_QUEUE)]
    pub outbound_queue: usize,
    /// After SIGINT/SIGTERM, keep serving HTTP this long (milliseconds) with /readyz at 503, then close.
    #[arg(long, env = "SUPERGROUP_SHUTDOWN_DRAIN_MS", default_value_t = 0)]
    pub shutdown_drain_ms: u64,
    /// TEST ONLY: break one rule on purpose (repeatable), to prove the conformance suite catches it.
    #[arg(long = "violate", env = "SUPERGROUP_VIOLATE", value_delimiter = ',')]
    pub violations: Vec<Violation>,
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
        Ok(Config {
            apps,
            db: self.db.clone(),
            notification_delay_ms: self.notification_delay_ms,
            outbound_queue: self.outbound_queue.max(1),
            violations: Violations::new(self.violations.clone()),
            shutdown_drain_ms: self.shutdown_drain_ms,
        })
    }
}
