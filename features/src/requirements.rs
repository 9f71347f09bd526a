//! The requirements of SPEC.md: every line of the form
//! `- **SG-AREA-N** MUST: text` (or `SHOULD:`) becomes a [`Requirement`].
//! The report grades scenarios against this list, and the coverage check in
//! `cargo test` compares it with the `@SG-...` tags of the feature files.

use regex::Regex;
use std::sync::LazyLock;

/// How strongly SPEC.md asks for a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A failure makes the server non-conforming.
    Must,
    /// A failure is a warning.
    Should,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

/// One requirement of SPEC.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// `SG-GUEST-3`.
    pub id: String,
    pub level: Level,
    /// The rule's text, first line only (for the report).
    pub text: String,
}

static LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\*\*(SG-[A-Z]+-[0-9]+)\*\* (MUST|SHOULD):\s*(.*)").expect("the requirement pattern is valid")
});

static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^SG-[A-Z]+-[0-9]+$").expect("the tag pattern is valid"));

/// The requirements of the SPEC.md this binary was built with.
pub fn suite_spec() -> Vec<Requirement> {
    parse(crate::embedded::SPEC_MD)
}

/// Every requirement of a SPEC.md text, in document order.
pub fn parse(spec: &str) -> Vec<Requirement> {
    spec.lines()
        .filter_map(|line| LINE.captures(line))
        .map(|c| Requirement {
            id: c[1].to_string(),
            level: if &c[2] == "MUST" { Level::Must } else { Level::Should },
            text: c[3].trim().to_string(),
        })
        .collect()
}

/// Whether a scenario tag (without its `@`) names a requirement.
pub fn is_requirement_tag(tag: &str) -> bool {
    TAG.is_match(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_must_and_should_lines_only() {
        let spec = "intro\n- **SG-GUEST-3** MUST: guests are never notified.\n- **SG-TYPING-2** SHOULD: be quick\n\
                    - SG-X-1 MUST: not bold, not a requirement\n";
        let reqs = parse(spec);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].id, "SG-GUEST-3");
        assert_eq!(reqs[0].level, Level::Must);
        assert_eq!(reqs[0].text, "guests are never notified.");
        assert_eq!(reqs[1].level, Level::Should);
    }

    #[test]
    fn requirement_tags() {
        assert!(is_requirement_tag("SG-GUEST-3"));
        assert!(!is_requirement_tag("SG-guest-3"));
        assert!(!is_requirement_tag("slow"));
    }
}
