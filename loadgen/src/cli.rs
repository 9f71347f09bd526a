//! The command line: `supergroup-load [run] [FLAGS]` runs a load test (`run`
//! is the default subcommand, so the first command of the README needs no
//! arguments), `supergroup-load server ...` is the reference server (the load
//! generator re-executes itself with it to get a local server in its own
//! process), and `supergroup-load compare A B` compares two runs. Workload
//! flags are optional: an unset flag takes its value from `--profile`, else
//! from the defaults of [`crate::plan::Workload::DEFAULT`].

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use supergroup_server::cli::ServerArgs;

#[derive(Debug, Parser)]
#[command(
    name = "supergroup-load",
    version,
    about = "Load generator for Super Group Chat servers: thousands of guests, honest fan-out latency, charts and a verdict",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `run`, accepted without the word `run`.
    #[command(flatten)]
    pub run: RunArgs,
}

// Parsed once at start-up: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a load test (the default subcommand).
    Run(RunArgs),
    /// Run the reference server in this process (the load generator starts its local server this way).
    Server(ServerArgs),
    /// Compare two runs: `compare A/summary.json B/summary.json`.
    Compare(CompareArgs),
    /// Join a run as a load worker: `worker --coordinator nats://HOST:4222` (see `--workers`).
    Worker(WorkerArgs),
}

