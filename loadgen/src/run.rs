//! One load test from start to verdict:
//!
//! 1. resolve the workload and parse the thresholds (fail fast on a typo);
//! 2. check open files; start the local server (a child process) unless
//!    `--target` is given;
//! 3. read the app's limits (`GET /v1/{appId}`) and refuse a run that cannot
//!    fit (guest limit below the guests per conversation: use
//!    `--conversations`); create the conversations with the talkers as
//!    participants;
//! 4. start the run clock and let goose start every user at `--ramp` per
//!    second (talkers first); the conductor fixes the first message's time
//!    once every user has joined or failed (plus `--settle`), and ends the
//!    goose run with goose's killswitch when the drain is over (goose's own
//!    run time is only an upper bound, because joins take as long as the
//!    server makes them). A ticker samples the recorder, the server and this
//!    process once a second for the time series and the progress line;
//! 5. stop every socket, wait (bounded) for every guest to hand in its
//!    deliveries, stop the server, judge completeness and thresholds, and
//!    write the report.

use crate::cli::RunArgs;
use crate::clock::Clock;
use crate::context::{Ctx, RunContext};
use crate::fdlimit::{self, FileLimits};
use crate::live::Live;
use crate::local_server::{LocalServer, LocalServerConfig};
use crate::plan::{Plan, Schedule, Workload};
use crate::probe::Probe;
use crate::procstat::{MachineSampler, ProcSampler};
use crate::progress::Progress;
use crate::recorder::Recorder;
use crate::recorder::Stopped;
use crate::report::summary::{self, Environment, GooseFigures, GooseRequestRow, Stats, Summary, Target};
use crate::report::{self, Written};
use crate::stages::Stage;
use crate::steps::{self, StopRule};
use crate::{scenarios, thresholds};
use goose::client::GooseClientBuilder;
use goose::config::GooseConfiguration;
use goose::metrics::GooseMetrics;
use goose::{GooseAttack, GooseScheduler};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use supergroup_protocol::client::{Rest, Tls};
use supergroup_protocol::limits::MAX_PARTICIPANTS_PER_PUT;
use supergroup_protocol::rest::{AppInfo, ConversationUpsert};
use tokio_util::sync::CancellationToken;

/// Longest wait, after goose returns, for every guest to hand in its deliveries.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A finished run.
pub struct Outcome {
    pub summary: Summary,
    pub written: Written,
}

/// Runs one load test and writes its report (spread over load workers with `--workers`).
pub async fn run(args: &RunArgs) -> anyhow::Result<Outcome> {
    if let Some(n) = args.workers {
        return crate::dist::coordinator::run(args, n).await;
    }
    let mut workload = Workload::resolve(args);
    let stages = workload.apply_stages(args)?;
    workload.validate()?;
    let rules = thresholds::parse_all(&args.thresholds)?;
    anyhow::ensure!(
        args.stop_when.is_empty() || !stages.is_empty(),
        "--stop-when needs a stepped or staged run (--step-rate or --stages)"
    );
    let stop_rules = steps::parse_rules(&args.stop_when)?;
    let (started_at, stamp) = utc_now();
    let dir = args.out.clone().unwrap_or_else(|| default_reports_root().join(&stamp));
    std::fs::create_dir_all(&dir)?;
    let limits = fdlimit::ensure(workload.users() as u64)?;
    let (local, targets) = start_target(args, &workload, &dir).await?;
    let server_pid = local.as_ref().map(|l| l.pid).or(args.server_pid);
    let run = Run {
        args,
        workload,
        stages,
        rules,
        stop_rules,
        dir,
        started_at,
        stamp,
        limits,
        base_url: targets[0].clone(),
        targets,
        server_pid,
        local: local.is_some(),
    };
    let result = run.execute().await;
    if let Some(l) = local {
        let ended = l.stop().await;
        if !ended.starts_with("exited") {
            eprintln!("local server: {ended}");
        }
    }
    result
}

