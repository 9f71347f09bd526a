//! `report.html`: one self-contained page (inline CSS, inline SVG charts, no
//! script, nothing fetched), so it can be mailed or attached to a CI run.

use super::Chart;
use super::summary::Summary;
use super::tables::{Table, headline};
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An SVG document without its XML prolog, to inline into HTML.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

pub fn render(s: &Summary, tables: &[Table], charts: &[Chart]) -> String {
    let mut out = String::new();
    let verdict_class = if !s.passed {
        "fail"
    } else if s.lossy_unjudged() {
        "lossy"
    } else {
        "pass"
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>supergroup-load report</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1000px}}table{{border-collapse:collapse;margin-bottom:1.5em}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         .pass{{color:#176b1b}}.fail{{color:#b00020}}.lossy{{color:#8a4b00;background:#ffe0b2;padding:.5em 1em}}.note{{background:#fff3cd;padding:.5em 1em}}figure{{margin:0 0 2em 0}}</style>\
         </head><body>\n<h1>supergroup-load report</h1>\n<p class=\"{verdict_class}\"><strong>{}</strong></p>\n",
        esc(&headline(s))
    );
    if s.errors.guest_limit_reached {
        out.push_str(
            "<p class=\"note\">The server refused guests with <code>guest_limit_reached</code>: the run hit the guest limit of a conversation.</p>\n",
        );
    }
    for t in tables {
        let _ = write!(out, "<h2>{}</h2>\n<table><tr>", esc(&t.title));
        for h in &t.header {
            let _ = write!(out, "<th>{}</th>", esc(h));
        }
        out.push_str("</tr>\n");
        for r in &t.rows {
            out.push_str("<tr>");
            for c in r {
                let class = match c.as_str() {
                    "PASS" => " class=\"pass\"",
                    "FAIL" => " class=\"fail\"",
                    _ => "",
                };
                let _ = write!(out, "<td{class}>{}</td>", esc(c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    out.push_str("<h2>Charts</h2>\n");
    for c in charts {
        let _ = write!(out, "<figure><figcaption>{}</figcaption>\n{}\n</figure>\n", esc(&c.title), inline_svg(&c.svg));
    }
    if let Some(g) = &s.goose {
        let _ = writeln!(out, "<p>goose's own report: <a href=\"{0}\">{0}</a></p>", esc(&g.report));
    }
    out.push_str("</body></html>\n");
    out
}
