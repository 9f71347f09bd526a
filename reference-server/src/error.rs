//! The one place where failures become responses. Handlers return
//! `Result<_, ApiError>`; an [`ApiError`] carries a protocol [`ErrorCode`]
//! and a human message, and renders as `{"error":{"code","message"}}` with the
//! code's HTTP status. Realtime turns the same type into an `error` frame.
//! Expected failures (bad input) are not logged; internal ones are logged once.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use supergroup_protocol::ErrorCode;
use supergroup_protocol::rest::{ErrorBody, ErrorDetail};

/// A failure with its protocol code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    /// A server fault: logged here, reported as 500 `internal` without details.
    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %err, "internal error");
        ApiError::new(ErrorCode::Internal, "the server failed; nothing was changed")
    }

    pub fn conversation_not_found(id: &str) -> ApiError {
        ApiError::new(ErrorCode::ConversationNotFound, format!("conversation `{id}` does not exist"))
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: ErrorDetail { code: self.code.as_str().into(), message: self.message.clone() } }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> ApiError {
        crate::metrics::sqlite_error(&e);
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body())).into_response()
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
