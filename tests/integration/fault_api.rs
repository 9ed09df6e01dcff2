//! A server-side fault window that could not be applied fails the run (`faults_failed`, exit
//! 96) and is marked failed in the progress, the summary and the report: against a real
//! todo-api without a fault API (404), with a token it refuses (401), and — the control — with
//! the right token, where the same scenario applies the window and passes.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const TOKEN: &str = "right-token";

async fn todo_api(token: Option<&str>) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = todo_api::Config {
        faults_enabled: true,
        fault_token: token.map(str::to_string),
        log: todo_api::LogOutput::Off,
        shutdown_grace: Duration::from_millis(100),
        ..todo_api::Config::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(todo_api::serve(
        listener,
        todo_api::AppState::new(config),
        async move {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: Value,
}

fn run(addr: std::net::SocketAddr, token: &str, dir: &std::path::Path, name: &str) -> Ran {
    let scenario = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &scenario,
        format!(
            "name: fault-api\n\
             target:\n  url: http://{addr}\n\
             load:\n  stages:\n    - {{duration: 3s, rate: 40/s}}\n\
             mix:\n  operations:\n    - todo: create\n    - todo: list\n\
             faults:\n  - {{start: 1s, duration: 1s, kind: latency, delay: 50ms, via: server, route: /api/todos, method: GET}}\n\
             thresholds:\n  errors: \"rate<1%\"\n\
             output:\n  progress: plain\n  interval: 500ms\n"
        ),
    )
    .unwrap();
    let report = dir.join(format!("{name}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_trafficgen"))
        .arg("run")
        .arg(&scenario)
        .arg("--report")
        .arg(&report)
        .env("TRAFFICGEN_FAULT_TOKEN", token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(
        &std::fs::read(&report).unwrap_or_else(|e| panic!("no report ({e}): {stderr}")),
    )
    .unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        report,
    }
}

fn assert_failed(r: &Ran, reason: &str) {
    assert_eq!(r.code, Some(96), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.report["verdict"]["state"], "faults_failed");
    assert_eq!(r.report["verdict"]["exit_code"], 96);
    assert_eq!(r.report["passed"], false);
    let why = r.report["faults"][0]["failed"].as_str().unwrap_or_default();
    assert!(why.contains(reason), "{why}");
    // Progress: the failure when it happens, and the window marked on the lines after.
    assert!(
        r.stderr
            .contains("fault window #0 latency/server FAILED, not applied"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("faults #0 latency/server FAILED"),
        "{}",
        r.stderr
    );
    // Summary: the window line and the verdict line.
    assert!(r.stdout.contains("FAILED, not applied:"), "{}", r.stdout);
    let last = r.stdout.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with("FAULTS FAILED: 1 server-side fault window(s)"),
        "{last}"
    );
    assert!(!r.stderr.contains(TOKEN), "the token is never shown");
    // It did not happen: no second of the timeline has it active.
    assert!(!window_in_timeline(&r.report), "{}", r.report["timeline"]);
}

fn window_in_timeline(report: &Value) -> bool {
    report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| !p["faults"].as_array().unwrap().is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_window_the_target_refuses_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();

    let (addr, stop) = todo_api(None).await;
    let d = dir.path().to_path_buf();
    let r = tokio::task::spawn_blocking(move || run(addr, TOKEN, &d, "no-api"))
        .await
        .unwrap();
    assert_failed(&r, "HTTP 404 (the target has no fault API");
    let _ = stop.send(());

    let (addr, stop) = todo_api(Some("another-token")).await;
    let d = dir.path().to_path_buf();
    let r = tokio::task::spawn_blocking(move || run(addr, TOKEN, &d, "refused"))
        .await
        .unwrap();
    assert_failed(&r, "HTTP 401 (wrong or missing fault token)");
    let _ = stop.send(());

    // Control: the same scenario against a target that accepts the token applies the window.
    let (addr, stop) = todo_api(Some(TOKEN)).await;
    let d = dir.path().to_path_buf();
    let r = tokio::task::spawn_blocking(move || run(addr, TOKEN, &d, "applied"))
        .await
        .unwrap();
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.report["verdict"]["state"], "passed");
    assert!(r.report["faults"][0].get("failed").is_none());
    assert!(window_in_timeline(&r.report), "{}", r.report["timeline"]);
    assert!(
        r.stderr.contains("faults #0 latency/server"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("FAILED"), "{}", r.stderr);
    let _ = stop.send(());
}
