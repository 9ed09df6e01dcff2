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
