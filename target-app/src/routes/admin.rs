//! `/admin/faults`: time-boxed fault rules behind a bearer token. The routes exist only when
//! a token is configured; a missing or wrong token gets 401.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get};

use crate::AppState;
use crate::error::{AppError, AppJson};
use crate::faults::RuleSpec;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/faults", get(list).post(add).delete(clear))
        .route("/admin/faults/{id}", delete(remove))
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let expected = state
        .inner
        .config
        .fault_token
        .as_deref()
        .unwrap_or_default();
    // RFC 6750 / RFC 9110: the scheme name is case-insensitive (`bearer` works too).
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim_start());
    // Compare every byte whatever the first mismatch, so timing does not leak the token.
    let ok = given.is_some_and(|g| {
        g.len() == expected.len()
            && g.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err(AppError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        ))
    }
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    authorize(&state, &headers)?;
    Ok(axum::Json(state.inner.faults.list()))
}

async fn add(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<AppJson<RuleSpec>, AppError>,
) -> Result<impl IntoResponse, AppError> {
    authorize(&state, &headers)?;
    let AppJson(spec) = body?;
    spec.validate().map_err(AppError::validation)?;
    let view = state.inner.faults.add(spec).map_err(|max| {
        AppError::new(
            StatusCode::CONFLICT,
            "too_many_rules",
            format!(
                "at most {max} fault rules may be live; delete some (DELETE /admin/faults/{{id}}) or let them expire"
            ),
        )
    })?;
    state.ensure_rule_series(&view.spec);
    Ok((StatusCode::CREATED, axum::Json(view)))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    authorize(&state, &headers)?;
    if state.inner.faults.remove(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found(format!("no active rule {id}")))
    }
}

async fn clear(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    authorize(&state, &headers)?;
    Ok(axum::Json(
        serde_json::json!({ "removed": state.inner.faults.clear() }),
    ))
}
