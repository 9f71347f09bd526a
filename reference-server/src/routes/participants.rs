//! Participants: `PUT` (add with defaults or set, idempotent, under the
//! participant limit), `PATCH` (only the given fields), `DELETE` (leave).
//! Each is one job of the group-commit writer ([`crate::changes`]).

use super::empty;
use super::openapi::{AppPath, ConversationPath, Empty, UserPath};
use crate::changes::Change;
use crate::error::ApiResult;
use crate::extract::{Body, Ids};
use crate::state::{App, AppState};
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use supergroup_protocol::rest::ErrorBody;
use supergroup_protocol::rest::{ParticipantSettings, ParticipantUpsert};

#[utoipa::path(
    put, path = "/v1/{appId}/conversations/{conversationId}/participants/{userId}", tag = "rest",
    params(AppPath, ConversationPath, UserPath),
    request_body = ParticipantUpsert,
    responses(
        (status = 200, description = "Added with these settings, or its settings set", body = Empty),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Not found (`user_not_found`, `conversation_not_found`, `participant_not_found`)", body = ErrorBody),
        (status = 409, description = "Over the participant limit (`participant_limit_reached`); nothing was changed", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the server's time limit (`request_timeout`)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB (`payload_too_large`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn put_participant(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
    Body(body): Body<ParticipantUpsert>,
) -> ApiResult<Json<serde_json::Value>> {
    let [conv, user] = <[String; 2]>::try_from(ids).expect("route has two ids");
    let defaults = ParticipantSettings::default();
    let settings = ParticipantSettings {
        access: body.access.unwrap_or(defaults.access),
        notify: body.notify.unwrap_or(defaults.notify),
    };
    state.writer.change(&app, Change::PutParticipant { conv, user, settings }).await?;
    Ok(empty())
}

#[utoipa::path(
    patch, path = "/v1/{appId}/conversations/{conversationId}/participants/{userId}", tag = "rest",
    params(AppPath, ConversationPath, UserPath),
    request_body = ParticipantUpsert,
    responses(
        (status = 200, description = "The given settings changed", body = Empty),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Not found (`user_not_found`, `conversation_not_found`, `participant_not_found`)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the server's time limit (`request_timeout`)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB (`payload_too_large`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn patch_participant(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
    Body(body): Body<ParticipantUpsert>,
) -> ApiResult<Json<serde_json::Value>> {
    let [conv, user] = <[String; 2]>::try_from(ids).expect("route has two ids");
    state.writer.change(&app, Change::PatchParticipant { conv, user, body }).await?;
    Ok(empty())
}

#[utoipa::path(
    delete, path = "/v1/{appId}/conversations/{conversationId}/participants/{userId}", tag = "rest",
    params(AppPath, ConversationPath, UserPath),
    responses(
        (status = 200, description = "The participant left", body = Empty),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Not found (`user_not_found`, `conversation_not_found`, `participant_not_found`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn delete_participant(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
) -> ApiResult<Json<serde_json::Value>> {
    let [conv, user] = <[String; 2]>::try_from(ids).expect("route has two ids");
    state.writer.change(&app, Change::DeleteParticipant { conv, user }).await?;
    Ok(empty())
}
