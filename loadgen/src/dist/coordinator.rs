//! `supergroup-load --workers N`: the coordinator of a run spread over load
//! workers. It does what a one-process run does before the users start (the
//! local server or the targets, the app's limits, the rooms), then:
//!
//! 1. brings up the broker: `--coordinator URL`, or a local `nats-server`
//!    ([`super::broker`]) plus N local worker processes (this binary,
//!    `worker --coordinator URL --run-id RUN`), each with its own open-file budget;
//! 2. welcomes N workers (bounded by `--worker-wait`): measures each one's clock
//!    ([`super::clock_sync`]) and hands it the plan, its share and the run clock's zero;
//! 3. the start barrier: once every worker's snapshots say its guests and talkers
//!    have joined or failed (bounded like a one-process run), fixes the first
//!    message's time and sends it to every worker (a request each, retried);
//! 4. once a second merges the workers' snapshots (HDR histograms added, counters
//!    summed) into one point of the time series, and counts a worker that sent no
//!    snapshot for [`LIVENESS`] lost;
//! 5. after the drain collects every worker's facts (what each message did), hands
//!    the whole table back to every worker (so every guest's expectations are exact
//!    across workers), collects their results and merges them losslessly: histograms
//!    added, counts summed, time to last guest from the latest arrival of each
//!    message at any worker. A lost worker is named, its guests' expected deliveries
//!    are counted missing and the run is LOSSY (with thresholds: a failed rule
//!    `workers_lost==0`), never green.
//!
//! The result is the same `summary.json` as one process's plus `workers` and `clock`.

use crate::cli::RunArgs;
use crate::clock::Clock;
use crate::dist::broker::LocalBroker;
use crate::dist::clock_sync::{self, ClockEstimate};
use crate::dist::wire::{
    self, Assignment, Fact, FactBatch, Hello, ResultPart, Snapshot, Start, TableChunk, TableRequest, Welcome,
    WorkerResult,
};
use crate::dist::worker::{boot_id, connect, deliver};
use crate::live::Live;
use crate::plan::{JOIN_DEADLINE_SECS, Plan, Schedule, Share, Workload};
use crate::procstat::{MachineSampler, ProcSampler};
use crate::progress::Progress;
use crate::recorder::{Finished, Recorder, SecondSample, histogram};
use crate::report::summary::{
    self, ClockFigures, Environment, GooseFigures, GooseRequestRow, Summary, Target, WorkerFigures, decode_histogram,
};
use crate::report::{self, tables::count};
use crate::run::{Outcome, check_limits, create_conversations, default_reports_root, run_id, start_target, utc_now};
use crate::thresholds::{self, Verdict};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use supergroup_protocol::client::{Rest, Tls};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// A worker that sent no snapshot for this long is counted lost (10 s: ten missed
/// seconds, far past a busy runtime's hiccup on a loaded 2-core machine).
pub const LIVENESS: Duration = Duration::from_secs(10);
/// Longest wait, after the drain, for every worker's last facts and then for its result.
const END_WAIT: Duration = Duration::from_secs(90);
/// Longest wait for a local worker process to exit at the end.
const WORKER_EXIT_WAIT: Duration = Duration::from_secs(10);

/// A worker's result with the last arrivals of messages at its guests (`None` for a lost worker).
type Handed = (WorkerResult, Vec<(u32, u64, u64, u64)>);

/// One worker as the coordinator knows it.
struct WorkerSlot {
    hello: Hello,
    clock: ClockEstimate,
    last_seen: Instant,
    latest: Snapshot,
    lost: Option<String>,
    last_facts: bool,
    /// Result parts by number, and how many there are.
    parts: BTreeMap<usize, ResultPart>,
    parts_expected: Option<usize>,
}

impl WorkerSlot {
    fn has_result(&self) -> bool {
        self.parts_expected.is_some_and(|n| self.parts.len() >= n)
    }
}

