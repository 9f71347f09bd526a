//! `supergroup-load worker --coordinator nats://HOST:4222`: one load worker. It
//! answers the coordinator's clock requests, asks to join (`hello`, retried until
//! `--wait`), and runs its share of the plan ([`crate::plan::Share`]: guest `g`,
//! talker `k` and reader `r` when `g % workers == index`) with the same goose
//! scenarios, recorder and completeness check as a one-process run, on the run
//! clock the coordinator gave it. Each second it publishes a [`Snapshot`] and sends
//! the facts (written, acked, refused) of its talkers' resolved messages; the
//! first message's time comes from the coordinator's [`Start`] (the barrier). At
//! the end it sends its last facts (unanswered ones too), pulls every worker's
//! facts (so each of its guests expects exactly the messages of its conversation
//! that were written after it opened, whoever wrote them), judges its guests, and
//! hands in its [`WorkerResult`] and the last arrival of every message at its guests.
//!
//! Test only: `SG_LOAD_TEST_CLOCK_OFFSET_MS` (read by this subcommand alone) shifts
//! every `CLOCK_MONOTONIC` reading this worker reports by that many ms and makes it
//! claim another host, so a test can check that the coordinator recovers the offset
//! within the bound it states. Never set it for a measurement.

use crate::cli::WorkerArgs;
use crate::clock::{Clock, monotonic_us};
use crate::context::RunContext;
use crate::dist::wire::{
    self, ARRIVALS_PER_MESSAGE, Assignment, ClockReading, FACTS_PER_MESSAGE, Fact, FactBatch, Hello, ResultPart,
    Snapshot, Start, TableChunk, TableRequest, Welcome, WorkerResult,
};
use crate::probe::Probe;
use crate::procstat::ProcSampler;
use crate::recorder::{Recorder, SecondSample};
use crate::report::summary::encode_histogram;
use crate::run::{collect_guests, conduct, goose_figures, run_goose};
use crate::{fdlimit, plan::JOIN_DEADLINE_SECS};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use supergroup_protocol::client::{Rest, Tls};
use tokio_util::sync::CancellationToken;

/// The test-only clock offset variable (ms, may be negative).
pub const TEST_CLOCK_OFFSET_VAR: &str = "SG_LOAD_TEST_CLOCK_OFFSET_MS";
/// Longest wait for one request's reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Tries of a request that must arrive (facts, results, start) before giving up.
pub const TRIES: usize = 5;
/// Longest wait for the connection to the broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Beyond the plan's latest start: how long a worker waits for the coordinator's start.
const START_SLACK_SECS: f64 = 30.0;
/// Longest wait, after this worker's run, for every worker's facts.
const TABLE_WAIT: Duration = Duration::from_secs(90);

