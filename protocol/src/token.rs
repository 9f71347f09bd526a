//! The user token of a realtime connection: an HS256 JWT signed with the app
//! secret, claims `{"tokenType":"user","iss":appId,"sub":userId,"exp"}` and an
//! optional `name`.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// The claims of a user token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// Always `"user"`.
    pub token_type: String,
    /// The app id.
    pub iss: String,
    /// The user id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// A display name for a user created on connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Claims {
    /// Claims for `user_id` of `app_id`, valid for `ttl_secs` from now.
    pub fn user(app_id: &str, user_id: &str, ttl_secs: u64) -> Claims {
        Claims {
            token_type: "user".into(),
            iss: app_id.into(),
            sub: user_id.into(),
            exp: unix_now_secs() + ttl_secs,
            name: None,
        }
    }
}

/// Signs `claims` with `secret` (HS256).
pub fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("HS256 signing of a plain struct cannot fail")
}

/// A one-hour token for `user_id` of `app_id`.
pub fn user_token(app_id: &str, secret: &str, user_id: &str) -> String {
    sign(&Claims::user(app_id, user_id, 3600), secret)
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is invalid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token is for app `{0}`")]
    WrongApp(String),
    #[error("tokenType must be \"user\"")]
    WrongType,
    #[error("user id in `sub` breaks the id rule")]
    BadSubject,
    #[error("token expired at {exp}; it is now {now} (Unix seconds)")]
    Expired { exp: u64, now: u64 },
}

/// Checks signature, expiry (no leeway), `iss` and `tokenType`, at the current time.
pub fn verify(token: &str, app_id: &str, secret: &str) -> Result<Claims, TokenError> {
    verify_at(token, app_id, secret, unix_now_secs())
}

/// [`verify`] at `now` (Unix seconds). A token is valid only while
/// `exp > now`: one whose `exp` equals the current second is expired
/// (SG-AUTH-4). jsonwebtoken's own check accepts `exp == now`, so expiry is
/// checked here instead.
pub fn verify_at(token: &str, app_id: &str, secret: &str, now: u64) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "sub", "iss"]);
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)?;
    let claims = data.claims;
    if claims.exp <= now {
        return Err(TokenError::Expired { exp: claims.exp, now });
    }
    if claims.iss != app_id {
        return Err(TokenError::WrongApp(claims.iss));
    }
    if claims.token_type != "user" {
        return Err(TokenError::WrongType);
    }
    if !crate::limits::is_valid_id(&claims.sub) {
        return Err(TokenError::BadSubject);
    }
    Ok(claims)
}

fn unix_now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let t = user_token("app", "sk", "alice");
        assert_eq!(verify(&t, "app", "sk").unwrap().sub, "alice");
        assert!(verify(&t, "app", "other").is_err());
        assert!(matches!(verify(&t, "other", "sk"), Err(TokenError::WrongApp(_))));
        let mut expired = Claims::user("app", "alice", 0);
        expired.exp -= 10;
        assert!(verify(&sign(&expired, "sk"), "app", "sk").is_err());
    }

    #[test]
    fn a_token_expiring_this_second_is_expired_and_one_second_later_is_not() {
        let mut claims = Claims::user("app", "alice", 0);
        claims.exp = 1_900_000_000;
        let token = sign(&claims, "sk");
        assert!(matches!(verify_at(&token, "app", "sk", claims.exp), Err(TokenError::Expired { .. })));
        assert!(matches!(verify_at(&token, "app", "sk", claims.exp + 1), Err(TokenError::Expired { .. })));
        assert_eq!(verify_at(&token, "app", "sk", claims.exp - 1).unwrap().sub, "alice");
    }
}
