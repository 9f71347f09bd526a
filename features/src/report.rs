//! The conformance report: each requirement of SPEC.md graded from the
//! scenarios tagged with it, a one-line verdict, and the failures with what
//! was expected and what was received. Written as `report.md` and
//! `report.html` next to cucumber's JUnit XML and Cucumber JSON.

use crate::expectations::ExpectedFailures;
use crate::recorder::{ScenarioResult, Status};
use crate::requirements::{Level, Requirement};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;
use supergroup_protocol::rest::AppInfo;

/// What the report says about the run as a whole.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The server's URL.
    pub target: String,
    /// `GET /v1/{appId}`, when it answered.
    pub app: Option<AppInfo>,
    /// When the run started (UTC).
    pub started: chrono::DateTime<chrono::Utc>,
    pub duration: Duration,
    /// The filter the run used, if any (`--tags`, `--name`, `--requirement`).
    pub selection: Option<String>,
}

/// The grade of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grade {
    /// Every scenario tagged with it passed.
    Pass,
    /// At least one of its scenarios failed.
    Fail,
    /// Its scenarios exist but none ran (filtered out).
    NotRun,
    /// No scenario is tagged with it.
    NotCovered,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Pass => "pass",
            Grade::Fail => "FAIL",
            Grade::NotRun => "not run",
            Grade::NotCovered => "not covered",
        }
    }
}

/// One line of the matrix.
#[derive(Debug, Clone)]
pub struct Row {
    pub requirement: Requirement,
    pub grade: Grade,
    /// The scenarios that ran for it.
    pub scenarios: Vec<ScenarioResult>,
}

/// The graded run.
#[derive(Debug, Clone)]
pub struct Report {
    pub meta: Meta,
    pub rows: Vec<Row>,
    pub results: Vec<ScenarioResult>,
    /// Whether the run was a filtered selection (then requirements not run are not counted).
    pub filtered: bool,
    /// Why a requirement's scenarios could not run against this target, by requirement id.
    pub not_run_reasons: BTreeMap<String, String>,
    /// Known failures (`--expect-fail`): they do not fail the run.
    pub expected: ExpectedFailures,
}

impl Report {
    /// Grades every requirement; `tagged` is every requirement tag found in the feature files.
    pub fn build(
        meta: Meta,
        requirements: &[Requirement],
        mut results: Vec<ScenarioResult>,
        tagged: &BTreeSet<String>,
        filtered: bool,
    ) -> Report {
        results.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        let rows = requirements
            .iter()
            .map(|req| {
                let scenarios: Vec<ScenarioResult> =
                    results.iter().filter(|r| r.tags.iter().any(|t| t == &req.id)).cloned().collect();
                let grade = if scenarios.iter().any(|s| s.status != Status::Passed) {
                    Grade::Fail
                } else if !scenarios.is_empty() {
                    Grade::Pass
                } else if tagged.contains(&req.id) {
                    Grade::NotRun
                } else {
                    Grade::NotCovered
                };
                Row { requirement: req.clone(), grade, scenarios }
            })
            .collect();
        Report {
            meta,
            rows,
            results,
            filtered,
            not_run_reasons: BTreeMap::new(),
            expected: ExpectedFailures::default(),
        }
    }

