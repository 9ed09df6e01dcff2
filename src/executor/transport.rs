//! The transport side of a `Client`: opening connections (TCP to one of the target's
//! addresses, then TLS; HTTP/2 connections go to the worker's pool), the exchange of one
//! request under `request_timeout` with the one automatic resend an idempotent request may
//! get, and the HTTP/2 exchange over a pooled connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep_until};

use super::client::Client;
use super::http::{self, Failure, Head};
use super::local::Local;
use super::tls::{self, Stream};
use super::{Proto, connect, h2};
use crate::recorder::ErrorKind;

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Sends of one request over HTTP/2 at most: the first and two the server did not process.
const H2_SENDS: u64 = 3;

/// Methods a client may resend on its own (RFC 9110 §9.2.2).
pub(super) fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
    )
}

/// The deadline of a request sent at `sent`; a timeout too large to add is no timeout at all.
pub(super) fn deadline_after(sent: Instant, timeout: Duration) -> Instant {
    sent.checked_add(timeout)
        .or_else(|| sent.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(sent)
}

/// A client's one request timer, and the waker it is registered with.
pub(super) struct Timer {
    sleep: Pin<Box<Sleep>>,
    waker: Option<Waker>,
}

impl Timer {
    pub(super) fn new(at: Instant) -> Timer {
        Timer {
            sleep: Box::pin(sleep_until(at)),
            waker: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// Races `fut` against `deadline` with the connection's one lazily reset timer: the timer
    /// is only re-armed when it fires before this request's deadline, so a request costs no
    /// timer-wheel insertion. Nor is it polled again while it is registered with this task's
    /// waker and has not fired: it wakes the task when it does (polling it per response was
    /// 2 % of the closed loop's user time). A future of its own rather than an `async fn`,
    /// which would hold `fut` twice (the argument and the pinned copy it polls).
    pub(super) struct Deadline<'a, F> {
        #[pin]
        fut: F,
        deadline: Instant,
        timer: &'a mut Timer,
    }
}

pub(super) fn with_deadline<F: Future<Output = Result<Head, Failure>>>(
    fut: F,
    deadline: Instant,
    timer: &mut Timer,
) -> Deadline<'_, F> {
    Deadline {
        fut,
        deadline,
        timer,
    }
}

impl<F: Future<Output = Result<Head, Failure>>> Future for Deadline<'_, F> {
    type Output = Result<Head, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(r) = this.fut.poll(cx) {
            return Poll::Ready(r);
        }
        let t = &mut **this.timer;
        if t.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) && !t.sleep.is_elapsed() {
            return Poll::Pending;
        }
        loop {
            if t.sleep.as_mut().poll(cx).is_pending() {
                t.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            t.waker = None;
            if Instant::now() >= *this.deadline {
                return Poll::Ready(Err(Failure {
                    kind: ErrorKind::Timeout,
                    nothing_received: false,
                }));
            }
            // Fired for an earlier request's deadline: re-armed, and polled again to register.
            t.sleep.as_mut().reset(*this.deadline);
        }
    }
}

impl Client {
    /// Opens a connection (TCP, then TLS for `https`), both within `connect_timeout`.
    pub(super) async fn open(&mut self, st: &Local) -> Result<Stream, ErrorKind> {
        let shared = &*st.shared;
        let t = shared.plan.target.connect_timeout;
        let start = Instant::now();
        let Some(tcp) = connect::connect(&shared.addrs, self.addr_at, t).await else {
            // The next attempt starts at the next address.
            self.addr_at = self.addr_at.wrapping_add(1);
            return Err(ErrorKind::Connect);
        };
        let connected = Instant::now();
        let connect_us = connected.saturating_duration_since(start).as_micros() as u64;
        let stream = match &shared.tls {
            None => {
                self.opened = Some((connect_us, None));
                Stream::Plain(tcp)
            }
            Some(target) => {
                let left = t.saturating_sub(start.elapsed());
                match tokio::time::timeout(left, tls::handshake(target, tcp)).await {
                    Ok(Ok(s)) => {
                        let tls_us = connected.elapsed().as_micros() as u64;
                        self.opened = Some((connect_us, Some(tls_us)));
                        s
                    }
                    Ok(Err(reason)) => {
                        st.tls_failed(reason);
                        return Err(ErrorKind::Tls);
                    }
                    Err(_) => {
                        st.tls_failed("no handshake within connect_timeout".into());
                        return Err(ErrorKind::Tls);
                    }
                }
            }
        };
        Ok(stream)
    }

