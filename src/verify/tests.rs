//! Tests of `verify`: substitution, ground truth, comparison, answer parsing, and whole runs
//! against in-test HTTP servers answering with Loki's and Tempo's documented response shapes
//! (neither can run here; Prometheus is tested for real in tests/integration/verify.rs).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;

use super::clients::*;
use super::*;
use crate::plan::{Comparison, Segment};
use crate::recorder::TraceRef;
use crate::report::{FaultReport, OpReport};

fn counts(requests: u64, class5: u64, faults_error: u64) -> Counts {
    Counts {
        requests,
        status_class: [0, requests - class5, 0, 0, class5],
        status: vec![(201, requests - class5), (503, class5)],
        errors: [0, 1, 0, 0, 0, class5, 0, 0, 0, 0, 0, 0],
        faults_error,
        faults_latency: 7,
        ..Counts::default()
    }
}

fn report() -> Report {
    let op = |c| OpReport {
        counts: c,
        ..OpReport::default()
    };
    Report {
        version: 1,
        run_id: "r42".into(),
        scenario: "debug-latency".into(),
        source: None,
        target_url: "http://127.0.0.1:1".into(),
        started_at: "2026-01-02T03:04:05Z".into(),
        ended_at: "2026-01-02T03:05:35.5Z".into(),
        duration_s: 90.5,
        interrupted: false,
        aborted: None,
        segment: Segment::WHOLE,
        totals: op(counts(100, 10, 10)),
        ops: vec![
            ("create".into(), op(counts(60, 10, 10))),
            ("list".into(), op(counts(40, 0, 0))),
        ],
        timeline: vec![],
        target_faults: None,
        faults: vec![FaultReport {
            start_s: 20.0,
            end_s: 50.0,
            kind: "latency".into(),
            via: "server".into(),
            ops: vec![],
            route: None,
            share: 1.0,
            injected: None,
            failed: None,
        }],
        slowest: vec![
            trace_ref("0af7651916cd43dd8448eb211c80319c"),
            trace_ref("1bf7651916cd43dd8448eb211c80319c"),
        ],
        failed: vec![],
        faulted: vec![],
        thresholds: vec![],
        verify: vec![],
        passed: true,
        verdict: Default::default(),
        config: Default::default(),
        elapsed_s: 0.0,
        schedule_missed: None,
        cleanup: None,
        control: vec![],
    }
}

fn trace_ref(id: &str) -> TraceRef {
    TraceRef {
        trace_id: id.into(),
        op: "create".into(),
        at_ms: 21_000.0,
        response_time_ms: 850.0,
        status: Some(201),
        error: None,
        fault: None,
    }
}

fn ground(metric: GroundMetric, op: Option<&str>, status: Option<&str>) -> GroundRef {
    GroundRef {
        metric,
        op: op.map(str::to_string),
        status: status.map(str::to_string),
    }
}

#[test]
fn substitution_fills_every_variable() {
    let ctx = RunContext::from_report(&report()).unwrap();
    // Evaluated 60 s after the end: the range reaches back to the start of the run.
    let q = ctx.substitute("x{run_id=\"${run_id}\",s=\"${scenario}\"}[${range}] @ ${end_unix} ${start} ${end} ${start_unix} ${fault_0_start} ${fault_0_end} ${fault_9_end} ${nope} ${open");
    assert_eq!(
        q,
        "x{run_id=\"r42\",s=\"debug-latency\"}[151s] @ 1767323135.500 2026-01-02T03:04:05Z 2026-01-02T03:05:35.5Z 1767323045.000 1767323065.000 1767323095.000 ${fault_9_end} ${nope} ${open"
    );
}

#[test]
fn ground_truth_reads_the_report() {
    let r = report();
    let g = |m, op, st| ground_truth(&r, &ground(m, op, st));
    assert_eq!(g(GroundMetric::Requests, None, None), Ok(100.0));
    assert_eq!(
        g(GroundMetric::Requests, Some("create"), Some("5xx")),
        Ok(10.0)
    );
    assert_eq!(
        g(GroundMetric::Requests, Some("create"), Some("201")),
        Ok(50.0)
    );
    assert_eq!(g(GroundMetric::Requests, None, Some("404")), Ok(0.0));
    assert_eq!(g(GroundMetric::Errors, Some("list"), None), Ok(1.0));
    assert_eq!(g(GroundMetric::FaultsError, None, None), Ok(10.0));
    assert_eq!(
        g(GroundMetric::FaultsLatency, Some("create"), None),
        Ok(7.0)
    );
    assert!(
        g(GroundMetric::Requests, Some("nope"), None)
            .unwrap_err()
            .contains("nope")
    );
    assert!(g(GroundMetric::Requests, None, Some("9xx")).is_err());
    assert_eq!(
        ground_label(&ground(GroundMetric::FaultsError, Some("create"), None)),
        "faults{kind:error,op:create}"
    );
    assert_eq!(
        ground_label(&ground(GroundMetric::Requests, Some("create"), Some("5xx"))),
        "requests{op:create,status:5xx}"
    );
    assert_eq!(
        ground_label(&ground(GroundMetric::Errors, None, None)),
        "errors"
    );
}

