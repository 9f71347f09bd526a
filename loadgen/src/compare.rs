//! `supergroup-load compare A/summary.json B/summary.json`: the key figures of
//! two runs side by side, with the change in percent, and a regression flag
//! where B is worse than A by more than `--tolerance` percent (or where A
//! had none of something bad, such as loss, and B has some). Writes
//! `compare.md`, a self-contained `compare.html` and an overlay of both
//! fan-out percentile distributions (`compare-percentiles.svg`). The command
//! exits non-zero when it flags a regression, so CI can gate on it.

use crate::charts;
use crate::cli::CompareArgs;
use crate::report::summary::{Summary, decode_histogram};
use crate::report::tables::count;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Which direction is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// One compared figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: &'static str,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// (b − a) / a in percent, when a is not zero.
    pub change_pct: Option<f64>,
    pub regression: bool,
}

/// The figures compared: name, threshold metric, which way is better.
const FIGURES: &[(&str, &str, Better)] = &[
    ("fan-out p50 (ms)", "fanout.p50", Better::Lower),
    ("fan-out p90 (ms)", "fanout.p90", Better::Lower),
    ("fan-out p99 (ms)", "fanout.p99", Better::Lower),
    ("fan-out p99.9 (ms)", "fanout.p999", Better::Lower),
    ("fan-out max (ms)", "fanout.max", Better::Lower),
    ("time to last guest p50 (ms)", "time_to_last.p50", Better::Lower),
    ("time to last guest p99 (ms)", "time_to_last.p99", Better::Lower),
    ("send to ack p99 (ms)", "ack.p99", Better::Lower),
    ("connect p99 (ms)", "connect.p99", Better::Lower),
    ("open p99 (ms)", "open.p99", Better::Lower),
    ("deliveries/s", "deliveries_per_sec", Better::Higher),
    ("guests opened", "guests_opened", Better::Higher),
    ("loss (missing deliveries)", "loss", Better::Lower),
    ("duplicates", "duplicates", Better::Lower),
    ("out of order", "out_of_order", Better::Lower),
    ("errors", "errors", Better::Lower),
    ("server RSS per guest (bytes)", "server.rss_per_guest", Better::Lower),
    ("server CPU mean (%)", "server.cpu_mean", Better::Lower),
];

/// Compares one figure.
pub fn compare_figure(figure: &'static str, a: Option<f64>, b: Option<f64>, better: Better, tolerance_pct: f64) -> Row {
    let change_pct = match (a, b) {
        (Some(a), Some(b)) if a != 0.0 => Some((b - a) / a.abs() * 100.0),
        _ => None,
    };
    let regression = match (a, b) {
        (Some(a), Some(b)) => {
            let worse = match better {
                Better::Lower => b > a,
                Better::Higher => b < a,
            };
            worse && change_pct.is_none_or(|c| c.abs() > tolerance_pct)
        }
        _ => false,
    };
    Row { figure, a, b, change_pct, regression }
}

/// Reads `summary.json`, or the one inside a folder.
pub fn load(path: &Path) -> anyhow::Result<Summary> {
    let file = if path.is_dir() { path.join("summary.json") } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not a supergroup-load summary: {e}", file.display()))
}

/// The result of a comparison.
pub struct Comparison {
    pub rows: Vec<Row>,
    pub dir: PathBuf,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.rows.iter().filter(|r| r.regression).count()
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if (v - v.round()).abs() < 1e-6 && v.abs() < 1e15 => {
            format!("{}{}", if v < 0.0 { "-" } else { "" }, count(v.round().abs() as u64))
        }
        Some(v) => format!("{v:.3}"),
    }
}

fn change(r: &Row) -> String {
    r.change_pct.map(|c| format!("{c:+.1}%")).unwrap_or_else(|| "–".into())
}

/// Compares two runs and writes the comparison.
pub fn compare(args: &CompareArgs) -> anyhow::Result<Comparison> {
    let a = load(&args.a)?;
    let b = load(&args.b)?;
    let rows: Vec<Row> = FIGURES
        .iter()
        .map(|&(figure, metric, better)| {
            compare_figure(figure, a.metric(metric), b.metric(metric), better, args.tolerance)
        })
        .collect();
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| crate::run::default_reports_root().join(format!("compare-{}", crate::run::utc_now().1)));
    std::fs::create_dir_all(&dir)?;
    let ha = decode_histogram(&a.histograms.fanout)?;
    let hb = decode_histogram(&b.histograms.fanout)?;
    let label_a = format!("A: {} guests, {}", a.guests.opened, a.started_at);
    let label_b = format!("B: {} guests, {}", b.guests.opened, b.started_at);
    let svg =
        charts::percentile_distribution("Fan-out latency by percentile: A vs B", &[(&label_a, &ha), (&label_b, &hb)]);
    std::fs::write(dir.join("compare-percentiles.svg"), &svg)?;

    let mut md = format!(
        "# supergroup-load comparison\n\nA: `{}`  \nB: `{}`  \ntolerance: {}%\n\n| figure | A | B | change | |\n| --- | --- | --- | --- | --- |\n",
        args.a.display(),
        args.b.display(),
        args.tolerance
    );
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>supergroup-load comparison</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         td:first-child{{text-align:left}}.reg{{color:#b00020;font-weight:bold}}</style></head><body>\n\
         <h1>supergroup-load comparison</h1><p>A: {}<br>B: {}<br>tolerance: {}%</p>\n<table><tr><th>figure</th><th>A</th><th>B</th><th>change</th><th></th></tr>\n",
        args.a.display(),
        args.b.display(),
        args.tolerance
    );
    for r in &rows {
        let flag = if r.regression { "REGRESSION" } else { "" };
        let _ = writeln!(md, "| {} | {} | {} | {} | {flag} |", r.figure, num(r.a), num(r.b), change(r));
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"reg\">{flag}</td></tr>",
            r.figure,
            num(r.a),
            num(r.b),
            change(r)
        );
    }
    let regressions = rows.iter().filter(|r| r.regression).count();
    let _ = write!(md, "\n**{regressions} regression(s)**\n\n![fan-out percentiles](compare-percentiles.svg)\n");
    let inline = svg.find("<svg").map(|i| &svg[i..]).unwrap_or(&svg);
    let _ = write!(html, "</table>\n<p><strong>{regressions} regression(s)</strong></p>\n{inline}\n</body></html>\n");
    std::fs::write(dir.join("compare.md"), md)?;
    std::fs::write(dir.join("compare.html"), html)?;
    Ok(Comparison { rows, dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_only_changes_for_the_worse_beyond_tolerance() {
        assert!(compare_figure("p99", Some(10.0), Some(12.0), Better::Lower, 10.0).regression);
        assert!(!compare_figure("p99", Some(10.0), Some(10.5), Better::Lower, 10.0).regression);
        assert!(!compare_figure("p99", Some(10.0), Some(5.0), Better::Lower, 10.0).regression);
        assert!(compare_figure("rate", Some(100.0), Some(80.0), Better::Higher, 10.0).regression);
        assert!(!compare_figure("rate", Some(100.0), Some(120.0), Better::Higher, 10.0).regression);
        let loss = compare_figure("loss", Some(0.0), Some(3.0), Better::Lower, 10.0);
        assert!(loss.regression, "from none to some is a regression whatever the tolerance");
        assert_eq!(loss.change_pct, None);
        assert!(!compare_figure("cpu", None, Some(3.0), Better::Lower, 10.0).regression);
        assert_eq!(compare_figure("p", Some(10.0), Some(12.0), Better::Lower, 0.0).change_pct, Some(20.0));
    }
}
