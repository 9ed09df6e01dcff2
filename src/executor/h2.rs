//! HTTP/2 (RFC 9113): a per-worker pool of connections, each carrying up to
//! `target.max_streams` requests at once (the tasks of a worker share them), and one exchange.
//! The request the HTTP/1.1 path serialized is read back with `httparse` and HPACK-encoded
//! straight into the connection's output (one header logic for both versions: overrides,
//! `traceparent`, fault headers); the response head arrives as an HTTP/1.1-style head in
//! `Buffers::rbuf`, so checks and captures read it the same way.
//!
//! Hand-written instead of the `h2` crate, which cost 1.09–1.13× h2load's CPU per request
//! against nginx (bench/README.md): its per-request `http::Request`/`HeaderMap`, its stream
//! store behind a lock, and a channel hop per request. Here a request writes its frames into
//! the connection's buffer directly, the connection's task writes all that queued in one
//! write, and responses land in reused per-stream slots (`conn`, `driver`).

#[allow(dead_code)]
pub(super) mod hpack;
#[allow(dead_code)]
mod huffman;

mod conn;
mod driver;
mod frame;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use conn::{CONN_WINDOW, Phase, STREAM_WINDOW, State};

use super::http::{Buffers, Failure, Head, MAX_HEAD, with_header_slots};
use super::tls::Stream;
use crate::recorder::ErrorKind;

/// One HTTP/2 connection of a worker (a shared handle; its driver task holds another).
#[derive(Clone)]
pub struct Conn {
    st: Rc<RefCell<State>>,
}

impl Conn {
    /// Streams in flight on it.
    pub fn streams(&self) -> u32 {
        self.st.borrow().active
    }
}

/// A worker's HTTP/2 connections.
#[derive(Default)]
pub struct Pool {
    conns: RefCell<Vec<Conn>>,
    /// A connection is being opened: others wait for it instead of opening their own.
    pub opening: Cell<bool>,
    pub opened: tokio::sync::Notify,
}

impl Pool {
    /// A live connection with a free stream (under `max_streams` and the server's own limit).
    pub fn pick(&self, max_streams: u32) -> Option<Conn> {
        let mut conns = self.conns.borrow_mut();
        // A closed connection stays alive for the streams still on it, not in the pool.
        conns.retain(|c| c.st.borrow().closed.is_none());
        conns
            .iter()
            .find(|c| c.st.borrow().can_open(max_streams))
            .cloned()
    }

    pub fn add(&self, c: Conn) {
        self.conns.borrow_mut().push(c);
    }
}

fn failure(kind: ErrorKind) -> Failure {
    Failure {
        kind,
        nothing_received: true,
    }
}

