//! One run of the suite: reach the target (or start the in-process reference
//! server), read its plan, start the webhook receiver and register it, run
//! the feature files with cucumber (console, JUnit, Cucumber JSON and the
//! [`Recorder`] writers side by side), then grade the results against
//! SPEC.md and write the reports.

use crate::embedded::Scenarios;
use crate::expectations::ExpectedFailures;
use crate::recorder::{Recorder, Results};
use crate::report::{Meta, Report};
use crate::requirements::{self, Requirement};
use crate::webhook_receiver::Receiver;
use crate::world::{SgWorld, Suite};
use cucumber::gherkin::tagexpr::TagOperation;
use cucumber::tag::Ext as _;
use cucumber::{World as _, WriterExt as _, cli, writer};
use futures_util::FutureExt as _;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use supergroup_protocol::client::{Rest, Tls};
use supergroup_protocol::rest::WebhookRegistration;

/// What a run needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's origin, or the origins of its nodes separated by commas
    /// (`http://a:8080,http://b:8080`: the users of each scenario are spread
    /// over them); `None` starts the in-process reference server.
    pub target: Option<String>,
    pub app_id: String,
    pub secret: String,
    /// Where the webhook receiver listens.
    pub webhook_listen: SocketAddr,
    /// The URL registered with the server instead of the receiver's own address.
    pub webhook_url: Option<String>,
    /// A cucumber tag expression (`@SG-GUEST-3 and not @slow`).
    pub tags: Option<String>,
    /// A regex on scenario names.
    pub name: Option<String>,
    /// Run only the scenarios tagged with one of these requirement ids.
    pub requirements: Vec<String>,
    /// Directory for the reports; a fresh `<timestamp>` directory is made in it. `None`: no files.
    pub out: Option<PathBuf>,
    /// Print cucumber's progress to stdout.
    pub console: bool,
    /// Scenarios in flight at once.
    pub concurrency: usize,
    /// Bound of every wait for a reply or an event.
    pub wait: Duration,
    /// A second app on the target (`id`, `secret`) for the isolation scenarios; they do not run without one.
    pub other_app: Option<(String, String)>,
    /// A PEM file of CA certificates trusted besides the platform's roots (`--ca-cert`), for https/wss targets.
    pub ca_cert: Option<PathBuf>,
    /// Serve the in-process reference server over https/wss with this certificate (tests of TLS end to end).
    pub server_tls: Option<supergroup_server::tls::ServerTls>,
    /// A directory of the team's own `.feature` files to run instead of the suite's.
    pub features: Option<PathBuf>,
    /// Known failures: reported as expected, they do not fail the run.
    pub expect_fail: ExpectedFailures,
}

impl Options {
    /// In-process server, demo app, no report files, console on.
    pub fn in_process() -> Options {
        Options {
            target: None,
            app_id: "demo".into(),
            secret: "sk_demo".into(),
            webhook_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webhook_url: None,
            tags: None,
            name: None,
            requirements: Vec::new(),
            out: None,
            console: true,
            concurrency: 8,
            wait: Duration::from_secs(5),
            other_app: None,
            ca_cert: None,
            server_tls: None,
            features: None,
            expect_fail: ExpectedFailures::default(),
        }
    }

