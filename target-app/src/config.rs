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
    /// `off`), `SHUTDOWN_GRACE_SECONDS`, `OTEL_SERVICE_NAME`, and turns span export on when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
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
            c.faults_enabled = match v.trim() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => {
                    return Err(ConfigError {
                        name: "FAULTS_ENABLED",
                        value: v,
                        reason: "expected true or false".into(),
                    });
                }
            };
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
            c.shutdown_grace =
                Duration::from_secs_f64(parse::<f64>("SHUTDOWN_GRACE_SECONDS", v)?.max(0.0));
        }
        if let Some(v) = get("OTEL_SERVICE_NAME").filter(|v| !v.is_empty()) {
            c.service_name = v;
        }
        c.otlp_export = get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some_and(|v| !v.is_empty())
            || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some_and(|v| !v.is_empty());
        Ok(c)
    }
}
