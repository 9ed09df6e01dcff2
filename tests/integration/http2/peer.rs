//! The client against the `h2` crate's server: an independent HPACK encoder (Huffman coding,
//! a dynamic table that evicts), flow control both ways under small windows, trailers and
//! 1xx, many streams on one connection, and a whole run whose counts equal the server's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::{ask, connect, get, local, run, serve_counting};

/// A small deterministic generator (xorshift), so a failing case can be replayed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The response headers of request `seed`: names from a small pool (so the server's dynamic
/// table hits, misses and evicts), values with rare bytes (long Huffman codes) and repeats.
fn headers_for(seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut g = Gen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let n = g.below(12) as usize;
    (0..n)
        .map(|i| {
            let name = format!("x-h{}", g.below(20));
            let len = g.below(if i == 0 { 400 } else { 40 }) as usize;
            let repeat = g.below(3) == 0;
            let value: Vec<u8> = (0..len)
                .map(|k| {
                    let r = if repeat { k as u64 * 7 } else { g.next() };
                    match r % 10 {
                        // obs-text: the longest Huffman codes.
                        0 => 0x80 + (r % 0x7f) as u8,
                        _ => 0x21 + (r % 0x5e) as u8,
                    }
                })
                .collect();
            (name, value)
        })
        .collect()
}

/// An `h2` server answering by path: `/h/N` with `headers_for(N)`; `/big/N` with N bytes;
/// `/echo` with the request body's length and byte sum; `/trailers`; `/early` (103 first).
/// Counts the requests it answered.
async fn h2_server(initial_window: u32) -> (SocketAddr, Arc<AtomicU64>) {
    serve_counting(move |s, count| async move {
        let mut conn = ::h2::server::Builder::new()
            .initial_window_size(initial_window)
            .max_concurrent_streams(100)
            .handshake::<_, Bytes>(s)
            .await
            .unwrap();
        while let Some(Ok((req, respond))) = conn.accept().await {
            tokio::spawn(answer(req, respond, count.clone()));
        }
    })
    .await
}

async fn answer(
    req: http::Request<::h2::RecvStream>,
    mut respond: ::h2::server::SendResponse<Bytes>,
    served: Arc<AtomicU64>,
) {
    let path = req.uri().path().to_string();
    let mut body = req.into_body();
    let (mut len, mut sum) = (0u64, 0u64);
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        len += chunk.len() as u64;
        sum += chunk.iter().map(|&b| u64::from(b)).sum::<u64>();
    }
    // Counted before the response leaves, so a run that saw it has it counted; the run's
    // readiness probe is not load.
    if path != "/health" {
        served.fetch_add(1, Ordering::SeqCst);
    }
    let mut resp = http::Response::builder().status(200);
    let mut data = Bytes::from_static(b"ok");
    if let Some(n) = path.strip_prefix("/h/") {
        for (k, v) in headers_for(n.parse().unwrap()) {
            resp = resp.header(k, http::HeaderValue::from_bytes(&v).unwrap());
        }
    } else if let Some(n) = path.strip_prefix("/big/") {
        data = Bytes::from(vec![b'b'; n.parse().unwrap()]);
    } else if path == "/echo" {
        data = Bytes::from(format!("{len} {sum}"));
    } else if path == "/early" {
        let early = http::Response::builder().status(103).body(()).unwrap();
        respond.send_informational(early).unwrap();
    }
    let mut out = respond
        .send_response(resp.body(()).unwrap(), false)
        .unwrap();
    if path == "/trailers" {
        out.send_data(data, false).unwrap();
        let mut t = http::HeaderMap::new();
        t.insert("x-checksum", "1".parse().unwrap());
        out.send_trailers(t).unwrap();
    } else {
        out.send_data(data, true).unwrap();
    }
    // Keep the stream until its data is out (dropping it early can reset it).
    std::future::poll_fn(|cx| match out.poll_reset(cx) {
        std::task::Poll::Ready(_) => std::task::Poll::Ready(()),
        std::task::Poll::Pending if out.capacity() == 0 => std::task::Poll::Ready(()),
        std::task::Poll::Pending => std::task::Poll::Pending,
    })
    .await;
}

