//! Finding the limit: the line a staged run stops at, and the per-step table.
//!
//! `--stop-when` rules (default `p99>1s` and `loss>0`) name the fan-out
//! latency of one step (`p50`, `p90`, `p95`, `p99`, `p999`, `max`, `mean`,
//! in ms unless a unit is given) or its loss (`loss`: deliveries missing,
//! `loss_ratio`: a fraction). While the run goes, the conductor judges step
//! `i` once it has ended and `--drain` has passed (its messages had that long
//! to arrive), with every delivery still pending counted at the latency it
//! has reached; when a rule holds, no further message is sent and the run
//! drains and ends by itself.
//!
//! At the end, every step is judged again, exactly: its fan-out latency from
//! the HDR histogram of the deliveries of the messages *intended* in it, and
//! its completeness from the per-guest count (a message belongs to the step
//! in which it was intended to be sent). The **highest sustained step** is
//! the last one that ran in full with every step up to it inside the line.

use crate::recorder::{StepCounts, Stopped};
use crate::report::summary::Stats;
use crate::stages::Stage;
use crate::thresholds::{self, Threshold};
use serde::{Deserialize, Serialize};

/// The line when `--stop-when` is not given.
pub const DEFAULT_STOP_WHEN: [&str; 2] = ["p99>1s", "loss>0"];

/// Statistics a rule may name, as in `--threshold`'s `fanout.STAT`.
const STATS: [&str; 8] = ["min", "mean", "p50", "p90", "p95", "p99", "p999", "max"];

/// One `--stop-when` rule: the step crossed the line when it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct StopRule {
    /// As the user wrote it.
    pub expr: String,
    /// The same rule in `--threshold` form (`fanout.p99>1000`).
    rule: Threshold,
}

/// Parses the `--stop-when` rules (the defaults when there are none).
pub fn parse_rules(exprs: &[String]) -> anyhow::Result<Vec<StopRule>> {
    let defaults: Vec<String> = DEFAULT_STOP_WHEN.iter().map(|s| s.to_string()).collect();
    let exprs = if exprs.is_empty() { &defaults } else { exprs };
    exprs
        .iter()
        .map(|e| {
            let name: String = e.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let rule = if STATS.contains(&name.as_str()) {
                thresholds::parse(&format!("fanout.{}", e.trim()))
            } else if name == "loss" || name == "loss_ratio" {
                thresholds::parse(e)
            } else {
                anyhow::bail!(
                    "--stop-when `{e}`: expected STAT OP VALUE with STAT one of {} (fan-out latency of the step), \
                     loss or loss_ratio, e.g. 'p99>1s' or 'loss>0'",
                    STATS.join(", ")
                )
            };
            let mut rule = rule.map_err(|err| anyhow::anyhow!("--stop-when `{e}`: {err}"))?;
            rule.expr = e.trim().to_string();
            Ok(StopRule { expr: e.trim().to_string(), rule })
        })
        .collect()
}

/// The rules `latency` and `missing` of `expected` cross, each with the value seen.
pub fn crossed(rules: &[StopRule], latency: &Stats, missing: u64, expected: u64) -> Vec<String> {
    let lookup = |m: &str| match m {
        "loss" => Some(missing as f64),
        "loss_ratio" => Some(if expected == 0 { 0.0 } else { missing as f64 / expected as f64 }),
        m => latency.get(m.strip_prefix("fanout.")?),
    };
    let verdicts = thresholds::evaluate(&rules.iter().map(|r| r.rule.clone()).collect::<Vec<_>>(), lookup);
    verdicts
        .into_iter()
        .filter(|v| v.passed)
        .map(|v| match v.actual {
            Some(a) if v.metric.starts_with("fanout.") => format!("{} ({} was {:.1} ms)", v.expr, &v.metric[7..], a),
            Some(a) => format!("{} ({} was {a})", v.expr, v.metric),
            None => v.expr,
        })
        .collect()
}

/// How far a step ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Every message of the step was sent.
    Full,
    /// The run stopped during this step.
    CutShort,
    /// The run stopped before this step began.
    NotRun,
}

