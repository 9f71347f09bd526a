//! One server process per database file: a second `supergroup-server` on a
//! file in use exits at once with a clear error instead of sharing it.

use crate::helpers::*;
use std::process::Stdio;
use std::time::Duration;
use supergroup_server::Config;

#[tokio::test]
async fn a_second_server_process_on_the_same_database_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("supergroup.db").to_string_lossy().into_owned();
    let mut config = Config::for_tests();
    config.db = db.clone();
    let app = spawn_app_with(config).await;
    app.conversation("c", &["alice"]).await;

    let second = tokio::process::Command::new(env!("CARGO_BIN_EXE_supergroup-server"))
        .args(["--listen", "127.0.0.1:0", "--db", &db])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), second.wait_with_output())
        .await
        .expect("the second server exits instead of serving")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second server exited with success");
    assert!(stderr.contains("in use by another process"), "stderr: {stderr}");
    // The first server is unharmed.
    assert_eq!(app.rest.get_conversation("c").await.unwrap().id, "c");
    app.stop().await;
}
