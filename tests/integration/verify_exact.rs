//! The documented checks are exact: the `verify` example of scenarios/README.md and the
//! exact-count assertions of scenarios/debug-latency.yaml pass at tolerance 0 against a REAL
//! Prometheus that scrapes the todo-api, the generator's `/metrics` and a REAL Pushgateway the
//! generator pushes to, with the linger on; and while both the scraped and the pushed series
//! are visible, the documented query counts each request once.
//!
//! Robust by design, not by tolerance: the todo-api's counters are compared as `promql_delta`
//! (value after the run minus value before it, absent = 0), so it does not matter whether a
//! series existed at the first scrape; the generator's series are selected by `run_id` and job.

use crate::support::{ScrapeJob, prometheus};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::telemetry::{Proc, binary, free_port, wait_ready};

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn pushgateway() -> (Proc, String) {
    let port = free_port();
    let child = Command::new(binary("PUSHGATEWAY_BIN", "prometheus-pushgateway"))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pushgateway");
    let p = Proc(child);
    let base = format!("127.0.0.1:{port}");
    wait_ready(&format!("http://{base}/-/ready")).await;
    (p, base)
}

async fn todo_api() -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = todo_api::Config {
        faults_enabled: true,
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

/// The README's tested `verify` example, verbatim, with its Prometheus URL pointed at ours.
fn readme_verify(prom: &str) -> String {
    let text = std::fs::read_to_string(root().join("scenarios/README.md")).unwrap();
    let marker = "<!-- tested: tests/integration/verify_exact.rs readme_and_debug_latency_assertions_pass_exactly -->";
    let at = text
        .find(marker)
        .expect("the README marks its tested example");
    let block = &text[at..];
    let start = block.find("```yaml\n").expect("a yaml block") + 8;
    let end = block[start..].find("```").expect("closed block") + start;
    block[start..end].replace("http://127.0.0.1:9090", prom)
}

/// debug-latency.yaml with only its exact-count assertions (its P95 checks need its own
/// 4-minute timeline): every assertion whose `expect` compares with a ground-truth count.
fn debug_latency_exact() -> (String, usize) {
    let text = std::fs::read_to_string(root().join("scenarios/debug-latency.yaml")).unwrap();
    let (head, list) = text.split_once("  assertions:\n").expect("assertions");
    let mut kept = Vec::new();
    for item in list.split("\n    - ").skip(1) {
        let item = item.trim_end();
        let exact = item.contains("expect: \"== ") && (item.contains("promql"));
        if exact {
            assert!(
                !item.contains("tolerance"),
                "exact checks have no tolerance: {item}"
            );
            kept.push(format!("    - {item}"));
        }
    }
    let n = kept.len();
    (format!("{head}  assertions:\n{}\n", kept.join("\n")), n)
}

async fn query_at(prom: &str, q: &str, at: f64) -> Option<f64> {
    let mut url = reqwest::Url::parse(&format!("{prom}/api/v1/query")).unwrap();
    url.query_pairs_mut()
        .append_pair("query", q)
        .append_pair("time", &format!("{at:.3}"));
    let v: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    let r = v["data"]["result"].as_array()?;
    if r.is_empty() {
        return None;
    }
    Some(
        r.iter()
            .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
            .sum(),
    )
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (std::process::Output, f64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trafficgen"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let ended = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    (out, ended)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_and_debug_latency_assertions_pass_exactly() {
    let (api, _stop) = todo_api().await;
    let metrics = format!("127.0.0.1:{}", free_port());
    let (_pg, pg) = pushgateway().await;
    let (_prom, prom, dir) = prometheus(&[
        ScrapeJob::new("itest", &[&api, &metrics]),
        // The Pushgateway's own docs ask for honor_labels.
        ScrapeJob {
            honor_labels: true,
            ..ScrapeJob::new("pushgateway", &[&pg])
        },
    ])
    .await;

    // 1. The README example on a faulted run, with a push and the linger both on.
    let scenario = format!(
        r#"name: readme-verify
seed: 7
target:
  url: http://{api}
load:
  stages:
    - duration: 5s
      rate: 40/s
mix:
  operations:
    - todo: create
      weight: 2
    - todo: list
      weight: 1
faults:
  - start: 1s
    duration: 3s
    kind: error
    status: 503
    share: 50%
    ops: [create]
telemetry:
  metrics_addr: {metrics}
  linger: 4s
  pushgateway: http://{pg}
output:
  progress: quiet
{}"#,
        readme_verify(&prom)
    );
    let path = dir.path().join("readme.yaml");
    std::fs::write(&path, scenario).unwrap();
    let report_path = dir.path().join("readme.json");
    let (out, ended) = tokio::task::spawn_blocking({
        let (path, report_path) = (path.clone(), report_path.clone());
        move || {
            run(
                &[
                    "run",
                    path.to_str().unwrap(),
                    "--report",
                    report_path.to_str().unwrap(),
                ],
                &[("TRAFFICGEN_VERIFY_BACKENDS", "prometheus")],
            )
        }
    })
    .await
    .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let counts = &report["totals"]["counts"];
    let fivexx = counts["status_class"][4].as_f64().unwrap();
    assert!(fivexx > 5.0, "the window faulted requests: {counts}");
    let results = report["verify"].as_array().unwrap();
    assert_eq!(results.len(), 6, "{results:?}");
    for r in &results[..4] {
        assert_eq!(r["passed"], true, "{r}\n{shown}");
        assert!(r["expected"].as_str().unwrap().starts_with("== "), "{r}");
        assert!(
            !r["expected"].as_str().unwrap().contains('±'),
            "tolerance 0: {r}"
        );
    }
    assert_eq!(
        results[0]["observed"].as_f64(),
        counts["faults_error"].as_f64()
    );
    assert_eq!(results[1]["observed"].as_f64(), Some(fivexx));
    for r in &results[4..] {
        assert_eq!(
            (r["skipped"].clone(), r["passed"].clone()),
            (true.into(), false.into()),
            "{r}"
        );
    }
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("4 assertion(s) held; 2 assertion(s) skipped, not checked"),
        "{shown}"
    );
    // The window's count in the report is exact: every faulted request, the last second too.
    assert_eq!(
        report["faults"][0]["injected"], counts["faults_error"],
        "{}",
        report["faults"]
    );
    assert_eq!(
        report["target_faults"]["counted"]["error"], counts["faults_error"],
        "the todo-api's own counter over the run: {}",
        report["target_faults"]
    );
    assert_eq!(report["target_faults"]["server"]["error"], 0);

    // 2. No double counting: in the last second of the linger both the scraped and the pushed
    //    series are in Prometheus; the documented query counts each request once.
    let run_id = report["run_id"].as_str().unwrap();
    let at = ended - 1.0;
    let q = |sel: &str| {
        format!(r#"sum(trafficgen_requests_total{{run_id="{run_id}",status_class="5xx"{sel}}})"#)
    };
    assert_eq!(
        query_at(&prom, &q(r#",job!="trafficgen-push""#), at).await,
        Some(fivexx)
    );
    assert_eq!(
        query_at(&prom, &q(r#",job="trafficgen-push""#), at).await,
        Some(fivexx)
    );
    assert_eq!(
        query_at(&prom, &q(""), at).await,
        Some(2.0 * fivexx),
        "both copies are visible, so the job selector is what counts once"
    );
    let instance = query_at(
        &prom,
        &format!(r#"count(trafficgen_requests_total{{run_id="{run_id}",job="trafficgen-push",instance!=""}})"#),
        at,
    )
    .await;
    assert!(
        instance.is_some_and(|n| n > 0.0),
        "pushed series carry an instance"
    );

    // 3. debug-latency.yaml's exact assertions, on its own timeline scaled to 12 s (the
    //    latency window becomes 3 s – 6 s), against the same todo-api.
    let (exact, n) = debug_latency_exact();
    assert!(n >= 3, "debug-latency.yaml has its exact checks: {exact}");
    let path = dir.path().join("debug-latency.yaml");
    std::fs::write(&path, exact).unwrap();
    let report_path = dir.path().join("debug.json");
    let (out, _) = tokio::task::spawn_blocking({
        let (path, report_path, api, metrics, prom) = (
            path.clone(),
            report_path.clone(),
            api.clone(),
            metrics.clone(),
            prom.clone(),
        );
        move || {
            run(
                &[
                    "run",
                    path.to_str().unwrap(),
                    "--target-url",
                    &format!("http://{api}"),
                    "--duration",
                    "12s",
                    "--metrics-addr",
                    &metrics,
                    "--metrics-linger",
                    "2s",
                    "--quiet",
                    "--report",
                    report_path.to_str().unwrap(),
                ],
                &[
                    ("TRAFFICGEN_PROMETHEUS_URL", prom.as_str()),
                    ("TRAFFICGEN_VERIFY_BACKENDS", "prometheus"),
                ],
            )
        }
    })
    .await
    .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    let results = report["verify"].as_array().unwrap();
    assert_eq!(results.len(), n);
    assert!(
        report["totals"]["counts"]["faults_latency"]
            .as_u64()
            .unwrap()
            > 0
    );
    for r in results {
        assert_eq!(r["passed"], true, "{r}\n{shown}");
    }
}
