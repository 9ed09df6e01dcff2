//! The app under abuse, over real sockets: thousands of connections that never finish their
//! headers, idle and slow clients, a connection bound, half-closed clients, request heads
//! hyper cannot parse (answered in the JSON error shape), and a stdout nobody reads.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::{ChildGuard, parse_lines, poll, sample, serve, serve_on, test_config};

/// Reads until the peer closes (or `limit` passes: panic), returns what came.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server did not close within {limit:?}"));
    out
}

/// Splits a raw HTTP/1.1 answer into (status, head, body).
fn parse_answer(raw: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// Asserts the JSON error shape on a raw answer and returns its `error` code.
fn assert_json_error(raw: &[u8], status: u16) -> String {
    let (got, head, body) = parse_answer(raw);
    assert_eq!(got, status, "{head}\n{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head} / {body}"
    );
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let o = v.as_object().unwrap();
    assert_eq!(o.len(), 2, "{v}");
    assert!(o["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    o["error"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_from_5000_connections_neither_block_health_nor_stay_open() {
    const PARTIALS: usize = 5000;
    // Both ends of every connection live in this process: 2 fds each, plus headroom.
    let limit = rlimit::increase_nofile_limit(2 * PARTIALS as u64 + 1024).unwrap();
    assert!(
        limit >= 2 * PARTIALS as u64 + 256,
        "the hard limit on open files ({limit}) is too low for {PARTIALS} connections"
    );
    let (mut config, lines) = test_config();
    let head_timeout = Duration::from_secs(5);
    config.header_read_timeout = head_timeout;
    config.idle_timeout = Duration::from_secs(120);
    // A backlog deep enough for a wave of connects while the accept loop catches up.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let app = serve_on(socket.listen(4096).unwrap(), config, lines);
    let addr = app.addr;

    let started = Instant::now();
    let mut partials = Vec::with_capacity(PARTIALS);
    // In waves, so the listen backlog never overflows while the accept loop catches up.
    for _ in 0..PARTIALS / 500 {
        let wave = (0..500).map(|_| async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .expect("send a partial head");
            s
        });
        for s in futures_join(wave).await {
            partials.push(s);
        }
    }
    let sent = Instant::now();

    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(1), reqwest::get(app.url("/health")))
        .await
        .expect("/health answers within 1 s beside 5000 partial heads")
        .unwrap();
    assert_eq!(r.status(), 200);
    let health_took = t.elapsed();

    // Before the header timeout they are still open (nothing to read, no close).
    if sent.duration_since(started) + health_took < head_timeout - Duration::from_secs(1) {
        for s in partials.iter().step_by(97) {
            let mut b = [0u8; 1];
            match s.try_read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("closed before the header timeout: {other:?}"),
            }
        }
    }
    // After it, every one gets a 408 in the JSON error shape and is closed by the server.
    let deadline = started + head_timeout + Duration::from_secs(20);
    for s in &mut partials {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = read_to_close(s, left.max(Duration::from_millis(1))).await;
        assert_eq!(assert_json_error(&got, 408), "request_timeout");
    }
    assert_eq!(
        sample(
            &app.state.render_metrics(false),
            r#"tp2devops_http_rejected_total{status_code="408"}"#
        ),
        Some(PARTIALS as f64)
    );
    assert!(
        started.elapsed() >= head_timeout,
        "closed after, not before, the header timeout"
    );
    eprintln!(
        "{PARTIALS} partial heads sent in {:?}, /health answered in {health_took:?}, all closed {:?} after the first",
        sent.duration_since(started),
        started.elapsed()
    );
}

/// Awaits all futures concurrently (no extra crate for a join).
async fn futures_join<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let (mut config, lines) = test_config();
    config.idle_timeout = Duration::from_millis(500);
    config.header_read_timeout = Duration::from_secs(30);
    let app = serve(config, lines).await;
    // A keep-alive connection after its answer.
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let got = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert!(t.elapsed() >= Duration::from_millis(500));
    let (status, _, body) = parse_answer(&got);
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    // A connection that never sends anything.
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    assert!(
        read_to_close(&mut s, Duration::from_secs(10))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_trickling_body_gets_408_after_the_body_read_timeout() {
    let (mut config, lines) = test_config();
    config.body_read_timeout = Duration::from_millis(500);
    let app = serve(config, lines).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(
        b"POST /api/todos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"text\":",
    )
    .await
    .unwrap();
    let got = read_to_close(&mut s, Duration::from_secs(10)).await;
    assert_eq!(assert_json_error(&got, 408), "request_timeout");
}

#[tokio::test]
async fn beyond_max_connections_new_clients_wait_for_a_free_slot() {
    let (mut config, lines) = test_config();
    config.max_connections = 2;
    let app = serve(config, lines).await;
    let a = TcpStream::connect(app.addr).await.unwrap();
    let _b = TcpStream::connect(app.addr).await.unwrap();
    // The third connects (kernel backlog) but is not served while two are open.
    let mut c = TcpStream::connect(app.addr).await.unwrap();
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut b1 = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.read(&mut b1))
            .await
            .is_err(),
        "served beyond the bound"
    );
    drop(a);
    // The read above timed out, so nothing was consumed: the answer comes whole.
    let got = read_to_close(&mut c, Duration::from_secs(10)).await;
    let (status, _, _) = parse_answer(&got);
    assert_eq!(status, 200);
}

