//! The realtime endpoint `GET /v1/{appId}/realtime?token=<JWT>`: the token is
//! checked before the upgrade (HTTP 401 `unauthorized` otherwise), the user is
//! created if unknown, and the socket is handed to [`connection`].
//!
//! Socket sizing: thousands of mostly idle guests is the normal case, so the
//! read buffer is 2 KiB instead of tungstenite's 128 KiB (the largest cost of
//! an idle connection; client frames are small, and a larger one grows the
//! buffer as needed), the write buffer goes to the socket at 16 KiB instead of
//! 128 KiB (so a burst cannot leave a large buffer behind on every
//! connection), and the largest accepted message is 64 KiB. Measured with 3,000
//! idle guests: 4 KiB read buffer 11.2 KiB RSS per guest, 1 KiB 8.4 KiB.
//!
//! Per user: at most `--max-connections-per-user` connections at once; one
//! more is refused before the upgrade with HTTP 429 `too_many_connections`.

pub(crate) mod connection;
pub(crate) mod handler;
mod user_cap;

pub use user_cap::{UserConnections, UserSlot};

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{RawQuery, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use supergroup_protocol::ErrorCode;
use supergroup_protocol::limits::MAX_FRAME_BYTES;

/// Read buffer per connection.
pub(crate) const READ_BUFFER: usize = 2048;
/// Bytes fed to a connection before tungstenite writes them to the socket.
pub(crate) const WRITE_BUFFER: usize = 16 * 1024;

/// The app named in the realtime URL and the verified claims of its token,
/// or the 401 error to answer (checked before the upgrade, by a single server and
/// by a cluster's edge alike).
pub(crate) fn authenticate(
    apps: &std::collections::HashMap<String, std::sync::Arc<crate::state::App>>,
    uri: &Uri,
    query: Option<&str>,
) -> Result<(std::sync::Arc<crate::state::App>, supergroup_protocol::token::Claims), ApiError> {
    let unauthorized = |why: String| ApiError::new(ErrorCode::Unauthorized, why);
    let app_id = uri.path().strip_prefix("/v1/").and_then(|p| p.split('/').next()).unwrap_or("");
    let Some(app) = apps.get(app_id).cloned() else {
        return Err(unauthorized("unknown app".into()));
    };
    let token = query.unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("token=")).unwrap_or("");
    if token.is_empty() {
        return Err(unauthorized("the token query parameter is missing".into()));
    }
    match supergroup_protocol::token::verify(token, &app.config.id, &app.config.secret) {
        Ok(claims) => Ok((app, claims)),
        Err(e) => Err(unauthorized(e.to_string())),
    }
}

pub async fn upgrade(
    State(state): State<AppState>,
    uri: Uri,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (app, claims) = match authenticate(&state.apps, &uri, query.as_deref()) {
        Ok(found) => found,
        Err(refused) => return refused.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return ApiError::new(ErrorCode::InvalidRequest, e.to_string()).into_response(),
    };
    let limit = state.config.transport.max_connections_per_user;
    let Some(slot) = state.user_connections.try_take(&app.config.id, &claims.sub, limit) else {
        let why = format!("this user already holds {limit} realtime connections");
        return ApiError::new(ErrorCode::TooManyConnections, why).into_response();
    };
    // Through the group-commit writer: a connect storm is a few commits, not one fsync per user.
    if let Err(e) = state.writer.ensure_user(&app.config.id, &claims.sub, claims.name.clone()).await {
        return e.into_response();
    }
    let tracker = state.tracker.clone();
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            tracker.track_future(async move {
                // Held for the connection's life (by its handler); dropped however the task ends.
                connection::run(state, app, claims.sub, slot, socket).await
            })
        })
}
