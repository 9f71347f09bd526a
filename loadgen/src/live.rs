//! Live figures while a run goes on, for dashboards and for correlating a
//! moment of a long run with the server's own metrics: each second the ticker
//! hands over the second the recorder just closed ([`SecondSample`]) and the
//! errors counted so far; [`Live`] keeps the latest one for a Prometheus
//! endpoint (`--metrics-listen ADDR`, `GET /metrics`, text format 0.0.4) and
//! appends it to a JSON-lines file (`--out-jsonl FILE`, one object per second,
//! flushed line by line). Nothing here touches the measurement; `summary.json`
//! keeps its own copy of the series. The schema and the metric names are in
//! loadgen/README.md.

use crate::recorder::{Overdue, SecondSample};
use serde::Serialize;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// One second of the run as the JSON-lines file and the endpoint carry it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSample {
    /// The recorder's second: `t`, guests, sent, delivered, this second's deliveries and fan-out percentiles, CPU, RSS.
    #[serde(flatten)]
    pub second: SecondSample,
    /// Errors counted so far, every kind (connect, open, send, closes by the server...).
    pub errors: u64,
    /// Loss so far: deliveries due of the messages written at least `--drain` ago (one per
    /// guest that had the conversation open then), and of those not arrived yet. `null`
    /// when not computed: with `--churn`, `--reconnect-storm` or `--workers`.
    pub due_so_far: Option<u64>,
    pub missing_so_far: Option<u64>,
}

/// What the endpoint reads: the latest second and how many there were.
#[derive(Default)]
struct Latest {
    sample: Option<LiveSample>,
    seconds: u64,
}

/// The live outputs of one run; owned by the ticker.
pub struct Live {
    latest: Arc<Mutex<Latest>>,
    jsonl: Option<(PathBuf, BufWriter<File>)>,
    addr: Option<SocketAddr>,
    stop: CancellationToken,
}