/// The local server (a child process) unless `--target` names the nodes, and the nodes' origins.
pub(crate) async fn start_target(
    args: &RunArgs,
    workload: &Workload,
    dir: &Path,
) -> anyhow::Result<(Option<LocalServer>, Vec<String>)> {
    let Some(target) = &args.target else {
        let exe = match &args.server_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe()?,
        };
        let cfg = LocalServerConfig {
            exe,
            app_id: args.app_id.clone(),
            secret: args.secret.clone(),
            guest_limit: workload.max_guests_per_conversation().max(1) as u32,
            participant_limit: (workload.max_talkers_per_conversation() as u32).max(100),
            outbound_queue: args.server_outbound_queue,
            dir: dir.to_path_buf(),
        };
        let local = LocalServer::start(&cfg).await?;
        let url = local.base_url.clone();
        return Ok((Some(local), vec![url]));
    };
    Ok((None, crate::cli::parse_targets(target).map_err(anyhow::Error::msg)?))
}

/// A run whose server is up.
struct Run<'a> {
    args: &'a RunArgs,
    workload: Workload,
    /// `--step-rate`/`--stages`; empty for a constant rate.
    stages: Vec<Stage>,
    rules: Vec<thresholds::Threshold>,
    stop_rules: Vec<StopRule>,
    dir: PathBuf,
    started_at: String,
    stamp: String,
    limits: FileLimits,
    /// The first node: setup, readers, the app's limits.
    base_url: String,
    /// Every node (`--target URL1,URL2,...`).
    targets: Vec<String>,
    server_pid: Option<u32>,
    local: bool,
}

impl Run<'_> {
    async fn execute(self) -> anyhow::Result<Outcome> {
        let w = self.workload;
        let tls = Tls::from_option(self.args.ca_cert.as_deref())?;
        let rests: Vec<Rest> =
            self.targets.iter().map(|t| Rest::with_tls(t, &self.args.app_id, &self.args.secret, tls.clone())).collect();
        let rest = rests[0].clone();
        let app = rest
            .app()
            .await
            .map_err(|e| anyhow::anyhow!("cannot read app `{}` at {}: {e}", self.args.app_id, self.base_url))?;
        if let Err(e) = check_limits(&w, &app) {
            if !self.args.allow_over_limit {
                return Err(e);
            }
            eprintln!("supergroup-load: going on anyway (--allow-over-limit): {e}");
        }
        let plan = Plan::new(
            w,
            self.stages.clone(),
            Schedule::new(&w, self.args.settle, self.args.drain),
            run_id(self.args, &self.stamp),
            self.args.app_id.clone(),
            self.args.secret.clone(),
            self.base_url.clone(),
        )
        .with_targets(self.targets.clone());
        anyhow::ensure!(
            plan.messages_per_talker() <= 10_000_000,
            "the stages ask for {} messages per talker, over 10 million",
            plan.messages_per_talker()
        );
        for node in &rests {
            create_conversations(node, &plan).await?;
        }

        let mut sampler = self.server_pid.map(ProcSampler::new);
        let rss_baseline_kib = sampler.as_mut().and_then(|s| s.sample()).map(|s| s.rss_kib);
        let clock = Clock::start_now();
        let recorder = Recorder::new(clock, plan.clone());
        let ctx = RunContext::new(plan.clone(), rests, recorder.clone());
        let probe = Probe::start(&recorder).await.map_err(|e| anyhow::anyhow!("instrument probe: {e}"))?;
        let ticker_stop = CancellationToken::new();
        let live = Live::start(self.args.metrics_listen, self.args.out_jsonl.as_deref()).await?;
        let ticker = tokio::spawn(tick(
            recorder.clone(),
            sampler,
            Progress::new(!self.args.no_progress),
            plan.schedule,
            w.guests,
            ticker_stop.clone(),
            live,
        ));
        let conductor = tokio::spawn(conduct(
            recorder.clone(),
            plan.schedule,
            ctx.stop.clone(),
            ctx.drain_over.clone(),
            self.stop_rules.clone(),
            None,
        ));

        let goose_report = self.dir.join("goose-report.html");
        let goose = run_goose(&ctx, &goose_report, &self.dir, plan.schedule.hold_secs()).await;
        ctx.stop.cancel();
        let _ = conductor.await;
        collect_guests(&recorder).await;
        let instrument = probe.stop().await;
        ticker_stop.cancel();
        if let Ok(progress) = ticker.await {
            progress.finish();
        }
        let metrics = goose?;

        let finished = recorder.finish();
        let mut plan = plan;
        if let Some(start) = recorder.send_start() {
            plan.schedule = plan.schedule.with_send_start(start as f64 / 1e6);
        }
        if let Some(stop) = finished.send_stop {
            plan.schedule = plan.schedule.stopped_at(stop as f64 / 1e6);
        }
        let target = Target {
            base_url: self.base_url.clone(),
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
            environment: Environment::detect(Some(self.limits)),
            server_pid: self.server_pid,
            rss_baseline_kib,
            opened_late: finished.guests_opened_late,
            goose: Some(goose_figures(&metrics, &goose_report)),
            stop_rules: self.stop_rules.clone(),
            instrument: Some(instrument),
        };
        let mut summary = Summary::build(context, &finished);
        summary.thresholds = thresholds::evaluate(&self.rules, |m| summary.metric(m));
        summary.passed = summary.thresholds.iter().all(|v| v.passed);
        let written = report::write_all(&self.dir, &summary)?;
        Ok(Outcome { summary, written })
    }
}

