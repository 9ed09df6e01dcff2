//! The wrapper around every request: continues the caller's trace with a server span
//! `METHOD /route`, decides the request's fault, then records the seed's metrics (with the
//! trace id as exemplar) and writes the access log line once the response is known.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use serde_json::Value;
use tokio::time::Instant;

use crate::AppState;
use crate::error::{AppError, BodyDeadline, ErrorInfo};
use crate::faults::{self, Fault};
use crate::logging::Level;
use crate::trace;

/// The local address the request's connection was accepted on (set by `server`): the
/// `server.port` when the `Host` header names none.
#[derive(Clone, Copy)]
pub(crate) struct LocalAddr(pub SocketAddr);

/// What a handler needs of the request's telemetry.
#[derive(Clone)]
pub(crate) struct RequestCtx {
    /// Context whose current span is the server span.
    pub cx: Context,
    /// Shown ids (sampled and exported), else `None` and left out of log lines.
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// The route template, the `route` label.
    pub route: String,
    pub fault: Option<Fault>,
}

/// `/api/todos/{id}` (axum's syntax) → `/api/todos/:id` (the seed's label values).
pub(crate) fn route_label(matched: &str) -> String {
    matched.replace("{id}", ":id")
}

/// The method as a label: the standard ones as they are, anything else `_OTHER` (semantic
/// conventions), so made-up methods cannot grow the series set.
fn method_label(m: &Method) -> String {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    if KNOWN.contains(m) {
        m.as_str().to_string()
    } else {
        "_OTHER".to_string()
    }
}

fn protocol_version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// `host[:port]` or `[v6]:port` → (address, port), the port falling back to `default_port`.
fn server_address(host: Option<&str>, default_port: u16) -> (Option<String>, u16) {
    let Some(h) = host.map(str::trim).filter(|h| !h.is_empty()) else {
        return (None, default_port);
    };
    let (addr, port) = match h.rfind(':') {
        Some(i) if !h[i..].contains(']') => (&h[..i], h[i + 1..].parse().ok()),
        _ => (h, None),
    };
    (
        Some(
            addr.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        ),
        port.unwrap_or(default_port),
    )
}

/// Routes of the platform rather than the API: counted and logged, traced only when
/// `Config::trace_infra_routes` asks (a scrape every second would otherwise be a trace each).
const INFRA_ROUTES: [&str; 3] = ["/metrics", "/health", "/ready"];

/// The `msg` of a failed todo request's error line: says what happened.
fn error_msg(code: &str) -> &'static str {
    match code {
        "store_full" => "Store full",
        "fault_injected" => "Injected fault",
        "validation_error" => "Validation failed",
        "invalid_json" => "Invalid JSON body",
        "invalid_id" => "Invalid todo id",
        "invalid_query" => "Invalid query",
        "not_found" => "Not found",
        "payload_too_large" => "Body too large",
        "unsupported_media_type" => "Unsupported content type",
        "request_timeout" => "Body read timeout",
        "method_not_allowed" => "Method not allowed",
        "invalid_fault" => "Invalid fault header",
        _ => "Request failed",
    }
}

