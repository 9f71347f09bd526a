//! The step glossary, `features/STEPS.md`: every step pattern of the step
//! library, grouped by the file that defines it, with an example taken from
//! the suite's own feature files. QA teams write their own scenarios
//! (`--features DIR`) from it without reading Rust. It is generated from the
//! step definitions' source; a unit test fails when the checked-in file no
//! longer matches (`SG_UPDATE_STEPS=1 cargo test -p supergroup-conformance --lib glossary`
//! rewrites it).

use regex::Regex;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One step definition.
#[derive(Debug, Clone)]
pub struct StepDef {
    /// `Given`, `When`, `Then` (one per attribute on the function).
    pub keywords: Vec<String>,
    /// The regex, as written.
    pub pattern: String,
    /// A line of a feature file that uses it, if any.
    pub example: Option<String>,
}

/// The source directory of the step definitions.
pub fn steps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join("steps")
}

/// Where the glossary is checked in.
pub fn glossary_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("STEPS.md")
}

/// Step lines of every feature file in `dir`: (keyword as written, text).
fn feature_steps(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "feature"))
        .collect();
    files.sort();
    let mut steps = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(&f)?.lines() {
            let line = line.trim();
            if let Some((kw, text)) = line.split_once(' ')
                && ["Given", "When", "Then", "And", "But"].contains(&kw)
            {
                steps.push((kw.to_string(), text.to_string()));
            }
        }
    }
    Ok(steps)
}

/// Every step definition of every file in [`steps_dir`], by file (sorted), with examples from `features`.
pub fn collect(features: &Path) -> anyhow::Result<Vec<(String, String, Vec<StepDef>)>> {
    let attr = Regex::new(
        r##"(?s)(?:///\s*Example:\s*([^\n]*)\n\s*)?#\[(given|when|then)\(\s*regex\s*=\s*r#"(.*?)"#\s*\)\]"##,
    )?;
    let examples = feature_steps(features)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(steps_dir())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rs") && !p.ends_with("mod.rs"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f)?;
        let about: String = src
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .map(|l| l.trim_start_matches("//!").trim())
            .collect::<Vec<_>>()
            .join(" ");
        let mut defs: Vec<StepDef> = Vec::new();
        for c in attr.captures_iter(&src) {
            let keyword = {
                let k = &c[2];
                k[..1].to_uppercase() + &k[1..]
            };
            let pattern = c[3].to_string();
            let documented = c.get(1).map(|m| m.as_str().trim().to_string());
            if let Some(d) = defs.iter_mut().find(|d| d.pattern == pattern) {
                d.keywords.push(keyword);
                continue;
            }
            let re = Regex::new(&pattern).map_err(|e| anyhow::anyhow!("{}: {pattern}: {e}", f.display()))?;
            let used = examples.iter().find(|(_, text)| re.is_match(text)).map(|(kw, text)| format!("{kw} {text}"));
            // A step no scenario of the suite uses carries `/// Example: Keyword text` above it.
            let example =
                used.or_else(|| documented.filter(|d| d.split_once(' ').is_some_and(|(_, text)| re.is_match(text))));
            defs.push(StepDef { keywords: vec![keyword], pattern, example });
        }
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        out.push((name, about, defs));
    }
    Ok(out)
}

/// The glossary's Markdown.
pub fn generate() -> anyhow::Result<String> {
    let mut md = String::from(
        "# Step glossary\n\n\
         Generated from `src/steps/*.rs` by `SG_UPDATE_STEPS=1 cargo test -p supergroup-conformance --lib glossary`;\n\
         a unit test fails when this file and the step definitions differ. Every step a scenario may use is\n\
         below: its pattern (a regular expression matched against the step text after `Given`/`When`/`Then`/`And`)\n\
         and an example from the suite's own feature files. Names (`alice`, `lobby`) become ids unique to the\n\
         scenario; in raw requests and frames `{lobby}` is the id of `lobby` and `{x*256}` is 256 times `x`.\n\
         Run your own files with `supergroup-conformance --features DIR` (see README.md).\n",
    );
    let mut total = 0;
    for (file, about, defs) in collect(&crate::run::scenarios_dir())? {
        let _ = write!(md, "\n## {file}\n\n{about}\n\n| keyword | pattern | example |\n|---|---|---|\n");
        for d in defs {
            total += 1;
            let _ = writeln!(
                md,
                "| {} | `{}` | {} |",
                d.keywords.join(", "),
                d.pattern.replace('|', "\\|"),
                d.example
                    .map_or("(not used by the suite's scenarios)".into(), |e| format!("`{}`", e.replace('|', "\\|")))
            );
        }
    }
    let _ = write!(md, "\n{total} step patterns.\n");
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glossary_matches_the_step_definitions() {
        let fresh = generate().expect("the step sources and feature files are readable");
        if std::env::var_os("SG_UPDATE_STEPS").is_some() {
            std::fs::write(glossary_path(), &fresh).expect("STEPS.md is writable");
            return;
        }
        let current = std::fs::read_to_string(glossary_path()).unwrap_or_default();
        assert!(
            current == fresh,
            "features/STEPS.md does not match the step definitions; regenerate it with \
             `SG_UPDATE_STEPS=1 cargo test -p supergroup-conformance --lib glossary`"
        );
    }

    #[test]
    fn every_step_pattern_has_an_example_in_the_suite() {
        let unused: Vec<String> = collect(&crate::run::scenarios_dir())
            .expect("readable")
            .into_iter()
            .flat_map(|(file, _, defs)| {
                defs.into_iter().filter(|d| d.example.is_none()).map(move |d| format!("{file}: {}", d.pattern))
            })
            .collect();
        assert!(
            unused.is_empty(),
            "step patterns without an example (no scenario uses them and no `/// Example:` line above them matches): {unused:#?}"
        );
    }
}
