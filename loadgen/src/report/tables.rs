//! The tables of a report, built once from a [`Summary`] and rendered as
//! Markdown or HTML. Numbers are formatted here, in one place.

use super::summary::{ChurnFigures, Stats, Summary};
use crate::steps::{StepReport, StepStatus};

/// A titled table: a header row and rows of cells.
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

pub fn ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v < 1.0 => format!("{v:.3} ms"),
        Some(v) if v < 100.0 => format!("{v:.2} ms"),
        Some(v) => format!("{v:.0} ms"),
    }
}

/// An integer with thousands separators.
pub fn count(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

fn kv(title: &str, rows: Vec<(&str, String)>) -> Table {
    Table {
        title: title.into(),
        header: row(&["", ""]),
        rows: rows.into_iter().map(|(k, v)| vec![k.to_string(), v]).collect(),
    }
}

fn latency_row(name: &str, s: &Stats) -> Vec<String> {
    vec![
        name.into(),
        count(s.count),
        ms(s.p50_ms),
        ms(s.p90_ms),
        ms(s.p99_ms),
        ms(s.p999_ms),
        ms(s.max_ms),
        ms(s.mean_ms),
    ]
}

/// Every table of the report, in order.
pub fn of(s: &Summary) -> Vec<Table> {
    let w = &s.plan.workload;
    let sched = &s.plan.schedule;
    let c = &s.completeness;
    let mut tables = vec![
        kv(
            "Workload",
            vec![
                (
                    "target",
                    format!(
                        "{}{}",
                        s.target.base_url,
                        if s.target.local_server { " (local reference server)" } else { "" }
                    ),
                ),
                ("profile", s.profile.map(|p| format!("{p:?}").to_lowercase()).unwrap_or_else(|| "none".into())),
                ("guests", count(w.guests as u64)),
                ("conversations", count(w.conversations as u64)),
                ("talkers", format!("{} × {} msg/s, {} bytes each", w.talkers, w.rate, w.message_bytes)),
                ("REST readers", count(w.readers as u64)),
                ("ramp", format!("{} connections/s (until {:.2} s)", w.ramp, sched.ramp_end)),
                (
                    "send window",
                    format!(
                        "{:.1} s to {:.1} s, drain until {:.1} s",
                        sched.send_start, sched.send_end, sched.drain_end
                    ),
                ),
                (
                    "server limits",
                    format!(
                        "{} guests, {} participants per conversation",
                        s.target.guest_limit.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
                        s.target.participant_limit.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
                    ),
                ),
            ],
        ),
        Table {
            title: match &s.clock {
                None => "Latency (from each message's intended send time)".into(),
                Some(c) => format!(
                    "Latency (from each message's intended send time; across load workers fan-out and time to last guest \
                     are within ±{:.3} ms, the rest are measured inside one process: exact)",
                    c.fanout_bound_us as f64 / 1000.0
                ),
            },
            header: row(&["", "count", "p50", "p90", "p99", "p99.9", "max", "mean"]),
            rows: vec![
                latency_row("fan-out (per delivery)", &s.latency.fanout),
                latency_row("time to last guest (per message)", &s.latency.time_to_last),
                latency_row("send to ack", &s.latency.ack),
                latency_row("connect", &s.latency.connect),
                latency_row("open → opened", &s.latency.open),
                latency_row("instrument delay (frame readable → stamped, probe)", &s.latency.instrument),
            ],
        },
    ];
    if let Some(ch) = &s.churn {
        let latency = &mut tables[1].rows;
        latency.insert(1, latency_row("  fan-out on first connections", &ch.fanout_first));
        latency.insert(2, latency_row("  fan-out on re-opened connections", &ch.fanout_returned));
        latency.push(latency_row("reconnect (rejoins)", &ch.reconnect));
        latency.push(latency_row("re-open → opened (rejoins)", &ch.reopen));
        tables.push(churn_table(ch));
        tables.push(Table {
            title: "Completeness by group (a guest is expected only what was sent while it had the conversation open)"
                .into(),
            header: row(&["guests", "count", "expected", "delivered", "missing"]),
            rows: ch
                .groups()
                .iter()
                .map(|(name, g)| {
                    vec![name.to_string(), count(g.guests), count(g.expected), count(g.delivered), count(g.missing)]
                })
                .collect(),
        });
    }
    if let Some(r) = &s.steps {
        tables.push(steps_table(r));
    }
    tables.extend([
        kv(
            "Completeness",
            vec![
                ("expected deliveries", count(c.expected)),
                ("delivered", count(c.delivered)),
                ("missing (loss)", format!("{} ({:.4}%)", count(c.missing), c.loss_ratio * 100.0)),
                ("  of which after the server closed the guest", count(c.missing_after_server_close)),
                ("duplicates", count(c.duplicates)),
                ("out of order", count(c.out_of_order)),
                ("unexpected", count(c.unexpected)),
                ("guests complete", format!("{} of {}", count(c.guests_complete), count(c.guests))),
            ],
        ),
        kv(
            "Throughput and guests",
            vec![
                ("deliveries/s (mean over the send window)", format!("{:.0}", s.throughput.deliveries_per_sec)),
                ("deliveries/s (peak second)", count(s.throughput.peak_deliveries_per_sec)),
                (
                    "messages sent / acked / planned",
                    format!("{} / {} / {}", count(s.messages.sent), count(s.messages.acked), count(s.messages.planned)),
                ),
                ("guests opened / requested", format!("{} / {}", count(s.guests.opened), count(s.guests.requested))),
                ("peak guests open at once", count(s.guests.peak_open)),
                ("guests failed to connect / open", format!("{} / {}", s.guests.connect_failed, s.guests.open_failed)),
                ("guests opened after the first message", count(s.guests.opened_late)),
                ("guests closed by the server", count(s.guests.closed_by_server)),
            ],
        ),
    ]);
    if s.nodes.len() > 1 {
        tables.push(Table {
            title: "Nodes of the target (guests and talkers round robin)".into(),
            header: row(&["node", "guests planned", "guests opened", "talkers", "expected", "delivered", "missing"]),
            rows: s
                .nodes
                .iter()
                .map(|n| {
                    vec![
                        n.url.clone(),
                        count(n.guests_planned),
                        count(n.guests_opened),
                        count(n.talkers_planned),
                        count(n.expected),
                        count(n.delivered),
                        count(n.missing),
                    ]
                })
                .collect(),
        });
    }
    if !s.workers.is_empty() {
        let bound = s.clock.as_ref().map(|c| c.fanout_bound_us as f64 / 1000.0).unwrap_or(0.0);
        tables.push(Table {
            title: format!(
                "Load workers (fan-out figures within ±{bound:.3} ms of the truth: {})",
                s.clock.as_ref().map(|c| c.method.as_str()).unwrap_or("")
            ),
            header: row(&[
                "worker",
                "host / pid",
                "guests opened / planned",
                "talkers",
                "expected",
                "delivered",
                "missing",
                "fan-out p50",
                "p99",
                "CPU mean",
                "RSS peak",
                "clock offset ± bound",
                "status",
            ]),
            rows: s
                .workers
                .iter()
                .map(|w| {
                    vec![
                        w.index.to_string(),
                        format!("{} / {}", w.host, w.pid),
                        format!("{} / {}", count(w.guests_opened), count(w.guests_planned)),
                        count(w.talkers_planned),
                        count(w.expected),
                        count(w.delivered),
                        count(w.missing),
                        ms(w.p50_ms),
                        ms(w.p99_ms),
                        w.cpu_mean_pct.map(|c| format!("{c:.0}%")).unwrap_or_else(|| "–".into()),
                        w.rss_peak_kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "–".into()),
                        format!(
                            "{:+.3} ms ± {:.3} ms{}",
                            w.clock_offset_us as f64 / 1000.0,
                            w.clock_bound_us as f64 / 1000.0,
                            if w.same_host { " (same host)" } else { "" }
                        ),
                        match &w.lost {
                            None => "ok".into(),
                            Some(why) => format!("LOST: {why}"),
                        },
                    ]
                })
                .collect(),
        });
    }
    if let Some(srv) = &s.server {
        let kib = |v: Option<u64>| v.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "–".into());
        tables.push(kv(
            "Server process",
            vec![
                ("pid", srv.pid.to_string()),
                ("RSS before guests", kib(srv.rss_baseline_kib)),
                ("RSS with every guest connected", kib(srv.rss_connected_kib)),
                ("RSS peak", kib(srv.rss_peak_kib)),
                (
                    "RSS per idle guest",
                    srv.rss_per_guest_bytes.map(|b| format!("{:.1} KiB", b / 1024.0)).unwrap_or_else(|| "–".into()),
                ),
                (
                    "CPU mean over the send window",
                    srv.cpu_mean_pct.map(|c| format!("{c:.0}% of one core")).unwrap_or_else(|| "–".into()),
                ),
                (
                    "CPU highest second",
                    srv.cpu_max_pct.map(|c| format!("{c:.0}% of one core")).unwrap_or_else(|| "–".into()),
                ),
            ],
        ));
    }
    if let Some(lg) = &s.load_generator {
        tables.push(kv(
            "Load generator process",
            vec![
                (
                    "CPU mean over the send window",
                    lg.cpu_mean_pct.map(|c| format!("{c:.0}% of one core")).unwrap_or_else(|| "–".into()),
                ),
                (
                    "CPU highest second",
                    lg.cpu_max_pct.map(|c| format!("{c:.0}% of one core")).unwrap_or_else(|| "–".into()),
                ),
                (
                    "RSS peak",
                    lg.rss_peak_kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "–".into()),
                ),
            ],
        ));
    }
    let mut errors: Vec<Vec<String>> = s.errors.by_kind.iter().map(|(k, v)| vec![k.clone(), count(*v)]).collect();
    if errors.is_empty() {
        errors.push(row(&["none", "0"]));
    }
    tables.push(Table { title: "Errors".into(), header: row(&["kind", "count"]), rows: errors });
    if !s.thresholds.is_empty() {
        tables.push(Table {
            title: "Thresholds".into(),
            header: row(&["rule", "actual", "result"]),
            rows: s
                .thresholds
                .iter()
                .map(|v| {
                    vec![
                        v.expr.clone(),
                        v.actual.map(|a| format!("{a:.3}")).unwrap_or_else(|| "no value".into()),
                        if v.passed { "PASS".into() } else { "FAIL".into() },
                    ]
                })
                .collect(),
        });
    }
    if let Some(g) = &s.goose {
        tables.push(Table {
            title: format!("goose requests ({} users, {} s; full report: {})", g.users, g.duration_secs, g.report),
            header: row(&["request", "ok", "failed", "mean", "max"]),
            rows: g
                .requests
                .iter()
                .map(|r| vec![r.name.clone(), count(r.ok), count(r.failed), ms(r.mean_ms), ms(r.max_ms)])
                .collect(),
        });
    }
    let env = &s.environment;
    tables.push(kv(
        "Environment",
        vec![
            ("cpus", env.cpus.to_string()),
            ("kernel", env.kernel.clone().unwrap_or_else(|| "?".into())),
            ("os / arch", format!("{} / {}", env.os, env.arch)),
            (
                "memory",
                env.memory_total_kib.map(|k| format!("{:.1} GiB", k as f64 / 1048576.0)).unwrap_or_else(|| "?".into()),
            ),
            (
                "open files (soft / hard)",
                env.open_files.map(|l| format!("{} / {}", l.soft, l.hard)).unwrap_or_else(|| "?".into()),
            ),
            ("started", s.started_at.clone()),
            ("command", s.command_line.join(" ")),
        ],
    ));
    tables
}

