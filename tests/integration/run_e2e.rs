//! End to end against a real todo-api on a loopback socket: the generator's own counts equal the
//! app's `tp2devops_http_requests_total` exactly; an interrupted run and a target that dies
//! mid-run still write a report with what happened.

use std::collections::BTreeMap;
use std::future::pending;

use trafficgen::exit::Exit;
use trafficgen::plan::TodoOp;
use trafficgen::recorder::ErrorKind;
use trafficgen::report::Report;
use trafficgen::report::VerdictState;

use crate::support::{self, App};

/// The (method, route) each built-in operation hits.
fn route_of(op: &str) -> (&'static str, &'static str) {
    let (m, id) = match op {
        "create" => ("POST", false),
        "list" => ("GET", false),
        "get" => ("GET", true),
        "update" => ("PUT", true),
        "toggle" => ("PATCH", true),
        "delete" => ("DELETE", true),
        other => panic!("unknown op {other}"),
    };
    (m, if id { "/api/todos/:id" } else { "/api/todos" })
}

fn normalize_route(r: &str) -> String {
    r.replace("{id}", ":id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_operation_and_status_counts_equal_the_apps_counters() {
    let app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let plan = support::plan(
        Some(app.base()),
        support::open_load(150.0, 2),
        support::crud_mix(),
        Some(report_path.clone()),
    );
    let mut out = Vec::new();
    let outcome = trafficgen::app::run_plan(plan, 2, &mut out, pending())
        .await
        .expect("run");
    assert_eq!(
        outcome,
        Exit::Judged(VerdictState::NoThresholds),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let report = Report::read(&report_path).expect("report written");
    assert!(!report.interrupted);

    let mut mine: BTreeMap<(String, String, u16), u64> = BTreeMap::new();
    let mut empty_pool = 0;
    for (name, op) in &report.ops {
        let (m, r) = route_of(name);
        for &(code, n) in &op.counts.status {
            *mine
                .entry((m.to_string(), r.to_string(), code))
                .or_default() += n;
        }
        // Every request got an answer: no transport errors on a healthy loopback target.
        for k in [
            ErrorKind::Connect,
            ErrorKind::Timeout,
            ErrorKind::Io,
            ErrorKind::Protocol,
        ] {
            assert_eq!(op.counts.errors[k.index()], 0, "{name}: {k:?}");
        }
        empty_pool += op.counts.empty_pool;
    }
    let theirs: BTreeMap<(String, String, u16), u64> = app
        .requests_total()
        .await
        .into_iter()
        .filter(|((_, r, _), _)| r.starts_with("/api/todos"))
        .map(|((m, r, s), n)| ((m, normalize_route(&r), s), n))
        .collect();
    assert_eq!(mine, theirs, "generator vs app counters");
    // 300 arrivals; those of pool operations that found the pool empty were not sent.
    assert_eq!(report.totals.counts.requests + empty_pool, 300);
    assert!(
        mine.get(&("POST".into(), "/api/todos".into(), 201))
            .copied()
            .unwrap_or(0)
            > 50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_run_writes_the_report_and_says_so() {
    let app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let plan = support::plan(
        Some(app.base()),
        support::open_load(100.0, 60),
        vec![support::todo_op("list", 1, TodoOp::List)],
        Some(report_path.clone()),
    );
    let addr = app.addr;
    let mut out = Vec::new();
    // The "signal" arrives once the app has seen 30 requests: mid-run by construction.
    let outcome = trafficgen::app::run_plan(plan, 1, &mut out, support::when_app_counted(addr, 30))
        .await
        .expect("run");
    assert_eq!(
        outcome,
        Exit::Judged(VerdictState::Interrupted),
        "an interrupted run is not a pass"
    );
    let report = Report::read(&report_path).expect("report written");
    assert!(report.interrupted);
    assert!(
        report.duration_s < 30.0,
        "stopped early: {}",
        report.duration_s
    );
    let sent = report.totals.counts.requests;
    assert!(sent >= 30, "{sent}");
    // Drained: everything sent got its answer and the app counted exactly that.
    assert_eq!(app.todo_requests().await, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_down_mid_run_counts_errors_and_still_reports() {
    let mut app = App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let plan = support::plan(
        Some(app.base()),
        support::closed_load(2, 3),
        vec![support::todo_op("list", 1, TodoOp::List)],
        Some(report_path.clone()),
    );
    let addr = app.addr;
    let mut out = Vec::new();
    let run = trafficgen::app::run_plan(plan, 1, &mut out, pending());
    let kill = async {
        support::when_app_counted(addr, 50).await;
        app.shut_down().await;
    };
    let (outcome, ()) = tokio::join!(run, kill);
    let outcome = outcome.expect("run");
    assert_eq!(
        outcome,
        Exit::Judged(VerdictState::NoThresholds),
        "no thresholds: errors alone do not fail the run"
    );
    let report = Report::read(&report_path).expect("report written");
    let c = &report.totals.counts;
    let transport: u64 = [ErrorKind::Connect, ErrorKind::Io, ErrorKind::Timeout]
        .iter()
        .map(|k| c.errors[k.index()])
        .sum();
    assert!(transport > 0, "errors counted by kind: {:?}", c.errors);
    assert!(
        c.status_class[1] >= 50,
        "answers before the target died: {:?}",
        c.status_class
    );
    assert_eq!(c.requests, c.status_class.iter().sum::<u64>() + transport);
    // No span export is configured: an id that was not exported is never shown.
    assert!(
        report.failed.is_empty() && report.slowest.is_empty(),
        "trace ids shown without export: {:?}",
        report.failed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_capture_from_one_response_into_the_next_request() {
    use trafficgen::plan::template::Scope;
    use trafficgen::plan::{
        Capture, CaptureSource, Check, FlowStep, OpKind, Operation, RequestTemplate, Template,
    };
    let app = App::start().await;
    let env = |_: &str| None;
    let scope = Scope {
        constants: &[],
        captures: &["id".to_string(), "where".to_string()],
        env: &env,
    };
    let step = |name: &str,
                method: &str,
                path: &str,
                body: Option<&str>,
                captures: Vec<Capture>,
                status: u16| FlowStep {
        name: name.into(),
        request: RequestTemplate {
            method: method.into(),
            path: Template::compile(path, &scope).unwrap(),
            headers: vec![],
            body: body.map(|b| Template::compile(b, &scope).unwrap()),
            from_capture: path.starts_with("{{"),
        },
        captures,
        checks: vec![Check::Status(vec![(status, status)])],
    };
    let flow = vec![
        step(
            "create",
            "POST",
            "/api/todos",
            Some(r#"{"text":"flow {{seq}}"}"#),
            vec![
                Capture {
                    var: "id".into(),
                    from: CaptureSource::JsonPointer("/id".into()),
                },
                Capture {
                    var: "where".into(),
                    from: CaptureSource::Header("location".into()),
                },
            ],
            201,
        ),
        step("read", "GET", "/api/todos/{{id}}", None, vec![], 200),
        step("again", "GET", "{{where}}", None, vec![], 200),
    ];
    let op = Operation {
        name: "flow".into(),
        weight: 1,
        kind: OpKind::Flow(flow),
        checks: vec![],
        follow_redirects: None,
        expect_status: Vec::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let plan = support::plan(
        Some(app.base()),
        support::open_load(20.0, 1),
        vec![op],
        Some(report_path.clone()),
    );
    let mut out = Vec::new();
    let outcome = trafficgen::app::run_plan(plan, 1, &mut out, pending())
        .await
        .expect("run");
    assert_eq!(outcome, Exit::Judged(VerdictState::NoThresholds));
    let report = Report::read(&report_path).unwrap();
    let flow = &report.ops[0].1;
    let c = &flow.counts;
    assert_eq!(c.requests, 20, "20 flows (of 3 steps each)");
    assert_eq!(
        c.status,
        vec![(200, 20)],
        "a flow's status is its last step's"
    );
    assert_eq!((c.checks_passed, c.checks_failed), (60, 0));
    // Each step has its own figures; the flow's duration covers all three.
    let steps: Vec<(&str, u64)> = flow
        .steps
        .iter()
        .map(|(n, s)| (n.as_str(), s.counts.requests))
        .collect();
    assert_eq!(steps, vec![("create", 20), ("read", 20), ("again", 20)]);
    assert_eq!(flow.steps[0].1.counts.status, vec![(201, 20)]);
    let slowest_step = flow
        .steps
        .iter()
        .map(|(_, s)| s.response_time_ms.p50)
        .fold(0.0, f64::max);
    assert!(
        flow.response_time_ms.p50 >= slowest_step,
        "a flow lasts at least as long as its slowest step"
    );
    assert_eq!(report.totals.counts.requests, 20);
    let theirs = app.requests_total().await;
    let get_one: u64 = theirs
        .iter()
        .filter(|((m, r, s), _)| {
            m == "GET" && r != "/api/todos" && r.starts_with("/api/todos") && *s == 200
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(get_one, 40, "every captured id was found: {theirs:?}");
}
