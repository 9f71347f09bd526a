//! `summary.json`: every figure of a run in one serde struct, with the
//! configuration, the environment and the HDR histograms (V2 deflate,
//! base64, microseconds) so runs can be merged or re-plotted later.
//! `compare` reads it back; thresholds look their metrics up in it.

use crate::cli::Profile;
use crate::fdlimit::FileLimits;
use crate::plan::Plan;
use crate::recorder::{ChurnCounts, Completeness, Finished, GroupCounts, NodeShare, SecondSample};
use crate::report::tables::count;
use crate::steps::{StepReport, StopRule};
use crate::thresholds::Verdict;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency statistics of one histogram, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub min_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Stats {
    pub fn of(h: &Histogram<u64>) -> Stats {
        if h.is_empty() {
            return Stats::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Stats {
            count: h.len(),
            min_ms: Some(ms(h.min())),
            mean_ms: Some(h.mean() / 1000.0),
            p50_ms: Some(ms(h.value_at_quantile(0.50))),
            p90_ms: Some(ms(h.value_at_quantile(0.90))),
            p95_ms: Some(ms(h.value_at_quantile(0.95))),
            p99_ms: Some(ms(h.value_at_quantile(0.99))),
            p999_ms: Some(ms(h.value_at_quantile(0.999))),
            max_ms: Some(ms(h.max())),
        }
    }

    /// One statistic by its threshold name (`p99`, `max`, ...).
    pub fn get(&self, stat: &str) -> Option<f64> {
        match stat {
            "min" => self.min_ms,
            "mean" => self.mean_ms,
            "p50" => self.p50_ms,
            "p90" => self.p90_ms,
            "p95" => self.p95_ms,
            "p99" => self.p99_ms,
            "p999" => self.p999_ms,
            "max" => self.max_ms,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latencies {
    /// Per delivery: arrival at a guest minus the message's intended send time.
    pub fanout: Stats,
    /// Per message: arrival at the last guest that got it minus its intended send time.
    pub time_to_last: Stats,
    pub connect: Stats,
    /// `open` sent to `opened` received.
    pub open: Stats,
    /// Intended send time to ack.
    pub ack: Stats,
    /// The load generator's own lateness: how long a frame sat readable on a loopback
    /// socket before this runtime stamped it (the probe, over the send window and drain).
    #[serde(default)]
    pub instrument: Stats,
}

/// The HDR histograms, serialized.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Histograms {
    /// How to read them back.
    pub encoding: String,
    pub fanout: String,
    pub time_to_last: String,
    pub connect: String,
    pub open: String,
    pub ack: String,
    /// Of a staged run: fan-out per step (deliveries of the messages intended in it), same encoding.
    #[serde(default)]
    pub steps: Vec<String>,
    /// The instrument delay probe, same encoding (empty in summaries from before it existed).
    #[serde(default)]
    pub instrument: String,
    /// Of a run with churn or a reconnect storm: connect and `open` of the rejoins, and fan-out
    /// at guests on re-opened connections, same encoding (empty otherwise).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reconnect: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reopen: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fanout_returned: String,
}

/// Churn (`--churn`) and the reconnect storm (`--reconnect-storm`): what was planned, what
/// happened, the rejoins' latency apart from the first joins', and completeness per group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChurnFigures {
    /// `--churn` as a fraction of the guests per second (0 without churn).
    pub churn_per_sec: f64,
    /// How long a churning guest stays away before reconnecting, ms.
    pub pause_ms: u64,
    /// `--reconnect-storm`: seconds into the send window.
    pub storm_at_s: Option<f64>,
    /// Churn turns the rate planned within the send window as it ran.
    pub leaves_planned: u64,
    /// Leaves, drops, rejoins, refusals, failures, guests that gave up, slots held at the end;
    /// completeness of the guests who stayed, came back, or were gone at the end.
    #[serde(flatten)]
    pub counts: ChurnCounts,
    /// Rejoin `open`s refused, by error code (`guest_limit_reached`: the server had not freed a slot).
    pub refused_by_code: BTreeMap<String, u64>,
    /// Leaves and drops that neither rejoined nor gave up (the run ended during the rejoin).
    pub rejoins_unfinished: u64,
    /// Connect and `open` → `opened` of the rejoins (the first joins are in `latency`).
    pub reconnect: Stats,
    pub reopen: Stats,
    /// Fan-out of deliveries on first connections, and on re-opened ones.
    pub fanout_first: Stats,
    pub fanout_returned: Stats,
}

impl ChurnFigures {
    fn build(plan: &Plan, window_s: f64, f: &Finished) -> Option<ChurnFigures> {
        let w = &plan.workload;
        if w.churn <= 0.0 && w.reconnect_storm.is_none() {
            return None;
        }
        let mut first = f.fanout.clone();
        // Every returned delivery is also in the total, recorded into histograms of one shape.
        let _ = first.subtract(&f.fanout_returned);
        let ch = &f.churn;
        Some(ChurnFigures {
            churn_per_sec: w.churn,
            pause_ms: crate::churn::CHURN_PAUSE.as_millis() as u64,
            storm_at_s: w.reconnect_storm,
            leaves_planned: crate::churn::planned_leaves(w, window_s),
            refused_by_code: f
                .errors
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("rejoin open: ")?.to_string(), *v)))
                .filter(|(k, _)| !k.contains(' '))
                .collect(),
            rejoins_unfinished: (ch.leaves + ch.drops).saturating_sub(ch.rejoined + ch.rejoin_gave_up),
            reconnect: Stats::of(&f.reconnect),
            reopen: Stats::of(&f.reopen),
            fanout_first: Stats::of(&first),
            fanout_returned: Stats::of(&f.fanout_returned),
            counts: ch.clone(),
        })
    }

    /// Rejoin attempts that failed: refused `open`s plus failed connects and `open`s.
    pub fn rejoin_failures(&self) -> u64 {
        self.counts.reopen_refused + self.counts.reconnect_failed
    }

    /// The guests who came back, and those who stayed.
    pub fn groups(&self) -> [(&'static str, GroupCounts); 3] {
        [
            ("stayed (never left)", self.counts.stayed),
            ("came back (left or dropped, re-opened)", self.counts.came_back),
            ("gone at the end (left or dropped, not re-opened)", self.counts.gone),
        ]
    }
}

