//! The shared state every handler sees: a cheap-clone [`AppState`] handle
//! over one [`Shared`] (apps, database, group-commit writer, hub, notifier,
//! webhooks, shutdown).

use crate::config::{AppConfig, Config};
use crate::hub::{Hub, RoomKey};
use crate::notifier::Notifier;
use crate::store::Db;
use crate::violation::Violation;
use crate::webhooks::Webhooks;
use crate::writer::Writer;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use supergroup_protocol::rest::WebhookRegistration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One hosted app at run time.
pub struct App {
    pub config: AppConfig,
    /// The registered webhook endpoint, mirrored from the database.
    pub webhook: Mutex<Option<WebhookRegistration>>,
}

impl App {
    /// The conversation key of `conv` in this app.
    pub fn room(&self, conv: &str) -> RoomKey {
        (self.config.id.clone(), conv.to_string())
    }

    pub fn webhook(&self) -> Option<WebhookRegistration> {
        self.webhook.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_webhook(&self, reg: Option<WebhookRegistration>) {
        *self.webhook.lock().unwrap_or_else(|p| p.into_inner()) = reg;
    }
}

/// Everything the server shares between requests and connections.
pub struct Shared {
    pub apps: HashMap<String, Arc<App>>,
    pub db: Db,
    /// The group-commit writer: every message and every user created on connect.
    pub writer: Writer,
    /// Shared with each connection's presence guard, which leaves its rooms on drop.
    pub hub: Arc<Hub>,
    pub notifier: Notifier,
    pub webhooks: Webhooks,
    pub config: Config,
    /// Cancelled when the server shuts down; every realtime connection watches it.
    pub shutdown: CancellationToken,
    /// Tracks realtime connection tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Realtime connections per user (`--max-connections-per-user`).
    pub user_connections: crate::realtime::UserConnections,
    /// What `GET /metrics` shows ([`crate::metrics`]).
    pub metrics: crate::metrics::Metrics,
    /// Conversations' rosters kept for `open`; the writer forgets changed ones.
    pub rosters: crate::roster::Rosters,
    /// The writer's and the senders' own runtime ([`crate::talkers`]).
    pub talkers: crate::talkers::Talkers,
}

/// The handle: clone it freely.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Opens the database, loads registered webhooks and starts the webhook
    /// sender, the talkers' runtime and the writer on it (stop them with
    /// `writer.stop()`, then `talkers.stop()`).
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        let db = Db::open(&config.db)?;
        let stored = db.call(|c| crate::store::load_webhooks(c)).await?;
        let mut apps = HashMap::new();
        for app in &config.apps {
            let webhook = stored.iter().find(|(id, _)| id == &app.id).map(|(_, reg)| reg.clone());
            let config = crate::violation::faults::app_config(&config.violations, app.clone());
            apps.insert(app.id.clone(), Arc::new(App { config, webhook: Mutex::new(webhook) }));
        }
        let (writer, queue) = Writer::new();
        let state = AppState(Arc::new(Shared {
            apps,
            db,
            writer,
            hub: Arc::default(),
            notifier: Notifier::new(
                std::time::Duration::from_millis(
                    config.notification_delay_ms
                        * if config.violations.has(Violation::NotifyDelayFourfold) { 4 } else { 1 },
                ),
                config.hooks.notification_budget_bytes,
            ),
            webhooks: Webhooks::start(config.apps.iter().map(|a| a.id.clone()), config.hooks.clone())?,
            config,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            user_connections: Default::default(),
            metrics: Default::default(),
            rosters: Default::default(),
            talkers: crate::talkers::Talkers::start()?,
        }));
        crate::writer::start(state.clone(), queue);
        Ok(state)
    }

    /// Shutdown, after the realtime connections closed: close every open
    /// notification window, then deliver queued webhook events for at most
    /// `--webhook-drain-ms`, then stop the webhook senders.
    pub async fn drain_outgoing(&self) {
        crate::notifier::fire_all(self);
        self.webhooks.drain(self.config.hooks.drain).await;
    }

    /// Whether the server breaks `v` on purpose.
    pub fn violates(&self, v: Violation) -> bool {
        self.config.violations.has(v)
    }
}
