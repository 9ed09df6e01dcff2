//! The binary's exit codes and flag precedence, through real processes (assert_cmd): invalid
//! scenario → 2, target never ready → 3, crossed threshold → 99, SIGTERM mid-run → report
//! written with `interrupted: true`; flag > environment > scenario for the report path;
//! `verify REPORT --scenario S` → 100 when an assertion fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;

fn bin() -> Command {
    let mut c = Command::cargo_bin("trafficgen").expect("trafficgen binary");
    // Nothing from the caller's environment may steer these runs.
    for k in [
        "TRAFFICGEN_TARGET_URL",
        "TRAFFICGEN_REPORT",
        "TRAFFICGEN_RATE",
        "TRAFFICGEN_DURATION",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    c.timeout(Duration::from_secs(60));
    c
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A short open-model scenario against the embedded todo-api (no target url).
fn embedded_scenario(extra: &str) -> String {
    format!(
        "name: cli-test\nload:\n  model: open\n  start_rate: 20/s\n  stages:\n    - {{ duration: 1s, rate: 20/s }}\nmix:\n  operations:\n    - name: list\n      todo: list\noutput:\n  progress: quiet\n{extra}"
    )
}

#[test]
fn invalid_scenario_exits_2_with_the_location() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bad.yaml", &embedded_scenario("lod: 3\n"));
    let out = bin().arg("validate").arg(&p).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:13:"),
        "file and line of the unknown field: {err}"
    );
    let out = bin().arg("run").arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn valid_scenario_validates_and_schema_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ok.yaml", &embedded_scenario(""));
    bin().arg("validate").arg(&p).assert().code(0);
    let out = bin().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("schema is JSON");
    assert!(v.is_object());
}

#[test]
fn bad_command_line_exits_2() {
    bin()
        .args(["run", "x.yaml", "--segment", "3/2"])
        .assert()
        .code(2);
    bin().args(["frobnicate"]).assert().code(2);
}

#[test]
fn target_never_ready_exits_3() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name: never-ready\ntarget:\n  url: http://127.0.0.1:{port}\n  ready: {{ path: /health, timeout: 1s, interval: 100ms }}\nload:\n  stages:\n    - {{ duration: 1s, rate: 5/s }}\nmix:\n  operations:\n    - name: list\n      todo: list\n"
    );
    let p = write(dir.path(), "s.yaml", &text);
    let out = bin().arg("run").arg(&p).arg("--quiet").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn crossed_threshold_exits_99_and_passing_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let p = write(
        dir.path(),
        "t.yaml",
        &embedded_scenario("thresholds:\n  requests: \"count<1\"\n"),
    );
    let out = bin()
        .arg("run")
        .arg(&p)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["passed"], false);
    let p = write(
        dir.path(),
        "ok.yaml",
        &embedded_scenario("thresholds:\n  requests: \"count>5\"\n"),
    );
    let out = bin().arg("run").arg(&p).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn report_path_precedence_is_flag_then_env_then_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let (scen, env, flag) = (
        dir.path().join("scenario.json"),
        dir.path().join("env.json"),
        dir.path().join("flag.json"),
    );
    let p = write(
        dir.path(),
        "p.yaml",
        &embedded_scenario(&format!("  report: {}\n", scen.display())),
    );
    bin()
        .arg("run")
        .arg(&p)
        .env("TRAFFICGEN_REPORT", &env)
        .arg("--report")
        .arg(&flag)
        .assert()
        .code(0);
    assert!(
        flag.exists() && !env.exists() && !scen.exists(),
        "flag wins"
    );
    bin()
        .arg("run")
        .arg(&p)
        .env("TRAFFICGEN_REPORT", &env)
        .assert()
        .code(0);
    assert!(env.exists() && !scen.exists(), "env beats the scenario");
    bin().arg("run").arg(&p).assert().code(0);
    assert!(scen.exists(), "the scenario's path otherwise");
}

#[test]
fn sigterm_mid_run_writes_an_interrupted_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let text = "name: long\nload:\n  stages:\n    - { duration: 60s, rate: 50/s }\nmix:\n  operations:\n    - name: list\n      todo: list\noutput:\n  interval: 200ms\n";
    let p = write(dir.path(), "long.yaml", text);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("trafficgen"))
        .arg("run")
        .arg(&p)
        .arg("--no-progress")
        .arg("--report")
        .arg(&report)
        .env_remove("TRAFFICGEN_TARGET_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-run by construction: the first plain progress line reporting requests.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let seen = lines
        .by_ref()
        .take(200)
        .map_while(Result::ok)
        .any(|l| l.contains(" req,") && !l.contains(" 0 req,"));
    assert!(seen, "no progress line");
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(105),
        "interrupted runs exit 105, never 0"
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report written")).unwrap();
    assert_eq!(r["interrupted"], true);
    assert!(r["duration_s"].as_f64().unwrap() < 30.0);
    assert!(r["totals"]["counts"]["requests"].as_u64().unwrap() > 0);
}

/// `trafficgen verify REPORT --scenario S` re-checks a saved run: an assertion that cannot pass
/// (its Prometheus is not there) exits 100 and names itself; a scenario without a verify
/// section is a usage error (2).
#[test]
fn verify_of_a_saved_report_exits_100_when_an_assertion_fails() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let run = write(dir.path(), "run.yaml", &embedded_scenario(""));
    let out = bin()
        .arg("run")
        .arg(&run)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A port that was free a moment ago: nothing answers there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let check = write(
        dir.path(),
        "check.yaml",
        &embedded_scenario(&format!(
            "verify:\n  prometheus_url: http://127.0.0.1:{closed}\n  deadline: 1s\n  interval: 200ms\n  assertions:\n    - name: requests reached prometheus\n      promql: 'sum(tp2devops_http_requests_total)'\n      expect: \"== requests\"\n"
        )),
    );
    let out = bin()
        .arg("verify")
        .arg(&report)
        .arg("--scenario")
        .arg(&check)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(100),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FAIL requests reached prometheus"),
        "{stdout}"
    );

    let out = bin()
        .arg("verify")
        .arg(&report)
        .arg("--scenario")
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With an OTLP endpoint, the generator exports its own coarse spans (the run and its phases)
/// through the tracing layer, to a real receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generator_exports_its_run_and_phase_spans() {
    use super::telemetry::otlp::{rotel, wait_received};
    let dir = tempfile::tempdir().unwrap();
    let (_rotel, base) = rotel(dir.path()).await;
    let s = write(dir.path(), "s.yaml", &embedded_scenario(""));
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .args(["run", s.to_str().unwrap()])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &base)
            .env("OTEL_METRICS_EXPORTER", "none")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = wait_received(dir.path(), "the run's phase spans", |t| {
        // rotel prints `Name           : run`.
        ["run", "readiness", "load"].iter().all(|n| {
            t.lines().any(|l| {
                l.trim_start().starts_with("Name") && l.trim_end().ends_with(&format!(": {n}"))
            })
        })
    })
    .await;
    assert!(text.contains("service.name: Str(trafficgen)"), "{text}");
}
