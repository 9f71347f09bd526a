//! Step definitions, one file per domain concept. Steps speak in scenario
//! names ("alice", "lobby"); [`crate::world::SgWorld`] maps them to ids.
//! Every step that waits on the network is bounded by the suite's wait and
//! fails with a message saying what it expected and what it received.
//! Negative checks ("does not see", "is not notified") run after a positive
//! control in the same scenario and then watch a short [`GRACE`] window, so a
//! late event is still caught and a silent server cannot pass.

pub mod auth;
pub mod bad_input;
pub mod connections;
pub mod conversations;
pub mod limits;
pub mod messages;
pub mod notifications;
pub mod realtime;
pub mod typing;
pub mod users;

use std::time::Duration;
use supergroup_protocol::frames::{ServerFrame, Ui};

/// How long a negative check keeps watching after its positive control arrived.
pub const GRACE: Duration = Duration::from_millis(300);

/// "alice, bob and carol" -> ["alice", "bob", "carol"]; "nobody" -> [].
pub fn names(list: &str) -> Vec<String> {
    if list.trim() == "nobody" {
        return Vec::new();
    }
    list.replace(" and ", ",").split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// "chatbox" / "popup" / "inbox"; empty means the default (chatbox).
pub fn ui(word: &str) -> Ui {
    match word {
        "popup" => Ui::Popup,
        "inbox" => Ui::Inbox,
        _ => Ui::Chatbox,
    }
}

/// A frame, briefly, for failure messages.
pub fn describe(frame: &ServerFrame) -> String {
    match frame {
        ServerFrame::Error { code, message, .. } => format!("error {code} ({message})"),
        ServerFrame::Opened { role, participants, .. } => {
            format!("opened as {role:?} with participants {participants:?}")
        }
        ServerFrame::Message { message } => format!("message {:?} from {:?}", message.text, message.sender_id),
        other => serde_json::to_string(other).unwrap_or_else(|_| format!("{other:?}")),
    }
}

/// Sorted copy, for comparing member lists.
pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