fn cmp(comparison: Comparison, value: Expected, tolerance: Tolerance) -> Expect {
    Expect::Compare {
        comparison,
        value,
        tolerance,
    }
}

fn ans(v: Option<f64>) -> Answer {
    Answer {
        value: v,
        items: usize::from(v.is_some()),
    }
}

#[test]
fn judge_applies_tolerance_and_counts_empty_as_zero_only_against_upper_bounds() {
    let r = report();
    let five_xx = Expected::Ground(ground(GroundMetric::Requests, Some("create"), Some("5xx")));
    let e = cmp(Comparison::Eq, five_xx.clone(), Tolerance::Relative(0.1));
    let (ok, expected, msg) = judge(&e, &ans(Some(11.0)), &r).unwrap();
    assert!(ok, "{msg}");
    assert_eq!(
        expected.unwrap(),
        "== 10 (requests{op:create,status:5xx}) ± 10% = 1"
    );
    assert!(!judge(&e, &ans(Some(11.5)), &r).unwrap().0);
    assert!(
        !judge(
            &cmp(Comparison::Eq, five_xx, Tolerance::Absolute(0.0)),
            &ans(Some(10.5)),
            &r
        )
        .unwrap()
        .0
    );
    assert!(
        judge(
            &cmp(
                Comparison::Gt,
                Expected::Number(0.5),
                Tolerance::Absolute(0.0)
            ),
            &ans(Some(0.8)),
            &r
        )
        .unwrap()
        .0
    );
    assert!(
        !judge(
            &cmp(
                Comparison::Gt,
                Expected::Number(0.5),
                Tolerance::Absolute(0.0)
            ),
            &ans(Some(f64::NAN)),
            &r
        )
        .unwrap()
        .0
    );
    assert!(
        !judge(
            &cmp(
                Comparison::Gt,
                Expected::Number(0.0),
                Tolerance::Absolute(0.0)
            ),
            &ans(None),
            &r
        )
        .unwrap()
        .0,
        "empty never passes > 0"
    );
    let (ok, _, msg) = judge(
        &cmp(
            Comparison::Eq,
            Expected::Number(0.0),
            Tolerance::Absolute(0.0),
        ),
        &ans(None),
        &r,
    )
    .unwrap();
    assert!(ok && msg.contains("counted as 0"), "{msg}");
    assert!(judge(&Expect::NonEmpty, &ans(Some(0.0)), &r).unwrap().0);
    assert!(!judge(&Expect::NonEmpty, &ans(None), &r).unwrap().0);
    assert!(judge(&Expect::Empty, &ans(None), &r).unwrap().0);
    assert!(
        judge(
            &cmp(
                Comparison::Eq,
                Expected::Ground(ground(GroundMetric::Errors, Some("x"), None)),
                Tolerance::Absolute(0.0)
            ),
            &ans(Some(1.0)),
            &r
        )
        .is_err()
    );
}

