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
//!
//! The generator embeds this library in its own process, so nothing here is process-global:
//! every `AppState` owns its store, metrics, tracer provider, log sink and fault rules.

use std::future::Future;
use std::sync::Arc;

pub mod config;
pub mod error;
pub mod faults;
pub mod logging;
pub mod metrics;
mod middleware;
mod routes;
pub mod store;
pub mod trace;

pub use config::{Config, ConfigError, LogOutput};

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
        let log = logging::Logger::new(config.log.clone());
        AppState {
            inner: Arc::new(Inner {
                store: store::Store::new(config.max_todos),
                metrics: metrics::Metrics::default(),
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
        self.inner.metrics.render(&self.inner.store, openmetrics)
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

/// Serves `app(state)` on `listener` until `shutdown` resolves, then stops accepting, gives
/// in-flight requests at most `config.shutdown_grace` to finish, and flushes telemetry.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.inner.config.shutdown_grace;
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    // Peer addresses feed the server span's client.address / client.port.
    let service = app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    });
    let server = server.into_future();
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r,
        _ = async {
            // Once shutdown began, bound the drain: a stuck client must not hold the process.
            let _ = stopping_rx.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => Ok(()),
    };
    let flush = state.clone();
    let _ = tokio::task::spawn_blocking(move || flush.shutdown_telemetry()).await;
    result
}
