//! Pass/fail rules in the style of k6: `--threshold 'fanout.p99<50ms'`,
//! `'loss==0'`, `'errors==0'`, `'connect.p95<1s'`. A rule is
//! `METRIC OP VALUE` with `OP` one of `<`, `<=`, `>`, `>=`, `==`, `!=`.
//!
//! Metrics (see [`METRICS`]): latency statistics are
//! `{fanout,time_to_last,connect,open,ack,instrument,reconnect,reopen}.{min,mean,p50,p90,p95,p99,p999,max}`
//! (`reconnect` and `reopen`: the rejoins of churn and the reconnect storm),
//! compared in milliseconds (a bare number is ms; `us`, `ms`, `s`, `m` are
//! accepted); counts (`loss`, `errors`, `delivered`, ...) are plain numbers
//! (`1e6`, `1_000` accepted); `loss_ratio` is a fraction (`0.1%` accepted);
//! memory is in bytes (`KiB`, `MiB`, `GiB` accepted); CPU in percent of one core.
//! Rules are parsed before the run starts, so a typo fails fast; a rule whose
//! metric has no value at the end (no deliveries, no server samples) fails.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a metric measures, which decides the units its threshold may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Milliseconds.
    Latency,
    Count,
    /// A fraction, 0 to 1.
    Ratio,
    Bytes,
    /// Percent of one core.
    Percent,
}

const STATS: [&str; 8] = ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"];
const LATENCIES: [&str; 8] = ["fanout", "time_to_last", "connect", "open", "ack", "instrument", "reconnect", "reopen"];

/// Every metric that is not a latency statistic, with its kind and meaning.
pub const METRICS: &[(&str, Kind, &str)] = &[
    ("loss", Kind::Count, "deliveries expected but never received"),
    ("loss_ratio", Kind::Ratio, "loss / expected deliveries"),
    ("duplicates", Kind::Count, "deliveries of a message a guest already had"),
    ("out_of_order", Kind::Count, "deliveries that came after a later message from the same talker"),
    ("unexpected", Kind::Count, "frames naming a message this run never sent"),
    ("delivered", Kind::Count, "deliveries of this run's messages to guests"),
    ("expected", Kind::Count, "deliveries that had to happen"),
    ("errors", Kind::Count, "errors of every kind (connect, open, send, closes by the server)"),
    ("guests_opened", Kind::Count, "guests that opened their conversation"),
    ("guests_failed", Kind::Count, "guests that could not connect or open"),
    ("guests_closed_by_server", Kind::Count, "guests the server disconnected during the run"),
    ("sent", Kind::Count, "messages written by talkers"),
    ("acked", Kind::Count, "messages acknowledged by the server"),
    ("deliveries_per_sec", Kind::Count, "mean deliveries per second over the send window"),
    ("rejoined", Kind::Count, "guests that reconnected and re-opened after leaving (churn) or dropping (storm)"),
    ("rejoin_failed", Kind::Count, "rejoin attempts refused or failed"),
    ("rejoin_gave_up", Kind::Count, "guests that failed every rejoin attempt"),
    ("server.rss_per_guest", Kind::Bytes, "server memory growth per connected idle guest"),
    ("server.rss_peak", Kind::Bytes, "server peak resident memory"),
    ("server.cpu_mean", Kind::Percent, "server CPU over the send window, % of one core"),
    ("server.cpu_max", Kind::Percent, "server CPU, highest one-second sample"),
];

/// The kind of metric `name`, if it is one.
pub fn kind_of(name: &str) -> Option<Kind> {
    if let Some((base, stat)) = name.split_once('.')
        && LATENCIES.contains(&base)
        && STATS.contains(&stat)
    {
        return Some(Kind::Latency);
    }
    METRICS.iter().find(|(n, _, _)| *n == name).map(|(_, k, _)| *k)
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// As the user wrote it.
    pub expr: String,
    pub metric: String,
    pub op: Op,
    /// In the metric's base unit (ms, count, fraction, bytes, percent).
    pub value: f64,
}

/// Why a rule did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("threshold `{0}`: expected METRIC OP VALUE with OP one of < <= > >= == != (e.g. fanout.p99<50ms)")]
    Syntax(String),
    #[error(
        "threshold `{expr}`: unknown metric `{metric}` (latencies: {{fanout,time_to_last,connect,open,ack,instrument}}.{{min,mean,p50,p90,p95,p99,p999,max}}; others: {others})"
    )]
    UnknownMetric { expr: String, metric: String, others: String },
    #[error("threshold `{expr}`: `{value}` is not a value for {metric} ({hint})")]
    BadValue { expr: String, metric: String, value: String, hint: &'static str },
}