    fn counted(&self, level: Level) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| {
            r.requirement.level == level
                && match r.grade {
                    Grade::Pass | Grade::Fail => true,
                    // A full run counts every MUST: one it could not check is not shown to conform.
                    Grade::NotCovered | Grade::NotRun => !self.filtered,
                }
        })
    }

    /// Requirement ids with at least one failing scenario, MUST and SHOULD.
    pub fn failing(&self, level: Level) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.requirement.level == level && r.grade == Grade::Fail)
            .map(|r| r.requirement.id.clone())
            .collect()
    }

    /// Scenarios that did not pass.
    pub fn failed_scenarios(&self) -> Vec<&ScenarioResult> {
        self.results.iter().filter(|r| r.status != Status::Passed).collect()
    }

    /// One line per scenario that did not pass: `file:line name: error`.
    pub fn failure_lines(&self) -> Vec<String> {
        self.failed_scenarios()
            .iter()
            .map(|s| format!("{}:{} {}: {}", s.file, s.line, s.name, s.error.as_deref().unwrap_or("")))
            .collect()
    }

    /// MUST requirements that failed and are not expected to (`--expect-fail`).
    pub fn regressions(&self) -> Vec<String> {
        self.failing(Level::Must).into_iter().filter(|id| self.expected.reason(id).is_none()).collect()
    }

    /// Requirements expected to fail that passed: their line can go.
    pub fn fixed(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.grade == Grade::Pass && self.expected.reason(&r.requirement.id).is_some())
            .map(|r| r.requirement.id.clone())
            .collect()
    }

    /// The exit-code gate: no MUST failed that is not expected to, and no
    /// scenario failed outside every requirement (a feature file that does
    /// not parse, a scenario without a requirement tag).
    pub fn passes_gate(&self) -> bool {
        self.regressions().is_empty() && self.failed_scenarios().iter().all(|s| !requirement_tags(s).is_empty())
    }

    /// How a row reads in the Result column.
    pub fn label(&self, row: &Row) -> String {
        let expected = self.expected.reason(&row.requirement.id).is_some();
        match (row.grade, row.requirement.level, expected) {
            (Grade::Fail, _, true) => "expected FAIL".into(),
            (Grade::Fail, Level::Should, false) => "warning".into(),
            (Grade::Pass, _, true) => "FIXED (listed as expected to fail)".into(),
            (g, ..) => g.as_str().into(),
        }
    }

    /// Why a failed row failed: its first failing scenario, step and message.
    pub fn why(&self, row: &Row) -> Option<(String, String, String)> {
        let s = row.scenarios.iter().find(|s| s.status != Status::Passed)?;
        let message = s.error.as_deref().unwrap_or("").trim().lines().next().unwrap_or("").to_string();
        Some((format!("{}:{} {}", s.file, s.line, s.name), s.failed_step.clone().unwrap_or_default(), message))
    }

    /// Rows in report order: new failures, expected failures, SHOULD warnings;
    /// then fixed and passed; then what could not be checked.
    pub fn ordered(&self) -> Vec<&Row> {
        let rank = |r: &Row| match (r.grade, r.requirement.level, self.expected.reason(&r.requirement.id).is_some()) {
            (Grade::Fail, Level::Must, false) => 0,
            (Grade::Fail, _, true) => 1,
            (Grade::Fail, ..) => 2,
            (Grade::Pass, _, true) => 3,
            (Grade::Pass, ..) => 4,
            _ => 5,
        };
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        rows.sort_by_key(|r| rank(r));
        rows
    }

    /// True when no MUST requirement and no scenario failed.
    pub fn conforms(&self) -> bool {
        self.failing(Level::Must).is_empty()
            && self.failed_scenarios().iter().all(|s| {
                // A scenario tagged only with SHOULD requirements is a warning.
                s.tags.iter().any(|t| self.level_of(t) == Some(Level::Should))
                    && !s.tags.iter().any(|t| self.level_of(t) == Some(Level::Must))
            })
    }

    fn level_of(&self, id: &str) -> Option<Level> {
        self.rows.iter().find(|r| r.requirement.id == id).map(|r| r.requirement.level)
    }

    /// "conforms to N of M MUST requirements", with what failed.
    pub fn verdict(&self) -> String {
        let must: Vec<&Row> = self.counted(Level::Must).collect();
        let passed = must.iter().filter(|r| r.grade == Grade::Pass).count();
        let mut line = format!("{} conforms to {passed} of {} MUST requirements", self.meta.target, must.len());
        let failing = self.failing(Level::Must);
        if !failing.is_empty() {
            let _ = write!(line, "; failing: {}", failing.join(", "));
        }
        let uncovered: Vec<&str> =
            must.iter().filter(|r| r.grade == Grade::NotCovered).map(|r| r.requirement.id.as_str()).collect();
        if !uncovered.is_empty() {
            let _ = write!(line, "; not covered by any scenario: {}", uncovered.join(", "));
        }
        let not_run: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| r.requirement.level == Level::Must && r.grade == Grade::NotRun)
            .map(|r| r.requirement.id.as_str())
            .collect();
        if !not_run.is_empty() && !self.filtered {
            let _ = write!(line, "; not run against this target: {}", not_run.join(", "));
        }
        if !self.expected.is_empty() {
            let regressions = self.regressions();
            let expected: Vec<String> =
                failing.iter().filter(|id| self.expected.reason(id).is_some()).cloned().collect();
            if !regressions.is_empty() {
                let _ = write!(line, "; NEW failures: {}", regressions.join(", "));
            }
            if !expected.is_empty() {
                let _ = write!(line, "; expected failures (--expect-fail): {}", expected.join(", "));
            }
            let fixed = self.fixed();
            if !fixed.is_empty() {
                let _ = write!(line, "; FIXED, remove from the expect-fail file: {}", fixed.join(", "));
            }
        }
        let should = self.failing(Level::Should);
        if !should.is_empty() {
            let _ = write!(line, "; SHOULD warnings: {}", should.join(", "));
        }
        if self.filtered {
            line.push_str(" (filtered run: requirements outside the selection are not counted)");
        }
        line
    }

    fn plan_line(&self) -> String {
        match &self.meta.app {
            Some(a) => format!(
                "app `{}`, plan `{}` ({} participants, {} concurrent guests per conversation), guestAccess {}, notificationDelayMs {}",
                a.id, a.plan, a.participant_limit, a.guest_limit, a.guest_access, a.notification_delay_ms
            ),
            None => "GET /v1/{appId} did not answer".into(),
        }
    }

    fn counts(&self) -> (usize, usize, usize) {
        let passed = self.results.iter().filter(|r| r.status == Status::Passed).count();
        let steps: usize = self.results.iter().map(|r| r.steps_passed).sum();
        (self.results.len(), passed, steps)
    }

    /// `report.md`.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let (run, passed, steps) = self.counts();
        let _ = writeln!(md, "# Super Group Chat conformance report\n");
        let _ = writeln!(md, "**Verdict: {}.**\n", self.verdict());
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| Target | {} |", self.meta.target);
        let _ = writeln!(md, "| Plan | {} |", self.plan_line());
        let _ = writeln!(md, "| Started | {} |", self.meta.started.format("%Y-%m-%d %H:%M:%S UTC"));
        let _ = writeln!(md, "| Duration | {:.1} s |", self.meta.duration.as_secs_f64());
        let _ = writeln!(md, "| Selection | {} |", self.meta.selection.as_deref().unwrap_or("all scenarios"));
        let _ =
            writeln!(md, "| Scenarios | {run} run, {passed} passed, {} failed; {steps} steps passed |\n", run - passed);
        let ordered = self.ordered();
        let failed_rows: Vec<&&Row> = ordered.iter().filter(|r| r.grade == Grade::Fail).collect();
        if !failed_rows.is_empty() {
            let _ = writeln!(md, "## Requirements that failed\n");
            let _ = writeln!(
                md,
                "| Requirement | Level | Result | Scenario | Failing step | Message |\n|---|---|---|---|---|---|"
            );
            for row in failed_rows {
                let (scenario, step, message) = self.why(row).unwrap_or_default();
                let mut message = message;
                if let Some(reason) = self.expected.reason(&row.requirement.id) {
                    message = format!("{message} (expected: {reason})");
                }
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | `{}` | {} |",
                    row.requirement.id,
                    row.requirement.level.as_str(),
                    self.label(row),
                    md_cell(&scenario),
                    md_cell(&step),
                    md_cell(&message)
                );
            }
            md.push('\n');
        }
        let _ = writeln!(md, "## Requirements that passed or were not checked\n");
        let _ = writeln!(md, "| Requirement | Level | Result | Scenarios |\n|---|---|---|---|");
        for row in ordered.iter().filter(|r| r.grade != Grade::Fail) {
            let mut scenarios = grouped(&row.scenarios);
            if let Some(why) = self.not_run_reasons.get(&row.requirement.id).filter(|_| row.grade == Grade::NotRun) {
                scenarios.push(format!("not run: {why}"));
            }
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                row.requirement.id,
                row.requirement.level.as_str(),
                self.label(row),
                md_cell(&scenarios.join("<br>"))
            );
        }
        let failed = self.failed_scenarios();
        if !failed.is_empty() {
            let _ = writeln!(md, "\n## Failures\n");
            for s in failed {
                let _ = writeln!(md, "### {}:{} {}\n", s.file, s.line, s.name);
                let _ = writeln!(md, "- Requirements: {}", requirement_tags(s).join(", "));
                let _ = writeln!(md, "- Step: `{}`", s.failed_step.as_deref().unwrap_or("?"));
                let _ = writeln!(md, "\n```text\n{}\n```\n", s.error.as_deref().unwrap_or("").trim());
            }
        }
        md
    }

    /// `report.html`: the same content, one self-contained page.
    pub fn html(&self) -> String {
        let (run, passed, steps) = self.counts();
        let mut h = String::new();
        h.push_str("<!doctype html><html><head><meta charset=\"utf-8\"><title>Conformance report</title><style>");
        h.push_str(
            "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}\
             td,th{border:1px solid #ccc;padding:.3em .6em;vertical-align:top;text-align:left}\
             .pass{background:#e6f6e6}.FAIL{background:#fbe3e3}.warning{background:#fff4d6}\
             .not-covered,.not-run{background:#eee}pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap}",
        );
        h.push_str("</style></head><body><h1>Super Group Chat conformance report</h1>");
        let _ = write!(h, "<p><strong>Verdict: {}.</strong></p><table>", esc(&self.verdict()));
        for (k, v) in [
            ("Target", self.meta.target.clone()),
            ("Plan", self.plan_line()),
            ("Started", self.meta.started.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            ("Duration", format!("{:.1} s", self.meta.duration.as_secs_f64())),
            ("Selection", self.meta.selection.clone().unwrap_or_else(|| "all scenarios".into())),
            ("Scenarios", format!("{run} run, {passed} passed, {} failed; {steps} steps passed", run - passed)),
        ] {
            let _ = write!(h, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
        }
        h.push_str("</table><h2>Requirements</h2><p>Failures first, with the failing step and its message.</p><table><tr><th>Requirement</th><th>Level</th><th>Result</th><th>Text</th><th>Scenarios, or why it failed</th></tr>");
        for row in self.ordered() {
            let label = self.label(row);
            let class = match (row.grade, row.requirement.level) {
                (Grade::Fail, Level::Should) => "warning",
                (g, _) => g.as_str(),
            };
            let mut scenarios: Vec<String> = match self.why(row) {
                Some((scenario, step, message)) => {
                    vec![format!("{}<br><code>{}</code><br>{}", esc(&scenario), esc(&step), esc(&message))]
                }
                None => grouped(&row.scenarios).iter().map(|s| esc(s)).collect(),
            };
            if let Some(reason) = self.expected.reason(&row.requirement.id) {
                scenarios.push(format!("expected to fail: {}", esc(reason)));
            }
            if let Some(why) = self.not_run_reasons.get(&row.requirement.id).filter(|_| row.grade == Grade::NotRun) {
                scenarios.push(format!("not run: {}", esc(why)));
            }
            let _ = write!(
                h,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                class.replace(' ', "-"),
                esc(&row.requirement.id),
                row.requirement.level.as_str(),
                esc(&label),
                esc(&row.requirement.text),
                scenarios.join("<br>")
            );
        }
        h.push_str("</table>");
        let failed = self.failed_scenarios();
        if !failed.is_empty() {
            h.push_str("<h2>Failures</h2>");
            for s in failed {
                let _ = write!(
                    h,
                    "<h3>{}:{} {}</h3><p>Requirements: {}<br>Step: <code>{}</code></p><pre>{}</pre>",
                    esc(&s.file),
                    s.line,
                    esc(&s.name),
                    esc(&requirement_tags(s).join(", ")),
                    esc(s.failed_step.as_deref().unwrap_or("?")),
                    esc(s.error.as_deref().unwrap_or("").trim())
                );
            }
        }
        h.push_str("</body></html>\n");
        h
    }
}

impl Report {
    /// `junit.xml`: one test case per requirement (classname: its area), so
    /// CI dashboards list requirements. A MUST that failed unexpectedly is a
    /// `<failure>` with the failing scenario, step and message; an expected
    /// failure, a SHOULD warning and a requirement not checked are
    /// `<skipped>` with the reason.
    pub fn junit(&self) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let failures = self.regressions().len();
        let skipped = self
            .rows
            .iter()
            .filter(|r| {
                let new_failure = r.grade == Grade::Fail
                    && r.requirement.level == Level::Must
                    && self.expected.reason(&r.requirement.id).is_none();
                r.grade != Grade::Pass && !new_failure
            })
            .count();
        let _ = writeln!(
            x,
            "<testsuites name=\"Super Group Chat conformance\" tests=\"{n}\" failures=\"{failures}\" skipped=\"{skipped}\">\n\
             <testsuite name=\"SPEC.md requirements of {}\" tests=\"{n}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
            esc(&self.meta.target),
            self.meta.duration.as_secs_f64(),
            n = self.rows.len(),
        );
        for row in &self.rows {
            let id = &row.requirement.id;
            let area = id.rsplit_once('-').map_or(id.as_str(), |(a, _)| a);
            let _ = write!(
                x,
                "  <testcase classname=\"{}\" name=\"{} {}\">",
                esc(area),
                esc(id),
                row.requirement.level.as_str()
            );
            let details = || {
                row.scenarios
                    .iter()
                    .filter(|s| s.status != Status::Passed)
                    .map(|s| {
                        format!(
                            "{}:{} {}\n  step: {}\n  {}",
                            s.file,
                            s.line,
                            s.name,
                            s.failed_step.as_deref().unwrap_or("?"),
                            s.error.as_deref().unwrap_or("").trim()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n\n")
            };
            let expected = self.expected.reason(id);
            match (row.grade, row.requirement.level, expected) {
                (Grade::Pass, ..) => {
                    if let Some(reason) = expected {
                        let _ =
                            write!(x, "<system-out>FIXED: listed as expected to fail ({})</system-out>", esc(reason));
                    }
                }
                (Grade::Fail, Level::Must, None) => {
                    let (_, step, message) = self.why(row).unwrap_or_default();
                    let _ = write!(
                        x,
                        "<failure message=\"{}: {}\">{}</failure>",
                        esc(&step),
                        esc(&message),
                        esc(&details())
                    );
                }
                (Grade::Fail, _, Some(reason)) => {
                    let _ = write!(
                        x,
                        "<skipped message=\"expected to fail: {}\"/><system-out>{}</system-out>",
                        esc(reason),
                        esc(&details())
                    );
                }
                (Grade::Fail, ..) => {
                    let _ = write!(
                        x,
                        "<skipped message=\"SHOULD not met (a warning)\"/><system-out>{}</system-out>",
                        esc(&details())
                    );
                }
                (Grade::NotRun, ..) => {
                    let why = self.not_run_reasons.get(id).map_or("filtered out of this run", String::as_str);
                    let _ = write!(x, "<skipped message=\"not run: {}\"/>", esc(why));
                }
                (Grade::NotCovered, ..) => {
                    let _ = write!(x, "<skipped message=\"no scenario checks it\"/>");
                }
            }
            x.push_str("</testcase>\n");
        }
        x.push_str("</testsuite>\n</testsuites>\n");
        x
    }
}

/// One line per scenario, the examples of an outline folded into one:
/// `file:line name (pass)` or `file:line name (3 of 4 examples pass)`.
fn grouped(scenarios: &[ScenarioResult]) -> Vec<String> {
    let mut lines: Vec<(String, usize, usize)> = Vec::new();
    let mut keys: Vec<(String, String)> = Vec::new();
    for s in scenarios {
        let key = (s.file.clone(), s.name.clone());
        let passed = usize::from(s.status == Status::Passed);
        match keys.iter().position(|k| *k == key) {
            Some(i) => {
                lines[i].1 += passed;
                lines[i].2 += 1;
            }
            None => {
                keys.push(key);
                lines.push((format!("{}:{} {}", s.file, s.line, s.name), passed, 1));
            }
        }
    }
    lines
        .into_iter()
        .map(|(head, passed, total)| match (passed, total) {
            (1, 1) => format!("{head} (pass)"),
            (0, 1) => format!("{head} (FAIL)"),
            (p, t) => format!("{head} ({p} of {t} examples pass)"),
        })
        .collect()
}

fn requirement_tags(s: &ScenarioResult) -> Vec<String> {
    s.tags.iter().filter(|t| crate::requirements::is_requirement_tag(t)).cloned().collect()
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
