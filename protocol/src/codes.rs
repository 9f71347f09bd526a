//! Error codes: the `code` of an `{"error":{"code","message"}}` body and of a
//! realtime `error` frame. One enum, so the server cannot invent a code that
//! SPEC.md does not list, and the suite can name the code it expects.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every error code the protocol defines (SPEC.md, "Error codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: missing or wrong app secret, unknown app.
    Unauthorized,
    /// 400: the body is not JSON.
    InvalidJson,
    /// 400: JSON of the wrong shape or type, or a bad query parameter.
    InvalidRequest,
    /// 400: an id in the path or body breaks the id rule.
    InvalidId,
    /// 400: a custom field breaks its limits.
    InvalidCustom,
    /// 400: a message text is over the length limit.
    MessageTooLong,
    /// 400: a message batch has more than 10 items.
    TooManyMessages,
    /// 400: a UserMessage sender is not a ReadWrite participant.
    SenderNotParticipant,
    /// 400: the webhook URL is not an absolute http(s) URL.
    InvalidWebhookUrl,
    /// 404
    UserNotFound,
    /// 404
    ConversationNotFound,
    /// 404: DELETE/PATCH of a participant who is not one.
    ParticipantNotFound,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409
    ParticipantLimitReached,
    /// 408: the request body did not arrive in the server's time limit.
    RequestTimeout,
    /// 413: the request body is over the size limit.
    PayloadTooLarge,
    /// realtime: bad JSON, unknown type, wrong shape, binary frame.
    InvalidFrame,
    /// realtime: not a participant and `asGuest` false.
    NotAParticipant,
    /// realtime: a guest asked for the inbox UI.
    GuestInboxNotAllowed,
    /// realtime: the conversation does not admit guests.
    GuestAccessDisabled,
    /// realtime: the conversation already has its limit of guests open.
    GuestLimitReached,
    /// realtime: the connection does not have the conversation open.
    NotOpen,
    /// realtime: the participant has `Read` access.
    ReadOnly,
    /// realtime: `send` frames came faster than the connection's token bucket allows.
    RateLimited,
    /// realtime: the connection already has its limit of conversations open.
    TooManyOpen,
    /// 429: the user already holds the server's limit of realtime connections.
    TooManyConnections,
    /// 503: the server holds its limit of connections; retry later.
    ServerBusy,
    /// 500: the server failed; nothing was changed.
    Internal,
}

impl ErrorCode {
    /// The wire spelling, e.g. `guest_limit_reached`.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Unauthorized => "unauthorized",
            InvalidJson => "invalid_json",
            InvalidRequest => "invalid_request",
            InvalidId => "invalid_id",
            InvalidCustom => "invalid_custom",
            MessageTooLong => "message_too_long",
            TooManyMessages => "too_many_messages",
            SenderNotParticipant => "sender_not_participant",
            InvalidWebhookUrl => "invalid_webhook_url",
            UserNotFound => "user_not_found",
            ConversationNotFound => "conversation_not_found",
            ParticipantNotFound => "participant_not_found",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            ParticipantLimitReached => "participant_limit_reached",
            RequestTimeout => "request_timeout",
            PayloadTooLarge => "payload_too_large",
            InvalidFrame => "invalid_frame",
            NotAParticipant => "not_a_participant",
            GuestInboxNotAllowed => "guest_inbox_not_allowed",
            GuestAccessDisabled => "guest_access_disabled",
            GuestLimitReached => "guest_limit_reached",
            NotOpen => "not_open",
            ReadOnly => "read_only",
            RateLimited => "rate_limited",
            TooManyOpen => "too_many_open",
            TooManyConnections => "too_many_connections",
            ServerBusy => "server_busy",
            Internal => "internal",
        }
    }

    /// The HTTP status a REST response with this code carries.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            Unauthorized => 401,
            UserNotFound | ConversationNotFound | ParticipantNotFound | NotFound => 404,
            MethodNotAllowed => 405,
            ParticipantLimitReached => 409,
            RequestTimeout => 408,
            PayloadTooLarge => 413,
            TooManyConnections => 429,
            Internal => 500,
            ServerBusy => 503,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
