//! REST request bodies: any bytes (the server reads at most 1 MiB) through
//! the server's own body parsers and field checks, for every body the API
//! takes. Nothing may panic; a refusal is one of the codes SPEC.md lists for
//! the body and field-rule steps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::rest::{ConversationUpsert, NewMessage, ParticipantUpsert, UserUpsert, WebhookRegistration};
use supergroup_server::error::ApiError;
use supergroup_server::extract::{parse_batch, parse_object};
use supergroup_server::messaging::Draft;
use supergroup_server::validate;

fn allowed(e: &ApiError) {
    use ErrorCode::*;
    assert!(
        matches!(
            e.code,
            InvalidJson
                | InvalidRequest
                | TooManyMessages
                | InvalidId
                | InvalidCustom
                | MessageTooLong
                | InvalidWebhookUrl
        ),
        "unexpected {e:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    match parse_batch::<NewMessage>(data) {
        Ok(batch) => {
            assert!((1..=10).contains(&batch.len()));
            for m in batch {
                if let Err(e) = Draft::from_rest(m).check() {
                    allowed(&e);
                }
            }
        }
        Err(e) => allowed(&e),
    }
    match parse_object::<UserUpsert>(data) {
        Ok(u) => {
            if let Some(c) = &u.custom {
                let _ = validate::custom(c).map_err(|e| allowed(&e));
            }
        }
        Err(e) => allowed(&e),
    }
    match parse_object::<ConversationUpsert>(data) {
        Ok(c) => {
            if let Some(c) = &c.custom {
                let _ = validate::custom(c).map_err(|e| allowed(&e));
            }
        }
        Err(e) => allowed(&e),
    }
    if let Err(e) = parse_object::<ParticipantUpsert>(data) {
        allowed(&e);
    }
    match parse_object::<WebhookRegistration>(data) {
        Ok(reg) => {
            let _ = validate::webhook_url(&reg.url).map_err(|e| allowed(&e));
        }
        Err(e) => allowed(&e),
    }
});
