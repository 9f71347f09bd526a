//! Which requirements each fault switch of the reference server
//! (`--violate`) breaks: the suite must fail on scenarios tagged with them.
//! The violation test in `tests/conformance.rs` checks every line of this table.

use supergroup_server::Violation;

/// The requirement ids a violation must make fail.
pub fn expected_failures(v: Violation) -> &'static [&'static str] {
    match v {
        Violation::GuestNotified => &["SG-GUEST-1"],
        Violation::GuestCountsTowardParticipantLimit => &["SG-GUEST-2"],
        Violation::GuestTypingShown => &["SG-GUEST-3"],
        Violation::GuestInUserConversations => &["SG-GUEST-5"],
        Violation::GuestInboxAllowed => &["SG-GUEST-6"],
        Violation::GuestInMemberList => &["SG-GUEST-7"],
        Violation::GuestLimitOff => &["SG-GLIMIT-1"],
        Violation::ParticipantLimitOff => &["SG-PART-6"],
        Violation::GuestRestSender => &["SG-GUEST-14"],
    }
}
