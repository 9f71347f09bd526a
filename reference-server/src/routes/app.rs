//! `GET /v1/{appId}`: the app's plan and limits.

use super::openapi::AppPath;
use crate::state::{App, AppState};
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use supergroup_protocol::rest::AppInfo;
use supergroup_protocol::rest::ErrorBody;

#[utoipa::path(
    get, path = "/v1/{appId}", tag = "rest",
    params(AppPath),
    responses(
        (status = 200, description = "The app's plan and limits", body = AppInfo),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn get_app(State(state): State<AppState>, Extension(app): Extension<Arc<App>>) -> Json<AppInfo> {
    let c = &app.config;
    Json(AppInfo {
        id: c.id.clone(),
        plan: c.plan.as_str().into(),
        participant_limit: c.participant_limit(),
        guest_limit: c.guest_limit(),
        guest_access: c.guest_access,
        notification_delay_ms: state.config.notification_delay_ms,
    })
}