/// What churn and the reconnect storm planned and did, and the guest slots held at the end.
fn churn_table(ch: &ChurnFigures) -> Table {
    let c = &ch.counts;
    let refused = if ch.refused_by_code.is_empty() {
        count(c.reopen_refused)
    } else {
        let codes: Vec<String> = ch.refused_by_code.iter().map(|(k, v)| format!("{k} {}", count(*v))).collect();
        format!("{} ({})", count(c.reopen_refused), codes.join(", "))
    };
    let mut rows = vec![(
        "churn",
        if ch.churn_per_sec > 0.0 {
            format!("{}%/s of the guests, {} ms away each time", ch.churn_per_sec * 100.0, ch.pause_ms)
        } else {
            "none".into()
        },
    )];
    if ch.churn_per_sec > 0.0 {
        rows.push((
            "leaves planned / taken / skipped (guest away or gone)",
            format!("{} / {} / {}", count(ch.leaves_planned), count(c.leaves), count(c.leaves_skipped)),
        ));
    }
    rows.push((
        "reconnect storm",
        match ch.storm_at_s {
            Some(at) => format!("{at} s into the send window: {} guests dropped their socket", count(c.drops)),
            None => "none".into(),
        },
    ));
    rows.extend([
        ("rejoined (reconnected and re-opened)", format!("{} of {}", count(c.rejoined), count(c.leaves + c.drops))),
        ("rejoin opens refused", refused),
        ("rejoin connects or opens failed otherwise", count(c.reconnect_failed)),
        ("guests that gave up rejoining", count(c.rejoin_gave_up)),
        ("rejoins cut short by the end of the run", count(ch.rejoins_unfinished)),
        ("guests with the conversation open at the end (guest slots held)", count(c.open_at_end)),
    ]);
    kv("Churn and reconnects", rows)
}

