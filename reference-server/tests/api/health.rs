//! The operational endpoints: `/healthz` and `/readyz` answer without the app
//! secret, and `/readyz` turns 503 `shutting_down` once shutdown has begun,
//! while the server still serves HTTP during its drain.

use crate::helpers::*;
use reqwest::StatusCode;
use supergroup_protocol::rest::ErrorBody;
use supergroup_server::Config;

async fn get(base: &str, path: &str) -> (StatusCode, serde_json::Value) {
    let resp = reqwest::get(format!("{base}{path}")).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status();
    (status, resp.json().await.unwrap_or_else(|e| panic!("GET {path}: body is not JSON: {e}")))
}

#[tokio::test]
async fn healthz_and_readyz_answer_200_without_the_secret() {
    let app = spawn_app().await;
    let base = app.server.base_url();
    assert_eq!(get(&base, "/healthz").await, (StatusCode::OK, serde_json::json!({"status": "ok"})));
    assert_eq!(get(&base, "/readyz").await, (StatusCode::OK, serde_json::json!({"status": "ready"})));
    app.stop().await;
}

#[tokio::test]
async fn readyz_turns_503_during_shutdown_while_http_is_still_served() {
    let mut config = Config::for_tests();
    // Long enough for two requests after the realtime close arrives; the test
    // waits for it once, at the end.
    config.shutdown_drain_ms = 3_000;
    let app = spawn_app_with(config).await;
    let base = app.server.base_url();
    assert_eq!(get(&base, "/readyz").await.0, StatusCode::OK);
    // The 1001 close is sent after the shutdown token is cancelled: once it
    // has arrived, shutdown has begun, with no sleep to guess when.
    let mut watcher = app.connect("watcher").await;
    let stopping = tokio::spawn(app.stop());
    assert_eq!(watcher.wait_closed(WAIT).await.unwrap().0, Some(1001));

    let (status, body) = get(&base, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body: ErrorBody = serde_json::from_value(body).expect("the 503 has the error body");
    assert_eq!(body.error.code, "shutting_down");
    // Alive, just not ready: the liveness probe must not restart a draining server.
    assert_eq!(get(&base, "/healthz").await.0, StatusCode::OK);

    tokio::time::timeout(WAIT * 2, stopping).await.expect("the server stops after its drain").unwrap();
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err(), "after the drain the listener is closed");
}
