//! CPU and memory of a process (and the whole machine's CPU, to see what
//! else ran), read from `/proc` once a second: CPU from the
//! change of `utime + stime` in `/proc/PID/stat` between two samples, memory
//! from `VmRSS` in `/proc/PID/status`. Used for the local reference server
//! (which the load generator starts) and for any process named by
//! `--server-pid`. Linux reports CPU time in clock ticks of `USER_HZ`, which
//! is 100 on every architecture Linux runs on today; reading `sysconf` would
//! need `unsafe`, which this workspace forbids.

use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`).
const TICKS_PER_SEC: f64 = 100.0;

/// One sample of a process.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ProcSample {
    /// CPU use since the previous sample, in percent of one core (200 = two cores busy).
    pub cpu_pct: Option<f64>,
    /// Resident memory, KiB.
    pub rss_kib: u64,
}

/// Samples one process, remembering the previous CPU reading.
#[derive(Debug)]
pub struct ProcSampler {
    pid: u32,
    /// The previous CPU reading: when, and the process's total ticks then.
    last: Option<(Instant, u64)>,
}

impl ProcSampler {
    pub fn new(pid: u32) -> ProcSampler {
        ProcSampler { pid, last: None }
    }

    /// The process id sampled.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads the process now; `None` when it is gone or `/proc` is unreadable.
    pub fn sample(&mut self) -> Option<ProcSample> {
        let now = Instant::now();
        let ticks = read_cpu_ticks(self.pid)?;
        let rss_kib = read_rss_kib(self.pid)?;
        let cpu_pct = self.last.map(|(then, before)| {
            let secs = now.duration_since(then).as_secs_f64().max(1e-3);
            (ticks.saturating_sub(before) as f64 / TICKS_PER_SEC) / secs * 100.0
        });
        self.last = Some((now, ticks));
        Some(ProcSample { cpu_pct, rss_kib })
    }
}

/// `utime + stime` of `/proc/PID/stat`, in clock ticks.
fn read_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
}

/// The command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`: there, field 3 (state) is index 0, so utime
/// (field 14) is index 11 and stime (field 15) index 12.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of `/proc/PID/status`, in KiB.
fn read_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_rss_kib(&status)
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU use of the whole machine (every process), from the first line of
/// `/proc/stat`, so a report can say how much of the machine something else took.
#[derive(Debug, Default)]
pub struct MachineSampler {
    /// The previous reading: busy and total jiffies.
    last: Option<(u64, u64)>,
}

impl MachineSampler {
    /// Busy CPU since the previous call, in percent of one core (200 = two cores busy).
    pub fn sample(&mut self) -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let (busy, total) = parse_machine(&stat)?;
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
        let pct = self.last.and_then(|(b0, t0)| {
            let dt = total.checked_sub(t0).filter(|&d| d > 0)?;
            Some(busy.saturating_sub(b0) as f64 / dt as f64 * 100.0 * cpus)
        });
        self.last = Some((busy, total));
        pct
    }
}

/// (busy, total) jiffies of the `cpu` line: idle and iowait are not busy.
fn parse_machine(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).take(8).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    Some((total - v[3] - v[4], total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn parses_machine_cpu() {
        assert_eq!(parse_machine("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4 5\n"), Some((150, 1000)));
        let mut m = MachineSampler::default();
        assert!(m.sample().is_none());
    }

    #[test]
    fn parses_vmrss() {
        assert_eq!(parse_rss_kib("Name:\tx\nVmRSS:\t  1234 kB\n"), Some(1234));
    }

    #[test]
    fn samples_this_process() {
        let mut s = ProcSampler::new(std::process::id());
        let first = s.sample().unwrap();
        assert!(first.rss_kib > 0);
        assert!(first.cpu_pct.is_none());
        assert!(s.sample().unwrap().cpu_pct.is_some());
    }
}
