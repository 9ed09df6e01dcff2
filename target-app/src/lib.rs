//! todo-api: the bundled, instrumented todo REST API (library + binary), a Rust rewrite of the
//! seed system's Express backend with the same metric names, log fields and span names.
//!
//! # Layout
//! - `config`: `Config` and its environment mapping (the binary's only input).
//! - `store`: the bounded in-memory todo store.
//! - `error`: the one JSON error shape (`error`, `message`) and the JSON extractor that maps
//!   every body rejection onto it.
//! - `metrics`: the `tp2devops_*` series and their two text encodings (exemplars in OpenMetrics).
//! - `trace`: W3C `traceparent` in, server and child spans out (per-instance tracer provider).
//! - `logging`: Pino-style JSON lines.
//! - `faults`: fault headers and the `/admin/faults` rules.
//! - `routes`: the HTTP surface; `middleware` wraps every request with span, metrics and log.
//! - `server`: the accept loop and connection bounds (timeouts, connection limit, JSON answers
//!   to unparsable requests, graceful shutdown).
//!
//! The generator embeds this library in its own process, so nothing here is process-global:
//! every `AppState` owns its store, metrics, tracer provider, log sink and fault rules.

use std::sync::Arc;

pub mod config;
pub mod error;
pub mod faults;
pub mod logging;
pub mod metrics;
mod middleware;
mod routes;
mod server;
pub mod store;
pub mod trace;

pub use config::{Config, ConfigError, LogOutput, OtlpProtocol, Sampler, SpanMemory};
pub use server::serve;

/// Shared state of one app instance. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: Config,
    pub store: store::Store,
    pub metrics: metrics::Metrics,
    pub tracing: trace::Tracing,
    pub log: logging::Logger,
    pub faults: faults::Rules,
}

impl AppState {
    pub fn new(config: Config) -> AppState {
        let log = logging::Logger::new(config.log.clone(), config.log_queue_lines);
        let metrics = metrics::Metrics::default();
        // The series queries and before/after deltas rely on exist at 0 from the first scrape
        // on: every API operation's success series, and with fault headers on, the fault
        // counters of both API routes (their labels are known now; error statuses of header
        // faults are not, those appear with their first request).
        for route in faults::ROUTES {
            for (method, status) in match route {
                "/api/todos" => &[("GET", 200), ("POST", 201)][..],
                _ => &[("GET", 200), ("PUT", 200), ("PATCH", 200), ("DELETE", 204)][..],
            } {
                metrics.ensure_request(method, route, *status);
            }
            if config.faults_enabled {
                metrics.ensure_fault(route, "latency");
                metrics.ensure_fault(route, "error");
            }
        }
        AppState {
            inner: Arc::new(Inner {
                store: store::Store::new(config.max_todos),
                metrics,
                tracing: trace::Tracing::new(&config),
                faults: faults::Rules::default(),
                log,
                config,
            }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The metrics exposition as `/metrics` would serve it (for tests and embedding).
    pub fn render_metrics(&self, openmetrics: bool) -> String {
        self.inner
            .metrics
            .render(&self.inner.store, self.inner.log.dropped(), openmetrics)
    }

    /// A new fault rule's series at 0: its fault counters, and for an error rule the request
    /// series of the status it answers on every (method, route) it can match.
    pub(crate) fn ensure_rule_series(&self, spec: &faults::RuleSpec) {
        let m = &self.inner.metrics;
        for route in faults::ROUTES {
            if spec.route.as_deref().is_some_and(|r| r != route) {
                continue;
            }
            if spec.delay_ms.is_some_and(|d| d > 0) || spec.kind == faults::RuleKind::Latency {
                m.ensure_fault(route, "latency");
            }
            if let (faults::RuleKind::Error, Some(status)) = (spec.kind, spec.status) {
                m.ensure_fault(route, "error");
                for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                    if spec
                        .method
                        .as_deref()
                        .is_none_or(|x| x.eq_ignore_ascii_case(method))
                        && !faults::spans_of(method, route).is_empty()
                    {
                        m.ensure_request(method, route, status);
                    }
                }
            }
        }
    }

    /// Exports finished spans and stops the exporter (idempotent).
    pub fn shutdown_telemetry(&self) {
        self.inner.tracing.shutdown();
    }
}

/// The whole HTTP surface as an axum `Router` (for `oneshot` tests and embedding).
pub fn app(state: AppState) -> axum::Router {
    routes::router(state)
}
