//! The one error shape of the API, `{"error": <code>, "message": <text>}`, and the JSON body
//! extractor that maps every rejection (syntax, content type, unknown field, size) onto it, so
//! bad input always gets a 4xx JSON answer and never a 500 or a plain-text body.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The todo the request was about, when known (for the error log line).
    pub todo_id: Option<u64>,
}

/// What an error answer was about, left in the response's extensions for the request's
/// error log line (the middleware writes it, knowing route, status and trace).
#[derive(Debug, Clone)]
pub(crate) struct ErrorInfo {
    pub code: &'static str,
    pub message: String,
    pub todo_id: Option<u64>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            todo_id: None,
        }
    }
    /// The same error, about todo `id` (kept if one is already set).
    pub fn about(mut self, id: Option<u64>) -> Self {
        self.todo_id = self.todo_id.or(id);
        self
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut r = (self.status, axum::Json(body)).into_response();
        r.extensions_mut().insert(ErrorInfo {
            code: self.code,
            message: self.message,
            todo_id: self.todo_id,
        });
        r
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            JsonRejection::JsonDataError(_) => (StatusCode::BAD_REQUEST, "validation_error"),
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            other => (other.status(), "bad_request"),
        };
        AppError::new(status, code, r.body_text())
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::new(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("id must be a positive integer: {}", r.body_text()),
        )
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

/// When the request's body must have arrived (request start + `Config::body_read_timeout`),
/// set by the middleware.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyDeadline(pub tokio::time::Instant);

/// `axum::Json` with our error shape on rejection, and `408 request_timeout` when the body
/// has not arrived by the request's `BodyDeadline` (a client trickling its body cannot hold a
/// handler for long).
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let deadline = req.extensions().get::<BodyDeadline>().map(|d| d.0);
        let read = axum::Json::<T>::from_request(req, state);
        let axum::Json(v) = match deadline {
            Some(d) => tokio::time::timeout_at(d, read).await.map_err(|_| {
                AppError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "the request body did not arrive within the body read timeout",
                )
            })??,
            None => read.await?,
        };
        Ok(AppJson(v))
    }
}

/// `axum::extract::Path<u64>` with our error shape on rejection.
pub struct IdPath(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = AppError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, AppError> {
        let axum::extract::Path(id) =
            axum::extract::Path::<u64>::from_request_parts(parts, state).await?;
        Ok(IdPath(id))
    }
}

/// `axum::extract::Query<T>` with our error shape on rejection.
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = AppError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, AppError> {
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(AppQuery(v))
    }
}
