//! The raw-frame server (`Raw`, `serve_one`) and the client against it scripted to
//! misbehave: settings limits and pings, GOAWAY (also in a whole run), RST_STREAM, interim and
//! invalid statuses, padding and CONTINUATION, a handshake that never completes, a closed
//! socket, a body answered before it was read. `hostile.rs` has the protocol violations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use trafficgen::executor::h2::{self, Pool};
use trafficgen::executor::tls::Stream;
use trafficgen::recorder::ErrorKind;

use super::{ask, connect, get, io_never_processed, listener, local, run, serve_counting, text};

pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub(super) const DATA: u8 = 0;
pub(super) const HEADERS: u8 = 1;
pub(super) const RST_STREAM: u8 = 3;
pub(super) const SETTINGS: u8 = 4;
pub(super) const PUSH_PROMISE: u8 = 5;
pub(super) const PING: u8 = 6;
pub(super) const GOAWAY: u8 = 7;
pub(super) const WINDOW_UPDATE: u8 = 8;
pub(super) const CONTINUATION: u8 = 9;
pub(super) const END_STREAM: u8 = 1;
pub(super) const END_HEADERS: u8 = 4;
pub(super) const PADDED: u8 = 8;
pub(super) const PRIORITY: u8 = 0x20;

/// `:status 200` from the static table.
pub(super) const OK: &[u8] = &[0x88];

/// One frame as the raw server sees it.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) stream: u32,
    pub(super) payload: Vec<u8>,
}

/// The server end of one connection, speaking frames by hand.
pub(super) struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Accepts a connection, reads the preface and sends `settings`.
    pub(super) async fn accept(l: &TcpListener, settings: &[(u16, u32)]) -> Raw {
        let (s, _) = l.accept().await.unwrap();
        Raw::start(s, settings).await
    }

    /// Reads the preface on `s` and sends empty settings.
    pub(super) async fn from(s: TcpStream) -> Raw {
        Raw::start(s, &[]).await
    }

    pub(super) async fn start(s: TcpStream, settings: &[(u16, u32)]) -> Raw {
        let mut raw = Raw { s, buf: Vec::new() };
        raw.fill(PREFACE.len()).await.unwrap();
        assert_eq!(&raw.buf[..PREFACE.len()], PREFACE);
        raw.buf.drain(..PREFACE.len());
        let mut p = Vec::new();
        for (id, v) in settings {
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&v.to_be_bytes());
        }
        raw.send(SETTINGS, 0, 0, &p).await;
        raw
    }

    pub(super) async fn fill(&mut self, n: usize) -> Option<()> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 16384];
            let k = self.s.read(&mut chunk).await.ok()?;
            if k == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..k]);
        }
        Some(())
    }

    /// The next frame from the client; None at EOF.
    pub(super) async fn frame(&mut self) -> Option<Frame> {
        self.fill(9).await?;
        let len = (usize::from(self.buf[0]) << 16)
            | (usize::from(self.buf[1]) << 8)
            | usize::from(self.buf[2]);
        self.fill(9 + len).await?;
        let f = Frame {
            kind: self.buf[3],
            flags: self.buf[4],
            stream: u32::from_be_bytes(self.buf[5..9].try_into().unwrap()) & 0x7fff_ffff,
            payload: self.buf[9..9 + len].to_vec(),
        };
        self.buf.drain(..9 + len);
        Some(f)
    }

    /// The next frame of `kind`, skipping others (settings, acks, window updates).
    pub(super) async fn next(&mut self, kind: u8) -> Option<Frame> {
        loop {
            let f = self.frame().await?;
            if f.kind == kind {
                return Some(f);
            }
        }
    }

    pub(super) async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let l = (payload.len() as u32).to_be_bytes();
        let mut f = vec![l[1], l[2], l[3], kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        // The client may have closed already; the test's assertions say whether it should.
        let _ = self.s.write_all(&f).await;
    }

    /// A complete response: `block` as one HEADERS frame, then `body` in one DATA frame.
    pub(super) async fn respond(&mut self, stream: u32, block: &[u8], body: &[u8]) {
        if body.is_empty() {
            self.send(HEADERS, END_HEADERS | END_STREAM, stream, block)
                .await;
        } else {
            self.send(HEADERS, END_HEADERS, stream, block).await;
            self.send(DATA, END_STREAM, stream, body).await;
        }
    }
}

