//! Runtime configuration of one app instance and its mapping from environment variables.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runtime configuration. `Default` is the seed's behaviour (port 3001, faults off, logs on
/// stdout, no span export); the binary reads it from the environment with `from_env`.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    /// Upper bound of the in-memory store; a POST beyond it gets a JSON 507 error.
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
    /// Export spans over OTLP/HTTP (endpoint and headers from the standard `OTEL_EXPORTER_OTLP_*`
    /// variables). Off: spans and trace ids still exist for logs and exemplars.
    pub otlp_export: bool,
    /// Full OTLP/HTTP traces URL (`http://host:4318/v1/traces`) set programmatically, for an
    /// embedding process that cannot set environment variables. Implies export; `None` = the
    /// standard variables decide.
    pub otlp_traces_endpoint: Option<String>,
    /// Longest accepted todo text, in characters.
    pub max_text_len: usize,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// From the first byte of a request head to its end; a slower head closes the connection.
    pub header_read_timeout: Duration,
    /// How long a connection may sit without a request (before the first one, and between
    /// keep-alive requests) before it is closed.
    pub idle_timeout: Duration,
    /// From the start of a request to the last byte of its body; slower gets `408`.
    pub body_read_timeout: Duration,
    /// Open connections at most; beyond it the listener stops accepting until one closes.
    pub max_connections: usize,
    /// Header fields per request at most; more gets `431`.
    pub max_headers: usize,
    /// Log lines that may wait for the stdout writer; beyond it lines are dropped and counted.
    pub log_queue_lines: usize,
    /// Trace `/metrics`, `/health` and `/ready` too (off: they are counted and logged only).
    pub trace_infra_routes: bool,
    /// How root spans (no caller context) are sampled; a caller's sampled flag always decides
    /// for its children.
    pub sampler: Sampler,
    /// OTLP transport of the span export.
    pub otlp_protocol: OtlpProtocol,
    /// Spans collected in memory (tests read them back); counts as a configured exporter.
    pub span_memory: Option<SpanMemory>,
}

/// Finished spans collected in memory.
pub type SpanMemory = Arc<Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>;

/// The root sampler of `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`. Whatever it is, a
/// caller's `traceparent` decides for the spans under it (parent-based).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    /// Share of root traces kept, in [0, 1].
    Ratio(f64),
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL` (or `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    Grpc,
    HttpProtobuf,
}

impl OtlpProtocol {
    /// The protocol the environment asks for (`None`: unset), for an embedder that builds its
    /// `Config` by hand but follows the standard variables. The per-signal variable wins.
    pub fn from_env() -> Result<Option<OtlpProtocol>, ConfigError> {
        Self::from_lookup(&|k: &str| std::env::var(k).ok())
    }

    fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OtlpProtocol>, ConfigError> {
        let (name, v) = match get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").filter(|v| !v.is_empty()) {
            Some(v) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(v)),
            None => (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                get("OTEL_EXPORTER_OTLP_PROTOCOL"),
            ),
        };
        let Some(v) = v.filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        match v.trim() {
            "grpc" => Ok(Some(OtlpProtocol::Grpc)),
            "http/protobuf" => Ok(Some(OtlpProtocol::HttpProtobuf)),
            _ => Err(ConfigError {
                name,
                value: v,
                reason: "supported: grpc, http/protobuf".into(),
            }),
        }
    }
}

/// Where the JSON log lines go. Embedded in the generator: `Off`.
#[derive(Debug, Clone)]
pub enum LogOutput {
    Stdout,
    Off,
    /// Collected in memory (tests read the lines back).
    Memory(Arc<Mutex<Vec<String>>>),
}

