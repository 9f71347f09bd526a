//! Stages of the offered rate, like k6's ramping-arrival-rate executor or a
//! goose test plan: a run's send window is a list of stages, each holding or
//! ramping the rate of **every talker** (messages per second per talker, the
//! unit of `--rate`) for a duration. `--stages 30s:1..20,60s:20,5s:100`
//! ramps from 1 to 20 msg/s over 30 s, holds 20 for a minute, then spikes to
//! 100 for 5 s; `--step-rate 5,10,20 --step 20s` is the same as
//! `--stages 20s:5,20s:10,20s:20`. A run without stages has one: `--rate`
//! for `--duration`.
//!
//! The [`Timeline`] turns the stages into the intended send time of every
//! message (open model: the time is fixed by the schedule, never by how fast
//! the server answers), and says which stage each message belongs to: the one
//! in which it was *intended* to be sent, so a step's figures count exactly
//! its own messages even when they arrive during the next step.

use serde::{Deserialize, Serialize};

/// Most stages one run may have (each gets its own histograms).
pub const MAX_STAGES: usize = 64;

/// One stage: the rate per talker goes linearly from `from` to `to` over `duration` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// Seconds.
    pub duration: f64,
    /// Messages per second per talker at the start of the stage.
    pub from: f64,
    /// Messages per second per talker at the end of the stage (equal to `from` for a hold).
    pub to: f64,
}

impl Stage {
    /// Messages a talker is due to send over `t` seconds into the stage (fractional).
    fn count_at(&self, t: f64) -> f64 {
        self.from * t + (self.to - self.from) * t * t / (2.0 * self.duration)
    }

    /// Seconds into the stage at which `count_at` reaches `n` (`0 <= n <= count_at(duration)`).
    fn time_of(&self, n: f64) -> f64 {
        let slope = (self.to - self.from) / self.duration;
        if slope.abs() < 1e-12 {
            return n / self.from;
        }
        // slope/2 t² + from t - n = 0, the root in [0, duration].
        let disc = (self.from * self.from + 2.0 * slope * n).max(0.0);
        ((-self.from + disc.sqrt()) / slope).clamp(0.0, self.duration)
    }

    /// `30s:5` or `30s:1..20`.
    pub fn label(&self) -> String {
        format!("{}s:{}", fmt_num(self.duration), self.rate_label())
    }

    /// The rate per talker: `5` or `1..20`.
    pub fn rate_label(&self) -> String {
        let (a, b) = (fmt_num(self.from), fmt_num(self.to));
        if self.from == self.to { a } else { format!("{a}..{b}") }
    }
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 { format!("{}", v.round()) } else { format!("{v}") }
}

/// Why stages did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StageError {
    #[error("stage `{0}`: expected DURATION:RATE or DURATION:FROM..TO, e.g. 20s:10 or 30s:1..20")]
    Syntax(String),
    #[error("stage `{0}`: {1}")]
    Value(String, String),
    #[error("at most {MAX_STAGES} stages")]
    TooMany,
    #[error("no stages")]
    Empty,
}

