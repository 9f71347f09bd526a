//! Participants: `PUT` (add with defaults or set, idempotent, under the
//! participant limit), `PATCH` (only the given fields), `DELETE` (leave).

use super::empty;
use super::openapi::{AppPath, ConversationPath, Empty, UserPath};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Ids};
use crate::membership;
use crate::state::{App, AppState};
use crate::store;
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::rest::ErrorBody;
use supergroup_protocol::rest::{ParticipantSettings, ParticipantUpsert};

fn not_a_participant(user: &str) -> ApiError {
    ApiError::new(ErrorCode::ParticipantNotFound, format!("`{user}` is not a participant of this conversation"))
}

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
    let (st, ap, c2, u2) = (state.clone(), app.clone(), conv.clone(), user.clone());
    let added = state
        .db
        .call(move |c| -> ApiResult<Vec<String>> {
            let app_id = ap.config.id.as_str();
            let tx = c.transaction()?;
            if store::get_conv(&tx, app_id, &c2)?.is_none() {
                return Err(ApiError::conversation_not_found(&c2));
            }
            let added = membership::admit(&st, &ap, &tx, &c2, std::slice::from_ref(&u2), settings)?;
            if added.is_empty() {
                store::update_participant(&tx, app_id, &c2, &u2, settings)?;
            }
            tx.commit()?;
            Ok(added)
        })
        .await?;
    if added.is_empty() && state.violates(crate::violation::Violation::ParticipantJoinedOnUpdate) {
        membership::announce_joined(&state, &app, &conv, std::slice::from_ref(&user));
    }
    membership::announce_joined(&state, &app, &conv, &added);
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
    let app_id = app.config.id.clone();
    state
        .db
        .call(move |c| -> ApiResult<()> {
            let tx = c.transaction()?;
            if store::get_conv(&tx, &app_id, &conv)?.is_none() {
                return Err(ApiError::conversation_not_found(&conv));
            }
            let current = store::participant(&tx, &app_id, &conv, &user)?.ok_or_else(|| not_a_participant(&user))?;
            let settings = ParticipantSettings {
                access: body.access.unwrap_or(current.access),
                notify: body.notify.unwrap_or(current.notify),
            };
            store::update_participant(&tx, &app_id, &conv, &user, settings)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
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
    let (app_id, c2, u2) = (app.config.id.clone(), conv.clone(), user.clone());
    state
        .db
        .call(move |c| -> ApiResult<()> {
            if store::get_conv(c, &app_id, &c2)?.is_none() {
                return Err(ApiError::conversation_not_found(&c2));
            }
            if !store::delete_participant(c, &app_id, &c2, &u2)? {
                return Err(not_a_participant(&u2));
            }
            Ok(())
        })
        .await?;
    membership::announce_left(&state, &app, &conv, &user);
    Ok(empty())
}
