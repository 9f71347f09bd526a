//! The shared recorder of a run: HDR histograms at microsecond resolution,
//! counters, errors by code, a per-second time series, and the per-message
//! and per-guest facts that the completeness count needs at the end.
//!
//! The hot path is one delivery at one guest (10,000 guests × 10 messages/s =
//! 100,000 a second). It takes one of [`SHARDS`] mutexes, chosen by guest, to
//! record into a fan-out histogram, and updates the message's slot with
//! atomics; nothing else is shared. Once a second [`Recorder::tick`] swaps out
//! each shard's histogram of that second and merges them into one point of
//! the time series (so the series is by sampling second, like wrk2's
//! intervals). Each guest keeps its own [`DeliveryTracker`] without a lock
//! and hands it over when it stops. No std lock here is held across an
//! `.await`: every method is synchronous.

use crate::clock::Clock;
use crate::completeness::DeliveryTracker;
use crate::plan::Plan;
use crate::procstat::ProcSample;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Highest latency a histogram holds, in µs (one hour); larger values are clamped to it.
pub const MAX_MICROS: u64 = 3_600_000_000;
/// Fan-out shards: enough that guests on two cores rarely wait for each other.
pub const SHARDS: usize = 8;
/// A slot value meaning "has not happened".
const NEVER: u64 = u64::MAX;
/// Most messages [`Recorder::guest_away`] looks back over per talker (a stretch of 100,000
/// messages is far longer than any guest stays between churn turns).
const AWAY_WALK: u64 = 100_000;

/// A histogram of microseconds with 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant bounds are valid")
}

/// A histogram of microseconds with 2 significant digits, for one second of the time series.
fn coarse_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("constant bounds are valid")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while recording leaves plain numbers behind: still worth reporting.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One message's life, written by its talker and by every guest that receives it.
#[derive(Debug)]
struct MessageSlot {
    /// Intended send time (µs), or [`NEVER`] while unsent.
    intended: AtomicU64,
    /// When the frame was written to the socket (µs).
    sent: AtomicU64,
    /// When the ack arrived (µs), or [`NEVER`].
    acked: AtomicU64,
    /// The server answered the send with an error frame: nobody should receive it.
    refused: AtomicBool,
    /// Latest arrival at any guest (µs).
    last_arrival: AtomicU64,
    /// Deliveries to guests, duplicates included.
    deliveries: AtomicU64,
    /// Guests of its conversation with it open when it was written: the deliveries a
    /// stepped run waits for when it judges a step while the run goes on.
    receivers: AtomicU64,
    /// A load worker has sent this message's fact to its coordinator.
    reported: AtomicBool,
}

impl MessageSlot {
    fn new() -> MessageSlot {
        MessageSlot {
            intended: AtomicU64::new(NEVER),
            sent: AtomicU64::new(NEVER),
            acked: AtomicU64::new(NEVER),
            refused: AtomicBool::new(false),
            last_arrival: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            receivers: AtomicU64::new(0),
            reported: AtomicBool::new(false),
        }
    }
}

/// One stage of a staged run, judged while the run goes on: its deliveries so
/// far, plus every delivery still pending counted at the latency it has
/// reached (a lower bound of what it will be).
#[derive(Debug)]
pub struct LiveStep {
    pub histogram: Histogram<u64>,
    /// Deliveries expected (guests open when each message was written) but not arrived yet.
    pub pending: u64,
    /// Deliveries expected so far.
    pub expected: u64,
}

/// What one stage of a staged run did, exactly, at the end.
#[derive(Debug, Clone)]
pub struct StepCounts {
    /// Deliveries of the messages intended in this stage.
    pub histogram: Histogram<u64>,
    /// Messages written (all talkers).
    pub sent: u64,
    pub expected: u64,
    pub missing: u64,
}

/// Why and when a staged run stopped raising the rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stopped {
    /// The stage that crossed the line (0-based).
    pub step: usize,
    /// When sending stopped, seconds on the run clock.
    pub at: f64,
    /// The rules it crossed, with the values seen then.
    pub reasons: Vec<String>,
}

/// One shard of the fan-out histograms.
#[derive(Debug)]
struct Shard {
    /// Every delivery of the run.
    total: Histogram<u64>,
    /// Deliveries since the last tick.
    second: Histogram<u64>,
    /// Of a staged run: deliveries by the stage their message was intended in (empty otherwise).
    steps: Vec<Histogram<u64>>,
    /// Deliveries to guests on a connection they re-opened after leaving or dropping (churn,
    /// reconnect storm); also in `total`.
    returned: Histogram<u64>,
    /// Deliveries recorded here, duplicates included (summed by [`Recorder::delivered`]: a
    /// counter per shard, under the lock already taken, instead of one atomic every guest hits).
    delivered: u64,
}

/// Histograms of the operations that are not deliveries.
#[derive(Debug)]
struct Ops {
    connect: Histogram<u64>,
    open: Histogram<u64>,
    ack: Histogram<u64>,
    /// Connects and opens of guests rejoining (churn, reconnect storm).
    reconnect: Histogram<u64>,
    reopen: Histogram<u64>,
}

/// Live counters (read by the progress line and the time series).
#[derive(Debug, Default)]
pub struct Counters {
    /// Guest WebSockets connected now.
    pub guests_connected: AtomicU64,
    /// Guests that have their conversation open now.
    pub guests_open: AtomicU64,
    /// Guests that ever opened.
    pub guests_opened: AtomicU64,
    pub guest_connect_failed: AtomicU64,
    pub guest_open_failed: AtomicU64,
    /// Guests whose connection the server closed before the end (e.g. 1008 slow consumer).
    pub guests_closed_by_server: AtomicU64,
    pub talkers_open: AtomicU64,
    /// Talkers that ever opened (the conductor waits for joined + failed = talkers).
    pub talkers_joined: AtomicU64,
    pub talkers_failed: AtomicU64,
    /// Churn: guests that closed the conversation and their socket to rejoin.
    pub leaves: AtomicU64,
    /// Reconnect storm: guests that dropped their socket without a word to rejoin.
    pub drops: AtomicU64,
    /// Leaves and drops followed by a successful connect and `open`.
    pub rejoined: AtomicU64,
    /// `open` answered with an error on a rejoin (e.g. `guest_limit_reached`: a slot not released).
    pub reopen_refused: AtomicU64,
    /// Connects that failed or timed out on a rejoin.
    pub reconnect_failed: AtomicU64,
    /// Guests that gave up rejoining after every attempt.
    pub rejoin_gave_up: AtomicU64,
    /// Churn turns that fell while their guest was away (or not open yet), skipped.
    pub leaves_skipped: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub send_failed: AtomicU64,
    pub rest_requests: AtomicU64,
}

