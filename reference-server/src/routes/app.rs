//! `GET /v1/{appId}`: the app's plan and limits.

use crate::state::{App, AppState};
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use supergroup_protocol::rest::AppInfo;

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
