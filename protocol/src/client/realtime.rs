//! The realtime half of the client: one WebSocket connection. Replies are
//! matched to requests by `ref`; frames that arrive while a reply is awaited
//! are kept, in order, for the next [`Realtime::next_event`] or
//! [`Realtime::wait_for`], so no event is lost to a request. Every wait is
//! bounded by a timeout that says what was awaited.

use super::tls::Tls;
use crate::frames::{ClientFrame, ServerFrame, Ui};
use futures_util::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The stream type under a [`Realtime`].
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Buffer sizes of the client side of a connection. The load generator holds
/// thousands of connections, so the default is small (4 KiB read buffer).
#[derive(Debug, Clone, Copy)]
pub struct WsConfig {
    pub read_buffer: usize,
    pub write_buffer: usize,
    pub max_message: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig { read_buffer: 4096, write_buffer: 0, max_message: 1 << 20 }
    }
}

/// Something the server sent: a frame, or the end of the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Frame(ServerFrame),
    /// The connection closed; `code` and `reason` from the close frame, if one came.
    Closed {
        code: Option<u16>,
        reason: String,
    },
}

/// A failed realtime operation.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    /// The HTTP upgrade was answered with this status instead of 101.
    #[error("upgrade refused with HTTP {status}")]
    Rejected { status: u16 },
    /// The TLS handshake failed: most often a certificate no trusted root vouches for.
    #[error("TLS: {0}")]
    Tls(String),
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    /// Nothing matching arrived in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    /// The server closed the connection while something was awaited.
    #[error("connection closed (code {code:?}, reason {reason:?}) while waiting for {what}")]
    Closed { code: Option<u16>, reason: String, what: String },
    /// The server sent a frame that is not valid protocol.
    #[error("server sent a frame that is not protocol: {0}")]
    Protocol(String),
}

/// One realtime connection.
pub struct Realtime {
    ws: Ws,
    /// Frames received while a reply was awaited, oldest first.
    pending: VecDeque<ServerFrame>,
    /// Set once the close is seen, so later reads report it again.
    closed: Option<(Option<u16>, String)>,
    next_ref: u64,
}

impl Realtime {
    /// Connects to a realtime URL (see [`crate::client::Rest::realtime_url`]);
    /// a `wss://` URL trusts the platform's roots only.
    pub async fn connect(url: &str) -> Result<Realtime, RealtimeError> {
        Self::connect_with(url, WsConfig::default()).await
    }

    /// Connects with explicit buffer sizes, trusting the platform's roots.
    pub async fn connect_with(url: &str, cfg: WsConfig) -> Result<Realtime, RealtimeError> {
        Self::connect_tls(url, cfg, &Tls::platform()).await
    }

    /// Connects with explicit buffer sizes and trust (see [`crate::client::Rest::tls`]).
    pub async fn connect_tls(url: &str, cfg: WsConfig, tls: &Tls) -> Result<Realtime, RealtimeError> {
        Ok(Realtime::over(connect_ws_tls(url, cfg, tls).await?))
    }

    /// The typed layer over a WebSocket opened elsewhere (e.g. with [`connect_ws_on`]).
    pub fn over(ws: Ws) -> Realtime {
        Realtime { ws, pending: VecDeque::new(), closed: None, next_ref: 0 }
    }

    /// Gives up the typed layer, for callers that read raw frames (the load generator).
    pub fn into_inner(self) -> Ws {
        self.ws
    }

    /// A fresh `ref` for a request on this connection.
    pub fn fresh_ref(&mut self) -> String {
        self.next_ref += 1;
        format!("r{}", self.next_ref)
    }

