//! The instrument's own lateness, measured during the run. A guest's read
//! task stamps a frame when the runtime gets round to polling it, which on a
//! busy machine is later than the moment the frame became readable; that
//! delay is inside every fan-out figure. The probe measures it on the same
//! path: a plain OS thread (outside the runtime, so the runtime's load does
//! not delay it) writes its send time, 8 bytes on the run clock, into
//! [`CONNECTIONS`] loopback TCP connections every [`PERIOD`], staggered; a
//! task per connection on the load generator's runtime reads them like a
//! guest reads its socket and records `stamp - written` in an HDR histogram.
//! Only writes made after the first message's time count, so the figure is
//! the send window's (plus the drain), not the connect storm's.
//!
//! Cost: `CONNECTIONS / PERIOD` = 200 wake-ups a second, nothing next to the
//! deliveries it watches. The thread stops when the probe is stopped (at the
//! latest after its bounded number of ticks).

use crate::clock::Clock;
use crate::recorder::Recorder;
use hdrhistogram::Histogram;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Loopback connections the probe writes to (tasks on the runtime, like guests).
pub const CONNECTIONS: usize = 4;
/// How often each connection gets a write.
pub const PERIOD: Duration = Duration::from_millis(20);
/// The writer thread stops after this many rounds whatever happens (a week at 20 ms).
const MAX_ROUNDS: u64 = 7 * 24 * 3600 * 50;

/// A running probe.
pub struct Probe {
    stop: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<()>>,
    readers: Vec<JoinHandle<()>>,
    histogram: Arc<Mutex<Histogram<u64>>>,
}

impl Probe {
    /// Opens the loopback connections and starts the writer thread and the reader tasks.
    pub async fn start(recorder: &Recorder) -> std::io::Result<Probe> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut writers = Vec::with_capacity(CONNECTIONS);
        let mut readers = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let client = std::net::TcpStream::connect(addr)?;
            client.set_nodelay(true)?;
            let (server, _) = listener.accept().await?;
            writers.push(client);
            readers.push(server);
        }
        let histogram = Arc::new(Mutex::new(crate::recorder::histogram()));
        let stop = Arc::new(AtomicBool::new(false));
        let clock = recorder.clock();
        let readers = readers.into_iter().map(|s| tokio::spawn(read(s, clock, recorder.clone(), histogram.clone())));
        let readers = readers.collect();
        let flag = stop.clone();
        let writer =
            std::thread::Builder::new().name("instrument-probe".into()).spawn(move || write(writers, clock, flag))?;
        Ok(Probe { stop, writer: Some(writer), readers, histogram })
    }

    /// Stops the probe and returns what it measured (µs).
    pub async fn stop(mut self) -> Histogram<u64> {
        self.stop.store(true, Relaxed);
        if let Some(w) = self.writer.take() {
            // The thread sleeps at most one period between checks of the flag.
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        for r in &self.readers {
            r.abort();
        }
        self.histogram.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The writer thread: every `PERIOD`, one write per connection, spread over the period.
fn write(mut conns: Vec<std::net::TcpStream>, clock: Clock, stop: Arc<AtomicBool>) {
    let slot = PERIOD / CONNECTIONS as u32;
    for _ in 0..MAX_ROUNDS {
        for c in conns.iter_mut() {
            if stop.load(Relaxed) {
                return;
            }
            std::thread::sleep(slot);
            if c.write_all(&clock.now_micros().to_le_bytes()).is_err() {
                return;
            }
        }
    }
}

/// A reader task: stamps each 8-byte send time as it comes off the socket.
async fn read(mut s: TcpStream, clock: Clock, recorder: Recorder, histogram: Arc<Mutex<Histogram<u64>>>) {
    let mut buf = [0u8; 8 * 64];
    let mut have = 0;
    // Ends when the writer closes its side (or the task is aborted); one read per write at most.
    for _ in 0..MAX_ROUNDS {
        let n = match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = clock.now_micros();
        have += n;
        let whole = have / 8 * 8;
        let from = recorder.send_start();
        {
            let mut h = histogram.lock().unwrap_or_else(|e| e.into_inner());
            for chunk in buf[..whole].chunks_exact(8) {
                let written = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
                if from.is_some_and(|f| written >= f) {
                    h.saturating_record(now.saturating_sub(written).max(1));
                }
            }
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
}
