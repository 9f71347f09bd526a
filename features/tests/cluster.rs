//! The whole suite against a 3-node reference-server cluster given as three
//! targets: a real `nats-server` on a free 127.0.0.1 port, a core and two
//! edges (in-process, each with its own NATS connection, port and state),
//! and the suite spreading every scenario's users over the three nodes
//! (`--target URL1,URL2,URL3`). Every MUST the suite can check against a
//! target it did not start must pass; SG-RT-27 (1001 on shutdown) needs a
//! server the suite starts itself and is reported not run.

use supergroup_conformance::run::reference_config;
use supergroup_conformance::{Options, run};
use supergroup_server::cluster::local_nats::LocalNats;
use supergroup_server::cluster::{ClusterConfig, ClusterRole};

fn node(nats: &LocalNats, id: &str, role: ClusterRole) -> supergroup_server::Config {
    let mut config = reference_config();
    config.cluster = Some(ClusterConfig {
        nats: nats.url.clone(),
        node_id: id.into(),
        role,
        liveness: std::time::Duration::from_millis(supergroup_server::cluster::DEFAULT_LIVENESS_MS),
    });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_against_a_three_node_cluster() {
    let nats = LocalNats::start().expect("nats-server starts (install it: apt-get install nats-server)");
    let core = supergroup_server::spawn(node(&nats, "core", ClusterRole::Core)).await.expect("the core starts");
    let e1 = supergroup_server::spawn(node(&nats, "e1", ClusterRole::Edge)).await.expect("edge 1 starts");
    let e2 = supergroup_server::spawn(node(&nats, "e2", ClusterRole::Edge)).await.expect("edge 2 starts");
    let targets = [core.base_url(), e1.base_url(), e2.base_url()].join(",");
    let opts = Options {
        target: Some(targets.clone()),
        other_app: Some((
            supergroup_conformance::run::OTHER_APP.0.into(),
            supergroup_conformance::run::OTHER_APP.1.into(),
        )),
        console: false,
        ..Options::in_process()
    };
    let outcome = run(opts).await.expect("the suite runs against the cluster");
    let verdict = outcome.report.verdict();
    println!("{verdict}");
    let failed = outcome.report.failure_lines();
    assert!(verdict.starts_with(&targets), "the run was not against the three nodes: {verdict}");
    assert!(failed.is_empty(), "scenarios failed against the cluster: {failed:#?}");
    assert_eq!(outcome.exit_code(), 0, "{verdict}");
    for node in [e2, e1, core] {
        node.stop().await.expect("the node stops");
    }
}