    /// Sends a frame, no reply awaited.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), RealtimeError> {
        let text = serde_json::to_string(frame).expect("frames always serialize");
        self.send_text(text).await
    }

    /// Sends any text as one frame (to probe bad input).
    pub async fn send_text(&mut self, text: String) -> Result<(), RealtimeError> {
        Ok(self.ws.send(Message::text(text)).await?)
    }

    /// Sends a binary frame (the protocol answers it with `invalid_frame`).
    pub async fn send_binary(&mut self, data: Vec<u8>) -> Result<(), RealtimeError> {
        Ok(self.ws.send(Message::binary(data)).await?)
    }

    /// Sends `frame` and waits for the reply that echoes its `ref`.
    pub async fn request(&mut self, frame: &ClientFrame, timeout: Duration) -> Result<ServerFrame, RealtimeError> {
        let want = frame
            .reference()
            .map(str::to_owned)
            .ok_or_else(|| RealtimeError::Protocol("request() needs a frame with a ref (use fresh_ref)".into()))?;
        self.send(frame).await?;
        let what = format!("the reply to ref {want:?}");
        self.wait_for(&what, timeout, |f| f.reference() == Some(want.as_str())).await
    }

    /// `open`, returning the `opened` or `error` reply.
    pub async fn open(
        &mut self,
        conversation_id: &str,
        ui: Ui,
        as_guest: bool,
        timeout: Duration,
    ) -> Result<ServerFrame, RealtimeError> {
        let frame = ClientFrame::Open {
            reference: Some(self.fresh_ref()),
            conversation_id: conversation_id.into(),
            ui,
            as_guest,
        };
        self.request(&frame, timeout).await
    }

    /// `close`, returning the `closed` or `error` reply.
    pub async fn close_conversation(
        &mut self,
        conversation_id: &str,
        timeout: Duration,
    ) -> Result<ServerFrame, RealtimeError> {
        let frame = ClientFrame::Close { reference: Some(self.fresh_ref()), conversation_id: conversation_id.into() };
        self.request(&frame, timeout).await
    }

    /// `send`, returning the `ack` or `error` reply.
    pub async fn send_message(
        &mut self,
        conversation_id: &str,
        text: &str,
        idempotency_key: Option<&str>,
        timeout: Duration,
    ) -> Result<ServerFrame, RealtimeError> {
        let frame = ClientFrame::Send {
            reference: Some(self.fresh_ref()),
            conversation_id: conversation_id.into(),
            text: text.into(),
            custom: None,
            idempotency_key: idempotency_key.map(str::to_owned),
        };
        self.request(&frame, timeout).await
    }

    /// The next thing the server sends: a kept frame first, else one from the wire.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Event, RealtimeError> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(Event::Frame(f));
        }
        match tokio::time::timeout(timeout, self.read_wire()).await {
            Ok(r) => r,
            Err(_) => Err(RealtimeError::Timeout { what: "any frame".into(), after: timeout }),
        }
    }

    /// Waits for the first frame matching `pred`; other frames are kept in order.
    pub async fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&ServerFrame) -> bool,
    ) -> Result<ServerFrame, RealtimeError> {
        if let Some(i) = self.pending.iter().position(&mut pred) {
            return Ok(self.pending.remove(i).expect("index came from position()"));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let read = tokio::time::timeout_at(deadline, self.read_wire()).await;
            match read {
                Err(_) => return Err(RealtimeError::Timeout { what: what.into(), after: timeout }),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Event::Closed { code, reason })) => {
                    return Err(RealtimeError::Closed { code, reason, what: what.into() });
                }
                Ok(Ok(Event::Frame(f))) if pred(&f) => return Ok(f),
                Ok(Ok(Event::Frame(f))) => self.pending.push_back(f),
            }
        }
    }

    /// Collects every frame matching `pred` that arrives within `window`
    /// (kept frames included); the others are kept. For negative checks, which
    /// the suite pairs with a positive control.
    pub async fn collect_for(
        &mut self,
        window: Duration,
        mut pred: impl FnMut(&ServerFrame) -> bool,
    ) -> Result<Vec<ServerFrame>, RealtimeError> {
        let mut found = Vec::new();
        let mut kept = VecDeque::new();
        for f in self.pending.drain(..) {
            if pred(&f) { found.push(f) } else { kept.push_back(f) }
        }
        self.pending = kept;
        let deadline = tokio::time::Instant::now() + window;
        loop {
            match tokio::time::timeout_at(deadline, self.read_wire()).await {
                Err(_) => return Ok(found),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Event::Closed { .. })) => return Ok(found),
                Ok(Ok(Event::Frame(f))) if pred(&f) => found.push(f),
                Ok(Ok(Event::Frame(f))) => self.pending.push_back(f),
            }
        }
    }

    /// Waits for the server to close the connection; returns its code and reason.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<(Option<u16>, String), RealtimeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.read_wire()).await {
                Err(_) => return Err(RealtimeError::Timeout { what: "the server to close".into(), after: timeout }),
                Ok(Ok(Event::Closed { code, reason })) => return Ok((code, reason)),
                Ok(Ok(Event::Frame(f))) => self.pending.push_back(f),
                Ok(Err(RealtimeError::Ws(_))) => return Ok((None, String::new())),
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Closes the WebSocket (code 1000).
    pub async fn disconnect(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Closes the WebSocket (code 1000) and waits, at most `wait`, until the
    /// server has ended the connection (its close frame came and the stream
    /// ended), so that the server has processed the close. Returns whether it did.
    pub async fn disconnect_and_wait(mut self, wait: Duration) -> bool {
        let ended = async {
            let _ = self.ws.close(None).await;
            // Bounded by `wait` below; frames still queued before the close are dropped.
            while let Some(Ok(_)) = self.ws.next().await {}
        };
        tokio::time::timeout(wait, ended).await.is_ok()
    }

    async fn read_wire(&mut self) -> Result<Event, RealtimeError> {
        if let Some((code, reason)) = &self.closed {
            return Ok(Event::Closed { code: *code, reason: reason.clone() });
        }
        loop {
            let msg = match self.ws.next().await {
                None => return Ok(self.mark_closed(None, String::new())),
                Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) => {
                    return Ok(self.mark_closed(None, String::new()));
                }
                Some(Err(tungstenite::Error::Protocol(_) | tungstenite::Error::Io(_))) if self.closed.is_none() => {
                    return Ok(self.mark_closed(None, String::new()));
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(m)) => m,
            };
            match msg {
                Message::Text(t) => {
                    return serde_json::from_str::<ServerFrame>(t.as_str())
                        .map(Event::Frame)
                        .map_err(|e| RealtimeError::Protocol(format!("{e}: {}", t.as_str())));
                }
                Message::Close(c) => {
                    let (code, reason) = c.map(|c| (Some(u16::from(c.code)), c.reason.to_string())).unwrap_or_default();
                    return Ok(self.mark_closed(code, reason));
                }
                Message::Binary(_) => return Err(RealtimeError::Protocol("binary frame from server".into())),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }

    fn mark_closed(&mut self, code: Option<u16>, reason: String) -> Event {
        self.closed = Some((code, reason.clone()));
        Event::Closed { code, reason }
    }
}

fn ws_config(cfg: WsConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(cfg.read_buffer)
        .write_buffer_size(cfg.write_buffer)
        .max_message_size(Some(cfg.max_message))
        .max_frame_size(Some(cfg.max_message))
}

/// Opens the WebSocket, trusting the platform's roots for `wss://`; an HTTP
/// answer other than 101 becomes [`RealtimeError::Rejected`].
pub async fn connect_ws(url: &str, cfg: WsConfig) -> Result<Ws, RealtimeError> {
    connect_ws_tls(url, cfg, &Tls::platform()).await
}

/// Opens the WebSocket with explicit trust for `wss://`.
pub async fn connect_ws_tls(url: &str, cfg: WsConfig, tls: &Tls) -> Result<Ws, RealtimeError> {
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(ws_config(cfg)), true, Some(tls.ws_connector()));
    finish(connecting.await.map(|(ws, _)| ws), tls)
}

/// Opens the WebSocket over a TCP stream the caller connected (to set socket
/// options first, e.g. a small receive buffer); `wss://` does the TLS handshake on it.
pub async fn connect_ws_on(stream: TcpStream, url: &str, cfg: WsConfig, tls: &Tls) -> Result<Ws, RealtimeError> {
    let connecting =
        tokio_tungstenite::client_async_tls_with_config(url, stream, Some(ws_config(cfg)), Some(tls.ws_connector()));
    finish(connecting.await.map(|(ws, _)| ws), tls)
}

fn finish(result: Result<Ws, tungstenite::Error>, tls: &Tls) -> Result<Ws, RealtimeError> {
    match result {
        Ok(ws) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => Err(RealtimeError::Rejected { status: resp.status().as_u16() }),
        Err(e) => match super::tls::describe(&e, tls) {
            Some(why) => Err(RealtimeError::Tls(why)),
            None => Err(e.into()),
        },
    }
}
