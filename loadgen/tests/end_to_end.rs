//! End-to-end tests of the load generator against a real reference server on
//! 127.0.0.1 port 0: tens of guests, exact counting of every delivery, a
//! failing threshold that makes the binary exit non-zero, and a report with
//! charts. goose keeps some process-wide state (its logger, its ctrl-c
//! killswitch), so runs inside this test binary take turns on [`RUN_LOCK`].

use std::path::PathBuf;
use std::process::Command;
use supergroup_load::cli::{CompareArgs, RunArgs};
use supergroup_load::compare;
use supergroup_load::report::summary::decode_histogram;
use supergroup_server::{Config, spawn};
use tokio::sync::Mutex;

/// One goose run at a time in this process.
static RUN_LOCK: Mutex<()> = Mutex::const_new(());

/// A fresh folder under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("supergroup-load-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small, quick run: 1 s of sending, short settle and drain.
fn small_run(target: Option<String>, out: PathBuf) -> RunArgs {
    RunArgs {
        target,
        app_id: "demo".into(),
        secret: "sk_demo".into(),
        profile: None,
        guests: Some(30),
        talkers: Some(2),
        conversations: Some(1),
        readers: Some(1),
        rate: Some(20.0),
        message_bytes: Some(64),
        ramp: Some(200.0),
        duration: Some(1.0),
        settle: 0.5,
        drain: 1.5,
        thresholds: vec![],
        out: Some(out),
        server_pid: None,
        server_outbound_queue: 1024,
        server_exe: None,
        allow_over_limit: false,
        no_progress: true,
        ca_cert: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_reaches_every_guest_exactly_once_and_the_report_is_written() {
    let _turn = RUN_LOCK.lock().await;
    let server = spawn(Config::for_tests()).await.unwrap();
    let out = scratch("exact");
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.thresholds = vec!["loss==0".into(), "duplicates==0".into(), "fanout.p99<60s".into()];
    let outcome = supergroup_load::run::run(&args).await.unwrap();
    server.stop().await.unwrap();
    let s = &outcome.summary;

    // 2 talkers × 20 msg/s × 1 s = 40 messages, each to 30 guests.
    let messages = 40;
    assert_eq!(s.messages.planned, messages);
    assert_eq!(s.messages.sent, messages);
    assert_eq!(s.messages.acked, messages);
    assert_eq!(s.messages.unanswered, 0);
    assert_eq!(s.guests.opened, 30);
    let c = &s.completeness;
    assert_eq!(c.expected, 30 * messages, "{c:?}");
    assert_eq!(c.delivered, 30 * messages, "{c:?}");
    assert_eq!(c.missing, 0);
    assert_eq!(c.duplicates, 0);
    assert_eq!(c.out_of_order, 0);
    assert_eq!(c.unexpected, 0);
    assert_eq!(c.guests_complete, 30);
    assert_eq!(s.errors.total, 0, "{:?}", s.errors.by_kind);
    assert_eq!(s.latency.fanout.count, 30 * messages);
    assert_eq!(s.latency.time_to_last.count, messages);
    assert_eq!(s.latency.ack.count, messages);
    assert!(s.passed, "{:?}", s.thresholds);
    assert_eq!(s.thresholds.len(), 3);

    // The report: parseable summary with the histograms, charts inline in the HTML, goose's report beside it.
    let back = compare::load(&out).unwrap();
    assert_eq!(back.completeness.delivered, 30 * messages);
    assert_eq!(decode_histogram(&back.histograms.fanout).unwrap().len(), 30 * messages);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.matches("<svg").count() >= 4, "charts are inline");
    assert!(!html.contains("<script"), "self-contained, no script");
    assert!(out.join("charts/latency-percentiles.svg").is_file());
    assert!(out.join("report.md").is_file());
    assert!(out.join("goose-report.html").is_file(), "goose's own report");
    let goose = s.goose.as_ref().unwrap();
    assert!(goose.requests.iter().any(|r| r.name.contains("open_as_guest") && r.ok == 30), "{:?}", goose.requests);

    // Comparing a run with itself finds no regression.
    let cmp =
        compare::compare(&CompareArgs { a: out.clone(), b: out.clone(), out: Some(out.join("cmp")), tolerance: 10.0 })
            .unwrap();
    assert_eq!(cmp.regressions(), 0);
    assert!(out.join("cmp/compare-percentiles.svg").is_file());
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_spread_over_conversations_are_counted_per_conversation() {
    let _turn = RUN_LOCK.lock().await;
    let server = spawn(Config::for_tests()).await.unwrap();
    let out = scratch("rooms");
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.guests = Some(25);
    args.talkers = Some(3);
    args.conversations = Some(3);
    args.readers = Some(0);
    // The in-process server lives in this process: --server-pid samples it.
    args.server_pid = Some(std::process::id());
    let s = supergroup_load::run::run(&args).await.unwrap().summary;
    server.stop().await.unwrap();
    // Rooms get guests 9, 8, 8 and one talker each sending 20 messages.
    assert_eq!(s.messages.acked, 60);
    assert_eq!(s.completeness.expected, 25 * 20);
    assert_eq!(s.completeness.delivered, 25 * 20, "a guest gets only its own room's messages");
    assert_eq!(s.completeness.missing, 0);
    assert_eq!(s.errors.total, 0, "{:?}", s.errors.by_kind);
    let server = s.server.as_ref().expect("--server-pid is sampled");
    assert_eq!(server.pid, std::process::id());
    assert!(server.rss_peak_kib.is_some_and(|k| k > 0));
    let _ = std::fs::remove_dir_all(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_the_guest_limit_is_refused_with_advice() {
    let _turn = RUN_LOCK.lock().await;
    let server = spawn(Config::for_tests()).await.unwrap(); // basic plan: 300 guests per conversation
    let out = scratch("limit");
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.guests = Some(301);
    let err = supergroup_load::run::run(&args).await.err().expect("refused").to_string();
    server.stop().await.unwrap();
    assert!(err.contains("300"), "{err}");
    assert!(err.contains("--conversations 2"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
}

/// The binary, with its own child server: a threshold that cannot hold makes it exit 1 and the report says so.
#[test]
fn a_failing_threshold_makes_the_binary_exit_non_zero() {
    let out = scratch("threshold");
    let status = Command::new(env!("CARGO_BIN_EXE_supergroup-load"))
        .args(["--guests", "10", "--rate", "5", "--duration", "1s", "--settle", "500ms", "--drain", "1s"])
        .args(["--threshold", "delivered>1e12", "--threshold", "loss==0", "--no-progress", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1), "a failed threshold exits 1");
    let s = compare::load(&out).unwrap();
    assert!(!s.passed);
    assert!(s.target.local_server, "no --target: the binary started its own server");
    assert!(!s.thresholds[0].passed && s.thresholds[1].passed, "{:?}", s.thresholds);
    assert_eq!(s.completeness.delivered, 10 * 5, "the run itself was complete");
    assert!(s.server.as_ref().is_some_and(|srv| srv.rss_peak_kib.is_some()), "the child server was sampled");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("FAIL"), "the report marks the failure");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_bad_threshold_is_refused_before_anything_starts() {
    let out = scratch("bad-threshold");
    let output = Command::new(env!("CARGO_BIN_EXE_supergroup-load"))
        .args(["--threshold", "fanout.p98<5ms", "--no-progress", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown metric"));
    assert!(!out.join("server.log").exists(), "no server was started");
    let _ = std::fs::remove_dir_all(&out);
}

/// Past the guest limit on purpose (`--allow-over-limit`): the refusals are
/// counted by error code, the run says it hit the guest limit, the
/// `errors==0` threshold fails, and the guests that did open still get every
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_over_the_limit_are_counted_by_code() {
    let _turn = RUN_LOCK.lock().await;
    let server = spawn(Config::for_tests()).await.unwrap(); // basic plan: 300 guests per conversation
    let out = scratch("over-limit");
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.guests = Some(310);
    args.allow_over_limit = true;
    args.thresholds = vec!["errors==0".into(), "loss==0".into()];
    let s = supergroup_load::run::run(&args).await.unwrap().summary;
    server.stop().await.unwrap();
    assert_eq!(s.guests.opened, 300, "{:?}", s.guests);
    assert_eq!(s.guests.open_failed, 10, "{:?}", s.guests);
    assert_eq!(s.errors.by_kind.get("open: guest_limit_reached"), Some(&10), "{:?}", s.errors.by_kind);
    assert!(s.errors.guest_limit_reached);
    assert!(!s.passed);
    assert!(!s.thresholds[0].passed && s.thresholds[1].passed, "{:?}", s.thresholds);
    assert_eq!(s.completeness.delivered, 300 * 40);
    assert_eq!(s.completeness.missing, 0);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("hit the guest limit"), "the report says so plainly");
    let _ = std::fs::remove_dir_all(&out);
}