/// Connects to the broker, bounded.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<async_nats::Client> {
    let opts = async_nats::ConnectOptions::new().name(name).connection_timeout(CONNECT_TIMEOUT);
    tokio::time::timeout(CONNECT_TIMEOUT, opts.connect(url))
        .await
        .map_err(|_| anyhow::anyhow!("no NATS broker answered at {url} within {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| anyhow::anyhow!("cannot connect to the NATS broker at {url}: {e}"))
}

/// Sends a request that must arrive, retrying ([`TRIES`] × [`REQUEST_TIMEOUT`]); the reply's payload.
pub async fn deliver(nc: &async_nats::Client, subject: &str, body: bytes::Bytes) -> anyhow::Result<bytes::Bytes> {
    let mut last = String::new();
    for _ in 0..TRIES {
        match tokio::time::timeout(REQUEST_TIMEOUT, nc.request(subject.to_string(), body.clone())).await {
            Ok(Ok(reply)) => return Ok(reply.payload),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no reply within {REQUEST_TIMEOUT:?}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    anyhow::bail!("{subject}: {TRIES} tries failed, the last: {last}")
}

/// This host's name (for the report), or `unknown`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// This boot of this host: processes with the same one share `CLOCK_MONOTONIC`.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|b| b.trim().to_string()).unwrap_or_default()
}

/// The test-only clock offset, µs (0 without the variable).
fn test_clock_offset_us() -> anyhow::Result<i64> {
    match std::env::var(TEST_CLOCK_OFFSET_VAR) {
        Err(_) => Ok(0),
        Ok(v) => {
            let ms: f64 =
                v.trim().parse().map_err(|_| anyhow::anyhow!("{TEST_CLOCK_OFFSET_VAR}=`{v}` is not a number of ms"))?;
            Ok((ms * 1000.0).round() as i64)
        }
    }
}

/// Held while facts are sent; `true` once the last batch went, after which no batch may follow.
type FactsLock = Arc<tokio::sync::Mutex<bool>>;

/// Runs one worker from joining to handing in its result.
pub async fn run(args: &WorkerArgs) -> anyhow::Result<()> {
    let offset_us = test_clock_offset_us()?;
    let (host, pid) = (hostname(), std::process::id());
    let wid = wire::token(&format!("{host}-{pid}-{}", monotonic_us()));
    let nc = connect(&args.coordinator, &format!("supergroup-load worker {wid}")).await?;
    let stop = CancellationToken::new();

    // Clock requests are answered from now on, before `hello`: the coordinator asks while it welcomes.
    let mut clock_sub = nc.subscribe(wire::worker_clock(&wid)).await?;
    let (nc_clock, stop_clock) = (nc.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = stop_clock.cancelled() => break,
                m = clock_sub.next() => m,
            };
            let Some(msg) = msg else { break };
            if let Some(reply) = msg.reply {
                let reading = ClockReading { monotonic_us: monotonic_us() + offset_us };
                let _ = nc_clock.publish(reply, wire::encode(&reading)).await;
            }
        }
    });
    let mut start_sub = nc.subscribe(wire::worker_start(&wid)).await?;

    let boot = if offset_us != 0 { format!("{}-test-offset", boot_id()) } else { boot_id() };
    let hello = Hello { version: wire::VERSION, wid: wid.clone(), host: host.clone(), pid, boot_id: boot };
    let a = join(&nc, args, &hello).await?;
    let index = a.plan.share.index;
    println!(
        "worker {index} of {} (run {}, clock offset {:+.3} ms ± {:.3} ms)",
        a.plan.share.count,
        a.plan.run_id,
        a.offset_us as f64 / 1000.0,
        a.offset_bound_us as f64 / 1000.0
    );
    let mut plan = a.plan.clone().with_timeline();
    plan.secret = args.secret.clone();
    let clock = Clock::from_monotonic_zero(a.zero_monotonic_us - offset_us);
    let limits = fdlimit::ensure(plan.local_users() as u64);
    let out = args.out.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("supergroup-load-worker-{wid}")));
    std::fs::create_dir_all(&out)?;
    let tls = Tls::from_option(args.ca_cert.as_deref())?;
    let rests: Vec<Rest> =
        plan.targets.iter().map(|t| Rest::with_tls(t, &plan.app_id, &plan.secret, tls.clone())).collect();
    let recorder = Recorder::new(clock, plan.clone());
    if let Err(e) = &limits {
        recorder.error(format!("worker: {e}"));
    }
    let ctx = RunContext::new(plan.clone(), rests, recorder.clone());
    let probe = Probe::start(&recorder).await.map_err(|e| anyhow::anyhow!("instrument probe: {e}"))?;

    // The start barrier: the coordinator fixes the first message's time.
    let (nc_start, rec_start, stop_start) = (nc.clone(), recorder.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = stop_start.cancelled() => break,
                m = start_sub.next() => m,
            };
            let Some(msg) = msg else { break };
            if let Ok(s) = wire::decode::<Start>("start", &msg.payload) {
                rec_start.set_send_start(s.send_start_us);
            }
            if let Some(reply) = msg.reply {
                let _ = nc_start.publish(reply, "ok".into()).await;
            }
        }
    });
    let done = Arc::new(AtomicBool::new(false));
    let facts_lock: FactsLock = Arc::new(tokio::sync::Mutex::new(false));
    let ticker =
        tokio::spawn(tick(nc.clone(), recorder.clone(), index, stop.clone(), done.clone(), facts_lock.clone()));

    let start_wait = Duration::from_secs_f64(plan.schedule.latest_send_start() + START_SLACK_SECS);
    let conductor = tokio::spawn(conduct(
        recorder.clone(),
        plan.schedule,
        ctx.stop.clone(),
        ctx.drain_over.clone(),
        Vec::new(),
        Some(start_wait),
    ));
    // goose holds users for at most this long after the ramp: the wait for the start, then the run.
    let hold = (start_wait.as_secs_f64() + plan.schedule.drain_end - plan.schedule.send_start + JOIN_DEADLINE_SECS)
        .ceil() as u64;
    let goose = run_goose(&ctx, &out.join("goose-report.html"), &out, hold).await;
    ctx.stop.cancel();
    let _ = conductor.await;
    collect_guests(&recorder).await;
    let instrument = probe.stop().await;
    let goose_rows = match &goose {
        Ok(m) => goose_figures(m, &out.join("goose-report.html")).requests,
        Err(e) => {
            recorder.error(format!("worker: goose: {e}"));
            Vec::new()
        }
    };

    // Last facts, then every worker's, then judge this worker's guests and hand in.
    {
        let mut last_sent = facts_lock.lock().await;
        let facts = recorder.take_facts(true);
        send_facts(&nc, &plan.run_id, index, facts, true).await?;
        *last_sent = true;
    }
    pull_table(&nc, &plan.run_id, index, &recorder).await?;
    let finished = recorder.finish();
    let sched = match recorder.send_start() {
        Some(s) => plan.schedule.with_send_start(s as f64 / 1e6),
        None => plan.schedule,
    };
    let own: Vec<f64> = finished
        .series
        .iter()
        .filter(|s| s.t > sched.send_start && s.t <= sched.send_end + 1.0)
        .filter_map(|s| s.loadgen_cpu_pct)
        .collect();
    let result = WorkerResult {
        fanout: encode_histogram(&finished.fanout),
        connect: encode_histogram(&finished.connect),
        open: encode_histogram(&finished.open),
        ack: encode_histogram(&finished.ack),
        reconnect: encode_histogram(&finished.reconnect),
        reopen: encode_histogram(&finished.reopen),
        fanout_returned: encode_histogram(&finished.fanout_returned),
        instrument: encode_histogram(&instrument),
        completeness: finished.completeness.clone(),
        churn: finished.churn.clone(),
        errors: finished.errors.clone(),
        nodes: finished.nodes.clone(),
        guests_opened: finished.guests_opened,
        guest_connect_failed: finished.guest_connect_failed,
        guest_open_failed: finished.guest_open_failed,
        guests_closed_by_server: finished.guests_closed_by_server,
        guests_opened_late: finished.guests_opened_late,
        send_failed: finished.send_failed,
        rest_requests: finished.rest_requests,
        cpu_mean_pct: (!own.is_empty()).then(|| own.iter().sum::<f64>() / own.len() as f64),
        rss_peak_kib: finished.series.iter().filter_map(|s| s.loadgen_rss_kib).max(),
        goose: goose_rows,
    };
    let arrivals = recorder.last_arrivals();
    let chunks: Vec<&[(u32, u64, u64, u64)]> =
        if arrivals.is_empty() { vec![&[]] } else { arrivals.chunks(ARRIVALS_PER_MESSAGE).collect() };
    let mut header = Some(Box::new(result));
    for (part, chunk) in chunks.iter().enumerate() {
        let body = ResultPart { index, part, parts: chunks.len(), header: header.take(), arrivals: chunk.to_vec() };
        deliver(&nc, &wire::result(&plan.run_id), wire::encode(&body)).await?;
    }
    done.store(true, Relaxed);
    stop.cancel();
    let _ = ticker.await;
    let _ = nc.flush().await;
    let c = &finished.completeness;
    println!(
        "worker {index}: {} guests, {} deliveries, {} missing; result handed in",
        finished.guests_opened, c.delivered, c.missing
    );
    Ok(())
}