/// A named workload shape; explicit flags override its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A big quiet room: 1,000 guests, 5 talkers at 1 message/s each, 200-byte messages.
    Lobby,
    /// A livestream shout box: 2,000 guests, 20 talkers at 1 message/s each, 80-byte messages.
    Shoutbox,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Server to load, e.g. http://127.0.0.1:8080, or the nodes of one server (a cluster) separated by
    /// commas: guests and talkers are spread over them round robin. Without it a local reference server is started.
    #[arg(long, env = "SUPERGROUP_LOAD_TARGET")]
    pub target: Option<String>,
    /// App id on the target.
    #[arg(long, default_value = "demo", env = "SUPERGROUP_LOAD_APP_ID")]
    pub app_id: String,
    /// App secret on the target (REST bearer token and JWT key).
    #[arg(long, default_value = "sk_demo", env = "SUPERGROUP_LOAD_SECRET")]
    pub secret: String,
    /// Workload shape: lobby or shoutbox.
    #[arg(long, value_enum, env = "SUPERGROUP_LOAD_PROFILE")]
    pub profile: Option<Profile>,
    /// Guests in total (each one WebSocket that opens a conversation as a guest and receives).
    #[arg(long, env = "SUPERGROUP_LOAD_GUESTS")]
    pub guests: Option<usize>,
    /// Talkers in total (participants who send on a fixed schedule); at least one per conversation.
    #[arg(long, env = "SUPERGROUP_LOAD_TALKERS")]
    pub talkers: Option<usize>,
    /// Conversations; guests and talkers are spread across them round robin.
    #[arg(long, env = "SUPERGROUP_LOAD_CONVERSATIONS")]
    pub conversations: Option<usize>,
    /// REST readers (users that page history and a user's conversation list, once a second each).
    #[arg(long, env = "SUPERGROUP_LOAD_READERS")]
    pub readers: Option<usize>,
    /// Messages per second sent by each talker (open model: a fixed schedule, late sends are not forgiven).
    #[arg(long, env = "SUPERGROUP_LOAD_RATE")]
    pub rate: Option<f64>,
    /// Bytes of text per message.
    #[arg(long, env = "SUPERGROUP_LOAD_MESSAGE_BYTES")]
    pub message_bytes: Option<usize>,
    /// Connections opened per second while ramping up.
    #[arg(long, env = "SUPERGROUP_LOAD_RAMP")]
    pub ramp: Option<f64>,
    /// How long the talkers send, e.g. 10s, 1m, 500ms.
    #[arg(long, value_parser = parse_secs, env = "SUPERGROUP_LOAD_DURATION")]
    pub duration: Option<f64>,
    /// Churn: each second this share of the guests closes its conversation and socket and, after
    /// a 500 ms pause, reconnects and opens it again; spread over the second, e.g. 5%/s.
    #[arg(long, value_parser = parse_churn, value_name = "RATE", env = "SUPERGROUP_LOAD_CHURN")]
    pub churn: Option<f64>,
    /// Reconnect storm: this far into the send window every guest drops its socket at once (no
    /// close) and all reconnect and reopen immediately, e.g. 20s.
    #[arg(long, value_parser = parse_secs, value_name = "AT", env = "SUPERGROUP_LOAD_RECONNECT_STORM")]
    pub reconnect_storm: Option<f64>,
    /// Time between the end of the ramp and the first message, for the last connections to settle.
    #[arg(long, value_parser = parse_secs, default_value = "2s", env = "SUPERGROUP_LOAD_SETTLE")]
    pub settle: f64,
    /// Time after the last message for deliveries in flight; what has not arrived then is lost.
    #[arg(long, value_parser = parse_secs, default_value = "3s", env = "SUPERGROUP_LOAD_DRAIN")]
    pub drain: f64,
    /// Stepped workload: the rate per talker of each step, e.g. 5,10,20,40 (msg/s per talker, like --rate).
    #[arg(long, value_delimiter = ',', num_args = 1.., conflicts_with = "stages", env = "SUPERGROUP_LOAD_STEP_RATE")]
    pub step_rate: Vec<f64>,
    /// How long each step of --step-rate lasts.
    #[arg(long, value_parser = parse_secs, default_value = "20s", env = "SUPERGROUP_LOAD_STEP")]
    pub step: f64,
    /// Stages of the rate per talker: DURATION:RATE holds, DURATION:FROM..TO ramps, e.g. '30s:1..20,60s:20,5s:100'.
    #[arg(long, env = "SUPERGROUP_LOAD_STAGES")]
    pub stages: Option<String>,
    /// With stages: stop raising the rate once a step crosses this line, repeatable: 'p99>1s', 'loss>0'
    /// (default: both). A step is judged --drain after it ends.
    #[arg(long = "stop-when", value_name = "EXPR", env = "SUPERGROUP_LOAD_STOP_WHEN")]
    pub stop_when: Vec<String>,
    /// Pass/fail rule, repeatable: 'fanout.p99<50ms', 'loss==0', 'errors==0', 'connect.p95<1s'.
    #[arg(long = "threshold", value_name = "EXPR", env = "SUPERGROUP_LOAD_THRESHOLD")]
    pub thresholds: Vec<String>,
    /// Run even when the target's guest limit is below the guests per conversation, to probe the
    /// limit: refused guests are counted as `open: guest_limit_reached` errors.
    #[arg(long, env = "SUPERGROUP_LOAD_ALLOW_OVER_LIMIT")]
    pub allow_over_limit: bool,
    /// Report folder (default: reports/load/<UTC timestamp>/ at the workspace root).
    #[arg(long, env = "SUPERGROUP_LOAD_OUT")]
    pub out: Option<PathBuf>,
    /// Sample this process's CPU and memory once a second (a server on this machine given by --target).
    #[arg(long, env = "SUPERGROUP_LOAD_SERVER_PID")]
    pub server_pid: Option<u32>,
    /// Outbound queue (frames) of each connection of the local server before it closes a slow consumer.
    #[arg(long, default_value_t = 1024, env = "SUPERGROUP_LOAD_SERVER_OUTBOUND_QUEUE")]
    pub server_outbound_queue: usize,
    /// Executable that provides the `server` subcommand (default: this one).
    #[arg(long, hide = true, env = "SUPERGROUP_LOAD_SERVER_EXE")]
    pub server_exe: Option<PathBuf>,
    /// No live progress line.
    #[arg(long, env = "SUPERGROUP_LOAD_NO_PROGRESS")]
    pub no_progress: bool,
    /// Serve the run's live figures at http://ADDR/metrics (Prometheus text), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR", env = "SUPERGROUP_LOAD_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Write the run's live figures to FILE, one JSON object per second (schema in loadgen/README.md).
    #[arg(long, value_name = "FILE", env = "SUPERGROUP_LOAD_OUT_JSONL")]
    pub out_jsonl: Option<PathBuf>,
    /// PEM file of CA certificates to trust besides the platform's roots, for an https/wss target with a private CA.
    #[arg(long, env = "SUPERGROUP_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Spread the run over N load worker processes coordinated through NATS, and merge their results.
    /// Without --coordinator, N local workers and a local nats-server are started.
    #[arg(long, env = "SUPERGROUP_LOAD_WORKERS")]
    pub workers: Option<usize>,
    /// The NATS broker of a run with --workers, e.g. nats://10.0.0.5:4222: wait for N workers
    /// started elsewhere (`supergroup-load worker --coordinator URL`) instead of starting them here.
    #[arg(long, env = "SUPERGROUP_LOAD_COORDINATOR", requires = "workers")]
    pub coordinator: Option<String>,
    /// The run's id (prefix of every id it creates; workers may name it with `worker --run-id`).
    #[arg(long, env = "SUPERGROUP_LOAD_RUN_ID")]
    pub run_id: Option<String>,
    /// With --workers: how long to wait for every worker to join.
    #[arg(long, value_parser = parse_secs, default_value = "60s", env = "SUPERGROUP_LOAD_WORKER_WAIT")]
    pub worker_wait: f64,
}

impl RunArgs {
    /// The arguments `supergroup-load` runs with when given no flags: every
    /// default as the command line gives it (the `SUPERGROUP_LOAD_*`
    /// variables included). Tests and embedders start from it and set what
    /// they need, so a new flag needs no edit in every caller.
    pub fn defaults() -> RunArgs {
        #[derive(Parser)]
        struct NoFlags {
            #[command(flatten)]
            run: RunArgs,
        }
        NoFlags::parse_from(["supergroup-load"]).run
    }
}

