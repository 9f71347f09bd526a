//! Transport settings: TLS, HTTP timeouts and connection caps, WebSocket
//! liveness and the per-connection rate limits. Every bound is a count or a
//! duration chosen here, with its flag in [`crate::cli`] and its rule in
//! SPEC.md (sections 10.1, 10.5 and 15).

use std::sync::Arc;
use std::time::Duration;

/// How the server treats sockets and connections.
#[derive(Debug, Clone)]
pub struct Transport {
    /// `Some`: serve https and wss with this certificate (see [`crate::tls`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Time a client has for the TLS handshake and for each request head,
    /// counted from the moment the server starts waiting for it, so it is also
    /// how long an idle keep-alive connection is kept (`--http-header-timeout`).
    pub header_timeout: Duration,
    /// Time a client has to send a request's whole body, counted from when the
    /// server starts reading it; later it is answered 408 `request_timeout`
    /// (`--http-body-timeout`), so a client trickling a body cannot hold a
    /// connection (and its `--max-connections` permit) for ever.
    pub body_timeout: Duration,
    /// Connections (HTTP and realtime) held at once; one more is answered
    /// `503 server_busy` and closed (`--max-connections`).
    pub max_connections: usize,
    /// After a shutdown signal, how long in-flight HTTP requests may take
    /// (a client trickling a body cannot hold the shutdown longer).
    pub shutdown_grace: Duration,
    /// TCP keepalive: idle time before the first probe on every accepted socket.
    pub tcp_keepalive: Duration,
    /// The server pings every realtime connection this often (`--ws-ping-interval`).
    pub ws_ping_interval: Duration,
    /// A realtime connection that sends nothing, pongs included, for this long
    /// is closed with 4000 `idle timeout` (`--ws-idle-timeout`).
    pub ws_idle_timeout: Duration,
    /// A realtime connection whose socket takes no bytes for this long while
    /// frames wait is a slow consumer, closed with 1008 (`--ws-write-timeout`).
    pub ws_write_timeout: Duration,
    /// Realtime connections one user of an app may hold at once; one more is
    /// refused with HTTP 429 `too_many_connections` (`--max-connections-per-user`).
    pub max_connections_per_user: u32,
    /// Conversations one connection may have open; one more `open` is
    /// answered `too_many_open` (`--max-open-per-connection`).
    pub max_open_per_connection: usize,
    /// `send` frames per second a connection may sustain (`--send-rate`)...
    pub send_rate: f64,
    /// ...and in a burst (`--send-burst`); past it `send` is answered `rate_limited`.
    pub send_burst: f64,
    /// `typing` frames per second one connection's typing in one conversation
    /// is passed on, burst included (`--typing-rate`); the excess is dropped silently.
    pub typing_rate: f64,
}

/// Default of `--http-header-timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `--http-body-timeout`: 1 MiB (the body limit) at 35 KB/s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of `--max-connections`: well under the 20,000 open files a process
/// may hold here, so the server can still answer `server_busy` at the cap.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default of `--ws-ping-interval`.
pub const DEFAULT_WS_PING_INTERVAL: Duration = Duration::from_secs(25);
/// Default of `--ws-idle-timeout`.
pub const DEFAULT_WS_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of `--ws-write-timeout`.
pub const DEFAULT_WS_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `--max-connections-per-user`.
pub const DEFAULT_MAX_CONNECTIONS_PER_USER: u32 = 32;
/// Default of `--max-open-per-connection`.
pub const DEFAULT_MAX_OPEN_PER_CONNECTION: usize = 100;
/// Default of `--send-rate`: far above a person typing, and above the load
/// generator's busiest talker (20 messages/s).
pub const DEFAULT_SEND_RATE: f64 = 50.0;
/// Default of `--send-burst`.
pub const DEFAULT_SEND_BURST: f64 = 100.0;
/// Default of `--typing-rate`: a typing indicator needs no more.
pub const DEFAULT_TYPING_RATE: f64 = 4.0;

impl Default for Transport {
    fn default() -> Transport {
        Transport {
            tls: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Duration::from_secs(5),
            tcp_keepalive: Duration::from_secs(60),
            ws_ping_interval: DEFAULT_WS_PING_INTERVAL,
            ws_idle_timeout: DEFAULT_WS_IDLE_TIMEOUT,
            ws_write_timeout: DEFAULT_WS_WRITE_TIMEOUT,
            max_connections_per_user: DEFAULT_MAX_CONNECTIONS_PER_USER,
            max_open_per_connection: DEFAULT_MAX_OPEN_PER_CONNECTION,
            send_rate: DEFAULT_SEND_RATE,
            send_burst: DEFAULT_SEND_BURST,
            typing_rate: DEFAULT_TYPING_RATE,
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: std::time::Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(burst: f64) -> Bucket {
        Bucket { tokens: burst, last: std::time::Instant::now() }
    }

    /// Whether the bucket has refilled to `burst` by now (then it is the
    /// same as a fresh one).
    pub fn is_full(&self, rate: f64, burst: f64) -> bool {
        self.tokens + self.last.elapsed().as_secs_f64() * rate >= burst
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, rate: f64, burst: f64) -> bool {
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let mut b = Bucket::full(3.0);
        assert!((0..3).all(|_| b.take(0.001, 3.0)));
        assert!(!b.take(0.001, 3.0));
    }
}
