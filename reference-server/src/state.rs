//! The shared state every handler sees: a cheap-clone [`AppState`] handle
//! over one [`Shared`] (apps, database, hub, notifier, webhooks, shutdown).

use crate::config::{AppConfig, Config};
use crate::hub::{Hub, RoomKey};
use crate::notifier::Notifier;
use crate::store::Db;
use crate::violation::Violation;
use crate::webhooks::Webhooks;
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
    pub hub: Hub,
    pub notifier: Notifier,
    pub webhooks: Webhooks,
    pub config: Config,
    /// Serializes "commit a message, then queue its broadcast", so every
    /// connection sees a conversation's messages in commit order.
    pub send_order: tokio::sync::Mutex<()>,
    /// Cancelled when the server shuts down; every realtime connection watches it.
    pub shutdown: CancellationToken,
    /// Tracks realtime connection tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Realtime connections per user (`--max-connections-per-user`).
    pub user_connections: crate::realtime::UserConnections,
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
    /// Opens the database, loads registered webhooks and starts the webhook sender.
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        let db = Db::open(&config.db)?;
        let stored = db.call(|c| crate::store::load_webhooks(c)).await?;
        let mut apps = HashMap::new();
        for app in &config.apps {
            let webhook = stored.iter().find(|(id, _)| id == &app.id).map(|(_, reg)| reg.clone());
            apps.insert(app.id.clone(), Arc::new(App { config: app.clone(), webhook: Mutex::new(webhook) }));
        }
        Ok(AppState(Arc::new(Shared {
            apps,
            db,
            hub: Hub::default(),
            notifier: Notifier::new(std::time::Duration::from_millis(
                config.notification_delay_ms
                    * if config.violations.has(Violation::NotifyDelayFourfold) { 4 } else { 1 },
            )),
            webhooks: Webhooks::start(),
            config,
            send_order: tokio::sync::Mutex::new(()),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            user_connections: Default::default(),
        })))
    }

    /// Whether the server breaks `v` on purpose.
    pub fn violates(&self, v: Violation) -> bool {
        self.config.violations.has(v)
    }
}
