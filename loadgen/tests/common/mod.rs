//! What the load generator's integration tests share: scratch folders and the
//! small run each of them starts from (each test binary includes this module
//! and uses what it needs).
#![allow(dead_code)]

use std::path::PathBuf;
use supergroup_load::cli::RunArgs;

/// A folder under the system temp dir for this test process (not created).
pub fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("supergroup-load-test-{}-{name}", std::process::id()))
}

/// A fresh, empty [`scratch_path`].
pub fn scratch(name: &str) -> PathBuf {
    let dir = scratch_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small, quick run: 30 guests in one conversation, 2 talkers at 20
/// messages/s for 1 s, one REST reader, short settle and drain, no progress line.
pub fn small_run(target: Option<String>, out: PathBuf) -> RunArgs {
    RunArgs {
        target,
        guests: Some(30),
        talkers: Some(2),
        conversations: Some(1),
        readers: Some(1),
        rate: Some(20.0),
        message_bytes: Some(64),
        ramp: Some(200.0),
        duration: Some(1.0),
        settle: 0.5,
        drain: 1.5,
        out: Some(out),
        no_progress: true,
        ..RunArgs::defaults()
    }
}