/// Serializes a histogram (HdrHistogram V2 with deflate, then base64).
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut bytes).expect("serializing into a Vec cannot fail");
    STANDARD.encode(bytes)
}

/// Reads a histogram written by [`encode_histogram`].
pub fn decode_histogram(s: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = STANDARD.decode(s)?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| anyhow::anyhow!("histogram: {e:?}"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub base_url: String,
    /// The load generator started this server itself.
    pub local_server: bool,
    pub app_id: String,
    pub plan: Option<String>,
    pub guest_limit: Option<u32>,
    pub participant_limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    pub cpus: usize,
    pub kernel: Option<String>,
    pub os: String,
    pub arch: String,
    pub open_files: Option<FileLimits>,
    pub memory_total_kib: Option<u64>,
}

impl Environment {
    pub fn detect(open_files: Option<FileLimits>) -> Environment {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string());
        let memory_total_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse().ok());
        Environment {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            kernel,
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            open_files,
            memory_total_kib,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuestFigures {
    pub requested: u64,
    pub opened: u64,
    pub connect_failed: u64,
    pub open_failed: u64,
    pub closed_by_server: u64,
    /// Guests whose `opened` came after the first message was due (their expectations start later).
    pub opened_late: u64,
    /// Most guests open at once (from the time series).
    pub peak_open: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageFigures {
    /// Messages the schedule asked for.
    pub planned: u64,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    /// Written, but neither acked nor refused by the end of the run (still expected by every guest).
    #[serde(default)]
    pub unanswered: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    /// Deliveries / length of the send window.
    pub deliveries_per_sec: f64,
    /// Highest one-second count of deliveries.
    pub peak_deliveries_per_sec: u64,
    pub messages_per_sec: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Errors {
    pub total: u64,
    /// Count by kind: `open: guest_limit_reached`, `close: 1008 slow consumer`, ...
    pub by_kind: BTreeMap<String, u64>,
    /// Said plainly: the server refused guests because the conversation was full.
    pub guest_limit_reached: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerFigures {
    pub pid: u32,
    /// Before any guest connected.
    pub rss_baseline_kib: Option<u64>,
    /// When every guest had connected, before the first message.
    pub rss_connected_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
    /// (connected − baseline) / guests open then.
    pub rss_per_guest_bytes: Option<f64>,
    /// Over the send window, % of one core.
    pub cpu_mean_pct: Option<f64>,
    pub cpu_max_pct: Option<f64>,
}

/// The load generator's own process, to tell whose limit a run hit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadgenFigures {
    /// Over the send window, % of one core.
    pub cpu_mean_pct: Option<f64>,
    pub cpu_max_pct: Option<f64>,
    pub rss_peak_kib: Option<u64>,
    /// CPU of every other process on the machine over the send window, % of one core:
    /// work that competed with this run for the cores.
    #[serde(default)]
    pub others_cpu_mean_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GooseRequestRow {
    pub name: String,
    pub ok: u64,
    pub failed: u64,
    pub mean_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GooseFigures {
    /// goose's own HTML report, beside this file.
    pub report: String,
    pub users: u64,
    pub duration_secs: u64,
    pub requests: Vec<GooseRequestRow>,
}

/// Everything about one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub tool: String,
    pub version: String,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub command_line: Vec<String>,
    pub profile: Option<Profile>,
    pub plan: Plan,
    pub target: Target,
    pub environment: Environment,
    pub guests: GuestFigures,
    pub messages: MessageFigures,
    pub completeness: Completeness,
    pub latency: Latencies,
    pub throughput: Throughput,
    pub errors: Errors,
    pub server: Option<ServerFigures>,
    #[serde(default)]
    pub load_generator: Option<LoadgenFigures>,
    pub goose: Option<GooseFigures>,
    pub thresholds: Vec<Verdict>,
    /// Every threshold passed (true when there are none).
    pub passed: bool,
    /// Why the run lost deliveries (missing at the end of the drain, sends
    /// unanswered or refused); empty for a complete run. Without thresholds a
    /// lossy run is not a pass: its headline says `LOSSY` and the binary exits 3.
    /// A staged run is judged over its sustained steps only.
    #[serde(default)]
    pub lossy: Vec<String>,
    /// Of a staged run (`--step-rate`, `--stages`): the limit it found, one row per step.
    #[serde(default)]
    pub steps: Option<StepReport>,
    /// Of a run with `--churn` or `--reconnect-storm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnFigures>,
    /// Per node of the target (`--target URL1,URL2,...`, one entry for a single server): which
    /// share of the guests and talkers went where, and how complete each node's guests were.
    #[serde(default)]
    pub nodes: Vec<NodeShare>,
    /// Of a run with `--workers`: one entry per load worker (empty for one process).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerFigures>,
    /// Of a run with `--workers`: how the workers' clocks were aligned and the error bound of each latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockFigures>,
    pub series: Vec<SecondSample>,
    pub histograms: Histograms,
}

/// One load worker of a run with `--workers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerFigures {
    pub index: usize,
    pub host: String,
    pub pid: u32,
    /// Its share of the plan.
    pub guests_planned: u64,
    pub talkers_planned: u64,
    pub guests_opened: u64,
    /// Completeness of its guests (a lost worker's guests: everything expected counted missing).
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    /// Fan-out at its guests, ms.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Its process over the send window, % of one core, and its peak RSS.
    pub cpu_mean_pct: Option<f64>,
    pub rss_peak_kib: Option<u64>,
    /// Its clock: offset from the coordinator's used, its error bound, the NTP-style estimate and round trip, µs.
    pub clock_offset_us: i64,
    pub clock_bound_us: u64,
    pub clock_estimated_offset_us: i64,
    pub clock_rtt_us: u64,
    pub same_host: bool,
    /// `None` when it handed in its result; else why it was counted lost.
    pub lost: Option<String>,
}

/// How a run with `--workers` put every worker on one run clock.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClockFigures {
    /// In words: which clock and how latency is computed across processes.
    pub method: String,
    /// The largest error bound of any worker's clock, µs.
    pub max_worker_bound_us: u64,
    /// Error bound of fan-out and time-to-last-guest figures, µs: the talker's and the guest's
    /// worker may each be off by their bound, so twice the largest.
    pub fanout_bound_us: u64,
    /// Send to ack, connect, open and instrument delay are measured inside one process: exact.
    pub local_bound_us: u64,
    /// Seconds without a snapshot after which a worker was counted lost.
    pub liveness_secs: u64,
}

/// What the run knows besides the recorder's figures.
pub struct Context {
    pub started_at: String,
    pub profile: Option<Profile>,
    pub plan: Plan,
    pub target: Target,
    pub environment: Environment,
    pub server_pid: Option<u32>,
    /// Server RSS before any guest connected.
    pub rss_baseline_kib: Option<u64>,
    /// Guests whose `opened` came after the first message was due.
    pub opened_late: u64,
    pub goose: Option<GooseFigures>,
    /// The `--stop-when` line of a staged run.
    pub stop_rules: Vec<StopRule>,
    /// What the instrument delay probe measured (µs).
    pub instrument: Option<Histogram<u64>>,
}

impl Summary {
    pub fn build(ctx: Context, f: &Finished) -> Summary {
        let plan = &ctx.plan;
        let w = &plan.workload;
        let sched = &plan.schedule;
        let window = (sched.send_end - sched.send_start).max(1e-3);
        let in_window = |s: &&SecondSample| s.t > sched.send_start && s.t <= sched.send_end + 1.0;
        let server = ctx.server_pid.map(|pid| {
            let connected = f.series.iter().rfind(|s| s.t <= sched.send_start);
            let rss_connected_kib = connected.and_then(|s| s.server_rss_kib);
            let rss_per_guest_bytes = match (ctx.rss_baseline_kib, connected) {
                (Some(base), Some(s)) if s.guests_open > 0 => {
                    s.server_rss_kib.map(|now| (now as f64 - base as f64) * 1024.0 / s.guests_open as f64)
                }
                _ => None,
            };
            let cpu: Vec<f64> = f.series.iter().filter(in_window).filter_map(|s| s.server_cpu_pct).collect();
            ServerFigures {
                pid,
                rss_baseline_kib: ctx.rss_baseline_kib,
                rss_connected_kib,
                rss_peak_kib: f.series.iter().filter_map(|s| s.server_rss_kib).max(),
                rss_per_guest_bytes,
                cpu_mean_pct: (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64),
                cpu_max_pct: f.series.iter().filter_map(|s| s.server_cpu_pct).reduce(f64::max),
            }
        });
        let total_errors = f.errors.values().sum();
        let steps = plan.staged().then(|| {
            let t = &plan.timeline;
            let windows: Vec<(f64, f64)> = (0..t.stages().len()).map(|i| t.window(i)).collect();
            let stop_s = f.send_stop.map(|stop| stop as f64 / 1e6 - sched.send_start);
            StepReport::build(&ctx.stop_rules, t.stages(), &windows, &f.steps, f.stopped.clone(), stop_s)
        });
        let churn = ChurnFigures::build(plan, window, f);
        let mut lossy = lossy_reasons(f, steps.as_ref());
        if let Some(ch) = &churn {
            lossy.extend(rejoin_reasons(ch));
        }
        let own_cpu: Vec<f64> = f.series.iter().filter(in_window).filter_map(|s| s.loadgen_cpu_pct).collect();
        let others: Vec<f64> = f
            .series
            .iter()
            .filter(in_window)
            .filter_map(|s| Some(s.machine_cpu_pct? - s.loadgen_cpu_pct? - s.server_cpu_pct.unwrap_or(0.0)))
            .map(|v| v.max(0.0))
            .collect();
        let load_generator = Some(LoadgenFigures {
            others_cpu_mean_pct: (!others.is_empty()).then(|| others.iter().sum::<f64>() / others.len() as f64),
            cpu_mean_pct: (!own_cpu.is_empty()).then(|| own_cpu.iter().sum::<f64>() / own_cpu.len() as f64),
            cpu_max_pct: f.series.iter().filter_map(|s| s.loadgen_cpu_pct).reduce(f64::max),
            rss_peak_kib: f.series.iter().filter_map(|s| s.loadgen_rss_kib).max(),
        });
        Summary {
            tool: "supergroup-load".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: ctx.started_at,
            command_line: std::env::args().collect(),
            profile: ctx.profile,
            target: ctx.target,
            environment: ctx.environment,
            guests: GuestFigures {
                requested: w.guests as u64,
                opened: f.guests_opened,
                connect_failed: f.guest_connect_failed,
                open_failed: f.guest_open_failed,
                closed_by_server: f.guests_closed_by_server,
                opened_late: ctx.opened_late,
                peak_open: f.series.iter().map(|s| s.guests_open).max().unwrap_or(0),
            },
            messages: MessageFigures {
                planned: w.talkers as u64 * w.messages_per_talker(),
                sent: f.sent,
                acked: f.acked,
                failed: f.send_failed,
                unanswered: f.unanswered,
            },
            completeness: f.completeness.clone(),
            latency: Latencies {
                fanout: Stats::of(&f.fanout),
                time_to_last: Stats::of(&f.time_to_last),
                connect: Stats::of(&f.connect),
                open: Stats::of(&f.open),
                ack: Stats::of(&f.ack),
                instrument: ctx.instrument.as_ref().map(Stats::of).unwrap_or_default(),
            },
            throughput: Throughput {
                deliveries_per_sec: f.completeness.delivered as f64 / window,
                peak_deliveries_per_sec: f.series.iter().map(|s| s.deliveries).max().unwrap_or(0),
                messages_per_sec: f.sent as f64 / window,
            },
            errors: Errors {
                total: total_errors,
                guest_limit_reached: f.errors.keys().any(|k| k.contains("guest_limit_reached")),
                by_kind: f.errors.clone(),
            },
            server,
            load_generator,
            goose: ctx.goose,
            thresholds: Vec::new(),
            passed: true,
            lossy,
            steps,
            churn,
            nodes: f.nodes.clone(),
            workers: Vec::new(),
            clock: None,
            series: f.series.clone(),
            histograms: Histograms {
                encoding: "HdrHistogram V2 + deflate, base64; values in microseconds".into(),
                fanout: encode_histogram(&f.fanout),
                time_to_last: encode_histogram(&f.time_to_last),
                connect: encode_histogram(&f.connect),
                open: encode_histogram(&f.open),
                ack: encode_histogram(&f.ack),
                steps: f.steps.iter().map(|s| encode_histogram(&s.histogram)).collect(),
                instrument: ctx.instrument.as_ref().map(encode_histogram).unwrap_or_default(),
                reconnect: if f.reconnect.is_empty() { String::new() } else { encode_histogram(&f.reconnect) },
                reopen: if f.reopen.is_empty() { String::new() } else { encode_histogram(&f.reopen) },
                fanout_returned: if f.fanout_returned.is_empty() {
                    String::new()
                } else {
                    encode_histogram(&f.fanout_returned)
                },
            },
            plan: ctx.plan,
        }
    }

    /// Lossy and judged by no threshold: the run must not look green.
    pub fn lossy_unjudged(&self) -> bool {
        self.thresholds.is_empty() && !self.lossy.is_empty()
    }

    /// A metric by its threshold name, in the metric's base unit.
    pub fn metric(&self, name: &str) -> Option<f64> {
        if let Some((base, stat)) = name.split_once('.') {
            let l = &self.latency;
            let stats = match base {
                "fanout" => Some(&l.fanout),
                "time_to_last" => Some(&l.time_to_last),
                "connect" => Some(&l.connect),
                "open" => Some(&l.open),
                "ack" => Some(&l.ack),
                "instrument" => Some(&l.instrument),
                "reconnect" => self.churn.as_ref().map(|c| &c.reconnect),
                "reopen" => self.churn.as_ref().map(|c| &c.reopen),
                _ => None,
            };
            if let Some(s) = stats {
                return s.get(stat);
            }
        }
        let churn = self.churn.clone().unwrap_or_default();
        let c = &self.completeness;
        let server = self.server.as_ref();
        Some(match name {
            "loss" => c.missing as f64,
            "loss_ratio" => c.loss_ratio,
            "duplicates" => c.duplicates as f64,
            "out_of_order" => c.out_of_order as f64,
            "unexpected" => c.unexpected as f64,
            "delivered" => c.delivered as f64,
            "expected" => c.expected as f64,
            "errors" => self.errors.total as f64,
            "guests_opened" => self.guests.opened as f64,
            "guests_failed" => (self.guests.connect_failed + self.guests.open_failed) as f64,
            "guests_closed_by_server" => self.guests.closed_by_server as f64,
            "sent" => self.messages.sent as f64,
            "acked" => self.messages.acked as f64,
            "deliveries_per_sec" => self.throughput.deliveries_per_sec,
            "rejoined" => churn.counts.rejoined as f64,
            "rejoin_failed" => churn.rejoin_failures() as f64,
            "rejoin_gave_up" => churn.counts.rejoin_gave_up as f64,
            "server.rss_per_guest" => server?.rss_per_guest_bytes?,
            "server.rss_peak" => server?.rss_peak_kib? as f64 * 1024.0,
            "server.cpu_mean" => server?.cpu_mean_pct?,
            "server.cpu_max" => server?.cpu_max_pct?,
            _ => return None,
        })
    }
}

/// Rejoins that failed make a run not green, whatever its deliveries did.
fn rejoin_reasons(ch: &ChurnFigures) -> Vec<String> {
    let mut why = Vec::new();
    if ch.counts.reopen_refused > 0 {
        let codes: Vec<String> = ch.refused_by_code.iter().map(|(k, v)| format!("{k} {}", count(*v))).collect();
        why.push(format!("{} rejoin opens refused ({})", count(ch.counts.reopen_refused), codes.join(", ")));
    }
    if ch.counts.reconnect_failed > 0 {
        why.push(format!("{} rejoin connects or opens failed", count(ch.counts.reconnect_failed)));
    }
    if ch.counts.rejoin_gave_up > 0 {
        why.push(format!("{} guests gave up rejoining", count(ch.counts.rejoin_gave_up)));
    }
    why
}

/// Why a run lost deliveries; a staged run only over the steps up to its highest sustained one
/// (what it lost past its limit is how the limit was found).
fn lossy_reasons(f: &Finished, steps: Option<&StepReport>) -> Vec<String> {
    let mut why = Vec::new();
    match steps {
        Some(r) => {
            let upto = r.highest_sustained.map(|i| i + 1).unwrap_or(0);
            let (missing, expected) = r.steps[..upto].iter().fold((0, 0), |(m, e), s| (m + s.missing, e + s.expected));
            if missing > 0 {
                why.push(format!(
                    "{} of {} deliveries of the sustained steps missing at the end of the drain",
                    count(missing),
                    count(expected)
                ));
            }
        }
        None => {
            let c = &f.completeness;
            if c.missing > 0 {
                why.push(format!(
                    "{} of {} deliveries missing at the end of the drain",
                    count(c.missing),
                    count(c.expected)
                ));
            }
            if f.unanswered > 0 {
                why.push(format!("{} sends unanswered", count(f.unanswered)));
            }
            if f.send_failed > 0 {
                why.push(format!("{} sends failed", count(f.send_failed)));
            }
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_round_trip_through_base64() {
        let mut h = crate::recorder::histogram();
        for v in [1, 150, 2_000, 2_000, 75_000] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        let empty = decode_histogram(&encode_histogram(&crate::recorder::histogram())).unwrap();
        assert!(empty.is_empty());
    }

    /// A plan of `workload` against a server that is never reached.
    fn bare_plan(workload: crate::plan::Workload) -> Plan {
        use crate::plan::Schedule;
        let schedule = Schedule::new(&workload, 1.0, 1.0);
        Plan::new(workload, Vec::new(), schedule, "t".into(), "a".into(), "s".into(), "http://127.0.0.1:1".into())
    }

    /// A run's context with nothing but its plan: no server, no goose, no rules.
    fn bare_context(plan: Plan) -> Context {
        let target = Target {
            base_url: plan.base_url.clone(),
            local_server: false,
            app_id: "a".into(),
            plan: None,
            guest_limit: None,
            participant_limit: None,
        };
        Context {
            started_at: "now".into(),
            profile: None,
            plan,
            target,
            environment: Environment::detect(None),
            server_pid: None,
            rss_baseline_kib: None,
            opened_late: 0,
            goose: None,
            stop_rules: Vec::new(),
            instrument: None,
        }
    }

    /// Churn figures from the recorder: refusals by code, unfinished rejoins, and a refused
    /// rejoin making the run not green (with the reasons in the verdict line).
    #[test]
    fn refused_rejoins_are_reported_by_code_and_make_the_run_lossy() {
        use crate::plan::Workload;
        use crate::recorder::{GuestOutcome, Interval, IntervalEnd};
        use std::sync::atomic::Ordering::Relaxed;
        let workload = Workload { guests: 2, readers: 0, churn: 0.5, ..Workload::DEFAULT };
        let plan = bare_plan(workload);
        let rec = crate::recorder::Recorder::new(crate::clock::Clock::start_now(), plan.clone());
        let c = rec.counters();
        c.leaves.store(3, Relaxed);
        c.rejoined.store(1, Relaxed);
        c.reopen_refused.store(5, Relaxed);
        c.rejoin_gave_up.store(1, Relaxed);
        for _ in 0..5 {
            rec.error("rejoin open: guest_limit_reached");
        }
        rec.error("rejoin open: no reply within 10s");
        rec.rejoin_times(std::time::Duration::from_millis(3), std::time::Duration::from_millis(2));
        let tracker = || crate::completeness::DeliveryTracker::new(1, 100);
        let guest = |intervals: Vec<Interval>, open_at_end| GuestOutcome {
            node: 0,
            conversation: 0,
            opened_at: 0,
            intervals,
            closed_by_server_at: None,
            open_at_end,
            tracker: tracker(),
        };
        rec.guest_finished(guest(
            vec![
                Interval { opened_at: 0, end: IntervalEnd::Left { at: 10 } },
                Interval { opened_at: 20, end: IntervalEnd::Open },
            ],
            true,
        ));
        rec.guest_finished(guest(vec![Interval { opened_at: 0, end: IntervalEnd::Left { at: 10 } }], false));
        let f = rec.finish();
        let ctx = bare_context(plan);
        let s = Summary::build(ctx, &f);
        let ch = s.churn.as_ref().expect("a churn run has churn figures");
        // 50%/s of 2 guests over the 10 s window: turns at 0.5 s, 1.5 s, ... 9.5 s.
        assert_eq!(ch.leaves_planned, 10);
        assert_eq!(ch.refused_by_code.get("guest_limit_reached"), Some(&5));
        assert_eq!(ch.refused_by_code.len(), 1, "only error codes, not other failures: {:?}", ch.refused_by_code);
        assert_eq!(ch.rejoins_unfinished, 1, "3 leaves: 1 rejoined, 1 gave up, 1 cut short");
        assert_eq!((ch.counts.came_back.guests, ch.counts.gone.guests, ch.counts.stayed.guests), (1, 1, 0));
        assert_eq!((ch.reconnect.count, ch.reopen.count), (1, 1));
        assert_eq!(s.metric("rejoin_failed"), Some(5.0));
        assert!((s.metric("reconnect.max").unwrap() - 3.0).abs() < 0.01, "3 ms within HDR's 3 digits");
        assert!(s.lossy_unjudged());
        let headline = crate::report::tables::headline(&s);
        assert!(
            headline.starts_with("LOSSY (5 rejoin opens refused (guest_limit_reached 5); 1 guests gave up"),
            "{headline}"
        );
        assert!(headline.ends_with("rejoined 1 of 3 (refused 5, failed 0, gave up 1)"), "{headline}");
    }

    #[test]
    fn every_threshold_metric_is_looked_up() {
        use crate::plan::Workload;
        let workload = Workload { readers: 0, ..Workload::DEFAULT };
        let plan = bare_plan(workload);
        let rec = crate::recorder::Recorder::new(crate::clock::Clock::start_now(), plan.clone());
        rec.message_sent(0, 0, 10, 10);
        rec.message_acked(0, 0, 20).unwrap();
        rec.delivery(0, 0, 0, 10, 30);
        rec.connect_time(std::time::Duration::from_millis(1));
        rec.open_time(std::time::Duration::from_millis(1));
        let f = rec.finish();
        let ctx = bare_context(plan);
        let summary = Summary::build(ctx, &f);
        for (name, _, _) in crate::thresholds::METRICS {
            if !name.starts_with("server.") {
                assert!(summary.metric(name).is_some(), "{name}");
            }
        }
        for stat in ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"] {
            for base in ["fanout", "time_to_last", "connect", "open", "ack"] {
                assert!(summary.metric(&format!("{base}.{stat}")).is_some(), "{base}.{stat}");
            }
        }
        assert_eq!(summary.metric("fanout.max"), Some(0.02));
        assert_eq!(summary.metric("server.cpu_max"), None, "no server was sampled");
        let json = serde_json::to_string(&summary).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back.latency.fanout.count, 1);
    }
}
