//! The core's side of the cluster: it answers the edges' connects,
//! heartbeats and forwarded REST requests, hands each forwarded client frame
//! to its connection's task ([`super::remote`]), and ends every connection of
//! an edge that went silent for the liveness timeout or whose relay broke.
//!
//! Registry: one [`Link`] per edge process (node id and boot id), holding the
//! edge's relay and its connections by the edge's connection id. An edge
//! that restarts comes back with a new boot id: the old link's connections
//! end at once. Everything here is behind one std `Mutex`, held for map
//! updates only.

use super::relay::EdgeRelay;
use super::remote::{self, RemoteConn};
use super::wire::{self, Accepted, Connect, Edge, Incarnation, Up};
use super::{ClusterConfig, subjects};
use crate::error::ApiError;
use crate::hub::Relay;
use crate::state::AppState;
use axum::response::IntoResponse;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use supergroup_protocol::ErrorCode;
use tokio_util::sync::CancellationToken;

/// How long the answer to an edge's `Gone` waits for the connection's task to end.
const GONE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One edge process, as the core knows it.
struct Link {
    relay: Arc<EdgeRelay>,
    conns: HashMap<u64, RemoteConn>,
    /// When its last heartbeat (or connect) came.
    heard: Instant,
}

impl Link {
    /// Ends every connection of the edge (their tasks free slots and presence).
    fn end_all(&mut self) {
        for (_, c) in self.conns.drain() {
            c.end.cancel();
        }
    }
}

/// The core's cluster service; cheap to clone.
#[derive(Clone)]
pub struct Core {
    state: AppState,
    client: async_nats::Client,
    cfg: ClusterConfig,
    /// This core's incarnation: edges that see another one know it restarted.
    boot: u64,
    links: Arc<Mutex<HashMap<Edge, Link>>>,
    stop: CancellationToken,
}

