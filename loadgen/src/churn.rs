//! Churn and the reconnect storm: when each guest leaves or drops its socket,
//! and how it comes back.
//!
//! - **Churn** (`--churn 5%/s`): `churn × guests` leave turns a second, spread
//!   evenly over the send window: turn `i` is at `(i + 0.5) / (churn × guests)`
//!   seconds after the first message's time, and belongs to guest
//!   `i % guests` (round robin, so a guest's next turn comes `1 / churn`
//!   seconds after its last one). On its turn a guest sends `close`, reads
//!   until `closed` (deliveries still count), closes its WebSocket cleanly,
//!   waits [`CHURN_PAUSE`], then reconnects and opens the conversation again.
//!   A turn that falls while its guest is still away (or before it first
//!   opened) is skipped and counted, never made up later.
//! - **Reconnect storm** (`--reconnect-storm 20s`): at that time into the send
//!   window every guest with the conversation open drops its socket without a
//!   word (no `close`, no close frame) and rejoins at once.
//!
//! A rejoin is up to [`REJOIN_ATTEMPTS`] connect-and-`open` attempts with
//! [`REJOIN_BACKOFF`] between them; every failed attempt is counted (a refused
//! `open` by its error code, e.g. `guest_limit_reached`), and a guest that
//! fails them all gives up and stays away for the rest of the run. Nothing is
//! planned outside the send window (nor after a staged run stopped sending),
//! and every wait ends with the run. The schedule is a pure function of the
//! plan, so load workers each play their own guests' turns from the same plan.

use crate::plan::{Plan, Workload};
use std::time::Duration;

/// How long a churning guest stays away between closing its socket and reconnecting: about a
/// page reload or a phone switching networks.
pub const CHURN_PAUSE: Duration = Duration::from_millis(500);
/// Connect-and-`open` attempts of one rejoin before the guest gives up.
pub const REJOIN_ATTEMPTS: usize = 5;
/// Waits between rejoin attempts (attempt `n + 1` waits `REJOIN_BACKOFF[n]`): 3.75 s in all.
pub const REJOIN_BACKOFF: [Duration; REJOIN_ATTEMPTS - 1] =
    [Duration::from_millis(250), Duration::from_millis(500), Duration::from_millis(1000), Duration::from_millis(2000)];

/// Leave turns of the whole run over a send window of `window_s` seconds (all guests).
pub fn planned_leaves(w: &Workload, window_s: f64) -> u64 {
    let per_sec = w.churn * w.guests as f64;
    if per_sec <= 0.0 || window_s <= 0.0 {
        return 0;
    }
    // Turn i is at (i + 0.5) / per_sec < window_s.
    ((window_s * per_sec - 0.5).ceil().max(0.0)) as u64
}

/// What interrupts a guest's time with the conversation open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disruption {
    /// A churn turn: close the conversation and the socket, pause, rejoin.
    Leave,
    /// The reconnect storm: drop the socket without a word, rejoin at once.
    Drop,
}

/// One guest's turns, as offsets (µs) from the first message's intended time.
#[derive(Debug, Clone)]
pub struct Turns {
    guest: u64,
    guests: u64,
    /// Leave turns per second, all guests together (`churn × guests`); 0 without churn.
    per_sec: f64,
    /// Leave turns of the run over the planned send window.
    planned: u64,
    /// The guest's next leave turn (a global turn index).
    next_turn: u64,
    /// The storm's offset, until this guest has met it.
    storm: Option<u64>,
}

impl Turns {
    /// Guest `guest`'s turns under `plan`.
    pub fn new(plan: &Plan, guest: usize) -> Turns {
        let w = &plan.workload;
        Turns {
            guest: guest as u64,
            guests: w.guests.max(1) as u64,
            per_sec: w.churn * w.guests as f64,
            planned: planned_leaves(w, w.duration),
            next_turn: guest as u64,
            storm: w.reconnect_storm.map(|s| (s * 1e6) as u64),
        }
    }

    /// Whether this guest has anything planned at all.
    pub fn any(&self) -> bool {
        self.storm.is_some() || (self.per_sec > 0.0 && self.guest < self.planned)
    }

    /// Offset (µs) of global leave turn `i`.
    fn turn_offset(&self, i: u64) -> u64 {
        ((i as f64 + 0.5) / self.per_sec * 1e6) as u64
    }

