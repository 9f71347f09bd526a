//! `supergroup-conformance`: runs the conformance suite against a server
//! (`--target`) or, with no target, against the in-process reference server,
//! writes the reports and exits non-zero when a MUST requirement fails.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use supergroup_conformance::expectations::ExpectedFailures;
use supergroup_conformance::{Options, run};

/// Checks a Super Group Chat server against SPEC.md. Every flag can also be
/// given in the environment variable named in its help.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The server's origin, e.g. http://127.0.0.1:8080, or its nodes' origins separated by commas
    /// (http://a:8080,http://b:8080): the k-th user of each scenario connects to node k mod N and
    /// REST calls take the nodes in turn. Without it, the in-process reference server is used.
    #[arg(long, env = "SUPERGROUP_TARGET")]
    target: Option<String>,
    /// The app to test.
    #[arg(long, env = "SUPERGROUP_APP_ID", default_value = "demo")]
    app_id: String,
    /// Its secret.
    #[arg(long, env = "SUPERGROUP_SECRET", default_value = "sk_demo")]
    secret: String,
    /// Where the suite's webhook receiver listens.
    #[arg(long, env = "SUPERGROUP_CONFORMANCE_WEBHOOK_LISTEN", default_value = "127.0.0.1:0")]
    webhook_listen: SocketAddr,
    /// The URL to register for webhooks instead of the receiver's own (for a server on another host).
    #[arg(long, env = "SUPERGROUP_CONFORMANCE_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Cucumber tag expression, e.g. "@SG-GUEST-3 or @SG-TYPING-1".
    #[arg(long, short = 't', env = "SUPERGROUP_CONFORMANCE_TAGS")]
    tags: Option<String>,
    /// Regex on scenario names.
    #[arg(long, short = 'n', env = "SUPERGROUP_CONFORMANCE_NAME")]
    name: Option<String>,
    /// Only the scenarios of these requirements (repeatable or comma separated).
    #[arg(long, env = "SUPERGROUP_CONFORMANCE_REQUIREMENT", value_delimiter = ',')]
    requirement: Vec<String>,
    /// Directory for reports; a <timestamp> directory is created in it.
    #[arg(long, env = "SUPERGROUP_CONFORMANCE_OUT", default_value_os_t = default_out())]
    out: PathBuf,
    /// Scenarios in flight at once.
    #[arg(long, env = "SUPERGROUP_CONFORMANCE_CONCURRENCY", default_value_t = 8)]
    concurrency: usize,
    /// A second app on the target as ID:SECRET, for the app-isolation scenarios (skipped without one).
    #[arg(long, env = "SUPERGROUP_CONFORMANCE_OTHER_APP")]
    other_app: Option<String>,
    /// Bound of every wait for a reply or event, in milliseconds.
    #[arg(long, env = "SUPERGROUP_CONFORMANCE_WAIT_MS", default_value_t = 5000)]
    wait_ms: u64,
    /// PEM file of CA certificates to trust besides the platform's roots, for an https/wss target with a private CA.
    #[arg(long, env = "SUPERGROUP_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Known failures: a file with one requirement id per line and the reason after it (`#` starts a
    /// comment line). They are reported as expected; only other failures make the exit code 1.
    #[arg(long, env = "SUPERGROUP_CONFORMANCE_EXPECT_FAIL")]
    expect_fail: Option<PathBuf>,
    /// Run the .feature files of this directory (your own scenarios, written with the steps of
    /// features/STEPS.md) instead of the suite's.
    #[arg(long, env = "SUPERGROUP_CONFORMANCE_FEATURES")]
    features: Option<PathBuf>,
}

/// `reports/conformance` under the working directory (the workspace root
/// for `cargo run`; wherever a CI job runs the built binary).
fn default_out() -> PathBuf {
    PathBuf::from("reports").join("conformance")
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let other_app = match args.other_app.as_deref().map(|s| s.split_once(':')) {
        None => None,
        Some(Some((id, secret))) => Some((id.to_string(), secret.to_string())),
        Some(None) => {
            eprintln!("supergroup-conformance: --other-app takes ID:SECRET");
            std::process::exit(2);
        }
    };
    let expect_fail = match args.expect_fail.as_deref().map(ExpectedFailures::read) {
        None => ExpectedFailures::default(),
        Some(Ok(e)) => e,
        Some(Err(e)) => {
            eprintln!("supergroup-conformance: --expect-fail: {e:#}");
            std::process::exit(2);
        }
    };
    let opts = Options {
        target: args.target,
        app_id: args.app_id,
        secret: args.secret,
        webhook_listen: args.webhook_listen,
        webhook_url: args.webhook_url,
        tags: args.tags,
        name: args.name,
        requirements: args.requirement,
        out: Some(args.out),
        console: true,
        concurrency: args.concurrency.max(1),
        wait: Duration::from_millis(args.wait_ms),
        other_app,
        ca_cert: args.ca_cert,
        server_tls: None,
        features: args.features,
        expect_fail,
    };
    match run(opts).await {
        Ok(outcome) => {
            println!("\n{}", outcome.report.verdict());
            if let Some(dir) = &outcome.dir {
                println!("reports: {}", dir.display());
            }
            std::process::exit(outcome.exit_code());
        }
        Err(e) => {
            eprintln!("supergroup-conformance: {e:#}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// A CI job sets variables, not flags: every flag has one, and the flag
    /// table of features/README.md names both.
    #[test]
    fn every_flag_has_an_environment_variable_and_a_row_in_the_readme() {
        let readme = include_str!("../README.md");
        let mut problems = Vec::new();
        for arg in Args::command().get_arguments() {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            let flag = format!("`--{}", arg.get_long().unwrap_or(arg.get_id().as_str()));
            let Some(env) = arg.get_env() else {
                problems.push(format!("{flag}` has no environment variable"));
                continue;
            };
            let env = format!("`{}`", env.to_string_lossy());
            if !readme.lines().any(|l| l.starts_with('|') && l.contains(&flag) && l.contains(&env)) {
                problems.push(format!("{flag}` ({env}) has no row in features/README.md's flag table"));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