/// The step table of a staged run: offered vs delivered and latency per step, and the limit.
fn steps_table(r: &StepReport) -> Table {
    let rows = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let status = match st.status {
                StepStatus::Full => "full",
                StepStatus::CutShort => "cut short",
                StepStatus::NotRun => "not run",
            };
            let line = if r.highest_sustained == Some(i) {
                "highest sustained".to_string()
            } else if st.crossed.is_empty() {
                if st.status == StepStatus::NotRun { "–".into() } else { "inside".into() }
            } else {
                format!("crossed: {}", st.crossed.join(", "))
            };
            vec![
                st.step.to_string(),
                st.stage.rate_label(),
                format!("{:.1}–{:.1} s", st.start_s, st.end_s),
                status.into(),
                count(st.messages_sent),
                format!("{:.0}", st.offered_per_sec),
                format!("{:.0}", st.delivered_per_sec),
                count(st.missing),
                ms(st.latency.p50_ms),
                ms(st.latency.p99_ms),
                ms(st.latency.max_ms),
                line,
            ]
        })
        .collect();
    Table {
        title: format!("Steps (stop when {}): {}", r.stop_when.join(" or "), r.verdict()),
        header: row(&[
            "step",
            "msg/s per talker",
            "window",
            "ran",
            "messages",
            "offered deliveries/s",
            "delivered deliveries/s",
            "missing",
            "fan-out p50",
            "p99",
            "max",
            "line",
        ]),
        rows,
    }
}

