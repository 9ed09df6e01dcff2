//! The HTTP surface: the todo REST API, health and readiness, `/metrics`, the fault API (only
//! when a token is configured), and JSON answers for unknown routes and methods.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::AppError;
use crate::metrics;

mod admin;
mod todos;

pub(crate) fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route("/api/todos", get(todos::list).post(todos::create))
        .route(
            "/api/todos/{id}",
            get(todos::get_one)
                .put(todos::update)
                .patch(todos::update)
                .delete(todos::delete),
        )
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_page));
    if state.inner.config.fault_token.is_some() {
        r = r.merge(admin::router());
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::observe,
        ))
        .layer(DefaultBodyLimit::max(state.inner.config.max_body_bytes))
        .with_state(state)
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn ready() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ready" }))
}

async fn metrics_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let om = metrics::wants_openmetrics(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = state.render_metrics(om);
    let ct = if om {
        metrics::CONTENT_TYPE_OPENMETRICS
    } else {
        metrics::CONTENT_TYPE_TEXT
    };
    ([(header::CONTENT_TYPE, ct)], body).into_response()
}

async fn not_found() -> AppError {
    AppError::not_found("no such route")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
