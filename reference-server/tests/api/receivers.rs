//! Webhook receivers that misbehave on purpose, for the hardening tests:
//! [`Dead`] accepts TCP connections and never answers, [`Gated`] receives
//! deliveries but answers only when released, [`Redirector`] answers every
//! POST with a 307 to another URL. Each listens on `127.0.0.1:0`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

/// Connections a [`Dead`] receiver holds at most (then it stops accepting).
const DEAD_MAX_CONNECTIONS: usize = 256;

/// Accepts connections and never reads or answers; holds them until dropped.
pub struct Dead {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Dead {
    pub async fn start() -> Dead {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while held.len() < DEAD_MAX_CONNECTIONS {
                match listener.accept().await {
                    Ok((socket, _)) => held.push(socket),
                    Err(_) => return,
                }
            }
            std::future::pending::<()>().await;
        });
        Dead { url, task }
    }
}

impl Drop for Dead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Receives deliveries (their raw bodies go to [`Gated::bodies`] at once)
/// and answers 200 only when [`Gated::release`] hands out a permit.
pub struct Gated {
    pub url: String,
    pub bodies: mpsc::Receiver<Bytes>,
    gate: Arc<Semaphore>,
}

impl Gated {
    pub async fn start() -> Gated {
        let (tx, bodies) = mpsc::channel(4096);
        let gate = Arc::new(Semaphore::new(0));
        let router = axum::Router::new().route("/hook", post(gated)).with_state((tx, gate.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Gated { url, bodies, gate }
    }

    /// Lets `n` more deliveries be answered.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

async fn gated(State((tx, gate)): State<(mpsc::Sender<Bytes>, Arc<Semaphore>)>, body: Bytes) -> StatusCode {
    let _ = tx.send(body).await;
    match gate.acquire().await {
        Ok(permit) => permit.forget(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE,
    }
    StatusCode::OK
}

/// Answers every POST with `307 Temporary Redirect` to `target`, counting them.
pub struct Redirector {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
}

impl Redirector {
    pub async fn start(target: &str) -> Redirector {
        let hits = Arc::new(AtomicUsize::new(0));
        let router = axum::Router::new().route("/hook", post(redirect)).with_state((target.to_string(), hits.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Redirector { url, hits }
    }
}

async fn redirect(State((target, hits)): State<(String, Arc<AtomicUsize>)>, _h: HeaderMap) -> impl IntoResponse {
    hits.fetch_add(1, Ordering::SeqCst);
    (StatusCode::TEMPORARY_REDIRECT, [("location", target)])
}