/// The one-line verdict of a run.
pub fn headline(s: &Summary) -> String {
    let verdict = if s.lossy_unjudged() {
        format!("LOSSY ({})", s.lossy.join("; "))
    } else if s.thresholds.is_empty() {
        "no thresholds".to_string()
    } else if s.passed {
        format!("PASS ({} thresholds)", s.thresholds.len())
    } else {
        format!(
            "FAIL ({} of {} thresholds failed)",
            s.thresholds.iter().filter(|v| !v.passed).count(),
            s.thresholds.len()
        )
    };
    let rejoins = match &s.churn {
        None => String::new(),
        Some(ch) => format!(
            ", rejoined {} of {} (refused {}, failed {}, gave up {})",
            count(ch.counts.rejoined),
            count(ch.counts.leaves + ch.counts.drops),
            count(ch.counts.reopen_refused),
            count(ch.counts.reconnect_failed),
            count(ch.counts.rejoin_gave_up)
        ),
    };
    format!(
        "{verdict}: {} guests, fan-out p50 {} p99 {} max {} (instrument delay p50 {} p99 {}), {:.0} deliveries/s, loss {}, errors {}{rejoins}",
        count(s.guests.opened),
        ms(s.latency.fanout.p50_ms),
        ms(s.latency.fanout.p99_ms),
        ms(s.latency.fanout.max_ms),
        ms(s.latency.instrument.p50_ms),
        ms(s.latency.instrument.p99_ms),
        s.throughput.deliveries_per_sec,
        count(s.completeness.missing),
        count(s.errors.total)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_numbers() {
        assert_eq!(super::count(1234567), "1,234,567");
        assert_eq!(super::count(12), "12");
        assert_eq!(super::ms(Some(0.1234)), "0.123 ms");
        assert_eq!(super::ms(Some(12.345)), "12.35 ms");
        assert_eq!(super::ms(None), "–");
    }
}
