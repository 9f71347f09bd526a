//! The live line while a run goes: phase, guests open, messages sent,
//! deliveries, the fan-out p99 so far and the server's CPU and memory. Drawn
//! with indicatif on stderr, which hides it when stderr is not a terminal; then
//! a plain line is printed every ten seconds instead, so CI logs still show
//! progress.

use crate::plan::Schedule;
use crate::recorder::SecondSample;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Seconds between plain progress lines when stderr is not a terminal.
const PLAIN_EVERY: f64 = 10.0;

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Print plain lines (no terminal, progress not disabled).
    plain: bool,
    last_plain: f64,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = (enabled && tty).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("constant template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { bar, plain: enabled && !tty, last_plain: f64::NEG_INFINITY }
    }

    /// Shows one second's sample.
    /// `sched` is `None` until the first message's time is fixed.
    pub fn update(&mut self, s: &SecondSample, sched: Option<&Schedule>, guests: usize, p99_ms: Option<f64>) {
        let phase = if let Some(sched) = sched {
            if s.t < sched.send_start {
                "settle"
            } else if s.t < sched.send_end {
                "send"
            } else {
                "drain"
            }
        } else {
            "join"
        };
        let server = match (s.server_cpu_pct, s.server_rss_kib) {
            (Some(cpu), Some(rss)) => format!(" | server {cpu:.0}% cpu {:.0} MiB", rss as f64 / 1024.0),
            (None, Some(rss)) => format!(" | server {:.0} MiB", rss as f64 / 1024.0),
            _ => String::new(),
        };
        let own = s.loadgen_cpu_pct.map(|c| format!(" | loadgen {c:.0}% cpu")).unwrap_or_default();
        let msg = format!(
            "{phase:<6} | guests {}/{guests} | sent {} | delivered {} ({}/s) | p99 {}{server}{own}",
            s.guests_open,
            s.sent,
            s.delivered,
            s.deliveries,
            p99_ms.map(|v| format!("{v:.2} ms")).unwrap_or_else(|| "–".into()),
        );
        if let Some(bar) = &self.bar {
            bar.set_message(msg);
        } else if self.plain && s.t - self.last_plain >= PLAIN_EVERY {
            self.last_plain = s.t;
            eprintln!("[{:>5.0} s] {msg}", s.t);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
