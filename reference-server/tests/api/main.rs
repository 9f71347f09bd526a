//! Integration tests of the reference server: each test starts a real server
//! on `127.0.0.1:0` (its own, in memory unless it tests durability) and drives
//! it over real sockets with the protocol crate's REST and WebSocket clients.
//! Test names say the rule; the SPEC.md requirement IDs are in the names or
//! the comments. One binary (`tests/api`) so it links once.
//!
//! Run: `cargo test -p supergroup-server --test api`. Mutation check: `SG_TEST_VIOLATE=<rule>`
//! (a `--violate` spelling) makes every server break that rule, and the
//! rule's test must then fail.

mod auth;
mod bad_frames;
mod bad_input;
mod budgets;
mod changes;
mod durability;
mod edges;
mod guests;
mod health;
mod helpers;
mod idempotency;
mod limits;
mod observe;
mod openapi;
mod paging;
mod path_ids;
mod realtime;
mod receivers;
mod rest_api;
mod rosters;
mod send_path;
mod shutdown_drain;
mod single_process;
mod transport;
mod typing;
mod user_conversations;
mod webhook_safety;
mod webhooks;