/// Parses one rule.
pub fn parse(expr: &str) -> Result<Threshold, ThresholdError> {
    let syntax = || ThresholdError::Syntax(expr.to_string());
    let (at, op, len) = ["<=", ">=", "==", "!=", "<", ">"]
        .iter()
        .filter_map(|o| expr.find(o).map(|i| (i, *o, o.len())))
        .min_by_key(|&(i, o, _)| (i, std::cmp::Reverse(o.len())))
        .ok_or_else(syntax)?;
    let metric = expr[..at].trim();
    let value = expr[at + len..].trim();
    if metric.is_empty() || value.is_empty() {
        return Err(syntax());
    }
    let op = match op {
        "<=" => Op::Le,
        ">=" => Op::Ge,
        "==" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        _ => Op::Gt,
    };
    let kind = kind_of(metric).ok_or_else(|| ThresholdError::UnknownMetric {
        expr: expr.into(),
        metric: metric.into(),
        others: METRICS.iter().map(|(n, _, _)| *n).collect::<Vec<_>>().join(", "),
    })?;
    let bad = |hint| ThresholdError::BadValue { expr: expr.into(), metric: metric.into(), value: value.into(), hint };
    let value = match kind {
        Kind::Latency => with_unit(value, &[("us", 1e-3), ("µs", 1e-3), ("ms", 1.0), ("s", 1e3), ("m", 60e3)], 1.0)
            .ok_or_else(|| bad("a duration: 50ms, 1.5s, 800us; a bare number is ms"))?,
        Kind::Count | Kind::Percent => {
            with_unit(value, &[("%", 1.0)], 1.0).ok_or_else(|| bad("a number, e.g. 0, 1e6, 1_000"))?
        }
        Kind::Ratio => {
            with_unit(value, &[("%", 0.01)], 1.0).ok_or_else(|| bad("a fraction (0.001) or a percentage (0.1%)"))?
        }
        Kind::Bytes => with_unit(value, &[("KiB", 1024.0), ("MiB", 1048576.0), ("GiB", 1073741824.0), ("B", 1.0)], 1.0)
            .ok_or_else(|| bad("bytes: 12KiB, 1.5MiB, 4096"))?,
    };
    Ok(Threshold { expr: expr.into(), metric: metric.into(), op, value })
}

/// Parses every rule, failing on the first bad one.
pub fn parse_all(exprs: &[String]) -> Result<Vec<Threshold>, ThresholdError> {
    exprs.iter().map(|e| parse(e)).collect()
}

/// `12.5ms` with units `[("ms", 1.0), ...]` → 12.5; a bare number is scaled by `bare`.
fn with_unit(s: &str, units: &[(&str, f64)], bare: f64) -> Option<f64> {
    let s = s.trim();
    let (num, scale) = units
        .iter()
        .filter(|(u, _)| s.ends_with(u))
        .max_by_key(|(u, _)| u.len())
        .map(|(u, k)| (&s[..s.len() - u.len()], *k))
        .unwrap_or((s, bare));
    let v: f64 = num.trim().replace('_', "").parse().ok()?;
    v.is_finite().then_some(v * scale)
}

/// A rule judged against a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub expr: String,
    pub metric: String,
    /// The run's value, in the metric's base unit; `None` when the run has none.
    pub actual: Option<f64>,
    pub passed: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actual = self.actual.map(|v| format!("{v:.3}")).unwrap_or_else(|| "no value".into());
        write!(f, "{} {} (actual {} = {actual})", if self.passed { "PASS" } else { "FAIL" }, self.expr, self.metric)
    }
}

/// Judges every rule with `lookup` (metric name → value in its base unit).
pub fn evaluate(rules: &[Threshold], lookup: impl Fn(&str) -> Option<f64>) -> Vec<Verdict> {
    rules
        .iter()
        .map(|t| {
            let actual = lookup(&t.metric);
            Verdict {
                expr: t.expr.clone(),
                metric: t.metric.clone(),
                actual,
                passed: actual.is_some_and(|a| t.op.holds(a, t.value)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_latency_rules_with_units() {
        let t = parse("fanout.p99<50ms").unwrap();
        assert_eq!((t.metric.as_str(), t.op, t.value), ("fanout.p99", Op::Lt, 50.0));
        assert_eq!(parse("connect.p95 < 1s").unwrap().value, 1000.0);
        assert_eq!(parse("ack.max<=800us").unwrap().value, 0.8);
        assert_eq!(parse("time_to_last.p999 <= 2").unwrap().op, Op::Le);
        assert_eq!(parse("open.mean>=0.5m").unwrap().value, 30_000.0);
    }

    #[test]
    fn parses_counts_ratios_and_bytes() {
        assert_eq!(
            parse("loss==0").unwrap(),
            Threshold { expr: "loss==0".into(), metric: "loss".into(), op: Op::Eq, value: 0.0 }
        );
        assert_eq!(parse("delivered>1e12").unwrap().value, 1e12);
        assert_eq!(parse("errors != 1_000").unwrap().value, 1000.0);
        assert!((parse("loss_ratio<0.1%").unwrap().value - 0.001).abs() < 1e-12);
        assert_eq!(parse("server.rss_per_guest<12KiB").unwrap().value, 12288.0);
        assert_eq!(parse("server.cpu_max<150%").unwrap().value, 150.0);
    }

    #[test]
    fn rejects_bad_rules_with_a_reason() {
        assert!(matches!(parse("fanout.p99"), Err(ThresholdError::Syntax(_))));
        assert!(matches!(parse("<5"), Err(ThresholdError::Syntax(_))));
        assert!(matches!(parse("fanout.p98<5ms"), Err(ThresholdError::UnknownMetric { .. })));
        assert!(matches!(parse("latency<5ms"), Err(ThresholdError::UnknownMetric { .. })));
        assert!(matches!(parse("fanout.p99<fast"), Err(ThresholdError::BadValue { .. })));
        assert!(matches!(parse("loss==zero"), Err(ThresholdError::BadValue { .. })));
        let msg = parse("nope<1").unwrap_err().to_string();
        assert!(msg.contains("loss_ratio"), "{msg}");
    }

    #[test]
    fn evaluates_and_fails_without_a_value() {
        let rules = parse_all(&[
            "fanout.p99<50ms".into(),
            "loss==0".into(),
            "fanout.p99<0ms".into(),
            "server.cpu_max<100".into(),
        ])
        .unwrap();
        let v = evaluate(&rules, |m| match m {
            "fanout.p99" => Some(12.0),
            "loss" => Some(0.0),
            _ => None,
        });
        assert_eq!(v.iter().map(|v| v.passed).collect::<Vec<_>>(), vec![true, true, false, false]);
        assert!(v[3].to_string().contains("no value"));
    }
}
