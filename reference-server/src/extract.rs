//! Request extractors that apply the protocol's validation order: path ids
//! ([`Ids`], the id rule, 400 `invalid_id`) before the body ([`Body`] for an
//! object, [`Batch`] for an array: 408 `request_timeout` for a body that
//! does not arrive within `--http-body-timeout`, 413 `payload_too_large`, 400
//! `invalid_json` for text that is not JSON, 400 `invalid_request` for JSON
//! of the wrong shape, then 400 `too_many_messages` for a well-formed batch
//! over 10 items),
//! and [`ListQuery`] for `limit`/`startingAfter`. The body parsers
//! ([`parse_object`], [`parse_batch`]) are pure functions so the fuzz targets
//! can drive them.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::limits::{DEFAULT_PAGE, MAX_BATCH, MAX_BODY_BYTES, MAX_PAGE, is_valid_id};

/// The ids in the path after the app id, checked against the id rule.
///
/// axum's router has already percent-decoded each segment exactly once
/// (SG-ID-3): `50%2541` arrives here as `50%41`, and must not be decoded
/// again. A segment whose decoded bytes are not UTF-8 (`%FF`) is refused by
/// axum's extractor, which this maps to 400 `invalid_id`.
pub struct Ids(pub Vec<String>);

impl<S: Send + Sync> FromRequestParts<S> for Ids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidId, format!("an id in the path is not UTF-8: {e}")))?;
        let mut ids = Vec::new();
        for (name, value) in raw.iter() {
            if name == "app_id" {
                continue;
            }
            check_id(name, value)?;
            ids.push(value.to_string());
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

/// Decodes one `%XX`-encoded query component; `None` when the bytes are not UTF-8.
/// Only for the query string: axum leaves it raw, unlike path segments.
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

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        parse_object(&read_body(req, state).await?).map(Body)
    }
}

/// A JSON array body of objects (a message batch), parsed into `Vec<T>`:
/// at most [`MAX_BATCH`] items, counted before any item is parsed.
pub struct Batch<T>(pub Vec<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for Batch<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        parse_batch(&read_body(req, state).await?).map(Batch)
    }
}

fn wrong_shape(why: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, why)
}

/// Reads the body: 413 `payload_too_large` over 1 MiB (the limit applies
/// while reading, so no more than 1 MiB is ever buffered), 408
/// `request_timeout` when it has not all arrived within `--http-body-timeout`,
/// 400 `invalid_request` when the client broke off sending it.
async fn read_body(req: Request, state: &AppState) -> Result<bytes::Bytes, ApiError> {
    let limit = state.config.transport.body_timeout;
    match tokio::time::timeout(limit, axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if is_length_limit(&e) => {
            Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("the body is over {MAX_BODY_BYTES} bytes")))
        }
        Ok(Err(_)) => Err(ApiError::new(ErrorCode::InvalidRequest, "the body broke off before its end")),
        Err(_) => Err(ApiError::new(
            ErrorCode::RequestTimeout,
            format!("the body did not arrive within {} s", limit.as_secs_f64()),
        )),
    }
}

/// Whether reading a body failed on the size limit rather than the connection.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// 400 `invalid_json` unless `bytes` is one JSON text. Syntax is checked on
/// the whole text before any shape, so broken JSON is always `invalid_json`,
/// whatever field came before the break. Nothing is built: the check walks
/// the text and keeps no value.
fn check_syntax(bytes: &[u8]) -> Result<(), ApiError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("the body is not JSON: {e}")))
}

/// Whether a JSON text (already known to be valid) is an object.
fn is_object(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

/// A request body that must be one JSON object of shape `T`: `invalid_json`,
/// then 400 `invalid_request` for any other shape. Pure, for tests and fuzzing.
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    check_syntax(bytes)?;
    let raw: &RawValue = serde_json::from_slice(bytes).map_err(|e| wrong_shape(&e.to_string()))?;
    if !is_object(raw) {
        return Err(wrong_shape("the body must be a JSON object"));
    }
    typed(raw)
}

/// A message batch, in SPEC.md 3.2's step-4 order: `invalid_json`;
/// `invalid_request` unless a JSON array whose every item is an object of
/// shape `T` (whatever the number of items); then the count of a well-formed
/// batch: `invalid_request` for none, `too_many_messages` over [`MAX_BATCH`].
/// Parsing every item before counting is bounded by the body limit
/// ([`MAX_BODY_BYTES`]). Pure, for tests and fuzzing.
pub fn parse_batch<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, ApiError> {
    check_syntax(bytes)?;
    let items: Vec<&RawValue> =
        serde_json::from_slice(bytes).map_err(|_| wrong_shape("the body must be a JSON array"))?;
    if !items.iter().all(|i| is_object(i)) {
        return Err(wrong_shape("every item of the batch must be a JSON object"));
    }
    let items = items.into_iter().map(typed).collect::<Result<Vec<T>, _>>()?;
    if items.is_empty() {
        return Err(wrong_shape("the batch is empty"));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::TooManyMessages,
            format!("a batch holds at most {MAX_BATCH} messages, this one {}", items.len()),
        ));
    }
    Ok(items)
}

/// Converts one JSON text into `T`: 400 `invalid_request` when the shape is wrong.
fn typed<T: DeserializeOwned>(raw: &RawValue) -> Result<T, ApiError> {
    serde_json::from_str(raw.get()).map_err(|e| wrong_shape(&format!("the body has the wrong shape: {e}")))
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
