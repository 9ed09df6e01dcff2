//! Secrets are never printed: a run with a secret planted in every place one can go (URL
//! credentials of the remote-write and Pushgateway URLs, a target header, the fault token,
//! OTLP headers, a verify backend's headers) whose pushes, exports, fault calls and queries
//! all fail (so every error path prints), and `run --help` with the URLs in the environment.
//! Every output is searched for each secret: stdout, stderr, the report file, `/metrics`.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::telemetry::free_port;

const SECRETS: [&str; 7] = [
    "PushPassw0rd1",
    "RwPassw0rd22",
    "HdrT0ken333",
    "FaultT0ken4444",
    "OtlpT0ken55555",
    "PromT0ken666666",
    "HelpPassw0rd77",
];

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_appear_in_no_output() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let config = todo_api::Config {
        faults_enabled: true,
        fault_token: Some("another-token".into()),
        log: todo_api::LogOutput::Off,
        shutdown_grace: Duration::from_millis(100),
        ..todo_api::Config::default()
    };
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(todo_api::serve(
        listener,
        todo_api::AppState::new(config),
        async move {
            let _ = stopped.await;
        },
    ));
    // Nothing listens on these (the listeners are dropped): every push/export/query fails.
    let (closed1, closed2, closed3, closed4) = (free_port(), free_port(), free_port(), free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.yaml");
    std::fs::write(
        &scenario,
        format!(
            r#"name: secrets
target:
  url: http://{api}
  headers:
    Authorization: "Bearer {hdr}"
load:
  stages:
    - duration: 2s
      rate: 20/s
mix:
  operations:
    - todo: create
faults:
  - start: 0s
    duration: 1s
    kind: error
    status: 500
    via: server
    route: /api/todos
telemetry:
  metrics_addr: {metrics}
  linger: 2s
  pushgateway: http://pusher:{push}@127.0.0.1:{closed1}
  remote_write: http://writer:{rw}@127.0.0.1:{closed2}/api/v1/write
  trace_sample_ratio: 1
verify:
  prometheus_url: http://127.0.0.1:{closed3}
  deadline: 5s
  interval: 1s
  assertions:
    - promql: up
"#,
            hdr = SECRETS[2],
            push = SECRETS[0],
            rw = SECRETS[1],
        ),
    )
    .unwrap();
    let report = dir.path().join("r.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trafficgen"));
    cmd.arg("run")
        .arg(&scenario)
        .arg("--report")
        .arg(&report)
        .arg("--no-progress")
        .env("TRAFFICGEN_FAULT_TOKEN", SECRETS[3])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{closed4}"),
        )
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("Authorization=Bearer%20{}", SECRETS[4]),
        )
        .env(
            "TRAFFICGEN_PROMETHEUS_HEADERS",
            format!("Authorization=Bearer%20{}", SECRETS[5]),
        )
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    // /metrics while the run lingers (the final values, with the verdict).
    let mut exposition = String::new();
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(format!("http://{metrics}/metrics")).await
            && let Ok(t) = r.text().await
        {
            let done = t.contains("trafficgen_run_finished{") && t.contains("} 1\n");
            exposition = t;
            if done {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The failures did happen (so their messages were printed) and name what failed.
    assert!(
        stderr.contains("pushgateway push to http://pusher:***@127.0.0.1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("remote write to http://writer:***@127.0.0.1"),
        "{stderr}"
    );
    assert!(stderr.contains("fault window 0"), "{stderr}");
    assert!(
        exposition.contains("trafficgen_requests_total"),
        "{exposition}"
    );
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &stderr);
    assert_clean("/metrics", &exposition);
    assert_clean("the report", &std::fs::read_to_string(&report).unwrap());

    // `run --help` shows which variables exist, not their values.
    let help = Command::new(env!("CARGO_BIN_EXE_trafficgen"))
        .args(["run", "--help"])
        .env(
            "TRAFFICGEN_PUSHGATEWAY",
            format!("http://u:{}@h:9091", SECRETS[6]),
        )
        .env(
            "TRAFFICGEN_REMOTE_WRITE",
            format!("http://u:{}@h/api/v1/write", SECRETS[6]),
        )
        .env(
            "TRAFFICGEN_TARGET_URL",
            format!("http://u:{}@h", SECRETS[6]),
        )
        .env(
            "TRAFFICGEN_GRAFANA_URL",
            format!("http://u:{}@grafana", SECRETS[6]),
        )
        .output()
        .unwrap();
    let help_text = String::from_utf8_lossy(&help.stdout);
    assert!(help_text.contains("TRAFFICGEN_PUSHGATEWAY"), "{help_text}");
    assert_clean("run --help", &help_text);
}
