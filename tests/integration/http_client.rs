//! The HTTP/1.1 client against servers that misbehave like real ones, over loopback sockets:
//! a table of raw responses read by `executor::http::exchange`, then whole runs against
//! scripted servers (a server that drops the second request of each connection, header
//! overrides and CRLF seen from the server side, `target.headers` templates, captured values
//! in paths and headers, an endless body, an IPv6 target).

use std::future::pending;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use trafficgen::executor::http::{self, Buffers, Failure, Head};
use trafficgen::plan::{Overrides, Plan};
use trafficgen::recorder::{Counts, ErrorKind};
use trafficgen::report::Report;

/// Reads one request head (and its Content-Length body) from `s`; None at EOF.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..end + 4 + len);
            return Some(head);
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Serves `bytes` once to the first request of one connection, then closes.
async fn one_shot(bytes: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = Vec::new();
        if read_request(&mut s, &mut buf).await.is_some() {
            let _ = s.write_all(&bytes).await;
            let _ = s.shutdown().await;
        }
        // Drain until the client closes so it sees our FIN, not a reset.
        let mut sink = [0u8; 1024];
        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    addr
}

#[derive(Debug)]
enum Expect {
    /// status, kept body, whether the connection must be closed after it
    Ok(u16, &'static [u8], bool),
    Err(ErrorKind),
}

async fn exchange_with(
    resp: Vec<u8>,
    method: &str,
    keep: usize,
) -> (Result<Head, Failure>, Buffers) {
    let addr = one_shot(resp).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut bufs = Buffers::default();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        http::exchange(&mut s, req.as_bytes(), &mut bufs, method == "HEAD", keep),
    )
    .await
    .expect("the exchange ends");
    (r, bufs)
}