/// `supergroup-load worker`: one load worker of a run coordinated through NATS.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The run's NATS broker, e.g. nats://10.0.0.5:4222.
    #[arg(long, env = "SUPERGROUP_LOAD_COORDINATOR")]
    pub coordinator: String,
    /// Join only this run (default: whichever coordinator on the broker still takes workers).
    #[arg(long, env = "SUPERGROUP_LOAD_RUN_ID")]
    pub run_id: Option<String>,
    /// The app secret (the plan names the app; the secret never travels over the broker).
    #[arg(long, default_value = "sk_demo", env = "SUPERGROUP_LOAD_SECRET")]
    pub secret: String,
    /// PEM file of CA certificates to trust besides the platform's roots.
    #[arg(long, env = "SUPERGROUP_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Folder for goose's log and report (default: a folder under the system temp dir).
    #[arg(long, env = "SUPERGROUP_LOAD_WORKER_OUT")]
    pub out: Option<PathBuf>,
    /// How long to keep asking to join before giving up.
    #[arg(long, value_parser = parse_secs, default_value = "60s", env = "SUPERGROUP_LOAD_WORKER_WAIT")]
    pub wait: f64,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The baseline run's summary.json (or its folder).
    pub a: PathBuf,
    /// The candidate run's summary.json (or its folder).
    pub b: PathBuf,
    /// Where to write compare.md, compare.html and the overlay chart (default: reports/load/compare-<timestamp>/).
    #[arg(long, env = "SUPERGROUP_LOAD_COMPARE_OUT")]
    pub out: Option<PathBuf>,
    /// A figure that gets worse by more than this many percent is a regression.
    #[arg(long, default_value_t = 10.0, env = "SUPERGROUP_LOAD_COMPARE_TOLERANCE")]
    pub tolerance: f64,
}

/// The nodes of `--target URL1,URL2,...`: trimmed, without a trailing `/`, empty entries refused.
pub fn parse_targets(s: &str) -> Result<Vec<String>, String> {
    let nodes: Vec<String> = s.split(',').map(|t| t.trim().trim_end_matches('/').to_string()).collect();
    if nodes.iter().any(|t| t.is_empty()) {
        return Err(format!("--target `{s}` has an empty entry: give URL1,URL2,..."));
    }
    Ok(nodes)
}

/// Parses a churn rate, `5%/s` or `5%` (per second either way), into a fraction per second.
pub fn parse_churn(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t).trim_end();
    let pct = t
        .strip_suffix('%')
        .ok_or_else(|| format!("`{s}` is not a churn rate: give a percentage per second, e.g. 5%/s"))?;
    let v: f64 = pct
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a churn rate: give a percentage per second, e.g. 5%/s"))?;
    if !v.is_finite() || !(0.0..=100.0).contains(&v) {
        return Err(format!("`{s}`: churn must be between 0%/s and 100%/s"));
    }
    Ok(v / 100.0)
}

/// Parses `10s`, `1.5s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_secs(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{s}` must be a duration of zero or more"));
    }
    Ok(v * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_of_every_command_has_an_environment_variable() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !arg.is_positional() && !builtin && arg.get_env().is_none() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(arg.get_id().as_str())));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "supergroup-load", &mut missing);
        assert!(missing.is_empty(), "flags without an environment variable: {missing:?}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_secs("10s"), Ok(10.0));
        assert_eq!(parse_secs("500ms"), Ok(0.5));
        assert_eq!(parse_secs("2m"), Ok(120.0));
        assert_eq!(parse_secs("3"), Ok(3.0));
        assert!(parse_secs("-1s").is_err());
        assert!(parse_secs("fast").is_err());
    }

    #[test]
    fn churn_rates() {
        assert_eq!(parse_churn("5%/s"), Ok(0.05));
        assert_eq!(parse_churn("2.5 %"), Ok(0.025));
        assert!(parse_churn("5").is_err(), "a bare number is ambiguous");
        assert!(parse_churn("150%/s").is_err());
        assert!(parse_churn("-1%").is_err());
    }

    #[test]
    fn targets_are_split_on_commas() {
        assert_eq!(parse_targets("http://a:1/, http://b:2").unwrap(), vec!["http://a:1", "http://b:2"]);
        assert_eq!(parse_targets("http://a").unwrap(), vec!["http://a"]);
        assert!(parse_targets("http://a,,http://b").is_err());
    }

    #[test]
    fn run_is_the_default_subcommand() {
        let cli = Cli::try_parse_from(["supergroup-load", "--guests", "5"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.guests, Some(5));
        let cli = Cli::try_parse_from(["supergroup-load", "compare", "a", "b"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Compare(_))));
        let cli = Cli::try_parse_from(["supergroup-load", "server", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Server(_))));
        let cli = Cli::try_parse_from(["supergroup-load", "worker", "--coordinator", "nats://127.0.0.1:4222"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Worker(_))));
        assert!(Cli::try_parse_from(["supergroup-load", "--coordinator", "nats://x:1"]).is_err(), "needs --workers");
    }
}
