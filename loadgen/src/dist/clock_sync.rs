//! The clock offset between the coordinator and a load worker, estimated the NTP
//! way over NATS. The coordinator reads its `CLOCK_MONOTONIC` (`c1`), asks the
//! worker for its reading (`w`), and reads again when the reply arrives (`c4`).
//! The worker read its clock somewhere in `[c1, c4]` of the coordinator's time, so
//! its offset is `w - (c1 + c4) / 2`, off by at most `(c4 - c1) / 2` (half the round
//! trip): a hard bound, not a statistical one. Of [`ROUNDS`] rounds the one with
//! the smallest round trip is kept (the tightest bound).
//!
//! Two processes on one host (same `boot_id`) read the same `CLOCK_MONOTONIC`:
//! their offset is exactly 0, and that is what is used (bound 0), as long as the
//! estimate agrees (0 within half its round trip; see [`decide`]); the estimate is
//! still made and reported beside it.

use crate::clock::monotonic_us;
use crate::dist::wire::{self, ClockReading};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Request/reply rounds per worker.
pub const ROUNDS: usize = 8;
/// Longest wait for one round's reply.
const ROUND_TIMEOUT: Duration = Duration::from_secs(2);

/// One round: the coordinator's readings around the worker's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Round {
    pub c1: i64,
    pub w: i64,
    pub c4: i64,
}

/// What is known about one worker's clock.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ClockEstimate {
    /// Offset used: worker's `CLOCK_MONOTONIC` minus the coordinator's, µs.
    pub offset_us: i64,
    /// Its error bound, µs (0 on the coordinator's host).
    pub bound_us: u64,
    /// The NTP-style estimate (min-RTT round) and that round's round trip, µs.
    pub estimated_offset_us: i64,
    pub rtt_us: u64,
    /// Same host as the coordinator (shared `CLOCK_MONOTONIC`).
    pub same_host: bool,
}

/// The offset and round trip of the round with the smallest round trip.
pub fn best(rounds: &[Round]) -> Option<(i64, u64)> {
    rounds
        .iter()
        .filter(|r| r.c4 >= r.c1)
        .min_by_key(|r| r.c4 - r.c1)
        .map(|r| (r.w - (r.c1 + r.c4) / 2, (r.c4 - r.c1) as u64))
}

/// Measures worker `wid`'s clock ([`ROUNDS`] rounds, each bounded); `same_host`: it has the coordinator's `boot_id`.
pub async fn estimate(nc: &async_nats::Client, wid: &str, same_host: bool) -> anyhow::Result<ClockEstimate> {
    let subject = wire::worker_clock(wid);
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let c1 = monotonic_us();
        let Ok(Ok(reply)) = tokio::time::timeout(ROUND_TIMEOUT, nc.request(subject.clone(), "".into())).await else {
            continue;
        };
        let c4 = monotonic_us();
        let reading: ClockReading = wire::decode(&subject, &reply.payload)?;
        rounds.push(Round { c1, w: reading.monotonic_us, c4 });
    }
    let (estimated, rtt) =
        best(&rounds).ok_or_else(|| anyhow::anyhow!("worker {wid} answered none of {ROUNDS} clock requests"))?;
    Ok(decide(same_host, estimated, rtt))
}

/// The offset to use. A worker with the coordinator's `boot_id` shares its `CLOCK_MONOTONIC`
/// (offset 0, exact) unless the estimate says otherwise: on one clock the true offset 0 lies
/// within half the round trip of the estimate, so an estimate further off than that means
/// another clock (a container in its own time namespace, say), and the estimate is used.
pub fn decide(same_boot: bool, estimated: i64, rtt: u64) -> ClockEstimate {
    let bound = rtt.div_ceil(2);
    if same_boot && estimated.unsigned_abs() <= bound {
        ClockEstimate { offset_us: 0, bound_us: 0, estimated_offset_us: estimated, rtt_us: rtt, same_host: true }
    } else {
        ClockEstimate {
            offset_us: estimated,
            bound_us: bound,
            estimated_offset_us: estimated,
            rtt_us: rtt,
            same_host: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_round_wins_and_its_half_round_trip_bounds_the_error() {
        // True offset +1,000 µs. A slow round (asymmetric: the reply sat 900 µs) and a quick one.
        let rounds = [Round { c1: 0, w: 1_100, c4: 1_000 }, Round { c1: 5_000, w: 6_040, c4: 5_080 }];
        let (offset, rtt) = best(&rounds).unwrap();
        assert_eq!(rtt, 80);
        assert_eq!(offset, 1_000);
        assert!((offset - 1_000).unsigned_abs() <= rtt / 2);
        assert_eq!(best(&[]), None);
    }

    #[test]
    fn one_host_is_exact_unless_the_estimate_contradicts_it() {
        let same = decide(true, 30, 400);
        assert_eq!((same.offset_us, same.bound_us, same.same_host), (0, 0, true));
        let namespaced = decide(true, 2_000_000, 400);
        assert_eq!((namespaced.offset_us, namespaced.bound_us, namespaced.same_host), (2_000_000, 200, false));
        let remote = decide(false, 30, 401);
        assert_eq!((remote.offset_us, remote.bound_us, remote.same_host), (30, 201, false));
    }
}
