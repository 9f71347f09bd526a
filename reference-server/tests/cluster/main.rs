//! The reference-server cluster (core and edges over NATS), end to end:
//! real `nats-server`, real server processes, real WebSocket clients.

mod harness;

use harness::{Node, WAIT, message_ids, nats, open, outcome, send_pipelined};
use std::time::{Duration, Instant};
use supergroup_protocol::rest::{ConversationUpsert, PageQuery};

async fn conversation(node: &Node, id: &str, participants: &[&str]) {
    let body = ConversationUpsert {
        participants: Some(participants.iter().map(|p| p.to_string()).collect()),
        ..Default::default()
    };
    node.rest.put_conversation(id, &body).await.expect("the conversation is created");
}

/// Talkers on two edges send at once; six guests on three nodes all receive
/// every message, in the same order, and that order is the stored order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_guest_on_every_node_sees_the_commit_order() {
    let nats = nats();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("core.db");
    let core = Node::start(&nats, "core", "core", db.to_str().unwrap(), &[]).await;
    let e1 = Node::start(&nats, "e1", "edge", ":memory:", &[]).await;
    let e2 = Node::start(&nats, "e2", "edge", ":memory:", &[]).await;
    let nodes = [&core, &e1, &e2];
    conversation(&e1, "stage", &["t1", "t2"]).await;
    let mut guests = Vec::new();
    for i in 0..6 {
        let mut g = nodes[i % 3].connect(&format!("g{i}")).await;
        assert_eq!(outcome(&open(&mut g, "stage", true).await), "guest");
        guests.push(g);
    }
    let mut t1 = e1.connect("t1").await;
    let mut t2 = e2.connect("t2").await;
    assert_eq!(outcome(&open(&mut t1, "stage", false).await), "participant");
    assert_eq!(outcome(&open(&mut t2, "stage", false).await), "participant");
    const EACH: usize = 25;
    let (a, b) =
        tokio::join!(send_pipelined(&mut t1, "stage", "t1", EACH), send_pipelined(&mut t2, "stage", "t2", EACH));
    assert_eq!(a.len() + b.len(), 2 * EACH);
    let mut seen = Vec::new();
    for g in &mut guests {
        seen.push(message_ids(g, "stage", 2 * EACH).await);
    }
    let page =
        core.rest.messages("stage", &PageQuery { limit: Some("100".into()), starting_after: None }).await.unwrap();
    let stored: Vec<String> = page.data.iter().rev().map(|m| m.id.clone()).collect();
    assert_eq!(stored.len(), 2 * EACH);
    for (i, ids) in seen.iter().enumerate() {
        assert_eq!(ids, &stored, "guest g{i} (on node {}) saw another order than the stored one", i % 3);
    }
    // The talkers themselves got the same order as well.
    assert_eq!(message_ids(&mut t1, "stage", 2 * EACH).await, stored);
}

