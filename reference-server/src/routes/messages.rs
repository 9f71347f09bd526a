//! Messages: `POST` a batch of at most 10 (all or nothing) and `GET` history,
//! newest first. Messages written by guests stay in history after they leave.

use super::openapi::{AppPath, ConversationPath, ListParams, MessageBatch};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Batch, Ids, ListQuery};
use crate::messaging::{self, Draft, Via};
use crate::state::{App, AppState};
use crate::store::{self, UnknownCursor};
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::rest::ErrorBody;
use supergroup_protocol::rest::{Message, MessageCreated, NewMessage, Page};

#[utoipa::path(
    post, path = "/v1/{appId}/conversations/{conversationId}/messages", tag = "rest",
    params(AppPath, ConversationPath),
    request_body = MessageBatch,
    responses(
        (status = 200, description = "Stored, all or nothing; one id per item, in order", body = Vec<MessageCreated>),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Not found (`user_not_found`, `conversation_not_found`, `participant_not_found`)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the server's time limit (`request_timeout`)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB (`payload_too_large`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn post_messages(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
    Batch(batch): Batch<NewMessage>,
) -> ApiResult<Json<Vec<MessageCreated>>> {
    let [conv] = <[String; 1]>::try_from(ids).expect("route has one id");
    // `Batch` has checked 1..=MAX_BATCH items before parsing them.
    let drafts = batch.into_iter().map(Draft::from_rest).collect();
    let stored = messaging::store(&state, &app, &conv, drafts, Via::Rest).await?;
    Ok(Json(stored.into_iter().map(|m| MessageCreated { id: m.id }).collect()))
}

#[utoipa::path(
    get, path = "/v1/{appId}/conversations/{conversationId}/messages", tag = "rest",
    params(AppPath, ConversationPath, ListParams),
    responses(
        (status = 200, description = "History, newest first", body = Page<Message>),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Not found (`user_not_found`, `conversation_not_found`, `participant_not_found`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn list_messages(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
    query: ListQuery,
) -> ApiResult<Json<Page<Message>>> {
    let [conv] = <[String; 1]>::try_from(ids).expect("route has one id");
    let app_id = app.config.id.clone();
    state
        .db
        .call(move |c| -> ApiResult<Json<Page<Message>>> {
            if store::get_conv(c, &app_id, &conv)?.is_none() {
                return Err(ApiError::conversation_not_found(&conv));
            }
            let data = store::list_messages(c, &app_id, &conv, query.limit, query.starting_after.as_deref())?.map_err(
                |UnknownCursor| {
                    ApiError::new(ErrorCode::InvalidRequest, "startingAfter names no message of this conversation")
                },
            )?;
            Ok(Json(Page { data }))
        })
        .await
}