impl Live {
    /// Binds the endpoint (if asked) and creates the JSON-lines file (if asked),
    /// so a wrong address or path fails the run before any load is sent.
    pub async fn start(listen: Option<SocketAddr>, jsonl: Option<&Path>) -> anyhow::Result<Live> {
        let latest = Arc::new(Mutex::new(Latest::default()));
        let stop = CancellationToken::new();
        let mut addr = None;
        if let Some(listen) = listen {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| anyhow::anyhow!("--metrics-listen {listen}: {e}"))?;
            addr = Some(listener.local_addr()?);
            let router = axum::Router::new().route(
                "/metrics",
                axum::routing::get({
                    let latest = latest.clone();
                    move || {
                        let text = render(&lock(&latest));
                        async move { ([("content-type", "text/plain; version=0.0.4")], text) }
                    }
                }),
            );
            let stopped = stop.clone();
            tokio::spawn(async move {
                let serve = axum::serve(listener, router).with_graceful_shutdown(stopped.cancelled_owned());
                if let Err(e) = serve.await {
                    eprintln!("supergroup-load: the metrics endpoint failed: {e}");
                }
            });
            eprintln!("supergroup-load: live metrics at http://{}/metrics", addr.expect("set above"));
        }
        let jsonl = match jsonl {
            Some(path) => {
                let file = File::create(path).map_err(|e| anyhow::anyhow!("--out-jsonl {}: {e}", path.display()))?;
                Some((path.to_path_buf(), BufWriter::new(file)))
            }
            None => None,
        };
        Ok(Live { latest, jsonl, addr, stop })
    }

    /// Where the endpoint listens, if it does.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// One more second: the endpoint serves it from now on and the file gets its line.
    pub fn publish(&mut self, second: &SecondSample, errors: u64, overdue: Option<Overdue>) {
        let sample = LiveSample {
            second: second.clone(),
            errors,
            due_so_far: overdue.map(|o| o.expected),
            missing_so_far: overdue.map(|o| o.missing),
        };
        if let Some((path, out)) = &mut self.jsonl {
            let line = serde_json::to_string(&sample).expect("numbers and options serialize");
            if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
                // Reported once; the run and its report go on without the file.
                eprintln!("supergroup-load: --out-jsonl {}: {e}; no more lines are written", path.display());
                self.jsonl = None;
            }
        }
        let mut latest = lock(&self.latest);
        latest.sample = Some(sample);
        latest.seconds += 1;
    }

    /// Stops the endpoint; the file was flushed line by line.
    pub fn finish(self) {
        self.stop.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Prometheus text exposition of the latest second. Before the first
/// second only `supergroup_load_seconds_total 0` is there.
fn render(latest: &Latest) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: &[(&str, Option<f64>)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in lines {
            // NaN when the figure is unknown this second (no deliveries, no process sample).
            let v = value.map_or_else(|| "NaN".to_string(), |v| v.to_string());
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    metric(
        "supergroup_load_seconds_total",
        "counter",
        "Seconds of the run closed so far (one line each in --out-jsonl).",
        &[("", Some(latest.seconds as f64))],
    );
    let Some(s) = &latest.sample else { return out };
    let d = &s.second;
    let secs = |ms: Option<f64>| ms.map(|ms| ms / 1000.0);
    let n = |v: u64| Some(v as f64);
    metric(
        "supergroup_load_elapsed_seconds",
        "gauge",
        "Seconds since the run started, at the last sample.",
        &[("", Some(d.t))],
    );
    metric(
        "supergroup_load_fanout_seconds",
        "gauge",
        "Fan-out latency (intended send to arrival) of the last second's deliveries, by quantile; 1 is the max.",
        &[
            ("{quantile=\"0.5\"}", secs(d.p50_ms)),
            ("{quantile=\"0.99\"}", secs(d.p99_ms)),
            ("{quantile=\"1\"}", secs(d.max_ms)),
        ],
    );
    metric(
        "supergroup_load_deliveries_per_second",
        "gauge",
        "Deliveries during the last second.",
        &[("", n(d.deliveries))],
    );
    metric(
        "supergroup_load_deliveries_total",
        "counter",
        "Deliveries of this run's messages so far, all guests.",
        &[("", n(d.delivered))],
    );
    metric(
        "supergroup_load_messages_sent_total",
        "counter",
        "Messages the talkers have written so far.",
        &[("", n(d.sent))],
    );
    metric("supergroup_load_guests_connected", "gauge", "Guest WebSockets connected.", &[("", n(d.guests_connected))]);
    metric("supergroup_load_guests_open", "gauge", "Guests with their conversation open.", &[("", n(d.guests_open))]);
    metric(
        "supergroup_load_errors_total",
        "counter",
        "Errors so far, every kind (see summary.json for the kinds).",
        &[("", n(s.errors))],
    );
    metric(
        "supergroup_load_deliveries_due",
        "gauge",
        "Deliveries due of the messages written at least --drain ago (one per guest with the conversation open then); \
         NaN with --churn, --reconnect-storm or --workers.",
        &[("", s.due_so_far.map(|v| v as f64))],
    );
    metric(
        "supergroup_load_deliveries_missing",
        "gauge",
        "Of the deliveries due, those not arrived yet: the loss so far (a later arrival still counts as delivered \
         in summary.json); NaN when the due count is.",
        &[("", s.missing_so_far.map(|v| v as f64))],
    );
    metric(
        "supergroup_load_cpu_percent",
        "gauge",
        "CPU of the last second, % of one core: the server (when sampled), the load generator, the whole machine.",
        &[
            ("{process=\"server\"}", d.server_cpu_pct),
            ("{process=\"loadgen\"}", d.loadgen_cpu_pct),
            ("{process=\"machine\"}", d.machine_cpu_pct),
        ],
    );
    metric(
        "supergroup_load_rss_bytes",
        "gauge",
        "Resident memory at the last sample.",
        &[
            ("{process=\"server\"}", d.server_rss_kib.map(|k| k as f64 * 1024.0)),
            ("{process=\"loadgen\"}", d.loadgen_rss_kib.map(|k| k as f64 * 1024.0)),
        ],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(t: f64) -> SecondSample {
        SecondSample {
            t,
            guests_connected: 10,
            guests_open: 9,
            sent: 20,
            delivered: 180,
            deliveries: 90,
            p50_ms: Some(3.5),
            p99_ms: Some(7.0),
            max_ms: Some(9.0),
            server_cpu_pct: None,
            server_rss_kib: Some(2048),
            loadgen_cpu_pct: Some(12.5),
            loadgen_rss_kib: Some(1024),
            machine_cpu_pct: Some(40.0),
        }
    }

    #[test]
    fn the_exposition_names_every_figure_with_its_unit() {
        let mut latest = Latest::default();
        assert_eq!(
            render(&latest).lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(),
            ["supergroup_load_seconds_total 0"]
        );
        latest.sample =
            Some(LiveSample { second: second(4.0), errors: 3, due_so_far: Some(170), missing_so_far: Some(2) });
        latest.seconds = 4;
        let text = render(&latest);
        for line in [
            "supergroup_load_seconds_total 4",
            "supergroup_load_fanout_seconds{quantile=\"0.99\"} 0.007",
            "supergroup_load_deliveries_per_second 90",
            "supergroup_load_deliveries_total 180",
            "supergroup_load_guests_open 9",
            "supergroup_load_errors_total 3",
            "supergroup_load_deliveries_due 170",
            "supergroup_load_deliveries_missing 2",
            "supergroup_load_cpu_percent{process=\"server\"} NaN",
            "supergroup_load_rss_bytes{process=\"server\"} 2097152",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        // Every sample line is `name{labels} value` under its own TYPE line.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} has no TYPE line");
        }
    }
}
