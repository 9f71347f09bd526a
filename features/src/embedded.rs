//! The suite's own inputs, compiled into the binary: SPEC.md (the
//! requirement list every run grades against) and the scenarios. A built
//! `supergroup-conformance` is one file that runs anywhere, kept as a CI
//! artifact, without the source checkout it was built from.
//!
//! cucumber reads feature files from disk, so a run of the suite's own
//! scenarios writes them to a temporary directory ([`Scenarios`]), removed
//! when the run ends. `--features DIR` reads the team's directory instead.

use std::path::{Path, PathBuf};

/// SPEC.md as built into this binary.
pub const SPEC_MD: &str = include_str!("../../SPEC.md");

/// Every file of `scenarios/`, by name (a unit test keeps the list complete).
pub const SCENARIOS: &[(&str, &str)] = &[
    ("apps_and_users.feature", include_str!("../scenarios/apps_and_users.feature")),
    ("auth.feature", include_str!("../scenarios/auth.feature")),
    ("bad_input.feature", include_str!("../scenarios/bad_input.feature")),
    ("conversations_and_participants.feature", include_str!("../scenarios/conversations_and_participants.feature")),
    ("guest_limit.feature", include_str!("../scenarios/guest_limit.feature")),
    ("guest_notifications.feature", include_str!("../scenarios/guest_notifications.feature")),
    ("inbox_and_user_conversations.feature", include_str!("../scenarios/inbox_and_user_conversations.feature")),
    ("member_list_and_leaving.feature", include_str!("../scenarios/member_list_and_leaving.feature")),
    ("messages_and_history.feature", include_str!("../scenarios/messages_and_history.feature")),
    ("mixed_roles.feature", include_str!("../scenarios/mixed_roles.feature")),
    ("participant_limit.feature", include_str!("../scenarios/participant_limit.feature")),
    ("realtime_protocol.feature", include_str!("../scenarios/realtime_protocol.feature")),
    ("typing.feature", include_str!("../scenarios/typing.feature")),
    ("ui_modes.feature", include_str!("../scenarios/ui_modes.feature")),
    ("webhooks_and_signatures.feature", include_str!("../scenarios/webhooks_and_signatures.feature")),
];

/// The feature files of one run: a team's directory, or the suite's own
/// written to a temporary directory that lives as long as this value.
pub enum Scenarios {
    Dir(PathBuf),
    Own(tempfile::TempDir),
}

impl Scenarios {
    /// `dir` when given, else the built-in scenarios written out.
    pub fn for_run(dir: Option<&Path>) -> std::io::Result<Scenarios> {
        if let Some(dir) = dir {
            return Ok(Scenarios::Dir(dir.to_path_buf()));
        }
        let tmp = tempfile::Builder::new().prefix("supergroup-conformance-").tempdir()?;
        for (name, text) in SCENARIOS {
            std::fs::write(tmp.path().join(name), text)?;
        }
        Ok(Scenarios::Own(tmp))
    }

    pub fn path(&self) -> &Path {
        match self {
            Scenarios::Dir(d) => d,
            Scenarios::Own(t) => t.path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_file_is_built_in() {
        let dir = crate::run::scenarios_dir();
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("scenarios/ is readable")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".feature"))
            .collect();
        on_disk.sort();
        let built_in: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
        assert_eq!(built_in, on_disk, "features/src/embedded.rs must list every file of scenarios/");
    }

    #[test]
    fn written_out_scenarios_are_the_files_and_go_away_with_the_run() {
        let own = Scenarios::for_run(None).expect("a temporary directory");
        let path = own.path().to_path_buf();
        for (name, text) in SCENARIOS {
            assert_eq!(std::fs::read_to_string(path.join(name)).expect("written"), *text);
            let source = std::fs::read_to_string(crate::run::scenarios_dir().join(name)).expect("in the checkout");
            assert_eq!(source, *text, "{name} differs from scenarios/");
        }
        drop(own);
        assert!(!path.exists(), "the temporary scenarios outlived the run");
    }
}
