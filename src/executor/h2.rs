//! HTTP/2 with the `h2` crate: a per-worker pool of connections, each carrying up to
//! `target.max_streams` requests at once (the tasks of a worker share them), and one exchange:
//! the request the HTTP/1.1 path serialized is re-read into an `http::Request` (one header
//! logic for both versions: overrides, `traceparent`, fault headers), the response body is
//! streamed with flow-control capacity released as it is read, and its head is written into
//! `Buffers::rbuf` as an HTTP/1.1-style head so checks and captures read it the same way.
//!
//! Per request only what changed since the client's previous request is converted again
//! (`Cache`: the URI and each header line compared with the last ones): the names and values
//! that repeat are shared copies, so a request costs one allocation for its `traceparent`
//! instead of one per header. `traceparent` is sent never-indexed (HPACK, RFC 7541 §6.2.3): a
//! value that is new on every request would otherwise be inserted into the dynamic table of
//! both ends and evict the entries that do repeat (measured in bench/README.md).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;

use super::http::{Buffers, Failure, Head};
use super::tls::Stream;
use crate::recorder::ErrorKind;

/// One HTTP/2 connection of a worker.
pub struct Conn {
    send: h2::client::SendRequest<Bytes>,
    /// Streams in flight on it.
    pub streams: Cell<u32>,
    /// The connection task ended (GOAWAY, error, closed).
    dead: Rc<Cell<bool>>,
}

/// A worker's HTTP/2 connections.
#[derive(Default)]
pub struct Pool {
    conns: RefCell<Vec<Rc<Conn>>>,
    /// A connection is being opened: others wait for it instead of opening their own.
    pub opening: Cell<bool>,
    pub opened: tokio::sync::Notify,
}

impl Pool {
    /// A live connection with a free stream, if any.
    pub fn pick(&self, max_streams: u32) -> Option<Rc<Conn>> {
        let mut conns = self.conns.borrow_mut();
        conns.retain(|c| !c.dead.get());
        conns
            .iter()
            .find(|c| c.streams.get() < max_streams)
            .cloned()
    }

    pub fn add(&self, c: Rc<Conn>) {
        self.conns.borrow_mut().push(c);
    }

    /// Drops a connection that failed a request.
    pub fn forget(&self, c: &Rc<Conn>) {
        c.dead.set(true);
    }
}

/// HTTP/2 handshake over `stream`; the connection is driven by a local task.
pub async fn handshake(stream: Stream) -> Result<Rc<Conn>, Failure> {
    let (send, conn) = h2::client::Builder::new()
        // Windows large enough that a fast server is not throttled by our acknowledgements.
        .initial_window_size(1 << 20)
        .initial_connection_window_size(1 << 24)
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(|e| failure(&e, true))?;
    let dead = Rc::new(Cell::new(false));
    let d = dead.clone();
    tokio::task::spawn_local(async move {
        let _ = conn.await;
        d.set(true);
    });
    Ok(Rc::new(Conn {
        send,
        streams: Cell::new(0),
        dead,
    }))
}

fn failure(e: &h2::Error, nothing_received: bool) -> Failure {
    let kind = if e.is_io() || e.is_go_away() || e.is_reset() {
        ErrorKind::Io
    } else {
        ErrorKind::Protocol
    };
    Failure {
        kind,
        nothing_received,
    }
}

