//! An edge node: terminates WebSockets and HTTP and forwards everything else
//! to the core ([`super::forward`] for REST, [`super::edge_socket`] for a
//! connection's frames). What it keeps: its sockets by connection id, and
//! which of them have which room open (from the core's joined/left items),
//! so a room's frames sent once to this edge reach each of its sockets.
//!
//! The core's stream is read by one task, in order. Its sequence numbers
//! must follow each other (a repeat of the last one is the next part of a
//! split item); a gap means frames were lost between the nodes. The core
//! answers connects and heartbeats with its incarnation (boot id and this
//! edge's link); a new one means the core restarted, or ended this edge's
//! connections after declaring it dead, and forgot them. Either way every
//! connection is closed with 1012 `cluster link lost` and the clients
//! reconnect. The same happens when the core does not answer heartbeats for
//! the liveness timeout.

use super::edge_socket::{self, Local};
use super::wire::{self, Accepted, Connect, Down, Edge, Incarnation};
use super::{ClusterConfig, subjects};
use crate::config::Config;
use crate::error::ApiError;
use crate::hub::{Frames, RoomKey};
use crate::state::App;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{RawQuery, Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use supergroup_protocol::ErrorCode;
use supergroup_protocol::limits::MAX_FRAME_BYTES;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Close code of a connection whose edge lost its link to the core (WebSocket "service restart").
pub const LINK_LOST: u16 = 1012;
/// Its reason.
pub const LINK_LOST_REASON: &str = "cluster link lost";

/// The edge's sockets and rooms, under one lock (map updates only).
#[derive(Default)]
pub struct Sockets {
    pub conns: HashMap<u64, Local>,
    pub rooms: HashMap<RoomKey, HashSet<u64>>,
}

impl Sockets {
    /// Forgets `conn` and its rooms.
    pub fn remove(&mut self, conn: u64) -> Option<Local> {
        let local = self.conns.remove(&conn)?;
        for room in &local.rooms {
            if let Some(set) = self.rooms.get_mut(room) {
                set.remove(&conn);
                if set.is_empty() {
                    self.rooms.remove(room);
                }
            }
        }
        Some(local)
    }
}

/// Everything an edge shares.
pub struct Shared {
    pub config: Config,
    pub apps: HashMap<String, Arc<App>>,
    pub client: async_nats::Client,
    /// This edge process, as the core knows it.
    pub me: Edge,
    /// The core's incarnation and this edge's link there, as last answered (zero: not yet).
    at: Mutex<Incarnation>,
    pub sockets: Mutex<Sockets>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

/// The edge's handle; clone freely.
#[derive(Clone)]
pub struct EdgeState(Arc<Shared>);

impl Deref for EdgeState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl EdgeState {
    pub fn sockets(&self) -> std::sync::MutexGuard<'_, Sockets> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes every connection with 1012 (the link to the core is lost).
    fn kill_all(&self, why: &str) {
        let sockets = self.sockets();
        if !sockets.conns.is_empty() {
            tracing::warn!(
                connections = sockets.conns.len(),
                "cluster edge: {why}; closing every connection with 1012"
            );
        }
        for local in sockets.conns.values() {
            local.kill.fire(LINK_LOST, LINK_LOST_REASON);
        }
    }

    /// Notes the incarnation the core answered with. A different one than
    /// before means the core restarted, or ended this edge's connections
    /// (it declared the edge dead): every connection held so far is closed.
    fn saw(&self, at: Incarnation) {
        let before = std::mem::replace(&mut *self.at.lock().unwrap_or_else(|p| p.into_inner()), at);
        if before != Incarnation::default() && before != at {
            let why = if before.core_boot != at.core_boot {
                "the core restarted"
            } else {
                "the core ended this edge's connections"
            };
            self.kill_all(why);
        }
    }

    fn current(&self) -> Incarnation {
        *self.at.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs an edge on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    cluster: ClusterConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = super::connect(&cluster).await?;
    let me = Edge { node: cluster.node_id.clone(), boot: super::boot_id() };
    let apps = config
        .apps
        .iter()
        .map(|a| (a.id.clone(), Arc::new(App { config: a.clone(), webhook: Mutex::new(None) })))
        .collect();
    let state = EdgeState(Arc::new(Shared {
        config: config.clone(),
        apps,
        client: client.clone(),
        me: me.clone(),
        at: Mutex::default(),
        sockets: Mutex::default(),
        shutdown: CancellationToken::new(),
        tracker: TaskTracker::new(),
    }));
    let stream = client.subscribe(subjects::node(&me.node, me.boot)).await?;
    tokio::spawn(dispatch(state.clone(), stream));
    tokio::spawn(heartbeat(state.clone(), cluster.liveness));
    tracing::info!(node = %me.node, nats = %cluster.nats, "cluster edge: forwarding to the core");
    let forwarder = client.clone();
    let router = Router::new()
        .route("/v1/{app_id}/realtime", get(upgrade))
        .route("/healthz", get(crate::routes::healthz))
        .fallback(move |req: Request| edge_forward_owned(forwarder.clone(), req))
        .with_state(state.clone());
    let stop = state.shutdown.clone();
    crate::listener::serve(listener, router, &config.transport, async move {
        shutdown.await;
        stop.cancel();
        tokio::time::sleep(std::time::Duration::from_millis(config.shutdown_drain_ms)).await;
    })
    .await;
    state.tracker.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), state.tracker.wait()).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), client.flush()).await;
    Ok(())
}

