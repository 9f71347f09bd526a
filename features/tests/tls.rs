//! The suite over TLS, end to end: a private CA and a server certificate for
//! 127.0.0.1 are made at test time, the in-process reference server serves
//! https and wss with it, and the whole suite runs against it trusting the CA
//! through `--ca-cert` (the `ca_cert` option). Without the CA the run must
//! stop at its first request with an error that names the refused
//! certificate and `--ca-cert`.

use supergroup_conformance::{Options, run};
use supergroup_server::tls::TestPki;

fn pki_in(dir: &std::path::Path) -> TestPki {
    let pki = TestPki::new().expect("a test CA and certificate are made");
    pki.write(dir).expect("the PEM files are written");
    pki
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_over_https_and_wss_trusting_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki_in(dir.path());
    let opts = Options {
        console: false,
        ca_cert: Some(dir.path().join("ca.pem")),
        server_tls: Some(pki.server_config().unwrap()),
        ..Options::in_process()
    };
    let outcome = run(opts).await.expect("the suite runs over TLS");
    let verdict = outcome.report.verdict();
    println!("{verdict}");
    let failed = outcome.report.failure_lines();
    assert!(verdict.starts_with("https://127.0.0.1:"), "the target was not https: {verdict}");
    assert!(!outcome.report.results.is_empty(), "no scenario ran");
    assert_eq!(outcome.exit_code(), 0, "the suite failed over TLS: {failed:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_suite_refuses_the_certificate_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki_in(dir.path());
    let opts = Options { console: false, server_tls: Some(pki.server_config().unwrap()), ..Options::in_process() };
    let err = run(opts).await.expect_err("an untrusted certificate must stop the run");
    let text = format!("{err:#}");
    assert!(text.contains("certificate was refused"), "unclear error: {text}");
    assert!(text.contains("--ca-cert"), "the error does not say how to trust a private CA: {text}");
}
