//! The connection's I/O wrapper: it records when bytes move (the watchdog in `server` reads
//! that to enforce the header-read and idle timeouts), and it replaces hyper's automatic
//! parse-error answers (400, 414, 431 with an empty body) with the API's JSON error shape.
//!
//! Why a wrapper rather than a hook: hyper 1.x writes those answers itself from a private
//! `Server::on_error` and offers no callback. Its canned head is recognisable exactly (a 400, 414
//! or 431 head with `content-length: 0`, written alone in one buffer, never by this app, whose
//! error answers always carry a JSON body), so the wrapper swaps it for the same head with a
//! JSON body. The alternative, parsing every request head in front of hyper with httparse,
//! would parse each head twice and still need hyper's body framing; recognising the canned
//! buffer costs one 10-byte prefix comparison per write on the hot path.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// `u64::MAX` in `head_started`: no request head is being read.
const NONE: u64 = u64::MAX;

/// What the watchdog needs to know of one connection; shared by the I/O wrapper (bytes moved),
/// the service (a request is being handled) and the watchdog.
pub(crate) struct Activity {
    origin: Instant,
    /// Milliseconds since `origin` of the last byte read or written, or of the last response.
    last: AtomicU64,
    /// Milliseconds since `origin` at which the first byte of the current head arrived.
    head_started: AtomicU64,
    /// Requests inside the service.
    busy: AtomicUsize,
    /// Woken when the deadline's basis changes (a head starts, a request starts or ends), so
    /// the watchdog never sleeps on a stale deadline.
    pub changed: tokio::sync::Notify,
}

impl Activity {
    pub fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            busy: AtomicUsize::new(0),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin
            .checked_add(std::time::Duration::from_millis(ms))
            .unwrap_or(self.origin)
    }

    fn read_some(&self) {
        let now = self.now_ms();
        self.last.store(now, Ordering::Relaxed);
        if self.busy.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    fn wrote_some(&self) {
        self.last.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A request entered the service: its head is complete.
    pub fn request_started(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
        self.changed.notify_one();
    }

    /// The service answered; the idle clock starts again.
    pub fn request_finished(&self) {
        self.last.store(self.now_ms(), Ordering::Relaxed);
        self.busy.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }

    /// When the connection is to be closed if nothing changes: `head_timeout` after the first
    /// byte of an unfinished head, else `idle_timeout` after the last activity; `None` while a
    /// request is being handled (the body-read bound and the handler's own time apply then).
    pub fn deadline(
        &self,
        head_timeout: std::time::Duration,
        idle_timeout: std::time::Duration,
    ) -> Option<(Instant, Expiry)> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head != NONE {
            return Some((self.at(head).checked_add(head_timeout)?, Expiry::Head));
        }
        let idle = self
            .at(self.last.load(Ordering::Relaxed))
            .checked_add(idle_timeout)?;
        Some((idle, Expiry::Idle))
    }
}

/// Which timeout a deadline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// A request head started and did not finish.
    Head,
    /// Nothing was asked.
    Idle,
}

