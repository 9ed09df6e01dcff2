//! The `todo-api` binary: configuration errors exit 2 naming the variable; it serves on the
//! port it reports and stops cleanly on SIGINT (the SIGTERM path is in `otlp`).

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{ChildGuard, poll};

#[test]
fn bad_environment_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_todo-api"))
        .env_clear()
        .env("PORT", "not-a-port")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PORT") && err.contains("not-a-port"), "{err}");
}

#[tokio::test]
async fn serves_then_stops_on_sigint() {
    let mut app = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_todo-api"))
            .env_clear()
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("LOG", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = app.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the app reports its address");
    let base = line
        .split("listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"))
        .trim()
        .to_string();
    let r = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert!(r.text().await.unwrap().contains(r#"route="/health""#));

    assert!(
        Command::new("kill")
            .args(["-INT", &app.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = poll(
        "exit after SIGINT",
        Duration::from_secs(30),
        Duration::from_millis(20),
        async || app.0.try_wait().unwrap(),
    )
    .await;
    assert!(status.success(), "{status}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut app.0.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(stdout.is_empty(), "LOG=off writes nothing: {stdout}");
}

#[test]
fn an_unsupported_otlp_protocol_is_a_start_up_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_todo-api"))
        .env_clear()
        .env("PORT", "0")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && err.contains("http/json"),
        "{err}"
    );
}
