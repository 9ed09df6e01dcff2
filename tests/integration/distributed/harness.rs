//! The harness of the distributed-run tests: a todo-api with its fault API, trafficgen
//! processes (killed on drop, output to files), the shared scenario and report readers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::support::{parse_requests_total, rfc3339};

pub(super) const TOKEN: &str = "dist-test-token";

/// A todo-api with its fault API enabled (bearer `TOKEN`), on an ephemeral loopback port.
pub(super) struct FaultApp {
    pub(super) addr: SocketAddr,
    pub(super) stop: Option<oneshot::Sender<()>>,
    pub(super) task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl FaultApp {
    pub(super) async fn start() -> FaultApp {
        let config = todo_api::Config {
            host: [127, 0, 0, 1].into(),
            port: 0,
            faults_enabled: true,
            fault_token: Some(TOKEN.into()),
            log: todo_api::LogOutput::Off,
            shutdown_grace: Duration::from_millis(200),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(todo_api::serve(
            listener,
            todo_api::AppState::new(config),
            async move {
                let _ = rx.await;
            },
        ));
        FaultApp {
            addr,
            stop: Some(tx),
            task,
        }
    }

    pub(super) async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Requests the app counted on the todo routes.
    pub(super) async fn todo_requests(&self) -> u64 {
        parse_requests_total(&self.metrics().await)
            .iter()
            .filter(|((_, r, _), _)| r.starts_with("/api/todos"))
            .map(|(_, n)| n)
            .sum()
    }

    /// `tp2devops_faults_injected_total`, summed over its series.
    pub(super) async fn faults_injected(&self) -> u64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with("tp2devops_faults_injected_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    pub(super) async fn shut_down(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

/// How many fault rules are live on the app at `addr` (its fault API).
pub(super) async fn live_rules(addr: SocketAddr) -> Option<usize> {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/admin/faults"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .ok()?;
    let v: Value = r.json().await.ok()?;
    v.as_array().map(Vec::len)
}

/// The highest number of live fault rules seen on the app until the sender is used.
pub(super) fn watch_rules(app: &FaultApp) -> (Arc<AtomicUsize>, oneshot::Sender<()>) {
    let max = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = oneshot::channel::<()>();
    let (m, addr) = (max.clone(), app.addr);
    tokio::spawn(async move {
        loop {
            if let Some(n) = live_rules(addr).await {
                m.fetch_max(n, Ordering::SeqCst);
            }
            tokio::select! {
                _ = &mut rx => break,
                _ = tokio::time::sleep(Duration::from_millis(25)) => {}
            }
        }
    });
    (max, tx)
}

pub(super) use crate::support::free_port;

/// A trafficgen process, killed if the test ends before it does; output goes to files (a
/// report line is larger than a pipe buffer).
pub(super) struct Proc {
    pub(super) child: Option<Child>,
    pub(super) stdout: PathBuf,
    pub(super) stderr: PathBuf,
}

pub(super) struct Ended {
    pub(super) code: Option<i32>,
    pub(super) stdout: String,
    pub(super) stderr: String,
    pub(super) took: Duration,
}

impl Proc {
    pub(super) fn spawn(dir: &Path, name: &str, args: &[&str], env: &[(&str, String)]) -> Proc {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_trafficgen"));
        for (k, _) in std::env::vars() {
            if k.starts_with("TRAFFICGEN_") || k.starts_with("OTEL_") || k == "JOB_COMPLETION_INDEX"
            {
                c.env_remove(k);
            }
        }
        c.args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("TRAFFICGEN_FAULT_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        Proc {
            child: Some(c.spawn().expect("spawn trafficgen")),
            stdout,
            stderr,
        }
    }

    /// Sends SIGTERM (as Kubernetes does to a pod being deleted).
    pub(super) fn terminate(&self) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -TERM {pid}");
    }

    /// Resolves once the process's stderr shows a progress line with requests (polled, at
    /// most `limit`).
    pub(super) async fn when_loading(&self, limit: Duration) {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            if err
                .lines()
                .any(|l| l.contains(" req,") && !l.contains("] 0 req,"))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no progress line with requests within {limit:?}");
    }

    /// Waits (polling, bounded by `limit`) for the exit.
    pub(super) async fn wait(mut self, limit: Duration) -> Ended {
        let t0 = Instant::now();
        let mut child = self.child.take().unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "trafficgen did not exit within {limit:?}; stderr:\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Ended {
            code: status.code(),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
            took: t0.elapsed(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Constant arrivals at 10/s for 2 s (exactly 20 `GET /api/todos`), and a server-side 503
/// window on that route from 0.55 s to 1.55 s: arrivals are 100 ms apart, so exactly the 10
/// arrivals 0.6 s … 1.5 s fall in it, with 50 ms to spare on both sides.
pub(super) fn scenario(dir: &Path, name: &str, thresholds: &str) -> PathBuf {
    scenario_at(dir, name, 10, "550ms", thresholds)
}

/// `rate`/s for 2 s, the 1 s fault window from `fault_start`: put it halfway between two
/// arrivals so that which arrivals it catches does not depend on a few ms of scheduling.
pub(super) fn scenario_at(
    dir: &Path,
    name: &str,
    rate: u32,
    fault_start: &str,
    thresholds: &str,
) -> PathBuf {
    let text = format!(
        "name: dist-test
load:
  model: open
  arrivals: constant
  start_rate: {rate}/s
  stages:
    - {{ duration: 2s, rate: {rate}/s }}
mix:
  operations:
    - name: list
      todo: list
output:
  progress: plain
  interval: 250ms
faults:
  - start: {fault_start}
    duration: 1s
    kind: error
    status: 503
    route: /api/todos
    method: GET
    share: 100%
    via: server
{thresholds}"
    );
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub(super) fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}")))
        .unwrap()
}

pub(super) fn started_at(report: &Value) -> time::OffsetDateTime {
    rfc3339(report["started_at"].as_str().unwrap())
}

pub(super) fn requests(report: &Value) -> u64 {
    report["totals"]["counts"]["requests"].as_u64().unwrap()
}

/// One distributed run: N segments of `scenario` against `url`, the coordinator on `port`.
pub(super) struct Dist<'a> {
    pub(super) dir: &'a Path,
    pub(super) scenario: &'a Path,
    pub(super) url: &'a str,
    pub(super) n: u32,
    pub(super) port: u16,
    pub(super) timeout: &'a str,
    /// More `run` flags for every segment.
    pub(super) extra: &'a [&'a str],
}

/// Starts segments `indexes` of the run (0 = the coordinator), `gap` apart.
pub(super) async fn start_segments(
    d: &Dist<'_>,
    indexes: &[u32],
    gap: Duration,
) -> BTreeMap<u32, Proc> {
    let Dist {
        dir,
        scenario,
        url,
        n,
        port,
        timeout,
        extra,
    } = *d;
    let mut procs = BTreeMap::new();
    for (k, &i) in indexes.iter().enumerate() {
        if k > 0 {
            tokio::time::sleep(gap).await;
        }
        let report = dir.join(format!("seg-{i}.json"));
        let summary = dir.join(format!("summary-{i}.json"));
        let (n_s, coordinator) = (n.to_string(), format!("127.0.0.1:{port}"));
        let mut args = vec![
            "run",
            scenario.to_str().unwrap(),
            "--target-url",
            url,
            "--segments",
            &n_s,
            "--coordinator",
            &coordinator,
            "--coordinator-timeout",
            timeout,
            "--report",
            report.to_str().unwrap(),
            "--summary-file",
            summary.to_str().unwrap(),
            "--workers",
            "1",
        ];
        args.extend_from_slice(extra);
        let p = Proc::spawn(
            dir,
            &format!("seg-{i}"),
            &args,
            &[
                ("JOB_COMPLETION_INDEX", i.to_string()),
                ("TRAFFICGEN_REPORT_LOG", "true".into()),
            ],
        );
        procs.insert(i, p);
    }
    procs
}
