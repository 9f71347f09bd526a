//! Open files: every guest is one socket, on the load generator's side and on
//! the server's. This machine (and many CI runners) allow a fixed number of
//! open files per process (`ulimit -n`); past it, `connect` and `accept` fail
//! with "Too many open files" and the run would measure the limit instead of
//! the server. So the run checks the limit before it starts, raises the soft
//! limit up to the hard one when that is enough, and otherwise refuses with
//! an error that says what to change. The local server is a child process and
//! inherits the (raised) limit.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Files a process needs besides its sockets: stdio, the SQLite files, the
/// epoll instance, log files, the REST client's pool, slack.
pub const MARGIN: u64 = 256;

/// The open-file limits of this process.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct FileLimits {
    pub soft: u64,
    pub hard: u64,
}

/// Reads `RLIMIT_NOFILE`.
pub fn current() -> Option<FileLimits> {
    getrlimit(Resource::RLIMIT_NOFILE).ok().map(|(soft, hard)| FileLimits { soft, hard })
}

/// Makes sure this process may open `sockets` sockets plus [`MARGIN`] files;
/// raises the soft limit when the hard limit allows. Returns the limits in force.
pub fn ensure(sockets: u64) -> anyhow::Result<FileLimits> {
    let need = sockets + MARGIN;
    let Some(limits) = current() else {
        return Ok(FileLimits { soft: u64::MAX, hard: u64::MAX });
    };
    if limits.soft >= need {
        return Ok(limits);
    }
    if limits.hard >= need && setrlimit(Resource::RLIMIT_NOFILE, need, limits.hard).is_ok() {
        return Ok(FileLimits { soft: need, hard: limits.hard });
    }
    anyhow::bail!(
        "this run needs about {need} open files per process ({sockets} sockets, one per guest, talker and reader, \
         plus {MARGIN} for everything else), but the limit is {} (hard limit {}). Every guest is one socket in the \
         load generator and one in the server, and each process may hold only `ulimit -n` open files. Lower \
         --guests to at most {}, or raise the limit (`ulimit -n {need}` in the shell, or LimitNOFILE= for a \
         service) and run again.",
        limits.soft,
        limits.hard,
        limits.hard.max(limits.soft).saturating_sub(MARGIN),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_need_passes_and_an_impossible_one_explains_itself() {
        assert!(ensure(10).is_ok());
        let err = ensure(u64::MAX / 2).unwrap_err().to_string();
        assert!(err.contains("ulimit -n"), "{err}");
        assert!(err.contains("--guests"), "{err}");
    }
}
