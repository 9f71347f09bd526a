//! Sizes, plans and the id rule (SPEC.md, "Limits"). Both the server, which
//! enforces them, and the suite, which probes their edges, read them here.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest message text, in Unicode scalar values (characters).
pub const MAX_TEXT_CHARS: usize = 20_000;
/// Largest realtime frame payload, in bytes; exactly this size is allowed.
pub const MAX_FRAME_BYTES: usize = 65_536;
/// Largest REST request body, in bytes.
pub const MAX_BODY_BYTES: usize = 1_048_576;
/// Longest id (user, conversation, app), in bytes.
pub const MAX_ID_BYTES: usize = 255;
/// Most messages in one `POST .../messages` batch.
pub const MAX_BATCH: usize = 10;
/// Most entries in a `custom` map.
pub const MAX_CUSTOM_KEYS: usize = 50;
/// Longest `custom` key, in bytes.
pub const MAX_CUSTOM_KEY_BYTES: usize = 255;
/// Longest `custom` value, in bytes.
pub const MAX_CUSTOM_VALUE_BYTES: usize = 4_096;
/// Longest `idempotencyKey`, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;
/// Longest `ref` on a realtime frame, in bytes.
pub const MAX_REF_BYTES: usize = 255;
/// Default page size of a list.
pub const DEFAULT_PAGE: usize = 30;
/// Largest page size of a list.
pub const MAX_PAGE: usize = 100;
/// Most participants one `PUT conversation` may list.
pub const MAX_PARTICIPANTS_PER_PUT: usize = 1_000;

/// The id rule: 1 to 255 bytes, no `/`, no control characters.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES && !id.chars().any(|c| c == '/' || c.is_control())
}

/// A pricing plan: how many participants and concurrent guests a conversation admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// 100 participants, 300 concurrent guests per conversation.
    Basic,
    /// 300 participants, 1,250 concurrent guests per conversation.
    Growth,
}

impl Plan {
    /// Participants one conversation may have.
    pub fn participant_limit(self) -> u32 {
        match self {
            Plan::Basic => 100,
            Plan::Growth => 300,
        }
    }

    /// Distinct guest users that may have one conversation open at once.
    pub fn guest_limit(self) -> u32 {
        match self {
            Plan::Basic => 300,
            Plan::Growth => 1_250,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Basic => "basic",
            Plan::Growth => "growth",
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "basic" => Ok(Plan::Basic),
            "growth" => Ok(Plan::Growth),
            other => Err(format!("unknown plan `{other}` (expected basic or growth)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rule_edges() {
        assert!(is_valid_id("a"));
        assert!(is_valid_id(&"x".repeat(255)));
        assert!(!is_valid_id(&"x".repeat(256)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("a\nb"));
        assert!(is_valid_id("ünïcode-ok"));
    }
}
