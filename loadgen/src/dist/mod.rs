//! Load workers: one run spread over several processes (on one machine or many),
//! coordinated through a NATS broker and merged into one result without loss.
//!
//! - [`wire`]: the subjects and message bodies (the schema, versioned).
//! - [`broker`]: a local `nats-server` child when no broker is named.
//! - [`clock_sync`]: each worker's clock offset (NTP-style over NATS) and its error bound.
//! - [`worker`]: `supergroup-load worker`: joins, runs its share, hands in its result.
//! - [`coordinator`]: `supergroup-load --workers N`: welcomes, starts, watches and merges.

pub mod broker;
pub mod clock_sync;
pub mod coordinator;
pub mod wire;
pub mod worker;