/// How a guest's time with the conversation open ended, which decides what it must have received.
#[derive(Debug, Clone, PartialEq)]
pub enum IntervalEnd {
    /// Still open at the end of the run, or closed by the server (`closed_by_server_at`):
    /// every message written after the open is expected.
    Open,
    /// The guest left (churn): it sent `close` at `at` µs and read until `closed`. Every
    /// message acked before `at` was stored while it had the conversation open, so it
    /// must have arrived before `closed` (SG-RT-23); a message acked later may or may not.
    Left { at: u64 },
    /// The guest dropped its socket without a word (reconnect storm). What was in flight is
    /// lost with the connection, so only gaps count: a message is expected when a later
    /// message of the same talker arrived in the interval (delivery order is commit
    /// order, SG-RT-24). `highest` is the highest sequence number seen per local talker.
    Dropped { highest: Vec<Option<u64>> },
}

/// One stretch of time a guest had its conversation open.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// When its `opened` arrived (µs).
    pub opened_at: u64,
    pub end: IntervalEnd,
}

/// What one guest did, handed over when it stops.
#[derive(Debug, Clone)]
pub struct GuestOutcome {
    /// The node of the target it connected to (index into [`Plan::targets`]).
    pub node: usize,
    pub conversation: usize,
    /// When its first `opened` arrived (µs).
    pub opened_at: u64,
    /// Its stretches with the conversation open, in order (one for a guest that never left).
    pub intervals: Vec<Interval>,
    /// When the server closed it, if the server did (µs).
    pub closed_by_server_at: Option<u64>,
    /// It had the conversation open when the run stopped it (it held a guest slot).
    pub open_at_end: bool,
    pub tracker: DeliveryTracker,
}

impl Interval {
    /// Whether message `seq` of local talker `local`, written at `sent` and acked at `acked`
    /// µs (`u64::MAX` if never), had to arrive in this interval (see [`IntervalEnd`]).
    pub fn expects(&self, local: usize, seq: u64, sent: u64, acked: u64) -> bool {
        sent >= self.opened_at
            && match &self.end {
                IntervalEnd::Open => true,
                IntervalEnd::Left { at } => acked < *at,
                IntervalEnd::Dropped { highest } => highest.get(local).copied().flatten().is_some_and(|h| seq <= h),
            }
    }
}

/// One point of the time series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondSample {
    /// Seconds since the run started.
    pub t: f64,
    pub guests_connected: u64,
    pub guests_open: u64,
    pub sent: u64,
    pub delivered: u64,
    /// Deliveries during this second.
    pub deliveries: u64,
    /// Fan-out latency of this second's deliveries, ms.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub server_cpu_pct: Option<f64>,
    pub server_rss_kib: Option<u64>,
    /// The load generator's own process.
    #[serde(default)]
    pub loadgen_cpu_pct: Option<f64>,
    #[serde(default)]
    pub loadgen_rss_kib: Option<u64>,
    /// Every process on the machine, % of one core: the rest is what other work took.
    #[serde(default)]
    pub machine_cpu_pct: Option<f64>,
}

/// Deliveries due so far and those of them not arrived ([`Recorder::overdue`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Overdue {
    /// Deliveries due: per message written at least `--drain` ago, the guests that had its conversation open.
    pub expected: u64,
    /// Of those, not arrived yet.
    pub missing: u64,
}

/// Completeness of one group of guests (those who stayed, came back, or left for good).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct GroupCounts {
    pub guests: u64,
    /// Deliveries that had to happen: only those sent while the guest had the conversation open.
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
}

impl GroupCounts {
    fn count(&mut self, expected: u64, delivered: u64, missing: u64) {
        self.guests += 1;
        self.expected += expected;
        self.delivered += delivered;
        self.missing += missing;
    }

    fn add(&mut self, o: &GroupCounts) {
        self.guests += o.guests;
        self.expected += o.expected;
        self.delivered += o.delivered;
        self.missing += o.missing;
    }
}

/// Leaving and rejoining (churn, reconnect storm), counted over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChurnCounts {
    /// Churn turns taken: guests that closed the conversation and their socket.
    pub leaves: u64,
    /// Churn turns skipped because their guest was still away (or had not opened yet).
    #[serde(default)]
    pub leaves_skipped: u64,
    /// Guests that dropped their socket in the reconnect storm.
    pub drops: u64,
    /// Leaves and drops followed by a successful reconnect and `open`.
    pub rejoined: u64,
    /// Rejoin attempts whose `open` the server refused with an error frame (by code in the errors).
    pub reopen_refused: u64,
    /// Rejoin attempts whose connect or `open` failed otherwise (refused connection, timeout, closed).
    pub reconnect_failed: u64,
    /// Guests that failed every rejoin attempt and stayed away.
    pub rejoin_gave_up: u64,
    /// Guests with the conversation open when the run ended: the guest slots this run held.
    pub open_at_end: u64,
    /// Guests that never left, with their completeness.
    #[serde(default)]
    pub stayed: GroupCounts,
    /// Guests that left or dropped and came back at least once.
    #[serde(default)]
    pub came_back: GroupCounts,
    /// Guests that left or dropped and were not open at the end (gave up, or still rejoining).
    #[serde(default)]
    pub gone: GroupCounts,
}

impl ChurnCounts {
    /// Adds another process's counts (a load worker's).
    pub fn add(&mut self, o: &ChurnCounts) {
        self.leaves += o.leaves;
        self.leaves_skipped += o.leaves_skipped;
        self.drops += o.drops;
        self.rejoined += o.rejoined;
        self.reopen_refused += o.reopen_refused;
        self.reconnect_failed += o.reconnect_failed;
        self.rejoin_gave_up += o.rejoin_gave_up;
        self.open_at_end += o.open_at_end;
        self.stayed.add(&o.stayed);
        self.came_back.add(&o.came_back);
        self.gone.add(&o.gone);
    }
}

/// Completeness over all guests.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Completeness {
    /// Deliveries that had to happen: for each guest, every message written after it
    /// opened that the server did not refuse (acked, or unanswered at the end).
    pub expected: u64,
    /// Deliveries of this run's messages, duplicates included.
    pub delivered: u64,
    pub missing: u64,
    /// Of `missing`, those sent after the server had closed that guest's connection.
    pub missing_after_server_close: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Frames that looked like this run's messages but name no message it could have sent.
    pub unexpected: u64,
    /// `missing / expected` (0 when nothing was expected).
    pub loss_ratio: f64,
    /// Guests that reported.
    pub guests: u64,
    /// Guests that received every expected message exactly once, in order.
    pub guests_complete: u64,
}

