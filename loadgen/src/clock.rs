//! The one monotonic clock of a run. Every time the load generator writes down
//! (a message's intended send time, its arrival at a guest, a connect) is in
//! microseconds since the same `Instant`, taken once when the run starts. The
//! intended send time travels inside the message (`custom["lg.t"]`), so the
//! guest that receives it can subtract without any clock translation: sender
//! and receivers live in this one process.

use std::time::{Duration, Instant};

/// Microseconds since the run started, on one monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The run's time zero.
    start: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start_now() -> Clock {
        Clock { start: Instant::now() }
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
}
