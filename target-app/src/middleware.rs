//! The wrapper around every request: continues the caller's trace with a server span
//! `METHOD /route`, decides the request's fault, then records the seed's metrics (with the
//! trace id as exemplar) and writes the access log line once the response is known.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, Version};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use serde_json::Value;
use tokio::time::Instant;

use crate::AppState;
use crate::faults::{self, Fault};
use crate::logging::Level;
use crate::trace;

/// What a handler needs of the request's telemetry.
#[derive(Clone)]
pub(crate) struct RequestCtx {
    /// Context whose current span is the server span.
    pub cx: Context,
    pub trace_id: String,
    pub span_id: String,
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
    let headers = req.headers();
    let parent =
        trace::parent_from_header(headers.get("traceparent").and_then(|v| v.to_str().ok()));
    let mut attrs = vec![
        KeyValue::new("http.request.method", method.clone()),
        KeyValue::new("url.path", req.uri().path().to_string()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("network.protocol.version", protocol_version(req.version())),
    ];
    if let Some(r) = &matched {
        attrs.push(KeyValue::new("http.route", r.clone()));
    }
    if let Some(q) = req.uri().query() {
        attrs.push(KeyValue::new("url.query", q.to_string()));
    }
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        attrs.push(KeyValue::new("client.address", peer.ip().to_string()));
        attrs.push(KeyValue::new("client.port", i64::from(peer.port())));
    }
    // Semantic conventions take server.address/port from the Host header (what the client
    // dialled); the configured port is only a fallback (it is 0 when bound ephemerally).
    let (address, port) = server_address(
        headers.get("host").and_then(|v| v.to_str().ok()),
        inner.config.port,
    );
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
    // Semantic conventions: `METHOD /route`, or just the method when no route matched.
    let name = matched
        .as_ref()
        .map_or_else(|| method.clone(), |r| format!("{method} {r}"));
    let cx = inner.tracing.server_span(&parent, name, attrs);
    let (trace_id, span_id) = trace::ids(&cx);
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
    req.extensions_mut().insert(RequestCtx {
        cx: cx.clone(),
        trace_id: trace_id.clone(),
        span_id: span_id.clone(),
        route: route.clone(),
        fault,
    });

    let response = next.run(req).await;

    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    inner
        .metrics
        .observe_request(&method, &route, status, elapsed, &trace_id);
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
    if status >= 500 {
        trace::set_error(&cx, format!("HTTP {status}"));
    }
    span.end();
    let level = match status {
        500.. => Level::Error,
        400..=499 => Level::Warn,
        _ => Level::Info,
    };
    let duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    inner.log.log(
        level,
        "request completed",
        vec![
            ("method", Value::from(method)),
            ("route", Value::from(route)),
            ("status", Value::from(status)),
            ("duration", Value::from(duration_ms)),
            ("traceId", Value::from(trace_id)),
            ("spanId", Value::from(span_id)),
        ],
    );
    response
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
