//! A load run over `wss://`: a private CA and a server certificate for
//! 127.0.0.1 made at test time, an in-process reference server serving https
//! and wss with it, and a small run (20 guests, 2 s) trusting the CA through
//! `--ca-cert`, counted exactly. Without the CA the run is refused before it
//! starts, with an error naming the certificate and `--ca-cert`. goose keeps
//! process-wide state, so the two runs take turns on [`RUN_LOCK`].

use std::path::PathBuf;
use supergroup_load::cli::RunArgs;

mod common;
use supergroup_server::tls::TestPki;
use supergroup_server::{Config, spawn};
use tokio::sync::Mutex;

static RUN_LOCK: Mutex<()> = Mutex::const_new(());

fn run_args(target: String, out: PathBuf, ca_cert: Option<PathBuf>) -> RunArgs {
    RunArgs {
        guests: Some(20),
        talkers: Some(1),
        rate: Some(10.0),
        duration: Some(2.0),
        ca_cert,
        ..common::small_run(Some(target), out)
    }
}

async fn tls_server(dir: &std::path::Path) -> supergroup_server::Running {
    let pki = TestPki::new().unwrap();
    pki.write(dir).unwrap();
    let mut config = Config::for_tests();
    config.transport.tls = Some(pki.server_config().unwrap());
    spawn(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_over_wss_delivers_every_message_to_every_guest() {
    let _turn = RUN_LOCK.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path()).await;
    assert!(server.base_url().starts_with("https://"));
    let args = run_args(server.base_url(), dir.path().join("report"), Some(dir.path().join("ca.pem")));
    let outcome = supergroup_load::run::run(&args).await.expect("the run over TLS completes");
    server.stop().await.unwrap();
    let s = &outcome.summary;
    // 1 talker × 10 msg/s × 2 s = 20 messages, each to 20 guests.
    assert_eq!(s.messages.acked, 20, "{:?}", s.errors.by_kind);
    assert_eq!(s.guests.opened, 20, "{:?}", s.errors.by_kind);
    assert_eq!(s.completeness.delivered, 20 * 20, "{:?}", s.completeness);
    assert_eq!(s.completeness.missing, 0);
    assert_eq!(s.errors.total, 0, "{:?}", s.errors.by_kind);
    let goose = s.goose.as_ref().expect("goose figures");
    let rest: Vec<_> = goose
        .requests
        .iter()
        .filter(|r| r.name.contains("conversation messages") || r.name.contains("user conversations"))
        .collect();
    assert!(rest.iter().map(|r| r.ok).sum::<u64>() > 0, "no REST request over https: {:?}", goose.requests);
    assert_eq!(rest.iter().map(|r| r.failed).sum::<u64>(), 0, "REST requests over https failed: {rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_run_refuses_the_certificate_and_says_so() {
    let _turn = RUN_LOCK.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path()).await;
    let args = run_args(server.base_url(), dir.path().join("report"), None);
    let err = supergroup_load::run::run(&args).await.err().expect("an untrusted certificate must stop the run");
    server.stop().await.unwrap();
    let text = format!("{err:#}");
    assert!(text.contains("certificate was refused") && text.contains("--ca-cert"), "unclear error: {text}");
}