impl Completeness {
    /// Adds another process's counts (a load worker's); `loss_ratio` is left
    /// to the caller, who has the whole.
    pub fn add(&mut self, o: &Completeness) {
        self.expected += o.expected;
        self.delivered += o.delivered;
        self.missing += o.missing;
        self.missing_after_server_close += o.missing_after_server_close;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.unexpected += o.unexpected;
        self.guests += o.guests;
        self.guests_complete += o.guests_complete;
    }
}

/// One node's share of a run with several targets (`--target URL1,URL2,...`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeShare {
    /// The node's origin.
    pub url: String,
    /// Guests and talkers the plan sent to it (round robin).
    pub guests_planned: u64,
    pub talkers_planned: u64,
    /// Guests that opened their conversation on it (and reported).
    pub guests_opened: u64,
    /// Completeness of its guests.
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
}

impl NodeShare {
    /// Adds another count of the same node (a worker's share of it).
    pub fn add(&mut self, o: &NodeShare) {
        self.guests_opened += o.guests_opened;
        self.expected += o.expected;
        self.delivered += o.delivered;
        self.missing += o.missing;
    }
}

/// Everything recorded, taken at the end of the run.
#[derive(Debug)]
pub struct Finished {
    pub fanout: Histogram<u64>,
    pub time_to_last: Histogram<u64>,
    pub connect: Histogram<u64>,
    pub open: Histogram<u64>,
    pub ack: Histogram<u64>,
    pub reconnect: Histogram<u64>,
    pub reopen: Histogram<u64>,
    /// Fan-out of the deliveries on re-opened connections (also in `fanout`).
    pub fanout_returned: Histogram<u64>,
    /// Churn and reconnect storm counts (all zero without them).
    pub churn: ChurnCounts,
    pub completeness: Completeness,
    pub errors: BTreeMap<String, u64>,
    pub series: Vec<SecondSample>,
    /// Messages written to a socket and messages acked.
    pub sent: u64,
    pub acked: u64,
    pub send_failed: u64,
    /// Written, but neither acked nor refused by the end of the run.
    pub unanswered: u64,
    pub guests_opened: u64,
    pub guest_connect_failed: u64,
    pub guest_open_failed: u64,
    pub guests_closed_by_server: u64,
    /// Guests whose `opened` arrived after the first message was due.
    pub guests_opened_late: u64,
    pub rest_requests: u64,
    /// Of a staged run, one per stage (empty otherwise).
    pub steps: Vec<StepCounts>,
    /// Of a staged run that crossed its line.
    pub stopped: Option<Stopped>,
    /// When sending stopped early (µs), if it did.
    pub send_stop: Option<u64>,
    /// Per node of the target: what went there and how complete it was.
    pub nodes: Vec<NodeShare>,
}

struct Inner {
    clock: Clock,
    plan: Plan,
    /// The first message's intended time (µs), or [`NEVER`] until the conductor sets it.
    send_start: AtomicU64,
    /// Cancelled once `send_start` is set (churning guests wait for it to plan their turns).
    started: CancellationToken,
    /// No message intended at or after this (µs) is sent; [`NEVER`] unless a staged run crossed its line.
    send_stop: AtomicU64,
    stopped: Mutex<Option<Stopped>>,
    /// Guests with the conversation open now, by conversation.
    open_by_conversation: Vec<AtomicU64>,
    shards: Vec<Mutex<Shard>>,
    ops: Mutex<Ops>,
    /// `talkers × per_talker` slots, talker-major.
    slots: Vec<MessageSlot>,
    /// Per talker: one past the highest sequence number written so far (0: none).
    written: Vec<AtomicU64>,
    counters: Counters,
    errors: Mutex<BTreeMap<String, u64>>,
    guests: Mutex<Vec<GuestOutcome>>,
    series: Mutex<Vec<SecondSample>>,
}