    /// Opens this client's HTTP/1.1 connection, or (HTTP/2) a pooled one of the worker.
    /// Connects (`connect_now`) in a future of its own on the heap: opening a connection
    /// (TCP, TLS, the HTTP/2 handshake) is a state of over a kilobyte that every request's
    /// future would otherwise carry and copy when it is created, for a step that happens
    /// once per connection (measured in bench/README.md, "Request futures").
    pub(super) fn connect<'a>(
        &'a mut self,
        st: &'a Local,
    ) -> Pin<Box<impl Future<Output = Result<(), ErrorKind>> + 'a>> {
        Box::pin(self.connect_now(st))
    }

    async fn connect_now(&mut self, st: &Local) -> Result<(), ErrorKind> {
        let stream = self.open(st).await?;
        let shared = &*st.shared;
        if shared.proto == Proto::H2 || (shared.proto == Proto::Auto && stream.is_h2()) {
            self.h2 = true;
            let t = shared.plan.target.connect_timeout;
            let conn = h2::handshake(stream, t).await.map_err(|f| f.kind)?;
            st.h2.add(conn);
            return Ok(());
        }
        self.stream = Some(stream);
        self.reused = false;
        Ok(())
    }

    /// Opens the connection ahead of the first arrival so its connect time is not charged to
    /// the first request; a failure here is not a request and is not counted.
    pub async fn preconnect(&mut self, st: &Local) {
        if self.h2 && st.h2.pick(st.shared.plan.target.max_streams).is_some() {
            return;
        }
        let _ = self.connect(st).await;
        // Not a request's time: no request waited for it.
        self.opened = None;
    }

    /// After a connection attempt: the backoff starts over on success; on failure it doubles
    /// (within 10 ms and 1 s) and the next attempt waits for it.
    fn after_connect(&mut self, ok: bool) {
        if ok {
            self.backoff = Duration::ZERO;
            return;
        }
        self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
        self.retry_at = Instant::now().checked_add(self.backoff);
    }

    /// A pooled HTTP/2 connection with a free stream, or a new one; the error comes with the
    /// time the failed attempt started.
    async fn h2_conn(&mut self, st: &Local) -> Result<h2::Conn, (ErrorKind, Instant)> {
        let max = st.shared.plan.target.max_streams;
        loop {
            if let Some(c) = st.h2.pick(max) {
                return Ok(c);
            }
            if st.h2.opening.get() {
                // One connection opens at a time per worker; its streams may serve us.
                st.h2.opened.notified().await;
                continue;
            }
            if let Some(t) = self.retry_at.take() {
                sleep_until(t).await;
            }
            let t0 = Instant::now();
            st.h2.opening.set(true);
            let opened = self.connect(st).await;
            st.h2.opening.set(false);
            st.h2.opened.notify_waiters();
            let picked = opened.and_then(|()| st.h2.pick(max).ok_or(ErrorKind::Io));
            self.after_connect(picked.is_ok());
            return picked.map_err(|kind| (kind, t0));
        }
    }

    /// One exchange over HTTP/2. A stream the server says it never processed (above the last
    /// stream of its GOAWAY, or refused) is sent again on another stream whatever its method:
    /// RFC 9113 §8.7 makes that safe. nginx, for one, ends every connection with a GOAWAY
    /// after `keepalive_requests` (1 000) streams, with the streams beyond it in flight.
    /// Each resend is counted as a retry.
    pub(super) async fn exchange_h2(
        &mut self,
        st: &Local,
        op: usize,
        keep: usize,
    ) -> Result<(Head, Instant, u64), (ErrorKind, Instant, u64)> {
        let shared = &*st.shared;
        let scheme = if shared.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let mut writes = 0u64;
        self.h2_sent = 0;
        loop {
            let conn = self
                .h2_conn(st)
                .await
                .map_err(|(kind, t0)| (kind, t0, writes))?;
            let sent = Instant::now();
            let deadline = deadline_after(sent, shared.plan.target.request_timeout);
            writes += 1;
            let r = with_deadline(
                h2::exchange(
                    &conn,
                    &self.wbuf,
                    scheme,
                    &mut self.bufs,
                    keep,
                    &mut self.h2_sent,
                ),
                deadline,
                &mut self.timer,
            )
            .await;
            // A failed stream leaves its connection in the pool: the connection's own end
            // (GOAWAY, an error, the socket closing) is what takes it out.
            match r {
                Ok(h) => return Ok((h, sent, writes)),
                Err(f) if f.nothing_received && f.kind == ErrorKind::Io && writes < H2_SENDS => {
                    st.rec.borrow_mut().retry(op);
                }
                Err(f) => return Err((f.kind, sent, writes)),
            }
        }
    }

    /// Connects when needed and exchanges `wbuf`; returns the head, the actual send time and
    /// how many times the request was written.
    #[allow(clippy::type_complexity)]
    pub(super) async fn exchange(
        &mut self,
        st: &Local,
        op: usize,
        method: &str,
        keep: usize,
    ) -> Result<(Head, Instant, u64), (ErrorKind, Instant, u64)> {
        let shared = &*st.shared;
        // HTTP/2 on the heap too: its state (the stream, the response future) would make every
        // HTTP/1.1 request's future a kilobyte larger, and an allocation costs HTTP/2 less than
        // copying that kilobyte each time its request's future is built.
        if self.h2 {
            return Box::pin(self.exchange_h2(st, op, keep)).await;
        }
        let head_only = method == "HEAD";
        let mut writes = 0u64;
        loop {
            if self.stream.is_none() {
                if let Some(t) = self.retry_at.take() {
                    sleep_until(t).await;
                }
                let t0 = Instant::now();
                let opened = self.connect(st).await;
                self.after_connect(opened.is_ok());
                if let Err(kind) = opened {
                    return Err((kind, t0, writes));
                }
                if self.h2 {
                    // `auto`: the server chose HTTP/2 for this connection.
                    return Box::pin(self.exchange_h2(st, op, keep)).await;
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                return Err((ErrorKind::Io, Instant::now(), writes));
            };
            let sent = Instant::now();
            let deadline = deadline_after(sent, shared.plan.target.request_timeout);
            writes += 1;
            let r = with_deadline(
                http::exchange(stream, &self.wbuf, &mut self.bufs, head_only, keep),
                deadline,
                &mut self.timer,
            )
            .await;
            match r {
                Ok(h) => {
                    if h.close {
                        self.stream = None;
                    } else {
                        self.reused = true;
                    }
                    return Ok((h, sent, writes));
                }
                Err(f) => {
                    let was_reused = self.reused;
                    self.stream = None;
                    // A kept-alive connection the server closed while idle: nothing was
                    // processed as far as we can tell, but only an idempotent request may be
                    // sent again without the user asking.
                    if f.nothing_received && was_reused && writes == 1 && idempotent(method) {
                        st.rec.borrow_mut().retry(op);
                        continue;
                    }
                    return Err((f.kind, sent, writes));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response after `after`, or none ever.
    async fn answer(after: Option<Duration>) -> Result<Head, Failure> {
        let Some(d) = after else {
            return std::future::pending().await;
        };
        tokio::time::sleep(d).await;
        Ok(Head {
            status: 200,
            head_len: 0,
            close: false,
            body_bytes: 0,
            wire: 0,
            interim: 0,
            first_byte: None,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn one_lazily_reset_timer_bounds_each_request_by_its_own_deadline() {
        let t = Duration::from_millis(100);
        let mut timer = Timer::new(Instant::now() + t);
        let s1 = Instant::now();
        assert!(
            with_deadline(answer(Some(Duration::ZERO)), s1 + t, &mut timer)
                .await
                .is_ok()
        );
        // The timer, still armed for the first deadline, fires during the second request: it
        // is re-armed for the second's deadline and the answer still counts.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let s2 = Instant::now();
        let late = Some(Duration::from_millis(80));
        assert!(
            with_deadline(answer(late), s2 + t, &mut timer)
                .await
                .is_ok()
        );
        // The third never gets an answer: it ends at its own deadline, not at a stale one.
        let s3 = Instant::now();
        let r = with_deadline(answer(None), s3 + t, &mut timer).await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Timeout);
        let took = Instant::now() - s3;
        assert!(
            took >= t && took <= t + Duration::from_millis(1),
            "{took:?}"
        );
    }
}
