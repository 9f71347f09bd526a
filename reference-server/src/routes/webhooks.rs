//! `PUT /webhooks` registers (replaces) the app's webhook endpoint and the
//! events it wants; `DELETE` removes it.

use super::empty;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use crate::state::{App, AppState};
use crate::store;
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::rest::WebhookRegistration;
use supergroup_protocol::webhook::EVENT_TYPES;

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
    let (app_id, r) = (app.config.id.clone(), reg.clone());
    state.db.call(move |c| store::save_webhook(c, &app_id, &r.url, r.events.as_ref())).await?;
    app.set_webhook(Some(reg));
    Ok(empty())
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
) -> ApiResult<Json<serde_json::Value>> {
    let app_id = app.config.id.clone();
    state.db.call(move |c| store::delete_webhook(c, &app_id)).await?;
    app.set_webhook(None);
    Ok(empty())
}
