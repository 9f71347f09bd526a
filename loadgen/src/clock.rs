//! The one monotonic clock of a run. Every time the load generator writes down
//! (a message's intended send time, its arrival at a guest, a connect) is in
//! microseconds since the same `Instant`, taken once when the run starts. The
//! intended send time travels inside the message (`custom["lg.t"]`), so the
//! guest that receives it can subtract without any clock translation: sender
//! and receivers read the same clock.
//!
//! Across processes (load workers, `dist/`) the run clock is anchored on
//! `CLOCK_MONOTONIC`, which Rust's `Instant` reads on Linux: the coordinator
//! tells each worker the run's time zero as a `CLOCK_MONOTONIC` reading of the
//! worker's own host ([`Clock::from_monotonic_zero`]). Processes on one host read
//! the same `CLOCK_MONOTONIC`, so their run clocks agree exactly; a worker on
//! another host gets the zero shifted by its estimated offset (`dist/clock_sync.rs`),
//! within the error bound the report states.

use nix::time::{ClockId, clock_gettime};
use std::time::{Duration, Instant};

/// Microseconds since the run started, on one monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The run's time zero.
    start: Instant,
    /// The same time zero as a `CLOCK_MONOTONIC` reading, µs.
    zero_monotonic_us: i64,
}

/// `CLOCK_MONOTONIC` now, in µs (the clock `Instant` reads on Linux, shared by every process of a host).
pub fn monotonic_us() -> i64 {
    // CLOCK_MONOTONIC always exists on Linux; a failure would be a broken kernel.
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is readable");
    t.tv_sec() * 1_000_000 + t.tv_nsec() / 1_000
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start_now() -> Clock {
        let zero_monotonic_us = monotonic_us();
        Clock { start: Instant::now(), zero_monotonic_us }
    }

    /// A clock whose zero is the `CLOCK_MONOTONIC` reading `zero_us` of this host (which may be
    /// in the past or the future): the run clock of a load worker.
    pub fn from_monotonic_zero(zero_us: i64) -> Clock {
        let (mono, now) = (monotonic_us(), Instant::now());
        let ahead = mono - zero_us;
        let start = if ahead >= 0 {
            now.checked_sub(Duration::from_micros(ahead as u64)).unwrap_or(now)
        } else {
            now + Duration::from_micros(ahead.unsigned_abs())
        };
        Clock { start, zero_monotonic_us: zero_us }
    }

    /// The time zero as a `CLOCK_MONOTONIC` reading, µs.
    pub fn zero_monotonic_us(&self) -> i64 {
        self.zero_monotonic_us
    }

    /// The `Instant` of time zero.
    pub fn zero(&self) -> Instant {
        self.start
    }

    /// Microseconds from time zero to `at` (0 for an instant before it).
    pub fn micros_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX)
    }

    /// Microseconds from time zero to now.
    pub fn now_micros(&self) -> u64 {
        self.micros_at(Instant::now())
    }

    /// The `Instant` that is `micros` after time zero.
    pub fn instant_at(&self, micros: u64) -> Instant {
        self.start + Duration::from_micros(micros)
    }

    /// Seconds since time zero, for time series.
    pub fn now_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_micros_round_trip() {
        let c = Clock::start_now();
        let at = c.instant_at(1_500_000);
        assert_eq!(c.micros_at(at), 1_500_000);
        assert_eq!(c.micros_at(c.zero() - Duration::from_secs(1)), 0);
    }

    #[test]
    fn a_clock_from_the_same_monotonic_zero_agrees() {
        let a = Clock::start_now();
        let b = Clock::from_monotonic_zero(a.zero_monotonic_us());
        let gap = a.zero().max(b.zero()) - a.zero().min(b.zero());
        assert!(gap < Duration::from_millis(1), "two readings apart: {gap:?}");
        let later = Clock::from_monotonic_zero(monotonic_us() + 2_000_000);
        assert_eq!(later.now_micros(), 0, "a zero in the future reads 0 until it comes");
    }
}