    fn selection(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(t) = &self.tags {
            parts.push(format!("--tags {t}"));
        }
        if let Some(f) = &self.features {
            parts.push(format!("--features {}", f.display()));
        }
        if let Some(n) = &self.name {
            parts.push(format!("--name {n}"));
        }
        if !self.requirements.is_empty() {
            parts.push(format!("--requirement {}", self.requirements.join(",")));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// Where the reports were written, if anywhere.
    pub dir: Option<PathBuf>,
    /// Whether cucumber saw a failed step, a parse error or a hook error.
    pub execution_failed: bool,
}

impl Outcome {
    /// The process exit status: 0 when no MUST requirement failed that is not
    /// listed as expected to fail (SHOULD failures are warnings).
    pub fn exit_code(&self) -> i32 {
        if self.report.passes_gate() && !self.report.results.is_empty() { 0 } else { 1 }
    }
}

/// The directory of the feature files in the source checkout (the binary
/// runs the copies built into it, [`crate::embedded`]).
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// The tags of the feature files.
#[derive(Debug, Clone, Default)]
pub struct TagIndex {
    /// Every requirement id some scenario is tagged with (without `@`).
    pub requirements: BTreeSet<String>,
    /// Each scenario (`file:line name`) with all its tags, the feature's included.
    pub scenarios: Vec<(String, Vec<String>)>,
}

/// Reads the tags of every feature file of the suite.
pub fn feature_tags() -> anyhow::Result<TagIndex> {
    feature_tags_in(&scenarios_dir())
}

/// Reads the tags of every feature file in `dir`.
pub fn feature_tags_in(dir: &Path) -> anyhow::Result<TagIndex> {
    let mut tagged = BTreeSet::new();
    let mut scenarios = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "feature"))
        .collect();
    files.sort();
    for path in files {
        let feature = cucumber::gherkin::Feature::parse_path(&path, cucumber::gherkin::GherkinEnv::default())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let rule_scenarios = feature.rules.iter().flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s)));
        for (rule, s) in feature.scenarios.iter().map(|s| (None, s)).chain(rule_scenarios) {
            let tags: Vec<String> = feature
                .tags
                .iter()
                .chain(rule.map(|r| r.tags.as_slice()).unwrap_or_default())
                .chain(&s.tags)
                .cloned()
                .collect();
            tagged.extend(tags.iter().filter(|t| requirements::is_requirement_tag(t)).cloned());
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            scenarios.push((format!("{file}:{} {}", s.position.line, s.name), tags));
        }
    }
    Ok(TagIndex { requirements: tagged, scenarios })
}

/// Held by a running `@serial` scenario. Cucumber already runs those alone
/// within one run; this lock keeps them apart across runs that share the
/// process too (the self-test runs several suites at once, one per fault
/// switch), so timing windows and floods never overlap.
static SERIAL: std::sync::LazyLock<Arc<tokio::sync::Mutex<()>>> = std::sync::LazyLock::new(Arc::default);

/// Longest a whole run may take.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// The second app of the in-process reference server, for the isolation scenarios.
pub const OTHER_APP: (&str, &str) = ("other", "sk_other");

/// Notification delay of the in-process reference server, in milliseconds.
pub const REFERENCE_NOTIFICATION_DELAY_MS: u64 = 500;

/// Write timeout of the in-process reference server (`--ws-write-timeout`,
/// default 10 s). The slow-consumer flood posts one commit per request, so
/// the default 1,024-item queue never fills within the flood's budget: the
/// slow reader was dropped by the 10 s write timeout after about 2,400
/// messages (13 s, the longest `@serial` scenario, in every self-test run).
/// With 3 s the scenario takes about 6 s. A smaller queue instead (32) was as
/// quick but dropped the guests of a 300-guest scenario whose fault
/// switch announces every guest to every guest (a burst, not slow readers).
pub const REFERENCE_WS_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The in-process reference server's configuration: `Config::for_tests()`
/// (app `demo`, basic plan) with a [`REFERENCE_NOTIFICATION_DELAY_MS`]
/// notification delay, a [`REFERENCE_WS_WRITE_TIMEOUT`] write timeout, plus
/// [`OTHER_APP`].
pub fn reference_config() -> supergroup_server::Config {
    let mut config = supergroup_server::Config::for_tests();
    let first = config.apps.first().map(|a| a.plan).unwrap_or(supergroup_protocol::limits::Plan::Basic);
    // Long enough that two requests land in one window on a loaded machine,
    // short enough that a 4x window is far outside the timing allowance.
    config.notification_delay_ms = REFERENCE_NOTIFICATION_DELAY_MS;
    config.transport.ws_write_timeout = REFERENCE_WS_WRITE_TIMEOUT;
    config.apps.push(supergroup_server::AppConfig::new(OTHER_APP.0, OTHER_APP.1, first));
    config
}

/// Runs the suite once.
pub async fn run(opts: Options) -> anyhow::Result<Outcome> {
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    let spec = requirements::suite_spec();
    let scenarios = Scenarios::for_run(opts.features.as_deref())
        .map_err(|e| anyhow::anyhow!("cannot write the suite's scenarios to a temporary directory: {e}"))?;
    let index = feature_tags_in(scenarios.path())?;
    anyhow::ensure!(!index.scenarios.is_empty(), "{} holds no scenario", scenarios.path().display());
    let unknown = opts.expect_fail.unknown(&spec);
    anyhow::ensure!(
        unknown.is_empty(),
        "--expect-fail names requirements SPEC.md does not have: {}",
        unknown.join(", ")
    );

    let mut opts = opts;
    let in_process = match &opts.target {
        Some(_) => None,
        None => {
            opts.other_app.get_or_insert_with(|| (OTHER_APP.0.to_string(), OTHER_APP.1.to_string()));
            let mut config = reference_config();
            config.transport.tls = opts.server_tls.clone();
            Some(supergroup_server::spawn(config).await?)
        }
    };
    let target = opts.target.clone().or_else(|| in_process.as_ref().map(|s| s.base_url())).unwrap_or_default();
    let result = run_against(&opts, &target, &spec, (&index, scenarios.path()), started_at, started).await;
    if let Some(server) = in_process {
        server.stop().await?;
    }
    result
}