/// Starts HTTP/2 over `stream`: the preface and our settings, then the server's SETTINGS
/// within `timeout`. The connection is driven by a local task from then on.
pub async fn handshake(stream: Stream, timeout: Duration) -> Result<Conn, Failure> {
    let mut st = State::new();
    st.out.extend_from_slice(frame::PREFACE);
    frame::settings(
        &mut st.out,
        &[
            (frame::SETTINGS_ENABLE_PUSH, 0),
            (frame::SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW as u32),
            (frame::SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEAD as u32),
        ],
    );
    frame::window_update(&mut st.out, 0, (CONN_WINDOW - frame::DEFAULT_WINDOW) as u32);
    let st = Rc::new(RefCell::new(st));
    tokio::task::spawn_local(driver::Driver::new(st.clone(), stream));
    let ready = poll_fn(|cx| {
        let mut s = st.borrow_mut();
        if s.ready {
            return Poll::Ready(Ok(()));
        }
        if let Some(kind) = s.closed {
            return Poll::Ready(Err(failure(kind)));
        }
        s.ready_waker = Some(cx.waker().clone());
        Poll::Pending
    });
    match tokio::time::timeout(timeout, ready).await {
        Ok(Ok(())) => Ok(Conn { st }),
        Ok(Err(f)) => Err(f),
        Err(_) => {
            // Never answered: the driver ends with the connection closed.
            let mut s = st.borrow_mut();
            s.fail_all(failure(ErrorKind::Protocol));
            s.wake_driver();
            Err(failure(ErrorKind::Protocol))
        }
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

/// Unwritten output beyond which a connection takes no new stream (memory stays bounded when
/// a server stops reading).
const OUT_MAX: usize = 1 << 20;

/// Sends the serialized HTTP/1.1 request `raw` as a stream on `conn` and reads the response;
/// the caller bounds the time. A request dropped before its end resets its stream. `sent`
/// grows by the bytes of the frames queued for it (a body the server answered before reading
/// is not all sent).
pub async fn exchange(
    conn: &Conn,
    raw: &[u8],
    scheme: &str,
    bufs: &mut Buffers,
    keep: usize,
    sent: &mut u64,
) -> Result<Head, Failure> {
    let started = with_header_slots(raw.len(), |slots| {
        let mut req = httparse::Request::new(slots);
        Ok(match req.parse(raw)? {
            httparse::Status::Complete(n) => start(conn, &req, &raw[n..], scheme, keep),
            httparse::Status::Partial => Err(failure(ErrorKind::InvalidRequest)),
        })
    });
    let i = started.unwrap_or_else(|_| Err(failure(ErrorKind::InvalidRequest)))?;
    let held = Held {
        st: &conn.st,
        i,
        sent,
    };
    let (st_ref, i) = (held.st, held.i);
    poll_fn(|cx| {
        let mut st = st_ref.borrow_mut();
        let Some(s) = st.slots.get_mut(i) else {
            return Poll::Ready(Err(failure(ErrorKind::Io)));
        };
        match s.phase {
            Phase::Done => {
                std::mem::swap(&mut bufs.rbuf, &mut s.head);
                std::mem::swap(&mut bufs.body, &mut s.body);
                Poll::Ready(Ok(Head {
                    status: s.status,
                    head_len: bufs.rbuf.len(),
                    close: false,
                    body_bytes: s.total,
                    wire: s.received,
                    interim: s.interim,
                    first_byte: s.first_byte,
                }))
            }
            Phase::Failed(f) => Poll::Ready(Err(f)),
            Phase::Free => Poll::Ready(Err(failure(ErrorKind::Io))),
            Phase::Waiting | Phase::Body => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    })
    .await
}

/// A stream's slot, given back (and the stream reset if still open) when the request ends
/// or is dropped.
struct Held<'a> {
    st: &'a RefCell<State>,
    i: usize,
    sent: &'a mut u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut st = self.st.borrow_mut();
        if let Some(s) = st.slots.get(self.i) {
            *self.sent = self.sent.saturating_add(s.sent);
        }
        st.release(self.i);
    }
}

/// Opens a stream for the parsed request `req` and queues its HEADERS (and DATA) frames.
fn start(
    conn: &Conn,
    req: &httparse::Request<'_, '_>,
    body: &[u8],
    scheme: &str,
    keep: usize,
) -> Result<usize, Failure> {
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Err(failure(ErrorKind::InvalidRequest));
    };
    let authority = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value)
        .unwrap_or(b"");
    let mut guard = conn.st.borrow_mut();
    let st = &mut *guard;
    if st.out.len() - st.written > OUT_MAX {
        // A server that stopped reading: no more requests pile up behind the ones it left
        // unread (theirs time out); the pool opens a fresh connection.
        st.closed.get_or_insert(ErrorKind::Io);
    }
    if let Some(kind) = st.closed {
        return Err(failure(kind));
    }
    let was_idle = st.out.is_empty();
    // The slot first: once the block is encoded it must be sent (it changes the tables).
    let Some(i) = st.open(keep, method == "HEAD") else {
        return Err(failure(ErrorKind::Io));
    };
    let State {
        enc, block, lname, ..
    } = st;
    block.clear();
    enc.begin(block);
    enc.header(b":method", method.as_bytes(), block);
    enc.header(b":scheme", scheme.as_bytes(), block);
    enc.header(b":authority", authority, block);
    enc.header(b":path", path.as_bytes(), block);
    for h in req.headers.iter() {
        let te_other = h.name.eq_ignore_ascii_case("te") && h.value != b"trailers";
        if connection_specific(h.name) || te_other {
            continue;
        }
        // Field names are lower-case in HTTP/2 (RFC 9113 §8.2.1).
        lname.clear();
        lname.extend(h.name.bytes().map(|b| b.to_ascii_lowercase()));
        enc.header(lname, h.value, block);
    }
    let id = st.slots[i].id;
    let State {
        out,
        block,
        peer_max_frame,
        ..
    } = st;
    let before = out.len();
    frame::headers(out, id, block, body.is_empty(), *peer_max_frame);
    st.slots[i].sent = (st.out.len() - before) as u64;
    if !body.is_empty() {
        let s = &mut st.slots[i];
        s.pending.extend_from_slice(body);
        st.push_body(i);
    }
    if was_idle {
        st.wake_driver();
    }
    Ok(i)
}