#[tokio::test]
async fn headers_from_an_independent_encoder_decode_exactly() {
    local(async {
        let (addr, _) = h2_server(65_535).await;
        let conn = connect(addr).await.unwrap();
        // In order on one connection: the server's dynamic table carries over responses.
        for n in 0..300u64 {
            let (h, bufs) = ask(&conn, get(&format!("/h/{n}")), 8).await.unwrap();
            // In the order the server's `HeaderMap` sends them: by name, then as added.
            let mut map = http::HeaderMap::new();
            for (k, v) in headers_for(n) {
                let k = http::HeaderName::from_bytes(k.as_bytes()).unwrap();
                map.append(k, http::HeaderValue::from_bytes(&v).unwrap());
            }
            let mut want = b"HTTP/1.1 200 h2\r\n".to_vec();
            for (k, v) in &map {
                want.extend_from_slice(k.as_str().as_bytes());
                want.extend_from_slice(b": ");
                want.extend_from_slice(v.as_bytes());
                want.extend_from_slice(b"\r\n");
            }
            want.extend_from_slice(b"\r\n");
            assert_eq!(&bufs.rbuf[..h.head_len], &want[..], "response {n}");
        }
    })
    .await;
}

#[tokio::test]
async fn bodies_flow_both_ways_under_small_windows_with_trailers_and_1xx() {
    local(async {
        let (addr, served) = h2_server(16_384).await;
        let conn = connect(addr).await.unwrap();
        let big = 3 * 1024 * 1024 + 17;
        let (h, bufs) = ask(&conn, get(&format!("/big/{big}")), 100).await.unwrap();
        assert_eq!((h.body_bytes, bufs.body.len()), (big as u64, 100));
        // A request body far above the server's 16 KiB stream window and 64 KiB connection
        // window: sent as the server gives credit.
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
        let mut raw = format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        let mut bufs = trafficgen::executor::http::Buffers::default();
        let mut sent = 0;
        trafficgen::executor::h2::exchange(&conn, &raw, "http", &mut bufs, 64, &mut sent)
            .await
            .unwrap();
        // All of it, in DATA frames of at most 16 KiB (9 bytes of frame header each).
        assert!((200_000..200_000 + 13 * 9 + 200).contains(&sent), "{sent}");
        assert_eq!(
            String::from_utf8_lossy(&bufs.body),
            format!("{} {sum}", body.len())
        );
        let (h, bufs) = ask(&conn, get("/trailers"), 64).await.unwrap();
        assert_eq!((h.status, &bufs.body[..]), (200, &b"ok"[..]));
        let (h, _) = ask(&conn, get("/early"), 64).await.unwrap();
        assert_eq!((h.status, h.interim), (200, 1));
        // More request headers than the parse's stack slots hold (it falls back to the heap).
        let many: String = (0..40).map(|i| format!("X-H{i}: {i}\r\n")).collect();
        let raw = format!("GET /h/1 HTTP/1.1\r\nHost: t\r\n{many}\r\n").into_bytes();
        assert_eq!(ask(&conn, raw, 8).await.unwrap().0.status, 200);
        // Many streams at once on the one connection.
        let all: Vec<_> = (0..60)
            .map(|n| {
                let c = conn.clone();
                tokio::task::spawn_local(async move { ask(&c, get(&format!("/h/{n}")), 8).await })
            })
            .collect();
        for t in all {
            assert_eq!(t.await.unwrap().unwrap().0.status, 200);
        }
        assert_eq!(served.load(Ordering::SeqCst), 65);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_http2_counts_what_the_server_answered() {
    let (addr, served) = h2_server(65_535).await;
    let yaml = "
name: h2
target:
  http_version: '2'
  max_streams: 4
load:
  model: closed
  start_vus: 8
  think_time: 1ms
  stages:
    - {duration: 1s, vus: 8}
mix:
  operations:
    - {name: get, weight: 3, request: {path: /h/7}}
    - {name: post, weight: 1, request: {method: POST, path: /echo, body: '{{seq}}'}}
";
    let report = run(yaml, addr).await;
    let mut total = 0;
    for (name, op) in &report.ops {
        let c = &op.counts;
        assert_eq!(c.errors.iter().sum::<u64>(), 0, "{name}: {c:?}");
        assert!(c.status_class[1] > 100, "{name}: {c:?}");
        assert_eq!(c.status_class[1], c.requests, "{name}: {c:?}");
        total += c.requests;
    }
    assert_eq!(total, served.load(Ordering::SeqCst));
}