pub(crate) async fn observe(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let inner = &state.inner;
    let method = method_label(req.method());
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| route_label(m.as_str()));
    let route = matched.clone().unwrap_or_else(|| "unmatched".to_string());
    let traced = inner.config.trace_infra_routes || !INFRA_ROUTES.contains(&route.as_str());
    let headers = req.headers();
    let cx = if traced {
        let parent =
            trace::parent_from_header(headers.get("traceparent").and_then(|v| v.to_str().ok()));
        let attrs = span_attributes(&req, &method, matched.as_deref(), inner.config.port);
        // Semantic conventions: `METHOD /route`, or just the method when no route matched.
        let name = matched
            .as_ref()
            .map_or_else(|| method.clone(), |r| format!("{method} {r}"));
        inner.tracing.server_span(&parent, name, attrs)
    } else {
        Context::new()
    };
    let (trace_id, span_id) = inner.tracing.shown_ids(&cx).unzip();
    let fault = if route.starts_with("/api/") {
        let from_header = if inner.config.faults_enabled {
            faults::from_headers(headers)
        } else {
            None
        };
        from_header.or_else(|| inner.faults.pick(&method, &route))
    } else {
        None
    };
    // A fault header naming a span the operation does not have is a mistake to report, not to
    // apply elsewhere (other bad fault header values are ignored, see `faults::from_headers`).
    let bad_span =
        fault
            .as_ref()
            .and_then(|f| f.span.as_deref())
            .and_then(|span| {
                let valid = faults::spans_of(&method, &route);
                (!valid.contains(&span)).then(|| {
            AppError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_fault",
                format!(
                    "X-Fault-Span {span:?} is not a span of {method} {route}; valid spans: {}",
                    if valid.is_empty() { "none".to_string() } else { valid.join(", ") }
                ),
            )
        })
            });
    let injected = fault.as_ref().and_then(|f| f.status).is_some();
    req.extensions_mut().insert(RequestCtx {
        cx: cx.clone(),
        trace_id: trace_id.clone(),
        span_id: span_id.clone(),
        route: route.clone(),
        fault,
    });
    if let Some(deadline) = start.checked_add(inner.config.body_read_timeout) {
        req.extensions_mut().insert(BodyDeadline(deadline));
    }

    let response = match bad_span {
        Some(e) => e.into_response(),
        None => next.run(req).await,
    };

    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    inner
        .metrics
        .observe_request(&method, &route, status, elapsed, trace_id.as_deref());
    if traced {
        let span = cx.span();
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            // Semantic conventions: the status code as a string when nothing more precise is
            // known.
            span.set_attribute(KeyValue::new("error.type", status.to_string()));
            trace::set_error(&cx, format!("HTTP {status}"));
        }
        span.end();
    }
    let level = match status {
        500.. => Level::Error,
        400..=499 => Level::Warn,
        _ => Level::Info,
    };
    let ids = |fields: &mut Vec<(&'static str, Value)>| {
        if let (Some(t), Some(s)) = (&trace_id, &span_id) {
            fields.push(("traceId", Value::from(t.clone())));
            fields.push(("spanId", Value::from(s.clone())));
        }
    };
    if status >= 400
        && route.starts_with("/api/")
        && let Some(info) = response.extensions().get::<ErrorInfo>()
    {
        let mut fields = Vec::with_capacity(9);
        if let Some(id) = info.todo_id {
            fields.push(("todoId", Value::from(id)));
        }
        fields.push(("error", Value::from(info.code)));
        fields.push(("message", Value::from(info.message.clone())));
        fields.push(("status", Value::from(status)));
        fields.push(("method", Value::from(method.clone())));
        fields.push(("route", Value::from(route.clone())));
        if injected && info.code == "fault_injected" {
            fields.push(("fault", Value::from("error")));
        }
        ids(&mut fields);
        inner.log.log(level, error_msg(info.code), fields);
    }
    let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    let mut fields = vec![
        ("method", Value::from(method)),
        ("route", Value::from(route)),
        ("status", Value::from(status)),
        ("duration", Value::from(duration_ms)),
    ];
    ids(&mut fields);
    inner.log.log(level, "request completed", fields);
    response
}

/// The server span's attributes known before the handler runs (HTTP semantic conventions).
fn span_attributes(
    req: &Request,
    method: &str,
    matched: Option<&str>,
    configured_port: u16,
) -> Vec<KeyValue> {
    let headers = req.headers();
    let mut attrs = vec![
        KeyValue::new("http.request.method", method.to_string()),
        KeyValue::new("url.path", req.uri().path().to_string()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("network.protocol.version", protocol_version(req.version())),
    ];
    if let Some(r) = matched {
        attrs.push(KeyValue::new("http.route", r.to_string()));
    }
    if let Some(q) = req.uri().query() {
        attrs.push(KeyValue::new("url.query", q.to_string()));
    }
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        attrs.push(KeyValue::new("client.address", peer.ip().to_string()));
        attrs.push(KeyValue::new("client.port", i64::from(peer.port())));
    }
    // Semantic conventions take server.address/port from what the client dialled: a proxy's
    // X-Forwarded-Host first, else the Host header. The port falls back to the local port the
    // connection came in on, then to the configured one (0 when bound ephemerally).
    let dialled = headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .or_else(|| headers.get("host").and_then(|v| v.to_str().ok()));
    let local_port = req
        .extensions()
        .get::<LocalAddr>()
        .map_or(configured_port, |l| l.0.port());
    let (address, port) = server_address(dialled, local_port);
    if let Some(a) = address {
        attrs.push(KeyValue::new("server.address", a));
    }
    if port != 0 {
        attrs.push(KeyValue::new("server.port", i64::from(port)));
    }
    if let Some(ua) = headers.get("user-agent").and_then(|v| v.to_str().ok()) {
        attrs.push(KeyValue::new("user_agent.original", ua.to_string()));
    }
    if let Some(b) = headers.get("baggage").and_then(|v| v.to_str().ok()) {
        // Synthetic traffic marks itself in baggage; keep the mark on the span for filtering.
        if b.contains("synthetic=true") {
            attrs.push(KeyValue::new("synthetic", true));
        }
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_to_server_address() {
        assert_eq!(
            server_address(Some("127.0.0.1:8080"), 3001),
            (Some("127.0.0.1".into()), 8080)
        );
        assert_eq!(
            server_address(Some("example.com"), 3001),
            (Some("example.com".into()), 3001)
        );
        assert_eq!(
            server_address(Some("[::1]:9000"), 0),
            (Some("::1".into()), 9000)
        );
        assert_eq!(server_address(Some("[::1]"), 0), (Some("::1".into()), 0));
        assert_eq!(server_address(None, 3001), (None, 3001));
    }

    #[test]
    fn made_up_methods_are_other() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap()),
            "_OTHER"
        );
        assert_eq!(route_label("/api/todos/{id}"), "/api/todos/:id");
    }
}
