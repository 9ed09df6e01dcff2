//! Every way a run can end — passed, no thresholds, threshold failed, verify failed, both,
//! interrupted, aborted by a threshold — run for real against an in-test todo-api: the summary's
//! last line, the report's verdict record and the exit code must agree (one `Verdict` decides
//! all three).

use std::future::{Future, pending};
use std::net::SocketAddr;

use trafficgen::exit::Exit;
use trafficgen::report::{Report, VerdictState};

use super::support::{self, App};

/// A Prometheus stand-in whose every instant query returns the one-sample vector `5` (the
/// verdict's plumbing is under test here; real Prometheus answers are tested in `verify`).
async fn constant_prometheus() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/api/v1/query",
        axum::routing::any(|| async {
            axum::Json(serde_json::json!({
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "5"]}]}
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

struct Ended {
    exit: Exit,
    summary: String,
    report: Report,
}

async fn run(yaml: &str, shutdown: impl Future<Output = ()>) -> Ended {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let overrides = trafficgen::plan::Overrides {
        report: Some(path.clone()),
        ..Default::default()
    };
    let plan = trafficgen::plan::build_from_str(yaml, "ends.yaml", None, &overrides, &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let mut out = Vec::new();
    let exit = trafficgen::app::run_plan(plan, 1, &mut out, shutdown)
        .await
        .expect("run");
    Ended {
        exit,
        summary: String::from_utf8(out).unwrap(),
        report: Report::read(&path).expect("report written"),
    }
}

/// The three views agree and say `state`.
fn agree(e: &Ended, state: VerdictState) {
    assert_eq!(e.exit, Exit::Judged(state), "{}", e.summary);
    assert_eq!(e.report.verdict.state, state);
    assert_eq!(e.report.verdict.exit_code, e.exit.code());
    assert_eq!(e.report.passed, state.is_pass());
    let last = e
        .summary
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap();
    assert_eq!(last, e.report.verdict.message, "{}", e.summary);
}

fn scenario(app: &App, secs: u32, thresholds: &str, verify: &str) -> String {
    format!(
        "name: ends\ntarget:\n  url: http://127.0.0.1:{port}\nload:\n  stages:\n    - duration: {secs}s\n      rate: 40/s\nmix:\n  operations:\n    - todo: list\n      weight: 1\n{thresholds}{verify}",
        port = app.addr.port()
    )
}

fn verify_section(prom: SocketAddr, expected: u32) -> String {
    format!(
        "verify:\n  prometheus_url: http://{prom}\n  deadline: 1s\n  interval: 200ms\n  assertions:\n    - name: five\n      promql: vector(5)\n      expect: \"== {expected}\"\n"
    )
}

const HOLDS: &str = "thresholds:\n  errors: \"rate<1%\"\n";
const FAILS: &str = "thresholds:\n  requests: \"count<1\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passed_and_no_thresholds() {
    let app = App::start().await;
    let (prom, _p) = constant_prometheus().await;
    let e = run(
        &scenario(&app, 1, HOLDS, &verify_section(prom, 5)),
        pending(),
    )
    .await;
    agree(&e, VerdictState::Passed);
    assert_eq!(e.exit.code(), 0);
    assert!(e.report.verdict.message.starts_with("PASSED"));
    let e = run(&scenario(&app, 1, "", ""), pending()).await;
    agree(&e, VerdictState::NoThresholds);
    assert_eq!(e.exit.code(), 0);
    assert!(e.report.verdict.message.contains("nothing was judged"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_verify_and_both_failed() {
    let app = App::start().await;
    let (prom, _p) = constant_prometheus().await;
    let e = run(&scenario(&app, 1, FAILS, ""), pending()).await;
    agree(&e, VerdictState::ThresholdsFailed);
    assert_eq!(e.exit.code(), 99);
    let e = run(
        &scenario(&app, 1, HOLDS, &verify_section(prom, 6)),
        pending(),
    )
    .await;
    agree(&e, VerdictState::VerifyFailed);
    assert_eq!(e.exit.code(), 100);
    let e = run(
        &scenario(&app, 1, FAILS, &verify_section(prom, 6)),
        pending(),
    )
    .await;
    agree(&e, VerdictState::ThresholdsAndVerifyFailed);
    assert_eq!(e.exit.code(), 99);
    assert!(
        e.report
            .verdict
            .message
            .contains("1 of 1 threshold(s) and 1 of 1 assertion(s)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_and_aborted() {
    let app = App::start().await;
    // The "signal" arrives once the app has seen 20 requests, mid-run by construction; the
    // thresholds hold, and still the run did not pass.
    let e = run(
        &scenario(&app, 60, HOLDS, ""),
        support::when_app_counted(app.addr, 20),
    )
    .await;
    agree(&e, VerdictState::Interrupted);
    assert_eq!(e.exit.code(), 105);
    assert!(e.report.thresholds.iter().all(|t| t.passed));
    let aborting =
        "thresholds:\n  requests:\n    - threshold: \"count<5\"\n      abort_on_fail: true\n";
    let e = run(&scenario(&app, 60, aborting, ""), pending()).await;
    agree(&e, VerdictState::Aborted);
    assert_eq!(e.exit.code(), 98);
    assert!(e.report.duration_s < 30.0, "{}", e.report.duration_s);
    assert!(e.report.verdict.message.contains("count<5"));
}