#[tokio::test]
async fn raw_response_fixtures() {
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let huge_head = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
        "a".repeat(300 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, &str, Expect)> = vec![
        ("100 then 500", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno".to_vec(), "GET", Expect::Ok(500, b"no", false)),
        ("103 early hints then 200", b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(), "GET", Expect::Ok(200, b"ok", false)),
        ("101 not asked for", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("200 headers", format!("HTTP/1.1 200 OK\r\n{many_headers}Content-Length: 1\r\n\r\nx").into_bytes(), "GET", Expect::Ok(200, b"x", false)),
        ("head larger than the limit", huge_head.into_bytes(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("content-length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(), "GET", Expect::Ok(200, b"hello", false)),
        ("chunked with extension and trailer", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n".to_vec(), "GET", Expect::Ok(200, b"hello!", false)),
        ("transfer-encoding wins over content-length, then close", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(), "GET", Expect::Ok(200, b"hello", true)),
        ("conflicting content-lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("conflicting content-length list", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("identical content-lengths", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok".to_vec(), "GET", Expect::Ok(200, b"ok", false)),
        ("invalid content-length", b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("negative content-length", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("malformed chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("chunk size overflow", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nx\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("chunk data longer than its size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("HEAD has no body", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(), "HEAD", Expect::Ok(200, b"", false)),
        ("204 has no body", b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".to_vec(), "GET", Expect::Ok(204, b"", false)),
        ("304 has no body", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n".to_vec(), "GET", Expect::Ok(304, b"", false)),
        ("connection close", b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok".to_vec(), "GET", Expect::Ok(200, b"ok", true)),
        ("HTTP/1.0 body until close", b"HTTP/1.0 200 OK\r\n\r\nuntil the end".to_vec(), "GET", Expect::Ok(200, b"until the end", true)),
        ("HTTP/1.0 keep-alive with length", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok".to_vec(), "GET", Expect::Ok(200, b"ok", false)),
        ("HTTP/1.0 with transfer-encoding", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("gzip not chunked: until close", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw".to_vec(), "GET", Expect::Ok(200, b"raw", true)),
        ("truncated body", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec(), "GET", Expect::Err(ErrorKind::Io)),
        ("truncated chunked body", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab".to_vec(), "GET", Expect::Err(ErrorKind::Io)),
        ("garbage status line", b"SMTP ready\r\n\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
        ("closed after the headers", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Io)),
        ("extra bytes after the response", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n".to_vec(), "GET", Expect::Ok(200, b"ok", true)),
        ("NUL in a header value", b"HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 0\r\n\r\n".to_vec(), "GET", Expect::Err(ErrorKind::Protocol)),
    ];
    for (name, resp, method, expect) in cases {
        let len = resp.len() as u64;
        let (r, bufs) = exchange_with(resp, method, 1 << 20).await;
        match (&expect, r) {
            (Expect::Ok(status, body, close), Ok(h)) => {
                assert_eq!(h.status, *status, "{name}");
                assert_eq!(bufs.body, *body, "{name}");
                assert_eq!(h.body_bytes, body.len() as u64, "{name}");
                // Every byte the server wrote, interim responses and chunk framing included
                // (the one fixture with bytes after its response: those are not its own).
                let extra = if name == "extra bytes after the response" {
                    b"HTTP/1.1 200 OK\r\n".len() as u64
                } else {
                    0
                };
                assert_eq!(h.wire, len - extra, "{name}: wire bytes");
                assert_eq!(h.close, *close, "{name}: close");
            }
            (Expect::Err(kind), Err(f)) => assert_eq!(f.kind, *kind, "{name}"),
            (e, r) => panic!("{name}: expected {e:?}, got {r:?}"),
        }
    }
}

#[tokio::test]
async fn a_closed_connection_without_any_response_is_retryable_and_says_so() {
    let (r, _) = exchange_with(Vec::new(), "GET", 0).await;
    let f = r.unwrap_err();
    assert_eq!(f.kind, ErrorKind::Io);
    assert!(f.nothing_received);
    // An interim response is a byte of a response: not "nothing received".
    let (r, _) = exchange_with(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec(), "GET", 0).await;
    assert!(!r.unwrap_err().nothing_received);
}

#[tokio::test]
async fn large_bodies_stream_through_and_only_max_body_bytes_are_kept() {
    let size = 5 << 20;
    let mut resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
    resp.extend(std::iter::repeat_n(b'x', size));
    let (r, bufs) = exchange_with(resp, "GET", 1000).await;
    let h = r.unwrap();
    assert_eq!(h.body_bytes, size as u64);
    assert_eq!(bufs.body.len(), 1000);
    // The read buffer holds the head and at most one read's worth, never the body.
    assert!(bufs.rbuf.capacity() < 64 * 1024, "{}", bufs.rbuf.capacity());
    // Chunked, with many small chunks: linear and bounded as well.
    let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..100_000 {
        resp.extend_from_slice(b"a\r\n0123456789\r\n");
    }
    resp.extend_from_slice(b"0\r\n\r\n");
    let len = resp.len() as u64;
    let (r, bufs) = exchange_with(resp, "GET", 0).await;
    let h = r.unwrap();
    assert_eq!(h.body_bytes, 1_000_000);
    assert_eq!(h.wire, len, "the chunk framing is received too");
    assert!(bufs.body.is_empty());
}

// ---- whole runs against scripted servers ----

/// What a scripted server does with the `n`-th request (0-based) of a connection.
#[derive(Clone, Copy)]
enum Act {
    Answer,
    /// Read the request, close without answering.
    Drop,
    /// Send headers and an endless chunked body.
    Endless,
    /// Answer with a JSON body carrying a CR LF in a value.
    Evil,
    /// Wait 60 ms, send the head, wait 60 ms, send the body.
    Slow,
    /// By path: `/start` → 302 `/next` (sets a cookie), `/next` → 307 `/final`, `/final` →
    /// 200 `done`, `/away` → 302 to another origin.
    Route,
}

/// A loopback server answering `/health` (readiness) and running `script` on the others;
/// it keeps every request head it read.
struct Scripted {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    async fn start(bind: &str, script: fn(usize) -> Act) -> Scripted {
        let l = TcpListener::bind(bind).await.unwrap();
        let addr = l.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h = heads.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let heads = h.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut n = 0;
                    while let Some(head) = read_request(&mut s, &mut buf).await {
                        if head.contains(" /health ") {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                            return;
                        }
                        let path = head.split(' ').nth(1).unwrap_or("").to_string();
                        heads.lock().unwrap().push(head);
                        let act = script(n);
                        n += 1;
                        let r = match act {
                            Act::Answer => s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await,
                            Act::Drop => return,
                            Act::Route => {
                                let r: &[u8] = match path.as_str() {
                                    "/start" => b"HTTP/1.1 302 Found\r\nLocation: /next\r\nSet-Cookie: sid=abc; Path=/; HttpOnly\r\nContent-Length: 0\r\n\r\n",
                                    "/next" => b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /final\r\nContent-Length: 0\r\n\r\n",
                                    "/final" => b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone",
                                    _ => b"HTTP/1.1 302 Found\r\nLocation: http://example.invalid/x\r\nContent-Length: 0\r\n\r\n",
                                };
                                s.write_all(r).await
                            }
                            Act::Slow => {
                                tokio::time::sleep(Duration::from_millis(60)).await;
                                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n").await;
                                tokio::time::sleep(Duration::from_millis(60)).await;
                                s.write_all(b"slow").await
                            }
                            Act::Evil => s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"v\":\"a\\r\\nEvil: 1\"}").await,
                            Act::Endless => {
                                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
                                loop {
                                    if s.write_all(b"400\r\n").await.is_err() || s.write_all(&[b'z'; 1024]).await.is_err() || s.write_all(b"\r\n").await.is_err() {
                                        return;
                                    }
                                    tokio::time::sleep(Duration::from_millis(5)).await;
                                }
                            }
                        };
                        if r.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Scripted { addr, heads, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn count(&self, pred: impl Fn(&str) -> bool) -> u64 {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .filter(|h| pred(h))
            .count() as u64
    }
}

fn plan_from(yaml: &str, url: &str, env: &[(&str, &str)]) -> Plan {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let o = Overrides {
        target_url: Some(url.to_string()),
        ..Default::default()
    };
    trafficgen::plan::build_from_str(yaml, "test.yaml", None, &o, &move |k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("{e:?}"))
}

async fn run(mut plan: Plan) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    plan.output.report = Some(path.clone());
    let mut out = Vec::new();
    trafficgen::app::run_plan(plan, 1, &mut out, pending())
        .await
        .expect("run");
    Report::read(&path).unwrap()
}

fn counts<'a>(r: &'a Report, op: &str) -> &'a Counts {
    &r.ops.iter().find(|(n, _)| n == op).unwrap().1.counts
}

const CLOSED: &str = "
load:
  model: closed
  start_vus: 2
  think_time: 2ms
  stages:
    - {duration: 1s, vus: 2}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_are_never_resent_and_every_get_retry_is_counted() {
    // Every connection answers its first request and drops the second unanswered.
    let srv = Scripted::start(
        "127.0.0.1:0",
        |n| if n == 0 { Act::Answer } else { Act::Drop },
    )
    .await;
    let yaml = format!(
        "name: drops\n{CLOSED}mix:\n  operations:\n    - name: post\n      weight: 1\n      request: {{method: POST, path: /p, body: 'x'}}\n    - name: get\n      weight: 1\n      request: {{path: /g}}\n"
    );
    let report = run(plan_from(&yaml, &srv.url(), &[])).await;
    let post = counts(&report, "post");
    let get = counts(&report, "get");
    let post_seen = srv.count(|h| h.starts_with("POST /p "));
    let get_seen = srv.count(|h| h.starts_with("GET /g "));
    assert!(post.requests > 5 && get.requests > 5, "{post:?} {get:?}");
    assert_eq!(post.retries, 0);
    assert_eq!(
        post_seen, post.requests,
        "each POST reached the server once"
    );
    assert!(post.errors[ErrorKind::Io.index()] > 0, "{post:?}");
    assert!(get.retries > 0, "{get:?}");
    assert_eq!(
        get_seen,
        get.requests + get.retries,
        "every resend is counted"
    );
    assert_eq!(post.panics + get.panics, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_headers_replace_built_in_ones_and_target_headers_are_templates() {
    let srv = Scripted::start("127.0.0.1:0", |_| Act::Answer).await;
    let yaml = format!(
        "name: headers
target:
  headers:
    Host: shop.example
    Authorization: 'Bearer {{{{env.TOKEN}}}}'
    X-Req: 'n{{{{seq}}}}-{{{{random_int(1, 9)}}}}'
{CLOSED}mix:
  operations:
    - name: put
      request:
        method: PUT
        path: /h
        headers: {{User-Agent: probe/1, Content-Type: text/plain, Connection: keep-alive}}
        body: hi
"
    );
    let report = run(plan_from(&yaml, &srv.url(), &[("TOKEN", "s3cret")])).await;
    assert!(counts(&report, "put").requests > 0);
    let heads = srv.heads.lock().unwrap().clone();
    assert!(!heads.is_empty());
    let mut seen_req = std::collections::BTreeSet::new();
    for h in &heads {
        let lines: Vec<&str> = h.lines().collect();
        let named = |n: &str| {
            lines
                .iter()
                .filter(|l| l.to_ascii_lowercase().starts_with(&format!("{n}:")))
                .map(|l| l.split_once(':').unwrap().1.trim().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(named("host"), ["shop.example"], "{h}");
        assert_eq!(named("user-agent"), ["probe/1"], "{h}");
        assert_eq!(named("content-type"), ["text/plain"], "{h}");
        assert_eq!(named("connection"), ["keep-alive"], "{h}");
        assert_eq!(named("content-length"), ["2"], "{h}");
        assert_eq!(named("authorization"), ["Bearer s3cret"], "{h}");
        let x = named("x-req");
        assert_eq!(x.len(), 1, "{h}");
        assert!(x[0].starts_with('n') && !x[0].contains('{'), "{h}");
        seen_req.insert(x[0].clone());
    }
    assert!(seen_req.len() > 1, "rendered per request: {seen_req:?}");
}

#[test]
fn crlf_nul_and_computed_headers_are_validation_errors() {
    let bad = [
        (
            "target:\n  headers:\n    X-A: \"a\\r\\nEvil: 1\"\n",
            "CR, LF or NUL",
        ),
        ("target:\n  headers:\n    Content-Length: '5'\n", "computed"),
        // The generated one would go out too: two `traceparent` lines, both ignored downstream.
        (
            "target:\n  headers:\n    traceparent: '00-ab-cd-01'\n",
            "`traceparent` is set by the generator",
        ),
        (
            "target:\n  headers:\n    X-E: '{{env.BAD}}'\n",
            "CR, LF or NUL",
        ),
    ];
    for (target, msg) in bad {
        let yaml =
            format!("name: v\n{target}{CLOSED}mix:\n  operations:\n    - request: {{path: /}}\n");
        let o = Overrides::default();
        let e = trafficgen::plan::build_from_str(&yaml, "t.yaml", None, &o, &|k| {
            (k == "BAD").then(|| "x\ny".to_string())
        })
        .expect_err(target);
        assert!(e.iter().any(|e| e.message.contains(msg)), "{target}: {e:?}");
    }
    for request in [
        "{path: \"/a b\"}",
        "{path: \"/a\\r\\nX: 1\"}",
        "{path: /, headers: {Transfer-Encoding: chunked}}",
        "{path: /, headers: {TraceParent: x}}",
        "{path: /, headers: {X: \"a\\nb\"}}",
        "{path: /, headers: {\"Bad Name\": x}}",
    ] {
        let yaml = format!("name: v\n{CLOSED}mix:\n  operations:\n    - request: {request}\n");
        let r =
            trafficgen::plan::build_from_str(&yaml, "t.yaml", None, &Overrides::default(), &|_| {
                None
            });
        assert!(r.is_err(), "{request} was accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_crlf_is_encoded_in_paths_and_refused_in_headers() {
    let srv = Scripted::start("127.0.0.1:0", |_| Act::Evil).await;
    let yaml = format!(
        "name: capture
{CLOSED}mix:
  operations:
    - name: journey
      flow:
        - name: get
          request: {{path: /src}}
          capture: {{v: /v}}
        - name: path
          request: {{path: '/p/{{{{v}}}}'}}
        - name: header
          request: {{path: /h, headers: {{X-V: '{{{{v}}}}'}}}}
"
    );
    let report = run(plan_from(&yaml, &srv.url(), &[])).await;
    let c = counts(&report, "journey");
    let flows = srv.count(|h| h.starts_with("GET /src "));
    assert!(flows > 0);
    assert_eq!(
        srv.count(|h| h.starts_with("GET /p/a%0D%0AEvil:%201 ")),
        flows
    );
    assert_eq!(
        srv.count(|h| h.lines().any(|l| l.starts_with("Evil"))),
        0,
        "no injected header line"
    );
    assert_eq!(
        srv.count(|h| h.starts_with("GET /h ")),
        0,
        "the header step is never sent"
    );
    assert_eq!(c.errors[ErrorKind::InvalidRequest.index()], flows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_ends_at_the_request_timeout() {
    let srv = Scripted::start("127.0.0.1:0", |_| Act::Endless).await;
    let yaml = format!(
        "name: endless\ntarget: {{request_timeout: 300ms}}\n{CLOSED}mix:\n  operations:\n    - name: get\n      request: {{path: /e}}\n      checks: {{body_contains: nothing}}\n"
    );
    let report = run(plan_from(&yaml, &srv.url(), &[])).await;
    let c = counts(&report, "get");
    assert!(c.requests >= 2, "{c:?}");
    assert_eq!(c.errors[ErrorKind::Timeout.index()], c.requests, "{c:?}");
    assert!(c.bytes_received == 0, "no response completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_literal_target() {
    let srv = Scripted::start("[::1]:0", |_| Act::Answer).await;
    let url = format!("http://[::1]:{}", srv.addr.port());
    let yaml = format!(
        "name: v6\n{CLOSED}mix:\n  operations:\n    - name: get\n      request: {{path: /six}}\n"
    );
    let report = run(plan_from(&yaml, &url, &[])).await;
    let c = counts(&report, "get");
    assert!(c.requests > 0);
    assert_eq!(c.status, vec![(200, c.requests)]);
    assert_eq!(srv.count(|h| h.starts_with("GET /six ")), c.requests);
    let hosts = srv.count(|h| h.contains(&format!("Host: [::1]:{}\r\n", srv.addr.port())));
    assert_eq!(hosts, c.requests);
    assert_eq!(
        c.bytes_received,
        c.requests * (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n".len() as u64 + 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_timings_and_bytes_per_operation() {
    let srv = Scripted::start("127.0.0.1:0", |_| Act::Slow).await;
    let yaml = format!(
        "name: phases\n{CLOSED}mix:\n  operations:\n    - name: get\n      request: {{path: /slow}}\n"
    );
    let report = run(plan_from(&yaml, &srv.url(), &[])).await;
    let op = &report.ops[0].1;
    let c = &op.counts;
    assert!(c.requests >= 4, "{c:?}");
    let ph = &op.phases_ms;
    assert!(ph.ttfb.p50 >= 55.0 && ph.ttfb.p50 < 1000.0, "{ph:?}");
    assert!(ph.receive.p50 >= 55.0 && ph.receive.p50 < 1000.0, "{ph:?}");
    assert!(
        ph.connect.max > 0.0,
        "the first request of each VU connected: {ph:?}"
    );
    assert_eq!(ph.tls.max, 0.0, "no TLS over http://");
    assert_eq!(
        report.totals.phases_ms, op.phases_ms,
        "one operation: totals are its figures"
    );
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n".len() as u64;
    assert_eq!(c.bytes_received, c.requests * (head + 4));
    let sent: u64 = srv
        .heads
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.len() as u64)
        .sum();
    assert_eq!(c.bytes_sent, sent, "every byte the server read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_as_requests_of_their_own_with_a_cookie_jar() {
    let srv = Scripted::start("127.0.0.1:0", |_| Act::Route).await;
    let yaml = format!(
        "name: redirects
target: {{follow_redirects: 3, cookies: true}}
{CLOSED}mix:
  operations:
    - name: post
      request: {{method: POST, path: /start, body: x}}
      checks: {{status: 200, body_contains: done}}
    - name: away
      request: {{path: /away}}
    - name: nofollow
      follow_redirects: 0
      request: {{path: /start}}
"
    );
    let report = run(plan_from(&yaml, &srv.url(), &[])).await;
    let post = counts(&report, "post");
    let n = post
        .status
        .iter()
        .find(|(s, _)| *s == 200)
        .map_or(0, |(_, n)| *n);
    assert!(n > 0, "{post:?}");
    assert_eq!(
        post.status,
        vec![(200, n), (302, n), (307, n)],
        "each hop is a request"
    );
    assert_eq!(post.requests, 3 * n);
    assert_eq!(
        (post.checks_passed, post.checks_failed),
        (2 * n, 0),
        "checks judge the last hop"
    );
    assert_eq!(srv.count(|h| h.starts_with("POST /start ")), n);
    // 302 turns the POST into a GET; 307 keeps the GET.
    assert_eq!(srv.count(|h| h.starts_with("GET /next ")), n);
    assert_eq!(srv.count(|h| h.starts_with("GET /final ")), n);
    assert_eq!(
        srv.count(|h| h.starts_with("POST /next ") || h.starts_with("POST /final ")),
        0
    );
    assert_eq!(
        srv.count(|h| h.starts_with("GET /final ") && h.contains("\r\nCookie: sid=abc\r\n")),
        n,
        "the jar sends the cookie set by /start"
    );
    let away = counts(&report, "away");
    assert_eq!(
        away.status,
        vec![(302, away.requests)],
        "another origin is not followed"
    );
    let nofollow = counts(&report, "nofollow");
    assert_eq!(nofollow.status, vec![(302, nofollow.requests)]);
    assert_eq!(srv.count(|h| h.contains("example.invalid")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_mode_runs_one_url_without_a_scenario_file() {
    let app = crate::support::App::start().await;
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, r#"{"text":"quick {{seq}}"}"#).unwrap();
    let report = dir.path().join("report.json");
    let args: Vec<String> = [
        "run",
        "--url",
        &format!("http://{}/api/todos", app.addr),
        "--method",
        "POST",
        "--header",
        "Content-Type: application/json",
        "--header",
        "X-Quick: yes",
        "--body",
        &format!("@{}", body.display()),
        "--vus",
        "2",
        "--duration",
        "1s",
        "--threshold",
        "errors: rate<1%",
        "--threshold",
        "response_time{op:request}: p(99)<5s",
        "--report",
        &report.display().to_string(),
        "--quiet",
        "--workers",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        let mut c = assert_cmd::Command::cargo_bin("trafficgen").unwrap();
        c.env_remove("TRAFFICGEN_TARGET_URL")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .timeout(Duration::from_secs(60))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = Report::read(&report).unwrap();
    assert_eq!(r.thresholds.len(), 2);
    let c = counts(&r, "request");
    assert!(c.requests > 5, "{c:?}");
    assert_eq!(
        c.status,
        vec![(201, c.requests)],
        "JSON body and header reached the app"
    );
    let theirs = app.requests_total().await;
    let posts: u64 = theirs
        .iter()
        .filter(|((m, r, s), _)| m == "POST" && r == "/api/todos" && *s == 201)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(posts, c.requests);
    // Without --rate/--vus it is a usage error.
    let out = tokio::task::spawn_blocking(move || {
        let mut c = assert_cmd::Command::cargo_bin("trafficgen").unwrap();
        c.args(["run", "--url", "http://127.0.0.1:9/", "--duration", "1s"])
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate R or --vus N"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_covers_writing_to_a_server_that_never_reads() {
    // Answers the readiness probe, then holds every other connection without reading it.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let mut peek = [0u8; 64];
            let n = s.peek(&mut peek).await.unwrap_or(0);
            if peek[..n].starts_with(b"GET /health ") {
                let mut buf = Vec::new();
                let _ = read_request(&mut s, &mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            } else {
                h.lock().unwrap().push(s);
            }
        }
    });
    let big = "x".repeat(8 << 20);
    let yaml = format!(
        "name: stuck\ntarget: {{request_timeout: 300ms}}\n{CLOSED}mix:\n  operations:\n    - name: post\n      request: {{method: POST, path: /p, body: '{big}'}}\n"
    );
    let start = tokio::time::Instant::now();
    let report = run(plan_from(&yaml, &format!("http://{addr}"), &[])).await;
    task.abort();
    let c = counts(&report, "post");
    assert!(c.requests >= 2, "{c:?}");
    assert_eq!(c.errors[ErrorKind::Timeout.index()], c.requests, "{c:?}");
    // 1 s of load, then at most the drain: nothing stays in flight past the timeout.
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
}
