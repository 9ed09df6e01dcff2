//! HTTP/2 with the `h2` crate: a per-worker pool of connections, each carrying up to
//! `target.max_streams` requests at once (the tasks of a worker share them), and one exchange:
//! the request the HTTP/1.1 path serialized is re-read into an `http::Request` (one header
//! logic for both versions: overrides, `traceparent`, fault headers), the response body is
//! streamed with flow-control capacity released as it is read, and its head is written into
//! `Buffers::rbuf` as an HTTP/1.1-style head so checks and captures read it the same way.

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

/// The HTTP/2 form of the serialized HTTP/1.1 request `raw`.
fn request(raw: &[u8], scheme: &str) -> Result<(http::Request<()>, Bytes), Failure> {
    let bad = Failure {
        kind: ErrorKind::InvalidRequest,
        nothing_received: true,
    };
    let mut slots = vec![httparse::EMPTY_HEADER; raw.len() / 3 + 1];
    let mut req = httparse::Request::new(&mut slots);
    let Ok(httparse::Status::Complete(n)) = req.parse(raw) else {
        return Err(bad);
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Err(bad);
    };
    let authority = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value)
        .unwrap_or(b"");
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|_| bad)?;
    let mut b = http::Request::builder().method(method).uri(uri);
    for h in req.headers.iter() {
        let te_other = h.name.eq_ignore_ascii_case("te") && h.value != b"trailers";
        if !(connection_specific(h.name) || te_other) {
            b = b.header(h.name, h.value);
        }
    }
    let r = b.body(()).map_err(|_| bad)?;
    Ok((r, Bytes::copy_from_slice(&raw[n..])))
}

/// Sends the serialized request `raw` on `conn` and reads the response; the caller bounds
/// the time.
pub async fn exchange(
    conn: &Conn,
    raw: &[u8],
    scheme: &str,
    bufs: &mut Buffers,
    keep: usize,
) -> Result<Head, Failure> {
    let (req, body) = request(raw, scheme)?;
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
    bufs.rbuf
        .extend_from_slice(format!("HTTP/1.1 {status} h2\r\n").as_bytes());
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
        first_byte,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http1_form_becomes_pseudo_headers_without_connection_headers() {
        let raw = b"POST /a?b=1 HTTP/1.1\r\nHost: shop.example:8443\r\nConnection: keep-alive\r\nX-T: 1\r\nContent-Length: 2\r\n\r\nhi";
        let (r, body) = request(raw, "https").unwrap();
        assert_eq!(r.method(), "POST");
        assert_eq!(r.uri().to_string(), "https://shop.example:8443/a?b=1");
        assert!(r.headers().get("connection").is_none());
        assert!(r.headers().get("host").is_none());
        assert_eq!(r.headers()["x-t"], "1");
        assert_eq!(&body[..], b"hi");
    }
}
