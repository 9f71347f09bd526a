//! A bounded benchmark client for the send path (not a test): against a
//! running server it measures
//!
//! 1. a connect storm: `--guests` guests connect and open one conversation,
//!    at most `--concurrency` at a time; the time until the last is open (and,
//!    with `--server-pid`, the server's CPU time per guest);
//! 2. a burst: one participant sends `--messages` messages at `--rate` per
//!    second over one connection, pipelined (it does not wait for acks);
//!    every guest counts the `message` frames it gets. Reported: deliveries
//!    and missing after `--deadline`, time from the first send to the last
//!    delivery, send-to-ack p50/p99, and, with `--server-pid`, the server's
//!    CPU time (user + system, from /proc) per delivery.
//!
//! ```sh
//! ulimit -n 20000
//! target/release/supergroup-server --listen 127.0.0.1:18080 --db /tmp/b.db --guest-limit 20000 &
//! target/release/examples/burst --target http://127.0.0.1:18080 --server-pid $! --guests 10000
//! ```
//!
//! Guests read with a 4 KiB buffer and count frames by a substring test
//! (no JSON parse), so the client stays cheap next to the server.

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use supergroup_protocol::client::{Rest, WsConfig, connect_ws};
use supergroup_protocol::frames::{ClientFrame, Ui};
use supergroup_protocol::rest::ConversationUpsert;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

struct Args {
    target: String,
    app: String,
    secret: String,
    guests: usize,
    concurrency: usize,
    messages: usize,
    rate: f64,
    deadline: Duration,
    server_pid: Option<u32>,
}

