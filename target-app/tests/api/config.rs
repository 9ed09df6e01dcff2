//! `Config::from_lookup` (what `from_env` reads), tested over a map: the process environment
//! is never touched.

use std::collections::HashMap;
use std::time::Duration;

use todo_api::{Config, LogOutput};

fn from(pairs: &[(&str, &str)]) -> Result<Config, todo_api::ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_are_the_seed_backend() {
    let c = from(&[]).unwrap();
    assert_eq!(c.port, 3001);
    assert_eq!(c.service_name, "tp2devops-backend");
    assert!(!c.faults_enabled && c.fault_token.is_none() && !c.otlp_export);
    assert_eq!(c.log, LogOutput::Stdout);
}

#[test]
fn every_variable_is_read() {
    let c = from(&[
        ("PORT", "0"),
        ("HOST", "127.0.0.1"),
        ("MAX_TODOS", "7"),
        ("FAULTS_ENABLED", "true"),
        ("FAULT_TOKEN", "t0k"),
        ("LOG", "off"),
        ("SHUTDOWN_GRACE_SECONDS", "1.5"),
        ("OTEL_SERVICE_NAME", "svc"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:4318/v1/traces",
        ),
    ])
    .unwrap();
    assert_eq!(
        (c.port, c.host.to_string(), c.max_todos),
        (0, "127.0.0.1".to_string(), 7)
    );
    assert!(c.faults_enabled);
    assert_eq!(c.fault_token.as_deref(), Some("t0k"));
    assert_eq!(c.log, LogOutput::Off);
    assert_eq!(c.shutdown_grace, Duration::from_millis(1500));
    assert_eq!(c.service_name, "svc");
    assert!(c.otlp_export);
    assert!(
        from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:4318")])
            .unwrap()
            .otlp_export
    );
    assert!(
        from(&[("FAULT_TOKEN", "")]).unwrap().fault_token.is_none(),
        "an empty token is no token"
    );
}

#[test]
fn bad_values_name_the_variable() {
    for (k, v) in [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("HOST", "localhost:1"),
        ("MAX_TODOS", "-1"),
        ("FAULTS_ENABLED", "perhaps"),
        ("LOG", "file"),
    ] {
        let e = from(&[(k, v)]).unwrap_err();
        assert_eq!(e.name, k);
        assert!(e.to_string().contains(k), "{e}");
    }
}

#[test]
fn hardening_sampling_and_otlp_variables_are_read() {
    let c = from(&[]).unwrap();
    assert_eq!(c.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.body_read_timeout, Duration::from_secs(30));
    assert_eq!(
        (c.max_connections, c.max_headers, c.log_queue_lines),
        (10_000, 100, 8192)
    );
    assert!(!c.trace_infra_routes);
    assert_eq!(c.sampler, todo_api::Sampler::AlwaysOn);
    assert_eq!(c.otlp_protocol, todo_api::OtlpProtocol::HttpProtobuf);
    let c = from(&[
        ("HEADER_READ_TIMEOUT_SECONDS", "2.5"),
        ("IDLE_TIMEOUT_SECONDS", "7"),
        ("BODY_READ_TIMEOUT_SECONDS", "3"),
        ("MAX_CONNECTIONS", "50"),
        ("MAX_HEADERS", "40"),
        ("LOG_QUEUE_LINES", "16"),
        ("TRACE_INFRA_ROUTES", "true"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ])
    .unwrap();
    assert_eq!(c.header_read_timeout, Duration::from_millis(2500));
    assert_eq!(c.idle_timeout, Duration::from_secs(7));
    assert_eq!(c.body_read_timeout, Duration::from_secs(3));
    assert_eq!(
        (c.max_connections, c.max_headers, c.log_queue_lines),
        (50, 40, 16)
    );
    assert!(c.trace_infra_routes);
    assert_eq!(c.sampler, todo_api::Sampler::Ratio(0.25));
    assert_eq!(c.otlp_protocol, todo_api::OtlpProtocol::Grpc);
    assert_eq!(
        from(&[("OTEL_TRACES_SAMPLER", "always_off")])
            .unwrap()
            .sampler,
        todo_api::Sampler::AlwaysOff
    );
    // The per-signal protocol wins over the general one.
    assert_eq!(
        from(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ])
        .unwrap()
        .otlp_protocol,
        todo_api::OtlpProtocol::HttpProtobuf
    );
}

#[test]
fn bad_hardening_sampling_and_otlp_values_name_the_variable() {
    for (k, v) in [
        ("HEADER_READ_TIMEOUT_SECONDS", "0"),
        ("IDLE_TIMEOUT_SECONDS", "-1"),
        ("BODY_READ_TIMEOUT_SECONDS", "soon"),
        ("MAX_CONNECTIONS", "0"),
        ("MAX_HEADERS", "100000"),
        ("LOG_QUEUE_LINES", "x"),
        ("TRACE_INFRA_ROUTES", "maybe"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"),
    ] {
        let e = from(&[(k, v)]).unwrap_err();
        assert_eq!(e.name, k, "{e}");
        assert!(e.to_string().contains(k), "{e}");
    }
    let e = from(&[
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
    ])
    .unwrap_err();
    assert_eq!(e.name, "OTEL_TRACES_SAMPLER_ARG");
    let e = from(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).unwrap_err();
    assert!(e.to_string().contains("grpc, http/protobuf"), "{e}");
}

/// Time values that would overflow (`Duration::from_secs_f64` panics on `inf` and `1e30`) or
/// mean nothing are startup errors naming the variable, never a panic.
#[test]
fn time_values_are_checked_not_panics() {
    for name in [
        "SHUTDOWN_GRACE_SECONDS",
        "HEADER_READ_TIMEOUT_SECONDS",
        "IDLE_TIMEOUT_SECONDS",
        "BODY_READ_TIMEOUT_SECONDS",
    ] {
        for v in ["inf", "-inf", "1e30", "nan", "NaN", "-5", "86401", "ten"] {
            let e = from(&[(name, v)]).expect_err(&format!("{name}={v} is refused"));
            assert_eq!(e.name, name, "{name}={v}: {e}");
        }
    }
    assert_eq!(
        from(&[("SHUTDOWN_GRACE_SECONDS", "0")])
            .unwrap()
            .shutdown_grace,
        Duration::ZERO,
        "no grace is allowed"
    );
    assert_eq!(
        from(&[("SHUTDOWN_GRACE_SECONDS", "86400")])
            .unwrap()
            .shutdown_grace,
        Duration::from_secs(86_400)
    );
}