impl Core {
    /// Connects to NATS and starts answering the edges.
    pub async fn start(state: AppState, cfg: ClusterConfig) -> anyhow::Result<Core> {
        let client = super::connect(&cfg).await?;
        let core = Core {
            state,
            client: client.clone(),
            cfg,
            boot: super::boot_id(),
            links: Arc::default(),
            stop: CancellationToken::new(),
        };
        let mut connects = client.subscribe(subjects::CONNECT).await?;
        let mut inbound = client.subscribe(subjects::INBOUND).await?;
        let mut beats = client.subscribe(subjects::BEAT).await?;
        let http = client.subscribe(subjects::HTTP).await?;
        // A round trip to the NATS server, so it has every subscription above
        // before `start` returns: an edge's first forwarded request must not
        // meet "no responders" (it did, in CI, right after a cluster started).
        client.flush().await?;
        let c = core.clone();
        tokio::spawn(async move {
            while let Some(Some(msg)) = c.stop.run_until_cancelled(connects.next()).await {
                let c = c.clone();
                tokio::spawn(async move { c.on_connect(msg).await });
            }
        });
        let c = core.clone();
        tokio::spawn(async move {
            // One task, in order: an edge's frames reach each connection in the order it sent them.
            while let Some(Some(msg)) = c.stop.run_until_cancelled(inbound.next()).await {
                c.on_inbound(msg.payload, msg.reply);
            }
        });
        let c = core.clone();
        tokio::spawn(async move {
            while let Some(Some(msg)) = c.stop.run_until_cancelled(beats.next()).await {
                c.on_beat(msg).await;
            }
        });
        super::forward::serve_core(core.state.clone(), client.clone(), http, core.stop.clone());
        let c = core.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(super::HEARTBEAT);
            while c.stop.run_until_cancelled(tick.tick()).await.is_some() {
                c.sweep();
            }
        });
        tracing::info!(node = %core.cfg.node_id, nats = %core.cfg.nats, "cluster core: serving edges");
        Ok(core)
    }

    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<Edge, Link>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The link of `edge`, made on first contact; an older incarnation of
    /// the same node id is ended.
    fn link<'a>(&self, links: &'a mut HashMap<Edge, Link>, edge: &Edge) -> &'a mut Link {
        let stale: Vec<Edge> = links.keys().filter(|e| e.node == edge.node && e.boot != edge.boot).cloned().collect();
        for e in stale {
            if let Some(mut old) = links.remove(&e) {
                tracing::warn!(node = %e.node, "cluster: edge restarted; its old connections end");
                old.end_all();
            }
        }
        links.entry(edge.clone()).or_insert_with(|| Link {
            relay: EdgeRelay::start(self.client.clone(), subjects::node(&edge.node, edge.boot), self.boot),
            conns: HashMap::new(),
            heard: Instant::now(),
        })
    }

    async fn on_connect(&self, msg: async_nats::Message) {
        let Some(reply) = msg.reply else { return };
        let answer = match Connect::decode(msg.payload) {
            Ok(c) => self.admit(c).await,
            Err(e) => refused(ApiError::new(ErrorCode::InvalidRequest, e.to_string())).await,
        };
        let _ = self.client.publish(reply, answer.encode()).await;
    }

    /// The single server's upgrade checks after the token (which the edge
    /// verified): connections per user, then the user is created if unknown.
    async fn admit(&self, c: Connect) -> Accepted {
        let Some(app) = self.state.apps.get(&c.app).cloned() else {
            return refused(ApiError::new(ErrorCode::Unauthorized, "unknown app")).await;
        };
        let limit = self.state.config.transport.max_connections_per_user;
        let Some(slot) = self.state.user_connections.try_take(&c.app, &c.user, limit) else {
            let why = format!("this user already holds {limit} realtime connections");
            return refused(ApiError::new(ErrorCode::TooManyConnections, why)).await;
        };
        if let Err(e) = self.state.writer.ensure_user(&c.app, &c.user, c.name.clone()).await {
            return refused(e).await;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(remote::INBOUND);
        let (end, overflow, finished) = (CancellationToken::new(), CancellationToken::new(), CancellationToken::new());
        let relay = {
            let mut links = self.links();
            let link = self.link(&mut links, &c.edge);
            link.heard = Instant::now();
            let conn =
                RemoteConn { frames: tx, end: end.clone(), overflow: overflow.clone(), finished: finished.clone() };
            link.conns.insert(c.conn, conn);
            link.relay.clone()
        };
        let at = Incarnation { core_boot: self.boot, link: relay.node() };
        let task = remote::run(self.state.clone(), app, c.user, relay, c.conn, rx, end, overflow, slot, finished);
        self.state.tracker.spawn(task);
        Accepted::Yes { at }
    }

    /// A frame or the end of a connection, in the edge's order. `Gone` drops
    /// the connection's frame queue, so its task handles what was forwarded
    /// before and then ends; the reply (when asked) comes once it has left
    /// every room, so the edge closes the TCP connection only then (SPEC.md
    /// 10.1: a client that saw the end of the stream finds its guest slot free).
    fn on_inbound(&self, payload: bytes::Bytes, reply: Option<async_nats::Subject>) {
        let up = match Up::decode(payload) {
            Ok(up) => up,
            Err(e) => return tracing::warn!("cluster: {e}"),
        };
        match up {
            Up::Frame { edge, conn, text } => self.hand_over(&edge, conn, Some(text)),
            Up::Binary { edge, conn } => self.hand_over(&edge, conn, None),
            Up::Gone { edge, conn } => {
                let removed = self.links().get_mut(&edge).and_then(|l| l.conns.remove(&conn));
                let finished = removed.map(|c| c.finished.clone());
                if let Some(reply) = reply {
                    let client = self.client.clone();
                    tokio::spawn(async move {
                        if let Some(finished) = finished {
                            let _ = tokio::time::timeout(GONE_WAIT, finished.cancelled()).await;
                        }
                        let _ = client.publish(reply, bytes::Bytes::new()).await;
                    });
                }
            }
        }
    }

    /// Queues a client frame (`None`: a binary one) for its connection's task.
    fn hand_over(&self, edge: &Edge, conn: u64, frame: Option<axum::extract::ws::Utf8Bytes>) {
        let links = self.links();
        let Some(c) = links.get(edge).and_then(|l| l.conns.get(&conn)) else { return };
        if c.frames.try_send(frame).is_err() {
            c.overflow.cancel();
        }
    }

    async fn on_beat(&self, msg: async_nats::Message) {
        let Some(reply) = msg.reply else { return };
        let Ok(edge) = wire::decode_beat(msg.payload) else { return };
        let at = {
            let mut links = self.links();
            let link = self.link(&mut links, &edge);
            link.heard = Instant::now();
            Incarnation { core_boot: self.boot, link: link.relay.node() }
        };
        let _ = self.client.publish(reply, Accepted::Yes { at }.encode()).await;
    }

    /// Ends the links of silent edges and of broken relays.
    fn sweep(&self) {
        let mut links = self.links();
        let dead: Vec<Edge> = links
            .iter()
            .filter(|(_, l)| l.heard.elapsed() > self.cfg.liveness || l.relay.broken.is_cancelled())
            .map(|(e, _)| e.clone())
            .collect();
        for e in dead {
            if let Some(mut link) = links.remove(&e) {
                let why = if link.relay.broken.is_cancelled() { "its relay overflowed" } else { "no heartbeat" };
                tracing::warn!(node = %e.node, connections = link.conns.len(), "cluster: edge declared dead ({why})");
                link.end_all();
            }
        }
    }

    /// Stops answering the edges (shutdown, after the connections closed) and flushes what is queued.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.links().clear();
        // The relays' publishers end once the last connection dropped its outbox.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.client.flush()).await;
    }
}

/// A refusal as the edge will answer it: the status and JSON body of `e`.
async fn refused(e: ApiError) -> Accepted {
    let response = e.into_response();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    Accepted::No { status, body }
}
