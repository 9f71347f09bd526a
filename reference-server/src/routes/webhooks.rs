//! `PUT /webhooks` registers (replaces) the app's webhook endpoint and the
//! events it wants; `DELETE` removes it. Both are changes of the group-commit
//! writer ([`crate::changes`]), so they take effect in commit order with the
//! messages.

use super::empty;
use super::openapi::{AppPath, Empty};
use crate::changes::Change;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::state::{App, AppState};
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::rest::ErrorBody;
use supergroup_protocol::rest::WebhookRegistration;
use supergroup_protocol::webhook::EVENT_TYPES;

#[utoipa::path(
    put, path = "/v1/{appId}/webhooks", tag = "rest",
    params(AppPath),
    request_body = WebhookRegistration,
    responses(
        (status = 200, description = "Registered, replacing any earlier one", body = Empty),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the server's time limit (`request_timeout`)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB (`payload_too_large`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn put_webhook(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Body(reg): Body<WebhookRegistration>,
) -> ApiResult<Json<serde_json::Value>> {
    crate::validate::webhook_url(&reg.url)?;
    if let Some(unknown) = reg.events.iter().flatten().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("unknown event `{unknown}`; events are {}", EVENT_TYPES.join(", ")),
        ));
    }
    state.writer.change(&app, Change::Webhook(Some(reg))).await?;
    Ok(empty())
}

#[utoipa::path(
    delete, path = "/v1/{appId}/webhooks", tag = "rest",
    params(AppPath),
    responses(
        (status = 200, description = "Removed (or there was none)", body = Empty),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
) -> ApiResult<Json<serde_json::Value>> {
    state.writer.change(&app, Change::Webhook(None)).await?;
    Ok(empty())
}