/// The run's id: `--run-id`, or `lg-<UTC stamp>-<pid>`.
pub(crate) fn run_id(args: &RunArgs, stamp: &str) -> String {
    match &args.run_id {
        Some(id) => crate::dist::wire::token(id),
        None => format!("lg-{}-{}", stamp.replace(['-', ':'], ""), std::process::id()),
    }
}

/// Refuses a run the target cannot hold, saying what to change.
pub(crate) fn check_limits(w: &Workload, app: &AppInfo) -> anyhow::Result<()> {
    let per_conv = w.max_guests_per_conversation();
    if (app.guest_limit as usize) < per_conv {
        anyhow::bail!(
            "the target admits {} concurrent guests per conversation (app `{}`, plan {}), but this run puts {per_conv} \
             guests in one conversation. Spread them: --conversations {} (with at least as many --talkers), or lower --guests.",
            app.guest_limit,
            app.id,
            app.plan,
            w.guests.div_ceil(app.guest_limit.max(1) as usize),
        );
    }
    let talkers = w.max_talkers_per_conversation();
    if (app.participant_limit as usize) < talkers {
        anyhow::bail!(
            "the target admits {} participants per conversation, but this run puts {talkers} talkers in one; \
             use more --conversations or fewer --talkers",
            app.participant_limit
        );
    }
    Ok(())
}

/// Creates each conversation with its talkers as participants (guest access on), on one node:
/// a run with several targets does this on every node, so independent servers given as
/// targets each have every room (a cluster sees the same upsert once per node, harmlessly).
pub(crate) async fn create_conversations(rest: &Rest, plan: &Plan) -> anyhow::Result<()> {
    for c in 0..plan.workload.conversations {
        let cid = plan.conversation_id(c);
        let talkers: Vec<String> = plan.talkers_of(c).map(|k| plan.talker_id(k)).collect();
        for (i, chunk) in talkers.chunks(MAX_PARTICIPANTS_PER_PUT).enumerate() {
            let upsert = ConversationUpsert {
                subject: (i == 0).then(|| format!("supergroup-load {}", plan.run_id)),
                participants: Some(chunk.to_vec()),
                guest_access: Some(true),
                ..ConversationUpsert::default()
            };
            rest.put_conversation(&cid, &upsert)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create conversation {cid}: {e}"))?;
        }
    }
    Ok(())
}

