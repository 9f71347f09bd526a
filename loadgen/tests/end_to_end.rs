//! End-to-end tests of the load generator against a real reference server on
//! 127.0.0.1 port 0: tens of guests, exact counting of every delivery, a
//! failing threshold that makes the binary exit non-zero, and a report with
//! charts. goose keeps some process-wide state (its logger, its ctrl-c
//! killswitch), so runs inside this test binary take turns on [`RUN_LOCK`].

use std::process::Command;
use supergroup_load::cli::CompareArgs;

mod common;
use common::{scratch, small_run};
use supergroup_load::compare;
use supergroup_load::report::summary::decode_histogram;
use supergroup_load::steps::StepStatus;
use supergroup_server::{Config, spawn};
use tokio::sync::Mutex;

/// One goose run at a time in this process.
static RUN_LOCK: Mutex<()> = Mutex::const_new(());

/// `GET /metrics` over a plain socket: the status line and the body, or None if nothing listens.
async fn scrape(addr: std::net::SocketAddr) -> Option<(String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.ok()?;
    socket.write_all(b"GET /metrics HTTP/1.0\r\nHost: loadgen\r\n\r\n").await.ok()?;
    let mut text = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), socket.read_to_string(&mut text)).await.ok()?.ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_string(), body.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_answer_during_a_run_and_the_jsonl_has_one_line_per_second() {
    let _turn = RUN_LOCK.lock().await;
    let server = spawn(Config::for_tests()).await.unwrap();
    let out = scratch("live");
    // A free port, chosen here and released for the run to bind: the run must
    // bind an address given on its command line.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.duration = Some(3.0);
    args.metrics_listen = Some(addr);
    args.out_jsonl = Some(out.join("live.jsonl"));
    let run = tokio::spawn(async move { supergroup_load::run::run(&args).await });

    // Scrape until a second with deliveries has been published, while the run goes on.
    let mut seen = None;
    for _ in 0..200 {
        if let Some((status, body)) = scrape(addr).await {
            assert_eq!(status, "HTTP/1.0 200 OK");
            let delivering = body.lines().any(|l| {
                l.strip_prefix("supergroup_load_deliveries_per_second ")
                    .is_some_and(|v| v.parse::<f64>().unwrap() > 0.0)
            });
            if delivering {
                seen = Some(body);
                break;
            }
        }
        assert!(!run.is_finished(), "the run ended before the endpoint showed a second with deliveries");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let body = seen.expect("the endpoint showed a second with deliveries within 20 s");
    for name in [
        "supergroup_load_fanout_seconds{quantile=\"0.99\"} ",
        "supergroup_load_guests_open 30",
        "supergroup_load_errors_total 0",
        "supergroup_load_deliveries_missing ",
    ] {
        assert!(body.lines().any(|l| l.starts_with(name)), "no `{name}` in\n{body}");
    }

    let outcome = run.await.unwrap().unwrap();
    server.stop().await.unwrap();
    assert!(scrape(addr).await.is_none(), "the endpoint stops with the run");
    let text = std::fs::read_to_string(out.join("live.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect();
    let series = &outcome.summary.series;
    assert!(series.len() >= 4, "a 3 s run has at least 4 seconds: {}", series.len());
    assert_eq!(lines.len(), series.len(), "one line per second of the series in summary.json");
    for (line, second) in lines.iter().zip(series) {
        assert_eq!(line["t"].as_f64(), Some(second.t));
        assert_eq!(line["delivered"].as_u64(), Some(second.delivered));
        assert_eq!(line["errors"].as_u64(), Some(0));
    }
    // Loss so far: by the last second the messages older than --drain (1.5 s) are due at
    // all 30 guests (open before the first message), and none of them is missing.
    let last = lines.last().unwrap();
    let (due, sent) = (last["due_so_far"].as_u64().unwrap_or(0), outcome.summary.messages.sent);
    assert!(due > 0 && due <= 30 * sent && due % 30 == 0, "due {due} of {sent} messages to 30 guests: {last}");
    assert_eq!(last["missing_so_far"].as_u64(), Some(0), "{last}");
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

/// A stepped workload inside its line runs every step, and the step table
/// counts exactly: each step's offered deliveries are its messages times the
/// guests, every one delivered, each step's histogram holding its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stepped_workload_inside_its_line_runs_every_step_and_counts_each_exactly() {
    let _turn = RUN_LOCK.lock().await;
    let server = spawn(Config::for_tests()).await.unwrap();
    let out = scratch("steps-inside");
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.guests = Some(20);
    args.readers = Some(0);
    args.step_rate = vec![5.0, 10.0];
    args.step = 1.0;
    args.drain = 1.0;
    args.stop_when = vec!["p99>60s".into(), "loss>0".into()];
    let s = supergroup_load::run::run(&args).await.unwrap().summary;
    server.stop().await.unwrap();
    let r = s.steps.as_ref().expect("a stepped run has a step table");
    assert!(r.stopped.is_none(), "{:?}", r.stopped);
    assert_eq!(r.steps.len(), 2);
    // 2 talkers: step 1 sends 2 × 5 messages in 1 s, step 2 2 × 10, each to 20 guests.
    for (st, messages) in r.steps.iter().zip([10, 20]) {
        assert_eq!(st.status, StepStatus::Full);
        assert_eq!(st.messages_sent, messages);
        assert_eq!(st.expected, messages * 20);
        assert_eq!(st.missing, 0);
        assert_eq!(st.offered_per_sec, (messages * 20) as f64);
        assert_eq!(st.delivered_per_sec, (messages * 20) as f64);
        assert_eq!(st.latency.count, messages * 20, "the step's histogram holds exactly its own deliveries");
        assert!(st.crossed.is_empty());
    }
    assert_eq!(r.highest_sustained, Some(1));
    assert!(r.verdict().starts_with("highest sustained: 400 deliveries/s at step 2"), "{}", r.verdict());
    assert_eq!(s.histograms.steps.len(), 2);
    assert_eq!(decode_histogram(&s.histograms.steps[1]).unwrap().len(), 400);
    assert_eq!(s.completeness.missing, 0);
    assert!(s.lossy.is_empty());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("highest sustained"), "the table marks the limit");
    assert!(out.join("charts/steps.svg").is_file());
    let _ = std::fs::remove_dir_all(&out);
}

/// A stepped workload stops by itself at its line. Every delivery takes more
/// than a microsecond, so `p99>1us` is crossed by the first step, for
/// certain: the run judges step 1 `--drain` after it ended, stops sending
/// during step 2, never starts step 3, drains and reports that no step was
/// sustained; what was sent is still counted exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stepped_workload_stops_at_its_line_and_reports_it() {
    let _turn = RUN_LOCK.lock().await;
    let server = spawn(Config::for_tests()).await.unwrap();
    let out = scratch("steps-line");
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.guests = Some(20);
    args.readers = Some(0);
    args.step_rate = vec![5.0, 10.0, 20.0];
    args.step = 2.0;
    args.drain = 0.5;
    args.stop_when = vec!["p99>1us".into()];
    let s = supergroup_load::run::run(&args).await.unwrap().summary;
    server.stop().await.unwrap();
    let r = s.steps.as_ref().unwrap();
    let stopped = r.stopped.as_ref().expect("the line was crossed");
    assert_eq!(stopped.step, 0, "{stopped:?}");
    assert!(stopped.reasons[0].starts_with("p99>1us (p99 was"), "{stopped:?}");
    assert_eq!(r.steps[0].status, StepStatus::Full);
    assert_eq!(r.steps[0].messages_sent, 20);
    assert!(!r.steps[0].crossed.is_empty());
    assert_eq!(r.steps[1].status, StepStatus::CutShort, "{:?}", r.steps[1]);
    assert!(r.steps[1].messages_sent < 40, "sending stopped during step 2: {}", r.steps[1].messages_sent);
    assert_eq!(r.steps[2].status, StepStatus::NotRun);
    assert_eq!(r.steps[2].messages_sent, 0);
    assert_eq!(r.highest_sustained, None);
    assert!(r.verdict().starts_with("no step was sustained; stopped at step 1: p99>1us"), "{}", r.verdict());
    // The run ended by itself, early, and what it sent was delivered exactly.
    assert_eq!(s.messages.sent, r.steps.iter().map(|st| st.messages_sent).sum::<u64>());
    assert!(s.plan.schedule.send_end - s.plan.schedule.send_start < 6.0 - 1.0, "{:?}", s.plan.schedule);
    assert_eq!(s.completeness.expected, s.messages.sent * 20);
    assert_eq!(s.completeness.missing, 0);
    let _ = std::fs::remove_dir_all(&out);
}

/// A run without thresholds that loses deliveries is not green: the server
/// is stopped while the talkers send (once its first message is stored), so
/// the rest is lost; the binary's first line says LOSSY, it exits 3, and the
/// report's headline is marked.
#[test]
fn a_lossy_run_says_so_first_and_exits_3() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _turn = rt.block_on(RUN_LOCK.lock());
    let server = rt.block_on(spawn(Config::for_tests())).unwrap();
    let out = scratch("lossy");
    let started = supergroup_load::run::utc_now().1;
    let child = Command::new(env!("CARGO_BIN_EXE_supergroup-load"))
        .args(["--target", &server.base_url(), "--guests", "10", "--rate", "10", "--duration", "4s"])
        .args(["--settle", "200ms", "--drain", "1s", "--readers", "0", "--no-progress", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The run's ids are `lg-<UTC stamp of its start>-<pid>`: wait (bounded) until its room has a message.
    let rest = supergroup_protocol::client::Rest::new(&server.base_url(), "demo", "sk_demo");
    let stamp_id = |stamp: &str| format!("lg-{}-{}-room-0", stamp.replace(['-', ':'], ""), child.id());
    let mut stored = false;
    for _ in 0..200 {
        let now = supergroup_load::run::utc_now().1;
        for stamp in [&started, &now] {
            if let Ok(c) = rt.block_on(rest.get_conversation(&stamp_id(stamp))) {
                stored |= c.last_message.is_some();
            }
        }
        if stored {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(stored, "the run's first message was never stored");
    rt.block_on(server.stop()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    // goose prints "All N users launched." on its own; the verdict is the first line after it.
    let verdict = stdout.lines().find(|l| !l.is_empty() && !l.contains("users launched")).unwrap_or_default();
    assert!(verdict.starts_with("LOSSY ("), "{stdout}");
    let s = compare::load(&out).unwrap();
    assert!(s.passed && s.thresholds.is_empty(), "no threshold failed: there were none");
    assert!(!s.lossy.is_empty());
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<p class=\"lossy\"><strong>LOSSY"), "the headline is marked");
    let _ = std::fs::remove_dir_all(&out);
}

/// Churn on a healthy server: every planned turn is taken (10%/s of 50 guests over 4 s is 20
/// turns, guests 0 to 19 once each), every leaver comes back, and completeness stays exact:
/// nothing missing, though the guests who came back were not expected what was sent while away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_takes_every_planned_turn_and_keeps_completeness_exact() {
    let _turn = RUN_LOCK.lock().await;
    let server = spawn(Config::for_tests()).await.unwrap();
    let out = scratch("churn");
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.guests = Some(50);
    args.talkers = Some(1);
    args.readers = Some(0);
    args.rate = Some(10.0);
    args.duration = Some(4.0);
    args.drain = 4.0;
    args.churn = Some(0.10);
    let s = supergroup_load::run::run(&args).await.unwrap().summary;
    server.stop().await.unwrap();
    let ch = s.churn.as_ref().expect("a churn run reports churn");
    let n = &ch.counts;
    assert_eq!(ch.leaves_planned, 20, "{ch:?}");
    assert_eq!((n.leaves, n.leaves_skipped, n.drops), (20, 0, 0), "{ch:?}");
    assert_eq!((n.rejoined, n.reopen_refused, n.reconnect_failed, n.rejoin_gave_up), (20, 0, 0, 0), "{ch:?}");
    assert_eq!(ch.rejoins_unfinished, 0);
    assert_eq!((ch.reconnect.count, ch.reopen.count), (20, 20), "rejoins timed apart from the first joins");
    assert_eq!((s.latency.connect.count, s.latency.open.count), (50, 50));
    assert_eq!(n.open_at_end, 50, "every guest holds its slot again at the end");
    assert_eq!((n.stayed.guests, n.came_back.guests, n.gone.guests), (30, 20, 0));
    let c = &s.completeness;
    assert_eq!((c.missing, c.duplicates, c.out_of_order, c.unexpected), (0, 0, 0, 0), "{c:?}");
    assert_eq!(c.guests_complete, 50);
    assert_eq!(n.stayed.expected, 30 * 40, "the guests who stayed expect every message");
    assert!(n.came_back.expected < 20 * 40, "a guest away for 500 ms at 10 msg/s is not expected what it missed");
    assert_eq!(n.stayed.expected + n.came_back.expected, c.expected);
    assert!(ch.fanout_returned.count > 0 && ch.fanout_first.count + ch.fanout_returned.count == c.delivered);
    assert!(s.lossy.is_empty(), "{:?}", s.lossy);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Churn and reconnects") && md.contains("rejoined 20 of 20"), "the report shows churn");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["churn"]["leaves"], 20);
    assert_eq!(json["churn"]["reconnect"]["count"], 20);
    let _ = std::fs::remove_dir_all(&out);
}

/// A reconnect storm: every guest drops its socket without a word at 1 s and all come back;
/// nothing sent while they had it open is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_brings_every_guest_back() {
    let _turn = RUN_LOCK.lock().await;
    let server = spawn(Config::for_tests()).await.unwrap();
    let out = scratch("storm");
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.guests = Some(60);
    args.talkers = Some(1);
    args.readers = Some(0);
    args.rate = Some(10.0);
    args.duration = Some(3.0);
    args.drain = 4.0;
    args.reconnect_storm = Some(1.0);
    let s = supergroup_load::run::run(&args).await.unwrap().summary;
    server.stop().await.unwrap();
    let ch = s.churn.as_ref().expect("a storm run reports it");
    let n = &ch.counts;
    assert_eq!((n.drops, n.leaves, ch.leaves_planned), (60, 0, 0), "{ch:?}");
    assert_eq!((n.rejoined, n.reopen_refused, n.reconnect_failed, n.rejoin_gave_up), (60, 0, 0, 0), "{ch:?}");
    assert_eq!((ch.reconnect.count, ch.reopen.count), (60, 60));
    assert_eq!((n.open_at_end, n.came_back.guests, n.stayed.guests), (60, 60, 0));
    let c = &s.completeness;
    assert_eq!((c.missing, c.duplicates, c.out_of_order, c.unexpected), (0, 0, 0, 0), "{c:?}");
    assert_eq!(s.errors.total, 0, "{:?}", s.errors.by_kind);
    assert!(s.lossy.is_empty(), "{:?}", s.lossy);
    assert!(supergroup_load::report::tables::headline(&s).contains("rejoined 60 of 60 (refused 0"));
    let _ = std::fs::remove_dir_all(&out);
}

/// Another guest user takes the first guest slot a churning guest frees (the server's guest
/// limit is the run's guest count), so that guest's rejoin is refused with
/// `guest_limit_reached`: counted by code, shown, and the run is not green. The squatter waits
/// until the first message is stored (every guest of the run has opened by then), then asks to
/// open every 20 ms until admitted, and holds the slot to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_rejoins_are_counted_by_code_and_the_run_is_not_green() {
    use std::time::Duration;
    use supergroup_protocol::client::{Realtime, Rest};
    use supergroup_protocol::frames::{ServerFrame, Ui};
    use supergroup_protocol::rest::PageQuery;
    let _turn = RUN_LOCK.lock().await;
    let mut config = Config::for_tests();
    config.apps[0].guest_limit = Some(20);
    let server = spawn(config).await.unwrap();
    let out = scratch("churn-refused");
    let mut args = small_run(Some(server.base_url()), out.clone());
    args.guests = Some(20);
    args.talkers = Some(1);
    args.readers = Some(0);
    args.rate = Some(10.0);
    args.duration = Some(3.0);
    args.drain = 4.0;
    args.churn = Some(0.10);
    args.run_id = Some("lg-churn-refused".into());
    let rest = Rest::new(&server.base_url(), "demo", "sk_demo");
    let cid = "lg-churn-refused-room-0".to_string();
    let squatter = tokio::spawn(async move {
        for _ in 0..600 {
            let page = rest.messages(&cid, &PageQuery { limit: Some("1".into()), starting_after: None }).await;
            if page.is_ok_and(|p| !p.data.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut rt = Realtime::connect(&rest.realtime_url(&rest.token("squatter"))).await.unwrap();
        for _ in 0..500 {
            if let Ok(ServerFrame::Opened { .. }) = rt.open(&cid, Ui::Chatbox, true, Duration::from_secs(5)).await {
                return Some(rt);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    });
    let s = supergroup_load::run::run(&args).await.unwrap().summary;
    let held = squatter.await.unwrap();
    server.stop().await.unwrap();
    assert!(held.is_some(), "the squatter got a slot a churning guest freed");
    let ch = s.churn.as_ref().unwrap();
    let n = &ch.counts;
    // 10%/s of 20 guests over 3 s: 6 turns, guests 0 to 5 once each, all open by then.
    assert_eq!((ch.leaves_planned, n.leaves, n.leaves_skipped), (6, 6, 0), "{ch:?}");
    assert!(n.reopen_refused >= 1, "{ch:?}");
    assert_eq!(ch.refused_by_code.get("guest_limit_reached"), Some(&n.reopen_refused), "{ch:?}");
    assert_eq!(s.errors.by_kind.get("rejoin open: guest_limit_reached"), Some(&n.reopen_refused));
    assert!(n.rejoined < n.leaves, "at least one leaver did not get back in time: {ch:?}");
    assert!(n.open_at_end <= 19, "the squatter holds one of the 20 slots: {ch:?}");
    assert_eq!(s.completeness.missing, 0, "a guest kept out is not expected what it could not receive");
    assert!(s.lossy_unjudged(), "refused rejoins make the run not green");
    let headline = supergroup_load::report::tables::headline(&s);
    assert!(headline.starts_with("LOSSY") && headline.contains("rejoin opens refused"), "{headline}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("class=\"lossy\""), "amber, not green");
    let _ = std::fs::remove_dir_all(&out);
}
