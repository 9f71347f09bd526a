//! The wire schema between a coordinator and its load workers: NATS subjects and
//! the JSON bodies sent on them, versioned by [`VERSION`] (a worker and a
//! coordinator of different versions refuse each other with a clear error).
//!
//! | subject | kind | from → to | body |
//! |---|---|---|---|
//! | `sg.load.hello` or `sg.load.hello.<run>` | request | worker → coordinator | [`Hello`] → [`Welcome`] |
//! | `sg.load.w.<wid>.clock` | request | coordinator → worker | empty → [`ClockReading`] |
//! | `sg.load.w.<wid>.start` | request | coordinator → worker | [`Start`] → `ok` |
//! | `sg.load.r.<run>.snap` | publish, once a second | worker → coordinator | [`Snapshot`] |
//! | `sg.load.r.<run>.facts` | request | worker → coordinator | [`FactBatch`] → `ok` |
//! | `sg.load.r.<run>.table` | request | worker → coordinator | [`TableRequest`] → [`TableChunk`] |
//! | `sg.load.r.<run>.result` | request | worker → coordinator | [`ResultPart`] → `ok` |
//!
//! Everything that must arrive goes as a request with a reply (retried, each wait
//! bounded); only the per-second snapshots are fire-and-forget (a lost one loses
//! one second of the merged time series, never a total: totals come from the
//! results). Every batch is cut to stay far under NATS's default 1 MiB payload.

use crate::plan::Plan;
use crate::recorder::{ChurnCounts, Completeness, NodeShare};
use crate::report::summary::GooseRequestRow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The schema version; bumped on any change a peer of another version would misread.
pub const VERSION: u32 = 2;

/// Facts per [`FactBatch`] and per [`TableChunk`]: about 60 bytes each in JSON, so a
/// batch is at most about 300 KB, under NATS's default 1 MiB payload.
pub const FACTS_PER_MESSAGE: usize = 5_000;
/// Last arrivals per [`ResultPart`] (about 40 bytes each: at most about 400 KB).
pub const ARRIVALS_PER_MESSAGE: usize = 10_000;

pub fn hello(run_id: Option<&str>) -> String {
    match run_id {
        Some(r) => format!("sg.load.hello.{r}"),
        None => "sg.load.hello".into(),
    }
}

pub fn worker_clock(wid: &str) -> String {
    format!("sg.load.w.{wid}.clock")
}

pub fn worker_start(wid: &str) -> String {
    format!("sg.load.w.{wid}.start")
}

pub fn snapshots(run_id: &str) -> String {
    format!("sg.load.r.{run_id}.snap")
}

pub fn facts(run_id: &str) -> String {
    format!("sg.load.r.{run_id}.facts")
}

pub fn table(run_id: &str) -> String {
    format!("sg.load.r.{run_id}.table")
}

pub fn result(run_id: &str) -> String {
    format!("sg.load.r.{run_id}.result")
}

/// A subject token from any text: letters, digits, `-` and `_` kept, the rest `-`.
pub fn token(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

/// A worker asks to join a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// The worker's id, unique on the broker (host, pid, start time); names its own subjects.
    pub wid: String,
    pub host: String,
    pub pid: u32,
    /// `/proc/sys/kernel/random/boot_id`: two processes with the same one read the same
    /// `CLOCK_MONOTONIC` (the test-only clock offset changes it, see `dist/worker.rs`).
    pub boot_id: String,
}

/// The coordinator's answer to [`Hello`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Welcome {
    /// Joined as worker `index`.
    Joined(Box<Assignment>),
    /// Not joined, and why (version mismatch, the run is full or started).
    Refused(String),
}

/// What a worker needs to run its share: the plan (its share is `plan.share`) and the run clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub version: u32,
    pub plan: Plan,
    /// The run's time zero as a `CLOCK_MONOTONIC` reading of the worker's host, µs.
    pub zero_monotonic_us: i64,
    /// The worker's clock offset from the coordinator's as estimated, µs, and its error bound.
    pub offset_us: i64,
    pub offset_bound_us: u64,
    /// Seconds without a snapshot after which the coordinator counts the worker lost.
    pub liveness_secs: u64,
}

/// A worker's `CLOCK_MONOTONIC` when it answered a clock request, µs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ClockReading {
    pub monotonic_us: i64,
}

/// The first message's intended time, µs on the run clock: talkers start.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Start {
    pub send_start_us: u64,
}