    /// The next disruption and its offset (µs), if any is left before `stop` µs (the end of
    /// the send window, or where a staged run stopped sending).
    pub fn next(&self, stop: u64) -> Option<(u64, Disruption)> {
        let leave = (self.per_sec > 0.0 && self.next_turn < self.planned)
            .then(|| (self.turn_offset(self.next_turn), Disruption::Leave));
        let drop = self.storm.map(|at| (at, Disruption::Drop));
        let next = match (leave, drop) {
            (Some(l), Some(d)) => Some(if d.0 <= l.0 { d } else { l }),
            (l, d) => l.or(d),
        };
        next.filter(|&(at, _)| at < stop)
    }

    /// `what` happened (or was due): move past it.
    pub fn taken(&mut self, what: Disruption) {
        match what {
            Disruption::Leave => self.next_turn += self.guests,
            Disruption::Drop => self.storm = None,
        }
    }

    /// Skips the leave turns due before `now` µs (the guest was away or not open yet); returns
    /// how many. A storm that passed while the guest was away is over for it too.
    pub fn skip_past(&mut self, now: u64) -> u64 {
        let mut skipped = 0;
        while self.per_sec > 0.0 && self.next_turn < self.planned && self.turn_offset(self.next_turn) < now {
            self.next_turn += self.guests;
            skipped += 1;
        }
        if self.storm.is_some_and(|at| at < now) {
            self.storm = None;
        }
        skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Schedule;

    fn plan(guests: usize, churn: f64, storm: Option<f64>, duration: f64) -> Plan {
        let w = Workload { guests, churn, reconnect_storm: storm, duration, ..Workload::DEFAULT };
        Plan::new(w, Vec::new(), Schedule::new(&w, 0.0, 0.0), "r".into(), "a".into(), "s".into(), "http://x".into())
    }

    #[test]
    fn turns_are_spread_round_robin_over_the_window() {
        // 10%/s of 50 guests = 5 turns a second, over 4 s: 20 turns, at 0.1 s, 0.3 s, ... 3.9 s.
        let p = plan(50, 0.10, None, 4.0);
        assert_eq!(planned_leaves(&p.workload, 4.0), 20);
        assert_eq!(planned_leaves(&p.workload, 0.05), 0, "no turn before 0.1 s");
        assert_eq!(planned_leaves(&p.workload, 0.11), 1);
        let mut all = Vec::new();
        for g in 0..50 {
            let mut t = Turns::new(&p, g);
            assert_eq!(t.any(), g < 20);
            while let Some((at, what)) = t.next(4_000_000) {
                assert_eq!(what, Disruption::Leave);
                all.push(at);
                t.taken(what);
            }
        }
        all.sort();
        assert_eq!(all.len(), 20);
        assert_eq!((all[0], all[1], all[19]), (100_000, 300_000, 3_900_000));
        // A staged run that stopped sending at 1 s plays only the turns before it.
        let t = Turns::new(&p, 5);
        assert_eq!(t.next(1_000_000), None, "guest 5's turn is at 1.1 s");
    }

    #[test]
    fn a_guest_away_skips_its_turns_and_the_storm_comes_once() {
        // 100%/s of 2 guests: guest 0's turns at 0.25 s, 1.25 s, 2.25 s; the storm at 1 s.
        let p = plan(2, 1.0, Some(1.0), 3.0);
        let mut t = Turns::new(&p, 0);
        assert_eq!(t.next(3_000_000), Some((250_000, Disruption::Leave)));
        t.taken(Disruption::Leave);
        assert_eq!(t.next(3_000_000), Some((1_000_000, Disruption::Drop)));
        t.taken(Disruption::Drop);
        assert_eq!(t.next(3_000_000), Some((1_250_000, Disruption::Leave)));
        assert_eq!(t.skip_past(2_000_000), 1, "away until 2 s: the 1.25 s turn is skipped");
        assert_eq!(t.next(3_000_000), Some((2_250_000, Disruption::Leave)));
        let mut storm_only = Turns::new(&plan(2, 0.0, Some(1.0), 3.0), 1);
        assert!(storm_only.any());
        assert_eq!(storm_only.skip_past(1_500_000), 0);
        assert_eq!(storm_only.next(3_000_000), None, "a storm missed while away is over");
    }
}
