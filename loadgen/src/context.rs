//! What every simulated user of a run shares: the plan, a REST client, the
//! recorder, the run's stop signal and the counters that hand out user
//! numbers. One `Arc` of it is captured by every goose transaction.

use crate::plan::Plan;
use crate::recorder::Recorder;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use supergroup_protocol::client::Rest;
use tokio_util::sync::CancellationToken;

/// The shared state of a run.
pub struct RunContext {
    pub plan: Plan,
    /// REST client of the first node (setup, readers).
    pub rest: Rest,
    /// One REST client per node of the target ([`Plan::targets`]), for each user's realtime URL and token.
    pub rests: Vec<Rest>,
    pub recorder: Recorder,
    /// Cancelled when the run is over: every socket task stops, whatever goose does.
    pub stop: CancellationToken,
    /// Cancelled by the conductor when the drain is over, just before goose's killswitch: a
    /// guest's `receive` transaction waits for it (or for its connection to close) instead of
    /// waking every second.
    pub drain_over: CancellationToken,
    /// The text of every message (`--message-bytes` long).
    pub text: Arc<str>,
    next_guest: AtomicUsize,
    next_talker: AtomicUsize,
    next_reader: AtomicUsize,
}

pub type Ctx = Arc<RunContext>;

impl RunContext {
    /// `rests` has one client per node (at least one); the first serves setup and readers.
    pub fn new(plan: Plan, rests: Vec<Rest>, recorder: Recorder) -> Ctx {
        let text: Arc<str> = filler_text(plan.workload.message_bytes).into();
        let rest = rests.first().cloned().expect("a run has at least one node");
        Arc::new(RunContext {
            plan,
            rest,
            rests,
            recorder,
            stop: CancellationToken::new(),
            drain_over: CancellationToken::new(),
            text,
            next_guest: AtomicUsize::new(0),
            next_talker: AtomicUsize::new(0),
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The next guest's global number (0, 1, ... in one process; this worker's share of them in a load worker).
    pub fn take_guest_number(&self) -> usize {
        self.plan.share.global(self.next_guest.fetch_add(1, Ordering::Relaxed))
    }

    pub fn take_talker_number(&self) -> usize {
        self.plan.share.global(self.next_talker.fetch_add(1, Ordering::Relaxed))
    }

    pub fn take_reader_number(&self) -> usize {
        self.plan.share.global(self.next_reader.fetch_add(1, Ordering::Relaxed))
    }

    /// The REST client of node `node` (of the first node if out of range).
    pub fn node(&self, node: usize) -> &Rest {
        self.rests.get(node).unwrap_or(&self.rest)
    }
}

/// ASCII text of exactly `bytes` bytes.
pub fn filler_text(bytes: usize) -> String {
    const WORDS: &str = "super group chat load test message ";
    WORDS.chars().cycle().take(bytes.max(1)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn filler_has_the_asked_length() {
        assert_eq!(super::filler_text(100).len(), 100);
        assert_eq!(super::filler_text(0).len(), 1, "the protocol needs some text");
    }
}
