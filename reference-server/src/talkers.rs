//! The talkers' runtime: a second tokio runtime, of one worker thread, for
//! the group-commit writer and for the connections that send.
//!
//! Why: a fan-out round wakes every connection that has the room open, and
//! tokio runs woken tasks first in, first out. With 10,000 guests on the main
//! runtime, a frame from a sender (and the writer's wake-up after its fsync)
//! waited behind a whole round of 10,000 connection tasks; when rounds ran
//! long, a sender's ack waited for them (reference-server/README.md, "send-to-ack
//! at 5 msg/s"). On their own thread, the writer and the senders are never
//! queued behind listeners: the operating system runs that mostly idle thread
//! as soon as it has work.
//!
//! Who runs here: the writer (from the start) and each realtime connection
//! from its first frame that waits for the writer (a `send`), moved whole
//! (socket, queue, pending replies) by [`crate::realtime`]'s connection task,
//! at most [`MAX_TALKERS`] connections at once. A connection beyond the bound
//! stays where it is and is served as before; a moved connection gives its
//! place back when it ends. The bound keeps the one thread for the few who
//! talk: if every guest of a super group sent, the talkers' runtime would
//! otherwise carry them all on one core.
//!
//! The sockets stay registered with the main runtime's I/O driver (readiness
//! wakes a task on whichever runtime runs it); only the tasks move.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::runtime::{Handle, Runtime};

/// Connections on the talkers' runtime at once, at most. Policy past it: the
/// connection stays on the main runtime (no error; it is only not preferred).
pub const MAX_TALKERS: usize = 64;

/// The runtime's handle and its places; cheap to clone.
#[derive(Clone)]
pub struct Talkers(Arc<Inner>);

struct Inner {
    handle: Handle,
    /// The runtime, until [`Talkers::stop`] (or the last handle's drop) shuts it down.
    runtime: Mutex<Option<Runtime>>,
    /// Connections running here now (shared with their [`Place`]s, which
    /// must not keep the runtime itself alive).
    moved: Arc<AtomicUsize>,
}

impl Talkers {
    /// Starts the runtime's worker thread.
    pub fn start() -> std::io::Result<Talkers> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sg-talkers")
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Talkers(Arc::new(Inner { handle, runtime: Mutex::new(Some(runtime)), moved: Arc::default() })))
    }

    /// Where the writer and moved connections are spawned.
    pub fn handle(&self) -> &Handle {
        &self.0.handle
    }

    /// A place for one connection, if fewer than [`MAX_TALKERS`] hold one;
    /// dropping it gives the place back.
    pub fn place(&self) -> Option<Place> {
        self.0
            .moved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_TALKERS).then_some(n + 1))
            .ok()
            .map(|_| Place(self.0.moved.clone()))
    }

    /// Connections running here now.
    pub fn moved(&self) -> usize {
        self.0.moved.load(Ordering::Acquire)
    }

    /// Shuts the runtime down without waiting for its tasks (they are done by
    /// the time the server calls this: connections closed, writer stopped);
    /// a task spawned later is dropped unrun.
    pub fn stop(&self) {
        if let Some(rt) = self.0.runtime.lock().unwrap_or_else(|p| p.into_inner()).take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime.
        if let Some(rt) = self.runtime.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            rt.shutdown_background();
        }
    }
}

/// One connection's place on the talkers' runtime.
pub struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn places_are_bounded_and_given_back() {
        let talkers = Talkers::start().expect("the runtime starts");
        let held: Vec<Place> = (0..MAX_TALKERS).map_while(|_| talkers.place()).collect();
        assert_eq!(held.len(), MAX_TALKERS);
        assert!(talkers.place().is_none(), "one place more than MAX_TALKERS");
        drop(held);
        assert_eq!(talkers.moved(), 0);
        assert!(talkers.place().is_some());
        let ran = talkers.handle().spawn(async { std::thread::current().name().map(String::from) }).await;
        assert_eq!(ran.expect("the task runs").as_deref(), Some("sg-talkers"));
        talkers.stop();
    }
}
