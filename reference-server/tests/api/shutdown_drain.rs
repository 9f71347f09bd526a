//! Shutdown drains outgoing work for a bounded time (`--shutdown-drain-ms`):
//! open notification windows close at once (with the usual open check) and
//! queued webhook events are delivered to a real receiver; a dead endpoint
//! cannot hold the shutdown past the bound.

use crate::helpers::*;
use crate::receivers::Dead;
use std::time::{Duration, Instant};
use supergroup_server::Config;

#[tokio::test]
async fn shutdown_fires_open_notification_windows_and_delivers_queued_events() {
    let mut config = Config::for_tests();
    config.notification_delay_ms = 60_000;
    config.hooks.drain = Duration::from_secs(5);
    let app = spawn_app_with(config).await;
    let mut hooks = Hooks::start().await;
    app.register_webhook(&hooks.url).await;
    app.conversation("c", &["alice", "bob", "carol"]).await;
    // carol has the conversation open: her window must stay silent at shutdown too.
    let carol = app.participant("carol", "c").await;
    let a = app.post("c", "alice", "one").await;
    let b = app.post("c", "alice", "two").await;
    hooks.message_sent(&b).await;
    assert!(hooks.quiet_notifications_for("bob").await.is_empty(), "the minute-long window is still open");
    app.stop().await;
    let n = hooks.notification_for("bob").await;
    assert_eq!(n.message_ids(), [a, b]);
    assert!(hooks.quiet_notifications_for("carol").await.is_empty());
    drop(carol);
}

#[tokio::test]
async fn a_dead_endpoint_holds_shutdown_no_longer_than_the_drain_bound() {
    let mut config = Config::for_tests();
    config.hooks.drain = Duration::from_millis(500);
    let app = spawn_app_with(config).await;
    let dead = Dead::start().await;
    app.register_webhook(&dead.url).await;
    app.conversation("c", &["alice"]).await;
    app.post("c", "alice", "into the void").await;
    let started = Instant::now();
    app.stop().await;
    // One attempt alone would take 5 s (its timeout) and the retry 6 s more.
    assert!(started.elapsed() < Duration::from_secs(4), "stop took {:?}", started.elapsed());
    drop(dead);
}
