//! A typed async client for any server that speaks the protocol: [`Rest`] for
//! the REST API and [`Realtime`] for one WebSocket connection. It reports what
//! the server said (status, error code, frame) and never retries or hides a
//! failure, because its callers (the suite and the load generator) are judging
//! the server.

mod realtime;
mod rest;

pub use realtime::{Event, Realtime, RealtimeError, Ws, WsConfig, connect_ws};
pub use rest::{ApiError, Rest};