/// Guest limit 3, guests on three nodes: the 4th is refused on every node,
/// and admitted once a guest on an edge leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_limit_holds_across_nodes() {
    let nats = nats();
    let core = Node::start(&nats, "core", "core", ":memory:", &["--guest-limit", "3"]).await;
    let e1 = Node::start(&nats, "e1", "edge", ":memory:", &[]).await;
    let e2 = Node::start(&nats, "e2", "edge", ":memory:", &[]).await;
    conversation(&core, "hall", &["host"]).await;
    let mut a = core.connect("a").await;
    let mut b = e1.connect("b").await;
    let mut c = e2.connect("c").await;
    for (g, name) in [(&mut a, "a"), (&mut b, "b"), (&mut c, "c")] {
        assert_eq!(outcome(&open(g, "hall", true).await), "guest", "{name} takes a slot");
    }
    for node in [&core, &e1, &e2] {
        let mut d = node.connect("d").await;
        assert_eq!(outcome(&open(&mut d, "hall", true).await), "guest_limit_reached", "the 4th guest on {}", node.url);
        d.disconnect().await;
    }
    // b (on edge e1) leaves: its slot is freed on the core, and d gets it through edge e2.
    b.disconnect().await;
    let mut d = e2.connect("d").await;
    let deadline = Instant::now() + WAIT;
    loop {
        let got = outcome(&open(&mut d, "hall", true).await);
        if got == "guest" {
            break;
        }
        assert_eq!(got, "guest_limit_reached");
        assert!(Instant::now() < deadline, "b's slot was not freed within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An edge killed with SIGKILL: the core frees its guests' slots within the
/// liveness timeout (2 s here) plus one sweep (1 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_edges_guest_slots_are_freed_within_the_liveness_timeout() {
    const LIVENESS_MS: u64 = 2_000;
    let nats = nats();
    let liveness = LIVENESS_MS.to_string();
    let core =
        Node::start(&nats, "core", "core", ":memory:", &["--guest-limit", "2", "--cluster-liveness-ms", &liveness])
            .await;
    let mut e1 = Node::start(&nats, "e1", "edge", ":memory:", &[]).await;
    conversation(&core, "hall", &["host"]).await;
    let mut g1 = e1.connect("g1").await;
    let mut g2 = e1.connect("g2").await;
    assert_eq!(outcome(&open(&mut g1, "hall", true).await), "guest");
    assert_eq!(outcome(&open(&mut g2, "hall", true).await), "guest");
    let mut g3 = core.connect("g3").await;
    assert_eq!(outcome(&open(&mut g3, "hall", true).await), "guest_limit_reached");
    e1.kill().await;
    let killed = Instant::now();
    let bound = Duration::from_millis(LIVENESS_MS) + Duration::from_secs(1) + Duration::from_secs(2);
    loop {
        let got = outcome(&open(&mut g3, "hall", true).await);
        if got == "guest" {
            break;
        }
        assert_eq!(got, "guest_limit_reached");
        assert!(killed.elapsed() < bound, "the dead edge's slots were still held {bound:?} after the kill");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let freed = killed.elapsed();
    eprintln!("guest slots of the killed edge freed {} ms after SIGKILL", freed.as_millis());
    drop((g1, g2));
}

/// A message acked through an edge survives a SIGKILL of the core: a new
/// core on the same database file has it, the edge's clients are told to
/// reconnect (1012), and REST through the edge reads the message back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acked_message_survives_a_killed_core() {
    let nats = nats();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("core.db");
    let db = db.to_str().unwrap();
    let mut core = Node::start(&nats, "core", "core", db, &[]).await;
    let e1 = Node::start(&nats, "e1", "edge", ":memory:", &[]).await;
    conversation(&e1, "log", &["alice"]).await;
    let mut alice = e1.connect("alice").await;
    assert_eq!(outcome(&open(&mut alice, "log", false).await), "participant");
    let acked = send_pipelined(&mut alice, "log", "alice", 1).await.remove(0);
    core.kill().await;
    let _core = Node::start(&nats, "core", "core", db, &[]).await;
    let (code, reason) = alice.wait_closed(WAIT).await.expect("the edge closes alice's connection");
    assert_eq!((code, reason.as_str()), (Some(1012), "cluster link lost"));
    let page = e1.rest.messages("log", &PageQuery { limit: Some("10".into()), starting_after: None }).await.unwrap();
    assert_eq!(page.data.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![acked]);
}

/// An edge that froze (SIGSTOP) past the liveness timeout is declared dead:
/// the core frees its guest's slot; when the edge runs again it learns that
/// the core ended its connections and closes its client with 1012, instead
/// of keeping a socket the core no longer serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_declared_dead_closes_its_clients_with_1012_when_it_comes_back() {
    let nats = nats();
    let core =
        Node::start(&nats, "core", "core", ":memory:", &["--guest-limit", "1", "--cluster-liveness-ms", "2000"]).await;
    let e1 = Node::start(&nats, "e1", "edge", ":memory:", &[]).await;
    conversation(&core, "hall", &["host"]).await;
    let mut g1 = e1.connect("g1").await;
    assert_eq!(outcome(&open(&mut g1, "hall", true).await), "guest");
    let mut g2 = core.connect("g2").await;
    assert_eq!(outcome(&open(&mut g2, "hall", true).await), "guest_limit_reached");
    e1.signal("STOP");
    let deadline = Instant::now() + WAIT;
    while outcome(&open(&mut g2, "hall", true).await) != "guest" {
        assert!(Instant::now() < deadline, "the frozen edge's slot was not freed within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    e1.signal("CONT");
    let (code, reason) = g1.wait_closed(WAIT).await.expect("the edge closes g1's connection");
    assert_eq!((code, reason.as_str()), (Some(1012), "cluster link lost"));
}