/// Headers that are HTTP/1.1 connection management and must not be sent over HTTP/2
/// (RFC 9113 §8.2.2); `host` becomes `:authority`.
fn connection_specific(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "host",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// Header slots tried on the stack before a heap array sized by the request (most requests
/// have fewer than ten headers: no allocation for the parse).
const STACK_HEADERS: usize = 32;

/// A client's last converted request: its URI and header lines, reused while they repeat.
#[derive(Debug, Default)]
pub struct Cache {
    /// (scheme, authority and path as sent, the URI built from them).
    uri: Option<(Vec<u8>, http::Uri)>,
    /// The same key for the request being converted (reused buffer).
    key: Vec<u8>,
    /// Per position: the line's raw name and value, and what they became.
    headers: Vec<(Vec<u8>, http::HeaderName, http::HeaderValue)>,
}

impl Cache {
    /// The URI of `scheme`, `authority`, `path`: the cached one when they are the same.
    fn uri(&mut self, scheme: &str, authority: &[u8], path: &str) -> Option<http::Uri> {
        self.key.clear();
        for p in [scheme.as_bytes(), authority, path.as_bytes()] {
            self.key.extend_from_slice(p);
            // Not a byte any of them may hold: the three stay apart.
            self.key.push(0);
        }
        if let Some((key, uri)) = &self.uri
            && *key == self.key
        {
            return Some(uri.clone());
        }
        let uri = http::Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(path)
            .build()
            .ok()?;
        self.uri = Some((self.key.clone(), uri.clone()));
        Some(uri)
    }

    /// Header `name: value` at position `i` of the request: shared copies when the line is
    /// the same as at that position last time.
    fn header(
        &mut self,
        i: usize,
        name: &str,
        value: &[u8],
    ) -> Option<(http::HeaderName, http::HeaderValue)> {
        if let Some((raw, n, v)) = self.headers.get(i)
            && v.as_bytes() == value
            && raw.as_slice() == name.as_bytes()
        {
            return Some((n.clone(), v.clone()));
        }
        let n = match self.headers.get(i) {
            Some((raw, n, _)) if raw.as_slice() == name.as_bytes() => n.clone(),
            _ => http::HeaderName::from_bytes(name.as_bytes()).ok()?,
        };
        let mut v = http::HeaderValue::from_bytes(value).ok()?;
        // New on every request: never indexed (see the module doc).
        if n == "traceparent" {
            v.set_sensitive(true);
        }
        let entry = (name.as_bytes().to_vec(), n.clone(), v.clone());
        match self.headers.get_mut(i) {
            Some(slot) => *slot = entry,
            None => self.headers.push(entry),
        }
        Some((n, v))
    }
}

/// The HTTP/2 form of the serialized HTTP/1.1 request `raw`.
fn request(
    raw: &[u8],
    scheme: &str,
    cache: &mut Cache,
) -> Result<(http::Request<()>, Bytes), Failure> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut req = httparse::Request::new(&mut stack);
    match req.parse(raw) {
        Ok(httparse::Status::Complete(n)) => convert(&req, &raw[n..], scheme, cache),
        Err(httparse::Error::TooManyHeaders) => {
            // Each header line takes at least 3 bytes ("a:\n"): this many slots always suffice.
            let mut heap = vec![httparse::EMPTY_HEADER; raw.len() / 3 + 1];
            let mut req = httparse::Request::new(&mut heap);
            match req.parse(raw) {
                Ok(httparse::Status::Complete(n)) => convert(&req, &raw[n..], scheme, cache),
                _ => Err(invalid()),
            }
        }
        _ => Err(invalid()),
    }
}

fn invalid() -> Failure {
    Failure {
        kind: ErrorKind::InvalidRequest,
        nothing_received: true,
    }
}

/// The parsed HTTP/1.1 request `req` (body `body`) as an HTTP/2 request.
fn convert(
    req: &httparse::Request<'_, '_>,
    body: &[u8],
    scheme: &str,
    cache: &mut Cache,
) -> Result<(http::Request<()>, Bytes), Failure> {
    let bad = invalid();
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Err(bad);
    };
    let authority = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value)
        .unwrap_or(b"");
    let uri = cache.uri(scheme, authority, path).ok_or(bad)?;
    // Filled in place rather than through `http::request::Builder`, which moves itself per
    // header; `HeaderMap` sized once.
    let mut r = http::Request::new(());
    *r.method_mut() = http::Method::from_bytes(method.as_bytes()).map_err(|_| bad)?;
    *r.uri_mut() = uri;
    let headers = r.headers_mut();
    headers.reserve(req.headers.len());
    for (i, h) in req.headers.iter().enumerate() {
        let te_other = h.name.eq_ignore_ascii_case("te") && h.value != b"trailers";
        if !(connection_specific(h.name) || te_other) {
            let (name, value) = cache.header(i, h.name, h.value).ok_or(bad)?;
            headers.append(name, value);
        }
    }
    Ok((r, Bytes::copy_from_slice(body)))
}

