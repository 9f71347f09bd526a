//! Measures the server's memory in the "60 KB messages into offline
//! participants with a stalled webhook" scenario of issue 8: one participant
//! posts 300 messages of 60,000 bytes (20,000 three-byte characters) into a
//! conversation with 100 other participants, none connected, while the app's
//! webhook endpoint accepts connections and never answers. Prints the server
//! process's RSS before, its peak while sampling, and at the end.
//!
//! The server runs as a child process (its own RSS, nothing of this client):
//!
//! ```sh
//! cargo build -p supergroup-server            # or --release, then pass target/release/...
//! cargo run -p supergroup-server --example stalled_webhook_rss -- target/debug/supergroup-server --participant-limit 200
//! # (101 participants: over the basic plan's 100; further server flags may follow)
//! ```

use std::process::Stdio;
use std::time::{Duration, Instant};
use supergroup_protocol::client::Rest;
use supergroup_protocol::rest::{ConversationUpsert, NewMessage, WebhookRegistration};
use tokio::io::{AsyncBufReadExt, BufReader};

const PARTICIPANTS: usize = 100;
const MESSAGES: usize = 300;
/// Seconds to keep sampling after the last message (notification windows
/// close after 1 s; stalled deliveries time out after 5 s + 1 s + 5 s).
const SETTLE_SECS: u64 = 20;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let binary = args.next().unwrap_or_else(|| "target/debug/supergroup-server".into());
    let extra: Vec<String> = args.collect();
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("rss.db");

    // The stalled endpoint: accepts, never reads, never answers (bounded to 2,000 sockets).
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dead_url = format!("http://{}/hook", dead.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while held.len() < 2_000 {
            match dead.accept().await {
                Ok((s, _)) => held.push(s),
                Err(_) => break,
            }
        }
        std::future::pending::<()>().await;
    });

    let mut child = tokio::process::Command::new(&binary)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .args(&extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().expect("the child runs");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let base = loop {
        let line = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("the server exited"))?;
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_string();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let rest = Rest::new(&base, "demo", "sk_demo");
    let mut people: Vec<String> = vec!["sender".into()];
    people.extend((0..PARTICIPANTS).map(|i| format!("offline{i}")));
    rest.put_conversation("lobby", &ConversationUpsert { participants: Some(people), ..Default::default() }).await?;
    rest.put_webhook(&WebhookRegistration { url: dead_url, events: None }).await?;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    let mut peak = before;
    let text = "✓".repeat(20_000);
    assert_eq!(text.len(), 60_000);
    let started = Instant::now();
    for i in 0..MESSAGES {
        let m = NewMessage::UserMessage {
            sender: "sender".into(),
            text: text.clone(),
            custom: None,
            idempotency_key: None,
        };
        rest.post_messages("lobby", &[m]).await.map_err(|e| anyhow::anyhow!("message {i}: {e}"))?;
        peak = peak.max(rss_kib(pid));
    }
    let sent_in = started.elapsed();
    let settle_until = Instant::now() + Duration::from_secs(SETTLE_SECS);
    while Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(rss_kib(pid));
    }
    let end = rss_kib(pid);
    println!("binary: {binary} {}", extra.join(" "));
    println!(
        "{MESSAGES} messages of 60,000 bytes, {PARTICIPANTS} offline participants, stalled webhook; sent in {sent_in:.1?}"
    );
    println!(
        "server RSS: before {:.1} MiB, peak {:.1} MiB (growth {:.1} MiB), after {SETTLE_SECS} s more {:.1} MiB",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        (peak - before) as f64 / 1024.0,
        end as f64 / 1024.0
    );
    child.start_kill()?;
    Ok(())
}
