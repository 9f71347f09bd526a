//! The server's `/metrics`, the load generator's live endpoint and the Grafana
//! dashboard, checked together against a real reference server on 127.0.0.1
//! port 0 and a small load run (the load generator as a library):
//! - every query of `dashboards/supergroup.json` names only metrics that one
//!   of the two endpoints exports (and the checker itself is shown to fail on
//!   a name nobody exports);
//! - a load run shows in the server's metrics: the frames written grew by at
//!   least the deliveries the report counted, the messages published by the
//!   messages acked, every guest's close is counted, a silent connection's
//!   4000 close is counted under its code, and connections and presence are
//!   back to 0 afterwards.
//!
//! goose keeps process-wide state, so the runs of this binary take turns on [`RUN_LOCK`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use supergroup_load::cli::RunArgs;

mod common;
use common::scratch;
use supergroup_server::{Config, spawn};
use tokio::sync::Mutex;

static RUN_LOCK: Mutex<()> = Mutex::const_new(());

/// The dashboard file, from the repository root.
const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards/supergroup.json");

/// 30 guests, 2 talkers at 20 msg/s for `secs` seconds.
fn run_args(target: String, out: PathBuf, secs: f64, metrics_listen: Option<SocketAddr>) -> RunArgs {
    RunArgs { duration: Some(secs), metrics_listen, ..common::small_run(Some(target), out) }
}

/// `GET path` over a plain socket (HTTP/1.0): the body, or None if nothing answers 200.
async fn get(addr: SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.ok()?;
    socket.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes()).await.ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), socket.read_to_string(&mut text)).await.ok()?.ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.lines().next()?.contains(" 200 ").then(|| body.to_string())
}

/// The value of the sample `series` (`name` or `name{labels}` exactly).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample `{series}` in\n{text}"))
}

/// Metric families of an exposition, from its `# TYPE name type` lines.
fn families(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.trim().to_string()))
        .collect()
}

/// Whether `name` is exported by the families: as a family, or as the
/// `_bucket`, `_sum` or `_count` series of a histogram or summary.
fn exported(name: &str, families: &HashMap<String, String>) -> bool {
    families.contains_key(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .and_then(|base| families.get(base))
                .is_some_and(|kind| kind == "histogram" || kind == "summary")
        })
}

