//! `cargo test -p supergroup-conformance`: three checks, in order.
//! 1. Coverage: every MUST of SPEC.md has a scenario, and every `@SG-...` tag
//!    names a requirement of SPEC.md.
//! 2. The whole suite passes against the in-process reference server.
//! 3. The suite can fail: against the reference server with each fault switch
//!    (`Violation::ALL`) on, the scenarios of that rule's requirements fail.

use std::collections::BTreeSet;
use supergroup_conformance::requirements::{self, Level};
use supergroup_conformance::run::{OTHER_APP, feature_tags, reference_config};
use supergroup_conformance::violations::expected_failures;
use supergroup_conformance::{Options, run};
use supergroup_server::Violation;

fn coverage() -> Vec<String> {
    let spec = requirements::load(&requirements::spec_path()).expect("SPEC.md is readable");
    let index = feature_tags().expect("the feature files parse");
    let (tagged, scenarios) = (index.requirements, index.scenarios);
    let known: BTreeSet<&str> = spec.iter().map(|r| r.id.as_str()).collect();
    let mut problems = Vec::new();
    let uncovered: Vec<&str> =
        spec.iter().filter(|r| r.level == Level::Must && !tagged.contains(&r.id)).map(|r| r.id.as_str()).collect();
    if !uncovered.is_empty() {
        problems.push(format!("MUST requirements with no scenario: {}", uncovered.join(", ")));
    }
    let unknown: Vec<&String> = tagged.iter().filter(|t| !known.contains(t.as_str())).collect();
    if !unknown.is_empty() {
        problems.push(format!("tags naming no requirement of SPEC.md: {unknown:?}"));
    }
    let untagged: Vec<&String> = scenarios
        .iter()
        .filter(|(_, tags)| !tags.iter().any(|t| requirements::is_requirement_tag(t)))
        .map(|(name, _)| name)
        .collect();
    if !untagged.is_empty() {
        problems.push(format!("scenarios with no requirement tag: {untagged:?}"));
    }
    let must = spec.iter().filter(|r| r.level == Level::Must).count();
    println!(
        "coverage: {} requirements in SPEC.md ({must} MUST), {} scenarios, {} requirement ids tagged",
        spec.len(),
        scenarios.len(),
        tagged.len()
    );
    problems
}

async fn green() -> Vec<String> {
    let started = std::time::Instant::now();
    let outcome = run(Options::in_process()).await.expect("the suite runs");
    println!("green run: {:.1} s", started.elapsed().as_secs_f64());
    println!("\n{}", outcome.report.verdict());
    let failed: Vec<String> = outcome
        .report
        .failed_scenarios()
        .iter()
        .map(|s| format!("{}:{} {}: {}", s.file, s.line, s.name, s.error.as_deref().unwrap_or("")))
        .collect();
    if outcome.exit_code() != 0 || outcome.report.results.is_empty() {
        vec![format!("the suite failed against the reference server: {failed:#?}")]
    } else {
        Vec::new()
    }
}

async fn violations() -> Vec<String> {
    let mut problems = Vec::new();
    let mut table = Vec::new();
    for v in Violation::ALL {
        let expected = expected_failures(v);
        if expected.is_empty() {
            problems.push(format!("violation {v}: no expected requirement ids in violations.rs"));
            continue;
        }
        let started = std::time::Instant::now();
        let server = supergroup_server::spawn(reference_config().violating(v)).await.expect("server starts");
        let opts = Options {
            target: Some(server.base_url()),
            requirements: expected.iter().map(|s| s.to_string()).collect(),
            console: false,
            other_app: Some((OTHER_APP.0.to_string(), OTHER_APP.1.to_string())),
            ..Options::in_process()
        };
        let outcome = run(opts).await.expect("the suite runs");
        server.stop().await.expect("server stops");
        let mut failing = outcome.report.failing(Level::Must);
        failing.extend(outcome.report.failing(Level::Should));
        let missed: Vec<&&str> = expected.iter().filter(|id| !failing.iter().any(|f| f == *id)).collect();
        if !missed.is_empty() || outcome.exit_code() == 0 {
            problems.push(format!("violation {v}: expected failures of {expected:?}, the suite failed {failing:?}"));
        }
        table.push(format!(
            "| `{v}` | {} | {} | {:.1} s |",
            expected.join(", "),
            failing.join(", "),
            started.elapsed().as_secs_f64()
        ));
    }
    println!("\n| violation | expected to fail | failed | run time |\n|---|---|---|---|");
    for line in &table {
        println!("{line}");
    }
    problems
}

#[tokio::main]
async fn main() {
    let mut problems = coverage();
    problems.extend(green().await);
    problems.extend(violations().await);
    if problems.is_empty() {
        println!("\nconformance: coverage complete, suite green, every violation caught");
    } else {
        eprintln!("\nconformance test FAILED:");
        for p in &problems {
            eprintln!("- {p}");
        }
        std::process::exit(1);
    }
}
