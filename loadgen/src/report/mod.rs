//! The report of a run, in its own folder: `summary.json` (every figure, see
//! [`summary::Summary`]), `report.md`, a self-contained `report.html` with the
//! charts inline, each chart also as `charts/*.svg`, and goose's own HTML
//! report (`goose-report.html`, written by goose itself). Markdown and HTML
//! are rendered from the same tables ([`tables`]), so they never disagree.

pub mod html;
pub mod markdown;
pub mod summary;
pub mod tables;

use crate::charts::{self, Line};
use std::path::{Path, PathBuf};
use summary::{Summary, decode_histogram};

/// One chart of a report.
pub struct Chart {
    /// File name under `charts/`.
    pub file: String,
    pub title: String,
    pub svg: String,
}

/// The charts of a run.
pub fn charts_of(s: &Summary) -> anyhow::Result<Vec<Chart>> {
    let fanout = decode_histogram(&s.histograms.fanout)?;
    let last = decode_histogram(&s.histograms.time_to_last)?;
    let ack = decode_histogram(&s.histograms.ack)?;
    let window = (s.plan.schedule.send_start, s.plan.schedule.send_end);
    let series = &s.series;
    let x_end = series.last().map(|x| x.t).unwrap_or(0.0);
    let mut out = vec![
        Chart {
            file: "latency-percentiles.svg".into(),
            title: "Latency by percentile".into(),
            svg: charts::percentile_distribution(
                "Latency by percentile (from intended send time)",
                &[
                    ("fan-out, per delivery", &fanout),
                    ("time to last guest, per message", &last),
                    ("send to ack", &ack),
                ],
            ),
        },
        Chart {
            file: "latency-over-time.svg".into(),
            title: "Fan-out latency over time".into(),
            svg: charts::over_time(
                "Fan-out latency per second",
                "latency (ms)",
                &[
                    Line { label: "p50", points: charts::series_points(series, |x| x.p50_ms) },
                    Line { label: "p99", points: charts::series_points(series, |x| x.p99_ms) },
                    Line { label: "max", points: charts::series_points(series, |x| x.max_ms) },
                ],
                window,
                x_end,
            ),
        },
        Chart {
            file: "guests-over-time.svg".into(),
            title: "Guests with the conversation open".into(),
            svg: charts::over_time(
                "Guests with the conversation open",
                "guests",
                &[Line { label: "open", points: charts::series_points(series, |x| Some(x.guests_open as f64)) }],
                window,
                x_end,
            ),
        },
        Chart {
            file: "deliveries-per-second.svg".into(),
            title: "Deliveries per second".into(),
            svg: charts::over_time(
                "Deliveries per second",
                "deliveries / s",
                &[Line { label: "deliveries", points: charts::series_points(series, |x| Some(x.deliveries as f64)) }],
                window,
                x_end,
            ),
        },
    ];
    if let Some(r) = &s.steps {
        let points: Vec<charts::StepPoint> = r
            .steps
            .iter()
            .filter(|st| st.status != crate::steps::StepStatus::NotRun)
            .map(|st| charts::StepPoint {
                offered_per_sec: st.offered_per_sec,
                delivered_per_sec: st.delivered_per_sec,
                p50_ms: st.latency.p50_ms,
                p99_ms: st.latency.p99_ms,
            })
            .collect();
        out.insert(
            1,
            Chart {
                file: "steps.svg".into(),
                title: "Steps: deliveries/s offered vs delivered, p99 per step".into(),
                svg: charts::steps("Deliveries/s offered vs delivered, fan-out p50/p99 per step", &points),
            },
        );
    }
    let mut cpu = vec![
        Line { label: "load generator", points: charts::series_points(series, |x| x.loadgen_cpu_pct) },
        Line { label: "whole machine", points: charts::series_points(series, |x| x.machine_cpu_pct) },
    ];
    let mut rss = vec![Line {
        label: "load generator",
        points: charts::series_points(series, |x| x.loadgen_rss_kib.map(|k| k as f64 / 1024.0)),
    }];
    if series.iter().any(|x| x.server_rss_kib.is_some()) {
        cpu.insert(0, Line { label: "server", points: charts::series_points(series, |x| x.server_cpu_pct) });
        rss.insert(
            0,
            Line {
                label: "server",
                points: charts::series_points(series, |x| x.server_rss_kib.map(|k| k as f64 / 1024.0)),
            },
        );
    }
    out.push(Chart {
        file: "cpu.svg".into(),
        title: "CPU".into(),
        svg: charts::over_time("CPU (% of one core)", "CPU %", &cpu, window, x_end),
    });
    out.push(Chart {
        file: "memory.svg".into(),
        title: "Resident memory".into(),
        svg: charts::over_time("Resident memory (MiB)", "RSS (MiB)", &rss, window, x_end),
    });
    Ok(out)
}

/// Where the report files went.
#[derive(Debug, Clone)]
pub struct Written {
    pub dir: PathBuf,
    pub summary: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub charts: Vec<PathBuf>,
}

/// Writes summary.json, report.md, report.html and charts/*.svg into `dir`.
pub fn write_all(dir: &Path, s: &Summary) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir.join("charts"))?;
    let summary = dir.join("summary.json");
    std::fs::write(&summary, serde_json::to_vec_pretty(s)?)?;
    let charts = charts_of(s)?;
    let mut chart_paths = Vec::new();
    for c in &charts {
        let p = dir.join("charts").join(&c.file);
        std::fs::write(&p, &c.svg)?;
        chart_paths.push(p);
    }
    let tables = tables::of(s);
    let markdown = dir.join("report.md");
    std::fs::write(&markdown, markdown::render(s, &tables, &charts))?;
    let html = dir.join("report.html");
    std::fs::write(&html, html::render(s, &tables, &charts))?;
    Ok(Written { dir: dir.to_path_buf(), summary, markdown, html, charts: chart_paths })
}
