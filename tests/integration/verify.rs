//! `verify` against a REAL Prometheus (PROMETHEUS_BIN or `prometheus` on PATH; a missing binary
//! fails the test) scraping a real todo-api that got known traffic: PromQL assertions compared
//! with the ground truth pass, deliberately wrong ones fail with a clear message.
//!
//! Loki and Tempo cannot run here: their clients are tested in `src/verify/tests.rs` against
//! in-test HTTP servers answering with the documented response shapes.

use std::process::Command;
use std::time::Duration;

use trafficgen::plan::{
    Assertion, AssertionKind, Comparison, Expect, Expected, GroundMetric, GroundRef, Tolerance,
    Verify,
};
use trafficgen::recorder::Counts;

use super::support::{ScrapeJob, free_port, prometheus};
use trafficgen::report::{OpReport, Report};

/// Bounded readiness poll.
async fn poll<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn prom_value(base: &str, q: &str) -> Option<f64> {
    let mut url = reqwest::Url::parse(&format!("{base}/api/v1/query")).unwrap();
    url.query_pairs_mut().append_pair("query", q);
    let v: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn counts(ok: u64, failed: u64, status_ok: u16) -> Counts {
    Counts {
        requests: ok + failed,
        status_class: [0, ok, 0, 0, failed],
        status: [(status_ok, ok), (503, failed)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
        errors: [0, 0, 0, 0, 0, failed, 0, 0, 0, 0, 0, 0],
        faults_error: failed,
        ..Counts::default()
    }
}

/// A report of the traffic this test sent: creates (some failed with an injected 503) and lists.
fn report(
    started: time::OffsetDateTime,
    ended: time::OffsetDateTime,
    create: Counts,
    list: Counts,
) -> Report {
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let mut total = create.clone();
    total.requests += list.requests;
    total.status_class[1] += list.status_class[1];
    total.status.push((200, list.status_class[1]));
    total.status.sort();
    let op = |c| OpReport {
        counts: c,
        ..OpReport::default()
    };
    Report {
        run_id: "itest".into(),
        scenario: "verify-itest".into(),
        started_at: rfc(started),
        ended_at: rfc(ended),
        duration_s: (ended - started).as_seconds_f64(),
        totals: op(total),
        ops: vec![("create".into(), op(create)), ("list".into(), op(list))],
        ..Report::default()
    }
}

fn promql(name: &str, query: &str, expect: Expect) -> Assertion {
    Assertion {
        name: name.into(),
        kind: AssertionKind::Promql {
            query: query.into(),
            expect,
        },
    }
}

fn eq_ground(
    metric: GroundMetric,
    op: Option<&str>,
    status: Option<&str>,
    tolerance: Tolerance,
) -> Expect {
    Expect::Compare {
        comparison: Comparison::Eq,
        value: Expected::Ground(GroundRef {
            metric,
            op: op.map(str::to_string),
            status: status.map(str::to_string),
        }),
        tolerance,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_assertions_against_a_real_prometheus_scraping_the_todo_api() {
    let config = todo_api::Config {
        faults_enabled: true,
        log: todo_api::LogOutput::Off,
        shutdown_grace: Duration::from_millis(100),
        ..todo_api::Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    let api = format!("http://{api_addr}");
    let (stop_api, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(todo_api::serve(
        listener,
        todo_api::AppState::new(config),
        async move {
            let _ = stopped.await;
        },
    ));
    let (_prom, prom, _dir) =
        prometheus(&[ScrapeJob::new("itest", &[&api_addr.to_string()])]).await;
    let started = time::OffsetDateTime::now_utc();

    let http = reqwest::Client::new();
    let create = |fail: bool| {
        let mut r = http
            .post(format!("{api}/api/todos"))
            .json(&serde_json::json!({"text": "verify me"}));
        if fail {
            r = r.header("X-Fault-Status", "503");
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    let list = || {
        let r = http.get(format!("{api}/api/todos"));
        async move { r.send().await.unwrap().status().as_u16() }
    };
    // Phase 1: one request of each kind, so every series exists before the counted traffic
    // (a series first seen at value N hides those N from increase()).
    assert_eq!(create(false).await, 201);
    assert_eq!(create(true).await, 503);
    assert_eq!(list().await, 200);
    let p = &prom;
    poll("three scraped samples of each series", || async move {
        prom_value(
            p,
            "min(count_over_time(tp2devops_http_requests_total{route=\"/api/todos\"}[1m]))",
        )
        .await
        .is_some_and(|n| n >= 3.0)
            && prom_value(
                p,
                "count(tp2devops_http_requests_total{route=\"/api/todos\"})",
            )
            .await
                == Some(3.0)
    })
    .await;
    // Phase 2: the counted traffic.
    let (mut ok, mut failed, mut lists) = (1u64, 1u64, 1u64);
    for i in 0..120 {
        if i % 10 == 0 {
            assert_eq!(create(true).await, 503);
            failed += 1;
        } else if i % 3 == 0 {
            assert_eq!(list().await, 200);
            lists += 1;
        } else {
            assert_eq!(create(false).await, 201);
            ok += 1;
        }
    }
    let ended = time::OffsetDateTime::now_utc();
    let report = report(
        started,
        ended,
        counts(ok, failed, 201),
        counts(lists, 0, 200),
    );

    let good = Verify {
        prometheus_url: Some(prom.clone()),
        loki_url: None,
        tempo_url: None,
        grafana_url: None,
        deadline: Duration::from_secs(30),
        interval: Duration::from_millis(500),
        assertions: vec![
            promql(
                "server saw every request",
                "sum(tp2devops_http_requests_total{route=\"/api/todos\"})",
                eq_ground(GroundMetric::Requests, None, None, Tolerance::Absolute(0.0)),
            ),
            promql(
                "server 5xx == injected errors",
                "sum(tp2devops_http_requests_total{route=\"/api/todos\",status_code=~\"5..\"})",
                eq_ground(
                    GroundMetric::FaultsError,
                    Some("create"),
                    None,
                    Tolerance::Absolute(0.0),
                ),
            ),
            promql(
                "5xx increase over the run",
                // Phase 1's first samples are not an increase: compare with 15 % slack for that
                // and for Prometheus' extrapolation to the ends of the range.
                "sum(increase(tp2devops_http_requests_total{route=\"/api/todos\",status_code=\"503\"}[${range}]))",
                eq_ground(
                    GroundMetric::Requests,
                    Some("create"),
                    Some("5xx"),
                    Tolerance::Relative(0.15),
                ),
            ),
            promql(
                "POST increase over the run",
                "sum(increase(tp2devops_http_requests_total{route=\"/api/todos\",method=\"POST\"}[${range}]))",
                eq_ground(
                    GroundMetric::Requests,
                    Some("create"),
                    None,
                    Tolerance::Relative(0.15),
                ),
            ),
            promql(
                "no teapots",
                "tp2devops_http_requests_total{status_code=\"418\"}",
                Expect::Empty,
            ),
        ],
    };
    let results = trafficgen::verify::run(&good, &report).await;
    for r in &results {
        assert!(r.passed, "{r:#?}");
        assert!(r.expected.is_some(), "{r:#?}");
    }
    assert_eq!(results[0].observed, Some((ok + failed + lists) as f64));
    assert_eq!(results[1].observed, Some(failed as f64));
    assert!(
        results[2].query.contains("[") && !results[2].query.contains("${range}"),
        "substituted: {}",
        results[2].query
    );

    let wrong = Verify {
        deadline: Duration::from_secs(3),
        assertions: vec![
            promql(
                "deliberately wrong: every request failed",
                "sum(tp2devops_http_requests_total{route=\"/api/todos\",status_code=~\"5..\"})",
                eq_ground(
                    GroundMetric::Requests,
                    None,
                    None,
                    Tolerance::Relative(0.01),
                ),
            ),
            promql(
                "deliberately wrong: a series that does not exist",
                "sum(tp2devops_no_such_metric_total)",
                Expect::NonEmpty,
            ),
            promql("syntax error", "sum(", Expect::NonEmpty),
        ],
        ..good
    };
    let results = trafficgen::verify::run(&wrong, &report).await;
    assert!(results.iter().all(|r| !r.passed), "{results:#?}");
    let r = &results[0];
    assert_eq!(r.observed, Some(failed as f64));
    assert!(r.attempts >= 2, "polled until the deadline: {r:#?}");
    let total = ok + failed + lists;
    assert!(
        r.message.contains(&format!("observed {failed}"))
            && r.message.contains(&format!("== {total} (requests)")),
        "{}",
        r.message
    );
    assert!(
        results[1].message.contains("no result"),
        "{}",
        results[1].message
    );
    assert!(
        results[2].message.contains("HTTP 400") && results[2].message.contains("parse error"),
        "{}",
        results[2].message
    );
    assert_eq!(results[2].attempts, 1, "a rejected query is not retried");
    let _ = stop_api.send(());
}

/// The shipped debug-latency scenario holds the seed's workflow: the latency window on
/// `todo_creation`, the seed's PromQL and LogQL verbatim, the trace checks; every query
/// placeholder is substituted; the window's header faults hit `create` only.
#[test]
fn debug_latency_scenario_is_the_seeds_workflow() {
    use trafficgen::faults::HeaderFaults;
    use trafficgen::plan::{FaultKind, FaultVia, TraceSet};
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/debug-latency.yaml");
    let plan = trafficgen::plan::build(&path, &trafficgen::plan::Overrides::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(plan.faults.len(), 1);
    let w = &plan.faults[0];
    assert_eq!(
        (w.start, w.duration, w.via, w.ops.clone()),
        (
            Duration::from_secs(60),
            Duration::from_secs(60),
            FaultVia::Header,
            vec!["create".to_string()]
        )
    );
    assert_eq!(
        w.kind,
        FaultKind::Latency {
            delay: Duration::from_millis(800),
            jitter: Duration::ZERO,
            span: Some("todo_creation".into())
        }
    );
    let v = plan.verify.as_ref().expect("a verify section");
    let queries: Vec<&str> = v
        .assertions
        .iter()
        .filter_map(|a| match &a.kind {
            AssertionKind::Promql { query, .. }
            | AssertionKind::PromqlDelta { query, .. }
            | AssertionKind::Logql { query, .. }
            | AssertionKind::Traceql { query, .. } => Some(query.as_str()),
            AssertionKind::Traces { .. } => None,
        })
        .collect();
    let seed_promql = r#"histogram_quantile(0.95, rate(tp2devops_http_request_duration_seconds_bucket{route="/api/todos"}[5m]))"#;
    assert!(
        queries.iter().any(|q| q.contains(seed_promql)),
        "{queries:#?}"
    );
    assert!(
        queries.contains(&r#"{namespace="tp2devops"} | json | duration > 500"#),
        "{queries:#?}"
    );
    let traces: Vec<_> = v
        .assertions
        .iter()
        .filter_map(|a| match &a.kind {
            AssertionKind::Traces {
                which,
                slowest_span,
                ..
            } => Some((*which, slowest_span.clone())),
            _ => None,
        })
        .collect();
    assert!(
        traces.contains(&(TraceSet::Faulted, Some("todo_creation".into()))),
        "{traces:?}"
    );

    let now = time::OffsetDateTime::now_utc();
    let mut r = report(
        now - Duration::from_secs(240),
        now,
        counts(1, 0, 201),
        counts(1, 0, 200),
    );
    r.faults = vec![trafficgen::report::FaultReport {
        start_s: 60.0,
        end_s: 120.0,
        kind: "latency".into(),
        via: "header".into(),
        ops: vec!["create".into()],
        route: None,
        share: 1.0,
        injected: Some(1),
        failed: None,
    }];
    let ctx = trafficgen::verify::RunContext::from_report(&r).unwrap();
    for q in &queries {
        let s = ctx.substitute(q);
        assert!(!s.contains("${"), "not substituted: {s}");
    }

    let faults = HeaderFaults::new(&plan);
    let create = plan
        .mix
        .operations
        .iter()
        .position(|o| o.name == "create")
        .unwrap();
    let list = plan
        .mix
        .operations
        .iter()
        .position(|o| o.name == "list")
        .unwrap();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    let hit = faults
        .pick(create, Duration::from_secs(90), &mut rng)
        .expect("create in the window is slowed");
    assert_eq!(
        (hit.delay_ms, hit.span.as_deref()),
        (Some(800), Some("todo_creation"))
    );
    assert!(
        faults
            .pick(list, Duration::from_secs(90), &mut rng)
            .is_none()
    );
    assert!(
        faults
            .pick(create, Duration::from_secs(130), &mut rng)
            .is_none()
    );
}

/// The scenario of the end-to-end runs: 3 s of creates and lists against `api`, the generator's
/// `/metrics` on `metrics`, PromQL assertions against `prom` (plus `extra` ones).
fn e2e_scenario(api: &str, metrics: &str, prom: &str, deadline: &str, extra: &str) -> String {
    format!(
        r#"# verify end to end
name: verify-e2e
target:
  url: {api}
load:
  model: open
  stages:
    - duration: 3s
      rate: 20/s
mix:
  operations:
    - todo: create
    - todo: list
telemetry:
  metrics_addr: {metrics}
  linger: 2s
output:
  progress: quiet
verify:
  prometheus_url: {prom}
  deadline: {deadline}
  interval: 500ms
  assertions:
    - name: the generator's counts reached Prometheus exactly
      promql: 'sum(trafficgen_requests_total{{run_id="${{run_id}}",op!="all"}})'
      expect: "== requests"
{extra}"#
    )
}

/// `trafficgen run` with a real Prometheus scraping both the todo-api and the generator: the
/// PromQL assertions equal the ground truth exactly (exit 0, results in the report); adding a
/// deliberately wrong one exits 100 and the report says which failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_verify_passes_and_a_wrong_assertion_exits_100() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    let config = todo_api::Config {
        log: todo_api::LogOutput::Off,
        shutdown_grace: Duration::from_millis(100),
        ..todo_api::Config::default()
    };
    let (stop_api, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(todo_api::serve(
        listener,
        todo_api::AppState::new(config),
        async move {
            let _ = stopped.await;
        },
    ));
    let metrics = format!("127.0.0.1:{}", free_port());
    let (_prom, prom, dir) =
        prometheus(&[ScrapeJob::new("itest", &[&api_addr.to_string(), &metrics])]).await;
    let api = format!("http://{api_addr}");
    // The todo-api lives through both runs: only the first can compare its counters exactly.
    let api_exact = r#"    - name: the todo-api saw every request
      promql: 'sum(tp2devops_http_requests_total{route="/api/todos"})'
      expect: "== requests"
"#;
    // Wrong whatever the random mix: a handful of series is never the >= 50 requests. (A POST
    // count could equal the total by chance, since the todo-api's counters span both runs.)
    let wrong = r#"    - name: deliberately wrong, one request per series
      promql: 'count(tp2devops_http_requests_total{route="/api/todos"})'
      expect: "== requests"
"#;
    for (name, extra, deadline, code) in
        [("good", api_exact, "30s", 0), ("wrong", wrong, "8s", 100)]
    {
        let scenario = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &scenario,
            e2e_scenario(&api, &metrics, &prom, deadline, extra),
        )
        .unwrap();
        let report_path = dir.path().join(format!("{name}.json"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trafficgen"));
        cmd.arg("run")
            .arg(&scenario)
            .arg("--report")
            .arg(&report_path)
            .arg("--no-progress");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let text = format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "{name}: {text}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
        let results = report["verify"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no verify results: {text}"));
        let requests = report["totals"]["counts"]["requests"].as_f64().unwrap();
        assert!(requests >= 50.0, "{name}: {requests} requests");
        assert_eq!(results.len(), 2, "{name}: {results:?}");
        assert_eq!(results[0]["passed"], true, "{name}: {}", results[0]);
        assert_eq!(
            results[0]["observed"].as_f64(),
            Some(requests),
            "{name}: {}",
            results[0]
        );
        if code == 0 {
            assert_eq!(results[1]["passed"], true, "{}", results[1]);
            assert_eq!(
                results[1]["observed"].as_f64(),
                Some(requests),
                "{}",
                results[1]
            );
            assert_eq!(report["passed"], true);
        } else {
            assert_eq!(results[1]["passed"], false, "{}", results[1]);
            assert!(
                results[1]["observed"]
                    .as_f64()
                    .is_some_and(|o| o != requests),
                "{}",
                results[1]
            );
            assert_eq!(report["passed"], false);
        }
    }
    let _ = stop_api.send(());
}