/// A server for one connection: accepts it, sends `settings` and runs `script` on it; its
/// address, and the task whose result is the script's.
pub(super) async fn serve_one<F, Fut, T>(
    settings: &'static [(u16, u32)],
    script: F,
) -> (SocketAddr, tokio::task::JoinHandle<T>)
where
    F: FnOnce(Raw) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move { script(Raw::accept(&l, settings).await).await });
    (addr, server)
}

/// An HPACK literal without indexing, with a literal name and raw strings (all < 127 bytes).
fn lit(name: &str, value: &str) -> Vec<u8> {
    let mut b = vec![0x00, name.len() as u8];
    b.extend_from_slice(name.as_bytes());
    b.push(value.len() as u8);
    b.extend_from_slice(value.as_bytes());
    b
}

/// `:status` (static index 8) with a literal value, without indexing.
fn status(code: &str) -> Vec<u8> {
    let mut b = vec![0x08, code.len() as u8];
    b.extend_from_slice(code.as_bytes());
    b
}

#[tokio::test]
async fn settings_limit_streams_and_pings_are_answered() {
    local(async {
        let (addr, server) = serve_one(&[(3, 1)], move |mut r| async move {
            r.send(PING, 0, 0, b"12345678").await;
            let ack = r.next(PING).await.unwrap();
            assert_eq!((ack.flags, &ack.payload[..]), (1, &b"12345678"[..]));
            let h = r.next(HEADERS).await.unwrap();
            assert_eq!(h.stream, 1);
            assert_eq!(
                h.flags & (END_STREAM | END_HEADERS),
                END_STREAM | END_HEADERS
            );
            r.respond(1, OK, b"hi").await;
            r
        })
        .await;
        let conn = connect(addr).await.unwrap();
        let pool = Pool::default();
        pool.add(conn.clone());
        let c2 = conn.clone();
        let req = tokio::task::spawn_local(async move { ask(&c2, get("/a"), 16).await });
        tokio::task::yield_now().await;
        // The server allows one stream at a time: the pool has none free now.
        assert_eq!(conn.streams(), 1);
        assert!(pool.pick(10).is_none());
        let (h, bufs) = req.await.unwrap().unwrap();
        assert_eq!(
            (h.status, &bufs.body[..], h.body_bytes),
            (200, &b"hi"[..], 2)
        );
        assert!(pool.pick(10).is_some());
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn goaway_fails_only_the_streams_the_server_never_processed() {
    local(async {
        let (addr, server) = serve_one(&[], move |mut r| async move {
            r.next(HEADERS).await.unwrap();
            r.next(HEADERS).await.unwrap();
            r.send(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]).await;
            r.respond(1, OK, b"one").await;
            // The client closes once stream 1 is done: nothing is left on it.
            while r.frame().await.is_some() {}
        })
        .await;
        let conn = connect(addr).await.unwrap();
        let pool = Pool::default();
        pool.add(conn.clone());
        let (a, b) = tokio::join!(ask(&conn, get("/1"), 8), ask(&conn, get("/3"), 8));
        assert_eq!(a.unwrap().0.status, 200);
        assert_eq!(b.unwrap_err(), io_never_processed());
        assert!(
            pool.pick(10).is_none(),
            "a connection that got GOAWAY takes no new stream"
        );
        assert_eq!(
            ask(&conn, get("/5"), 8).await.unwrap_err(),
            io_never_processed()
        );
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_reset_stream_fails_alone_and_interim_and_invalid_statuses() {
    local(async {
        let (addr, server) = serve_one(&[], move |mut r| async move {
            for _ in 0..4 {
                r.next(HEADERS).await.unwrap();
            }
            // 1: reset by the server. 3: 103 then 200. 5: 101. 7: a regular header first.
            r.send(RST_STREAM, 0, 1, &[0, 0, 0, 2]).await;
            r.send(HEADERS, END_HEADERS, 3, &status("103")).await;
            let mut block = OK.to_vec();
            block.extend(lit("x-final", "yes"));
            r.respond(3, &block, b"body").await;
            r.send(HEADERS, END_HEADERS, 5, &status("101")).await;
            let mut bad = lit("x-early", "1");
            bad.extend_from_slice(OK);
            r.send(HEADERS, END_HEADERS | END_STREAM, 7, &bad).await;
            // The client resets the two malformed ones with PROTOCOL_ERROR.
            let mut resets = Vec::new();
            while resets.len() < 2 {
                let f = r.next(RST_STREAM).await.unwrap();
                resets.push((f.stream, f.payload));
            }
            resets.sort();
            assert_eq!(resets, [(5, vec![0, 0, 0, 1]), (7, vec![0, 0, 0, 1])]);
        })
        .await;
        let conn = connect(addr).await.unwrap();
        let (a, b, c, d) = tokio::join!(
            ask(&conn, get("/1"), 8),
            ask(&conn, get("/3"), 8),
            ask(&conn, get("/5"), 8),
            ask(&conn, get("/7"), 8)
        );
        assert_eq!(a.unwrap_err().kind, ErrorKind::Io);
        let (h, bufs) = b.unwrap();
        assert_eq!(
            (h.status, h.interim, &bufs.body[..]),
            (200, 1, &b"body"[..])
        );
        assert_eq!(text(&bufs, &h), "HTTP/1.1 200 h2\r\nx-final: yes\r\n\r\n");
        assert_eq!(c.unwrap_err().kind, ErrorKind::Protocol);
        assert_eq!(d.unwrap_err().kind, ErrorKind::Protocol);
        server.await.unwrap();
        // The connection itself survived its streams' errors.
        let pool = Pool::default();
        pool.add(conn.clone());
        assert!(pool.pick(1).is_some());
        assert_eq!(conn.streams(), 0);
    })
    .await;
}

#[tokio::test]
async fn padding_priority_continuation_and_content_length() {
    local(async {
        let (addr, server) = serve_one(&[], move |mut r| async move {
            r.next(HEADERS).await.unwrap();
            r.next(HEADERS).await.unwrap();
            // Stream 1: padded HEADERS with priority fields, its block split over a
            // CONTINUATION, then padded DATA.
            let mut first = vec![3, 0, 0, 0, 0, 16];
            first.extend_from_slice(OK);
            first.extend(lit("x-a", "1"));
            first.extend_from_slice(&[0, 0, 0]);
            r.send(HEADERS, PADDED | PRIORITY, 1, &first).await;
            let mut rest = lit("x-b", "2");
            rest.extend([0x0f, 0x0d, 0x01, b'5']);
            r.send(CONTINUATION, END_HEADERS, 1, &rest).await;
            r.send(
                DATA,
                PADDED | END_STREAM,
                1,
                &[2, b'h', b'e', b'l', b'l', b'o', 0, 0],
            )
            .await;
            // Stream 3: content-length 5 but 3 bytes: malformed.
            let mut block = OK.to_vec();
            block.extend([0x0f, 0x0d, 0x01, b'5']);
            r.respond(3, &block, b"abc").await;
            let f = r.next(RST_STREAM).await.unwrap();
            assert_eq!((f.stream, f.payload), (3, vec![0, 0, 0, 1]));
        })
        .await;
        let conn = connect(addr).await.unwrap();
        let (a, b) = tokio::join!(ask(&conn, get("/1"), 64), ask(&conn, get("/3"), 64));
        let (h, bufs) = a.unwrap();
        assert_eq!(
            text(&bufs, &h),
            "HTTP/1.1 200 h2\r\nx-a: 1\r\nx-b: 2\r\ncontent-length: 5\r\n\r\n"
        );
        assert_eq!((&bufs.body[..], h.body_bytes), (&b"hello"[..], 5));
        // Received: the stream's three frames as sent, frame headers, padding and priority
        // fields included (not the decoded head's length).
        let headers = 6 + OK.len() + lit("x-a", "1").len() + 3;
        let continuation = lit("x-b", "2").len() + 4;
        assert_eq!(h.wire, (9 + headers + 9 + continuation + 9 + 8) as u64);
        assert_eq!(b.unwrap_err().kind, ErrorKind::Protocol);
        server.await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_sends_settings_fails_the_handshake_in_time() {
    local(async {
        let (l, addr) = listener().await;
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut sink = vec![0u8; 1024];
            while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let r = h2::handshake(Stream::Plain(tcp), Duration::from_secs(3)).await;
        assert_eq!(r.err().map(|f| f.kind), Some(ErrorKind::Protocol));
        // The client closed the connection: the server's read loop ends.
        server.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_connection_closed_mid_response_fails_its_streams_with_io() {
    local(async {
        let (addr, server) = serve_one(&[], move |mut r| async move {
            r.next(HEADERS).await.unwrap();
            r.send(HEADERS, END_HEADERS, 1, OK).await;
            r.send(DATA, 0, 1, b"part").await;
        })
        .await;
        let conn = connect(addr).await.unwrap();
        let e = ask(&conn, get("/"), 8).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Io);
        server.await.unwrap();
        let pool = Pool::default();
        pool.add(conn);
        assert!(pool.pick(10).is_none());
    })
    .await;
}

/// Like nginx after `keepalive_requests`: every connection answers its first five streams,
/// then a GOAWAY names the fifth as the last it processes; the streams after it are never
/// answered. Counts what it answered.
async fn goaway_after_five() -> (SocketAddr, Arc<AtomicU64>) {
    serve_counting(|s, count| async move {
        let mut r = Raw::from(s).await;
        let mut n = 0;
        while let Some(f) = r.frame().await {
            match f.kind {
                SETTINGS if f.flags & 1 == 0 => r.send(SETTINGS, 1, 0, &[]).await,
                HEADERS if n < 5 => {
                    n += 1;
                    count.fetch_add(1, Ordering::SeqCst);
                    r.respond(f.stream, OK, b"ok").await;
                    if n == 5 {
                        let mut p = f.stream.to_be_bytes().to_vec();
                        p.extend_from_slice(&[0; 4]);
                        r.send(GOAWAY, 0, 0, &p).await;
                    }
                }
                _ => {}
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_goaway_left_unprocessed_are_sent_again_even_posts() {
    let (addr, answered) = goaway_after_five().await;
    let yaml = "
name: goaway
target:
  http_version: '2'
  max_streams: 4
load:
  model: closed
  start_vus: 6
  think_time: 1ms
  stages:
    - {duration: 1s, vus: 6}
mix:
  operations:
    - {name: post, request: {method: POST, path: /p, body: 'x'}}
";
    let report = run(yaml, addr).await;
    let c = &report.ops[0].1.counts;
    assert_eq!(c.errors.iter().sum::<u64>(), 0, "{c:?}");
    assert!(c.requests > 100, "{c:?}");
    // Four streams in flight on a connection that takes five: most GOAWAYs leave some behind.
    assert!(c.retries > 10, "{c:?}");
    assert_eq!(c.status_class[1], c.requests);
    // Every request was processed once: the readiness probe is the one extra.
    assert_eq!(answered.load(Ordering::SeqCst), c.requests + 1);
}

#[tokio::test]
async fn a_body_answered_before_it_was_read_is_cut_short_and_counted_as_sent() {
    local(async {
        let (addr, server) = serve_one(&[], move |mut r| async move {
            let h = r.next(HEADERS).await.unwrap();
            // Answered at once, the 200 KB body unread (as nginx's `return` does).
            r.respond(h.stream, OK, b"done").await;
            let rst = r.next(RST_STREAM).await.unwrap();
            (rst.stream, rst.payload)
        })
        .await;
        let conn = connect(addr).await.unwrap();
        let mut raw = b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'b', 200_000));
        let mut bufs = trafficgen::executor::http::Buffers::default();
        let mut sent = 0;
        let h = h2::exchange(&conn, &raw, "http", &mut bufs, 8, &mut sent)
            .await
            .unwrap();
        assert_eq!((h.status, &bufs.body[..]), (200, &b"done"[..]));
        // What the default 64 KiB window let out before the answer, not the whole body.
        assert!((65_535..80_000).contains(&sent), "{sent}");
        assert_eq!(server.await.unwrap(), (1, vec![0, 0, 0, 8]));
    })
    .await;
}
