//! REST bodies under `/v1/{appId}` (SPEC.md, "REST"). Field names are the
//! wire names (camelCase); `Option` fields that a request may leave out are
//! skipped when serialized, so the client sends only what the caller set.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// A `custom` map: string keys to string values.
pub type Custom = BTreeMap<String, String>;

/// `GET /v1/{appId}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub id: String,
    pub plan: String,
    pub participant_limit: u32,
    pub guest_limit: u32,
    pub guest_access: bool,
    pub notification_delay_ms: u64,
}

/// `PUT /v1/{appId}/users/{userId}`: creates or merges. An absent field is left
/// as it is; `email: null` / `phone: null` clear the field.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserUpsert {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub email: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub phone: Option<Option<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Custom>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A user as `GET /v1/{appId}/users/{userId}` returns it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<Vec<String>>,
    pub phone: Option<Vec<String>>,
    pub role: Option<String>,
    pub custom: Custom,
    pub created_at: i64,
}

/// `PUT /v1/{appId}/conversations/{conversationId}`: creates or merges.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversationUpsert {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Custom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_access: Option<bool>,
}

/// A conversation as `GET /v1/{appId}/conversations/{id}` returns it. Guests
/// never appear in `participants`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: String,
    pub subject: Option<String>,
    pub custom: Custom,
    pub guest_access: bool,
    pub created_at: i64,
    pub last_message: Option<Message>,
    pub participants: BTreeMap<String, ParticipantSettings>,
}

/// One entry of `GET /v1/{appId}/users/{userId}/conversations`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserConversation {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub is_unread: bool,
    pub unread_count: u64,
}

/// A participant's access.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    ReadWrite,
    Read,
}

/// A participant's notification setting: `true`, `false` or `"MentionsOnly"`.
/// Its serde is written by hand, and so is its schema (`openapi` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    On,
    Off,
    MentionsOnly,
}

impl Serialize for Notify {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Notify::On => s.serialize_bool(true),
            Notify::Off => s.serialize_bool(false),
            Notify::MentionsOnly => s.serialize_str("MentionsOnly"),
        }
    }
}

impl<'de> Deserialize<'de> for Notify {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Bool(bool),
            Str(String),
        }
        match Wire::deserialize(d)? {
            Wire::Bool(true) => Ok(Notify::On),
            Wire::Bool(false) => Ok(Notify::Off),
            Wire::Str(s) if s == "MentionsOnly" => Ok(Notify::MentionsOnly),
            Wire::Str(s) => {
                Err(serde::de::Error::custom(format!("notify must be true, false or \"MentionsOnly\", not \"{s}\"")))
            }
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Notify {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["MentionsOnly"])))
            .description(Some("`true` (every message), `false` (none) or `\"MentionsOnly\"`"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Notify {}

/// A participant's settings.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantSettings {
    pub access: Access,
    pub notify: Notify,
}

impl Default for ParticipantSettings {
    fn default() -> Self {
        ParticipantSettings { access: Access::ReadWrite, notify: Notify::On }
    }
}

/// `PUT` / `PATCH /v1/{appId}/conversations/{cid}/participants/{userId}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParticipantUpsert {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
}

/// One item of a `POST .../messages` batch.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum NewMessage {
    UserMessage {
        sender: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom: Option<Custom>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        // utoipa does not read serde's `rename_all_fields`.
        #[cfg_attr(feature = "openapi", schema(rename = "idempotencyKey"))]
        idempotency_key: Option<String>,
    },
    SystemMessage {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        custom: Option<Custom>,
    },
}

/// One item of the `POST .../messages` response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageCreated {
    pub id: String,
}

/// `UserMessage` or `SystemMessage`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageType {
    UserMessage,
    SystemMessage,
}

/// Where a message came in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Rest,
    Realtime,
}

/// A stored message, as history, realtime `message` frames and webhooks carry it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    pub sender_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: MessageType,
    pub text: String,
    pub custom: Custom,
    pub created_at: i64,
    pub origin: Origin,
}

/// A list response: `{"data": [...]}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
}

/// Query of a list endpoint.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_after: Option<String>,
}

/// `PUT /v1/{appId}/webhooks`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookRegistration {
    /// An absolute `http` or `https` URL.
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
}

/// The body of every error response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `{"code","message"}` inside [`ErrorBody`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_round_trips_its_three_spellings() {
        for (json, v) in [("true", Notify::On), ("false", Notify::Off), ("\"MentionsOnly\"", Notify::MentionsOnly)] {
            assert_eq!(serde_json::from_str::<Notify>(json).unwrap(), v);
            assert_eq!(serde_json::to_string(&v).unwrap(), json);
        }
        assert!(serde_json::from_str::<Notify>("\"Sometimes\"").is_err());
    }

    #[test]
    fn user_upsert_tells_null_from_absent() {
        let u: UserUpsert = serde_json::from_str(r#"{"email":null}"#).unwrap();
        assert_eq!(u.email, Some(None));
        assert_eq!(u.phone, None);
    }

    #[test]
    fn new_message_is_tagged_by_type() {
        let m: NewMessage =
            serde_json::from_str(r#"{"type":"UserMessage","sender":"u","text":"hi","idempotencyKey":"k"}"#).unwrap();
        assert!(matches!(m, NewMessage::UserMessage { idempotency_key: Some(ref k), .. } if k == "k"));
    }
}