/// One row of the step table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepFigures {
    /// 1-based, as shown.
    pub step: usize,
    pub stage: Stage,
    /// Seconds after the first message: when the step began and ended (or was cut short).
    pub start_s: f64,
    pub end_s: f64,
    pub status: StepStatus,
    /// Messages written by all talkers.
    pub messages_sent: u64,
    /// Deliveries that had to happen (each message × the guests that had it open).
    pub expected: u64,
    pub missing: u64,
    /// Offered deliveries/s: `expected` over the step's length.
    pub offered_per_sec: f64,
    /// Delivered deliveries/s: `expected - missing` over the step's length.
    pub delivered_per_sec: f64,
    /// Fan-out latency of the deliveries of the step's messages.
    pub latency: Stats,
    /// The `--stop-when` rules this step crosses, judged exactly at the end.
    pub crossed: Vec<String>,
}

/// The limit a staged run found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    /// The `--stop-when` rules.
    pub stop_when: Vec<String>,
    /// The step the run stopped at while it ran, and why; `None` when every step ran.
    pub stopped: Option<Stopped>,
    pub steps: Vec<StepFigures>,
    /// Index into `steps` of the highest sustained step: the last one that ran
    /// in full with it and every step before it inside the line.
    pub highest_sustained: Option<usize>,
}

impl StepReport {
    /// Builds the table from the exact per-step counts. `send_stop_s` is when
    /// sending stopped (seconds after the first message), if it did early.
    pub fn build(
        rules: &[StopRule],
        stages: &[Stage],
        windows: &[(f64, f64)],
        counts: &[StepCounts],
        stopped: Option<Stopped>,
        send_stop_s: Option<f64>,
    ) -> StepReport {
        let steps: Vec<StepFigures> = stages
            .iter()
            .zip(windows)
            .zip(counts)
            .enumerate()
            .map(|(i, ((stage, &(start, end)), c))| {
                let (status, end_s) = match send_stop_s {
                    Some(stop) if stop <= start => (StepStatus::NotRun, start),
                    Some(stop) if stop < end => (StepStatus::CutShort, stop),
                    _ => (StepStatus::Full, end),
                };
                let secs = (end_s - start).max(1e-3);
                let latency = Stats::of(&c.histogram);
                let crossed = if status == StepStatus::NotRun {
                    Vec::new()
                } else {
                    crossed(rules, &latency, c.missing, c.expected)
                };
                StepFigures {
                    step: i + 1,
                    stage: *stage,
                    start_s: start,
                    end_s,
                    status,
                    messages_sent: c.sent,
                    expected: c.expected,
                    missing: c.missing,
                    offered_per_sec: if status == StepStatus::NotRun { 0.0 } else { c.expected as f64 / secs },
                    delivered_per_sec: if status == StepStatus::NotRun {
                        0.0
                    } else {
                        (c.expected - c.missing) as f64 / secs
                    },
                    latency,
                    crossed,
                }
            })
            .collect();
        let highest_sustained =
            steps.iter().take_while(|s| s.status == StepStatus::Full && s.crossed.is_empty()).count().checked_sub(1);
        StepReport { stop_when: rules.iter().map(|r| r.expr.clone()).collect(), stopped, steps, highest_sustained }
    }

