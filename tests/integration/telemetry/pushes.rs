//! Final pushes (Pushgateway, remote write) and scrapes by a real Prometheus.

use crate::support::{ScrapeJob, prometheus};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Proc, TRACE, binary, config, free_port, report, snapshot, wait_ready};
use trafficgen::telemetry::Telemetry;

#[tokio::test]
async fn final_push_reaches_a_real_pushgateway() {
    let bin = binary("PUSHGATEWAY_BIN", "prometheus-pushgateway");
    let port = free_port();
    let _pg = Proc(
        Command::new(&bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display())),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/-/ready")).await;

    let mut cfg = config("push-1");
    cfg.outputs.pushgateway = Some(base.clone());
    let mut t = Telemetry::start_with(cfg).await.unwrap();
    t.observe(&snapshot(true));
    let problems = t.finish(&report("push-1")).await;
    assert!(problems.is_empty(), "{problems:?}");

    let body = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = body
        .lines()
        .find(|l| {
            l.starts_with("trafficgen_requests_total{")
                && l.contains(r#"job="trafficgen-push""#)
                && l.contains(r#"instance="itest-host""#)
                && l.contains(r#"op="create""#)
                && l.contains(r#"run_id="push-1""#)
                && l.contains(r#"status_class="5xx""#)
        })
        .unwrap_or_else(|| panic!("pushed series not on the Pushgateway:\n{body}"));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("trafficgen_run_finished{") && l.ends_with(" 1")),
        "{body}"
    );
}

#[tokio::test]
async fn a_failing_push_is_reported_not_fatal() {
    // Nothing listens on this port once the listener is dropped.
    let port = free_port();
    let mut cfg = config("push-2");
    cfg.outputs.pushgateway = Some(format!("http://127.0.0.1:{port}"));
    cfg.outputs.remote_write = Some(format!("http://127.0.0.1:{port}/api/v1/write"));
    let t = Telemetry::start_with(cfg).await.unwrap();
    let problems = t.finish(&report("push-2")).await;
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("pushgateway"), "{problems:?}");
    assert!(problems[1].contains("remote write"), "{problems:?}");
}

/// Percent-encodes a query parameter value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls an instant query until it returns a result (bounded); returns the first value.
async fn query_value(base: &str, q: &str) -> f64 {
    let client = reqwest::Client::new();
    for _ in 0..150 {
        let v: serde_json::Value = client
            .get(format!("{base}/api/v1/query?query={}", enc(q)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(s) = v["data"]["result"][0]["value"][1].as_str() {
            return s.parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no result for {q}");
}

#[tokio::test]
async fn remote_write_lands_in_a_real_prometheus() {
    let (_p, base, _dir) = prometheus(&[]).await;
    let mut cfg = config("rw-1");
    cfg.outputs.remote_write = Some(format!("{base}/api/v1/write"));
    let mut t = Telemetry::start_with(cfg).await.unwrap();
    t.observe(&snapshot(true));
    let problems = t.finish(&report("rw-1")).await;
    assert!(problems.is_empty(), "{problems:?}");

    let v = query_value(&base, r#"trafficgen_requests_total{run_id="rw-1",op="create",status_class="2xx",job="trafficgen-push",instance="itest-host"}"#).await;
    assert_eq!(v, 2.0);
    let v = query_value(
        &base,
        r#"trafficgen_response_time_seconds_bucket{run_id="rw-1",op="create",le="0.025"}"#,
    )
    .await;
    assert_eq!(v, 3.0);
    let v = query_value(
        &base,
        r#"trafficgen_threshold_failing{run_id="rw-1",threshold="error_rate < 1%"}"#,
    )
    .await;
    assert_eq!(v, 1.0);
}

#[tokio::test]
async fn a_real_prometheus_scrapes_values_and_exemplars() {
    let mut cfg = config("scrape-1");
    cfg.outputs.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let mut t = Telemetry::start_with(cfg).await.unwrap();
    t.observe(&snapshot(false));
    let (_p, base, _dir) = prometheus(&[ScrapeJob::new(
        "trafficgen",
        &[&t.metrics_addr().unwrap().to_string()],
    )])
    .await;

    let v = query_value(
        &base,
        r#"trafficgen_errors_total{run_id="scrape-1",op="create",kind="status_5xx"}"#,
    )
    .await;
    assert_eq!(v, 1.0);
    // The exemplar made it through OpenMetrics into Prometheus's exemplar storage.
    let client = reqwest::Client::new();
    let mut found = String::new();
    for _ in 0..150 {
        let body = client
            .get(format!("{base}/api/v1/query_exemplars?query=trafficgen_response_time_seconds_bucket&start=0&end=9999999999"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body.contains(TRACE) {
            found = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        found.contains(TRACE),
        "no exemplar with the trace id in Prometheus"
    );
    let problems = t.finish(&report("scrape-1")).await;
    assert!(problems.is_empty(), "{problems:?}");
}