async fn edge_forward_owned(client: async_nats::Client, req: Request) -> Response {
    super::forward::edge_forward(client, req).await
}

/// The realtime endpoint on an edge: the token is checked here, the
/// per-user cap and user creation by the core; then the socket is served.
async fn upgrade(
    State(state): State<EdgeState>,
    uri: Uri,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (app, claims) = match crate::realtime::authenticate(&state.apps, &uri, query.as_deref()) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return ApiError::new(ErrorCode::InvalidRequest, e.to_string()).into_response(),
    };
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let conn = NEXT.fetch_add(1, Ordering::Relaxed);
    let connect = Connect {
        edge: state.me.clone(),
        conn,
        app: app.config.id.clone(),
        user: claims.sub.clone(),
        name: claims.name.clone(),
    };
    let asked = tokio::time::timeout(super::CORE_TIMEOUT, state.client.request(subjects::CONNECT, connect.encode()));
    let answer = match asked.await {
        Ok(Ok(msg)) => Accepted::decode(msg.payload),
        Ok(Err(e)) => return ApiError::new(ErrorCode::ServerBusy, format!("cluster: {e}")).into_response(),
        Err(_) => return ApiError::new(ErrorCode::ServerBusy, "cluster: the core did not answer").into_response(),
    };
    match answer {
        Ok(Accepted::Yes { at }) => state.saw(at),
        Ok(Accepted::No { status, body }) => {
            let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
            return (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response();
        }
        Err(e) => return ApiError::internal(e.to_string()).into_response(),
    }
    // From here the core holds the connection: the guard tells it when it ends,
    // also when the upgrade never completes.
    let (local, rx, kill) = Local::new(conn, state.config.outbound_queue);
    state.sockets().conns.insert(conn, local);
    let guard = edge_socket::Registered::new(state.clone(), conn);
    let tracker = state.tracker.clone();
    ws.read_buffer_size(crate::realtime::READ_BUFFER)
        .write_buffer_size(crate::realtime::WRITE_BUFFER)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| tracker.track_future(edge_socket::run(guard, socket, rx, kill)))
}

/// Where an edge is in the core's stream.
#[derive(Debug, Default)]
struct Sequence {
    /// The last sequence number taken (0: none yet).
    last: u64,
}

impl Sequence {
    /// Takes `seq`; false when items were lost before it. The first number
    /// is taken as it comes; a repeat of the last is the next part of a split item.
    fn take(&mut self, seq: u64) -> bool {
        let in_order = self.last == 0 || seq == self.last || seq == self.last + 1;
        self.last = seq;
        in_order
    }
}