    /// One line: the highest sustained deliveries/s and its latency, and where the run stopped.
    pub fn verdict(&self) -> String {
        let best = match self.highest_sustained.map(|i| &self.steps[i]) {
            Some(s) => format!(
                "highest sustained: {:.0} deliveries/s at step {} ({} msg/s per talker), fan-out p50 {} p99 {}",
                s.delivered_per_sec,
                s.step,
                s.stage.rate_label(),
                crate::report::tables::ms(s.latency.p50_ms),
                crate::report::tables::ms(s.latency.p99_ms),
            ),
            None => "no step was sustained".into(),
        };
        let end = match &self.stopped {
            Some(st) => format!("; stopped at step {}: {}", st.step + 1, st.reasons.join(", ")),
            None => match self.steps.iter().find(|s| !s.crossed.is_empty()) {
                Some(s) => format!("; step {} crossed the line: {}", s.step, s.crossed.join(", ")),
                None => format!("; every step inside the line ({})", self.stop_when.join(", ")),
            },
        };
        format!("{best}{end}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::histogram;

    fn counts(latency_us: u64, expected: u64, missing: u64) -> StepCounts {
        let mut h = histogram();
        h.record_n(latency_us, expected - missing).unwrap();
        StepCounts { histogram: h, sent: expected, expected, missing }
    }

    #[test]
    fn parses_rules_with_their_units() {
        let rules = parse_rules(&[]).unwrap();
        assert_eq!(rules.iter().map(|r| r.expr.as_str()).collect::<Vec<_>>(), DEFAULT_STOP_WHEN);
        let r = parse_rules(&["p99 > 250ms".into(), "loss_ratio>=0.1%".into()]).unwrap();
        assert_eq!(r[0].rule.metric, "fanout.p99");
        assert_eq!(r[0].rule.value, 250.0);
        assert!((r[1].rule.value - 0.001).abs() < 1e-12);
        assert!(parse_rules(&["errors>0".into()]).is_err());
        assert!(parse_rules(&["p98>1s".into()]).is_err());
        assert!(parse_rules(&["p99>soon".into()]).is_err());
    }

    #[test]
    fn crossing_names_the_rule_and_the_value() {
        let rules = parse_rules(&["p99>1s".into(), "loss>0".into()]).unwrap();
        let fast = Stats::of(&counts(5_000, 100, 0).histogram);
        assert!(crossed(&rules, &fast, 0, 100).is_empty());
        let slow = Stats::of(&counts(1_500_000, 100, 0).histogram);
        let why = crossed(&rules, &slow, 3, 100);
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].starts_with("p99>1s (p99 was 150"), "{why:?}");
        assert_eq!(why[1], "loss>0 (loss was 3)");
    }

    #[test]
    fn the_highest_sustained_step_is_the_last_full_one_inside_the_line() {
        let rules = parse_rules(&["p99>100ms".into(), "loss>0".into()]).unwrap();
        let stages: Vec<Stage> =
            [5.0, 10.0, 20.0, 40.0].iter().map(|&r| Stage { duration: 10.0, from: r, to: r }).collect();
        let windows = [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 40.0)];
        // Step 3 is slow; the run stopped 3 s into step 4.
        let c = [counts(2_000, 500, 0), counts(4_000, 1000, 0), counts(400_000, 2000, 0), counts(900_000, 600, 10)];
        let stopped = Stopped { step: 2, at: 33.0, reasons: vec!["p99>100ms".into()] };
        let r = StepReport::build(&rules, &stages, &windows, &c, Some(stopped), Some(33.0));
        assert_eq!(r.highest_sustained, Some(1));
        assert_eq!(r.steps[1].offered_per_sec, 100.0);
        assert_eq!(r.steps[1].delivered_per_sec, 100.0);
        assert_eq!(r.steps[3].status, StepStatus::CutShort);
        assert_eq!(r.steps[3].end_s, 33.0);
        assert_eq!(r.steps[3].offered_per_sec, 200.0);
        assert!((r.steps[3].delivered_per_sec - 590.0 / 3.0).abs() < 1e-9);
        assert_eq!(r.steps[2].crossed.len(), 1);
        assert_eq!(r.steps[3].crossed.len(), 2);
        let v = r.verdict();
        assert!(v.starts_with("highest sustained: 100 deliveries/s at step 2 (10 msg/s per talker)"), "{v}");
        assert!(v.contains("stopped at step 3: p99>100ms"), "{v}");
        // Nothing sustained when the first step already crosses.
        let r = StepReport::build(&rules, &stages[..1], &windows[..1], &c[2..3], None, None);
        assert_eq!(r.highest_sustained, None);
        assert!(r.verdict().starts_with("no step was sustained; step 1 crossed the line"), "{}", r.verdict());
    }
}
