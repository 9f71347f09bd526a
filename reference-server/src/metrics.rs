//! The reference server's own metrics, served at `GET /metrics` in the
//! Prometheus text format (0.0.4) by [`crate::routes`]. Every metric name,
//! unit, help text and label set is written here; the table for operators
//! (name, type, unit, labels, meaning) is in the README, "Watching a run live".
//!
//! A handle, not a global recorder: one [`Metrics`] per server, a cheap-clone
//! handle in the app state. Tests and the in-process conformance suite run
//! many servers in one process, and a global recorder would add their figures
//! together. The one exception is SQLite errors ([`sqlite_error`]): they are
//! counted where a rusqlite error becomes an `ApiError`, which has no state at
//! hand, so that counter is process-wide.
//!
//! Two kinds of figures:
//! - counted where things happen, each by a one-line call: a connection's
//!   writes and close ([`Metrics::written`], [`Metrics::closed`]), a group
//!   commit ([`Metrics::commit`]), a hub pass ([`Metrics::fanout`]), an HTTP
//!   request ([`Metrics::http`]);
//! - read at scrape time from the state that already holds them, so nothing
//!   is kept twice: presence and guests per conversation (the hub), open
//!   notification windows, webhook queues and their counters, and the
//!   process's CPU, memory and file descriptors (`/proc/self`).
//!
//! Cardinality: no label takes a user, conversation or message id. The label
//! values are `role` (2), `code` (6), `app` (the configured apps), `method`
//! (6) x `route` (the router's templates, never the raw path) x `status`
//! class (5), `kind` (4) and `rank` ([`TOP_CONVERSATIONS`]); so the number of
//! series is bounded by the code and the configuration, not by traffic.

use crate::state::AppState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use supergroup_protocol::frames::close;

/// The prefix of every server metric but the `process_*` ones.
pub const PREFIX: &str = "supergroup";

/// Guest counts shown for this many conversations, the largest first
/// (`supergroup_conversation_guests{rank}`): a bounded view instead of one
/// series per conversation.
pub const TOP_CONVERSATIONS: usize = 5;

/// `Content-Type` of `GET /metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Buckets of durations, seconds: 50 µs to 10 s.
const SECONDS: [f64; 16] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
/// Buckets of counts: powers of two up to 1,024 (the default outbound queue;
/// a group commit takes at most 512 jobs).
const COUNTS: [f64; 11] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// How a realtime connection ended, as the `code` label says it.
const CLOSE_CODES: [&str; 6] = ["1001", "1008", "1009", "4000", "peer", "other"];

/// `{code}` of `supergroup_realtime_closes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

/// `{method, route, status}` of `supergroup_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    /// The route template (`/v1/{app_id}/users/{user_id}`), `unmatched` when no route matched.
    route: String,
    /// `2xx`, `4xx`...
    status: &'static str,
}

/// The handle: clone it freely.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

