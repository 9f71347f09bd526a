//! # supergroup-conformance
//!
//! The conformance suite of the Super Group Chat protocol: Gherkin scenarios
//! (`scenarios/*.feature`, one file per area of SPEC.md), each tagged with
//! the requirement ids it checks, run with cucumber against any server that
//! speaks the protocol. It talks to the server only through the public
//! protocol: REST, realtime WebSocket, and its own webhook receiver.
//!
//! # Layout
//! - [`run`]: one run: target, plan, webhook registration, cucumber, reports.
//! - [`world`]: what a scenario knows (ids, connections, last replies).
//! - [`steps`]: step definitions, one file per domain concept.
//! - [`webhook_receiver`]: the HTTP endpoint that collects and verifies webhooks.
//! - [`recorder`]: a cucumber writer that keeps each scenario's result.
//! - [`report`]: the requirement matrix, verdict, `report.md` and `report.html`.
//! - [`requirements`]: SPEC.md's requirement lines.
//! - [`embedded`]: SPEC.md and the scenarios compiled into the binary.
//! - [`expectations`]: known failures (`--expect-fail FILE`).
//! - [`glossary`]: the step glossary, features/STEPS.md, generated from the step definitions.
//! - [`violations`]: which requirements each reference-server fault must break.

pub mod embedded;
pub mod expectations;
pub mod glossary;
pub mod recorder;
pub mod report;
pub mod requirements;
pub mod run;
pub mod steps;
pub mod violations;
pub mod webhook_receiver;
pub mod world;

pub use run::{Options, Outcome, run};
