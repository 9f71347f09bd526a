//! Request extractors that apply the protocol's validation order: path ids
//! ([`Ids`], the id rule, 400 `invalid_id`) before the body ([`Body`] for an
//! object, [`Batch`] for an array: 413 `payload_too_large`, 400
//! `invalid_json` for text that is not JSON, 400 `invalid_request` for JSON
//! of the wrong shape), and [`ListQuery`] for `limit`/`startingAfter`.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::limits::{DEFAULT_PAGE, MAX_BODY_BYTES, MAX_PAGE, is_valid_id};

/// The ids in the path after the app id, percent-decoded and checked against the id rule.
pub struct Ids(pub Vec<String>);

impl<S: Send + Sync> FromRequestParts<S> for Ids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::new(ErrorCode::InvalidId, "the path could not be read"))?;
        let mut ids = Vec::new();
        for (name, value) in raw.iter() {
            if name == "app_id" {
                continue;
            }
            let decoded = percent_decode(value)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidId, format!("{name} is not valid UTF-8")))?;
            check_id(name, &decoded)?;
            ids.push(decoded);
        }
        Ok(Ids(ids))
    }
}

/// 400 `invalid_id` unless `id` follows the id rule.
pub fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidId,
            format!("{what} must be 1 to 255 bytes with no `/` and no control characters"),
        ))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A JSON object body, read whole (up to 1 MiB) and parsed into `T`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let value = read_json(req).await?;
        if !value.is_object() {
            return Err(wrong_shape("the body must be a JSON object"));
        }
        typed(value).map(Body)
    }
}

/// A JSON array body of objects (a message batch), parsed into `Vec<T>`.
pub struct Batch<T>(pub Vec<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Batch<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let value = read_json(req).await?;
        match value.as_array() {
            Some(items) if items.iter().all(|i| i.is_object()) => typed(value).map(Batch),
            Some(_) => Err(wrong_shape("every item of the batch must be a JSON object")),
            None => Err(wrong_shape("the body must be a JSON array")),
        }
    }
}

fn wrong_shape(why: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, why)
}

/// Reads the body: 413 `payload_too_large` over 1 MiB, 400 `invalid_json` unless it is JSON.
/// Syntax is checked on the whole text before any shape, so broken JSON is
/// always `invalid_json`, whatever field came before the break.
async fn read_json(req: Request) -> Result<serde_json::Value, ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::new(ErrorCode::PayloadTooLarge, format!("the body is over {MAX_BODY_BYTES} bytes")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("the body is not JSON: {e}")))
}

/// Converts parsed JSON into `T`: 400 `invalid_request` when the shape is wrong.
fn typed<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| wrong_shape(&format!("the body has the wrong shape: {e}")))
}

/// `?limit=&startingAfter=` of a list endpoint, validated.
pub struct ListQuery {
    pub limit: usize,
    pub starting_after: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut limit = DEFAULT_PAGE;
        let mut starting_after = None;
        for (k, v) in url_pairs(parts.uri.query().unwrap_or("")) {
            match k.as_str() {
                "limit" => {
                    limit = v.parse::<usize>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidRequest,
                            format!("limit must be an integer from 1 to {MAX_PAGE}"),
                        )
                    })?
                }
                "startingAfter" => starting_after = Some(v),
                _ => {}
            }
        }
        Ok(ListQuery { limit, starting_after })
    }
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| percent_decode(&s.replace('+', " ")).unwrap_or_else(|| s.to_string());
            (dec(k), dec(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%E2%9C%93").as_deref(), Some("✓"));
        assert_eq!(percent_decode("%FF"), None);
        assert_eq!(percent_decode("bad%2"), Some("bad%2".into()));
    }
}