/// One second of a worker: counters so far, and that second's fan-out histogram.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub index: usize,
    /// Seconds on the run clock.
    pub t: f64,
    pub guests_connected: u64,
    pub guests_open: u64,
    /// Guests and talkers that have joined or failed to (the start barrier).
    pub guests_done: u64,
    pub talkers_done: u64,
    pub sent: u64,
    pub delivered: u64,
    pub deliveries: u64,
    pub errors: u64,
    pub cpu_pct: Option<f64>,
    pub rss_kib: Option<u64>,
    /// The second's fan-out deliveries: HdrHistogram V2 + deflate, base64, µs.
    pub histogram: String,
    /// The worker's run is over (it is handing in its results).
    pub done: bool,
}

/// What became of one message: talker, seq, intended, written, acked (`u64::MAX`: never), refused.
pub type Fact = (u32, u64, u64, u64, u64, bool);

/// Facts of messages this worker's talkers wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FactBatch {
    pub index: usize,
    pub facts: Vec<Fact>,
    /// The last batch: every message the worker wrote has been reported (unanswered ones too).
    pub last: bool,
}

/// A worker asks for the run's facts from position `from`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TableRequest {
    pub index: usize,
    pub from: usize,
}

/// The facts of every worker, once every live worker has sent its last batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TableChunk {
    /// Not every worker has reported yet: ask again shortly.
    NotReady,
    /// Facts from the position asked for; `total` facts in all.
    Facts { facts: Vec<Fact>, total: usize },
}

/// A worker's result: the header in part 0, then the last arrivals of messages at its guests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultPart {
    pub index: usize,
    pub part: usize,
    pub parts: usize,
    pub header: Option<Box<WorkerResult>>,
    /// (talker, seq, latest arrival µs at any of this worker's guests, deliveries here).
    pub arrivals: Vec<(u32, u64, u64, u64)>,
}

/// Everything a worker measured, histograms encoded like `summary.json`'s.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    pub fanout: String,
    pub connect: String,
    pub open: String,
    pub ack: String,
    pub reconnect: String,
    pub reopen: String,
    /// Fan-out at guests on re-opened connections (churn, reconnect storm).
    #[serde(default)]
    pub fanout_returned: String,
    pub instrument: String,
    pub completeness: Completeness,
    pub churn: ChurnCounts,
    pub errors: BTreeMap<String, u64>,
    pub nodes: Vec<NodeShare>,
    pub guests_opened: u64,
    pub guest_connect_failed: u64,
    pub guest_open_failed: u64,
    pub guests_closed_by_server: u64,
    pub guests_opened_late: u64,
    pub send_failed: u64,
    pub rest_requests: u64,
    pub cpu_mean_pct: Option<f64>,
    pub rss_peak_kib: Option<u64>,
    pub goose: Vec<GooseRequestRow>,
}

/// JSON bytes of a body.
pub fn encode<T: Serialize>(body: &T) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(body).expect("wire bodies always serialize"))
}

/// A body from JSON bytes, with the subject in the error.
pub fn decode<T: for<'de> Deserialize<'de>>(subject: &str, payload: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(payload).map_err(|e| anyhow::anyhow!("{subject}: not a body of schema v{VERSION}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_tokens() {
        assert_eq!(hello(None), "sg.load.hello");
        assert_eq!(hello(Some("r1")), "sg.load.hello.r1");
        assert_eq!(facts("r1"), "sg.load.r.r1.facts");
        assert_eq!(token("host.example:1 x"), "host-example-1-x");
    }

    #[test]
    fn a_full_batch_fits_a_nats_payload() {
        let f: Fact = (u32::MAX, u64::MAX, u64::MAX, u64::MAX, u64::MAX, true);
        let batch = FactBatch { index: 0, facts: vec![f; FACTS_PER_MESSAGE], last: true };
        assert!(encode(&batch).len() < 1024 * 1024, "{}", encode(&batch).len());
        let part = ResultPart {
            index: 0,
            part: 0,
            parts: 1,
            header: None,
            arrivals: vec![(u32::MAX, u64::MAX, u64::MAX, u64::MAX); ARRIVALS_PER_MESSAGE],
        };
        assert!(encode(&part).len() < 1024 * 1024, "{}", encode(&part).len());
        let back: FactBatch = decode("s", &encode(&batch)).unwrap();
        assert_eq!(back.facts.len(), FACTS_PER_MESSAGE);
        assert!(decode::<FactBatch>("s", b"{}").unwrap_err().to_string().contains("s: not a body"));
    }
}