/// The answer to a head that did not finish in time (RFC 9110 allows a 408 before closing).
pub(crate) fn head_timeout_answer() -> Vec<u8> {
    let body = serde_json::json!({
        "error": "request_timeout",
        "message": "the request head did not arrive within the header read timeout",
    })
    .to_string();
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// hyper's automatic answers to a request head it could not parse, and what the API says
/// instead: (status line prefix, error code, message).
const CANNED: [(&[u8], &str, &str); 3] = [
    (
        b"HTTP/1.1 400 ",
        "bad_request",
        "the request line or a header could not be parsed (method, target, version, header syntax, Content-Length or Transfer-Encoding)",
    ),
    (
        b"HTTP/1.1 431 ",
        "headers_too_large",
        "the request head has too many or too large header fields",
    ),
    (
        b"HTTP/1.1 414 ",
        "uri_too_long",
        "the request target is too long",
    ),
];

/// Called with (status, error code) when a canned answer was replaced.
pub(crate) type OnRejection = Arc<dyn Fn(u16, &'static str) + Send + Sync>;

pub(crate) struct Io<T> {
    inner: T,
    activity: Arc<Activity>,
    on_rejection: OnRejection,
    /// Bytes of a replacement answer still to be written to `inner`.
    pending: Vec<u8>,
    written: usize,
}

impl<T> Io<T> {
    /// The wrapped stream (to answer a timed-out head after hyper let go of it).
    pub fn into_inner(self) -> T {
        self.inner
    }

    pub fn new(inner: T, activity: Arc<Activity>, on_rejection: OnRejection) -> Io<T> {
        Io {
            inner,
            activity,
            on_rejection,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The JSON answer for hyper's canned head `buf`, or `None` when `buf` is not one.
fn replacement(buf: &[u8]) -> Option<(Vec<u8>, u16, &'static str)> {
    let (prefix, code, message) = CANNED.iter().find(|(p, _, _)| buf.starts_with(p))?;
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(&buf[..buf.len() - 2]).ok()?;
    let mut lines: Vec<&str> = head.split("\r\n").filter(|l| !l.is_empty()).collect();
    let before = lines.len();
    lines.retain(|l| !l.eq_ignore_ascii_case("content-length: 0"));
    if lines.len() + 1 != before {
        return None;
    }
    let status: u16 = std::str::from_utf8(&prefix[9..12]).ok()?.parse().ok()?;
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut out = lines.join("\r\n");
    out.push_str("\r\ncontent-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n", body.len()));
    if !lines
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with("connection:"))
    {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some((out.into_bytes(), status, code))
}

impl<T: AsyncWrite + Unpin> Io<T> {
    /// Writes what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.pending.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
            self.activity.wrote_some();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Io<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Io<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        // hyper flushes each answer before it parses the next head (`pipeline_flush` is off),
        // so a canned head starts a write of its own (a pipelined test checks it).
        if buf.starts_with(b"HTTP/1.1 4")
            && let Some((answer, status, code)) = replacement(buf)
        {
            (this.on_rejection)(status, code);
            this.pending = answer;
            this.written = 0;
            // The canned head counts as written; the replacement goes out from `pending` (now,
            // or on the flush hyper does next).
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        let n = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if n > 0 {
            this.activity.wrote_some();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    // Not vectored (the default, stated here because `replacement` relies on it): hyper then
    // writes each head in one flat buffer.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_head_idle_and_busy() {
        let (head, idle) = (Duration::from_secs(2), Duration::from_secs(10));
        let a = Activity::new();
        let t0 = Instant::now();
        assert_eq!(a.deadline(head, idle), Some((t0 + idle, Expiry::Idle)));
        tokio::time::advance(Duration::from_secs(1)).await;
        a.read_some();
        let head_at = t0 + Duration::from_secs(1) + head;
        assert_eq!(a.deadline(head, idle), Some((head_at, Expiry::Head)));
        // More bytes of the same head do not move its deadline.
        tokio::time::advance(Duration::from_secs(1)).await;
        a.read_some();
        assert_eq!(a.deadline(head, idle), Some((head_at, Expiry::Head)));
        a.request_started();
        assert_eq!(a.deadline(head, idle), None, "no timeout while handled");
        tokio::time::advance(Duration::from_secs(30)).await;
        a.request_finished();
        let done = t0 + Duration::from_secs(32);
        assert_eq!(a.deadline(head, idle), Some((done + idle, Expiry::Idle)));
    }

    #[test]
    fn canned_heads_become_json() {
        let canned = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 09:00:00 GMT\r\n\r\n";
        let (out, status, code) = replacement(canned).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!((status, code), (431, "headers_too_large"));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("date: Tue"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "headers_too_large");
        // The app's own answers are never touched.
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