/// The metrics updated where things happen; [`Registry`] holds a clone of each.
struct Inner {
    registry: Registry,
    connections: Gauge,
    /// One counter per [`CLOSE_CODES`] entry, in that order.
    closes: Vec<Counter>,
    frames_written: Counter,
    bytes_written: Counter,
    outbound_depth: Histogram,
    commit_seconds: Histogram,
    commit_jobs: Histogram,
    commit_failures: Counter,
    fanout_seconds: Histogram,
    messages_published: Counter,
    http: Family<HttpLabels, Histogram, fn() -> Histogram>,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS)
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix(PREFIX);
        let connections = Gauge::default();
        r.register("realtime_connections", "Realtime (WebSocket) connections open now", connections.clone());
        let close_family = Family::<CodeLabel, Counter>::default();
        r.register(
            "realtime_closes",
            "Realtime connections ended, by how: the server's close code (1001 shutdown, 1008 slow consumer, \
             1009 message too big, 4000 idle timeout), or peer (the client closed, or the socket failed)",
            close_family.clone(),
        );
        let closes = CLOSE_CODES.iter().map(|code| close_family.get_or_create_owned(&CodeLabel { code })).collect();
        let frames_written = Counter::default();
        r.register(
            "realtime_frames_written",
            "Frames written to realtime connections (messages, replies, events)",
            frames_written.clone(),
        );
        let bytes_written = Counter::default();
        r.register_with_unit(
            "realtime_written",
            "Payload bytes of the frames written to realtime connections",
            Unit::Bytes,
            bytes_written.clone(),
        );
        let outbound_depth = Histogram::new(COUNTS);
        r.register(
            "outbound_queue_depth",
            "Items waiting in a connection's outbound queue when it wakes to write (observed once per write; \
             an item is a reply or one room's frames of one group commit; at --outbound-queue the connection \
             is closed with 1008)",
            outbound_depth.clone(),
        );
        let commit_seconds = seconds_histogram();
        r.register_with_unit(
            "commit_duration",
            "Time of one group commit's transaction (every job's statements and the COMMIT with its fsync)",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        let commit_jobs = Histogram::new(COUNTS);
        r.register(
            "commit_batch_jobs",
            "Jobs (realtime sends, REST batches, users created on connect, user, conversation and participant \
             changes, realtime reads) stored by one group commit",
            commit_jobs.clone(),
        );
        let commit_failures = Counter::default();
        r.register(
            "commit_failures",
            "Group commits whose transaction failed (every job of it answered internal)",
            commit_failures.clone(),
        );
        let fanout_seconds = seconds_histogram();
        r.register_with_unit(
            "fanout_duration",
            "Time of one hub pass: queueing one group commit's messages to every connection that has their \
             conversation open",
            Unit::Seconds,
            fanout_seconds.clone(),
        );
        let messages_published = Counter::default();
        r.register(
            "messages_published",
            "Messages handed to the hub for broadcast (each once, however many connections receive it)",
            messages_published.clone(),
        );
        let http = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(seconds_histogram);
        r.register_with_unit(
            "http_request_duration",
            "HTTP requests by method, route template and status class, with their time to the response head \
             (the realtime upgrade included, up to its 101)",
            Unit::Seconds,
            http.clone(),
        );
        Metrics(Arc::new(Inner {
            registry: r,
            connections,
            closes,
            frames_written,
            bytes_written,
            outbound_depth,
            commit_seconds,
            commit_jobs,
            commit_failures,
            fanout_seconds,
            messages_published,
            http,
        }))
    }

    /// A realtime connection opened; the gauge goes down when the guard drops.
    pub fn connection(&self) -> ConnectionGuard {
        self.0.connections.inc();
        ConnectionGuard(self.clone())
    }

    /// A realtime connection ended: with the server's close code, or `None` when the peer ended it.
    pub fn closed(&self, code: Option<u16>) {
        let label = match code {
            Some(close::GOING_AWAY) => 0,
            Some(close::POLICY) => 1,
            Some(close::TOO_BIG) => 2,
            Some(close::IDLE) => 3,
            None => 4,
            Some(_) => 5,
        };
        self.0.closes[label].inc();
    }

    /// A connection woke with `waiting` items in its queue.
    pub fn outbound_depth(&self, waiting: usize) {
        self.0.outbound_depth.observe(waiting as f64);
    }

    /// A connection wrote `frames` frames of `bytes` payload bytes.
    pub fn written(&self, frames: usize, bytes: usize) {
        self.0.frames_written.inc_by(frames as u64);
        self.0.bytes_written.inc_by(bytes as u64);
    }

    /// One group commit of `jobs` jobs took `took`; `ok` is false when its transaction failed.
    pub fn commit(&self, jobs: usize, took: Duration, ok: bool) {
        self.0.commit_jobs.observe(jobs as f64);
        self.0.commit_seconds.observe(took.as_secs_f64());
        if !ok {
            self.0.commit_failures.inc();
        }
    }

    /// One hub pass queued `messages` messages in `took`.
    pub fn fanout(&self, messages: usize, took: Duration) {
        self.0.fanout_seconds.observe(took.as_secs_f64());
        self.0.messages_published.inc_by(messages as u64);
    }

    /// One HTTP request: `route` is the matched template (None: no route matched).
    pub fn http(&self, method: &axum::http::Method, route: Option<&str>, status: u16, took: Duration) {
        use axum::http::Method;
        let method = match *method {
            Method::GET => "GET",
            Method::PUT => "PUT",
            Method::POST => "POST",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::HEAD => "HEAD",
            _ => "other",
        };
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let labels = HttpLabels { method, route: route.unwrap_or("unmatched").to_string(), status };
        self.0.http.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// The text of `GET /metrics`: the metrics above, then the figures read
    /// now from `state` and from `/proc/self`.
    pub fn render(&self, state: &AppState) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.0.registry);
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &scraped(state));
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &process());
        out
    }
}

/// Holds one realtime connection in `supergroup_realtime_connections`.
pub struct ConnectionGuard(Metrics);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.0.connections.dec();
    }
}

