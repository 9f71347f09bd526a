//! Cluster test plumbing: a real `nats-server` on a free 127.0.0.1 port
//! ([`LocalNats`]) and real `supergroup-server` processes on port 0 as core
//! and edges ([`Node`]), which a test can SIGKILL. Every wait is bounded.
//! Server logs go to stderr when `TEST_LOG` is set.

use std::process::Stdio;
use std::time::Duration;
use supergroup_protocol::client::{Realtime, Rest};
use supergroup_protocol::frames::{ClientFrame, ServerFrame, Ui};
use supergroup_server::cluster::local_nats::LocalNats;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest wait for anything that should happen.
pub const WAIT: Duration = Duration::from_secs(10);
pub const APP: &str = "demo";
pub const SECRET: &str = "sk_demo";

/// A running broker; see [`LocalNats`].
pub fn nats() -> LocalNats {
    LocalNats::start().expect("nats-server starts (install it: apt-get install nats-server)")
}

/// One server process of the cluster.
pub struct Node {
    child: Child,
    pub url: String,
    pub rest: Rest,
}

impl Node {
    /// Starts a node (`role` core or edge) and waits until it answers REST through the cluster.
    pub async fn start(nats: &LocalNats, id: &str, role: &str, db: &str, extra: &[&str]) -> Node {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_supergroup-server"));
        cmd.args(["--listen", "127.0.0.1:0", "--db", db, "--cluster", &nats.url, "--node-id", id])
            .args(["--cluster-role", role])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("the server binary runs");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the node prints where it listens in time")
            .expect("stdout reads")
            .expect("a first line");
        let url = first.strip_prefix("supergroup-server listening on ").expect("the listening line").to_string();
        // Keep reading stdout so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let rest = Rest::new(&url, APP, SECRET);
        let node = Node { child, url, rest };
        let deadline = tokio::time::Instant::now() + WAIT;
        while node.rest.app().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "{id} did not answer GET /v1/demo within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        node
    }

    /// SIGKILL: no shutdown, no goodbye to the cluster.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("the node is killed");
    }

    /// Sends the process a signal by name (`STOP`, `CONT`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the node runs").to_string();
        let ok = std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("kill runs");
        assert!(ok.success(), "kill -{name} {pid} failed");
    }

    /// A realtime connection for `user` on this node.
    pub async fn connect(&self, user: &str) -> Realtime {
        let url = self.rest.realtime_url(&self.rest.token(user));
        Realtime::connect(&url).await.unwrap_or_else(|e| panic!("{user} connects to {}: {e}", self.url))
    }
}

/// Opens `conv` and returns the reply (opened or error).
pub async fn open(rt: &mut Realtime, conv: &str, as_guest: bool) -> ServerFrame {
    rt.open(conv, Ui::Chatbox, as_guest, WAIT).await.expect("a reply to open")
}

/// The role of an `opened` reply, or the error code.
pub fn outcome(reply: &ServerFrame) -> String {
    match reply {
        ServerFrame::Opened { role, .. } => format!("{role:?}").to_lowercase(),
        ServerFrame::Error { code, .. } => code.clone(),
        other => format!("{other:?}"),
    }
}

/// The ids of the next `n` message frames of `conv` on `rt`, in arrival order.
pub async fn message_ids(rt: &mut Realtime, conv: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let frame = rt
            .wait_for(
                "a message frame",
                WAIT,
                |f| matches!(f, ServerFrame::Message { message } if message.conversation_id == conv),
            )
            .await
            .unwrap_or_else(|e| panic!("message {i} of {n}: {e}"));
        if let ServerFrame::Message { message } = frame {
            ids.push(message.id);
        }
    }
    ids
}

/// Sends `count` messages without waiting between them, then waits for every ack; returns the acked ids.
pub async fn send_pipelined(rt: &mut Realtime, conv: &str, who: &str, count: usize) -> Vec<String> {
    let mut refs = Vec::new();
    for i in 0..count {
        let reference = rt.fresh_ref();
        let frame = ClientFrame::Send {
            reference: Some(reference.clone()),
            conversation_id: conv.into(),
            text: format!("{who} {i}"),
            custom: None,
            idempotency_key: None,
        };
        rt.send(&frame).await.expect("the send frame goes out");
        refs.push(reference);
    }
    let mut ids = Vec::new();
    for r in refs {
        let reply = rt.wait_for("an ack", WAIT, |f| f.reference() == Some(r.as_str())).await.expect("the ack");
        match reply {
            ServerFrame::Ack { message_id, .. } => ids.push(message_id),
            other => panic!("{who}'s send was answered {other:?}"),
        }
    }
    ids
}
