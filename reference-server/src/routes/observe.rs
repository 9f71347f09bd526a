//! What every HTTP request gets on its way through the router: a request id
//! (`x-request-id`: a client's own is kept when it is 1 to
//! [`MAX_REQUEST_ID_BYTES`] visible ASCII characters, otherwise one is
//! generated, a UUID v4; either way it is echoed in the response), a tracing
//! span carrying that id, the method and the route template (so every log
//! line of the request names it), and its line in
//! `supergroup_http_request_duration_seconds` (route template, never the raw
//! path: the label stays bounded by the router).

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

/// The header that carries the id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-chosen request id kept; a longer one (or one with a
/// space, a control or a non-ASCII character) is replaced, so a log line
/// never carries an unbounded or line-breaking value.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// Outermost: drops a request id the server will not log, so the next layer
/// (tower-http's `SetRequestId`) generates one.
pub async fn screen_request_id(mut req: Request, next: Next) -> Response {
    let acceptable = |v: &[u8]| (1..=MAX_REQUEST_ID_BYTES).contains(&v.len()) && v.iter().all(|b| b.is_ascii_graphic());
    if req.headers().get(&REQUEST_ID).is_some_and(|v| !acceptable(v.as_bytes())) {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// Innermost (after routing, so the matched route is known): the span and the metric.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let method = req.method().clone();
    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = route.as_deref().unwrap_or("unmatched"),
    );
    let started = Instant::now();
    let response = next.run(req).instrument(span).await;
    state.metrics.http(&method, route.as_deref(), response.status().as_u16(), started.elapsed());
    response
}
