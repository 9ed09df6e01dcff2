//! Shared helpers: in-process requests through `oneshot`, a served app on 127.0.0.1:0, lookup of
//! the real external binaries (a missing one fails the test, never skips it), child-process
//! guards, and the parsers the tests share (metrics samples, log lines).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use todo_api::{AppState, Config, LogOutput};
use tower::ServiceExt as _;

/// Log lines collected in memory.
pub type Lines = Arc<Mutex<Vec<String>>>;

/// Config for tests: logs in memory, faults on, a fault token, spans exported to memory (so
/// trace ids are shown) and every route traced.
pub fn test_config() -> (Config, Lines) {
    let lines: Lines = Arc::default();
    let config = Config {
        host: [127, 0, 0, 1].into(),
        port: 0,
        faults_enabled: true,
        fault_token: Some("secret-token".into()),
        log: LogOutput::Memory(lines.clone()),
        span_memory: Some(Arc::default()),
        trace_infra_routes: true,
        ..Config::default()
    };
    (config, lines)
}

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub lines: Lines,
}

pub fn test_app() -> TestApp {
    let (config, lines) = test_config();
    with_config(config, lines)
}

pub fn with_config(config: Config, lines: Lines) -> TestApp {
    let state = AppState::new(config);
    TestApp {
        router: todo_api::app(state.clone()),
        state,
        lines,
    }
}

impl TestApp {
    pub async fn call(&self, req: Request<Body>) -> Resp {
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router is infallible");
        let (parts, body) = res.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.call(req(Method::GET, uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn json(&self, method: Method, uri: &str, body: &str) -> Resp {
        self.call(
            req(method, uri)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    pub async fn create(&self, text: &str) -> Value {
        let r = self
            .json(
                Method::POST,
                "/api/todos",
                &serde_json::json!({ "text": text }).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()
    }

    pub fn log_lines(&self) -> Vec<Value> {
        parse_lines(&self.lines)
    }

    pub fn metrics(&self) -> String {
        self.state.render_metrics(false)
    }
}

pub fn parse_lines(lines: &Lines) -> Vec<Value> {
    lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect()
}

pub fn req(method: Method, uri: &str) -> http::request::Builder {
    Request::builder().method(method).uri(uri)
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the one error shape: JSON content type, exactly `error` and `message`, strings.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "content-type {:?}",
            self.header("content-type")
        );
        let v = self.json();
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("error body is not an object: {v}"));
        assert_eq!(
            obj.len(),
            2,
            "error body has exactly error and message: {v}"
        );
        assert_eq!(obj["error"], code, "{v}");
        assert!(
            obj["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
}

/// Value of one sample line of the classic text format (`name{labels}` exactly as written).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.split(' ').next()?.parse().ok())
    })
}

/// The app served on 127.0.0.1:0; shut down (gracefully) on `stop` or drop.
pub struct Served {
    pub addr: SocketAddr,
    pub state: AppState,
    pub lines: Lines,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn serve(config: Config, lines: Lines) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    serve_on(listener, config, lines)
}

/// `serve` on a listener the test made (a larger backlog, say).
pub fn serve_on(listener: tokio::net::TcpListener, config: Config, lines: Lines) -> Served {
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(config);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(todo_api::serve(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    Served {
        addr,
        state,
        lines,
        stop: Some(tx),
        task: Some(task),
    }
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts the graceful shutdown; returns the serve task to await.
    pub fn stop(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("stopped once")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A real binary: `$ENV` if set and non-empty, else the first of `names` on PATH. Missing →
/// panic with a message saying how to get it (tests fail, never skip).
pub fn find_bin(env: &str, names: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env}={} does not exist", p.display());
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("{names:?} not found: set {env} or put it on PATH (bash scripts/test.sh installs it)");
}

/// A free loopback port for a child process that binds by itself. The port is released before
/// the child binds it; another process could take it in between, which the child reports.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills and reaps the child when dropped (also when the test panics).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `check` every `every` until it returns `Some`, or panics with `what` after `limit`.
pub async fn poll<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Percent-encodes a query-string value (everything but unreserved characters).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// rotel listening on ephemeral loopback ports, printing the spans it receives into `out`.
pub(crate) struct Rotel {
    _child: ChildGuard,
    pub(crate) grpc: u16,
    pub(crate) http: u16,
    pub(crate) out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) async fn start_rotel() -> Rotel {
    let rotel = find_bin("ROTEL_BIN", &["rotel-agent"]);
    let dir = tempfile::tempdir().unwrap();
    let (grpc, http) = (free_port(), free_port());
    let out_path = dir.path().join("rotel.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = ChildGuard(
        std::process::Command::new(&rotel)
            .arg("start")
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .args([
                "--exporter",
                "blackhole",
                "--debug-log",
                "traces",
                "--debug-log-verbosity",
                "detailed",
            ])
            .arg("--pid-file")
            .arg(dir.path().join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.path().join("rotel.log"))
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", rotel.display())),
    );
    for port in [grpc, http] {
        poll(
            "rotel to listen",
            Duration::from_secs(30),
            Duration::from_millis(50),
            async || {
                if let Some(status) = child.0.try_wait().unwrap() {
                    panic!(
                        "rotel exited ({status}):\n{}",
                        std::fs::read_to_string(&out_path).unwrap_or_default()
                    );
                }
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
    }
    Rotel {
        _child: child,
        grpc,
        http,
        out: out_path,
        _dir: dir,
    }
}
