//! # supergroup-server
//!
//! The reference server of the Super Group Chat protocol (SPEC.md at the
//! repository root). A library with a thin binary: [`serve`] runs the server
//! on a listener until a shutdown future resolves; [`spawn`] does the same on
//! `127.0.0.1:0` in a background task, for tests and the in-process suite.
//! Both serve https and wss instead when the configuration carries a TLS
//! certificate ([`transport::Transport::tls`]).

pub mod changes;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
pub mod extract;
pub mod hub;
pub mod listener;
pub mod logging;
pub mod membership;
pub mod messaging;
pub mod metrics;
pub mod notifier;
pub mod realtime;
pub mod roster;
pub mod routes;
pub mod state;
pub mod store;
pub mod talkers;
pub mod tls;
pub mod transport;
pub mod validate;
pub mod violation;
pub mod webhook_target;
pub mod webhooks;
pub mod writer;

pub use config::{AppConfig, Config};
pub use violation::Violation;

use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs the server on `listener` until `shutdown` resolves, then closes every
/// realtime connection with 1001, serves HTTP for `shutdown_drain_ms` more
/// (`/readyz` answering 503), closes notification windows and drains webhook
/// events for a bounded time (`--webhook-drain-ms`), closes the database and
/// returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // The one place a cluster changes the shape: an edge is another server
    // (no database; everything forwarded to the core); a core is this server
    // with the edges' service started beside it.
    let cluster = config.cluster.clone();
    if let Some(c) = cluster.clone().filter(|c| c.role == cluster::ClusterRole::Edge) {
        return cluster::edge::serve(listener, config, c, shutdown).await;
    }
    let transport = config.transport.clone();
    let state = state::AppState::build(config).await?;
    let core = match cluster {
        Some(c) => Some(cluster::core::Core::start(state.clone(), c).await?),
        None => None,
    };
    let router = routes::router(state.clone());
    let stop = state.shutdown.clone();
    let drain = std::time::Duration::from_millis(state.config.shutdown_drain_ms);
    listener::serve(listener, router, &transport, async move {
        shutdown.await;
        // Realtime connections watch this token and close themselves with 1001;
        // the HTTP side's graceful shutdown does not wait for upgraded sockets.
        // `/readyz` answers 503 from here on.
        stop.cancel();
        // The drain: HTTP is still served, so a load balancer sees the 503 and moves away.
        tokio::time::sleep(drain).await;
    })
    .await;
    state.tracker.close();
    if tokio::time::timeout(std::time::Duration::from_secs(5), state.tracker.wait()).await.is_err() {
        tracing::warn!("some realtime connections did not close within 5 s");
    }
    if let Some(core) = core {
        core.stop().await;
    }
    // Stores what is still queued, then ends the writer task (and its hold on the database).
    state.writer.stop().await;
    state.drain_outgoing().await;
    // Releases the database file's lock now, not when the last handle drops.
    state.db.close();
    // Nothing runs there any more: the writer stopped, the connections closed.
    state.talkers.stop();
    Ok(())
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A server running in a background task.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Whether it serves https and wss.
    pub tls: bool,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// `http://127.0.0.1:PORT`, or `https://` with TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Shuts the server down and waits for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Starts a server on `127.0.0.1:0` in a background task.
pub async fn spawn(config: Config) -> anyhow::Result<Running> {
    let listener = listener::bind(([127, 0, 0, 1], 0).into(), listener::DEFAULT_LISTEN_BACKLOG)?;
    let addr = listener.local_addr()?;
    let tls = config.transport.tls.is_some();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, config, async move {
        let _ = stopped.await;
    }));
    Ok(Running { addr, tls, stop, task })
}

/// Logs to stderr through tracing in `format` ([`logging`]); `RUST_LOG` filters (default `info`).
pub fn init_tracing(format: logging::LogFormat) {
    logging::init(format);
}

/// What a server process does: bind the flags' address, print where it
/// listens and the apps (secrets masked), serve until SIGINT or SIGTERM.
pub async fn run_process(args: &cli::ServerArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let listener = listener::bind(args.listen, args.transport.listen_backlog)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    for v in config.violations.iter() {
        tracing::warn!(violation = %v, "TEST ONLY: this server breaks a rule of SPEC.md on purpose");
    }
    let scheme = if config.transport.tls.is_some() { "https" } else { "http" };
    println!("supergroup-server listening on {scheme}://{addr}");
    for line in config.banner() {
        println!("{line}");
    }
    serve(listener, config, shutdown_signal()).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
