//! # supergroup-load
//!
//! A load generator for Super Group Chat servers: thousands of guests hold a
//! WebSocket each with one conversation open, talkers send on a fixed
//! schedule, and every delivery to every guest is timed from the message's
//! intended send time and checked for loss, duplication and order. goose
//! drives the users and reports the request/response side; the fan-out side
//! (which no request/response tool measures) is recorded here in HDR
//! histograms. The result is a report folder with `summary.json`,
//! `report.md`, `report.html` (charts inline) and goose's own report, and a
//! verdict from k6-style thresholds.
//!
//! # Layout
//! - [`cli`]: flags; `run` (default), `server`, `compare`.
//! - [`plan`]: the workload (flags over profile), who joins which room, ids, the schedule.
//! - [`stages`]: stages of the rate (`--step-rate`, `--stages`) and every message's intended time and stage.
//! - [`steps`]: the line a stepped run stops at (`--stop-when`) and the per-step table (the limit found).
//! - [`run`]: one run from start to report.
//! - [`local_server`]: the reference server as a child process; [`procstat`] samples its CPU and RSS.
//! - [`probe`]: the instrument's own lateness (a loopback socket read on the same runtime as the guests).
//! - [`fdlimit`]: open-file limit check (one socket per guest on each side).
//! - [`scenarios`]: goose scenarios (guests, talkers, REST readers) and their transactions.
//! - [`guest`]: joining a conversation and a guest's receive task (stamps arrivals before parsing;
//!   leaves, drops and rejoins on its turns).
//! - [`churn`]: when each guest leaves (`--churn`) or drops (`--reconnect-storm`), and the rejoin policy.
//! - [`talker`]: the open-model sender and its ack reader.
//! - [`clock`]: the run's one monotonic clock, in µs.
//! - [`recorder`]: histograms, counters, errors, time series; [`completeness`]: per-guest exactly-once-in-order check.
//! - [`thresholds`]: `fanout.p99<50ms` rules.
//! - [`report`]: summary.json, report.md, report.html; [`charts`]: plotters SVG charts.
//! - [`compare`]: two runs side by side.
//! - [`progress`]: the live progress line; [`live`]: live figures on a Prometheus endpoint and in a JSON-lines file.
//! - [`dist`]: load workers over NATS (`--workers N`, `worker --coordinator URL`): the wire schema,
//!   the local broker, the clock offsets, the worker and the coordinator that merges them.

pub mod charts;
pub mod churn;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod completeness;
pub mod context;
pub mod dist;
pub mod fdlimit;
pub mod guest;
pub mod live;
pub mod local_server;
pub mod plan;
pub mod probe;
pub mod procstat;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod stages;
pub mod steps;
pub mod talker;
pub mod thresholds;
