//! `GET /metrics`: the server's metrics in the Prometheus text format
//! ([`crate::metrics`] owns every name). Not behind the app secret, like the
//! health endpoints, and not part of SPEC.md's contract: an operator keeps it
//! on their own network (README, "Watching a run live").

use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// Every metric the server exports, read now.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The server's metrics, Prometheus text format 0.0.4 (names, units and \
        labels in the README)", content_type = "text/plain")),
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.metrics.render(&state))
}
