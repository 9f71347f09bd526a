//! Which requirements each fault switch of the reference server
//! (`--violate`) breaks: the suite must fail on scenarios tagged with them.
//! The violation test in `tests/conformance.rs` checks every line of this table.

use supergroup_server::Violation;

/// The requirement ids a violation must make fail.
pub fn expected_failures(v: Violation) -> &'static [&'static str] {
    match v {
        Violation::GuestNotified => &[],
        Violation::GuestCountsTowardParticipantLimit => &[],
        Violation::GuestTypingShown => &[],
        Violation::GuestInUserConversations => &[],
        Violation::GuestInboxAllowed => &[],
        Violation::GuestInMemberList => &[],
        Violation::GuestLimitOff => &[],
        Violation::ParticipantLimitOff => &[],
        Violation::GuestRestSender => &[],
    }
}
