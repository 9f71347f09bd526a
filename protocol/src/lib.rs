//! # supergroup-protocol
//!
//! The Super Group Chat protocol as Rust types, plus a typed async client for
//! it. The reference server, the conformance suite and the load generator all
//! speak the protocol through this crate, so a change to the wire format is a
//! change in exactly one place. SPEC.md is the normative text; these types
//! follow it field for field.
//!
//! # Layout
//! - [`codes`]: every error code of the protocol (`{"error":{"code"}}` bodies and error frames).
//! - [`limits`]: sizes, plans and the id rule.
//! - [`rest`]: REST request and response bodies.
//! - [`frames`]: realtime frames, client to server and server to client.
//! - [`webhook`]: webhook envelopes and the HMAC-SHA256 signature.
//! - [`token`]: the HS256 user token that authenticates a realtime connection.
//! - [`client`]: a typed REST client and a realtime (WebSocket) client.

pub mod client;
pub mod codes;
pub mod frames;
pub mod limits;
pub mod rest;
pub mod token;
pub mod webhook;

pub use codes::ErrorCode;
