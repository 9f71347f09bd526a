//! A cucumber [`Writer`] that keeps one [`ScenarioResult`] per scenario run:
//! its tags, whether it passed, and for a failure the step and the message
//! (what was expected, what was received). The conformance report is built
//! from these; cucumber's own writers produce the console, JUnit and JSON
//! output alongside it (`tee`).

use cucumber::event::{self, Cucumber, Feature, Hook, Rule, Scenario, Step};
use cucumber::{Event, World, Writer, cli, parser};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How a scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Passed,
    /// A step had no definition (counted as a failure by `fail_on_skipped`).
    Skipped,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "pass",
            Status::Skipped => "skipped",
            Status::Failed => "FAIL",
        }
    }
}

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The feature's name.
    pub feature: String,
    /// The feature file, relative to the scenarios directory.
    pub file: String,
    pub name: String,
    /// Line of the scenario in its file.
    pub line: usize,
    /// Feature and scenario tags, without `@`.
    pub tags: Vec<String>,
    pub status: Status,
    pub steps_passed: usize,
    pub steps_total: usize,
    /// `When alice opens ...`: the step that failed or was skipped.
    pub failed_step: Option<String>,
    /// The failure message.
    pub error: Option<String>,
}

/// Collected results, shared with whoever reads them after the run.
#[derive(Debug, Clone, Default)]
pub struct Results(Arc<Mutex<Vec<ScenarioResult>>>);

impl Results {
    /// Everything recorded so far.
    pub fn snapshot(&self) -> Vec<ScenarioResult> {
        self.0.lock().expect("results lock poisoned").clone()
    }
}

/// The writer. Scenarios are keyed by file and line while they run.
#[derive(Debug, Default)]
pub struct Recorder {
    results: Results,
    running: HashMap<(PathBuf, usize), ScenarioResult>,
    /// Where the feature files live, to print relative paths.
    root: PathBuf,
}

impl Recorder {
    pub fn new(root: PathBuf) -> (Recorder, Results) {
        let results = Results::default();
        (Recorder { results: results.clone(), running: HashMap::new(), root }, results)
    }

    fn on_scenario(&mut self, feature: &gherkin::Feature, scenario: &gherkin::Scenario, ev: &Scenario<impl World>) {
        let path = feature.path.clone().unwrap_or_default();
        let key = (path.clone(), scenario.position.line);
        match ev {
            Scenario::Started => {
                let file = path.strip_prefix(&self.root).unwrap_or(&path).display().to_string();
                let tags = feature.tags.iter().chain(&scenario.tags).cloned().collect();
                let steps_total = feature.background.as_ref().map_or(0, |b| b.steps.len()) + scenario.steps.len();
                self.running.insert(
                    key,
                    ScenarioResult {
                        feature: feature.name.clone(),
                        file,
                        name: scenario.name.clone(),
                        line: scenario.position.line,
                        tags,
                        status: Status::Passed,
                        steps_passed: 0,
                        steps_total,
                        failed_step: None,
                        error: None,
                    },
                );
            }
            Scenario::Step(step, st) | Scenario::Background(step, st) => {
                let Some(r) = self.running.get_mut(&key) else { return };
                match st {
                    Step::Started => {}
                    Step::Passed(..) => r.steps_passed += 1,
                    Step::Skipped => {
                        if r.status == Status::Passed {
                            r.status = Status::Skipped;
                            r.failed_step = Some(format!("{}{}", step.keyword, step.value));
                            r.error = Some("no step definition matches this step".into());
                        }
                    }
                    Step::Failed(_, _, _, err) => {
                        r.status = Status::Failed;
                        r.failed_step = Some(format!("{}{}", step.keyword, step.value));
                        r.error = Some(clean(&err.to_string()));
                    }
                }
            }
            Scenario::Hook(which, Hook::Failed(_, info)) => {
                if let Some(r) = self.running.get_mut(&key) {
                    r.status = Status::Failed;
                    r.failed_step = Some(format!("{which} hook"));
                    r.error = Some(panic_text(info));
                }
            }
            Scenario::Finished => {
                if let Some(r) = self.running.remove(&key) {
                    self.results.0.lock().expect("results lock poisoned").push(r);
                }
            }
            Scenario::Hook(..) | Scenario::Log(_) => {}
        }
    }
}

/// Drops cucumber's "Step panicked. Captured output:" prefix.
fn clean(text: &str) -> String {
    text.strip_prefix("Step panicked. Captured output: ").unwrap_or(text).to_string()
}

fn panic_text(info: &event::Info) -> String {
    info.downcast_ref::<String>()
        .cloned()
        .or_else(|| info.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(a hook panicked)".into())
}

impl<W: World> Writer<W> for Recorder {
    type Cli = cli::Empty;

    async fn handle_event(&mut self, event: parser::Result<Event<Cucumber<W>>>, _cli: &Self::Cli) {
        match event.map(Event::into_inner) {
            Err(e) => self.results.0.lock().expect("results lock poisoned").push(ScenarioResult {
                feature: "(parse error)".into(),
                file: String::new(),
                name: "a feature file failed to parse".into(),
                line: 0,
                tags: Vec::new(),
                status: Status::Failed,
                steps_passed: 0,
                steps_total: 0,
                failed_step: None,
                error: Some(e.to_string()),
            }),
            Ok(Cucumber::Feature(f, Feature::Scenario(sc, ev))) => self.on_scenario(&f, &sc, &ev.event),
            Ok(Cucumber::Feature(f, Feature::Rule(_, Rule::Scenario(sc, ev)))) => self.on_scenario(&f, &sc, &ev.event),
            Ok(_) => {}
        }
    }
}

use cucumber::gherkin;