impl PartialEq for LogOutput {
    fn eq(&self, other: &Self) -> bool {
        matches!(
            (self, other),
            (LogOutput::Stdout, LogOutput::Stdout) | (LogOutput::Off, LogOutput::Off)
        ) || matches!((self, other), (LogOutput::Memory(a), LogOutput::Memory(b)) if Arc::ptr_eq(a, b))
    }
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
            otlp_export: false,
            otlp_traces_endpoint: None,
            max_text_len: 500,
            max_body_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_headers: 100,
            log_queue_lines: 8192,
            trace_infra_routes: false,
            sampler: Sampler::AlwaysOn,
            otlp_protocol: OtlpProtocol::HttpProtobuf,
            span_memory: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid environment variable {name}={value:?}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

impl Config {
    /// Reads `PORT`, `HOST`, `MAX_TODOS`, `FAULTS_ENABLED`, `FAULT_TOKEN`, `LOG` (`stdout` |
    /// `off`), `LOG_QUEUE_LINES`, `SHUTDOWN_GRACE_SECONDS`, the connection bounds
    /// (`HEADER_READ_TIMEOUT_SECONDS`, `IDLE_TIMEOUT_SECONDS`, `BODY_READ_TIMEOUT_SECONDS`,
    /// `MAX_CONNECTIONS`, `MAX_HEADERS`), `TRACE_INFRA_ROUTES`, `OTEL_SERVICE_NAME`,
    /// `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_EXPORTER_OTLP(_TRACES)_PROTOCOL`, and turns span export
    /// on when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// `from_env` over any lookup (tests pass a map, never touch the process environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, v: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| ConfigError {
                name,
                value: v.clone(),
                reason: e.to_string(),
            })
        }
        let mut c = Config::default();
        if let Some(v) = get("PORT") {
            c.port = parse("PORT", v)?;
        }
        if let Some(v) = get("HOST") {
            c.host = parse("HOST", v)?;
        }
        if let Some(v) = get("MAX_TODOS") {
            c.max_todos = parse("MAX_TODOS", v)?;
        }
        if let Some(v) = get("FAULTS_ENABLED") {
            c.faults_enabled = parse_bool("FAULTS_ENABLED", v)?;
        }
        c.fault_token = get("FAULT_TOKEN").filter(|t| !t.is_empty());
        if let Some(v) = get("LOG") {
            c.log = match v.trim() {
                "stdout" | "" => LogOutput::Stdout,
                "off" => LogOutput::Off,
                _ => {
                    return Err(ConfigError {
                        name: "LOG",
                        value: v,
                        reason: "expected stdout or off".into(),
                    });
                }
            };
        }
        if let Some(v) = get("SHUTDOWN_GRACE_SECONDS") {
            // Checked: `inf`, `1e30` would panic in `Duration::from_secs_f64`, `nan` and
            // negative values mean nothing; 0 (no grace) is allowed.
            let s: f64 = parse("SHUTDOWN_GRACE_SECONDS", v.clone())?;
            if !(0.0..=86_400.0).contains(&s) {
                return Err(ConfigError {
                    name: "SHUTDOWN_GRACE_SECONDS",
                    value: v,
                    reason: "expected seconds in [0, 86400]".into(),
                });
            }
            c.shutdown_grace = Duration::from_secs_f64(s);
        }
        let seconds = |name: &'static str, v: String| -> Result<Duration, ConfigError> {
            let s: f64 = parse(name, v.clone())?;
            if !(s > 0.0 && s <= 86_400.0) {
                return Err(ConfigError {
                    name,
                    value: v,
                    reason: "expected seconds in (0, 86400]".into(),
                });
            }
            Ok(Duration::from_secs_f64(s))
        };
        let count = |name: &'static str, v: String, max: usize| -> Result<usize, ConfigError> {
            let n: usize = parse(name, v.clone())?;
            if n == 0 || n > max {
                return Err(ConfigError {
                    name,
                    value: v,
                    reason: format!("expected 1..={max}"),
                });
            }
            Ok(n)
        };
        if let Some(v) = get("HEADER_READ_TIMEOUT_SECONDS") {
            c.header_read_timeout = seconds("HEADER_READ_TIMEOUT_SECONDS", v)?;
        }
        if let Some(v) = get("IDLE_TIMEOUT_SECONDS") {
            c.idle_timeout = seconds("IDLE_TIMEOUT_SECONDS", v)?;
        }
        if let Some(v) = get("BODY_READ_TIMEOUT_SECONDS") {
            c.body_read_timeout = seconds("BODY_READ_TIMEOUT_SECONDS", v)?;
        }
        if let Some(v) = get("MAX_CONNECTIONS") {
            c.max_connections = count("MAX_CONNECTIONS", v, 1_000_000)?;
        }
        if let Some(v) = get("MAX_HEADERS") {
            c.max_headers = count("MAX_HEADERS", v, 10_000)?;
        }
        if let Some(v) = get("LOG_QUEUE_LINES") {
            c.log_queue_lines = count("LOG_QUEUE_LINES", v, 10_000_000)?;
        }
        if let Some(v) = get("TRACE_INFRA_ROUTES") {
            c.trace_infra_routes = parse_bool("TRACE_INFRA_ROUTES", v)?;
        }
        c.sampler = sampler(get("OTEL_TRACES_SAMPLER"), get("OTEL_TRACES_SAMPLER_ARG"))?;
        if let Some(p) = OtlpProtocol::from_lookup(&get)? {
            c.otlp_protocol = p;
        }
        if let Some(v) = get("OTEL_SERVICE_NAME").filter(|v| !v.is_empty()) {
            c.service_name = v;
        }
        c.otlp_export = get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some_and(|v| !v.is_empty())
            || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some_and(|v| !v.is_empty());
        Ok(c)
    }
}

fn parse_bool(name: &'static str, v: String) -> Result<bool, ConfigError> {
    match v.trim() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError {
            name,
            value: v,
            reason: "expected true or false".into(),
        }),
    }
}

/// The OTel SDK's sampler names. `parentbased_*` and the plain names mean the same here (the
/// parent always decides when there is one); `*_traceidratio` reads the ratio from the ARG.
fn sampler(name: Option<String>, arg: Option<String>) -> Result<Sampler, ConfigError> {
    let Some(v) = name.filter(|v| !v.trim().is_empty()) else {
        return Ok(Sampler::AlwaysOn);
    };
    match v.trim() {
        "always_on" | "parentbased_always_on" => Ok(Sampler::AlwaysOn),
        "always_off" | "parentbased_always_off" => Ok(Sampler::AlwaysOff),
        "traceidratio" | "parentbased_traceidratio" => {
            let Some(a) = arg.filter(|a| !a.trim().is_empty()) else {
                return Ok(Sampler::Ratio(1.0));
            };
            match a.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(Sampler::Ratio(r)),
                _ => Err(ConfigError {
                    name: "OTEL_TRACES_SAMPLER_ARG",
                    value: a,
                    reason: "expected a ratio in [0, 1]".into(),
                }),
            }
        }
        _ => Err(ConfigError {
            name: "OTEL_TRACES_SAMPLER",
            value: v,
            reason: "supported: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio".into(),
        }),
    }
}
