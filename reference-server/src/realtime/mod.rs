//! The realtime endpoint `GET /v1/{appId}/realtime?token=<JWT>`: the token is
//! checked before the upgrade (HTTP 401 `unauthorized` otherwise), the user is
//! created if unknown, and the socket is handed to [`connection`].
//!
//! Socket sizing: thousands of mostly idle guests is the normal case, so the
//! read buffer is 4 KiB instead of tungstenite's 128 KiB (the largest cost of
//! an idle connection), and the largest accepted message is 64 KiB.

mod connection;
mod handler;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{RawQuery, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use supergroup_protocol::ErrorCode;
use supergroup_protocol::limits::MAX_FRAME_BYTES;

/// Read buffer per connection.
const READ_BUFFER: usize = 4096;

pub async fn upgrade(
    State(state): State<AppState>,
    uri: Uri,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let unauthorized = |why: String| ApiError::new(ErrorCode::Unauthorized, why).into_response();
    let app_id = uri.path().strip_prefix("/v1/").and_then(|p| p.split('/').next()).unwrap_or("");
    let Some(app) = state.apps.get(app_id).cloned() else {
        return unauthorized("unknown app".into());
    };
    let token = query.as_deref().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("token=")).unwrap_or("");
    if token.is_empty() {
        return unauthorized("the token query parameter is missing".into());
    }
    let claims = match supergroup_protocol::token::verify(token, &app.config.id, &app.config.secret) {
        Ok(c) => c,
        Err(e) => return unauthorized(e.to_string()),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return ApiError::new(ErrorCode::InvalidRequest, e.to_string()).into_response(),
    };
    let (app_id, user, name) = (app.config.id.clone(), claims.sub.clone(), claims.name.clone());
    let created = state.db.call(move |c| store::ensure_user(c, &app_id, &user, name.as_deref(), crate::now_ms())).await;
    if let Err(e) = created {
        return ApiError::internal(e).into_response();
    }
    let tracker = state.tracker.clone();
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| tracker.track_future(connection::run(state, app, claims.sub, socket)))
}
