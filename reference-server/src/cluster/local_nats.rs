//! A `nats-server` child process on 127.0.0.1 for tests and local runs: a
//! free port, `max_payload: 2MB` (see [`super::WANTED_MAX_PAYLOAD`]), killed
//! when dropped. Needs the `nats-server` binary on `PATH` (Debian/Ubuntu:
//! `apt-get install nats-server`; `.ci/run` installs it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the broker may take to accept connections.
const START_WAIT: Duration = Duration::from_secs(10);

/// A running broker.
pub struct LocalNats {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    conf: std::path::PathBuf,
}

impl LocalNats {
    /// Starts `nats-server` on a free port and waits until it accepts connections.
    pub fn start() -> anyhow::Result<LocalNats> {
        // Three tries: the free port is found by binding and releasing it, so
        // another process may take it before the broker does.
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start() {
                Ok(n) => return Ok(n),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("nats-server did not start")))
    }

    fn try_start() -> anyhow::Result<LocalNats> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = std::env::temp_dir().join(format!("supergroup-nats-{}-{port}.conf", std::process::id()));
        std::fs::write(&conf, format!("host: 127.0.0.1\nport: {port}\nmax_payload: 2MB\n"))?;
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot run nats-server ({e}); install it (apt-get install nats-server)"))?;
        let mut nats = LocalNats { child, url: format!("nats://127.0.0.1:{port}"), conf };
        let started = Instant::now();
        while started.elapsed() < START_WAIT {
            if let Ok(Some(status)) = nats.child.try_wait() {
                anyhow::bail!("nats-server exited at start ({status})");
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(nats);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nats.child.kill();
        anyhow::bail!("nats-server did not accept connections within {START_WAIT:?}")
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.conf);
    }
}
