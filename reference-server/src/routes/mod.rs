//! The HTTP surface: one file per resource, assembled here. Every REST route
//! sits behind [`auth`] (the app secret); the realtime route authenticates
//! with its token instead. Unknown routes answer 404 `not_found`, wrong
//! methods 405 `method_not_allowed`, both with the JSON error body. The
//! operational endpoints (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`) take no secret.
//! Every request passes [`observe`]: a request id, a tracing span, the HTTP metrics.

mod app;
mod conversations;
pub(crate) mod health;
mod messages;
mod observe;
pub mod openapi;
mod participants;
mod scrape;
mod users;
mod webhooks;

use crate::error::ApiError;
use crate::state::{App, AppState};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
pub(crate) use health::healthz;
use std::sync::Arc;
use supergroup_protocol::ErrorCode;

/// The whole router.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/{app_id}", get(app::get_app))
        .route("/v1/{app_id}/users/{user_id}", put(users::put_user).get(users::get_user))
        .route("/v1/{app_id}/users/{user_id}/conversations", get(users::user_conversations))
        .route(
            "/v1/{app_id}/conversations/{conversation_id}",
            put(conversations::put_conversation)
                .get(conversations::get_conversation)
                .delete(conversations::delete_conversation),
        )
        .route(
            "/v1/{app_id}/conversations/{conversation_id}/participants/{user_id}",
            put(participants::put_participant)
                .patch(participants::patch_participant)
                .delete(participants::delete_participant),
        )
        .route(
            "/v1/{app_id}/conversations/{conversation_id}/messages",
            get(messages::list_messages).post(messages::post_messages),
        )
        .route("/v1/{app_id}/webhooks", put(webhooks::put_webhook).delete(webhooks::delete_webhook))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        .route_layer(middleware::from_fn(refuse_head));
    Router::new()
        .merge(api)
        .route("/v1/{app_id}/realtime", get(crate::realtime::upgrade))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(scrape::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Layers run bottom-up on the way in: screen the client's request id,
        // set one if absent, echo it in the response, then span and metrics.
        .layer(middleware::from_fn_with_state(state.clone(), observe::observe))
        .layer(tower_http::request_id::PropagateRequestIdLayer::new(observe::REQUEST_ID))
        .layer(tower_http::request_id::SetRequestIdLayer::new(
            observe::REQUEST_ID,
            tower_http::request_id::MakeRequestUuid,
        ))
        .layer(middleware::from_fn(observe::screen_request_id))
        .with_state(state)
}

/// Finds the app named in the path and checks `Authorization: Bearer <secret>`;
/// the app is handed to the handler as an extension.
async fn auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authorize(&state, &req) {
        Ok(app) => {
            req.extensions_mut().insert(app);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

fn authorize(state: &AppState, req: &Request) -> Result<Arc<App>, ApiError> {
    let unauthorized = || ApiError::new(ErrorCode::Unauthorized, "unknown app or wrong secret");
    let app_id = req.uri().path().strip_prefix("/v1/").and_then(|p| p.split('/').next()).unwrap_or("");
    let app = state.apps.get(app_id).ok_or_else(unauthorized)?;
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    if constant_time_eq(given.as_bytes(), app.config.secret.as_bytes()) { Ok(app.clone()) } else { Err(unauthorized()) }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HEAD is the method of no route (axum would answer it for every GET route):
/// 405 like any other method a route does not define, checked before auth as
/// route matching is (section 3.2). The response carries no body, as HEAD's never do.
async fn refuse_head(req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::HEAD {
        return method_not_allowed().await.into_response();
    }
    next.run(req).await
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not take that method")
}

/// `{}`: the body of a success with nothing to return.
fn empty() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({}))
}
