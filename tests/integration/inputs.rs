//! The input side of a run through the real binary: expected statuses are not errors; the
//! seed is printed, stored and replays a run's choices; pre-run checks of the report path and
//! the listen addresses; `report merge` refuses different plans and runs.

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    let mut c = Command::cargo_bin("trafficgen").expect("trafficgen binary");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TRAFFICGEN_") {
            c.env_remove(k);
        }
    }
    c.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    c.current_dir(root());
    c.timeout(Duration::from_secs(60));
    c
}

fn report(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written")).expect("json")
}

/// Requests and errors of operation `name` in a report.
fn op_counts(r: &serde_json::Value, name: &str) -> (u64, u64) {
    let ops = r["ops"].as_array().expect("ops");
    let (_, op) = ops
        .iter()
        .filter_map(|o| Some((o[0].as_str()?, &o[1])))
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no op {name}"));
    let errors: u64 = op["counts"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e.as_u64().unwrap_or(0))
        .sum();
    (op["counts"]["requests"].as_u64().unwrap_or(0), errors)
}

/// Every request of the fixture gets a 404 from the embedded todo-api: where the 404 is
/// expected (a status check, `expect_status`) it is no error; elsewhere it is.
#[test]
fn expected_statuses_are_not_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.json");
    let out = bin()
        .args([
            "run",
            "tests/fixtures/runs/expected-status.yaml",
            "--seed",
            "3",
        ])
        .arg("--report")
        .arg(&path)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r = report(&path);
    for (name, expected) in [
        ("checked", true),
        ("expected", true),
        ("plain", false),
        ("wrong", false),
    ] {
        let (requests, errors) = op_counts(&r, name);
        assert!(requests > 0, "{name}: no requests");
        let want = if expected { 0 } else { requests };
        assert_eq!(errors, want, "{name}: {requests} requests, {errors} errors");
    }
}
