//! Where and how the generator's OTLP signals go, read from the standard
//! `OTEL_EXPORTER_OTLP_*` variables once at start-up: protocol (`grpc` or `http/protobuf`,
//! general or per signal), endpoints (the base `OTEL_EXPORTER_OTLP_ENDPOINT`, to which the
//! HTTP signal path is appended, or the per-signal `…_TRACES_ENDPOINT` / `…_METRICS_ENDPOINT`,
//! used as they are) and headers (`key=value,…`, URL-decoded, per signal or general).
//!
//! A value we cannot honour is a start-up error that names the variable: silently exporting
//! nothing (or the wrong protocol) is what the variables' users cannot see.

use std::fmt;

use crate::secrets;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OtlpEnvError {
    #[error("{var}={value:?} is not supported (use grpc or http/protobuf)")]
    Protocol { var: &'static str, value: String },
    #[error("{var}: {message}")]
    Headers { var: &'static str, message: String },
    #[error("{var}: {message}")]
    Endpoint { var: &'static str, message: String },
}

/// The wire protocol of one signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// One signal's destination.
#[derive(Clone, PartialEq)]
pub struct Signal {
    pub protocol: Protocol,
    /// The full URL: for HTTP including `/v1/traces` or `/v1/metrics`; for gRPC the server.
    pub endpoint: String,
    /// Header (gRPC: metadata) name and value; values may be credentials.
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values and URL credentials are secrets: never in debug output.
        f.debug_struct("Signal")
            .field("protocol", &self.protocol)
            .field("endpoint", &secrets::mask_url(&self.endpoint))
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| format!("{k}: ***"))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Signal {
    /// An HTTP/protobuf destination at `base` (`http://host:4318`) for `path` (`/v1/traces`).
    pub fn http(base: &str, path: &str) -> Signal {
        Signal {
            protocol: Protocol::HttpProtobuf,
            endpoint: format!("{}{path}", base.trim_end_matches('/')),
            headers: Vec::new(),
        }
    }

    /// A gRPC destination (`http://host:4317`).
    pub fn grpc(endpoint: &str) -> Signal {
        Signal {
            protocol: Protocol::Grpc,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            headers: Vec::new(),
        }
    }
}

/// Both signals; `None` = that signal is not exported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OtlpEnv {
    pub traces: Option<Signal>,
    pub metrics: Option<Signal>,
}

const GENERAL: Names = Names {
    endpoint: "OTEL_EXPORTER_OTLP_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_HEADERS",
    exporter: "",
    path: "",
};
const TRACES: Names = Names {
    endpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    exporter: "OTEL_TRACES_EXPORTER",
    path: "/v1/traces",
};
const METRICS: Names = Names {
    endpoint: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    protocol: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    headers: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    exporter: "OTEL_METRICS_EXPORTER",
    path: "/v1/metrics",
};

struct Names {
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    exporter: &'static str,
    path: &'static str,
}

impl OtlpEnv {
    /// From the process environment.
    pub fn from_env() -> Result<OtlpEnv, OtlpEnvError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any lookup (tests pass a map; the process environment is never changed).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<OtlpEnv, OtlpEnvError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Ok(OtlpEnv {
            traces: signal(&get, &TRACES)?,
            metrics: signal(&get, &METRICS)?,
        })
    }
}

fn signal(
    get: &impl Fn(&str) -> Option<String>,
    names: &Names,
) -> Result<Option<Signal>, OtlpEnvError> {
    // `OTEL_TRACES_EXPORTER=none` / `OTEL_METRICS_EXPORTER=none`: the standard off switch
    // (the compose and k8s files keep metrics to the scrape this way).
    if get(names.exporter).is_some_and(|v| v == "none") {
        return Ok(None);
    }
    let (protocol_var, protocol_text) = match get(names.protocol) {
        Some(v) => (names.protocol, Some(v)),
        None => (GENERAL.protocol, get(GENERAL.protocol)),
    };
    let protocol = match protocol_text.as_deref() {
        None | Some("http/protobuf") => Protocol::HttpProtobuf,
        Some("grpc") => Protocol::Grpc,
        Some(other) => {
            return Err(OtlpEnvError::Protocol {
                var: protocol_var,
                value: other.to_string(),
            });
        }
    };
    let endpoint = match (get(names.endpoint), get(GENERAL.endpoint)) {
        (Some(e), _) => check_url(names.endpoint, e)?,
        (None, Some(base)) => {
            let base = check_url(GENERAL.endpoint, base)?;
            match protocol {
                // The spec: the base endpoint gets the signal's path under HTTP, not under gRPC.
                Protocol::HttpProtobuf => format!("{}{}", base.trim_end_matches('/'), names.path),
                Protocol::Grpc => base,
            }
        }
        (None, None) => return Ok(None),
    };
    let (headers_var, headers_text) = match get(names.headers) {
        Some(v) => (names.headers, Some(v)),
        None => (GENERAL.headers, get(GENERAL.headers)),
    };
    let headers = match headers_text {
        Some(t) => secrets::parse_headers(&t).map_err(|message| OtlpEnvError::Headers {
            var: headers_var,
            message,
        })?,
        None => Vec::new(),
    };
    Ok(Some(Signal {
        protocol,
        endpoint,
        headers,
    }))
}

fn check_url(var: &'static str, url: String) -> Result<String, OtlpEnvError> {
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(url),
        Ok(u) => Err(OtlpEnvError::Endpoint {
            var,
            message: format!("scheme {:?} is not http or https", u.scheme()),
        }),
        Err(e) => Err(OtlpEnvError::Endpoint {
            var,
            message: format!("{:?} is not a URL: {e}", secrets::mask_url(&url)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<OtlpEnv, OtlpEnvError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtlpEnv::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn nothing_set_exports_nothing() {
        assert_eq!(env(&[]).unwrap(), OtlpEnv::default());
    }

    #[test]
    fn base_endpoint_gets_signal_paths_under_http_only() {
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]).unwrap();
        assert_eq!(e.traces.unwrap().endpoint, "http://c:4318/v1/traces");
        assert_eq!(e.metrics.unwrap().endpoint, "http://c:4318/v1/metrics");
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .unwrap();
        let t = e.traces.unwrap();
        assert_eq!(
            (t.protocol, t.endpoint.as_str()),
            (Protocol::Grpc, "http://c:4317")
        );
    }

    #[test]
    fn per_signal_endpoint_protocol_and_headers_win() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                "Authorization=Bearer%20x, X-Scope-OrgID=t1",
            ),
        ])
        .unwrap();
        let t = e.traces.unwrap();
        assert_eq!(t.protocol, Protocol::Grpc);
        assert_eq!(t.endpoint, "http://t:4317");
        assert_eq!(t.headers, vec![("a".to_string(), "1".to_string())]);
        let m = e.metrics.unwrap();
        assert_eq!(m.endpoint, "http://c:4318/v1/metrics");
        assert_eq!(
            m.headers,
            vec![
                ("Authorization".to_string(), "Bearer x".to_string()),
                ("X-Scope-OrgID".to_string(), "t1".to_string())
            ]
        );
        // Only a per-signal metrics endpoint: traces stay off.
        let e = env(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m/v1/metrics")]).unwrap();
        assert!(e.traces.is_none());
        assert_eq!(e.metrics.unwrap().endpoint, "http://m/v1/metrics");
    }

    #[test]
    fn unsupported_values_name_their_variable() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().starts_with("OTEL_EXPORTER_OTLP_PROTOCOL="),
            "{e}"
        );
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "udp"),
        ])
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"),
            "{e}"
        );
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization"),
        ])
        .unwrap_err();
        assert!(
            e.to_string().starts_with("OTEL_EXPORTER_OTLP_HEADERS:"),
            "{e}"
        );
        let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318")]).unwrap_err();
        assert!(e.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{e}");
    }

    #[test]
    fn exporter_none_turns_a_signal_off() {
        let e = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ])
        .unwrap();
        assert!(e.traces.is_some() && e.metrics.is_none());
    }

    #[test]
    fn debug_output_hides_header_values_and_url_credentials() {
        let s = Signal {
            protocol: Protocol::HttpProtobuf,
            endpoint: "http://u:hunter2@c:4318/v1/traces".into(),
            headers: vec![("Authorization".into(), "Bearer hunter2".into())],
        };
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("Authorization"), "{d}");
    }
}