/// Fixes the first message's time once every user has joined or failed
/// (polling every 20 ms, at most until [`Schedule::latest_send_start`]); in a
/// staged run, judges each step `--drain` after it ends and stops sending
/// when one crosses the `--stop-when` line; then ends the goose run when the
/// drain is over. A load worker (`remote_start` = how long it may wait) takes the first
/// message's time from its coordinator instead (which sets it on the recorder), and ends
/// its run unsent if none comes in time.
pub(crate) async fn conduct(
    recorder: Recorder,
    planned: Schedule,
    stop: CancellationToken,
    drain_over: CancellationToken,
    rules: Vec<StopRule>,
    remote_start: Option<Duration>,
) {
    let clock = recorder.clock();
    let plan = recorder.plan();
    let (guests_here, talkers_here) = (plan.local_guests() as u64, plan.local_talkers() as u64);
    let c = recorder.counters();
    let joined = || {
        let guests =
            c.guests_opened.load(Relaxed) + c.guest_connect_failed.load(Relaxed) + c.guest_open_failed.load(Relaxed);
        let talkers = c.talkers_joined.load(Relaxed) + c.talkers_failed.load(Relaxed);
        guests >= guests_here && talkers >= talkers_here
    };
    let poll = Duration::from_millis(20);
    let start = match remote_start {
        None => {
            let polls = (planned.latest_send_start() / poll.as_secs_f64()).ceil() as u64;
            for _ in 0..polls {
                let now = clock.now_secs();
                if (now >= planned.ramp_end && joined()) || now >= planned.latest_send_start() {
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(poll) => {}
                }
            }
            let start = (clock.now_secs() + planned.settle).max(planned.send_start);
            recorder.set_send_start((start * 1e6) as u64);
            start
        }
        Some(bound) => {
            let polls = (bound.as_secs_f64() / poll.as_secs_f64()).ceil() as u64;
            for _ in 0..polls {
                if recorder.send_start().is_some() {
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(poll) => {}
                }
            }
            let Some(start) = recorder.send_start() else {
                recorder.error(format!("worker: no start from the coordinator within {bound:?}"));
                drain_over.cancel();
                goose::trigger_killswitch("supergroup-load worker: no start from the coordinator");
                return;
            };
            start as f64 / 1e6
        }
    };
    let mut end = planned.with_send_start(start).drain_end;
    let drain = planned.drain_end - planned.send_end;
    let timeline = recorder.plan().timeline.clone();
    let stages = if recorder.plan().staged() { timeline.stages().len() } else { 0 };
    // The last step needs no live judgement: the run ends after it anyway.
    for i in 0..stages.saturating_sub(1) {
        let grace = drain.min(timeline.stages()[i + 1].duration);
        let judge_at = start + timeline.window(i).1 + grace;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(clock.instant_at((judge_at * 1e6) as u64).into()) => {}
        }
        let now = clock.now_micros();
        let live = recorder.live_step(i, now);
        let reasons = steps::crossed(&rules, &Stats::of(&live.histogram), live.pending, live.expected);
        if !reasons.is_empty() {
            recorder.stop_sending(now, Stopped { step: i, at: now as f64 / 1e6, reasons });
            end = now as f64 / 1e6 + drain;
            break;
        }
    }
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep_until(clock.instant_at((end * 1e6) as u64).into()) => {
            // Guests' `receive` transactions end now, so goose can stop every user
            // (between transactions) and write its report.
            drain_over.cancel();
            goose::trigger_killswitch("supergroup-load: the drain is over");
        }
    }
}

/// Once a second: closes a second of the time series (with server and own
/// samples), updates the progress line and publishes the second live.
async fn tick(
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
    // Loss so far waits as long as the end of the run does (--drain); a guest that leaves
    // stays counted as due, so it is left out with churn or a reconnect storm.
    let patience_us = ((planned.drain_end - planned.send_end).max(0.0) * 1e6) as u64;
    let workload = &recorder.plan().workload;
    let overdue_exact = workload.churn == 0.0 && workload.reconnect_storm.is_none();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.tick().await;
    // Bounded by the run: the latest possible end plus generous slack for goose's start and stop.
    let max_ticks =
        (planned.ramp_end + planned.hold_secs() as f64 + COLLECT_TIMEOUT.as_secs_f64() + 120.0).ceil() as u64;
    for _ in 0..max_ticks {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        let server = sampler.as_mut().and_then(|s| s.sample());
        let sample = recorder.tick(server, own.sample(), machine.sample());
        live.publish(&sample, recorder.errors_total(), overdue_exact.then(|| recorder.overdue(patience_us)));
        let actual = recorder.send_start().map(|us| planned.with_send_start(us as f64 / 1e6));
        progress.update(&sample, actual.as_ref(), guests, recorder.fanout_p99_ms());
    }
    live.finish();
    progress
}