#[test]
fn parses_prometheus_and_loki_answers() {
    let vector = json!({"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"a":"1"},"value":[1.7e9,"3"]},{"metric":{"a":"2"},"value":[1.7e9,"4.5"]}]}});
    assert_eq!(
        parse_prometheus(Some(&vector)),
        Ok(Answer {
            value: Some(7.5),
            items: 2
        })
    );
    let empty = json!({"status":"success","data":{"resultType":"vector","result":[]}});
    assert_eq!(
        parse_prometheus(Some(&empty)),
        Ok(Answer {
            value: None,
            items: 0
        })
    );
    let scalar = json!({"status":"success","data":{"resultType":"scalar","result":[1.7e9,"2"]}});
    assert_eq!(parse_prometheus(Some(&scalar)).unwrap().value, Some(2.0));
    let nan = json!({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.7e9,"NaN"]}]}});
    assert!(
        parse_prometheus(Some(&nan))
            .unwrap()
            .value
            .unwrap()
            .is_nan()
    );
    let err = json!({"status":"error","errorType":"bad_data","error":"parse error"});
    assert!(
        parse_prometheus(Some(&err))
            .unwrap_err()
            .contains("parse error")
    );
    let streams = json!({"status":"success","data":{"resultType":"streams","result":[
        {"stream":{"namespace":"tp2devops"},"values":[["1767323065000000000","{\"duration\":812}"],["1767323066000000000","{\"duration\":905}"]]},
        {"stream":{"namespace":"tp2devops","app":"x"},"values":[["1767323067000000000","{\"duration\":700}"]]}],"stats":{}}});
    assert_eq!(
        parse_loki(Some(&streams)),
        Ok(Answer {
            value: Some(3.0),
            items: 3
        })
    );
    let matrix = json!({"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1767323065,"1"],[1767323075,"12"]]},{"metric":{"a":"b"},"values":[[1767323075,"3"]]}]}});
    assert_eq!(
        parse_loki(Some(&matrix)),
        Ok(Answer {
            value: Some(15.0),
            items: 2
        })
    );
    assert_eq!(
        parse_tempo_search(Some(&json!({"metrics":{"inspectedTraces":3}}))),
        Ok(Answer {
            value: None,
            items: 0
        })
    );
}

/// A trace as Tempo's v1 `/api/traces/<id>` returns it: `batches`, base64 ids, string times.
/// Client → server `POST /api/todos` → `create_todo` → validation / todo_creation (slow) /
/// metrics_update.
fn tempo_trace(slow: &str) -> serde_json::Value {
    let t0: u64 = 1_767_323_065_000_000_000;
    let ms = 1_000_000u64;
    let span = |id: &str, parent: &str, name: &str, start: u64, end: u64| {
        json!({"traceId":"CvdlGRbNQ92ESOshHIAxnA==","spanId":id,"parentSpanId":parent,"name":name,"kind":"SPAN_KIND_INTERNAL",
               "startTimeUnixNano":(t0 + start * ms).to_string(),"endTimeUnixNano":(t0 + end * ms).to_string()})
    };
    let (a, b) = if slow == "todo_creation" {
        (802, 803)
    } else {
        (3, 3)
    };
    json!({"batches":[
        {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"trafficgen"}}]},
         "scopeSpans":[{"scope":{"name":"trafficgen"},"spans":[span("AAAAAAAAAAE=","","POST create",0,806)]}]},
        {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"tp2devops-backend"}}]},
         "scopeSpans":[{"scope":{"name":"todo-api"},"spans":[
            span("AAAAAAAAAAI=","AAAAAAAAAAE=","POST /api/todos",1,805),
            span("AAAAAAAAAAM=","AAAAAAAAAAI=","create_todo",1,804),
            span("AAAAAAAAAAQ=","AAAAAAAAAAM=","validation",1,2),
            span("AAAAAAAAAAU=","AAAAAAAAAAM=","todo_creation",2,a),
            span("AAAAAAAAAAY=","AAAAAAAAAAM=","metrics_update",b,804)]}]}]})
}

#[test]
fn slowest_span_is_the_largest_self_time() {
    let spans = parse_trace(&tempo_trace("todo_creation")).unwrap();
    assert_eq!(spans.len(), 6);
    assert_eq!(spans[1].parent_id.as_deref(), Some("AAAAAAAAAAE="));
    assert_eq!(spans[0].parent_id, None, "an empty parentSpanId is a root");
    assert_eq!(
        slowest_span(&spans),
        Some(("todo_creation", 800 * 1_000_000))
    );
    let other = parse_trace(&tempo_trace("metrics_update")).unwrap();
    assert_eq!(slowest_span(&other).unwrap().0, "metrics_update");
    // v2 shape: {"trace":{"resourceSpans":[…]}}.
    let v2 = json!({"trace":{"resourceSpans":tempo_trace("todo_creation")["batches"].clone()}});
    assert_eq!(parse_trace(&v2).unwrap(), spans);
}