/// Parses `--stages`: comma-separated `DURATION:RATE` (hold) or `DURATION:FROM..TO` (ramp).
pub fn parse_stages(spec: &str) -> Result<Vec<Stage>, StageError> {
    let stages = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (d, r) = s.split_once(':').ok_or_else(|| StageError::Syntax(s.into()))?;
            let duration = crate::cli::parse_secs(d).map_err(|e| StageError::Value(s.into(), e))?;
            let rate = |v: &str| -> Result<f64, StageError> {
                let v: f64 = v.trim().parse().map_err(|_| StageError::Syntax(s.into()))?;
                if v.is_finite() && v >= 0.0 {
                    Ok(v)
                } else {
                    Err(StageError::Value(s.into(), "a rate is 0 or more messages/s".into()))
                }
            };
            let (from, to) = match r.split_once("..") {
                Some((a, b)) => (rate(a)?, rate(b)?),
                None => (rate(r)?, rate(r)?),
            };
            Stage::checked(duration, from, to).map_err(|e| StageError::Value(s.into(), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_count(stages)
}

/// `--step-rate 5,10,20 --step 20s`: one hold of `step` seconds per rate.
pub fn steps(rates: &[f64], step: f64) -> Result<Vec<Stage>, StageError> {
    let stages = rates
        .iter()
        .map(|&r| {
            let s = format!("{}s:{r}", fmt_num(step));
            if !(r.is_finite() && r > 0.0) {
                return Err(StageError::Value(s, "a step rate is above 0 messages/s".into()));
            }
            Stage::checked(step, r, r).map_err(|e| StageError::Value(s, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_count(stages)
}

fn check_count(stages: Vec<Stage>) -> Result<Vec<Stage>, StageError> {
    match stages.len() {
        0 => Err(StageError::Empty),
        n if n > MAX_STAGES => Err(StageError::TooMany),
        _ => Ok(stages),
    }
}

impl Stage {
    fn checked(duration: f64, from: f64, to: f64) -> Result<Stage, String> {
        if !(duration > 0.0 && duration.is_finite()) {
            return Err("a stage lasts more than 0 s".into());
        }
        Ok(Stage { duration, from, to })
    }
}

/// Every message's intended time and stage, for one talker (all talkers share it).
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    stages: Vec<Stage>,
    /// Intended time of message `seq`, µs after the first message's time.
    offsets: Vec<u64>,
    /// The first sequence number of each stage (a stage may have none: then it equals the next one's).
    first_seq: Vec<u64>,
    /// Start of each stage, seconds after the first message's time.
    starts: Vec<f64>,
}

impl Timeline {
    /// The timeline of `stages`. Message `n` of a talker is due when the
    /// integral of the rate reaches `n` (message 0 at the very start); the
    /// count carries its fraction from one stage into the next.
    pub fn new(stages: &[Stage]) -> Timeline {
        let mut offsets = Vec::new();
        let mut first_seq = Vec::with_capacity(stages.len());
        let mut starts = Vec::with_capacity(stages.len());
        let (mut start, mut before) = (0.0f64, 0.0f64);
        for st in stages {
            first_seq.push(offsets.len() as u64);
            starts.push(start);
            let after = before + st.count_at(st.duration);
            // Messages n with before <= n < after, found by inverting the stage's count.
            let mut n = before.ceil();
            while n < after - 1e-9 {
                let t = start + st.time_of(n - before);
                offsets.push((t * 1e6).round() as u64);
                n += 1.0;
            }
            before = after;
            start += st.duration;
        }
        Timeline { stages: stages.to_vec(), offsets, first_seq, starts }
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Messages each talker sends.
    pub fn messages(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Intended time of message `seq`, µs after the first message's time.
    pub fn offset(&self, seq: u64) -> u64 {
        self.offsets.get(seq as usize).copied().unwrap_or(u64::MAX)
    }

    /// The stage message `seq` belongs to.
    pub fn stage_of(&self, seq: u64) -> usize {
        self.first_seq.partition_point(|&f| f <= seq).saturating_sub(1)
    }

    /// `[start, end)` of stage `i`, seconds after the first message's time.
    pub fn window(&self, i: usize) -> (f64, f64) {
        (self.starts[i], self.starts[i] + self.stages[i].duration)
    }

    /// Sequence numbers of stage `i`.
    pub fn seqs(&self, i: usize) -> std::ops::Range<u64> {
        let end = self.first_seq.get(i + 1).copied().unwrap_or(self.messages());
        self.first_seq[i]..end
    }

    /// Seconds of sending in total.
    pub fn duration(&self) -> f64 {
        self.stages.iter().map(|s| s.duration).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_holds_ramps_and_steps() {
        let s = parse_stages("20s:10, 30s:1..20,500ms:0").unwrap();
        assert_eq!(s[0], Stage { duration: 20.0, from: 10.0, to: 10.0 });
        assert_eq!(s[1], Stage { duration: 30.0, from: 1.0, to: 20.0 });
        assert_eq!(s[2].duration, 0.5);
        assert_eq!(s[1].label(), "30s:1..20");
        assert_eq!(steps(&[5.0, 10.0], 20.0).unwrap(), parse_stages("20s:5,20s:10").unwrap());
        assert!(matches!(parse_stages("20s"), Err(StageError::Syntax(_))));
        assert!(matches!(parse_stages("0s:5"), Err(StageError::Value(..))));
        assert!(matches!(parse_stages("5s:-1"), Err(StageError::Value(..))));
        assert!(matches!(parse_stages(""), Err(StageError::Empty)));
        assert!(steps(&[0.0], 1.0).is_err());
    }

    #[test]
    fn a_hold_is_the_constant_rate_schedule() {
        let t = Timeline::new(&[Stage { duration: 10.0, from: 10.0, to: 10.0 }]);
        assert_eq!(t.messages(), 100);
        assert_eq!(t.offset(0), 0);
        assert_eq!(t.offset(5), 500_000);
        assert_eq!(t.offset(99), 9_900_000);
    }

    #[test]
    fn steps_and_ramps_place_every_message_in_its_stage() {
        // 2 s at 5/s (10 messages), then a ramp 0..10 over 2 s (10 messages), then 1 s at 4/s.
        let t = Timeline::new(&parse_stages("2s:5,2s:0..10,1s:4").unwrap());
        assert_eq!(t.messages(), 10 + 10 + 4);
        assert_eq!(t.seqs(0), 0..10);
        assert_eq!(t.seqs(1), 10..20);
        assert_eq!(t.seqs(2), 20..24);
        assert_eq!((t.stage_of(9), t.stage_of(10), t.stage_of(23)), (0, 1, 2));
        for i in 0..3 {
            let (a, b) = t.window(i);
            for seq in t.seqs(i) {
                let at = t.offset(seq) as f64 / 1e6;
                assert!(at >= a - 1e-6 && at < b, "message {seq} at {at} outside stage {i} [{a}, {b})");
            }
        }
        // In the ramp, gaps shrink as the rate grows.
        let gap = |s: u64| t.offset(s + 1) - t.offset(s);
        assert!(gap(11) > gap(18), "{} {}", gap(11), gap(18));
        assert!((0..23).all(|s| t.offset(s) < t.offset(s + 1)), "strictly increasing");
        assert_eq!(t.duration(), 5.0);
    }
}
