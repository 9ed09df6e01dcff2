//! The todo REST API with the seed's manual spans (`create_todo` → `validation`,
//! `todo_creation`, `metrics_update`; `list_todos`, `get_todo`, `update_todo`, `delete_todo`),
//! log lines and operation counter. Faults are applied inside the span they name.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::error::{AppError, AppJson, AppQuery, IdPath};
use crate::logging::{Level, now_iso};
use crate::middleware::RequestCtx;
use crate::store::{StoreError, Todo, Update};
use crate::trace;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTodo {
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateTodo {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    completed: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default)]
    completed: Option<bool>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

const MAX_LIMIT: usize = 1000;

/// Applies the request's fault if it targets span `here` (its `span` if that is one of the
/// operation's `spans`, else the operation span `spans[0]`): the delay is slept inside the span,
/// an error status fails it. Both are counted and marked on the span.
async fn fault_at(
    state: &AppState,
    ctx: &RequestCtx,
    spans: &[&str],
    here: &str,
    cx: &Context,
) -> Result<(), AppError> {
    let Some(f) = &ctx.fault else { return Ok(()) };
    let target = f
        .span
        .as_deref()
        .filter(|s| spans.contains(s))
        .unwrap_or(spans[0]);
    if target != here {
        return Ok(());
    }
    let span = cx.span();
    if !f.delay.is_zero() {
        span.set_attribute(KeyValue::new("fault.kind", "latency"));
        span.set_attribute(KeyValue::new("fault.delay_ms", f.delay.as_millis() as i64));
        state.inner.metrics.observe_fault(&ctx.route, "latency");
        tokio::time::sleep(f.delay).await;
    }
    if let Some(status) = f.status {
        span.set_attribute(KeyValue::new("fault.kind", "error"));
        span.set_attribute(KeyValue::new("fault.status", i64::from(status)));
        trace::set_error(cx, format!("injected fault: HTTP {status}"));
        state.inner.metrics.observe_fault(&ctx.route, "error");
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(AppError::new(
            code,
            "fault_injected",
            format!("fault injected: HTTP {status}"),
        ));
    }
    Ok(())
}

fn validate_text(state: &AppState, text: &str) -> Result<String, AppError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(AppError::validation("text must not be empty"));
    }
    let max = state.inner.config.max_text_len;
    if t.chars().count() > max {
        return Err(AppError::validation(format!(
            "text must be at most {max} characters"
        )));
    }
    Ok(t.to_string())
}

fn store_error(e: StoreError, id: u64) -> AppError {
    match e {
        StoreError::NotFound => AppError::not_found(format!("todo {id} not found")),
        StoreError::Full { max } => AppError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "store_full",
            format!("the store holds its maximum of {max} todos; delete some first"),
        ),
    }
}

/// Appends `traceId` and `spanId` when the request's ids are shown (sampled and exported).
fn with_ids(
    ctx: &RequestCtx,
    mut fields: Vec<(&'static str, Value)>,
) -> Vec<(&'static str, Value)> {
    if let (Some(t), Some(s)) = (&ctx.trace_id, &ctx.span_id) {
        fields.push(("traceId", Value::from(t.clone())));
        fields.push(("spanId", Value::from(s.clone())));
    }
    fields
}

fn log_todo(state: &AppState, ctx: &RequestCtx, msg: &str, todo: &Todo) {
    state.inner.log.log(
        Level::Info,
        msg,
        with_ids(
            ctx,
            vec![
                ("todoId", Value::from(todo.id)),
                ("text", Value::from(todo.text.clone())),
            ],
        ),
    );
}

/// Ends the operation span, marking it failed when the operation failed.
fn finish<T>(cx: &Context, r: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &r
        && e.status.is_server_error()
    {
        trace::set_error(cx, e.message.clone());
    }
    trace::end(cx);
    r
}

pub(super) async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    body: Result<AppJson<CreateTodo>, AppError>,
) -> Result<impl IntoResponse, AppError> {
    const SPANS: [&str; 4] = [
        "create_todo",
        "validation",
        "todo_creation",
        "metrics_update",
    ];
    let op = state.inner.tracing.child(&ctx.cx, "create_todo");
    // Known once stored: a fault injected after that still names the todo in its error line.
    let mut stored = None;
    let r = async {
        let vcx = state.inner.tracing.child(&op, "validation");
        let valid = async {
            fault_at(&state, &ctx, &SPANS, "validation", &vcx).await?;
            let AppJson(body) = body?;
            validate_text(&state, &body.text)
        }
        .await;
        trace::end(&vcx);
        let text = valid?;
        fault_at(&state, &ctx, &SPANS, "create_todo", &op).await?;
        let ccx = state.inner.tracing.child(&op, "todo_creation");
        let created = async {
            fault_at(&state, &ctx, &SPANS, "todo_creation", &ccx).await?;
            state
                .inner
                .store
                .create(text, now_iso())
                .map_err(|e| store_error(e, 0))
        }
        .await;
        if let Err(e) = &created
            && e.status.is_server_error()
        {
            trace::set_error(&ccx, e.message.clone());
        }
        trace::end(&ccx);
        let todo = created?;
        stored = Some(todo.id);
        let mcx = state.inner.tracing.child(&op, "metrics_update");
        let m = fault_at(&state, &ctx, &SPANS, "metrics_update", &mcx).await;
        state.inner.metrics.observe_operation("create");
        trace::end(&mcx);
        m?;
        op.span()
            .set_attribute(KeyValue::new("todo.id", todo.id as i64));
        log_todo(&state, &ctx, "Todo created", &todo);
        Ok((
            StatusCode::CREATED,
            [(
                HeaderName::from_static("location"),
                format!("/api/todos/{}", todo.id),
            )],
            axum::Json(todo),
        ))
    }
    .await;
    finish(&op, r.map_err(|e: AppError| e.about(stored)))
}

