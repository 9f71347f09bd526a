//! Step definitions, one file per domain concept. Steps speak in scenario
//! names ("alice", "lobby"); [`crate::world::SgWorld`] maps them to ids.
//! Every step that waits on the network is bounded by the suite's wait and
//! fails with a message saying what it expected and what it received.
