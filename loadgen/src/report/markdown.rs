//! `report.md`: the headline, the tables and links to the charts.

use super::Chart;
use super::summary::Summary;
use super::tables::{Table, headline};
use std::fmt::Write;

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

pub fn render(s: &Summary, tables: &[Table], charts: &[Chart]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# supergroup-load report\n\n**{}**\n", headline(s));
    if s.errors.guest_limit_reached {
        let _ = writeln!(
            out,
            "> The server refused guests with `guest_limit_reached`: the run hit the guest limit of a conversation.\n"
        );
    }
    for t in tables {
        let _ = writeln!(out, "## {}\n", t.title);
        let _ = writeln!(out, "| {} |", t.header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | "));
        let _ = writeln!(out, "|{}", " --- |".repeat(t.header.len()));
        for r in &t.rows {
            let _ = writeln!(out, "| {} |", r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Charts\n");
    for c in charts {
        let _ = writeln!(out, "### {}\n\n![{}](charts/{})\n", c.title, c.title, c.file);
    }
    out
}
