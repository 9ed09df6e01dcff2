//! Shared helpers of the engine's integration tests: an in-test todo-api on 127.0.0.1:0,
//! plans built by hand (no scenario file needed), and a scrape of the app's own counters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::oneshot;
use trafficgen::plan::{
    Arrivals, BaseUrl, LoadModel, Mix, OpKind, Operation, Output, Plan, Progress, RateStage,
    Readiness, Segment, Target, Telemetry, ThinkTime, TodoOp, VuStage,
};

/// A todo-api served on an ephemeral loopback port until `stop` is sent (or dropped).
pub struct App {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl App {
    pub async fn start() -> App {
        let config = todo_api::Config {
            host: [127, 0, 0, 1].into(),
            port: 0,
            faults_enabled: true,
            log: todo_api::LogOutput::Off,
            shutdown_grace: Duration::from_millis(200),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(todo_api::serve(
            listener,
            todo_api::AppState::new(config),
            async move {
                let _ = rx.await;
            },
        ));
        App {
            addr,
            stop: Some(tx),
            task,
        }
    }

    pub fn base(&self) -> BaseUrl {
        BaseUrl {
            scheme: "http".into(),
            host: "127.0.0.1".into(),
            port: self.addr.port(),
            prefix: String::new(),
        }
    }

    /// Stops serving (closes the listener and the connections).
    pub async fn shut_down(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }

    /// `tp2devops_http_requests_total` by (method, route, status_code), without `/metrics`.
    pub async fn requests_total(&self) -> BTreeMap<(String, String, u16), u64> {
        let text = reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .expect("scrape")
            .text()
            .await
            .unwrap();
        parse_requests_total(&text)
    }

    /// Total of the app's request counter over the todo routes.
    pub async fn todo_requests(&self) -> u64 {
        self.requests_total()
            .await
            .iter()
            .filter(|((_, r, _), _)| r.starts_with("/api/todos"))
            .map(|(_, n)| n)
            .sum()
    }
}

pub fn parse_requests_total(text: &str) -> BTreeMap<(String, String, u16), u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("tp2devops_http_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let get = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.trim().strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let route = get("route");
        if route == "/metrics" {
            continue;
        }
        let n: f64 = value
            .split_whitespace()
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        m.insert(
            (
                get("method"),
                route,
                get("status_code").parse().unwrap_or(0),
            ),
            n as u64,
        );
    }
    m
}

pub fn todo_op(name: &str, weight: u32, op: TodoOp) -> Operation {
    Operation {
        name: name.into(),
        weight,
        kind: OpKind::Todo(op),
        checks: vec![],
        follow_redirects: None,
        expect_status: Vec::new(),
    }
}

/// All six built-in operations.
pub fn crud_mix() -> Vec<Operation> {
    vec![
        todo_op("create", 4, TodoOp::Create),
        todo_op("list", 1, TodoOp::List),
        todo_op("get", 2, TodoOp::Get),
        todo_op("update", 1, TodoOp::Update),
        todo_op("toggle", 1, TodoOp::Toggle),
        todo_op("delete", 1, TodoOp::Delete),
    ]
}

pub fn open_load(rate: f64, secs: u64) -> LoadModel {
    LoadModel::Open {
        start_rate: rate,
        stages: vec![RateStage {
            duration: Duration::from_secs(secs),
            target: rate,
        }],
        arrivals: Arrivals::Constant,
        max_in_flight: 20,
        max_queue: 1000,
    }
}

pub fn closed_load(vus: u32, secs: u64) -> LoadModel {
    LoadModel::Closed {
        start_vus: vus,
        stages: vec![VuStage {
            duration: Duration::from_secs(secs),
            target: vus,
        }],
        think_time: ThinkTime::Fixed(Duration::from_millis(5)),
        max_rate: None,
    }
}

pub fn plan(
    base: Option<BaseUrl>,
    load: LoadModel,
    ops: Vec<Operation>,
    report: Option<PathBuf>,
) -> Plan {
    Plan {
        name: "engine-test".into(),
        source: None,
        target: Target {
            base_url: base,
            headers: vec![],
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            ready: Readiness {
                path: "/health".into(),
                timeout: Duration::from_secs(5),
                interval: Duration::from_millis(50),
            },
            max_connections: 20,
            max_body: 1 << 20,
            tls: Default::default(),
            http_version: Default::default(),
            max_streams: 100,
            follow_redirects: 0,
            cookies: false,
        },
        load,
        mix: Mix {
            steady_state: false,
            cleanup: None,
            operations: ops,
            pool_capacity: 1000,
        },
        thresholds: vec![],
        compare: vec![],
        output: Output {
            report,
            progress: Progress::Quiet,
            interval: Duration::from_millis(250),
            keep_traces: 5,
            html: None,
            junit: None,
            dashboard: None,
            dashboard_token: None,
        },
        seed: 42,
        faults: vec![],
        verify: None,
        telemetry: Telemetry {
            metrics_addr: None,
            linger: Duration::ZERO,
            pushgateway: None,
            remote_write: None,
            trace_sample_ratio: 0.0,
            instance: None,
        },
        segment: Segment::WHOLE,
        schedule: Default::default(),
    }
}

/// Resolves once the app has counted at least `n` todo requests (polled, 20 ms apart, at most
/// 30 s).
pub async fn when_app_counted(app_addr: SocketAddr, n: u64) {
    for _ in 0..1500 {
        if let Ok(r) = reqwest::get(format!("http://{app_addr}/metrics")).await
            && let Ok(t) = r.text().await
        {
            let seen: u64 = parse_requests_total(&t)
                .iter()
                .filter(|((_, r, _), _)| r.starts_with("/api/todos"))
                .map(|(_, v)| v)
                .sum();
            if seen >= n {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the app never counted {n} requests");
}

/// The report of a run as the run's finisher builds it: the report from the final snapshot,
/// then the timeline sink's timeline put into it.
pub fn build_report(
    plan: &Plan,
    last: &trafficgen::recorder::Snapshot,
    timeline: trafficgen::report::Timeline,
    meta: trafficgen::report::RunMeta,
) -> trafficgen::report::Report {
    let mut r = trafficgen::report::Report::build(plan, last, meta);
    timeline.apply(last, &mut r);
    r
}

/// A binary from `$var`, else from PATH; missing → the test fails with a clear message (real
/// parts are never skipped).
pub fn binary(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: set {var} or put it on PATH (scripts/test.sh installs it)")
        })
}

/// A loopback port nobody listens on right now (bound, read, released).
/// A report's `started_at` / `ended_at` (RFC 3339).
pub fn rfc3339(s: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (and reaped) when the test ends, whatever the outcome.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `url` until it answers 2xx (bounded: 30 s).
pub async fn wait_ready(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never became ready");
}

/// One scrape job of the test Prometheus.
pub struct ScrapeJob<'a> {
    pub name: &'a str,
    pub targets: Vec<String>,
    /// Keep the targets' own `job`/`instance` labels (what a Pushgateway needs).
    pub honor_labels: bool,
}

impl<'a> ScrapeJob<'a> {
    pub fn new(name: &'a str, targets: &[&str]) -> Self {
        ScrapeJob {
            name,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            honor_labels: false,
        }
    }
}

/// A real Prometheus (PROMETHEUS_BIN) on an ephemeral loopback port, scraping `jobs` every
/// second, with exemplar storage and the remote-write receiver on. Returns the process, its
/// base URL and its data directory (both removed when dropped).
pub async fn prometheus(jobs: &[ScrapeJob<'_>]) -> (Proc, String, tempfile::TempDir) {
    let bin = binary("PROMETHEUS_BIN", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cfg = String::from("global:\n  scrape_interval: 1s\nscrape_configs:");
    if jobs.is_empty() {
        cfg.push_str(" []\n");
    }
    for j in jobs {
        let list = j
            .targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        cfg.push_str(&format!(
            "\n  - job_name: {}\n    honor_labels: {}\n    static_configs:\n      - targets: [{list}]\n",
            j.name, j.honor_labels
        ));
    }
    std::fs::write(dir.path().join("prometheus.yml"), cfg).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = std::process::Command::new(&bin)
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args([
            "--web.enable-remote-write-receiver",
            "--enable-feature=exemplar-storage",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let p = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/-/ready")).await;
    (p, base, dir)
}
