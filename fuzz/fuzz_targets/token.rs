//! The realtime token check: arbitrary token text, and tokens correctly
//! signed over arbitrary claim JSON, must be accepted or refused without a
//! panic; an accepted token's claims keep the rules (app, type, id, exp).
#![no_main]

use libfuzzer_sys::fuzz_target;
use supergroup_protocol::limits::is_valid_id;
use supergroup_protocol::token::verify_at;

const NOW: u64 = 1_900_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let check = |token: &str| {
        if let Ok(claims) = verify_at(token, "app", "sk", NOW) {
            assert_eq!(claims.iss, "app");
            assert_eq!(claims.token_type, "user");
            assert!(claims.exp > NOW);
            assert!(is_valid_id(&claims.sub));
        }
    };
    check(text);
    // The same bytes as the claims of a correctly signed token.
    if let Ok(claims) = serde_json::from_str::<serde_json::Value>(text) {
        let key = jsonwebtoken::EncodingKey::from_secret(b"sk");
        if let Ok(token) = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key) {
            check(&token);
        }
    }
});