/// What the coordinator's tasks share (a std mutex: never held across an `.await`).
#[derive(Default)]
struct State {
    workers: Vec<WorkerSlot>,
    /// Every worker's facts, one per message (a retried batch is not counted twice).
    facts: BTreeMap<(u32, u64), Fact>,
    /// Built once every live worker has sent its last facts.
    table: Option<Arc<Vec<Fact>>>,
    /// Snapshots received since the last tick.
    pending: Vec<Snapshot>,
    /// The run has started: no more workers are welcomed.
    closed: bool,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs a load test over `workers` load workers and writes its report.
pub async fn run(args: &RunArgs, workers: usize) -> anyhow::Result<Outcome> {
    let mut workload = Workload::resolve(args);
    let stages = workload.apply_stages(args)?;
    anyhow::ensure!(
        stages.is_empty(),
        "--step-rate and --stages do not work with --workers yet: a stepped run judges each step while it runs, from every delivery"
    );
    workload.validate()?;
    anyhow::ensure!(workers >= 1, "--workers must be at least 1");
    anyhow::ensure!(workload.guests >= workers, "--workers ({workers}) must be at most --guests ({})", workload.guests);
    let rules = thresholds::parse_all(&args.thresholds)?;
    let (started_at, stamp) = utc_now();
    let dir = args.out.clone().unwrap_or_else(|| default_reports_root().join(&stamp));
    std::fs::create_dir_all(&dir)?;
    if args.target.is_none() {
        // Workers split the load generator's sockets, not the local server's: it is one
        // process holding one socket per guest, so its open-file limit still bounds the run.
        crate::fdlimit::ensure(workload.users() as u64).map_err(|e| {
            anyhow::anyhow!(
                "the local reference server is one process: {e} More guests need a --target with several nodes."
            )
        })?;
    }
    let (local, targets) = start_target(args, &workload, &dir).await?;
    let server_pid = local.as_ref().map(|l| l.pid).or(args.server_pid);
    let broker = match &args.coordinator {
        Some(_) => None,
        None => match LocalBroker::start(&dir).await {
            Ok(b) => {
                println!("workers: started a local nats-server at {} (pid {}); it stops with the run", b.url, b.pid);
                Some(b)
            }
            Err(e) => {
                if let Some(l) = local {
                    l.stop().await;
                }
                return Err(e);
            }
        },
    };
    let url = args.coordinator.clone().or_else(|| broker.as_ref().map(|b| b.url.clone())).unwrap_or_default();
    let c = Coordinator {
        args,
        workload,
        workers,
        rules,
        dir,
        started_at,
        stamp,
        targets,
        server_pid,
        local: local.is_some(),
        url,
    };
    let result = c.execute().await;
    if let Some(b) = broker {
        b.stop().await;
    }
    if let Some(l) = local {
        let ended = l.stop().await;
        if !ended.starts_with("exited") {
            eprintln!("local server: {ended}");
        }
    }
    result
}

struct Coordinator<'a> {
    args: &'a RunArgs,
    workload: Workload,
    workers: usize,
    rules: Vec<thresholds::Threshold>,
    dir: PathBuf,
    started_at: String,
    stamp: String,
    targets: Vec<String>,
    server_pid: Option<u32>,
    local: bool,
    /// The broker's URL.
    url: String,
}

