//! The local reference server, run as a child process. Each process may hold
//! only `ulimit -n` open files and every guest is one socket on each side, so
//! the server must not share the load generator's process. The load
//! generator re-executes itself (`supergroup-load server ...`, the same code
//! as `supergroup-server`) with port 0, a fresh SQLite file and limits that
//! fit the run, reads the address it prints on stdout, sends its log (stderr)
//! to `server.log` in the report folder, and at the end stops it with SIGTERM
//! (SIGKILL if it has not exited after a grace period) and deletes the
//! database.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest wait for the server to print where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the server to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The line the server prints once it listens.
const LISTENING: &str = "listening on ";

/// What the local server is started with.
#[derive(Debug, Clone)]
pub struct LocalServerConfig {
    /// The executable with the `server` subcommand.
    pub exe: PathBuf,
    pub app_id: String,
    pub secret: String,
    pub guest_limit: u32,
    pub participant_limit: u32,
    pub outbound_queue: usize,
    /// Folder for `server.log` and the database.
    pub dir: PathBuf,
}

/// A running child server.
pub struct LocalServer {
    child: Child,
    pub pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    db: PathBuf,
}

impl LocalServer {
    pub async fn start(cfg: &LocalServerConfig) -> anyhow::Result<LocalServer> {
        let db = cfg.dir.join("server.db");
        let log = std::fs::File::create(cfg.dir.join("server.log"))?;
        let mut child = Command::new(&cfg.exe)
            .arg("server")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--db")
            .arg(&db)
            .arg("--app")
            .arg(format!("{}:{}", cfg.app_id, cfg.secret))
            .args(["--plan", "growth"])
            .args(["--guest-limit", &cfg.guest_limit.to_string()])
            .args(["--participant-limit", &cfg.participant_limit.to_string()])
            .args(["--outbound-queue", &cfg.outbound_queue.to_string()])
            // The run measures fan-out: the open-file limit (checked before the
            // run) bounds connections, and a talker's schedule is the load asked for.
            .args(["--max-connections", "1000000", "--send-rate", "1000000", "--send-burst", "1000000"])
            .env("RUST_LOG", std::env::var("SUPERGROUP_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start the local server `{} server`: {e}", cfg.exe.display()))?;
        let pid = child.id().ok_or_else(|| anyhow::anyhow!("the local server exited at once"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(i) = line.find(LISTENING) {
                    return Some(line[i + LISTENING.len()..].trim().to_string());
                }
            }
            None
        })
        .await;
        let base_url = match found {
            Ok(Some(url)) => url,
            Ok(None) => {
                anyhow::bail!("the local server exited before listening; see {}", cfg.dir.join("server.log").display())
            }
            Err(_) => anyhow::bail!("the local server did not listen within {START_TIMEOUT:?}"),
        };
        // Keep reading stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(LocalServer { child, pid, base_url, db })
    }

    /// SIGTERM, wait (bounded), SIGKILL if needed; removes the database. Returns how it ended.
    pub async fn stop(mut self) -> String {
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        let ended = match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => format!("exited: {status}"),
            Ok(Err(e)) => format!("wait failed: {e}"),
            Err(_) => {
                let _ = self.child.kill().await;
                format!("killed: still running {STOP_TIMEOUT:?} after SIGTERM")
            }
        };
        remove_db(&self.db);
        ended
    }
}

/// Deletes a SQLite database and its journal files.
fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}
