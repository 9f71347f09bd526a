//! Test-only fault switches: `--violate <rule>` makes the server break one rule
//! of SPEC.md on purpose, so the conformance suite can prove that it notices.
//! Never turn one on in production; the server logs a warning for each.

use std::fmt;
use std::str::FromStr;

/// One rule the server can be told to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Violation {
    /// Guests get `notification.triggered` webhooks like participants.
    GuestNotified,
    /// Guests who have a conversation open count toward its participant limit.
    GuestCountsTowardParticipantLimit,
    /// A guest's typing is broadcast.
    GuestTypingShown,
    /// Conversations a user opened as a guest show up in their user-conversations list.
    GuestInUserConversations,
    /// A guest may open a conversation with `ui: inbox`.
    GuestInboxAllowed,
    /// Guests show up in the member list (`opened.participants`, GET conversation, participant events).
    GuestInMemberList,
    /// The guest limit is not enforced.
    GuestLimitOff,
    /// The participant limit is not enforced.
    ParticipantLimitOff,
    /// REST accepts a UserMessage whose sender is not a participant (a guest).
    GuestRestSender,
}

impl Violation {
    /// Every violation, in the order the README's table lists them.
    pub const ALL: [Violation; 9] = [
        Violation::GuestNotified,
        Violation::GuestCountsTowardParticipantLimit,
        Violation::GuestTypingShown,
        Violation::GuestInUserConversations,
        Violation::GuestInboxAllowed,
        Violation::GuestInMemberList,
        Violation::GuestLimitOff,
        Violation::ParticipantLimitOff,
        Violation::GuestRestSender,
    ];

    /// The flag spelling, e.g. `guest-notified`.
    pub fn as_str(self) -> &'static str {
        match self {
            Violation::GuestNotified => "guest-notified",
            Violation::GuestCountsTowardParticipantLimit => "guest-counts-toward-participant-limit",
            Violation::GuestTypingShown => "guest-typing-shown",
            Violation::GuestInUserConversations => "guest-in-user-conversations",
            Violation::GuestInboxAllowed => "guest-inbox-allowed",
            Violation::GuestInMemberList => "guest-in-member-list",
            Violation::GuestLimitOff => "guest-limit-off",
            Violation::ParticipantLimitOff => "participant-limit-off",
            Violation::GuestRestSender => "guest-rest-sender",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Violation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Violation::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
            let all: Vec<_> = Violation::ALL.iter().map(|v| v.as_str()).collect();
            format!("unknown violation `{s}`; one of: {}", all.join(", "))
        })
    }
}

/// The set of violations in force; empty in every real deployment.
#[derive(Debug, Clone, Default)]
pub struct Violations(Vec<Violation>);

impl Violations {
    pub fn new(list: Vec<Violation>) -> Violations {
        Violations(list)
    }

    /// Whether the server should break `v`.
    pub fn has(&self, v: Violation) -> bool {
        self.0.contains(&v)
    }

    pub fn iter(&self) -> impl Iterator<Item = Violation> + '_ {
        self.0.iter().copied()
    }
}