/// The node origins of a `--target` value: comma separated, blanks ignored.
pub fn node_urls(target: &str) -> Vec<String> {
    target.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect()
}

/// Runs the suite against a server that is already up.
async fn run_against(
    opts: &Options,
    target: &str,
    spec: &[Requirement],
    (index, scenarios): (&TagIndex, &Path),
    started_at: chrono::DateTime<chrono::Utc>,
    started: Instant,
) -> anyhow::Result<Outcome> {
    let tls = Tls::from_option(opts.ca_cert.as_deref())?;
    let nodes: Vec<Rest> =
        node_urls(target).iter().map(|url| Rest::with_tls(url, &opts.app_id, &opts.secret, tls.clone())).collect();
    anyhow::ensure!(!nodes.is_empty(), "--target names no server");
    let rest = nodes[0].clone();
    // Every node must answer before the run starts: a dead node would fail scenarios at random.
    for node in &nodes[1..] {
        tokio::time::timeout(opts.wait, node.app())
            .await
            .map_err(|_| anyhow::anyhow!("GET {} did not answer within {:?}", node.url(""), opts.wait))?
            .map_err(|e| anyhow::anyhow!("GET {} failed: {e}", node.url("")))?;
    }
    let app = tokio::time::timeout(opts.wait, rest.app())
        .await
        .map_err(|_| anyhow::anyhow!("GET {} did not answer within {:?}", rest.url(""), opts.wait))?
        .map_err(|e| anyhow::anyhow!("GET {} failed: {e}", rest.url("")))?;

    let receiver = Receiver::start(opts.webhook_listen, &opts.secret).await?;
    let hook_url = opts.webhook_url.clone().unwrap_or_else(|| receiver.local_url());
    rest.put_webhook(&WebhookRegistration { url: hook_url.clone(), events: None })
        .await
        .map_err(|e| anyhow::anyhow!("registering the webhook receiver {hook_url} failed: {e}"))?;

    let other_app = opts.other_app.as_ref().map(|(id, secret)| rest.with_app(id, secret));
    let suite = Arc::new(Suite {
        rest: rest.clone(),
        nodes,
        app: app.clone(),
        inbox: receiver.inbox.clone(),
        wait: opts.wait,
        hook_url: hook_url.clone(),
        other_app,
        in_process: opts.target.is_none(),
    });
    let dir = match &opts.out {
        Some(out) => {
            let dir = out.join(started_at.format("%Y-%m-%dT%H-%M-%SZ").to_string());
            std::fs::create_dir_all(&dir)?;
            Some(dir)
        }
        None => None,
    };
    // Every network wait of a step is bounded; this bounds the whole run too, so
    // even a send that a dead server never reads cannot hang it.
    let (results, execution_failed) =
        tokio::time::timeout(RUN_LIMIT, run_cucumber(opts, suite, dir.as_deref(), scenarios)).await.map_err(
            |_| anyhow::anyhow!("the run did not finish within {RUN_LIMIT:?}: the server stopped answering"),
        )??;
    let _ = rest.delete_webhook().await;
    receiver.stop().await;

    let meta = Meta {
        target: target.to_string(),
        app: Some(app),
        started: started_at,
        duration: started.elapsed(),
        selection: opts.selection(),
    };
    let mut report = Report::build(meta, spec, results.snapshot(), &index.requirements, opts.selection().is_some());
    report.expected = opts.expect_fail.clone();
    for (_, tags) in &index.scenarios {
        let why = if tags.iter().any(|t| t == "own-server") && opts.target.is_some() {
            "its scenario starts and stops a server of its own, which only the in-process run can do"
        } else if tags.iter().any(|t| t == "other-app") && opts.other_app.is_none() {
            "needs a second app on the target (--other-app ID:SECRET)"
        } else {
            continue;
        };
        for t in tags.iter().filter(|t| requirements::is_requirement_tag(t)) {
            report.not_run_reasons.insert(t.clone(), why.to_string());
        }
    }
    if let Some(dir) = &dir {
        std::fs::write(dir.join("report.md"), report.markdown())?;
        std::fs::write(dir.join("report.html"), report.html())?;
        std::fs::write(dir.join("junit.xml"), report.junit())?;
    }
    Ok(Outcome { report, dir, execution_failed })
}

