//! The reference server as a cluster on NATS: one **core** node and any
//! number of **edge** nodes form one server (`--cluster nats://... --node-id
//! ID --cluster-role core|edge`).
//!
//! - The core is a whole single server (SQLite file, group-commit writer,
//!   hub, notifier, webhooks) that also serves the edges: it takes every
//!   decision (limits, presence, membership epochs, notifications), for its
//!   own sockets and for the edges' alike. ([`core`])
//! - An edge terminates WebSockets and HTTP and holds no state of its own:
//!   it verifies tokens, forwards each REST request verbatim to the core and
//!   answers what the core answered ([`forward`]), forwards each client frame
//!   of a connection to the core, where the connection runs through the same
//!   frame handler as a local one ([`remote`]), and fans the core's frames
//!   out to its sockets ([`edge`], [`edge_socket`]).
//! - The seam is the hub's [`crate::hub::Relay`]: a connection of an edge is
//!   registered in the core's hub like any other, with an outbox that goes to
//!   its edge's ordered relay ([`relay`]). A group commit's frames go to each
//!   edge once per room; the edge's own map of who has which room open (kept
//!   from the relay's joined/left items, in the same order) does the
//!   per-socket fan-out. A single server never builds a relay and runs exactly
//!   the code it ran before.
//! - Liveness: edges send a heartbeat every [`HEARTBEAT`]; the core ends every
//!   connection of an edge it has not heard from for `--cluster-liveness-ms`
//!   (default [`DEFAULT_LIVENESS_MS`]), freeing its guest slots and presence.
//!   An edge that sees a gap in the relay's sequence numbers, or a restarted
//!   core, closes all its connections with 1012 (the clients reconnect).
//!
//! The wire format is [`wire`]; the NATS subjects are [`subjects`].

pub mod core;
pub mod edge;
pub mod edge_socket;
pub mod forward;
pub mod local_nats;
pub mod relay;
pub mod remote;
pub mod wire;

use std::time::Duration;

/// What a node is in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterRole {
    /// Owns the database and decides everything; serves clients too.
    Core,
    /// Terminates client connections and forwards to the core.
    Edge,
}

/// How a node joins its cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub nats: String,
    /// This node's id, unique in the cluster (letters, digits, `-`, `_`).
    pub node_id: String,
    pub role: ClusterRole,
    /// How long the core waits for an edge's heartbeat before it ends that edge's connections.
    pub liveness: Duration,
}

/// Default liveness timeout of an edge: 5 s (five missed heartbeats).
pub const DEFAULT_LIVENESS_MS: u64 = 5_000;
/// How often an edge tells the core it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long an edge waits for the core to answer a connect, a heartbeat or a
/// forwarded REST request before it answers 503 itself.
pub const CORE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest NATS message the cluster sends is the server's `max_payload`;
/// this much of it is kept for our own headers.
pub const ENVELOPE: usize = 4096;
/// The NATS `max_payload` under which a REST body of [`MAX_BODY_BYTES`]
/// (supergroup_protocol::limits) no longer fits one forwarded request: the
/// scripts and tests run nats-server with `max_payload: 2MB`; with NATS's
/// default 1 MiB an edge answers bodies near 1 MiB with 413.
///
/// [`MAX_BODY_BYTES`]: supergroup_protocol::limits::MAX_BODY_BYTES
pub const WANTED_MAX_PAYLOAD: usize = 2 << 20;

/// NATS subjects of the cluster.
pub mod subjects {
    /// Edge to core: client frames and ends of connections ([`super::wire::Up`]), in order per edge.
    pub const INBOUND: &str = "sg.core.in";
    /// Request: a new connection on an edge ([`super::wire::Connect`]).
    pub const CONNECT: &str = "sg.core.connect";
    /// Request: an edge's heartbeat.
    pub const BEAT: &str = "sg.core.beat";
    /// Request: a forwarded REST request ([`super::forward`]).
    pub const HTTP: &str = "sg.core.http";

    /// Core to one edge process: its relay's items.
    pub fn node(node: &str, boot: u64) -> String {
        format!("sg.node.{node}.{boot}")
    }
}

/// Whether `id` may be a node id (it becomes a NATS subject token).
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Connects to NATS, and warns when its `max_payload` is below [`WANTED_MAX_PAYLOAD`].
pub async fn connect(cfg: &ClusterConfig) -> anyhow::Result<async_nats::Client> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("supergroup-{}", cfg.node_id))
        // The core's relays and the edges' inbound stream may burst; a
        // subscription holds this many messages before NATS drops (a gap the
        // sequence numbers reveal).
        .subscription_capacity(65_536)
        .connect(cfg.nats.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach NATS at {}: {e}", cfg.nats))?;
    let max = client.server_info().max_payload;
    if max < WANTED_MAX_PAYLOAD {
        tracing::warn!(
            max_payload = max,
            "NATS max_payload is under 2 MiB: REST bodies over {} bytes will be refused with 413 on edges",
            max.saturating_sub(ENVELOPE)
        );
    }
    Ok(client)
}

/// A random non-zero id for this process's incarnation.
pub fn boot_id() -> u64 {
    rand::random::<u64>() | 1
}