/// Runs goose: every user (of this process's share) started at `--ramp` per second (this
/// share's part of it), held for at most `hold_secs` after the ramp (the conductor ends the
/// run sooner, when the drain is over).
pub(crate) async fn run_goose(ctx: &Ctx, report: &Path, dir: &Path, hold_secs: u64) -> anyhow::Result<GooseMetrics> {
    let plan = &ctx.plan;
    let w = &plan.workload;
    let mut config = GooseConfiguration::default();
    config.host = Some(plan.base_url.clone());
    config.users = Some(plan.local_users());
    config.increase_rate = Some(format!("{}", w.ramp * plan.local_users() as f64 / w.users().max(1) as f64));
    config.run_time = Some(format!("{hold_secs}"));
    config.no_reset_metrics = true;
    // A guest's `receive` transaction is a bounded wait, one a second per guest: its
    // transaction and scenario metrics mean nothing and cost goose's metrics loop most of a core at 10,000 guests.
    config.no_transaction_metrics = true;
    config.no_scenario_metrics = true;
    config.no_telnet = true;
    config.quiet = 1;
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.goose_log = Some(dir.join("goose.log").display().to_string());
    config.log_level = 1;
    config.report_file = vec![report.display().to_string()];
    let mut attack = GooseAttack::initialize_with_config(config)?
        .set_scheduler(GooseScheduler::Serial)
        .set_client_builder_without_cookies(GooseClientBuilder::new().without_cookies())?;
    for scenario in scenarios::all(ctx)? {
        attack = attack.register_scenario(scenario);
    }
    Ok(attack.execute().await?)
}

/// Waits until every guest that opened has handed in its deliveries, bounded.
pub(crate) async fn collect_guests(recorder: &Recorder) {
    let deadline = tokio::time::Instant::now() + COLLECT_TIMEOUT;
    let opened = || recorder.counters().guests_opened.load(Relaxed) as usize;
    while recorder.guests_finished() < opened() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing = opened().saturating_sub(recorder.guests_finished());
    if missing > 0 {
        recorder.error(format!("collect: {missing} guests did not report within {COLLECT_TIMEOUT:?}"));
    }
}

/// goose's request table, for the summary.
pub(crate) fn goose_figures(m: &GooseMetrics, report: &Path) -> GooseFigures {
    let mut requests: Vec<GooseRequestRow> = m
        .requests
        .iter()
        .map(|(name, r)| {
            let d = &r.raw_data;
            GooseRequestRow {
                name: name.clone(),
                ok: r.success_count as u64,
                failed: r.fail_count as u64,
                mean_ms: (d.counter > 0).then(|| d.total_time_us as f64 / d.counter as f64 / 1000.0),
                max_ms: (d.counter > 0).then(|| d.maximum_time_us as f64 / 1000.0),
            }
        })
        .collect();
    requests.sort_by(|a, b| a.name.cmp(&b.name));
    GooseFigures {
        report: report.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
        users: m.maximum_users as u64,
        duration_secs: m.duration as u64,
        requests,
    }
}

/// `reports/load` at the workspace root: the nearest folder up from here
/// that has a `Cargo.toml` and a `loadgen/` folder; else under the current folder.
pub fn default_reports_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let root = cwd
        .ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join("loadgen").is_dir())
        .unwrap_or(&cwd)
        .to_path_buf();
    root.join("reports").join("load")
}

/// Now in UTC: RFC 3339 (`2026-11-25T22:15:10Z`) and a folder name (`2026-11-25T22-15-10Z`).
pub fn utc_now() -> (String, String) {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let (h, mi, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    (format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"), format!("{y:04}-{mo:02}-{d:02}T{h:02}-{mi:02}-{s:02}Z"))
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_512), (2026, 2, 28));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn limits_are_explained() {
        let app = AppInfo {
            id: "demo".into(),
            plan: "basic".into(),
            participant_limit: 100,
            guest_limit: 300,
            guest_access: true,
            notification_delay_ms: 1000,
        };
        let w = Workload { guests: 1000, ..Workload::DEFAULT };
        let err = check_limits(&w, &app).unwrap_err().to_string();
        assert!(err.contains("--conversations 4"), "{err}");
        assert!(check_limits(&Workload { guests: 1000, conversations: 4, talkers: 4, ..w }, &app).is_ok());
    }
}
