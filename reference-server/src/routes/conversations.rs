//! Conversations: `PUT` (create or merge, adding listed participants all or
//! nothing), `GET` (guests never listed) and `DELETE` (messages included;
//! connections that had it open get `closed`). `PUT` and `DELETE` are jobs
//! of the group-commit writer ([`crate::changes`]).

use super::empty;
use super::openapi::{AppPath, ConversationPath, Empty};
use crate::changes::Change;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Ids, check_id};
use crate::state::{App, AppState};
use crate::store;
use crate::violation::Violation;
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::limits::MAX_PARTICIPANTS_PER_PUT;
use supergroup_protocol::rest::ErrorBody;
use supergroup_protocol::rest::{Conversation, ConversationUpsert, ParticipantSettings};

#[utoipa::path(
    put, path = "/v1/{appId}/conversations/{conversationId}", tag = "rest",
    params(AppPath, ConversationPath),
    request_body = ConversationUpsert,
    responses(
        (status = 200, description = "Created or merged; listed participants added all or nothing", body = Empty),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 409, description = "Over the participant limit (`participant_limit_reached`); nothing was changed", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the server's time limit (`request_timeout`)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB (`payload_too_large`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn put_conversation(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
    Body(body): Body<ConversationUpsert>,
) -> ApiResult<Json<serde_json::Value>> {
    let [id] = <[String; 1]>::try_from(ids).expect("route has one id");
    let listed = body.participants.clone().unwrap_or_default();
    if listed.len() > MAX_PARTICIPANTS_PER_PUT {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("at most {MAX_PARTICIPANTS_PER_PUT} participants may be listed at once"),
        ));
    }
    for u in &listed {
        check_id("participant id", u)?;
    }
    if let Some(c) = &body.custom {
        crate::validate::custom(c)?;
    }
    let evict_guests = body.guest_access == Some(false) && state.violates(Violation::GuestAccessOffEvictsGuests);
    state.writer.change(&app, Change::PutConversation { conv: id, body, listed, evict_guests }).await?;
    Ok(empty())
}

#[utoipa::path(
    get, path = "/v1/{appId}/conversations/{conversationId}", tag = "rest",
    params(AppPath, ConversationPath),
    responses(
        (status = 200, description = "The conversation; guests are never listed", body = Conversation),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Not found (`user_not_found`, `conversation_not_found`, `participant_not_found`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn get_conversation(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
) -> ApiResult<Json<Conversation>> {
    let [id] = <[String; 1]>::try_from(ids).expect("route has one id");
    let (app_id, ga, conv) = (app.config.id.clone(), app.config.guest_access, id.clone());
    let mut found = state
        .db
        .call(move |c| store::conv_view(c, &app_id, &conv, ga))
        .await?
        .ok_or_else(|| ApiError::conversation_not_found(&id))?;
    if state.violates(Violation::GuestInMemberList) {
        for g in state.hub.guests(&app.room(&id)) {
            found.participants.entry(g).or_insert_with(ParticipantSettings::default);
        }
    }
    Ok(Json(found))
}

#[utoipa::path(
    delete, path = "/v1/{appId}/conversations/{conversationId}", tag = "rest",
    params(AppPath, ConversationPath),
    responses(
        (status = 200, description = "Deleted with its messages", body = Empty),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Not found (`user_not_found`, `conversation_not_found`, `participant_not_found`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn delete_conversation(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
) -> ApiResult<Json<serde_json::Value>> {
    let [id] = <[String; 1]>::try_from(ids).expect("route has one id");
    state.writer.change(&app, Change::DeleteConversation { conv: id }).await?;
    Ok(empty())
}
