//! Webhooks (SPEC.md, "Webhooks"): the event envelope, the data of each event,
//! and the signature `hex(HMAC-SHA256(secret, timestamp + "." + body))`.

use crate::frames::Role;
use crate::rest::Message;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Header carrying the Unix-seconds timestamp that was signed.
pub const TIMESTAMP_HEADER: &str = "X-Supergroup-Timestamp";
/// Header carrying the lowercase hex signature.
pub const SIGNATURE_HEADER: &str = "X-Supergroup-Signature";
/// `message.sent`
pub const MESSAGE_SENT: &str = "message.sent";
/// `notification.triggered`
pub const NOTIFICATION_TRIGGERED: &str = "notification.triggered";
/// Every event type the protocol defines.
pub const EVENT_TYPES: [&str; 2] = [MESSAGE_SENT, NOTIFICATION_TRIGGERED];

/// `{"type","createdAt","data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: i64,
    pub data: T,
}

/// `{"id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    pub id: String,
}

/// `data.sender` of `message.sent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub id: String,
    pub role: Role,
}

/// `data` of `message.sent`. `sender` is `null` for a SystemMessage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageSent {
    pub message: Message,
    pub conversation: IdRef,
    pub sender: Option<Sender>,
}

/// `data` of `notification.triggered`; `messages` oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationTriggered {
    pub recipient: IdRef,
    pub conversation: IdRef,
    pub messages: Vec<Message>,
}

/// `hex(HMAC-SHA256(secret, timestamp + "." + body))`, lowercase.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` is the signature of `body` at `timestamp`, compared in constant time.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // HMAC-SHA256("key", "1.{}"), computed with Python's hmac module.
        let s = sign("key", "1", b"{}");
        assert_eq!(s, "1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224");
        assert!(verify("key", "1", b"{}", &s));
        assert!(!verify("key", "2", b"{}", &s));
        assert!(!verify("other", "1", b"{}", &s));
    }
}
