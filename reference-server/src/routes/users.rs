//! Users: `PUT`/`GET /users/{userId}` and the user-conversations list, which
//! holds only conversations where the user is a participant (never those the
//! user opened as a guest).

use super::empty;
use super::openapi::{AppPath, Empty, ListParams, UserPath};
use crate::changes::Change;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Ids, ListQuery};
use crate::state::{App, AppState};
use crate::store::{self, UnknownCursor};
use crate::violation::Violation;
use axum::extract::State;
use axum::{Extension, Json};
use std::sync::Arc;
use supergroup_protocol::ErrorCode;
use supergroup_protocol::rest::ErrorBody;
use supergroup_protocol::rest::{Page, User, UserConversation, UserUpsert};

#[utoipa::path(
    put, path = "/v1/{appId}/users/{userId}", tag = "rest",
    params(AppPath, UserPath),
    request_body = UserUpsert,
    responses(
        (status = 200, description = "Created or merged", body = Empty),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within the server's time limit (`request_timeout`)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB (`payload_too_large`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn put_user(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
    Body(body): Body<UserUpsert>,
) -> ApiResult<Json<serde_json::Value>> {
    let [id] = <[String; 1]>::try_from(ids).expect("route has one id");
    if let Some(c) = &body.custom {
        crate::validate::custom(c)?;
    }
    state.writer.change(&app, Change::PutUser { user: id, body }).await?;
    Ok(empty())
}

#[utoipa::path(
    get, path = "/v1/{appId}/users/{userId}", tag = "rest",
    params(AppPath, UserPath),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Not found (`user_not_found`, `conversation_not_found`, `participant_not_found`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn get_user(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
) -> ApiResult<Json<User>> {
    let [id] = <[String; 1]>::try_from(ids).expect("route has one id");
    let app_id = app.config.id.clone();
    let found = state.db.call(move |c| store::get_user(c, &app_id, &id).map(|u| (u, id))).await?;
    match found {
        (Some(user), _) => Ok(Json(user)),
        (None, id) => Err(ApiError::new(ErrorCode::UserNotFound, format!("user `{id}` does not exist"))),
    }
}

#[utoipa::path(
    get, path = "/v1/{appId}/users/{userId}/conversations", tag = "rest",
    params(AppPath, UserPath, ListParams),
    responses(
        (status = 200, description = "Conversations where the user is a participant, never as a guest", body = Page<UserConversation>),
        (status = 400, description = "Invalid id, body or query (`invalid_id`, `invalid_json`, `invalid_request`, ...)", body = ErrorBody),
        (status = 401, description = "Unknown app or wrong secret (`unauthorized`)", body = ErrorBody),
        (status = 404, description = "Not found (`user_not_found`, `conversation_not_found`, `participant_not_found`)", body = ErrorBody),
    ),
    security(("appSecret" = [])),
)]
pub async fn user_conversations(
    State(state): State<AppState>,
    Extension(app): Extension<Arc<App>>,
    Ids(ids): Ids,
    query: ListQuery,
) -> ApiResult<Json<Page<UserConversation>>> {
    let [id] = <[String; 1]>::try_from(ids).expect("route has one id");
    let app_id = app.config.id.clone();
    let guest_access = app.config.guest_access;
    let guest_rooms = if state.violates(Violation::GuestInUserConversations) {
        state.hub.rooms_where_guest(&app_id, &id)
    } else {
        Vec::new()
    };
    state
        .db
        .call(move |c| -> ApiResult<Json<Page<UserConversation>>> {
            if store::get_user(c, &app_id, &id)?.is_none() {
                return Err(ApiError::new(ErrorCode::UserNotFound, format!("user `{id}` does not exist")));
            }
            let page =
                store::user_conversations(c, &app_id, &id, guest_access, query.limit, query.starting_after.as_deref())?;
            let mut data = page.map_err(|UnknownCursor| {
                ApiError::new(ErrorCode::InvalidRequest, "startingAfter names no conversation of this list")
            })?;
            for conv in guest_rooms {
                if let Some(conversation) = store::conv_view(c, &app_id, &conv, guest_access)? {
                    data.push(UserConversation { conversation, is_unread: false, unread_count: 0 });
                }
            }
            Ok(Json(Page { data }))
        })
        .await
}
