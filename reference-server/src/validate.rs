//! Field rules shared by several routes: custom maps and webhook URLs.

use crate::error::ApiError;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::limits::{MAX_CUSTOM_KEY_BYTES, MAX_CUSTOM_KEYS, MAX_CUSTOM_VALUE_BYTES};
use supergroup_protocol::rest::Custom;

/// 400 `invalid_custom` unless the map keeps its limits.
pub fn custom(map: &Custom) -> Result<(), ApiError> {
    if map.len() > MAX_CUSTOM_KEYS {
        return Err(ApiError::new(
            ErrorCode::InvalidCustom,
            format!("custom may have at most {MAX_CUSTOM_KEYS} keys, not {}", map.len()),
        ));
    }
    for (k, v) in map {
        if k.is_empty() || k.len() > MAX_CUSTOM_KEY_BYTES {
            return Err(ApiError::new(
                ErrorCode::InvalidCustom,
                format!("custom keys must be 1 to {MAX_CUSTOM_KEY_BYTES} bytes"),
            ));
        }
        if v.len() > MAX_CUSTOM_VALUE_BYTES {
            return Err(ApiError::new(
                ErrorCode::InvalidCustom,
                format!("custom value of `{k}` is over {MAX_CUSTOM_VALUE_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

/// 400 `invalid_webhook_url` unless `url` is an absolute http(s) URL with a
/// host that is not a link-local or cloud-metadata address
/// ([`crate::webhook_target`]).
pub fn webhook_url(url: &str) -> Result<(), ApiError> {
    crate::webhook_target::check(url)
        .map(|_| ())
        .map_err(|e| ApiError::new(ErrorCode::InvalidWebhookUrl, e.to_string()))
}