/// A cheap-clone handle to the run's recorder.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl Recorder {
    pub fn new(clock: Clock, plan: Plan) -> Recorder {
        let n = plan.workload.talkers * plan.messages_per_talker() as usize;
        let steps = if plan.staged() { plan.timeline.stages().len() } else { 0 };
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    total: histogram(),
                    second: coarse_histogram(),
                    steps: (0..steps).map(|_| histogram()).collect(),
                    returned: histogram(),
                    delivered: 0,
                })
            })
            .collect();
        let written = (0..plan.workload.talkers).map(|_| AtomicU64::new(0)).collect();
        Recorder {
            inner: Arc::new(Inner {
                send_stop: AtomicU64::new(NEVER),
                stopped: Mutex::new(None),
                open_by_conversation: (0..plan.workload.conversations).map(|_| AtomicU64::new(0)).collect(),
                clock,
                plan,
                send_start: AtomicU64::new(NEVER),
                started: CancellationToken::new(),
                shards,
                ops: Mutex::new(Ops {
                    connect: histogram(),
                    open: histogram(),
                    ack: histogram(),
                    reconnect: histogram(),
                    reopen: histogram(),
                }),
                slots: (0..n).map(|_| MessageSlot::new()).collect(),
                written,
                counters: Counters::default(),
                errors: Mutex::new(BTreeMap::new()),
                guests: Mutex::new(Vec::new()),
                series: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    pub fn plan(&self) -> &Plan {
        &self.inner.plan
    }

    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Fixes the first message's intended time (µs); only the first call counts.
    pub fn set_send_start(&self, micros: u64) {
        let _ = self.inner.send_start.compare_exchange(NEVER, micros, Relaxed, Relaxed);
        self.inner.started.cancel();
    }

    /// Cancelled once the first message's time is fixed.
    pub fn started(&self) -> CancellationToken {
        self.inner.started.clone()
    }

    /// The first message's intended time (µs), once fixed.
    pub fn send_start(&self) -> Option<u64> {
        Some(self.inner.send_start.load(Relaxed)).filter(|&v| v != NEVER)
    }

    /// Stops sending: no message intended at or after `at_us` goes out. Only the first call counts.
    pub fn stop_sending(&self, at_us: u64, stopped: Stopped) {
        if self.inner.send_stop.compare_exchange(NEVER, at_us, Relaxed, Relaxed).is_ok() {
            *lock(&self.inner.stopped) = Some(stopped);
        }
    }

    /// Messages intended at or after this time (µs) are not sent, once a staged run crossed its line.
    pub fn send_stop(&self) -> Option<u64> {
        Some(self.inner.send_stop.load(Relaxed)).filter(|&v| v != NEVER)
    }

    /// A guest of conversation `c` opened (`true`) or stopped having it open (`false`).
    pub fn guest_open_changed(&self, c: usize, open: bool) {
        if let Some(n) = self.inner.open_by_conversation.get(c) {
            if open {
                n.fetch_add(1, Relaxed);
            } else {
                n.fetch_sub(1, Relaxed);
            }
        }
    }

    /// A guest of conversation `c`, open since `opened_at` µs, stops having it open now (a
    /// churn turn or the reconnect storm), having received what `tracker` holds. A staged
    /// run's live judgement ([`Recorder::live_step`]) waits for a delivery to every guest
    /// open when a message was written; the messages written in this stretch that the guest
    /// has not received are no longer waited for there (what it had to receive is judged
    /// exactly at the end, from its intervals).
    pub fn guest_away(&self, c: usize, opened_at: u64, tracker: &DeliveryTracker) {
        let plan = &self.inner.plan;
        if !plan.staged() {
            return;
        }
        for (local, k) in plan.talkers_of(c).enumerate() {
            let end = self.inner.written.get(k).map_or(0, |w| w.load(Relaxed));
            for seq in (end.saturating_sub(AWAY_WALK)..end).rev() {
                let Some(slot) = self.slot(k, seq) else { continue };
                let sent = slot.sent.load(Relaxed);
                if sent == NEVER {
                    continue;
                }
                if sent < opened_at {
                    break;
                }
                if !tracker.received(local, seq) {
                    let _ = slot.receivers.fetch_update(Relaxed, Relaxed, |r| r.checked_sub(1));
                }
            }
        }
    }

    /// Stage `step` of a staged run as it stands at `now_us` (see [`LiveStep`]).
    pub fn live_step(&self, step: usize, now_us: u64) -> LiveStep {
        let mut histogram = histogram();
        for shard in &self.inner.shards {
            if let Some(h) = lock(shard).steps.get(step) {
                let _ = histogram.add(h);
            }
        }
        let (mut pending, mut expected) = (0, 0);
        let plan = &self.inner.plan;
        for k in 0..plan.workload.talkers {
            for seq in plan.timeline.seqs(step) {
                let Some(slot) = self.slot(k, seq) else { continue };
                let intended = slot.intended.load(Relaxed);
                if intended == NEVER || slot.refused.load(Relaxed) {
                    continue;
                }
                let receivers = slot.receivers.load(Relaxed);
                let waiting = receivers.saturating_sub(slot.deliveries.load(Relaxed));
                expected += receivers;
                pending += waiting;
                if waiting > 0 {
                    histogram.saturating_record_n(now_us.saturating_sub(intended).max(1), waiting);
                }
            }
        }
        LiveStep { histogram, pending, expected }
    }

    fn slot(&self, talker: usize, seq: u64) -> Option<&MessageSlot> {
        let per = self.inner.plan.messages_per_talker();
        if seq >= per {
            return None;
        }
        self.inner.slots.get(talker * per as usize + seq as usize)
    }

    /// One delivery of message `seq` of (global) talker `talker`, intended at
    /// `intended` µs, arrived at `arrival` µs, at a guest using `shard`.
    pub fn delivery(&self, shard: usize, talker: usize, seq: u64, intended: u64, arrival: u64) {
        self.record_delivery(shard, talker, seq, intended, arrival, false);
    }

    /// [`Recorder::delivery`] at a guest on a connection it re-opened (churn, reconnect storm).
    pub fn delivery_returned(&self, shard: usize, talker: usize, seq: u64, intended: u64, arrival: u64) {
        self.record_delivery(shard, talker, seq, intended, arrival, true);
    }

    fn record_delivery(&self, shard: usize, talker: usize, seq: u64, intended: u64, arrival: u64, returned: bool) {
        let latency = arrival.saturating_sub(intended).max(1);
        {
            let step = if self.inner.plan.staged() { self.inner.plan.timeline.stage_of(seq) } else { usize::MAX };
            let mut s = lock(&self.inner.shards[shard % SHARDS]);
            s.total.saturating_record(latency);
            s.second.saturating_record(latency);
            s.delivered += 1;
            if returned {
                s.returned.saturating_record(latency);
            }
            if let Some(h) = s.steps.get_mut(step) {
                h.saturating_record(latency);
            }
        }
        if let Some(slot) = self.slot(talker, seq) {
            slot.last_arrival.fetch_max(arrival, Relaxed);
            slot.deliveries.fetch_add(1, Relaxed);
        }
    }

    pub fn connect_time(&self, d: Duration) {
        lock(&self.inner.ops).connect.saturating_record(micros(d));
    }

    pub fn open_time(&self, d: Duration) {
        lock(&self.inner.ops).open.saturating_record(micros(d));
    }

    /// A rejoining guest connected (`connect`) and opened (`open`).
    pub fn rejoin_times(&self, connect: Duration, open: Duration) {
        let mut ops = lock(&self.inner.ops);
        ops.reconnect.saturating_record(micros(connect));
        ops.reopen.saturating_record(micros(open));
    }

    /// Talker `talker` wrote message `seq` (intended at `intended` µs) at `sent` µs.
    pub fn message_sent(&self, talker: usize, seq: u64, intended: u64, sent: u64) {
        if let Some(slot) = self.slot(talker, seq) {
            let c = self.inner.plan.talker_conversation(talker);
            let open = self.inner.open_by_conversation.get(c).map(|n| n.load(Relaxed)).unwrap_or(0);
            slot.receivers.store(open, Relaxed);
            slot.intended.store(intended, Relaxed);
            slot.sent.store(sent, Relaxed);
            if let Some(w) = self.inner.written.get(talker) {
                w.fetch_max(seq + 1, Relaxed);
            }
        }
        self.inner.counters.sent.fetch_add(1, Relaxed);
    }

    /// The ack of message `seq` of talker `talker` arrived at `at` µs; returns
    /// the latency from the message's intended send time.
    pub fn message_acked(&self, talker: usize, seq: u64, at: u64) -> Option<Duration> {
        let slot = self.slot(talker, seq)?;
        let intended = slot.intended.load(Relaxed);
        if intended == NEVER || slot.acked.swap(at, Relaxed) != NEVER {
            self.error("ack: for a message not sent or acked twice");
            return None;
        }
        let latency = at.saturating_sub(intended).max(1);
        lock(&self.inner.ops).ack.saturating_record(latency);
        self.inner.counters.acked.fetch_add(1, Relaxed);
        Some(Duration::from_micros(latency))
    }

    /// The server answered message `seq` of talker `talker` with an error frame.
    pub fn message_refused(&self, talker: usize, seq: u64) {
        if let Some(slot) = self.slot(talker, seq) {
            slot.refused.store(true, Relaxed);
        }
    }

    /// Counts one error under `what`, e.g. `open: guest_limit_reached` or `close: 1008 slow consumer`.
    pub fn error(&self, what: impl Into<String>) {
        *lock(&self.inner.errors).entry(what.into()).or_insert(0) += 1;
    }

    /// Errors counted so far, every kind.
    pub fn errors_total(&self) -> u64 {
        lock(&self.inner.errors).values().sum()
    }

    /// A guest stopped; its deliveries are judged at the end.
    pub fn guest_finished(&self, outcome: GuestOutcome) {
        lock(&self.inner.guests).push(outcome);
    }

    /// Guests that have stopped and reported.
    pub fn guests_finished(&self) -> usize {
        lock(&self.inner.guests).len()
    }

    /// Closes one second of the time series and returns it.
    pub fn tick(&self, server: Option<ProcSample>, own: Option<ProcSample>, machine: Option<f64>) -> SecondSample {
        self.tick_with_histogram(server, own, machine).0
    }

    /// [`Recorder::tick`], also returning the second's fan-out histogram (what a load worker sends on).
    pub fn tick_with_histogram(
        &self,
        server: Option<ProcSample>,
        own: Option<ProcSample>,
        machine: Option<f64>,
    ) -> (SecondSample, Histogram<u64>) {
        let mut second = coarse_histogram();
        for shard in &self.inner.shards {
            let mut s = lock(shard);
            let _ = second.add(&s.second);
            s.second.reset();
        }
        let c = &self.inner.counters;
        let q = |h: &Histogram<u64>, p: f64| (!h.is_empty()).then(|| h.value_at_quantile(p) as f64 / 1000.0);
        let sample = SecondSample {
            t: self.inner.clock.now_secs(),
            guests_connected: c.guests_connected.load(Relaxed),
            guests_open: c.guests_open.load(Relaxed),
            sent: c.sent.load(Relaxed),
            delivered: self.delivered(),
            deliveries: second.len(),
            p50_ms: q(&second, 0.5),
            p99_ms: q(&second, 0.99),
            max_ms: (!second.is_empty()).then(|| second.max() as f64 / 1000.0),
            server_cpu_pct: server.and_then(|s| s.cpu_pct),
            server_rss_kib: server.map(|s| s.rss_kib),
            loadgen_cpu_pct: own.and_then(|s| s.cpu_pct),
            loadgen_rss_kib: own.map(|s| s.rss_kib),
            machine_cpu_pct: machine,
        };
        lock(&self.inner.series).push(sample.clone());
        (sample, second)
    }

    /// Adds a second to the time series made elsewhere (a coordinator merging its workers).
    pub fn push_sample(&self, sample: SecondSample) {
        lock(&self.inner.series).push(sample);
    }

    /// Facts of this process's talkers' messages not reported yet (see `dist/wire.rs`): those
    /// acked or refused, and with `all` also those still unanswered. Each is handed out once.
    pub fn take_facts(&self, all: bool) -> Vec<crate::dist::wire::Fact> {
        let plan = &self.inner.plan;
        let per = plan.messages_per_talker();
        let mut out = Vec::new();
        for k in (0..plan.workload.talkers).filter(|&k| plan.share.holds(k)) {
            for seq in 0..per {
                let Some(slot) = self.slot(k, seq) else { break };
                let sent = slot.sent.load(Relaxed);
                if sent == NEVER {
                    // A talker writes in order: nothing after its first unwritten message.
                    break;
                }
                let (acked, refused) = (slot.acked.load(Relaxed), slot.refused.load(Relaxed));
                if !(all || acked != NEVER || refused) || slot.reported.swap(true, Relaxed) {
                    continue;
                }
                out.push((k as u32, seq, slot.intended.load(Relaxed), sent, acked, refused));
            }
        }
        out
    }

    /// Records a message written by another process's talker (or, in a coordinator, by any
    /// worker's): when it was intended and written, acked or refused. A slot already written
    /// here is left alone. With `count`, the sent and acked counters count it too (a
    /// coordinator's totals; a worker's counters stay its own talkers').
    pub fn apply_fact(&self, &(k, seq, intended, sent, acked, refused): &crate::dist::wire::Fact, count: bool) {
        let Some(slot) = self.slot(k as usize, seq) else {
            self.error("facts: a message outside the plan");
            return;
        };
        if slot.sent.compare_exchange(NEVER, sent, Relaxed, Relaxed).is_err() {
            return;
        }
        slot.intended.store(intended, Relaxed);
        slot.acked.store(acked, Relaxed);
        slot.refused.store(refused, Relaxed);
        if !count {
            return;
        }
        self.inner.counters.sent.fetch_add(1, Relaxed);
        if acked != NEVER {
            self.inner.counters.acked.fetch_add(1, Relaxed);
        }
    }

    /// (talker, seq, latest arrival µs, deliveries) of every message that reached a guest here.
    pub fn last_arrivals(&self) -> Vec<(u32, u64, u64, u64)> {
        let per = self.inner.plan.messages_per_talker() as usize;
        self.inner
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.deliveries.load(Relaxed) > 0)
            .map(|(i, s)| {
                ((i / per) as u32, (i % per) as u64, s.last_arrival.load(Relaxed), s.deliveries.load(Relaxed))
            })
            .collect()
    }

    /// Adds deliveries of message `seq` of talker `k` made elsewhere (a worker's guests), the latest at `last` µs.
    pub fn merge_arrivals(&self, k: u32, seq: u64, last: u64, deliveries: u64) {
        if let Some(slot) = self.slot(k as usize, seq) {
            slot.last_arrival.fetch_max(last, Relaxed);
            slot.deliveries.fetch_add(deliveries, Relaxed);
        }
    }

    /// Messages of conversation `c` written and not refused: what a guest that had it open
    /// all along had to receive (a lost worker's guests are counted missing that many).
    pub fn expected_in_conversation(&self, c: usize) -> u64 {
        let plan = &self.inner.plan;
        let per = plan.messages_per_talker();
        plan.talkers_of(c)
            .flat_map(|k| (0..per).filter_map(move |seq| self.slot(k, seq)))
            .filter(|s| s.sent.load(Relaxed) != NEVER && !s.refused.load(Relaxed))
            .count() as u64
    }

    /// Loss so far, for the live figures: of the messages written at least `patience_us`
    /// ago (the run's `--drain`) and not refused, the deliveries due (one per guest that
    /// had the conversation open when the message was written) and how many of them have
    /// not arrived. A live estimate: a delivery that comes later still counts as delivered
    /// in `summary.json`, whose completeness is judged per guest at the end. A guest that
    /// leaves (churn, reconnect storm) stays counted as due, so [`Recorder::overdue`] is
    /// only meaningful without them (the caller leaves it out then). Walks every message
    /// written so far, one atomic load each: at 10,000 messages about 10 µs per call.
    pub fn overdue(&self, patience_us: u64) -> Overdue {
        let now = self.inner.clock.now_micros();
        let per = self.inner.plan.messages_per_talker();
        let mut o = Overdue::default();
        for (k, written) in self.inner.written.iter().enumerate() {
            for seq in 0..written.load(Relaxed).min(per) {
                let Some(slot) = self.slot(k, seq) else { break };
                let sent = slot.sent.load(Relaxed);
                if sent == NEVER || slot.refused.load(Relaxed) || sent.saturating_add(patience_us) > now {
                    continue;
                }
                let due = slot.receivers.load(Relaxed);
                o.expected += due;
                o.missing += due.saturating_sub(slot.deliveries.load(Relaxed));
            }
        }
        o
    }

    /// Deliveries of this run's messages to guests so far, duplicates included.
    pub fn delivered(&self) -> u64 {
        self.inner.shards.iter().map(|s| lock(s).delivered).sum()
    }

    /// The fan-out p99 of the whole run so far, ms.
    pub fn fanout_p99_ms(&self) -> Option<f64> {
        let mut all = histogram();
        for shard in &self.inner.shards {
            let _ = all.add(&lock(shard).total);
        }
        (!all.is_empty()).then(|| all.value_at_quantile(0.99) as f64 / 1000.0)
    }

    /// Takes everything recorded and judges completeness.
    pub fn finish(&self) -> Finished {
        let plan = &self.inner.plan;
        let per = plan.messages_per_talker();
        let (mut fanout, mut fanout_returned) = (histogram(), histogram());
        for shard in &self.inner.shards {
            let s = lock(shard);
            let _ = fanout.add(&s.total);
            let _ = fanout_returned.add(&s.returned);
        }
        let mut time_to_last = histogram();
        for slot in &self.inner.slots {
            let intended = slot.intended.load(Relaxed);
            if intended != NEVER && slot.deliveries.load(Relaxed) > 0 {
                time_to_last.saturating_record(slot.last_arrival.load(Relaxed).saturating_sub(intended).max(1));
            }
        }
        // Per conversation: (local talker, seq, sent µs) of every message written and not
        // refused. A message still unanswered at the end (no ack, no error) is expected too:
        // a server that drops a message without a word must not escape the loss count.
        let acked: Vec<Vec<(usize, u64, u64, u64)>> = (0..plan.workload.conversations)
            .map(|c| {
                plan.talkers_of(c)
                    .enumerate()
                    .flat_map(|(local, k)| {
                        (0..per).filter_map(move |seq| {
                            let slot = self.slot(k, seq)?;
                            let sent = slot.sent.load(Relaxed);
                            (sent != NEVER && !slot.refused.load(Relaxed))
                                .then(|| (local, seq, sent, slot.acked.load(Relaxed)))
                        })
                    })
                    .collect()
            })
            .collect();
        let mut churn = ChurnCounts::default();
        let mut comp = Completeness::default();
        let send_start = self.send_start().unwrap_or(u64::MAX);
        let mut guests_opened_late = 0;
        let mut nodes: Vec<NodeShare> = plan
            .targets
            .iter()
            .enumerate()
            .map(|(i, url)| NodeShare {
                url: url.clone(),
                guests_planned: (0..plan.workload.guests).filter(|&g| plan.guest_node(g) == i).count() as u64,
                talkers_planned: (0..plan.workload.talkers).filter(|&k| plan.talker_node(k) == i).count() as u64,
                ..NodeShare::default()
            })
            .collect();
        let mut steps: Vec<StepCounts> = (0..if plan.staged() { plan.timeline.stages().len() } else { 0 })
            .map(|_| StepCounts { histogram: histogram(), sent: 0, expected: 0, missing: 0 })
            .collect();
        for g in lock(&self.inner.guests).iter() {
            guests_opened_late += u64::from(g.opened_at > send_start);
            let expected: Vec<(usize, u64, u64)> = acked[g.conversation]
                .iter()
                .copied()
                .filter(|&(local, seq, sent, acked)| g.intervals.iter().any(|iv| iv.expects(local, seq, sent, acked)))
                .map(|(local, seq, sent, _)| (local, seq, sent))
                .collect();
            let missing: Vec<(usize, u64, u64)> =
                expected.iter().copied().filter(|&(t, s, _)| !g.tracker.received(t, s)).collect();
            let group = if g.intervals.len() > 1 {
                &mut churn.came_back
            } else if g.intervals.iter().all(|iv| iv.end == IntervalEnd::Open) {
                &mut churn.stayed
            } else {
                &mut churn.gone
            };
            group.count(expected.len() as u64, g.tracker.delivered, missing.len() as u64);
            if !steps.is_empty() {
                for &(_, seq, _) in &expected {
                    steps[plan.timeline.stage_of(seq)].expected += 1;
                }
                for &(_, seq, _) in &missing {
                    steps[plan.timeline.stage_of(seq)].missing += 1;
                }
            }
            if let Some(n) = nodes.get_mut(g.node) {
                n.guests_opened += 1;
                n.expected += expected.len() as u64;
                n.delivered += g.tracker.delivered;
                n.missing += missing.len() as u64;
            }
            comp.guests += 1;
            comp.expected += expected.len() as u64;
            comp.missing += missing.len() as u64;
            if let Some(closed) = g.closed_by_server_at {
                comp.missing_after_server_close +=
                    missing.iter().filter(|&&(_, _, sent)| sent >= closed).count() as u64;
            }
            comp.delivered += g.tracker.delivered;
            comp.duplicates += g.tracker.duplicates;
            comp.out_of_order += g.tracker.out_of_order;
            comp.unexpected += g.tracker.unexpected;
            if missing.is_empty() && g.tracker.duplicates == 0 && g.tracker.out_of_order == 0 {
                comp.guests_complete += 1;
            }
        }
        comp.loss_ratio = if comp.expected == 0 { 0.0 } else { comp.missing as f64 / comp.expected as f64 };
        let unanswered = self
            .inner
            .slots
            .iter()
            .filter(|s| s.sent.load(Relaxed) != NEVER && s.acked.load(Relaxed) == NEVER && !s.refused.load(Relaxed))
            .count() as u64;
        for (i, step) in steps.iter_mut().enumerate() {
            for shard in &self.inner.shards {
                let _ = step.histogram.add(&lock(shard).steps[i]);
            }
            step.sent = (0..plan.workload.talkers)
                .flat_map(|k| plan.timeline.seqs(i).filter_map(move |seq| self.slot(k, seq)))
                .filter(|s| s.sent.load(Relaxed) != NEVER)
                .count() as u64;
        }
        let ops = lock(&self.inner.ops);
        let c = &self.inner.counters;
        churn.leaves = c.leaves.load(Relaxed);
        churn.drops = c.drops.load(Relaxed);
        churn.rejoined = c.rejoined.load(Relaxed);
        churn.reopen_refused = c.reopen_refused.load(Relaxed);
        churn.reconnect_failed = c.reconnect_failed.load(Relaxed);
        churn.rejoin_gave_up = c.rejoin_gave_up.load(Relaxed);
        churn.leaves_skipped = c.leaves_skipped.load(Relaxed);
        churn.open_at_end = lock(&self.inner.guests).iter().filter(|g| g.open_at_end).count() as u64;
        Finished {
            nodes,
            reconnect: ops.reconnect.clone(),
            reopen: ops.reopen.clone(),
            fanout_returned,
            churn,
            steps,
            stopped: lock(&self.inner.stopped).clone(),
            send_stop: self.send_stop(),
            unanswered,
            fanout,
            time_to_last,
            connect: ops.connect.clone(),
            open: ops.open.clone(),
            ack: ops.ack.clone(),
            completeness: comp,
            errors: lock(&self.inner.errors).clone(),
            series: lock(&self.inner.series).clone(),
            sent: c.sent.load(Relaxed),
            acked: c.acked.load(Relaxed),
            send_failed: c.send_failed.load(Relaxed),
            guests_opened: c.guests_opened.load(Relaxed),
            guest_connect_failed: c.guest_connect_failed.load(Relaxed),
            guest_open_failed: c.guest_open_failed.load(Relaxed),
            guests_closed_by_server: c.guests_closed_by_server.load(Relaxed),
            guests_opened_late,
            rest_requests: c.rest_requests.load(Relaxed),
        }
    }
}

/// A duration in whole microseconds, at least 1 (histograms start at 1).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Schedule, Workload};

    /// A guest of conversation 0 on node 0, open from 0 to the end.
    fn open_from_start(tracker: DeliveryTracker) -> GuestOutcome {
        GuestOutcome {
            node: 0,
            conversation: 0,
            opened_at: 0,
            intervals: vec![Interval { opened_at: 0, end: IntervalEnd::Open }],
            closed_by_server_at: None,
            open_at_end: true,
            tracker,
        }
    }

    fn plan(guests: usize, talkers: usize, conversations: usize) -> Plan {
        let workload =
            Workload { guests, talkers, conversations, readers: 0, rate: 10.0, duration: 0.5, ..Workload::DEFAULT };
        Plan::new(
            workload,
            Vec::new(),
            Schedule::new(&workload, 0.0, 0.0),
            "t".into(),
            "a".into(),
            "s".into(),
            "http://127.0.0.1:1".into(),
        )
    }

    #[test]
    fn judges_expected_missing_and_late_openers() {
        let rec = Recorder::new(Clock::start_now(), plan(2, 1, 1));
        // Talker 0 sends 6 messages at 100, 200, ... µs; #4 gets no answer, #5 is refused.
        for seq in 0..6 {
            rec.message_sent(0, seq, seq * 100, seq * 100 + 100);
            if seq < 4 {
                rec.message_acked(0, seq, seq * 100 + 150).unwrap();
            }
        }
        rec.message_refused(0, 5);
        // Guest A opened at 0 and got 0, 1, 1, 3: 2 and the unanswered 4 are missing, 1 is
        // duplicated; the refused 5 is not expected.
        let mut a = DeliveryTracker::new(1, 5);
        for s in [0, 1, 1, 3] {
            a.observe(0, s);
            rec.delivery(0, 0, s, s * 100, s * 100 + 500);
        }
        rec.guest_finished(open_from_start(a));
        // Guest B opened at 250 µs: only 2, 3 and 4 (sent at 300, 400, 500) are expected; it got 3 and 0.
        let mut b = DeliveryTracker::new(1, 5);
        b.observe(0, 3);
        b.observe(0, 0);
        rec.guest_finished(GuestOutcome {
            node: 0,
            conversation: 0,
            opened_at: 250,
            intervals: vec![Interval { opened_at: 250, end: IntervalEnd::Open }],
            closed_by_server_at: Some(350),
            open_at_end: false,
            tracker: b,
        });
        let f = rec.finish();
        let c = f.completeness;
        assert_eq!(c.expected, 5 + 3);
        assert_eq!(c.missing, 2 + 2);
        assert_eq!(c.missing_after_server_close, 1, "B's #4 was sent at 500, after the close at 350; #2 before it");
        assert_eq!(f.unanswered, 1);
        assert_eq!(c.duplicates, 1);
        assert_eq!(c.out_of_order, 1);
        assert_eq!(c.delivered, 6);
        assert_eq!(c.guests_complete, 0);
        assert_eq!(f.fanout.len(), 4);
        assert_eq!(f.ack.len(), 4);
        assert_eq!(f.time_to_last.len(), 3, "messages 0, 1 and 3 reached someone");
        assert_eq!(f.time_to_last.max(), 500);
    }

    #[test]
    fn churned_guests_expect_only_what_was_stored_while_they_had_it_open() {
        let rec = Recorder::new(Clock::start_now(), plan(1, 1, 1));
        // 5 messages written at 100, 200, ... µs, each acked 50 µs later.
        for seq in 0..5 {
            rec.message_sent(0, seq, seq * 100 + 100, seq * 100 + 100);
            rec.message_acked(0, seq, seq * 100 + 150).unwrap();
        }
        // Open at 0, left at 260: #0 and #1 (acked at 150, 250) expected, #2 (acked at 350) not.
        // Open again at 330, dropped after #4 arrived: the gap #3 and #4 expected. It got #0 and #4.
        let mut t = DeliveryTracker::new(1, 5);
        t.observe(0, 0);
        t.observe(0, 4);
        let intervals = vec![
            Interval { opened_at: 0, end: IntervalEnd::Left { at: 260 } },
            Interval { opened_at: 330, end: IntervalEnd::Dropped { highest: t.highest() } },
        ];
        rec.guest_finished(GuestOutcome {
            node: 0,
            conversation: 0,
            opened_at: 0,
            intervals,
            closed_by_server_at: None,
            open_at_end: false,
            tracker: t,
        });
        let f = rec.finish();
        assert_eq!(f.completeness.expected, 4, "#0, #1, #3, #4");
        assert_eq!(f.completeness.missing, 2, "#1 and #3");
        assert_eq!((f.churn.stayed.guests, f.churn.came_back.guests, f.churn.open_at_end), (0, 1, 0));
        assert_eq!((f.churn.came_back.expected, f.churn.came_back.missing), (4, 2));
    }

    #[test]
    fn facts_move_between_workers_once_and_make_expectations_exact() {
        use crate::plan::Share;
        // Worker 0 holds talker 0; worker 1 holds talker 1 and the one guest.
        let mut p0 = plan(1, 2, 1);
        p0.share = Share { index: 0, count: 2 };
        let mut p1 = p0.clone();
        p1.share = Share { index: 1, count: 2 };
        let (w0, w1) = (Recorder::new(Clock::start_now(), p0), Recorder::new(Clock::start_now(), p1));
        for seq in 0..3 {
            w0.message_sent(0, seq, seq * 100, seq * 100 + 10);
            w1.message_sent(1, seq, seq * 100, seq * 100 + 10);
        }
        w0.message_acked(0, 0, 50).unwrap();
        w0.message_refused(0, 1);
        let first = w0.take_facts(false);
        assert_eq!(first.iter().map(|f| (f.1, f.5)).collect::<Vec<_>>(), vec![(0, false), (1, true)]);
        assert!(w0.take_facts(false).is_empty(), "each fact is handed out once");
        let last = w0.take_facts(true);
        assert_eq!(last.len(), 1, "the unanswered #2, at the end");
        assert_eq!(last[0].4, u64::MAX);
        assert!(w1.take_facts(false).is_empty(), "worker 1's talker has no answers yet");
        for f in first.iter().chain(&last) {
            w1.apply_fact(f, false);
        }
        // The guest (on worker 1) opened at 0 and got talker 0's #0 and its own talker's #0..#2.
        let mut t = DeliveryTracker::new(2, 5);
        for (local, seq) in [(0, 0), (1, 0), (1, 1), (1, 2)] {
            t.observe(local, seq);
            w1.delivery(0, local, seq, seq * 100, seq * 100 + 500);
        }
        w1.guest_finished(open_from_start(t));
        let f = w1.finish();
        assert_eq!(
            f.completeness.expected, 5,
            "3 of its own talker, talker 0's #0 and unanswered #2, not the refused #1"
        );
        assert_eq!(f.completeness.missing, 1, "talker 0's #2");
        assert_eq!(f.sent, 3, "a worker's counters count its own talkers only");
        assert_eq!(w1.expected_in_conversation(0), 5);
        assert_eq!(w1.last_arrivals().len(), 4);
        let coordinator = Recorder::new(Clock::start_now(), plan(1, 2, 1));
        for f in first.iter().chain(&last) {
            coordinator.apply_fact(f, true);
        }
        for (k, seq, last, n) in w1.last_arrivals() {
            coordinator.merge_arrivals(k, seq, last, n);
        }
        let c = coordinator.finish();
        assert_eq!((c.sent, c.acked, c.unanswered), (3, 1, 1));
        assert_eq!(c.time_to_last.len(), 1, "talker 0's #0 reached a guest; talker 1's facts never came here");
    }

    #[test]
    fn overdue_counts_what_is_due_and_missing_of_messages_older_than_the_patience() {
        let rec = Recorder::new(Clock::start_now(), plan(2, 1, 1));
        rec.guest_open_changed(0, true);
        rec.guest_open_changed(0, true);
        for seq in 0..3 {
            rec.message_sent(0, seq, 0, 0);
        }
        rec.message_refused(0, 2);
        // #0 reached both guests, #1 one of them; the refused #2 is due to nobody.
        rec.delivery(0, 0, 0, 0, 10);
        rec.delivery(1, 0, 0, 0, 10);
        rec.delivery(0, 0, 1, 0, 10);
        assert_eq!(rec.overdue(0), Overdue { expected: 4, missing: 1 });
        // With an hour's patience nothing written now is due yet.
        assert_eq!(rec.overdue(3_600_000_000), Overdue::default());
    }

    #[test]
    fn a_guest_away_is_no_longer_waited_for_by_the_live_step() {
        use crate::stages::Stage;
        let workload = Workload { guests: 2, talkers: 1, readers: 0, rate: 10.0, duration: 1.0, ..Workload::DEFAULT };
        let stages = vec![Stage { duration: 1.0, from: 10.0, to: 10.0 }];
        let plan = Plan::new(
            workload,
            stages,
            Schedule::new(&workload, 0.0, 0.0),
            "t".into(),
            "a".into(),
            "s".into(),
            "http://127.0.0.1:1".into(),
        );
        let rec = Recorder::new(Clock::start_now(), plan);
        rec.guest_open_changed(0, true);
        rec.guest_open_changed(0, true);
        // Both guests open from 0; #0..#3 written at 100, 200, 300, 400 µs.
        for seq in 0..4 {
            rec.message_sent(0, seq, seq * 100 + 100, seq * 100 + 100);
        }
        // Guest A got #0 and #1, then dropped: #2 and #3 were in flight with its socket.
        let mut a = DeliveryTracker::new(1, 10);
        for seq in 0..2 {
            a.observe(0, seq);
            rec.delivery(0, 0, seq, seq * 100 + 100, seq * 100 + 150);
        }
        assert_eq!(rec.live_step(0, 1_000).pending, 2 * 4 - 2);
        rec.guest_away(0, 0, &a);
        rec.guest_open_changed(0, false);
        let live = rec.live_step(0, 1_000);
        assert_eq!((live.expected, live.pending), (8 - 2, 4), "B still owes #0..#3; A's #2 and #3 are not waited for");
    }

    #[test]
    fn tick_takes_only_the_last_second() {
        let rec = Recorder::new(Clock::start_now(), plan(1, 1, 1));
        rec.delivery(3, 0, 0, 0, 2_000);
        let s = rec.tick(None, None, None);
        assert_eq!(s.deliveries, 1);
        assert!((s.p99_ms.unwrap() - 2.0).abs() < 0.05);
        assert_eq!(rec.tick(None, None, None).deliveries, 0);
        assert_eq!(rec.finish().series.len(), 2);
    }
}
