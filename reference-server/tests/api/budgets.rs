//! Memory bounded in bytes (SPEC sections 13 and 14.2): notification windows
//! close early when they reach their byte budget, losing no message; an app's
//! webhook events past its byte budget are dropped, the rest delivered.

use crate::helpers::*;
use crate::receivers::Gated;
use std::time::Duration;
use supergroup_server::Config;

/// `n` characters of text, about `n` bytes.
fn text(n: usize, tag: usize) -> String {
    format!("{tag:04}{}", "x".repeat(n - 4))
}

#[tokio::test]
async fn a_notification_window_closes_early_at_the_byte_budget_and_loses_no_message_sg_notify_5() {
    let mut config = Config::for_tests();
    // The window would stay open a minute: only the budget can close it.
    config.notification_delay_ms = 60_000;
    config.hooks.notification_budget_bytes = 50_000;
    config.hooks.drain = Duration::from_secs(5);
    let app = spawn_app_with(config).await;
    let mut hooks = Hooks::start().await;
    app.register_webhook(&hooks.url).await;
    app.conversation("c", &["alice", "bob"]).await;
    // Each message is about 15,200 bytes of JSON: three fit in 50,000, the fourth passes it.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.post("c", "alice", &text(15_000, i)).await);
    }
    let first = hooks.notification_for("bob").await;
    assert_eq!(first.message_ids(), ids[..4], "the fourth message closed the window with it");
    assert!(first.signed_by_app());
    // The fifth opened a new window; shutdown closes it, so it is delivered too.
    app.stop().await;
    let second = hooks.notification_for("bob").await;
    assert_eq!(second.message_ids(), ids[4..]);
}

#[tokio::test]
async fn webhook_events_past_an_apps_byte_budget_are_dropped_and_the_rest_delivered() {
    let mut config = Config::for_tests();
    config.hooks.webhook_budget_bytes = 100_000;
    config.hooks.webhook_concurrency = 1;
    let app = spawn_app_with(config).await;
    let mut gated = Gated::start().await;
    let reg = supergroup_protocol::rest::WebhookRegistration {
        url: gated.url.clone(),
        events: Some(vec!["message.sent".into()]),
    };
    app.rest.put_webhook(&reg).await.unwrap();
    app.conversation("c", &["alice"]).await;
    for i in 0..20 {
        app.post("c", "alice", &text(15_000, i)).await;
    }
    // Every event has the same size; the budget holds floor(100,000 / size) of them.
    let first = tokio::time::timeout(WAIT, gated.bodies.recv()).await.expect("a first delivery").unwrap();
    let fits = 100_000 / first.len();
    assert!((2..20).contains(&fits), "{} bytes per event", first.len());
    // A POST is answered at its commit; its event is offered to the queue just
    // after, by the writer's thread: release nothing before all 20 were offered.
    offered_all(&app.server.base_url(), 20.0).await;
    gated.release(100);
    let mut delivered = vec![first];
    while let Ok(Some(body)) = tokio::time::timeout(Duration::from_millis(500), gated.bodies.recv()).await {
        delivered.push(body);
    }
    assert_eq!(delivered.len(), fits, "the events within the budget, and no others");
    let texts: Vec<String> = delivered
        .iter()
        .map(|b| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["data"]["message"]["text"].as_str().unwrap()[..4]
                .to_string()
        })
        .collect();
    let expected: Vec<String> = (0..fits).map(|i| format!("{i:04}")).collect();
    assert_eq!(texts, expected, "the first events were kept, the later ones dropped");
    app.stop().await;
}

/// Waits (bounded: 100 x 20 ms) until the `demo` app's webhook events queued
/// or in flight plus those dropped add up to `n`, as `/metrics` shows them.
async fn offered_all(base: &str, n: f64) {
    let mut seen = 0.0;
    for _ in 0..100 {
        let text = scrape(base).await;
        let value = |series: &str| sample(&text, series).unwrap_or(0.0);
        seen = value("supergroup_webhook_queue_events{app=\"demo\"}")
            + value("supergroup_webhook_dropped_total{app=\"demo\"}");
        if seen == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{seen} of {n} webhook events offered");
}
