//! Seeing inside the server: `GET /metrics` counts what happened (closes by
//! code, connections, HTTP requests by route template, never the raw path),
//! every HTTP response carries a request id (the client's, or a generated
//! one), and a connection the server closes for the peer's fault is logged as
//! one JSON line with its code, reason and user.

use crate::helpers::*;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use supergroup_server::Config;
use supergroup_server::logging::{LogFormat, subscriber};

/// Every log line of this test binary, captured as JSON from the first call on.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        #[derive(Clone)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(logs.clone());
        tracing::subscriber::set_global_default(subscriber(LogFormat::Json, move || sink.clone(), false))
            .expect("no other test of this binary installs a global subscriber");
        logs
    })
    .clone()
}

#[tokio::test]
async fn every_response_carries_a_request_id_the_clients_or_a_generated_one() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let get = |id: Option<&str>| {
        let mut req = http.get(format!("{}/v1/{APP}/users/nobody", app.server.base_url())).bearer_auth(SECRET);
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        req.send()
    };
    let echoed = |r: &reqwest::Response| r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());

    let resp = get(Some("trace-abc_123")).await.unwrap();
    assert_eq!(resp.status(), 404, "an error answer carries it too");
    assert_eq!(echoed(&resp).as_deref(), Some("trace-abc_123"));

    let generated = echoed(&get(None).await.unwrap()).expect("a generated id");
    let again = echoed(&get(None).await.unwrap()).expect("a generated id");
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    assert_ne!(generated, again, "one id per request");

    // Too long, or not printable ASCII: replaced, never logged as sent.
    for bad in ["x".repeat(129), "two words".to_string()] {
        let replaced = echoed(&get(Some(&bad)).await.unwrap()).expect("an id");
        assert_ne!(replaced, bad);
        assert_eq!(replaced.len(), 36, "{replaced}");
    }
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_an_idle_close_under_4000_and_http_by_route_template_and_the_close_is_logged() {
    let logs = captured_logs();
    let mut config = Config::for_tests();
    config.transport.ws_idle_timeout = Duration::from_millis(500);
    let app = spawn_app_with(config).await;
    let base = app.server.base_url();
    let before = scrape(&base).await;
    assert_eq!(sample(&before, "supergroup_realtime_closes_total{code=\"4000\"}"), Some(0.0));
    assert_eq!(sample(&before, "supergroup_realtime_connections"), Some(0.0));

    // A guest that says nothing is closed with 4000 after 500 ms.
    app.conversation("c", &["alice"]).await;
    let mut idler = app.guest("idle-guest-7f3", "c").await;
    let during = scrape(&base).await;
    assert_eq!(sample(&during, "supergroup_realtime_connections"), Some(1.0));
    assert_eq!(sample(&during, "supergroup_realtime_open{role=\"guest\"}"), Some(1.0));
    assert_eq!(sample(&during, "supergroup_conversations_open"), Some(1.0));
    assert_eq!(sample(&during, "supergroup_conversation_guests{rank=\"1\"}"), Some(1.0));
    assert_eq!(idler.wait_closed(WAIT).await.unwrap().0, Some(4000));

    // The connection task ends just after its close frame: poll, bounded.
    let after = scrape_until(&base, "supergroup_realtime_connections", 0.0).await;
    assert_eq!(sample(&after, "supergroup_realtime_connections"), Some(0.0), "{after}");
    assert_eq!(sample(&after, "supergroup_realtime_closes_total{code=\"4000\"}"), Some(1.0));
    assert_eq!(sample(&after, "supergroup_realtime_open{role=\"guest\"}"), Some(0.0));
    assert_eq!(sample(&after, "supergroup_conversations_open"), Some(0.0));

    // HTTP: by route template, never the raw path; an unknown route is `unmatched`.
    let _ = reqwest::get(format!("{base}/no/such/route-9d1")).await.unwrap();
    let _ = app.rest.get_user("raw-user-id-5e2").await;
    let text = scrape(&base).await;
    let count = |labels: &str| sample(&text, &format!("supergroup_http_request_duration_seconds_count{{{labels}}}"));
    assert_eq!(count(r#"method="GET",route="unmatched",status="4xx""#), Some(1.0));
    assert_eq!(count(r#"method="GET",route="/v1/{app_id}/users/{user_id}",status="4xx""#), Some(1.0));
    assert!(count(r#"method="GET",route="/metrics",status="2xx""#).is_some_and(|n| n >= 3.0));
    assert!(!text.contains("raw-user-id-5e2") && !text.contains("route-9d1"), "a raw path leaked into a label");
    for name in
        ["process_cpu_seconds_total", "process_resident_memory_bytes", "supergroup_commit_duration_seconds_count"]
    {
        assert!(text.lines().any(|l| l.starts_with(name)), "no {name}");
    }
    app.stop().await;

    // One JSON line for the idle close, with code, reason and user.
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let closes: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["user"] == "idle-guest-7f3")
        .collect();
    assert_eq!(closes.len(), 1, "{logs}");
    let f = &closes[0]["fields"];
    assert_eq!((f["close_code"].as_u64(), f["reason"].as_str()), (Some(4000), Some("idle timeout")), "{f}");
    assert_eq!(closes[0]["level"], "WARN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_moves_to_the_talkers_runtime_serves_on_there_and_gives_its_place_back() {
    use supergroup_protocol::frames::{ClientFrame, ServerFrame};
    let mut config = Config::for_tests();
    config.transport.ws_idle_timeout = Duration::from_millis(1500);
    let app = spawn_app_with(config).await;
    let base = app.server.base_url();
    app.conversation("c", &["alice"]).await;
    let mut talker = app.guest("talker", "c").await;
    let mut listener = app.guest("listener", "c").await;
    assert_eq!(sample(&scrape(&base).await, "supergroup_realtime_talkers"), Some(0.0));

    // Its first send moves it; the ack, its own message and the listener's copy all arrive.
    let send = |r: &str, text: &str| ClientFrame::Send {
        reference: Some(r.into()),
        conversation_id: "c".into(),
        text: text.into(),
        custom: None,
        idempotency_key: None,
    };
    talker.send(&send("s1", "first")).await.unwrap();
    assert!(matches!(reply_to(&mut talker, "s1").await, ServerFrame::Ack { .. }));
    assert_eq!(next_message(&mut listener).await.text, "first");
    assert_eq!(sample(&scrape(&base).await, "supergroup_realtime_talkers"), Some(1.0));

    // Moved, it still reads (a second send, a close, an open), answers in order and receives.
    talker.send(&send("s2", "second")).await.unwrap();
    talker.send(&ClientFrame::Close { reference: Some("x".into()), conversation_id: "c".into() }).await.unwrap();
    assert!(matches!(reply_to(&mut talker, "s2").await, ServerFrame::Ack { .. }));
    assert!(matches!(reply_to(&mut talker, "x").await, ServerFrame::Closed { .. }));
    assert_eq!(next_message(&mut listener).await.text, "second");
    app.post("c", "alice", "from rest").await;
    assert_eq!(next_message(&mut listener).await.text, "from rest");

    // Its timers run there too: silent, it is closed with 4000; then its place is free.
    assert_eq!(talker.wait_closed(WAIT).await.unwrap().0, Some(4000));
    let after = scrape_until(&base, "supergroup_realtime_talkers", 0.0).await;
    assert_eq!(sample(&after, "supergroup_realtime_talkers"), Some(0.0), "{after}");
    app.stop().await;
}
