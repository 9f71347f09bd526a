//! Realtime frames (SPEC.md, "Realtime"). Every frame is a JSON text frame
//! with a `type`; a client frame may carry a `ref` string that the reply echoes.

use crate::rest::{Custom, Message};
use serde::{Deserialize, Serialize};

/// Where the client shows the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ui {
    #[default]
    Chatbox,
    Popup,
    Inbox,
}

/// The role a connection holds in a conversation it has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Participant,
    Guest,
}

/// Client to server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum ClientFrame {
    Open {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
        #[serde(default)]
        ui: Ui,
        #[serde(default)]
        as_guest: bool,
    },
    Close {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
    },
    Send {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom: Option<Custom>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    Typing {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
        is_typing: bool,
    },
    Read {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
    },
}

/// Why a client text frame was refused (`invalid_frame`), with the `ref` to
/// answer it under when one could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRefused {
    pub reference: Option<String>,
    pub message: String,
}

/// Parses one client text frame the way SG-RT rules order it: JSON syntax,
/// then a JSON object, then `ref` (a string of at most 255 bytes, or absent
/// or null), then the frame's type and fields. A pure function: the server's
/// handler and the fuzz targets call the same code.
pub fn parse_client_frame(text: &str) -> Result<(Option<String>, ClientFrame), FrameRefused> {
    use crate::limits::MAX_REF_BYTES;
    let refused = |reference: Option<String>, message: String| FrameRefused { reference, message };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| refused(None, format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(refused(None, "a frame is a JSON object".into()));
    }
    let reference = match value.get("ref") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(r)) if r.len() <= MAX_REF_BYTES => Some(r.clone()),
        Some(_) => return Err(refused(None, format!("ref must be a string of at most {MAX_REF_BYTES} bytes"))),
    };
    match serde_json::from_value(value) {
        Ok(frame) => Ok((reference, frame)),
        Err(e) => Err(refused(reference, e.to_string())),
    }
}

impl ClientFrame {
    /// The frame's `ref`, if it carries one.
    pub fn reference(&self) -> Option<&str> {
        match self {
            ClientFrame::Open { reference, .. }
            | ClientFrame::Close { reference, .. }
            | ClientFrame::Send { reference, .. }
            | ClientFrame::Typing { reference, .. }
            | ClientFrame::Read { reference, .. } => reference.as_deref(),
        }
    }
}

/// Server to client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase")]
pub enum ServerFrame {
    #[serde(rename = "opened")]
    Opened {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
        role: Role,
        participants: Vec<String>,
    },
    #[serde(rename = "closed")]
    Closed {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        conversation_id: String,
    },
    #[serde(rename = "ack")]
    Ack {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        message_id: String,
        created_at: i64,
    },
    #[serde(rename = "message")]
    Message { message: Message },
    #[serde(rename = "typing")]
    Typing { conversation_id: String, user_id: String, is_typing: bool },
    #[serde(rename = "participant.joined")]
    ParticipantJoined { conversation_id: String, user_id: String },
    #[serde(rename = "participant.left")]
    ParticipantLeft { conversation_id: String, user_id: String },
    #[serde(rename = "error")]
    Error {
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        code: String,
        message: String,
    },
}

impl ServerFrame {
    /// The `ref` a reply echoes, if any.
    pub fn reference(&self) -> Option<&str> {
        match self {
            ServerFrame::Opened { reference, .. }
            | ServerFrame::Closed { reference, .. }
            | ServerFrame::Ack { reference, .. }
            | ServerFrame::Error { reference, .. } => reference.as_deref(),
            _ => None,
        }
    }

    /// The frame's `type`, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerFrame::Opened { .. } => "opened",
            ServerFrame::Closed { .. } => "closed",
            ServerFrame::Ack { .. } => "ack",
            ServerFrame::Message { .. } => "message",
            ServerFrame::Typing { .. } => "typing",
            ServerFrame::ParticipantJoined { .. } => "participant.joined",
            ServerFrame::ParticipantLeft { .. } => "participant.left",
            ServerFrame::Error { .. } => "error",
        }
    }
}

/// WebSocket close codes the protocol uses.
pub mod close {
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The connection fell too far behind (reason `slow consumer`).
    pub const POLICY: u16 = 1008;
    /// A frame over [`crate::limits::MAX_FRAME_BYTES`].
    pub const TOO_BIG: u16 = 1009;
    /// The close reason sent with [`POLICY`] for a slow consumer.
    pub const SLOW_CONSUMER_REASON: &str = "slow consumer";
    /// Nothing (not even a pong) came from the client for the idle timeout.
    pub const IDLE: u16 = 4000;
    /// The close reason sent with [`IDLE`].
    pub const IDLE_REASON: &str = "idle timeout";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_defaults_to_chatbox_and_not_guest() {
        let f: ClientFrame = serde_json::from_str(r#"{"type":"open","conversationId":"c"}"#).unwrap();
        assert_eq!(
            f,
            ClientFrame::Open { reference: None, conversation_id: "c".into(), ui: Ui::Chatbox, as_guest: false }
        );
    }

    #[test]
    fn server_frames_use_wire_names() {
        let f = ServerFrame::ParticipantJoined { conversation_id: "c".into(), user_id: "u".into() };
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"type":"participant.joined","conversationId":"c","userId":"u"}"#
        );
        let e = ServerFrame::Error { reference: None, code: "not_open".into(), message: "m".into() };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"type":"error","code":"not_open","message":"m"}"#);
    }
}