pub(super) async fn list(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    query: Result<AppQuery<ListQuery>, AppError>,
) -> Result<impl IntoResponse, AppError> {
    let op = state.inner.tracing.child(&ctx.cx, "list_todos");
    let r = async {
        let AppQuery(q) = query?;
        let limit = q.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(AppError::validation(format!(
                "limit must be in 1..={MAX_LIMIT}"
            )));
        }
        fault_at(&state, &ctx, &["list_todos"], "list_todos", &op).await?;
        let (todos, total) = state
            .inner
            .store
            .list(q.completed, q.offset.unwrap_or(0), limit);
        state.inner.metrics.observe_operation("list");
        op.span()
            .set_attribute(KeyValue::new("todo.count", todos.len() as i64));
        state.inner.log.log(
            Level::Info,
            "Todos listed",
            with_ids(
                &ctx,
                vec![
                    ("count", Value::from(todos.len())),
                    ("total", Value::from(total)),
                ],
            ),
        );
        Ok((
            [(HeaderName::from_static("x-total-count"), total.to_string())],
            axum::Json(todos),
        ))
    }
    .await;
    finish(&op, r)
}

pub(super) async fn get_one(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    id: Result<IdPath, AppError>,
) -> Result<impl IntoResponse, AppError> {
    let op = state.inner.tracing.child(&ctx.cx, "get_todo");
    let known = id.as_ref().ok().map(|i| i.0);
    let r = async {
        let IdPath(id) = id?;
        fault_at(&state, &ctx, &["get_todo"], "get_todo", &op).await?;
        let todo = state.inner.store.get(id).map_err(|e| store_error(e, id))?;
        state.inner.metrics.observe_operation("read");
        log_todo(&state, &ctx, "Todo fetched", &todo);
        Ok(axum::Json(todo))
    }
    .await;
    finish(&op, r.map_err(|e: AppError| e.about(known)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    id: Result<IdPath, AppError>,
    body: Result<AppJson<UpdateTodo>, AppError>,
) -> Result<impl IntoResponse, AppError> {
    let op = state.inner.tracing.child(&ctx.cx, "update_todo");
    let known = id.as_ref().ok().map(|i| i.0);
    let r = async {
        let IdPath(id) = id?;
        let AppJson(body) = body?;
        if body.text.is_none() && body.completed.is_none() {
            return Err(AppError::validation("give at least one of text, completed"));
        }
        let text = body
            .text
            .as_deref()
            .map(|t| validate_text(&state, t))
            .transpose()?;
        fault_at(&state, &ctx, &["update_todo"], "update_todo", &op).await?;
        let todo = state
            .inner
            .store
            .update(
                id,
                Update {
                    text,
                    completed: body.completed,
                },
                now_iso(),
            )
            .map_err(|e| store_error(e, id))?;
        state.inner.metrics.observe_operation("update");
        log_todo(&state, &ctx, "Todo updated", &todo);
        Ok(axum::Json(todo))
    }
    .await;
    finish(&op, r.map_err(|e: AppError| e.about(known)))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    id: Result<IdPath, AppError>,
) -> Result<StatusCode, AppError> {
    let op = state.inner.tracing.child(&ctx.cx, "delete_todo");
    let known = id.as_ref().ok().map(|i| i.0);
    let r = async {
        let IdPath(id) = id?;
        fault_at(&state, &ctx, &["delete_todo"], "delete_todo", &op).await?;
        let todo = state
            .inner
            .store
            .delete(id)
            .map_err(|e| store_error(e, id))?;
        state.inner.metrics.observe_operation("delete");
        log_todo(&state, &ctx, "Todo deleted", &todo);
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    finish(&op, r.map_err(|e: AppError| e.about(known)))
}