/// `{role}`, `{app}`, `{rank}`, `{kind}`: the labels of the figures read at scrape time.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabel {
    role: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabel {
    app: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RankLabel {
    rank: String,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The figures read at scrape time from the server's state.
fn scraped(state: &AppState) -> Registry {
    let mut r = Registry::with_prefix(PREFIX);
    let census = state.hub.census(TOP_CONVERSATIONS);
    let open = Family::<RoleLabel, Gauge>::default();
    open.get_or_create(&RoleLabel { role: "guest" }).set(census.guest_presences as i64);
    open.get_or_create(&RoleLabel { role: "participant" }).set(census.participant_presences as i64);
    r.register(
        "realtime_open",
        "Conversations open on realtime connections, by the role held (one per connection and conversation)",
        open,
    );
    let talkers = Gauge::<i64>::default();
    talkers.set(state.talkers.moved() as i64);
    r.register(
        "realtime_talkers",
        format!(
            "Realtime connections moved to the talkers' runtime (from their first send; at most {} at once)",
            crate::talkers::MAX_TALKERS
        ),
        talkers,
    );
    let conversations = Gauge::<i64>::default();
    conversations.set(census.rooms as i64);
    r.register("conversations_open", "Conversations that at least one realtime connection has open", conversations);
    let top = Family::<RankLabel, Gauge>::default();
    for (i, guests) in census.top_guests.iter().enumerate() {
        top.get_or_create(&RankLabel { rank: (i + 1).to_string() }).set(*guests as i64);
    }
    r.register(
        "conversation_guests",
        format!(
            "Guests (distinct users holding a guest slot) of the {TOP_CONVERSATIONS} open conversations with \
             the most guests, rank 1 the largest; no series when fewer are open"
        ),
        top,
    );
    let windows = Gauge::<i64>::default();
    windows.set(state.notifier.open_windows() as i64);
    r.register(
        "notification_windows_open",
        "Notification windows open now (one per recipient and conversation)",
        windows,
    );
    let held = Gauge::<i64>::default();
    held.set(state.notifier.held_bytes() as i64);
    r.register_with_unit(
        "notification_windows",
        "Message bytes the open notification windows hold, as counted against --notification-budget-bytes",
        Unit::Bytes,
        held,
    );
    let early: Counter = Counter::default();
    early.inc_by(state.notifier.closed_early());
    r.register(
        "notification_windows_closed_early",
        "Notification windows closed early because the windows' byte budget was reached",
        early,
    );
    let stats = state.webhooks.stats();
    let per_app = |name: &str, help: &str, r: &mut Registry, value: &dyn Fn(&crate::webhooks::AppStats) -> u64| {
        let f = Family::<AppLabel, Counter>::default();
        for s in &stats {
            f.get_or_create(&AppLabel { app: s.app.clone() }).inc_by(value(s));
        }
        r.register(name, help, f);
    };
    per_app("webhook_deliveries", "Webhook events delivered (a 2xx answer), by app", &mut r, &|s| s.delivered);
    per_app("webhook_retries", "Webhook delivery attempts that failed and were tried again, by app", &mut r, &|s| {
        s.retried
    });
    per_app(
        "webhook_failures",
        "Webhook events given up after the last attempt failed (or whose URL was refused), by app",
        &mut r,
        &|s| s.failed,
    );
    per_app(
        "webhook_dropped",
        "Webhook events dropped at the app's queue bounds (--webhook-queue-events, --webhook-budget-bytes)",
        &mut r,
        &|s| s.dropped,
    );
    let queued = Family::<AppLabel, Gauge>::default();
    let queued_bytes = Family::<AppLabel, Gauge>::default();
    for s in &stats {
        queued.get_or_create(&AppLabel { app: s.app.clone() }).set(s.queued_events as i64);
        queued_bytes.get_or_create(&AppLabel { app: s.app.clone() }).set(s.queued_bytes as i64);
    }
    r.register("webhook_queue_events", "Webhook events queued or in flight, by app", queued);
    r.register_with_unit(
        "webhook_queue",
        "Body bytes of the webhook events queued or in flight, by app",
        Unit::Bytes,
        queued_bytes,
    );
    let errors = Family::<KindLabel, Counter>::default();
    for (kind, n) in sqlite_errors() {
        errors.get_or_create(&KindLabel { kind }).inc_by(n);
    }
    r.register(
        "sqlite_errors",
        "SQLite errors that failed a request or a group commit, by kind (busy: SQLITE_BUSY after the 5 s \
         busy timeout, locked, constraint, other); counted for the whole process",
        errors,
    );
    r
}

/// SQLite errors by kind, process-wide: busy, locked, constraint, other.
static SQLITE_ERRORS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
const SQLITE_KINDS: [&str; 4] = ["busy", "locked", "constraint", "other"];

/// Counts a SQLite error that failed a request or a group commit.
pub fn sqlite_error(e: &rusqlite::Error) {
    use rusqlite::ErrorCode as C;
    let kind = match e.sqlite_error_code() {
        Some(C::DatabaseBusy) => 0,
        Some(C::DatabaseLocked) => 1,
        Some(C::ConstraintViolation) => 2,
        _ => 3,
    };
    SQLITE_ERRORS[kind].fetch_add(1, Ordering::Relaxed);
}

fn sqlite_errors() -> impl Iterator<Item = (&'static str, u64)> {
    SQLITE_KINDS.iter().zip(&SQLITE_ERRORS).map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
}

/// Clock ticks per second of `/proc/self/stat` (`USER_HZ`): 100 on every
/// architecture Linux runs on today (reading `sysconf` would need `unsafe`,
/// which this workspace forbids).
const TICKS_PER_SEC: f64 = 100.0;

/// The process figures every Prometheus client library exports under these
/// names, read from `/proc/self` (Linux; elsewhere they are left out).
fn process() -> Registry {
    let mut r = Registry::default();
    let Some(p) = ProcSelf::read() else { return r };
    let cpu = Counter::<f64, AtomicU64>::default();
    cpu.inc_by(p.cpu_seconds);
    r.register("process_cpu_seconds", "User and system CPU time of the server process", cpu);
    let rss = Gauge::<i64>::default();
    rss.set(p.rss_bytes as i64);
    r.register_with_unit("process_resident_memory", "Resident memory of the server process", Unit::Bytes, rss);
    let fds = Gauge::<i64>::default();
    fds.set(p.open_fds as i64);
    r.register("process_open_fds", "File descriptors the server process holds (sockets included)", fds);
    r
}

/// One reading of `/proc/self`.
#[derive(Debug, PartialEq)]
struct ProcSelf {
    cpu_seconds: f64,
    rss_bytes: u64,
    open_fds: u64,
}

impl ProcSelf {
    fn read() -> Option<ProcSelf> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        Some(ProcSelf {
            cpu_seconds: cpu_ticks(&stat)? as f64 / TICKS_PER_SEC,
            rss_bytes: rss_kib(&status)? * 1024,
            open_fds,
        })
    }
}

/// `utime + stime` of a `/proc/PID/stat` line, in clock ticks. The command
/// name (field 2) may hold spaces and parentheses: fields are counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of `/proc/PID/status`, KiB.
fn rss_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (super (group) srv) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(rss_kib("Name:\tx\nVmRSS:\t   2048 kB\nThreads: 3\n"), Some(2048));
        assert!(ProcSelf::read().is_some_and(|p| p.rss_bytes > 0 && p.open_fds > 0), "this is Linux");
    }

    #[test]
    fn every_update_shows_in_the_text_under_its_name() {
        let m = Metrics::new();
        let _c = m.connection();
        m.closed(Some(close::POLICY));
        m.closed(None);
        m.written(3, 120);
        m.outbound_depth(7);
        m.commit(4, Duration::from_micros(300), true);
        m.fanout(10, Duration::from_micros(20));
        m.http(&axum::http::Method::PUT, Some("/v1/{app_id}/users/{user_id}"), 201, Duration::from_millis(2));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &m.0.registry).unwrap();
        for line in [
            "supergroup_realtime_connections 1",
            "supergroup_realtime_closes_total{code=\"1008\"} 1",
            "supergroup_realtime_closes_total{code=\"peer\"} 1",
            "supergroup_realtime_closes_total{code=\"4000\"} 0",
            "supergroup_realtime_frames_written_total 3",
            "supergroup_realtime_written_bytes_total 120",
            "supergroup_outbound_queue_depth_bucket{le=\"8\"} 1",
            "supergroup_commit_batch_jobs_sum 4.0",
            "supergroup_commit_duration_seconds_count 1",
            "supergroup_messages_published_total 10",
            "supergroup_http_request_duration_seconds_count{method=\"PUT\",route=\"/v1/{app_id}/users/{user_id}\",status=\"2xx\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
        }
        drop(_c);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &m.0.registry).unwrap();
        assert!(text.lines().any(|l| l == "supergroup_realtime_connections 0"));
    }
}
