//! Operational endpoints of the reference server, for process supervisors and
//! Kubernetes probes; not part of SPEC.md's contract (a vendor need not have
//! them) and not behind the app secret. `GET /healthz`: the process answers.
//! `GET /readyz`: the database answers a trivial query within
//! [`DB_ANSWER_WAIT`] and the server is not shutting down; otherwise 503 with
//! the error body, so a load balancer stops routing to it while it drains.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;
use supergroup_protocol::rest::{ErrorBody, ErrorDetail};

/// Longest wait for the database's answer before `/readyz` says 503: the one
/// writer connection may be busy with a batch; a probe must not hang behind it.
pub const DB_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// `{"status":"ok"}` from `/healthz`, `{"status":"ready"}` from `/readyz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready` (ready for traffic).
    pub status: &'static str,
}

/// The process is alive: always 200 while it can answer at all.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process answers", body = Status)),
)]
pub async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Ready for traffic: 200 when the database answers and the server is not shutting down.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The database answers and the server is not shutting down", body = Status),
        (status = 503, description = "`shutting_down` once shutdown has begun (it keeps serving while it drains); \
            `database_unavailable` when the database fails or does not answer within 2 s", body = ErrorBody),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.shutdown.is_cancelled() {
        return not_ready("shutting_down", "the server is shutting down".into());
    }
    let query = state.db.call(|c| c.query_row("SELECT 1", [], |row| row.get::<_, i64>(0)));
    match tokio::time::timeout(DB_ANSWER_WAIT, query).await {
        // Shutdown may have begun while the query ran: check again.
        Ok(Ok(1)) if !state.shutdown.is_cancelled() => Json(Status { status: "ready" }).into_response(),
        Ok(Ok(1)) => not_ready("shutting_down", "the server is shutting down".into()),
        Ok(Ok(other)) => not_ready("database_unavailable", format!("the database answered {other} to SELECT 1")),
        Ok(Err(e)) => not_ready("database_unavailable", format!("the database failed: {e}")),
        Err(_) => not_ready(
            "database_unavailable",
            format!("the database did not answer within {} ms", DB_ANSWER_WAIT.as_millis()),
        ),
    }
}

/// 503 with `{"error":{"code","message"}}`. The codes are the reference
/// server's own (not protocol `ErrorCode`s): these endpoints are outside SPEC.md.
fn not_ready(code: &str, message: String) -> Response {
    let body = ErrorBody { error: ErrorDetail { code: code.into(), message } };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