fn output(dir: Option<&Path>, name: &str) -> anyhow::Result<Box<dyn std::io::Write>> {
    Ok(match dir {
        Some(d) => Box::new(std::fs::File::create(d.join(name))?),
        None => Box::new(std::io::sink()),
    })
}

async fn run_cucumber(
    opts: &Options,
    suite: Arc<Suite>,
    dir: Option<&Path>,
    features: &Path,
) -> anyhow::Result<(Results, bool)> {
    let (recorder, results) = Recorder::new(features.to_path_buf());
    let console: Box<dyn std::io::Write> =
        if opts.console { Box::new(std::io::stdout()) } else { Box::new(std::io::sink()) };
    let tags: Option<TagOperation> = match &opts.tags {
        Some(t) => Some(t.parse().map_err(|e| anyhow::anyhow!("--tags {t:?}: {e}"))?),
        None => None,
    };
    let name = match &opts.name {
        Some(n) => Some(regex::Regex::new(n).map_err(|e| anyhow::anyhow!("--name {n:?}: {e}"))?),
        None => None,
    };
    let wanted = opts.requirements.clone();
    let (own_server, other_app) = (suite.in_process, suite.other_app.is_some());
    let filter =
        move |f: &cucumber::gherkin::Feature, r: Option<&cucumber::gherkin::Rule>, s: &cucumber::gherkin::Scenario| {
            let all = || f.tags.iter().chain(r.iter().flat_map(|r| &r.tags)).chain(&s.tags);
            let possible =
                (own_server || !all().any(|t| t == "own-server")) && (other_app || !all().any(|t| t == "other-app"));
            possible
                && tags.as_ref().is_none_or(|t| t.eval(all()))
                && name.as_ref().is_none_or(|n| n.is_match(&s.name))
                && (wanted.is_empty() || all().any(|t| wanted.contains(t)))
        };
    let writer = writer::Basic::raw(console, writer::Coloring::Auto, 0)
        .summarized()
        .tee::<SgWorld, _>(writer::JUnit::for_tee(output(dir, "junit-scenarios.xml")?, 0))
        .tee::<SgWorld, _>(writer::Json::for_tee(output(dir, "cucumber.json")?))
        .tee::<SgWorld, _>(recorder.discard_stats_writes())
        .normalized();
    let before_suite = suite.clone();
    let finished = SgWorld::cucumber()
        .max_concurrent_scenarios(opts.concurrency)
        .before(move |feature, rule, scenario, world| {
            world.join(before_suite.clone());
            let serial = feature
                .tags
                .iter()
                .chain(rule.iter().flat_map(|r| &r.tags))
                .chain(&scenario.tags)
                .any(|t| t == "serial");
            async move {
                if serial {
                    world.serial = Some(SERIAL.clone().lock_owned().await);
                }
            }
            .boxed_local()
        })
        .after(|_, _, _, _, world| {
            async move {
                if let Some(w) = world {
                    w.hang_up().await;
                    // Released here, not when the World is dropped: cucumber's
                    // writers may keep a failed scenario's World for a while.
                    w.serial = None;
                }
            }
            .boxed_local()
        })
        .with_writer(writer)
        .fail_on_skipped()
        .with_cli(cli::Opts::<_, _, _, cli::Empty>::default())
        .filter_run(features, filter)
        .await;
    use cucumber::writer::Stats as _;
    Ok((results, finished.execution_has_failed()))
}

#[cfg(test)]
mod tests {
    use super::node_urls;

    #[test]
    fn a_target_list_is_split_on_commas_and_one_target_stays_one() {
        assert_eq!(node_urls("http://a:1"), ["http://a:1"]);
        assert_eq!(node_urls("http://a:1, http://b:2,,http://c:3 "), ["http://a:1", "http://b:2", "http://c:3"]);
        assert!(node_urls(" , ").is_empty());
    }
}