impl Coordinator<'_> {
    async fn execute(self) -> anyhow::Result<Outcome> {
        let w = self.workload;
        let n = self.workers;
        let tls = Tls::from_option(self.args.ca_cert.as_deref())?;
        let rests: Vec<Rest> =
            self.targets.iter().map(|t| Rest::with_tls(t, &self.args.app_id, &self.args.secret, tls.clone())).collect();
        let app = rests[0]
            .app()
            .await
            .map_err(|e| anyhow::anyhow!("cannot read app `{}` at {}: {e}", self.args.app_id, self.targets[0]))?;
        if let Err(e) = check_limits(&w, &app) {
            if !self.args.allow_over_limit {
                return Err(e);
            }
            eprintln!("supergroup-load: going on anyway (--allow-over-limit): {e}");
        }
        let plan = Plan::new(
            w,
            Vec::new(),
            Schedule::new(&w, self.args.settle, self.args.drain),
            run_id(self.args, &self.stamp),
            self.args.app_id.clone(),
            self.args.secret.clone(),
            self.targets[0].clone(),
        )
        .with_targets(self.targets.clone());
        for node in &rests {
            create_conversations(node, &plan).await?;
        }
        let nc = connect(&self.url, &format!("supergroup-load coordinator {}", plan.run_id)).await?;
        let clock = Clock::start_now();
        let recorder = Recorder::new(clock, plan.clone());
        let shared = Shared { state: Arc::new(Mutex::new(State::default())) };
        let stop = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(serve_hello(nc.clone(), shared.clone(), plan.clone(), clock, n, stop.clone())),
            tokio::spawn(serve_snapshots(nc.clone(), shared.clone(), plan.run_id.clone(), stop.clone())),
            tokio::spawn(serve_facts(nc.clone(), shared.clone(), recorder.clone(), plan.run_id.clone(), stop.clone())),
            tokio::spawn(serve_table(nc.clone(), shared.clone(), plan.run_id.clone(), stop.clone())),
            tokio::spawn(serve_results(nc.clone(), shared.clone(), plan.run_id.clone(), stop.clone())),
        ];
        let mut children = if self.args.coordinator.is_none() { self.spawn_workers(&plan)? } else { Vec::new() };
        let result = self.drive(&nc, &shared, &recorder, &plan, &mut children, &app).await;
        stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
        for (i, child) in children.iter_mut().enumerate() {
            if tokio::time::timeout(WORKER_EXIT_WAIT, child.wait()).await.is_err() {
                eprintln!("local worker {i}: still running {WORKER_EXIT_WAIT:?} after the run; killed");
                let _ = child.kill().await;
            }
        }
        result
    }

    /// N local workers: this binary's `worker` subcommand, the secret in its environment, its log in the report folder.
    fn spawn_workers(&self, plan: &Plan) -> anyhow::Result<Vec<Child>> {
        let exe = std::env::current_exe()?;
        let mut children = Vec::new();
        for i in 0..self.workers {
            let out = self.dir.join(format!("worker-{i}"));
            std::fs::create_dir_all(&out)?;
            let log = std::fs::File::create(self.dir.join(format!("worker-{i}.log")))?;
            let mut cmd = Command::new(&exe);
            cmd.arg("worker")
                .args(["--coordinator", &self.url, "--run-id", &plan.run_id])
                .arg("--out")
                .arg(&out)
                .env("SUPERGROUP_LOAD_SECRET", &self.args.secret)
                .env_remove(super::worker::TEST_CLOCK_OFFSET_VAR)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .kill_on_drop(true);
            if let Some(ca) = &self.args.ca_cert {
                cmd.arg("--ca-cert").arg(ca);
            }
            let child = cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start local worker {i}: {e}"))?;
            children.push(child);
        }
        println!(
            "workers: started {} local worker processes (logs: {})",
            self.workers,
            self.dir.join("worker-N.log").display()
        );
        Ok(children)
    }

    async fn drive(
        &self,
        nc: &async_nats::Client,
        shared: &Shared,
        recorder: &Recorder,
        plan: &Plan,
        children: &mut [Child],
        app: &supergroup_protocol::rest::AppInfo,
    ) -> anyhow::Result<Outcome> {
        let n = self.workers;
        let clock = recorder.clock();
        // 2. Every worker joins, bounded.
        let wait = Duration::from_secs_f64(self.args.worker_wait);
        let deadline = Instant::now() + wait;
        loop {
            let joined = shared.lock().workers.len();
            if joined >= n {
                break;
            }
            for (i, c) in children.iter_mut().enumerate() {
                if let Ok(Some(status)) = c.try_wait() {
                    anyhow::bail!(
                        "local worker {i} exited before the run ({status}); see {}",
                        self.dir.join(format!("worker-{i}.log")).display()
                    );
                }
            }
            if Instant::now() >= deadline {
                shared.lock().closed = true;
                anyhow::bail!(
                    "only {joined} of {n} workers joined within {:.0} s: start each with `supergroup-load worker --coordinator {} --run-id {}` (or raise --worker-wait)",
                    wait.as_secs_f64(),
                    self.url,
                    plan.run_id
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shared.lock().closed = true;
        let welcomed = clock.now_secs();
        println!("workers: {n} joined run {} on {}", plan.run_id, self.url);

        // Ticks: merge snapshots, watch liveness, sample the server and the machine.
        let tick_stop = CancellationToken::new();
        let live = Live::start(self.args.metrics_listen, self.args.out_jsonl.as_deref()).await?;
        let mut sampler = self.server_pid.map(ProcSampler::new);
        let rss_baseline_kib = sampler.as_mut().and_then(|s| s.sample()).map(|s| s.rss_kib);
        let ticker = tokio::spawn(tick(
            shared.clone(),
            recorder.clone(),
            sampler,
            Progress::new(!self.args.no_progress),
            plan.schedule,
            plan.workload.guests,
            tick_stop.clone(),
            live,
        ));

        // 3. The start barrier, bounded like a one-process run's.
        let planned = plan.schedule;
        let latest = welcomed + planned.latest_send_start();
        let poll = Duration::from_millis(20);
        for _ in 0..((planned.latest_send_start() / poll.as_secs_f64()).ceil() as u64) {
            let ready = {
                let st = shared.lock();
                st.workers.iter().enumerate().all(|(i, wk)| {
                    let share = Share { index: i, count: n };
                    wk.lost.is_some()
                        || (wk.latest.guests_done >= share.of(plan.workload.guests) as u64
                            && wk.latest.talkers_done >= share.of(plan.workload.talkers) as u64)
                })
            };
            if ready || clock.now_secs() >= latest {
                break;
            }
            tokio::time::sleep(poll).await;
        }
        let start = clock.now_secs() + planned.settle;
        let start_us = (start * 1e6) as u64;
        recorder.set_send_start(start_us);
        let wids: Vec<(usize, String)> = {
            let st = shared.lock();
            st.workers
                .iter()
                .enumerate()
                .filter(|(_, w)| w.lost.is_none())
                .map(|(i, w)| (i, w.hello.wid.clone()))
                .collect()
        };
        for (i, wid) in wids {
            if let Err(e) =
                deliver(nc, &wire::worker_start(&wid), wire::encode(&Start { send_start_us: start_us })).await
            {
                mark_lost(shared, i, &format!("did not take the start: {e}"));
            }
        }
        let sched = planned.with_send_start(start);
        tokio::time::sleep_until(clock.instant_at((sched.drain_end * 1e6) as u64).into()).await;

        // 5. Facts from every live worker, then the table, then the results; each wait bounded.
        let end_deadline = Instant::now() + END_WAIT;
        while Instant::now() < end_deadline {
            if shared.lock().workers.iter().all(|w| w.lost.is_some() || w.last_facts) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        {
            let mut st = shared.lock();
            for i in 0..st.workers.len() {
                if st.workers[i].lost.is_none() && !st.workers[i].last_facts {
                    st.workers[i].lost = Some(format!("no last facts within {END_WAIT:?} after the drain"));
                }
            }
            st.table = Some(Arc::new(st.facts.values().copied().collect()));
        }
        let end_deadline = Instant::now() + END_WAIT;
        while Instant::now() < end_deadline {
            if shared.lock().workers.iter().all(|w| w.lost.is_some() || w.has_result()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tick_stop.cancel();
        if let Ok(progress) = ticker.await {
            progress.finish();
        }

        // Merge.
        let (results, mut figures) = {
            let mut st = shared.lock();
            let mut results: Vec<Option<Handed>> = Vec::new();
            let mut figures = Vec::new();
            for (i, wk) in st.workers.iter_mut().enumerate() {
                if wk.lost.is_none() && !wk.has_result() {
                    wk.lost = Some(format!("no result within {END_WAIT:?}"));
                }
                let share = Share { index: i, count: n };
                figures.push(WorkerFigures {
                    index: i,
                    host: wk.hello.host.clone(),
                    pid: wk.hello.pid,
                    guests_planned: share.of(plan.workload.guests) as u64,
                    talkers_planned: share.of(plan.workload.talkers) as u64,
                    clock_offset_us: wk.clock.offset_us,
                    clock_bound_us: wk.clock.bound_us,
                    clock_estimated_offset_us: wk.clock.estimated_offset_us,
                    clock_rtt_us: wk.clock.rtt_us,
                    same_host: wk.clock.same_host,
                    lost: wk.lost.clone(),
                    ..WorkerFigures::default()
                });
                if wk.lost.is_some() {
                    results.push(None);
                    continue;
                }
                let parts = std::mem::take(&mut wk.parts);
                let mut header = None;
                let mut arrivals = Vec::new();
                for (_, mut p) in parts {
                    if let Some(h) = p.header.take() {
                        header = Some(*h);
                    }
                    arrivals.append(&mut p.arrivals);
                }
                results.push(header.map(|h| (h, arrivals)));
            }
            (results, figures)
        };
        let mut finished = recorder.finish();
        merge(recorder, plan, &mut finished, &results, &mut figures)?;
        let lost: Vec<WorkerFigures> = figures.iter().filter(|f| f.lost.is_some()).cloned().collect();
        let max_bound = figures.iter().map(|f| f.clock_bound_us).max().unwrap_or(0);
        let all_same_host = figures.iter().all(|f| f.same_host);
        let clock_figures = ClockFigures {
            method: if all_same_host {
                "every worker on the coordinator's host reads the same CLOCK_MONOTONIC; the run clock's zero is one \
                 reading of it, so a latency (arrival at a guest's worker minus the intended time written by the \
                 talker's worker) needs no correction"
                    .into()
            } else {
                format!(
                    "workers on other hosts: offset estimated over NATS ({} request/reply rounds, the one with the \
                     smallest round trip kept; error at most half its round trip); workers on the coordinator's host \
                     share its CLOCK_MONOTONIC exactly",
                    clock_sync::ROUNDS
                )
            },
            max_worker_bound_us: max_bound,
            fanout_bound_us: 2 * max_bound,
            local_bound_us: 0,
            liveness_secs: LIVENESS.as_secs(),
        };
        let w_users = plan.workload.users() as u64;
        let mut plan = plan.clone();
        if let Some(start) = recorder.send_start() {
            plan.schedule = plan.schedule.with_send_start(start as f64 / 1e6);
        }
        let instrument = results.iter().flatten().filter_map(|(r, _)| decode_histogram(&r.instrument).ok()).fold(
            histogram(),
            |mut a, h| {
                let _ = a.add(&h);
                a
            },
        );
        let target = Target {
            base_url: plan.base_url.clone(),
            local_server: self.local,
            app_id: app.id.clone(),
            plan: Some(app.plan.clone()),
            guest_limit: Some(app.guest_limit),
            participant_limit: Some(app.participant_limit),
        };
        let context = summary::Context {
            started_at: self.started_at.clone(),
            profile: self.args.profile,
            plan,
            target,
            environment: Environment::detect(crate::fdlimit::current()),
            server_pid: self.server_pid,
            rss_baseline_kib,
            opened_late: finished.guests_opened_late,
            goose: Some(goose_of(&results, w_users)),
            stop_rules: Vec::new(),
            instrument: Some(instrument),
        };
        let mut summary = Summary::build(context, &finished);
        for f in &lost {
            summary.lossy.push(format!(
                "worker {} ({} pid {}) lost: {}; its {} guests' {} expected deliveries counted missing",
                f.index,
                f.host,
                f.pid,
                f.lost.as_deref().unwrap_or(""),
                count(f.guests_planned),
                count(f.missing)
            ));
        }
        summary.workers = figures;
        summary.clock = Some(clock_figures);
        summary.thresholds = thresholds::evaluate(&self.rules, |m| summary.metric(m));
        if !summary.thresholds.is_empty() && !lost.is_empty() {
            summary.thresholds.push(Verdict {
                expr: "workers_lost==0 (always, with --workers)".into(),
                metric: "workers_lost".into(),
                actual: Some(lost.len() as f64),
                passed: false,
            });
        }
        summary.passed = summary.thresholds.iter().all(|v| v.passed);
        let written = report::write_all(&self.dir, &summary)?;
        Ok(Outcome { summary, written })
    }
}

/// Counts worker `i` lost (once), saying why.
fn mark_lost(shared: &Shared, i: usize, why: &str) {
    if let Some(w) = shared.lock().workers.get_mut(i)
        && w.lost.is_none()
    {
        eprintln!("workers: worker {i} ({} pid {}) lost: {why}", w.hello.host, w.hello.pid);
        w.lost = Some(why.to_string());
    }
}

/// Merges the workers' results into the coordinator's `Finished` (whose slots hold every
/// message's fact) and fills each worker's figures; a lost worker's guests are counted missing.
fn merge(
    recorder: &Recorder,
    plan: &Plan,
    f: &mut Finished,
    results: &[Option<Handed>],
    figures: &mut [WorkerFigures],
) -> anyhow::Result<()> {
    for (_, arrivals) in results.iter().flatten() {
        for &(k, seq, last, n) in arrivals {
            recorder.merge_arrivals(k, seq, last, n);
        }
    }
    // Time to last guest needs every worker's arrivals: taken again now that they are in.
    f.time_to_last = recorder.finish().time_to_last;
    let add = |into: &mut Histogram<u64>, enc: &str| -> anyhow::Result<()> {
        let _ = into.add(&decode_histogram(enc)?);
        Ok(())
    };
    let n = figures.len();
    for (i, r) in results.iter().enumerate() {
        let Some((r, _)) = r else {
            // Lost: every guest of its share expected every message of its room, and got none we know of.
            let share = Share { index: i, count: n };
            let mut expected = 0;
            for g in (0..plan.workload.guests).filter(|&g| share.holds(g)) {
                let e = recorder.expected_in_conversation(plan.guest_conversation(g));
                expected += e;
                if let Some(node) = f.nodes.get_mut(plan.guest_node(g)) {
                    node.expected += e;
                    node.missing += e;
                }
            }
            f.completeness.expected += expected;
            f.completeness.missing += expected;
            figures[i].expected = expected;
            figures[i].missing = expected;
            *f.errors.entry(format!("worker {i}: lost")).or_insert(0) += 1;
            continue;
        };
        add(&mut f.fanout, &r.fanout)?;
        add(&mut f.connect, &r.connect)?;
        add(&mut f.open, &r.open)?;
        add(&mut f.ack, &r.ack)?;
        add(&mut f.reconnect, &r.reconnect)?;
        add(&mut f.reopen, &r.reopen)?;
        if !r.fanout_returned.is_empty() {
            add(&mut f.fanout_returned, &r.fanout_returned)?;
        }
        f.completeness.add(&r.completeness);
        f.churn.add(&r.churn);
        for (k, v) in &r.errors {
            *f.errors.entry(k.clone()).or_insert(0) += v;
        }
        for (node, theirs) in f.nodes.iter_mut().zip(&r.nodes) {
            node.add(theirs);
        }
        f.guests_opened += r.guests_opened;
        f.guest_connect_failed += r.guest_connect_failed;
        f.guest_open_failed += r.guest_open_failed;
        f.guests_closed_by_server += r.guests_closed_by_server;
        f.guests_opened_late += r.guests_opened_late;
        f.send_failed += r.send_failed;
        f.rest_requests += r.rest_requests;
        let fanout = decode_histogram(&r.fanout)?;
        let fig = &mut figures[i];
        fig.guests_opened = r.guests_opened;
        fig.expected = r.completeness.expected;
        fig.delivered = r.completeness.delivered;
        fig.missing = r.completeness.missing;
        fig.p50_ms = (!fanout.is_empty()).then(|| fanout.value_at_quantile(0.5) as f64 / 1000.0);
        fig.p99_ms = (!fanout.is_empty()).then(|| fanout.value_at_quantile(0.99) as f64 / 1000.0);
        fig.cpu_mean_pct = r.cpu_mean_pct;
        fig.rss_peak_kib = r.rss_peak_kib;
    }
    let c = &mut f.completeness;
    c.loss_ratio = if c.expected == 0 { 0.0 } else { c.missing as f64 / c.expected as f64 };
    Ok(())
}

/// goose's request rows of every worker, added up by name (`users`: the run's, all workers').
fn goose_of(results: &[Option<Handed>], users: u64) -> GooseFigures {
    let mut rows: BTreeMap<String, (GooseRequestRow, f64)> = BTreeMap::new();
    for (r, _) in results.iter().flatten() {
        for row in &r.goose {
            let e = rows.entry(row.name.clone()).or_insert_with(|| {
                (GooseRequestRow { name: row.name.clone(), ok: 0, failed: 0, mean_ms: None, max_ms: None }, 0.0)
            });
            let n = (row.ok + row.failed) as f64;
            e.1 += row.mean_ms.unwrap_or(0.0) * n;
            e.0.ok += row.ok;
            e.0.failed += row.failed;
            e.0.max_ms = match (e.0.max_ms, row.max_ms) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let requests = rows
        .into_values()
        .map(|(mut row, total)| {
            let n = (row.ok + row.failed) as f64;
            row.mean_ms = (n > 0.0).then(|| total / n);
            row
        })
        .collect();
    GooseFigures { report: "worker-N/goose-report.html".into(), users, duration_secs: 0, requests }
}

/// Welcomes workers: measures each one's clock, then hands it the plan and its share.
async fn serve_hello(
    nc: async_nats::Client,
    shared: Shared,
    plan: Plan,
    clock: Clock,
    n: usize,
    stop: CancellationToken,
) {
    let (Ok(any), Ok(mine)) =
        (nc.subscribe(wire::hello(None)).await, nc.subscribe(wire::hello(Some(&plan.run_id))).await)
    else {
        eprintln!("workers: cannot subscribe to the hello subjects");
        return;
    };
    let mut hellos = futures_util::stream::select(any, mine);
    let my_boot = boot_id();
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = hellos.next() => m,
        };
        let Some(msg) = msg else { break };
        let Some(reply) = msg.reply.clone() else { continue };
        let welcome = match wire::decode::<Hello>("hello", &msg.payload) {
            Err(e) => Welcome::Refused(e.to_string()),
            Ok(h) if h.version != wire::VERSION => Welcome::Refused(format!(
                "this coordinator speaks schema v{}, the worker v{}",
                wire::VERSION,
                h.version
            )),
            Ok(h) => {
                let full = {
                    let st = shared.lock();
                    st.closed || st.workers.len() >= n
                };
                if full {
                    Welcome::Refused(format!("run {} has its {n} workers (or has started)", plan.run_id))
                } else {
                    match clock_sync::estimate(&nc, &h.wid, !my_boot.is_empty() && h.boot_id == my_boot).await {
                        Err(e) => Welcome::Refused(format!("clock: {e}")),
                        Ok(est) => {
                            let mut st = shared.lock();
                            if st.closed || st.workers.len() >= n {
                                Welcome::Refused(format!("run {} has its {n} workers (or has started)", plan.run_id))
                            } else {
                                let index = st.workers.len();
                                let mut p = plan.clone();
                                p.share = Share { index, count: n };
                                st.workers.push(WorkerSlot {
                                    hello: h,
                                    clock: est,
                                    last_seen: Instant::now(),
                                    latest: Snapshot::default(),
                                    lost: None,
                                    last_facts: false,
                                    parts: BTreeMap::new(),
                                    parts_expected: None,
                                });
                                Welcome::Joined(Box::new(Assignment {
                                    version: wire::VERSION,
                                    plan: p,
                                    zero_monotonic_us: clock.zero_monotonic_us() + est.offset_us,
                                    offset_us: est.offset_us,
                                    offset_bound_us: est.bound_us,
                                    liveness_secs: LIVENESS.as_secs(),
                                }))
                            }
                        }
                    }
                }
            }
        };
        let _ = nc.publish(reply, wire::encode(&welcome)).await;
    }
}

async fn serve_snapshots(nc: async_nats::Client, shared: Shared, run_id: String, stop: CancellationToken) {
    let Ok(mut sub) = nc.subscribe(wire::snapshots(&run_id)).await else { return };
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = sub.next() => m,
        };
        let Some(msg) = msg else { break };
        let Ok(s) = wire::decode::<Snapshot>("snapshot", &msg.payload) else { continue };
        let mut st = shared.lock();
        if let Some(w) = st.workers.get_mut(s.index)
            && w.lost.is_none()
        {
            w.last_seen = Instant::now();
            w.latest = s.clone();
            st.pending.push(s);
        }
    }
}

async fn serve_facts(
    nc: async_nats::Client,
    shared: Shared,
    recorder: Recorder,
    run_id: String,
    stop: CancellationToken,
) {
    let Ok(mut sub) = nc.subscribe(wire::facts(&run_id)).await else { return };
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = sub.next() => m,
        };
        let Some(msg) = msg else { break };
        if let Ok(batch) = wire::decode::<FactBatch>("facts", &msg.payload) {
            let mut st = shared.lock();
            if st.table.is_none() {
                for f in &batch.facts {
                    st.facts.insert((f.0, f.1), *f);
                    recorder.apply_fact(f, true);
                }
                if batch.last
                    && let Some(w) = st.workers.get_mut(batch.index)
                {
                    w.last_facts = true;
                }
            }
        }
        if let Some(reply) = msg.reply {
            let _ = nc.publish(reply, "ok".into()).await;
        }
    }
}

async fn serve_table(nc: async_nats::Client, shared: Shared, run_id: String, stop: CancellationToken) {
    let Ok(mut sub) = nc.subscribe(wire::table(&run_id)).await else { return };
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = sub.next() => m,
        };
        let Some(msg) = msg else { break };
        let Some(reply) = msg.reply else { continue };
        let Ok(req) = wire::decode::<TableRequest>("table", &msg.payload) else { continue };
        let table = shared.lock().table.clone();
        let chunk = match table {
            None => TableChunk::NotReady,
            Some(t) => {
                let from = req.from.min(t.len());
                let to = (from + wire::FACTS_PER_MESSAGE).min(t.len());
                TableChunk::Facts { facts: t[from..to].to_vec(), total: t.len() }
            }
        };
        let _ = nc.publish(reply, wire::encode(&chunk)).await;
    }
}

