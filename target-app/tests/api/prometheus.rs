//! A real Prometheus (PROMETHEUS_BIN), started on an ephemeral loopback port with exemplar
//! storage, scrapes the app every second under a little traffic. The seed document's PromQL
//! queries, copied verbatim, must return data, and the exemplars Prometheus stored must carry
//! trace ids that the app also wrote into its log lines.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    ChildGuard, Served, find_bin, free_port, parse_lines, poll, serve, test_config, urlencode,
};

/// The "Prometheus Queries" block of the seed document, verbatim (line breaks and the trailing
/// space after `0.95,` included), plus the route-filtered quantile DESIGN.md quotes.
const SEED_QUERIES: [&str; 6] = [
    "rate(tp2devops_http_requests_total[5m])",
    "histogram_quantile(0.95, \n  rate(tp2devops_http_request_duration_seconds_bucket[5m])\n)",
    r#"rate(tp2devops_http_requests_total{status_code=~"5.."}[5m])"#,
    "tp2devops_todos_active",
    "rate(tp2devops_todo_operations_total[5m])",
    r#"histogram_quantile(0.95, rate(tp2devops_http_request_duration_seconds_bucket{route="/api/todos"}[5m]))"#,
];

/// `scrape_protocols` exists from Prometheus 2.49 on; older versions reject the field but ask
/// for OpenMetrics by themselves.
fn supports_scrape_protocols(prometheus: &std::path::Path) -> bool {
    let out = Command::new(prometheus)
        .arg("--version")
        .output()
        .expect("run prometheus --version");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let version = text
        .split("version ")
        .nth(1)
        .unwrap_or("0.0")
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .next()
        .unwrap_or("0.0")
        .to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 49)
}

struct Prometheus {
    url: String,
    child: ChildGuard,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn start_prometheus(target: &str) -> Prometheus {
    let bin = find_bin("PROMETHEUS_BIN", &["prometheus"]);
    let dir = tempfile::tempdir().unwrap();
    let protocols = if supports_scrape_protocols(&bin) {
        "    scrape_protocols: [OpenMetricsText1.0.0, PrometheusText0.0.4]\n"
    } else {
        ""
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: todo-api\n    scrape_interval: 1s\n    scrape_timeout: 1s\n{protocols}    static_configs:\n      - targets: ['{target}']\n"
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let log = dir.path().join("prometheus.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--enable-feature=exemplar-storage")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    Prometheus {
        url: format!("http://127.0.0.1:{port}"),
        child: ChildGuard(child),
        log,
        _dir: dir,
    }
}

impl Prometheus {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, c: &reqwest::Client, path_and_query: &str) -> Option<Value> {
        let r = c
            .get(format!("{}{path_and_query}", self.url))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        assert_eq!(v["status"], "success", "{path_and_query}: {v}");
        Some(v["data"].clone())
    }

    async fn query(&self, c: &reqwest::Client, q: &str) -> Vec<Value> {
        let data = self
            .get(c, &format!("/api/v1/query?query={}", urlencode(q)))
            .await
            .unwrap_or_default();
        data["result"].as_array().cloned().unwrap_or_default()
    }
}

/// One round of traffic over the socket: every todo route, a 404 and an injected 500.
async fn traffic(c: &reqwest::Client, app: &Served) {
    let post = |text: &str| {
        c.post(app.url("/api/todos"))
            .json(&serde_json::json!({ "text": text }))
            .send()
    };
    let a: Value = post("prometheus a").await.unwrap().json().await.unwrap();
    post("prometheus b").await.unwrap();
    let id = a["id"].as_u64().unwrap();
    c.get(app.url("/api/todos")).send().await.unwrap();
    c.get(app.url(&format!("/api/todos/{id}")))
        .send()
        .await
        .unwrap();
    c.patch(app.url(&format!("/api/todos/{id}")))
        .json(&serde_json::json!({"completed": true}))
        .send()
        .await
        .unwrap();
    c.get(app.url("/api/todos/999999")).send().await.unwrap();
    let r = c
        .get(app.url("/api/todos"))
        .header("x-fault-status", "500")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    c.delete(app.url(&format!("/api/todos/{id}")))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_queries_and_exemplars_against_real_prometheus() {
    let (config, lines) = test_config();
    let app = serve(config, lines).await;
    let mut prom = start_prometheus(&app.addr.to_string());
    let c = reqwest::Client::new();

    poll(
        "Prometheus to be ready",
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || {
            // Exited (e.g. its port was taken meanwhile): fail with its log rather than talk to
            // whatever else listens there.
            if let Some(status) = prom.child.0.try_wait().unwrap() {
                panic!("prometheus exited ({status}):\n{}", prom.log_text());
            }
            let ok = c
                .get(format!("{}/-/ready", prom.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            ok.then_some(())
        },
    )
    .await;

    // Traffic keeps flowing while we wait, so every rate() has two samples that differ.
    let mut rounds = 0;
    let results = poll(
        "the seed queries to return data",
        Duration::from_secs(60),
        Duration::from_millis(500),
        async || {
            rounds += 1;
            assert!(rounds <= 150, "bounded traffic");
            traffic(&c, &app).await;
            let mut all = Vec::new();
            for q in SEED_QUERIES {
                let r = prom.query(&c, q).await;
                if r.is_empty() {
                    return None;
                }
                all.push((q, r));
            }
            // A rate of continuous traffic must eventually be positive, not just present.
            let positive = all[0].1.iter().any(|s| {
                s["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok())
                    .is_some_and(|v| v > 0.0)
            });
            positive.then_some(all)
        },
    )
    .await;
    for (q, r) in &results {
        assert!(!r.is_empty(), "{q}");
    }
    let errors = &results[2].1;
    assert!(
        errors.iter().all(|s| s["metric"]["status_code"] == "500"),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|s| s["metric"]["route"] == "/api/todos"),
        "{errors:?}"
    );
    let ops: BTreeSet<&str> = results[4]
        .1
        .iter()
        .filter_map(|s| s["metric"]["operation"].as_str())
        .collect();
    assert_eq!(
        ops,
        BTreeSet::from(["create", "delete", "list", "read", "update"])
    );
    assert!(
        results[0]
            .1
            .iter()
            .all(|s| s["metric"]["route"] != "/api/todos/1"),
        "route is the template"
    );

    // Exemplars: present, and each one names a trace the app logged.
    let exemplar_ids = poll(
        "exemplars in Prometheus",
        Duration::from_secs(30),
        Duration::from_millis(500),
        async || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let q = format!(
                "/api/v1/query_exemplars?query={}&start={:.3}&end={:.3}",
                urlencode("tp2devops_http_request_duration_seconds_bucket"),
                now - 600.0,
                now + 60.0
            );
            let data = prom.get(&c, &q).await?;
            let ids: BTreeSet<String> = data
                .as_array()?
                .iter()
                .flat_map(|s| s["exemplars"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_string))
                .collect();
            (!ids.is_empty()).then_some(ids)
        },
    )
    .await;
    let logged: BTreeSet<String> = parse_lines(&app.lines)
        .iter()
        .filter_map(|l| l["traceId"].as_str().map(str::to_string))
        .collect();
    let unknown: Vec<&String> = exemplar_ids
        .iter()
        .filter(|i| !logged.contains(*i))
        .collect();
    assert!(
        unknown.is_empty(),
        "exemplar trace ids not in the logs: {unknown:?}\n--- prometheus log ---\n{}",
        prom.log_text()
    );
    assert!(
        prom.log_text().contains("xemplar"),
        "exemplar storage is on"
    );
}
