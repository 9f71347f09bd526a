//! A typed async client for any server that speaks the protocol: [`Rest`] for
//! the REST API and [`Realtime`] for one WebSocket connection. It reports what
//! the server said (status, error code, frame) and never retries or hides a
//! failure, because its callers (the suite and the load generator) are judging
//! the server. Both halves reach `http(s)://` and `ws(s)://` targets; [`Tls`]
//! says which certificate authorities they trust.

mod realtime;
mod rest;
mod tls;

pub use realtime::{Event, Realtime, RealtimeError, Ws, WsConfig, connect_ws, connect_ws_on, connect_ws_tls};
pub use rest::{ApiError, Rest};
pub use tls::{Tls, TlsError};