/// Asks to join until a coordinator welcomes this worker (or refuses it), bounded by `--wait`.
async fn join(nc: &async_nats::Client, args: &WorkerArgs, hello: &Hello) -> anyhow::Result<Assignment> {
    let subject = wire::hello(args.run_id.as_deref());
    let deadline = Instant::now() + Duration::from_secs_f64(args.wait);
    // Bounded by the deadline; at least one try.
    loop {
        // The coordinator measures this worker's clock before it answers: allow for that. No
        // answer (no coordinator yet, or a timeout): ask again below.
        if let Ok(Ok(reply)) =
            tokio::time::timeout(REQUEST_TIMEOUT * 2, nc.request(subject.clone(), wire::encode(hello))).await
        {
            match wire::decode::<Welcome>(&subject, &reply.payload)? {
                Welcome::Joined(a) if a.version == wire::VERSION => return Ok(*a),
                Welcome::Joined(a) => {
                    anyhow::bail!("the coordinator speaks schema v{}, this worker v{}", a.version, wire::VERSION)
                }
                Welcome::Refused(why) => anyhow::bail!("the coordinator refused this worker: {why}"),
            }
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "no coordinator took this worker within {:.0} s on `{subject}` at {}: start the run with \
                 `supergroup-load --workers N --coordinator {}`",
                args.wait,
                args.coordinator,
                args.coordinator
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Sends facts in batches of at most [`FACTS_PER_MESSAGE`]; with `last`, the last batch says so (sent even when empty).
async fn send_facts(
    nc: &async_nats::Client,
    run_id: &str,
    index: usize,
    facts: Vec<Fact>,
    last: bool,
) -> anyhow::Result<()> {
    let subject = wire::facts(run_id);
    let chunks: Vec<&[Fact]> = if facts.is_empty() { vec![&[]] } else { facts.chunks(FACTS_PER_MESSAGE).collect() };
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        if chunk.is_empty() && !last {
            continue;
        }
        let batch = FactBatch { index, facts: chunk.to_vec(), last: last && i + 1 == n };
        deliver(nc, &subject, wire::encode(&batch)).await?;
    }
    Ok(())
}

/// Pulls every worker's facts once the coordinator has them all, and records the other workers' here.
async fn pull_table(nc: &async_nats::Client, run_id: &str, index: usize, recorder: &Recorder) -> anyhow::Result<()> {
    let subject = wire::table(run_id);
    let share = recorder.plan().share;
    let deadline = Instant::now() + TABLE_WAIT;
    let mut from = 0;
    // Bounded by TABLE_WAIT; each pass either advances `from` or waits 200 ms.
    while Instant::now() < deadline {
        let reply = deliver(nc, &subject, wire::encode(&TableRequest { index, from })).await?;
        match wire::decode::<TableChunk>(&subject, &reply)? {
            TableChunk::NotReady => tokio::time::sleep(Duration::from_millis(200)).await,
            TableChunk::Facts { facts, total } => {
                from += facts.len();
                for f in facts.iter().filter(|f| !share.holds(f.0 as usize)) {
                    recorder.apply_fact(f, false);
                }
                if from >= total {
                    return Ok(());
                }
            }
        }
    }
    anyhow::bail!("the coordinator did not hand out every worker's facts within {TABLE_WAIT:?}")
}

/// Once a second until the worker is done: a snapshot (published) and the facts resolved since (delivered).
async fn tick(
    nc: async_nats::Client,
    recorder: Recorder,
    index: usize,
    stop: CancellationToken,
    done: Arc<AtomicBool>,
    facts_lock: FactsLock,
) {
    let run_id = recorder.plan().run_id.clone();
    let mut own = ProcSampler::new(std::process::id());
    let _ = own.sample();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.tick().await;
    // Bounded by the worker's run: `stop` ends it once the result is handed in.
    loop {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = interval.tick() => {}
        }
        let (sample, second): (SecondSample, _) = recorder.tick_with_histogram(None, own.sample(), None);
        let c = recorder.counters();
        let snapshot = Snapshot {
            index,
            t: sample.t,
            guests_connected: sample.guests_connected,
            guests_open: sample.guests_open,
            guests_done: c.guests_opened.load(Relaxed)
                + c.guest_connect_failed.load(Relaxed)
                + c.guest_open_failed.load(Relaxed),
            talkers_done: c.talkers_joined.load(Relaxed) + c.talkers_failed.load(Relaxed),
            sent: c.sent.load(Relaxed),
            delivered: sample.delivered,
            deliveries: sample.deliveries,
            errors: recorder.errors_total(),
            cpu_pct: sample.loadgen_cpu_pct,
            rss_kib: sample.loadgen_rss_kib,
            histogram: encode_histogram(&second),
            done: done.load(Relaxed),
        };
        let _ = nc.publish(wire::snapshots(&run_id), wire::encode(&snapshot)).await;
        if stop.is_cancelled() {
            break;
        }
        let last_sent = facts_lock.lock().await;
        if !*last_sent {
            let facts = recorder.take_facts(false);
            if !facts.is_empty()
                && let Err(e) = send_facts(&nc, &run_id, index, facts, false).await
            {
                recorder.error(format!("worker: facts: {e}"));
            }
        }
    }
}
