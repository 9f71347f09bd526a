//! `--features DIR`: a team's own Gherkin, run with the suite's steps against
//! the in-process reference server. The scenario is the worked example of
//! features/README.md ("Your own scenarios"), read from the README itself so
//! the documented example cannot drift from what runs; a copy with one wrong
//! expectation must fail at that step.

use supergroup_conformance::report::Grade;
use supergroup_conformance::{Options, run};

/// The ```gherkin block of features/README.md that starts with the vip_room comment.
fn readme_example() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let start = readme.find("# acme/features/vip_room.feature").expect("the README has the vip_room example");
    let block = &readme[start..];
    let end = block.find("```").expect("the example's code block ends");
    block[..end].to_string()
}

async fn run_dir(feature: &str) -> supergroup_conformance::Outcome {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("vip_room.feature"), feature).expect("written");
    let opts = Options { features: Some(dir.path().to_path_buf()), console: false, ..Options::in_process() };
    run(opts).await.expect("the suite runs")
}

#[tokio::test]
async fn the_readme_example_runs_and_passes_with_a_row_for_its_requirement() {
    let outcome = run_dir(&readme_example()).await;
    assert_eq!(outcome.exit_code(), 0, "{:#?}", outcome.report.failure_lines());
    assert_eq!(outcome.report.results.len(), 1, "one scenario ran");
    let row = outcome.report.rows.iter().find(|r| r.requirement.id == "SG-GUEST-1").expect("a row for SG-GUEST-1");
    assert_eq!(row.grade, Grade::Pass);
}

#[tokio::test]
async fn a_wrong_expectation_in_an_own_scenario_fails_at_its_step() {
    let wrong = readme_example()
        .replace("Then bob is notified of", "Then bob is not notified about \"vip\"\n    And bob is notified of");
    let outcome = run_dir(&wrong).await;
    assert_eq!(outcome.exit_code(), 1);
    let failed = outcome.report.failed_scenarios();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].failed_step.as_deref(), Some(r#"Then bob is not notified about "vip""#));
    let row = outcome.report.rows.iter().find(|r| r.requirement.id == "SG-GUEST-1").expect("a row for SG-GUEST-1");
    assert_eq!(row.grade, Grade::Fail);
}