#[tokio::test]
async fn half_closed_clients_get_their_answer() {
    let (config, lines) = test_config();
    let app = serve(config, lines).await;
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let (status, _, body) = parse_answer(&read_to_close(&mut s, Duration::from_secs(10)).await);
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));

    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let body = r#"{"text":"half"}"#;
    s.write_all(
        format!(
            "POST /api/todos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s.shutdown().await.unwrap();
    let (status, _, body) = parse_answer(&read_to_close(&mut s, Duration::from_secs(10)).await);
    assert_eq!(status, 201, "{body}");
    assert!(body.contains(r#""text":"half""#), "{body}");
}

#[tokio::test]
async fn unparsable_heads_are_answered_in_the_json_error_shape() {
    let (mut config, lines) = test_config();
    config.max_headers = 20;
    let app = serve(config, lines.clone()).await;
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let long_target = "a".repeat(70_000);
    let cases: [(String, u16, &str); 6] = [
        ("GARBAGE\r\n\r\n".into(), 400, "bad_request"),
        ("GET /health HTTP/9.9\r\nHost: x\r\n\r\n".into(), 400, "bad_request"),
        (
            "POST /api/todos HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n".into(),
            400,
            "bad_request",
        ),
        (
            "POST /api/todos HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
                .into(),
            400,
            "bad_request",
        ),
        (
            format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
            431,
            "headers_too_large",
        ),
        (
            format!("GET /{long_target} HTTP/1.1\r\nHost: x\r\n\r\n"),
            414,
            "uri_too_long",
        ),
    ];
    for (raw, status, code) in &cases {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let got = read_to_close(&mut s, Duration::from_secs(10)).await;
        assert_eq!(&assert_json_error(&got, *status), code, "{raw:?}");
    }
    // Pipelined behind a good request: the good one's answer, then the JSON 400.
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let second = text
        .find(r#"{"status":"ok"}"#)
        .map(|i| i + r#"{"status":"ok"}"#.len())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert_eq!(assert_json_error(&got[second..], 400), "bad_request");
    let m = app.state.render_metrics(false);
    assert_eq!(
        sample(&m, r#"tp2devops_http_rejected_total{status_code="400"}"#),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, r#"tp2devops_http_rejected_total{status_code="431"}"#),
        Some(1.0)
    );
    let warned = parse_lines(&lines)
        .into_iter()
        .filter(|l| l["msg"] == "request rejected" && l["level"] == "WARN")
        .count();
    assert_eq!(warned, cases.len() + 1);
    // A good request on a fresh connection is still served normally.
    assert_eq!(
        reqwest::get(app.url("/health")).await.unwrap().status(),
        200
    );
}

/// The binary with its stdout a pipe nobody reads: once the pipe and the queue are full, log
/// lines are dropped and counted, and every route still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_stdout_blocks_no_route_and_drops_are_counted() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let mut app = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_todo-api"))
            .env_clear()
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("LOG", "stdout")
            .env("LOG_QUEUE_LINES", "64")
            .env("FAULTS_ENABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Held open, never read: writes to it block once the pipe buffer (64 KiB here) is full.
    let _stdout = app.0.stdout.take().unwrap();
    let stderr = app.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let base = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let c = reqwest::Client::new();
    let each = Duration::from_secs(5);
    // ~2 lines per request of ~150 bytes: 1500 requests are several times pipe + queue.
    for i in 0..1500 {
        let r = tokio::time::timeout(
            each,
            c.post(format!("{base}/api/todos"))
                .json(&serde_json::json!({ "text": format!("line {i}") }))
                .send(),
        )
        .await
        .expect("POST answers while stdout is stuck")
        .unwrap();
        assert_eq!(r.status(), 201);
    }
    let dropped = poll(
        "dropped log lines to be counted",
        Duration::from_secs(10),
        Duration::from_millis(50),
        async || {
            let m = c
                .get(format!("{base}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            sample(&m, "tp2devops_log_lines_dropped_total").filter(|n| *n > 0.0)
        },
    )
    .await;
    assert!(dropped > 0.0);
    // Every route still answers.
    let id = 1;
    for (method, path, want) in [
        ("GET", "/health".to_string(), 200),
        ("GET", "/ready".to_string(), 200),
        ("GET", "/metrics".to_string(), 200),
        ("GET", "/api/todos".to_string(), 200),
        ("GET", format!("/api/todos/{id}"), 200),
        ("PUT", format!("/api/todos/{id}"), 200),
        ("PATCH", format!("/api/todos/{id}"), 200),
        ("DELETE", format!("/api/todos/{id}"), 204),
        ("GET", "/nowhere".to_string(), 404),
    ] {
        let mut rb = c.request(method.parse().unwrap(), format!("{base}{path}"));
        if method == "PUT" || method == "PATCH" {
            rb = rb.json(&serde_json::json!({ "completed": true }));
        }
        let r = tokio::time::timeout(each, rb.send())
            .await
            .unwrap_or_else(|_| panic!("{method} {path} hangs while stdout is stuck"))
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{method} {path}");
    }
}