/// PromQL words that are not metric names where they stand.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "inf",
    "nan",
];
/// Words whose parenthesised list that follows holds label names.
const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// The metric names a PromQL expression reads: identifiers outside strings,
/// label matchers `{...}`, ranges `[...]` and label lists (`by (...)`), that are
/// not function calls, keywords, numbers, durations or Grafana variables (`$__rate_interval`).
fn metric_names(expr: &str) -> Vec<String> {
    let c: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    let mut label_list_next = false;
    let skip_to = |from: usize, close: char| -> usize {
        let mut j = from + 1;
        let mut quote = None;
        while j < c.len() {
            match (quote, c[j]) {
                (Some(_), '\\') => j += 1,
                (Some(q), ch) if ch == q => quote = None,
                (None, '"' | '\'' | '`') => quote = Some(c[j]),
                (None, ch) if ch == close => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    let ident = |ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':';
    while i < c.len() {
        match c[i] {
            q @ ('"' | '\'' | '`') => i = skip_to(i, q),
            '{' => i = skip_to(i, '}'),
            '[' => i = skip_to(i, ']'),
            '(' if label_list_next => {
                label_list_next = false;
                i = skip_to(i, ')');
            }
            '$' => {
                i += 1;
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
            }
            ch if ch.is_ascii_digit() || ch == '.' => {
                i += 1;
                while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                    i += 1;
                }
                if i < c.len() && (c[i] == 'e' || c[i] == 'E') {
                    i += 1;
                    if i < c.len() && (c[i] == '+' || c[i] == '-') {
                        i += 1;
                    }
                    while i < c.len() && c[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                // A duration's units (`5m`, `1h30m`) belong to the number.
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
            }
            ch if ident(ch) => {
                let start = i;
                while i < c.len() && ident(c[i]) {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                let next = c[i..].iter().find(|ch| !ch.is_whitespace());
                if LABEL_LISTS.contains(&word.as_str()) {
                    label_list_next = true;
                } else if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Every `expr` of the dashboard's panels.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    let panels = dashboard["panels"].as_array().expect("the dashboard has panels");
    panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("every target has an expr").to_string())
        .collect()
}

/// The names in `exprs` that neither exposition exports, with the expr each came from.
fn unexported(exprs: &[String], server: &str, load: &str) -> Vec<(String, String)> {
    let (server, load) = (families(server), families(load));
    exprs
        .iter()
        .flat_map(|e| metric_names(e).into_iter().map(move |n| (n, e.clone())))
        .filter(|(n, _)| !exported(n, &server) && !exported(n, &load))
        .collect()
}

#[test]
fn the_name_extractor_strips_functions_matchers_ranges_label_lists_and_numbers() {
    assert_eq!(
        metric_names(r#"sum by (code, le) (rate(a_total{x="y(z)", w=~"b{1}"}[$__rate_interval])) / 100 + 1e-3"#),
        ["a_total"]
    );
    assert_eq!(
        metric_names("rate(h_sum[5m]) / rate(h_count[5m]) * on(app) group_left(name) info_metric offset 5m"),
        ["h_sum", "h_count", "info_metric"]
    );
    assert_eq!(
        metric_names(r#"supergroup_load_cpu_percent{process="loadgen"} / 100"#),
        ["supergroup_load_cpu_percent"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_a_metric_the_server_or_the_load_generator_exports() {
    let _turn = RUN_LOCK.lock().await;
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).expect("dashboards/supergroup.json")).unwrap();
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 10, "{} queries", exprs.len());
    let server = spawn(Config::for_tests()).await.unwrap();
    let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let args = run_args(server.base_url(), scratch("dashboard"), 3.0, Some(live));
    let run = tokio::spawn(async move { supergroup_load::run::run(&args).await });

    // Both endpoints while the run delivers.
    let mut load = None;
    for _ in 0..200 {
        if let Some(body) = get(live, "/metrics").await
            && body.lines().any(|l| {
                l.strip_prefix("supergroup_load_deliveries_per_second ")
                    .is_some_and(|v| v.parse::<f64>().unwrap() > 0.0)
            })
        {
            load = Some(body);
            break;
        }
        assert!(!run.is_finished(), "the run ended before its endpoint showed a second with deliveries");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let load = load.expect("the load generator's endpoint showed deliveries within 20 s");
    let server_text = get(server.addr, "/metrics").await.expect("the server answers /metrics");
    run.await.unwrap().unwrap();
    server.stop().await.unwrap();

    let missing = unexported(&exprs, &server_text, &load);
    assert!(missing.is_empty(), "the dashboard names metrics nobody exports: {missing:#?}");
    // Every name found is checked; a dashboard naming only unexported metrics would fail above,
    // and so does a name nobody exports, as the checker shows here on the same scrapes:
    let made_up = vec!["rate(supergroup_nobody_exports_this_total[$__rate_interval])".to_string()];
    assert_eq!(unexported(&made_up, &server_text, &load).len(), 1);
    let names: usize = exprs.iter().map(|e| metric_names(e).len()).sum();
    assert!(names >= exprs.len(), "every query reads at least one metric ({names} names in {} queries)", exprs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_shows_in_the_servers_metrics_its_deliveries_and_its_closes() {
    let _turn = RUN_LOCK.lock().await;
    let mut config = Config::for_tests();
    // Pings every 200 ms: the load generator's guests read and answer them;
    // a connection that reads nothing is closed with 4000 after 1 s.
    config.transport.ws_ping_interval = Duration::from_millis(200);
    config.transport.ws_idle_timeout = Duration::from_secs(1);
    let server = spawn(config).await.unwrap();
    let before = get(server.addr, "/metrics").await.expect("the server answers /metrics");

    // A connection that never reads: the server's pings go unanswered.
    let rest = supergroup_protocol::client::Rest::new(&server.base_url(), "demo", "sk_demo");
    let (silent, _) = tokio_tungstenite::connect_async(rest.realtime_url(&rest.token("silent"))).await.unwrap();
    let args = run_args(server.base_url(), scratch("done"), 1.0, None);
    let outcome = supergroup_load::run::run(&args).await.unwrap();
    let delivered = outcome.summary.completeness.delivered;
    let acked = outcome.summary.messages.acked;
    assert_eq!(delivered, 30 * acked, "every guest got every message: {:?}", outcome.summary.completeness);
    assert!(acked > 0);

    // The guests' connections end as the run ends: poll, bounded, until none is left.
    let mut after = String::new();
    for _ in 0..100 {
        after = get(server.addr, "/metrics").await.expect("the server answers /metrics");
        if sample(&after, "supergroup_realtime_connections") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(silent);
    server.stop().await.unwrap();
    let grew = |series: &str| sample(&after, series) - sample(&before, series);

    assert_eq!(sample(&after, "supergroup_realtime_connections"), 0.0, "{after}");
    assert_eq!(sample(&after, "supergroup_realtime_open{role=\"guest\"}"), 0.0);
    assert_eq!(sample(&after, "supergroup_realtime_open{role=\"participant\"}"), 0.0);
    assert!(
        grew("supergroup_realtime_frames_written_total") >= delivered as f64,
        "frames written grew by {} for {delivered} deliveries",
        grew("supergroup_realtime_frames_written_total")
    );
    assert!(grew("supergroup_messages_published_total") >= acked as f64);
    assert!(grew("supergroup_commit_duration_seconds_count") >= 1.0);
    assert_eq!(grew("supergroup_realtime_closes_total{code=\"4000\"}"), 1.0, "the silent connection");
    // 30 guests and 2 talkers ended their connections themselves.
    assert!(grew("supergroup_realtime_closes_total{code=\"peer\"}") >= 32.0, "{after}");
    assert_eq!(grew("supergroup_realtime_closes_total{code=\"1008\"}"), 0.0, "no slow consumer in a small run");
}