/// Sends the serialized request `raw` on `conn` and reads the response; the caller bounds
/// the time.
pub async fn exchange(
    conn: &Conn,
    raw: &[u8],
    scheme: &str,
    bufs: &mut Buffers,
    cache: &mut Cache,
    keep: usize,
) -> Result<Head, Failure> {
    let (req, body) = request(raw, scheme, cache)?;
    let send = conn
        .send
        .clone()
        .ready()
        .await
        .map_err(|e| failure(&e, true))?;
    let mut send = send;
    let (resp, mut out) = send
        .send_request(req, body.is_empty())
        .map_err(|e| failure(&e, true))?;
    if !body.is_empty() {
        out.send_data(body, true).map_err(|e| failure(&e, true))?;
    }
    let resp = resp.await.map_err(|e| failure(&e, false))?;
    let first_byte = tokio::time::Instant::now();
    let (parts, mut body) = resp.into_parts();
    bufs.rbuf.clear();
    bufs.body.clear();
    let status = parts.status.as_u16();
    // The status line without a formatter: `StatusCode::as_str` is the three digits.
    bufs.rbuf.extend_from_slice(b"HTTP/1.1 ");
    bufs.rbuf
        .extend_from_slice(parts.status.as_str().as_bytes());
    bufs.rbuf.extend_from_slice(b" h2\r\n");
    for (k, v) in &parts.headers {
        bufs.rbuf.extend_from_slice(k.as_str().as_bytes());
        bufs.rbuf.extend_from_slice(b": ");
        bufs.rbuf.extend_from_slice(v.as_bytes());
        bufs.rbuf.extend_from_slice(b"\r\n");
    }
    bufs.rbuf.extend_from_slice(b"\r\n");
    let mut total = 0u64;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| failure(&e, false))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        total = total.saturating_add(chunk.len() as u64);
        let room = keep.saturating_sub(bufs.body.len());
        bufs.body.extend_from_slice(&chunk[..room.min(chunk.len())]);
    }
    Ok(Head {
        status,
        head_len: bufs.rbuf.len(),
        close: false,
        body_bytes: total,
        interim: 0,
        first_byte: Some(first_byte),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http1_form_becomes_pseudo_headers_without_connection_headers() {
        let raw = b"POST /a?b=1 HTTP/1.1\r\nHost: shop.example:8443\r\nConnection: keep-alive\r\nX-T: 1\r\nContent-Length: 2\r\n\r\nhi";
        let (r, body) = request(raw, "https", &mut Cache::default()).unwrap();
        assert_eq!(r.method(), "POST");
        assert_eq!(r.uri().to_string(), "https://shop.example:8443/a?b=1");
        assert!(r.headers().get("connection").is_none());
        assert!(r.headers().get("host").is_none());
        assert_eq!(r.headers()["x-t"], "1");
        assert_eq!(&body[..], b"hi");
    }

    #[test]
    fn a_repeated_request_reuses_its_lines_and_a_changed_line_is_converted_again() {
        let mut cache = Cache::default();
        let a = b"GET /x HTTP/1.1\r\nHost: h:1\r\nUser-Agent: t\r\ntraceparent: 00-aa-01\r\n\r\n";
        let b = b"GET /y HTTP/1.1\r\nHost: h:1\r\nUser-Agent: u\r\ntraceparent: 00-bb-01\r\n\r\n";
        let (r1, _) = request(a, "http", &mut cache).unwrap();
        let (r2, _) = request(a, "http", &mut cache).unwrap();
        assert_eq!(r1.uri(), r2.uri());
        assert_eq!(r1.headers(), r2.headers());
        // Never indexed: new on every request.
        assert!(r1.headers()["traceparent"].is_sensitive());
        assert!(!r1.headers()["user-agent"].is_sensitive());
        let (r3, _) = request(b, "http", &mut cache).unwrap();
        assert_eq!(r3.uri().to_string(), "http://h:1/y");
        assert_eq!(r3.headers()["user-agent"], "u");
        assert_eq!(r3.headers()["traceparent"], "00-bb-01");
        assert!(r3.headers()["traceparent"].is_sensitive());
        // Another authority with the same path is another URI.
        let c = b"GET /y HTTP/1.1\r\nHost: other:2\r\n\r\n";
        let (r4, _) = request(c, "https", &mut cache).unwrap();
        assert_eq!(r4.uri().to_string(), "https://other:2/y");
        assert_eq!(r4.headers().len(), 0);
    }
}