fn args() -> Args {
    let mut a = Args {
        target: "http://127.0.0.1:18080".into(),
        app: "demo".into(),
        secret: "sk_demo".into(),
        guests: 10_000,
        concurrency: 500,
        messages: 200,
        rate: 500.0,
        deadline: Duration::from_secs(30),
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => a.target = value(),
            "--app-id" => a.app = value(),
            "--secret" => a.secret = value(),
            "--guests" => a.guests = value().parse().expect("--guests N"),
            "--concurrency" => a.concurrency = value().parse().expect("--concurrency N"),
            "--messages" => a.messages = value().parse().expect("--messages N"),
            "--rate" => a.rate = value().parse().expect("--rate R"),
            "--deadline" => a.deadline = Duration::from_secs(value().parse().expect("--deadline SECONDS")),
            "--server-pid" => a.server_pid = Some(value().parse().expect("--server-pid PID")),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// The process's user + system CPU time, from /proc/PID/stat (clock ticks of 10 ms).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let a = args();
    let rest = Rest::new(&a.target, &a.app, &a.secret);
    let conv = format!("burst-{}", std::process::id());
    let body = ConversationUpsert { participants: Some(vec!["talker".into()]), ..Default::default() };
    rest.put_conversation(&conv, &body).await.expect("conversation PUT");
    let cfg = WsConfig { read_buffer: 4096, write_buffer: 0, max_message: 1 << 20 };

    // 1. Connect storm.
    let delivered = Arc::new(AtomicU64::new(0));
    let complete = Arc::new(AtomicUsize::new(0));
    let last_delivery = Arc::new(AtomicU64::new(0));
    let origin = Instant::now();
    let slots = Arc::new(Semaphore::new(a.concurrency));
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<Result<Duration, String>>(a.guests);
    let storm = Instant::now();
    let storm_cpu = a.server_pid.and_then(cpu_time);
    for i in 0..a.guests {
        let url = rest.realtime_url(&rest.token(&format!("bg{i}")));
        let open = serde_json::to_string(&ClientFrame::Open {
            reference: Some("o".into()),
            conversation_id: conv.clone(),
            ui: Ui::Chatbox,
            as_guest: true,
        })
        .expect("frame");
        let (slots, opened_tx) = (slots.clone(), opened_tx.clone());
        let (delivered, complete, last_delivery) = (delivered.clone(), complete.clone(), last_delivery.clone());
        let expect = a.messages as u64;
        let deadline = a.deadline + Duration::from_secs(120);
        tokio::spawn(async move {
            let permit = slots.acquire_owned().await.expect("semaphore");
            let started = Instant::now();
            let ws = connect_ws(&url, cfg).await;
            let Ok(mut ws) = ws else {
                let _ = opened_tx.send(Err(format!("connect: {:?}", ws.err()))).await;
                return;
            };
            if ws.send(Message::text(open)).await.is_err() {
                let _ = opened_tx.send(Err("send open".into())).await;
                return;
            }
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"opened\"") => {
                    let _ = opened_tx.send(Ok(started.elapsed())).await;
                }
                other => {
                    let _ = opened_tx.send(Err(format!("open reply {other:?}"))).await;
                    return;
                }
            }
            // The storm's count ends when every guest has reported: not at the end of the run.
            drop((permit, opened_tx));
            let mut got = 0u64;
            let end = tokio::time::Instant::now() + deadline;
            while got < expect {
                match tokio::time::timeout_at(end, ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.contains("\"type\":\"message\"") => {
                        got += 1;
                        delivered.fetch_add(1, Ordering::Relaxed);
                        last_delivery.fetch_max(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            if got == expect {
                complete.fetch_add(1, Ordering::Relaxed);
            }
            // Keep the socket until the run ends.
            tokio::time::sleep_until(end).await;
        });
    }
    drop(opened_tx);
    let mut open_latencies = Vec::with_capacity(a.guests);
    let mut errors = Vec::new();
    while let Some(r) = opened_rx.recv().await {
        match r {
            Ok(d) => open_latencies.push(d),
            Err(e) => errors.push(e),
        }
    }
    let storm_time = storm.elapsed();
    let storm_cpu = match (storm_cpu, a.server_pid.and_then(cpu_time)) {
        (Some(before), Some(after)) => format!(
            "; server CPU {:.2} s, {:.0} us per guest",
            (after - before).as_secs_f64(),
            (after - before).as_secs_f64() * 1e6 / a.guests as f64
        ),
        _ => String::new(),
    };
    open_latencies.sort();
    println!(
        "connect storm: {} of {} guests connected and opened in {:.2} s (concurrency {}); connect+open p50 {:?} p99 {:?}; {} failed{}{storm_cpu}",
        open_latencies.len(),
        a.guests,
        storm_time.as_secs_f64(),
        a.concurrency,
        percentile(&open_latencies, 0.5),
        percentile(&open_latencies, 0.99),
        errors.len(),
        errors.first().map(|e| format!(" (first: {e})")).unwrap_or_default(),
    );

    // 2. Burst.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let url = rest.realtime_url(&rest.token("talker"));
    let mut talker = connect_ws(&url, WsConfig::default()).await.expect("talker connects");
    let open = ClientFrame::Open {
        reference: Some("o".into()),
        conversation_id: conv.clone(),
        ui: Ui::Chatbox,
        as_guest: false,
    };
    talker.send(Message::text(serde_json::to_string(&open).expect("frame"))).await.expect("talker open");
    loop {
        match talker.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"opened\"") => break,
            Some(Ok(_)) => {}
            other => panic!("talker open: {other:?}"),
        }
    }
    let (mut sink, mut stream) = talker.split();
    let n = a.messages;
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let acks = {
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let (mut latencies, mut refused) = (Vec::with_capacity(n), Vec::new());
            let end = tokio::time::Instant::now() + Duration::from_secs(120);
            while latencies.len() + refused.len() < n {
                let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout_at(end, stream.next()).await else { break };
                if t.contains("\"type\":\"error\"") && t.contains("\"ref\"") {
                    // A refused send (e.g. `rate_limited`: raise the server's --send-rate/--send-burst).
                    let v: serde_json::Value = serde_json::from_str(&t).expect("error JSON");
                    refused.push(v["code"].as_str().unwrap_or("?").to_string());
                    continue;
                }
                if !t.contains("\"type\":\"ack\"") {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&t).expect("ack JSON");
                let i: usize = v["ref"].as_str().and_then(|r| r.parse().ok()).expect("numeric ref");
                let sent = Duration::from_micros(sent_at[i].load(Ordering::Relaxed));
                latencies.push(origin.elapsed().saturating_sub(sent));
            }
            (latencies, refused)
        })
    };
    let cpu_before = a.server_pid.and_then(cpu_time);
    let burst_start = Instant::now();
    let start_us = origin.elapsed().as_micros() as u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..n {
        tick.tick().await;
        let frame = ClientFrame::Send {
            reference: Some(i.to_string()),
            conversation_id: conv.clone(),
            text: format!(
                "burst message {i:04} ........................................................................"
            ),
            custom: None,
            idempotency_key: None,
        };
        sent_at[i].store(origin.elapsed().as_micros() as u64, Ordering::Relaxed);
        sink.send(Message::text(serde_json::to_string(&frame).expect("frame"))).await.expect("talker send");
    }
    let send_time = burst_start.elapsed();
    let guests_open = open_latencies.len();
    let expected = (guests_open * n) as u64;
    let deadline = Instant::now() + a.deadline;
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu_after = a.server_pid.and_then(cpu_time);
    let got = delivered.load(Ordering::Relaxed);
    let last = Duration::from_micros(last_delivery.load(Ordering::Relaxed).saturating_sub(start_us));
    let (mut ack_latencies, refused) = acks.await.expect("ack reader");
    ack_latencies.sort();
    println!(
        "burst: {n} messages sent in {:.2} s ({} /s asked) to {guests_open} guests: {got} of {expected} deliveries, {} missing, {} guests complete; last delivery {:.2} s after the first send",
        send_time.as_secs_f64(),
        a.rate,
        expected - got.min(expected),
        complete.load(Ordering::Relaxed),
        last.as_secs_f64(),
    );
    println!(
        "burst: send-to-ack p50 {:?} p99 {:?} ({} acks)",
        percentile(&ack_latencies, 0.5),
        percentile(&ack_latencies, 0.99),
        ack_latencies.len()
    );
    if let Some(code) = refused.first() {
        println!(
            "burst: {} of {n} sends REFUSED (first: {code}); the burst did not measure what it asked for",
            refused.len()
        );
    }
    if let (Some(b), Some(e)) = (cpu_before, cpu_after) {
        let cpu = e.saturating_sub(b);
        println!(
            "burst: server CPU {:.2} s, {:.2} us per delivery",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / got.max(1) as f64
        );
    }
    std::process::exit(0);
}