/// Loki and Tempo stand-ins: the first `empty_first` calls of each endpoint answer "nothing
/// yet" (as a backend still ingesting would), later ones the documented shapes.
async fn backend(empty_first: usize) -> String {
    use axum::extract::{Path, Query};
    use axum::routing::get;
    use std::collections::HashMap;
    // One call counter per endpoint.
    let (c1, c2, c3) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let app = axum::Router::new()
        .route(
            "/loki/api/v1/query_range",
            get(move |Query(q): Query<HashMap<String, String>>| async move {
                let n = c1.fetch_add(1, Ordering::SeqCst);
                assert_eq!(q["query"], "{namespace=\"tp2devops\"} | json | duration > 500 | run=\"r42\"");
                assert_eq!(q["start"], "1767323045000000000");
                let values = if n < empty_first { json!([]) } else { json!([["1767323066000000000", "{\"duration\":812}"]]) };
                axum::Json(json!({"status":"success","data":{"resultType":"streams","result":[{"stream":{"namespace":"tp2devops"},"values":values}],"stats":{}}}))
            }),
        )
        .route(
            "/api/search",
            get(move |Query(q): Query<HashMap<String, String>>| async move {
                c2.fetch_add(1, Ordering::SeqCst);
                assert_eq!(q["q"], "{ name = \"todo_creation\" && duration > 500ms }");
                assert_eq!(q["start"], "1767323045");
                axum::Json(json!({"traces":[{"traceID":"af7651916cd43dd8448eb211c80319c","rootServiceName":"trafficgen","durationMs":806,
                    "spanSets":[{"spans":[{"spanID":"563d623c76514f8e","durationNanos":"800000000"}],"matched":1}]}],"metrics":{"inspectedTraces":9}}))
            }),
        )
        .route(
            "/api/traces/{id}",
            get(move |Path(id): Path<String>| async move {
                let n = c3.fetch_add(1, Ordering::SeqCst);
                if n < empty_first {
                    // Tempo's "not found": 404 with an empty body.
                    return (axum::http::StatusCode::NOT_FOUND, String::new());
                }
                let slow = if id.starts_with('0') { "todo_creation" } else { "metrics_update" };
                (axum::http::StatusCode::OK, tempo_trace(slow).to_string())
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn verify_with(url: &str, assertions: Vec<Assertion>) -> Verify {
    Verify {
        prometheus_url: None,
        loki_url: Some(url.to_string()),
        tempo_url: Some(url.to_string()),
        grafana_url: None,
        deadline: Duration::from_secs(30),
        interval: Duration::from_secs(2),
        assertions,
    }
}

fn assertion(name: &str, kind: AssertionKind) -> Assertion {
    Assertion {
        name: name.into(),
        kind,
    }
}

#[tokio::test(start_paused = true)]
async fn polls_loki_and_tempo_until_the_data_arrived() {
    let url = backend(2).await;
    let v = verify_with(
        &url,
        vec![
            assertion(
                "slow logs",
                AssertionKind::Logql {
                    query: "{namespace=\"tp2devops\"} | json | duration > 500 | run=\"${run_id}\""
                        .into(),
                    expect: Expect::NonEmpty,
                },
            ),
            assertion(
                "slow span search",
                AssertionKind::Traceql {
                    query: "{ name = \"todo_creation\" && duration > 500ms }".into(),
                    expect: cmp(
                        Comparison::Ge,
                        Expected::Number(1.0),
                        Tolerance::Absolute(0.0),
                    ),
                },
            ),
            assertion(
                "first slowest trace",
                AssertionKind::Traces {
                    which: TraceSet::Slowest,
                    limit: 1,
                    slowest_span: Some("todo_creation".into()),
                },
            ),
        ],
    );
    let results = run_with(&v, &report(), &Clients::default()).await;
    for r in &results {
        assert!(r.passed, "{r:?}");
    }
    assert_eq!(
        results[0].attempts, 3,
        "two empty answers, then lines: {:?}",
        results[0]
    );
    assert_eq!(results[0].observed, Some(1.0));
    assert_eq!(results[1].attempts, 1);
    assert!(results[2].attempts >= 2, "404 first: {:?}", results[2]);
    assert!(
        results[2].message.contains("todo_creation slowest in each"),
        "{}",
        results[2].message
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_slowest_span_missing_urls_and_empty_sets_fail_with_clear_messages() {
    let url = backend(0).await;
    let mut v = verify_with(
        &url,
        vec![
            // The second slowest trace's time went into metrics_update.
            assertion(
                "slow span",
                AssertionKind::Traces {
                    which: TraceSet::Slowest,
                    limit: 2,
                    slowest_span: Some("todo_creation".into()),
                },
            ),
            assertion(
                "no failed",
                AssertionKind::Traces {
                    which: TraceSet::Failed,
                    limit: 2,
                    slowest_span: None,
                },
            ),
            assertion(
                "no prometheus",
                AssertionKind::Promql {
                    query: "up".into(),
                    expect: Expect::NonEmpty,
                },
            ),
        ],
    );
    v.deadline = Duration::from_secs(5);
    let start = tokio::time::Instant::now();
    let results = run_with(&v, &report(), &Clients::default()).await;
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "a failing assertion is polled until the deadline"
    );
    assert!(results.iter().all(|r| !r.passed), "{results:?}");
    let r = &results[0];
    assert_eq!(r.observed, Some(1.0));
    assert!(r.attempts >= 3, "{r:?}");
    assert!(
        r.message
            .contains("1bf7651916cd43dd8448eb211c80319c: slowest span is metrics_update")
            && r.message.contains("not todo_creation"),
        "{}",
        r.message
    );
    assert_eq!(
        (results[1].attempts, results[2].attempts),
        (1, 1),
        "configuration problems are not retried"
    );
    assert!(
        results[1].message.contains("no failed traces"),
        "{}",
        results[1].message
    );
    assert!(
        results[2]
            .message
            .contains("verify.prometheus_url is not set"),
        "{}",
        results[2].message
    );
}

/// Real-stack features: backend headers, selection, `promql_delta`, unreachable backends.
mod backends;