/// Reads the core's stream, in order (module doc). A message of another
/// incarnation than the one the core last answered with is stale (the old
/// relay still flushing) and is skipped; the sequence starts over with each
/// incarnation.
async fn dispatch(state: EdgeState, mut stream: async_nats::Subscriber) {
    let mut sequence = Sequence::default();
    let mut reading = Incarnation::default();
    while let Some(Some(msg)) = state.shutdown.run_until_cancelled(stream.next()).await {
        let (at, items) = match wire::decode_down(msg.payload) {
            Ok(decoded) => decoded,
            Err(e) => {
                tracing::warn!("cluster edge: {e}");
                continue;
            }
        };
        if at != state.current() {
            continue;
        }
        if at != reading {
            (reading, sequence) = (at, Sequence::default());
        }
        for (seq, item) in items {
            let expected = sequence.last + 1;
            if !sequence.take(seq) {
                state.kill_all(&format!("frames were lost between the nodes (expected {expected}, got {seq})"));
            }
            apply(&state, item);
        }
    }
}

fn apply(state: &EdgeState, item: Down) {
    let frames = |fs: Vec<axum::extract::ws::Utf8Bytes>| match fs.len() {
        1 => Frames::One(fs.into_iter().next().expect("one frame")),
        _ => Frames::Many(fs.into()),
    };
    let mut sockets = state.sockets();
    match item {
        Down::Conn { conn, frames: fs } => {
            if let Some(local) = sockets.conns.get(&conn) {
                local.push(frames(fs));
            }
        }
        Down::Room { app, conv, frames: fs } => {
            let Some(conns) = sockets.rooms.get(&(app, conv)) else { return };
            let frames = frames(fs);
            for conn in conns {
                if let Some(local) = sockets.conns.get(conn) {
                    local.push(frames.clone());
                }
            }
        }
        Down::Joined { conn, app, conv } => {
            let key = (app, conv);
            if let Some(local) = sockets.conns.get_mut(&conn) {
                local.rooms.insert(key.clone());
                sockets.rooms.entry(key).or_default().insert(conn);
            }
        }
        Down::Left { conn, app, conv } => {
            let key = (app, conv);
            if let Some(local) = sockets.conns.get_mut(&conn) {
                local.rooms.remove(&key);
            }
            if let Some(set) = sockets.rooms.get_mut(&key) {
                set.remove(&conn);
                if set.is_empty() {
                    sockets.rooms.remove(&key);
                }
            }
        }
        Down::Close { conn, code, reason } => {
            if let Some(local) = sockets.conns.get(&conn) {
                local.kill.fire(code, &reason);
            }
        }
    }
}

/// Tells the core this edge is alive; closes everything when the core stays silent past `liveness`.
async fn heartbeat(state: EdgeState, liveness: std::time::Duration) {
    let mut tick = tokio::time::interval(super::HEARTBEAT);
    let mut heard = tokio::time::Instant::now();
    while state.shutdown.run_until_cancelled(tick.tick()).await.is_some() {
        let asked = state.client.request(subjects::BEAT, wire::encode_beat(&state.me));
        match tokio::time::timeout(super::HEARTBEAT, asked).await {
            Ok(Ok(msg)) => {
                if let Ok(Accepted::Yes { at }) = Accepted::decode(msg.payload) {
                    heard = tokio::time::Instant::now();
                    state.saw(at);
                }
            }
            _ if heard.elapsed() > liveness => {
                state.kill_all("the core has not answered heartbeats");
                heard = tokio::time::Instant::now();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Sequence;

    #[test]
    fn the_sequence_check_takes_order_and_split_parts_and_sees_gaps() {
        let mut s = Sequence::default();
        assert!(s.take(41), "the first number is taken as it comes");
        assert!(s.take(42));
        assert!(s.take(42), "a split item's next part");
        assert!(!s.take(44), "43 was lost");
        assert!(s.take(45), "after a gap the stream goes on from where it is");
        assert!(!s.take(3), "a number from the past is not in order either");
    }
}
