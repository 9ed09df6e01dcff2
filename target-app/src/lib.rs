//! todo-api: the bundled, instrumented todo REST API (library + binary).
//!
//! (CONTRACT for the generator, which embeds it when a scenario has no `target.url`: `Config`,
//! `LogOutput`, `AppState::new`, `app`, `serve` keep these signatures. OWNER: api helper —
//! replaces the bodies, may add fields to `Config` (with defaults) and more items.)

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

/// Runtime configuration. `Default` is the seed's behaviour (port 3001, faults off); the
/// binary reads it from the environment with `from_env`.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    /// Upper bound of the in-memory store; a POST beyond it gets a JSON 507/409-style error.
    pub max_todos: usize,
    /// Honour `X-Fault-*` headers.
    pub faults_enabled: bool,
    /// Bearer token of `/admin/faults`; `None` = the fault API does not exist.
    pub fault_token: Option<String>,
    pub log: LogOutput,
    /// OTel `service.name` (default `tp2devops-backend`, `OTEL_SERVICE_NAME` overrides).
    pub service_name: String,
    /// On shutdown, in-flight requests get at most this long to finish.
    pub shutdown_grace: Duration,
}

/// Where the JSON log lines go. Embedded in the generator: `Off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    Off,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::from([0, 0, 0, 0]),
            port: 3001,
            max_todos: 10_000,
            faults_enabled: false,
            fault_token: None,
            log: LogOutput::Stdout,
            service_name: "tp2devops-backend".into(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Shared state of one app instance (store, metrics registry, tracer, fault rules). No
/// process-global state: two instances in one process are independent.
#[derive(Clone)]
pub struct AppState {}

impl AppState {
    pub fn new(_config: Config) -> AppState {
        todo!("api helper")
    }
}

/// The whole HTTP surface as an axum `Router` (for `oneshot` tests and embedding).
pub fn app(_state: AppState) -> axum::Router {
    todo!("api helper")
}

/// Serves `app(state)` on `listener` until `shutdown` resolves, then drains in-flight requests
/// within `config.shutdown_grace` and flushes telemetry.
pub async fn serve(
    _listener: tokio::net::TcpListener,
    _state: AppState,
    _shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    todo!("api helper")
}
