//! A local NATS broker for `--workers N` without `--coordinator`: Debian's
//! `nats-server` as a child process on 127.0.0.1 with a port the kernel chose
//! (`-p -1`), which it writes to a ports file (`--ports_file_dir`) that is read
//! here (bounded wait). Its log goes to `nats-server.log` in the report folder;
//! it is stopped with SIGTERM (SIGKILL after a grace period) when the run ends,
//! and killed if the coordinator drops it on an error path.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Longest wait for the ports file.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the broker to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running `nats-server` child.
pub struct LocalBroker {
    child: Child,
    pub pid: u32,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
}

/// The ports file `nats-server` writes (`{"nats":["nats://127.0.0.1:PORT"], ...}`).
#[derive(serde::Deserialize)]
struct PortsFile {
    nats: Vec<String>,
}

impl LocalBroker {
    /// Starts `nats-server` (from `PATH`) listening on 127.0.0.1 only; `dir` holds its log and ports file.
    pub async fn start(dir: &Path) -> anyhow::Result<LocalBroker> {
        let ports_dir = dir.join("nats-ports");
        std::fs::create_dir_all(&ports_dir)?;
        let log = std::fs::File::create(dir.join("nats-server.log"))?;
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", "-1"])
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot start nats-server ({e}): install it (Debian: apt-get install nats-server) or name a broker with --coordinator nats://HOST:4222"
                )
            })?;
        let pid = child.id().ok_or_else(|| anyhow::anyhow!("nats-server exited at once"))?;
        let file = ports_dir.join(format!("nats-server_{pid}.ports"));
        let poll = Duration::from_millis(20);
        for _ in 0..(START_TIMEOUT.as_millis() / poll.as_millis()) {
            if let Some(url) = std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice::<PortsFile>(&b).ok())
                .and_then(|p| p.nats.into_iter().next())
            {
                return Ok(LocalBroker { child, pid, url });
            }
            tokio::time::sleep(poll).await;
        }
        anyhow::bail!(
            "nats-server did not write its ports file within {START_TIMEOUT:?}; see {}",
            dir.join("nats-server.log").display()
        )
    }

    /// SIGTERM, wait (bounded), SIGKILL if needed.
    pub async fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}