async fn serve_results(nc: async_nats::Client, shared: Shared, run_id: String, stop: CancellationToken) {
    let Ok(mut sub) = nc.subscribe(wire::result(&run_id)).await else { return };
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = sub.next() => m,
        };
        let Some(msg) = msg else { break };
        if let Ok(part) = wire::decode::<ResultPart>("result", &msg.payload) {
            let mut st = shared.lock();
            if let Some(w) = st.workers.get_mut(part.index)
                && w.lost.is_none()
            {
                w.parts_expected = Some(part.parts);
                w.parts.insert(part.part, part);
            }
        }
        if let Some(reply) = msg.reply {
            let _ = nc.publish(reply, "ok".into()).await;
        }
    }
}

/// Once a second: merges the snapshots received into one point of the time series,
/// counts silent workers lost, and updates the progress line and the live figures.
#[allow(clippy::too_many_arguments)]
async fn tick(
    shared: Shared,
    recorder: Recorder,
    mut sampler: Option<ProcSampler>,
    mut progress: Progress,
    planned: Schedule,
    guests: usize,
    stop: CancellationToken,
    mut live: Live,
) -> Progress {
    let mut own = ProcSampler::new(std::process::id());
    let _ = own.sample();
    let mut machine = MachineSampler::default();
    let _ = machine.sample();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.tick().await;
    let max_ticks = (planned.drain_end + JOIN_DEADLINE_SECS + 4.0 * END_WAIT.as_secs_f64() + 600.0).ceil() as u64;
    for _ in 0..max_ticks {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        let server = sampler.as_mut().and_then(|s| s.sample());
        let me = own.sample();
        let (pending, latest, silent) = {
            let mut st = shared.lock();
            let pending = std::mem::take(&mut st.pending);
            let latest: Vec<Snapshot> =
                st.workers.iter().filter(|w| w.lost.is_none()).map(|w| w.latest.clone()).collect();
            let silent: Vec<(usize, u64)> = st
                .workers
                .iter()
                .enumerate()
                .filter(|(_, w)| w.lost.is_none() && !w.has_result() && w.last_seen.elapsed() > LIVENESS)
                .map(|(i, w)| (i, w.last_seen.elapsed().as_secs()))
                .collect();
            (pending, latest, silent)
        };
        for (i, secs) in silent {
            mark_lost(&shared, i, &format!("no snapshot for {secs} s (liveness {} s)", LIVENESS.as_secs()));
        }
        let mut second = Histogram::<u64>::new_with_bounds(1, crate::recorder::MAX_MICROS, 2).expect("constant bounds");
        for s in &pending {
            if let Ok(h) = decode_histogram(&s.histogram) {
                let _ = second.add(&h);
            }
        }
        let q = |p: f64| (!second.is_empty()).then(|| second.value_at_quantile(p) as f64 / 1000.0);
        let sum = |f: fn(&Snapshot) -> u64| latest.iter().map(f).sum::<u64>();
        let cpu: Option<f64> =
            me.and_then(|m| m.cpu_pct).map(|c| c + latest.iter().filter_map(|s| s.cpu_pct).sum::<f64>());
        let sample = SecondSample {
            t: recorder.clock().now_secs(),
            guests_connected: sum(|s| s.guests_connected),
            guests_open: sum(|s| s.guests_open),
            sent: sum(|s| s.sent),
            delivered: sum(|s| s.delivered),
            deliveries: pending.iter().map(|s| s.deliveries).sum(),
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            max_ms: (!second.is_empty()).then(|| second.max() as f64 / 1000.0),
            server_cpu_pct: server.and_then(|s| s.cpu_pct),
            server_rss_kib: server.map(|s| s.rss_kib),
            loadgen_cpu_pct: cpu,
            loadgen_rss_kib: me.map(|m| m.rss_kib + latest.iter().filter_map(|s| s.rss_kib).sum::<u64>()),
            machine_cpu_pct: machine.sample(),
        };
        recorder.push_sample(sample.clone());
        // Loss so far is not merged from the workers' slots (each knows its own guests only).
        live.publish(&sample, latest.iter().map(|s| s.errors).sum(), None);
        let actual = recorder.send_start().map(|us| planned.with_send_start(us as f64 / 1e6));
        progress.update(&sample, actual.as_ref(), guests, sample.p99_ms);
    }
    live.finish();
    progress
}
