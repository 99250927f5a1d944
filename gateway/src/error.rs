//! The one error type handlers return. Expected problems (bad input, unknown
//! partner …) become a 4xx with a message the caller can act on; unexpected
//! ones become an opaque 500 and are logged once, here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A handler error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The caller can fix this: status and message are sent as they are.
    #[error("{message}")]
    Client { status: StatusCode, code: &'static str, message: String },
    /// Something failed on our side; the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// A dependency (the store) is not available.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

impl From<store::StoreError> for AppError {
    fn from(e: store::StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            Self::Client { status, code, message } => {
                (status, Json(ErrorBody { error: code, message: &message })).into_response()
            }
            Self::Internal(cause) => {
                tracing::error!(message = "request failed", %cause);
                let body = ErrorBody { error: "internal", message: "internal error; it has been logged" };
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
            Self::Unavailable(cause) => {
                tracing::warn!(message = "dependency unavailable", %cause);
                let body =
                    ErrorBody { error: "unavailable", message: "a dependency is not available; try again later" };
                (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
            }
        }
    }
}
