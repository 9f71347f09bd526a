//! Realtime client frames: any bytes a client can send as a text frame go
//! through the server's parser (`parse_client_frame`), and a `send` frame's
//! content through the same field checks as the server's send path. Nothing
//! may panic; a refusal must carry a message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supergroup_protocol::frames::{ClientFrame, parse_client_frame};
use supergroup_protocol::rest::MessageType;
use supergroup_server::messaging::Draft;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_client_frame(text) {
        Ok((reference, frame)) => {
            assert!(reference.as_ref().is_none_or(|r| r.len() <= 255));
            if let ClientFrame::Send { text, custom, idempotency_key, .. } = frame {
                let draft = Draft {
                    sender: Some("fuzzer".into()),
                    kind: MessageType::UserMessage,
                    text,
                    custom: custom.unwrap_or_default(),
                    idempotency_key,
                };
                let _ = draft.check();
            }
        }
        Err(refused) => assert!(!refused.message.is_empty()),
    }
});
