//! Tests of a run spread out: over several nodes of a target (`--target URL1,URL2`),
//! and (below) over load worker processes coordinated through a real `nats-server` on
//! 127.0.0.1. Servers are real reference servers on 127.0.0.1 port 0; workers are this
//! crate's binary. Every run is small and bounded; goose keeps process-wide state, so
//! in-process runs take turns on [`RUN_LOCK`].

use std::path::PathBuf;
use supergroup_load::cli::RunArgs;
use supergroup_server::{Config, spawn};
use tokio::sync::Mutex;

/// One in-process goose run at a time.
static RUN_LOCK: Mutex<()> = Mutex::const_new(());

/// A fresh folder under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("supergroup-load-dist-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small run: 1 s of sending, short settle and drain.
fn small_run(target: Option<String>, out: PathBuf) -> RunArgs {
    RunArgs {
        target,
        app_id: "demo".into(),
        secret: "sk_demo".into(),
        profile: None,
        guests: Some(20),
        talkers: Some(2),
        conversations: Some(2),
        readers: Some(0),
        rate: Some(10.0),
        message_bytes: Some(64),
        ramp: Some(200.0),
        duration: Some(1.0),
        settle: 0.5,
        drain: 1.5,
        step_rate: vec![],
        step: 20.0,
        stages: None,
        stop_when: vec![],
        thresholds: vec![],
        out: Some(out),
        server_pid: None,
        server_outbound_queue: 1024,
        server_exe: None,
        allow_over_limit: false,
        no_progress: true,
        ca_cert: None,
        metrics_listen: None,
        out_jsonl: None,
        workers: None,
        coordinator: None,
        run_id: None,
        worker_wait: 60.0,
    }
}

/// Two independent servers given as the nodes of one target: guest `g` and talker `k`
/// go to node `g % 2` and `k % 2`, and with 2 conversations (room `g % 2`) every room's
/// guests and talkers meet on one node. Had a guest gone to the other node, it would
/// have opened its room there (every room is created on every node) and received
/// nothing: its node would show missing deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_targets_spread_guests_and_talkers_round_robin() {
    let _turn = RUN_LOCK.lock().await;
    let a = spawn(Config::for_tests()).await.unwrap();
    let b = spawn(Config::for_tests()).await.unwrap();
    let out = scratch("targets");
    let target = format!("{},{}/", a.base_url(), b.base_url());
    let outcome = supergroup_load::run::run(&small_run(Some(target), out)).await.unwrap();
    let s = outcome.summary;
    assert_eq!(s.nodes.len(), 2, "{:?}", s.nodes);
    assert_eq!(s.nodes[0].url, a.base_url());
    assert_eq!(s.nodes[1].url, b.base_url());
    for n in &s.nodes {
        assert_eq!((n.guests_planned, n.guests_opened, n.talkers_planned), (10, 10, 1), "{n:?}");
        assert_eq!(n.missing, 0, "{n:?}");
        assert_eq!(n.expected, 10 * 10, "10 guests × 10 messages of their room's one talker: {n:?}");
        assert_eq!(n.delivered, n.expected, "{n:?}");
    }
    assert_eq!(s.completeness.missing, 0);
    assert_eq!(s.completeness.expected, 200);
    let report = std::fs::read_to_string(outcome.written.markdown).unwrap();
    assert!(report.contains("Nodes of the target"), "the report names the nodes");
    assert!(report.contains(&b.base_url()));
}
