//! The serve loop: accept, cap, keepalive, TLS, HTTP/1.1 with timeouts,
//! graceful shutdown. It replaces `axum::serve`, which has no header-read
//! timeout, no connection cap and no TLS; axum-server would add TLS but
//! still no cap, and the loop is short enough to own (hyper-util's HTTP/1.1
//! connection with a timer, the way `axum::serve` drives it inside).
//!
//! - **Cap.** Every accepted socket takes one permit of a semaphore of
//!   `--max-connections` (default 10,000). The permit travels with the
//!   socket ([`Counted`]), through a WebSocket upgrade too, and is given back
//!   when the socket is dropped. With no permit left, the socket is answered
//!   `HTTP/1.1 503` with `{"error":{"code":"server_busy"}}` and closed; at most
//!   [`REFUSING`] refusals are written at once (each bounded by
//!   [`REFUSE_WRITE`]), beyond that a socket is closed unanswered.
//! - **Timeouts.** The TLS handshake and every request head must arrive
//!   within `--http-header-timeout` (10 s). hyper starts that timer when it
//!   waits for a head, so an idle keep-alive connection is closed after the
//!   same time. A slowloris client trickling header bytes is closed then.
//! - **TCP keepalive** on every accepted socket, so the kernel finds peers
//!   that vanished (a phone off the network) even on an idle socket.
//! - **Backlog.** The listening socket is made with `--listen-backlog`
//!   (default [`DEFAULT_LISTEN_BACKLOG`]): connections the kernel completed
//!   that wait to be accepted. tokio's own bind uses 1,024, and a ramp of
//!   1,000 connects a second overflowed it (the kernel then drops the SYN and
//!   the client sees a connect time-out: loadgen/README.md). Linux caps the
//!   value at `net.core.somaxconn` (4,096 on this machine).
//! - **Shutdown.** The listener stops accepting; in-flight HTTP requests get
//!   `shutdown_grace` (5 s) to finish, after which their connections are
//!   dropped, so a client trickling a body cannot hold the shutdown.
//!   Realtime connections are closed by their own tasks (1001, see
//!   [`crate::realtime`]).

use crate::transport::Transport;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Refusals (503 at the cap) written at once; past this a socket is just closed.
const REFUSING: usize = 64;
/// Longest a refusal may take to write.
const REFUSE_WRITE: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Default of `--listen-backlog`: `net.core.somaxconn`'s default on Linux
/// since 5.4, so the kernel's own cap is what applies.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with `backlog` (SO_REUSEADDR, as tokio's own bind).
pub fn bind(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves `router` on `listener` until `shutdown` resolves; returns once
/// in-flight HTTP requests finished or `shutdown_grace` passed.
pub async fn serve(listener: TcpListener, router: Router, t: &Transport, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(t.max_connections.max(1)));
    let refusing = Arc::new(Semaphore::new(REFUSING));
    // Each connection task watches `stop`; `tasks` lets shutdown wait for them.
    let (stop, tasks) = (CancellationToken::new(), TaskTracker::new());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(t.header_timeout).keep_alive(true);
    let tls = t.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; backing off");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream, &refusing, t.max_connections);
            continue;
        };
        keepalive(&stream, t.tcp_keepalive);
        let (http, svc, tls, stop) =
            (http.clone(), TowerToHyperService::new(router.clone()), tls.clone(), stop.clone());
        let (handshake, grace) = (t.header_timeout, t.shutdown_grace);
        tasks.spawn(async move {
            match tls {
                None => {
                    let io = TokioIo::new(Counted { inner: stream, _permit: permit });
                    drive(http.serve_connection(io, svc).with_upgrades(), stop, grace).await;
                }
                Some(acceptor) => {
                    let Ok(Ok(tls_stream)) = tokio::time::timeout(handshake, acceptor.accept(stream)).await else {
                        return;
                    };
                    let io = TokioIo::new(Counted { inner: tls_stream, _permit: permit });
                    drive(http.serve_connection(io, svc).with_upgrades(), stop, grace).await;
                }
            }
        });
    }
    drop(listener);
    stop.cancel();
    tasks.close();
    // Every task ends within `grace` of `stop`; the margin covers the last poll.
    if tokio::time::timeout(t.shutdown_grace + Duration::from_secs(1), tasks.wait()).await.is_err() {
        tracing::warn!("HTTP connections still open {:?} after shutdown", t.shutdown_grace);
    }
}

/// Serves one connection; on `stop`, lets the request in flight finish
/// (keep-alive off) for at most `grace`, then drops the connection.
async fn drive<I>(
    conn: http1::UpgradeableConnection<I, TowerToHyperService<Router>>,
    stop: CancellationToken,
    grace: Duration,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    if tokio::time::timeout(grace, conn).await.is_err() {
        tracing::debug!("an HTTP request did not finish within the shutdown grace; dropped");
    }
}

/// Answers a socket over the cap with 503 `server_busy` (bounded), or closes it.
fn refuse(mut stream: TcpStream, refusing: &Arc<Semaphore>, cap: usize) {
    let Ok(slot) = refusing.clone().try_acquire_owned() else { return };
    tokio::spawn(async move {
        let _slot = slot;
        let body = format!(
            r#"{{"error":{{"code":"server_busy","message":"the server holds its limit of {cap} connections; retry later"}}}}"#
        );
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n",
            body.len()
        );
        let _ = tokio::time::timeout(REFUSE_WRITE, async {
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            stream.shutdown().await
        })
        .await;
    });
}

/// TCP keepalive: first probe after `idle`, then every 10 s, 6 probes.
fn keepalive(stream: &TcpStream, idle: Duration) {
    let ka = socket2::TcpKeepalive::new().with_time(idle).with_interval(Duration::from_secs(10)).with_retries(6);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "cannot set TCP keepalive");
    }
}

/// A socket with the connection permit it holds: the permit goes back when
/// the socket is dropped, whether it served HTTP or was upgraded to a WebSocket.
struct Counted<S> {
    inner: S,
    _permit: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
