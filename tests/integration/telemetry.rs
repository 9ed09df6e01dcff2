//! The generator's own telemetry against real parts: promtool lints the exposition, the
//! Pushgateway and a remote-write Prometheus receive the final push, an OTLP receiver (rotel)
//! gets the client spans. Snapshots are built by hand, so these tests need no engine.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use hdrhistogram::Histogram;
use trafficgen::recorder::{Counts, OpSnapshot, Snapshot, TraceRef};
use trafficgen::report::{AssertionResult, Report, ThresholdResult};
use trafficgen::telemetry::metrics::Identity;
use trafficgen::telemetry::{Config, Format, Telemetry};

// The process helpers live in `support` (one copy per test binary); re-exported for the
// telemetry test modules.
pub(crate) use super::support::{Proc, binary, free_port, wait_ready};

mod links;
pub(crate) mod otlp;
mod pushes;
mod traces;

pub(crate) const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

// ---------------------------------------------------------------- fixtures

pub(crate) fn hist(values_us: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for &v in values_us {
        h.record(v).unwrap();
    }
    h
}

/// `create`: 3 answered (2×2xx, 1×5xx) + 1 timeout; `list`: nothing yet.
pub(crate) fn snapshot(finished: bool) -> Snapshot {
    let create = OpSnapshot {
        name: "create".into(),
        counts: Counts {
            requests: 4,
            status_class: [0, 2, 0, 0, 1],
            status: vec![(201, 2), (503, 1)],
            errors: [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
            dropped: 5,
            late: 6,
            empty_pool: 0,
            checks_passed: 2,
            checks_failed: 1,
            faults_latency: 1,
            faults_error: 1,
            ..Counts::default()
        },
        // 0.5 ms, 2 ms, 20 ms, 3 s
        response_time: hist(&[500, 2_000, 20_000, 3_000_000]),
        service_time: hist(&[400, 1_900, 19_000, 2_900_000]),
        lag: hist(&[100, 100, 1_000, 100_000]),
        last_trace: Some(TraceRef {
            trace_id: TRACE.into(),
            op: "create".into(),
            at_ms: 12.0,
            response_time_ms: 20.0,
            status: Some(201),
            error: None,
            fault: None,
        }),
        phases: Default::default(),
    };
    let list = OpSnapshot {
        name: "list".into(),
        counts: Counts::default(),
        response_time: hist(&[]),
        service_time: hist(&[]),
        lag: hist(&[]),
        last_trace: None,
        phases: Default::default(),
    };
    Snapshot {
        elapsed: Duration::from_secs(3),
        ops: vec![create, list],
        target_rate: 50.0,
        achieved_rate: 48.5,
        in_flight: 3,
        vus: 0,
        active_faults: vec![1],
        slowest: vec![],
        failed: vec![],
        faulted: vec![],
        fault_injected: vec![],
        finished,
        steps: vec![],
    }
}

pub(crate) fn config(run_id: &str) -> Config {
    Config {
        identity: Identity {
            scenario: "smoke \"quoted\"".into(),
            run_id: run_id.into(),
            ops: vec!["create".into(), "list".into()],
            windows: vec!["latency".into(), "error".into()],
            steps: vec![],
        },
        outputs: trafficgen::plan::Telemetry {
            metrics_addr: None,
            linger: Duration::ZERO,
            pushgateway: None,
            remote_write: None,
            trace_sample_ratio: 1.0,
            instance: None,
        },
        otlp: Default::default(),
        instance: "itest-host".into(),
    }
}

pub(crate) fn report(run_id: &str) -> Report {
    Report {
        run_id: run_id.into(),
        scenario: "smoke".into(),
        target_url: "http://127.0.0.1:1".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        ended_at: "2026-01-01T00:00:03Z".into(),
        duration_s: 3.0,
        thresholds: vec![
            ThresholdResult {
                window: None,
                source: "p95(response_time) < 500ms".into(),
                passed: true,
                observed: Some(20.0),
                message: String::new(),
            },
            ThresholdResult {
                window: None,
                source: "error_rate < 1%".into(),
                passed: false,
                observed: Some(0.5),
                message: String::new(),
            },
        ],
        verify: vec![AssertionResult {
            name: "5xx seen by prometheus".into(),
            passed: false,
            query: "sum(x)".into(),
            observed: None,
            expected: None,
            attempts: 1,
            message: String::new(),
            skipped: false,
        }],
        ..Report::default()
    }
}

pub(crate) fn line_value(text: &str, prefix: &str) -> Option<String> {
    text.lines().find(|l| l.starts_with(prefix)).map(|l| {
        l[prefix.len()..]
            .trim()
            .split(' ')
            .next()
            .unwrap_or("")
            .to_string()
    })
}

// ---------------------------------------------------------------- exposition

#[tokio::test]
async fn exposition_is_set_from_snapshots_and_passes_promtool() {
    let mut t = Telemetry::start_with(config("r1")).await.unwrap();
    // Before any snapshot: the series exist at zero.
    let before = t.render(Format::Prometheus);
    assert!(before.contains(r#"trafficgen_requests_total{scenario="smoke \"quoted\"",op="create",run_id="r1",status_class="2xx"} 0"#), "{before}");

    t.observe(&snapshot(false));
    t.observe(&snapshot(false)); // counters are set, not added: a second tick changes nothing
    let text = t.render(Format::Prometheus);
    let l = r#"scenario="smoke \"quoted\"",op="create",run_id="r1""#;
    assert_eq!(
        line_value(
            &text,
            &format!("trafficgen_requests_total{{{l},status_class=\"2xx\"}}")
        )
        .as_deref(),
        Some("2")
    );
    assert_eq!(
        line_value(
            &text,
            &format!("trafficgen_requests_total{{{l},status_class=\"none\"}}")
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        line_value(
            &text,
            &format!("trafficgen_errors_total{{{l},kind=\"timeout\"}}")
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        line_value(&text, &format!("trafficgen_dropped_total{{{l}}}")).as_deref(),
        Some("5")
    );
    assert_eq!(
        line_value(
            &text,
            &format!("trafficgen_checks_total{{{l},result=\"fail\"}}")
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        line_value(
            &text,
            &format!("trafficgen_faults_injected_total{{{l},kind=\"error\"}}")
        )
        .as_deref(),
        Some("1")
    );
    // µs → seconds, cumulative ≤ le: 0.5 ms ≤ 0.001; 2 ms ≤ 0.0025; 20 ms ≤ 0.025; 3 s ≤ 5.
    let b = |le: &str| {
        line_value(
            &text,
            &format!("trafficgen_response_time_seconds_bucket{{{l},le=\"{le}\"}}"),
        )
    };
    assert_eq!(b("0.001").as_deref(), Some("1"));
    assert_eq!(b("0.0025").as_deref(), Some("2"));
    assert_eq!(b("0.01").as_deref(), Some("2"));
    assert_eq!(b("0.025").as_deref(), Some("3"));
    assert_eq!(b("2.5").as_deref(), Some("3"));
    assert_eq!(b("5").as_deref(), Some("4"));
    assert_eq!(b("+Inf").as_deref(), Some("4"));
    let sum: f64 = line_value(
        &text,
        &format!("trafficgen_response_time_seconds_sum{{{l}}}"),
    )
    .unwrap()
    .parse()
    .unwrap();
    assert!((sum - 3.0225).abs() < 0.01, "sum {sum}");
    let all = r#"scenario="smoke \"quoted\"",op="all",run_id="r1""#;
    assert_eq!(
        line_value(&text, &format!("trafficgen_achieved_rate{{{all}}}")).as_deref(),
        Some("48.5")
    );
    assert_eq!(
        line_value(
            &text,
            &format!("trafficgen_fault_window_active{{{all},window=\"1\",kind=\"error\"}}")
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        line_value(
            &text,
            &format!("trafficgen_fault_window_active{{{all},window=\"0\",kind=\"latency\"}}")
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        line_value(&text, &format!("trafficgen_run_finished{{{all}}}")).as_deref(),
        Some("0")
    );
    // The Prometheus text format has no exemplars.
    assert!(!text.contains("# {"), "{text}");

    t.publish_report(&report("r1"));
    let text = t.render(Format::Prometheus);
    assert_eq!(
        line_value(
            &text,
            &format!("trafficgen_threshold_failing{{{all},threshold=\"error_rate < 1%\"}}")
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        line_value(
            &text,
            &format!(
                "trafficgen_threshold_failing{{{all},threshold=\"p95(response_time) < 500ms\"}}"
            )
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        line_value(
            &text,
            &format!("trafficgen_assertion_failing{{{all},assertion=\"5xx seen by prometheus\"}}")
        )
        .as_deref(),
        Some("1")
    );
    assert_eq!(
        line_value(&text, &format!("trafficgen_run_finished{{{all}}}")).as_deref(),
        Some("1")
    );

    let promtool = binary("PROMTOOL_BIN", "promtool");
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {:?}\n{}{}\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn openmetrics_carries_the_trace_id_exemplar() {
    let mut t = Telemetry::start_with(config("r2")).await.unwrap();
    t.observe(&snapshot(false));
    let om = t.render(Format::OpenMetrics);
    assert!(om.ends_with("# EOF\n"));
    // OpenMetrics names the counter family without `_total`, its samples with it.
    assert!(om.contains("# TYPE trafficgen_requests counter\n"), "{om}");
    // The 20 ms exemplar sits on the le=0.025 bucket, and only there.
    let l = r#"scenario="smoke \"quoted\"",op="create",run_id="r2""#;
    let want = format!(
        "trafficgen_response_time_seconds_bucket{{{l},le=\"0.025\"}} 3 # {{trace_id=\"{TRACE}\"}} 0.02\n"
    );
    assert!(om.contains(&want), "{om}");
    assert_eq!(om.matches("trace_id=").count(), 1, "{om}");
}

#[tokio::test]
async fn metrics_are_served_negotiated_and_linger_until_finish_returns() {
    let mut cfg = config("r3");
    cfg.outputs.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    cfg.outputs.linger = Duration::from_secs(3);
    let mut t = Telemetry::start_with(cfg).await.unwrap();
    let addr: SocketAddr = t.metrics_addr().unwrap();
    assert_ne!(addr.port(), 0);
    t.observe(&snapshot(true));
    let url = format!("http://{addr}/metrics");
    let client = reqwest::Client::new();

    let r = client.get(&url).send().await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("trafficgen_requests_total{")
    );
    let r = client
        .get(&url)
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));

    // During the linger the final values (with the verdicts) are served.
    let finish = tokio::spawn(async move { t.finish(&report("r3")).await });
    let all = r#"scenario="smoke \"quoted\"",op="all",run_id="r3""#;
    let mut seen = false;
    for _ in 0..100 {
        let body = client.get(&url).send().await.unwrap().text().await.unwrap();
        if line_value(
            &body,
            &format!("trafficgen_threshold_failing{{{all},threshold=\"error_rate < 1%\"}}"),
        )
        .as_deref()
            == Some("1")
        {
            assert_eq!(
                line_value(&body, &format!("trafficgen_run_finished{{{all}}}")).as_deref(),
                Some("1")
            );
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen, "final values never served during the linger");
    let problems = finish.await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    // After the linger the endpoint is gone.
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}

#[tokio::test]
async fn a_taken_metrics_port_fails_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = config("r4");
    cfg.outputs.metrics_addr = Some(taken.local_addr().unwrap());
    let err = Telemetry::start_with(cfg)
        .await
        .err()
        .expect("bind must fail");
    assert!(err.to_string().contains("cannot serve metrics"), "{err}");
}
