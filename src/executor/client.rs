//! One connection's request loop body: build the operation's request, send it on the keep-alive
//! connection (reconnecting with backoff when the target is down), read the response, run the
//! checks, record the result. Owned by one connection task (open model) or one VU.
//!
//! `target.request_timeout` bounds writing the request, waiting and reading the response. A
//! request on a reused connection that the server closed before answering is sent again once
//! on a fresh connection only when its method is idempotent (RFC 9110 §9.2.2), and counted as a
//! retry; otherwise it is an `io` error.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::http::{self, Buffers, Head};
use super::local::{InFlight, Local};
use super::request::{self, Parts, TraceIds, static_method, todo_request, write_request};
use super::tls::Stream;
use super::{Proto, RequestInfo, Shared};
use crate::plan::{Check, OpKind, TodoOp, Vars};
use crate::recorder::{ErrorKind, RequestRecord, SpanRecord};

pub struct Client {
    pub(super) stream: Option<Stream>,
    pub(super) reused: bool,
    pub(super) bufs: Buffers,
    pub(super) wbuf: Vec<u8>,
    pub(super) path: Vec<u8>,
    pub(super) body: Vec<u8>,
    pub(super) has_body: bool,
    pub(super) hdrs: Vec<u8>,
    pub(super) vars: Vars,
    pub(super) timer: super::transport::Timer,
    pub(super) backoff: Duration,
    pub(super) retry_at: Option<Instant>,
    /// Index of the target address this client tries first.
    pub(super) addr_at: usize,
    /// Requests go over the worker's HTTP/2 connections (`Local::h2`).
    pub(super) h2: bool,
    /// Connect and TLS handshake times (µs) of the connection opened since the last record:
    /// charged to the request that waited for it.
    pub(super) opened: Option<(u64, Option<u64>)>,
    /// The path of the redirect the last response asked for (when it is to be followed).
    pub(super) redirect: Option<Vec<u8>>,
    /// `target.cookies`: (name, value) pairs, and their `Cookie` line.
    pub(super) jar: Vec<(String, String)>,
    pub(super) cookie: Vec<u8>,
    /// `path` is a same-origin absolute path the target gave (a captured `Location`): the
    /// base URL's prefix is not prepended. Taken by the next `send`.
    pub(super) path_absolute: bool,
    /// The flow being run: what its steps add up to.
    pub(super) flow: super::flow::FlowAcc,
    /// HTTP/2: the bytes of the frames the last exchange queued (HPACK-coded heads, the body
    /// as far as it was sent), for `bytes_sent`.
    pub(super) h2_sent: u64,
    /// When the last exchange ended: a VU that starts its next request at once takes it as
    /// the start instead of reading the clock again.
    pub(super) done: Option<Instant>,
}

impl Client {
    pub fn new(shared: &Shared, id: usize) -> Client {
        Client {
            stream: None,
            reused: false,
            bufs: Buffers::default(),
            wbuf: Vec::with_capacity(1024),
            path: Vec::with_capacity(256),
            body: Vec::with_capacity(256),
            has_body: false,
            hdrs: Vec::with_capacity(256),
            vars: Vars::default(),
            timer: super::transport::Timer::new(super::transport::deadline_after(
                Instant::now(),
                shared.plan.target.request_timeout,
            )),
            backoff: Duration::ZERO,
            retry_at: None,
            addr_at: id % shared.addrs.len().max(1),
            h2: shared.proto == Proto::H2,
            opened: None,
            redirect: None,
            jar: Vec::new(),
            cookie: Vec::new(),
            path_absolute: false,
            flow: Default::default(),
            h2_sent: 0,
            done: None,
        }
    }

    pub fn close(&mut self) {
        self.stream = None;
    }

    /// Runs one arrival of operation `op`.
    pub async fn run_op(
        &mut self,
        st: &Local,
        op: usize,
        intended: Instant,
        released: Option<Instant>,
    ) {
        // A reference, not an Arc clone: the refcount is shared by all worker threads.
        let shared: &Shared = &st.shared;
        let operation = &shared.plan.mix.operations[op];
        let infos = &shared.requests[op];
        // Open model: each arrival is a new user with an empty jar; a VU keeps its own.
        if !self.jar.is_empty() && matches!(shared.plan.load, crate::plan::LoadModel::Open { .. }) {
            self.jar.clear();
            self.cookie.clear();
        }
        // One `send` await for the single-request kinds: each await of it in a branch of its
        // own would give this future another copy of that state (rustc does not overlap
        // them), and the whole future is built, and copied, once per arrival. A flow runs in
        // a future of its own on the heap (one allocation per flow).
        let (method, span_method, json, todo) = match &operation.kind {
            OpKind::Flow(steps) => {
                Box::pin(self.run_flow(st, op, steps, intended, released)).await;
                return;
            }
            OpKind::Todo(t) => {
                let id = match request::needs_id(*t) {
                    None => None,
                    Some(remove) => {
                        let mut rng = st.rng.borrow_mut();
                        let mut pool = st.pool.borrow_mut();
                        let id = if remove {
                            pool.take(&mut *rng)
                        } else {
                            pool.pick(&mut *rng)
                        };
                        match id {
                            Some(id) => Some(id),
                            None => {
                                st.rec.borrow_mut().empty_pool(op);
                                return;
                            }
                        }
                    }
                };
                let Some(method) = todo_request(
                    *t,
                    id,
                    &mut *st.rng.borrow_mut(),
                    &mut self.path,
                    &mut self.body,
                ) else {
                    return;
                };
                self.hdrs.clear();
                self.render_dynamic(st, &infos[0]);
                self.has_body = !self.body.is_empty();
                (method, method, true, Some(*t))
            }
            OpKind::Request(rt) => {
                self.vars.values.clear();
                let json = match self.render(st, rt, &infos[0]) {
                    Ok(json) => json,
                    Err(kind) => {
                        self.refuse(st, op, None, intended, kind);
                        return;
                    }
                };
                (rt.method.as_str(), static_method(&rt.method), json, None)
            }
        };
        let head = self
            .send(
                st,
                op,
                &infos[0],
                method,
                span_method,
                json,
                intended,
                released,
                &operation.checks,
                &[],
            )
            .await;
        if todo == Some(TodoOp::Create)
            && let Some(h) = head
            && (200..300).contains(&h.status)
            && let Some(id) = request::created_id(&self.bufs.body)
        {
            let evicted = st.pool.borrow_mut().push(id);
            if let (Some(old), Some(evict)) = (evicted, shared.plan.mix.evict_op()) {
                Box::pin(self.evict(st, evict, old)).await;
            }
        }
    }

    /// `mix.steady_state`: deletes the id a full pool just evicted, on this connection, right
    /// after the create that evicted it; recorded as operation `evict` from now.
    async fn evict(&mut self, st: &Local, evict: usize, id: u64) {
        let shared: &Shared = &st.shared;
        let Some(method) = todo_request(
            TodoOp::Delete,
            Some(id),
            &mut *st.rng.borrow_mut(),
            &mut self.path,
            &mut self.body,
        ) else {
            return;
        };
        let info = &shared.requests[evict][0];
        self.hdrs.clear();
        self.render_dynamic(st, info);
        self.has_body = false;
        let checks = &shared.plan.mix.operations[evict].checks;
        self.send(
            st,
            evict,
            info,
            method,
            method,
            true,
            Instant::now(),
            None,
            checks,
            &[],
        )
        .await;
    }

    /// Sends the request in `path`/`hdrs`/`body`, following up to `info.follow` same-origin
    /// redirects (each hop a request of its own; the checks judge the last response), and
    /// records the results.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send(
        &mut self,
        st: &Local,
        op: usize,
        info: &RequestInfo,
        method: &str,
        span_method: &'static str,
        json: bool,
        intended: Instant,
        released: Option<Instant>,
        checks: &[Check],
        step_checks: &[Check],
    ) -> Option<Head> {
        let (mut method, mut span_method, mut json) = (method, span_method, json);
        let absolute = std::mem::take(&mut self.path_absolute);
        let (mut at, mut rel, mut prefix) = (intended, released, !absolute);
        let mut hops = 0;
        loop {
            let follow = hops < info.follow;
            let head = self
                .send_one(
                    st,
                    op,
                    info,
                    method,
                    span_method,
                    json,
                    at,
                    rel,
                    checks,
                    step_checks,
                    prefix,
                    follow,
                )
                .await;
            let Some(next) = self.redirect.take() else {
                return head;
            };
            hops += 1;
            // 301/302/303 turn a POST (or any non-GET) into a GET without body; 307/308 keep it.
            if head.is_some_and(|h| matches!(h.status, 301..=303)) && method != "HEAD" {
                (method, span_method, json) = ("GET", "GET", false);
                self.has_body = false;
            }
            self.path.clear();
            self.path.extend_from_slice(&next);
            prefix = false;
            at = Instant::now();
            rel = None;
        }
    }

    /// Sends one request and records it; when `follow` and the response is a redirect to
    /// follow, its target is left in `self.redirect` and the checks are not run on it.
    #[allow(clippy::too_many_arguments)]
    async fn send_one(
        &mut self,
        st: &Local,
        op: usize,
        info: &RequestInfo,
        method: &str,
        span_method: &'static str,
        json: bool,
        intended: Instant,
        released: Option<Instant>,
        checks: &[Check],
        step_checks: &[Check],
        prefix: bool,
        follow: bool,
    ) -> Option<Head> {
        let shared = &*st.shared;
        let at = intended.saturating_duration_since(shared.start);
        let (ids, fault) = {
            let mut rng = st.rng.borrow_mut();
            let ids = TraceIds::random(&mut *rng, shared.sample_ratio);
            let fault = if shared.faults_empty {
                None
            } else {
                shared.faults.pick(op, at, &mut *rng)
            };
            (ids, fault)
        };
        let body = self.has_body.then_some(&self.body[..]);
        write_request(
            &mut self.wbuf,
            &shared.common,
            &Parts {
                method,
                fixed: &info.headers.fixed,
                path: &self.path,
                headers: &self.hdrs,
                cookie: &self.cookie,
                prefix,
                body,
                json,
                ids,
                fault: fault.as_ref(),
            },
        );
        let fault_kind = fault.as_ref().map(|f| f.kind());
        let keep = if info.keep_body {
            usize::try_from(shared.plan.target.max_body).unwrap_or(usize::MAX)
        } else {
            0
        };
        let result = {
            let _in_flight = InFlight::new(&st.in_flight);
            self.exchange(st, op, method, keep).await
        };
        let done = Instant::now();
        self.done = Some(done);
        let opened = self.opened.take();
        let (head, sent, attempts, mut error) = match result {
            Ok((h, sent, n)) => {
                let e = match h.status {
                    // An expected status (`expect_status`, a status check) is not an error.
                    s if shared
                        .plan
                        .mix
                        .operations
                        .get(op)
                        .is_some_and(|o| o.expects(step_checks, s)) =>
                    {
                        None
                    }
                    400..=499 => Some(ErrorKind::Status4xx),
                    500.. => Some(ErrorKind::Status5xx),
                    // Below 400 and not among the statuses the operation expects.
                    _ => Some(ErrorKind::UnexpectedStatus),
                };
                (Some(h), sent, n, e)
            }
            Err((kind, sent, n)) => (None, sent, n, Some(kind)),
        };
        let got_answer = head.is_some() || error == Some(ErrorKind::Timeout);
        // From the pick-up when the connection was free at the release, else from the intended
        // start (`Arrival::released`): the generator's own lag is schedule lag, not latency.
        let rt = done.saturating_duration_since(released.map_or(intended, |r| r.max(intended)));
        let lag = sent.saturating_duration_since(intended);
        let late =
            released.is_some_and(|r| sent.saturating_duration_since(r) > Duration::from_millis(1));
        let status = head.map(|h| h.status);
        if shared.plan.target.cookies
            && let Some(h) = &head
        {
            self.store_cookies(h);
        }
        let body_bytes: &[u8] = match &head {
            Some(_) => &self.bufs.body,
            None => &[],
        };
        let redirect = match &head {
            Some(h) if follow && matches!(h.status, 301..=303 | 307 | 308) => {
                self.location(shared, h)
            }
            _ => None,
        };
        let (mut pass, mut fail) = (0, 0);
        if redirect.is_none() {
            (pass, fail) = eval_checks(checks, status, body_bytes, rt);
            let (p2, f2) = eval_checks(step_checks, status, body_bytes, rt);
            pass += p2;
            fail += f2;
        }
        // A flow step's captures, from the response its checks judge.
        if let (Some((_, n)), Some(h), None, None) = (info.step, &head, &redirect, error)
            && let OpKind::Flow(steps) = &shared.plan.mix.operations[op].kind
            && let Some(step) = steps.get(n)
            && !step.captures.is_empty()
            && !self.capture(h, &step.captures)
        {
            error = Some(ErrorKind::CaptureMissing);
        }
        self.redirect = redirect;
        // The whole response in the read that ended the exchange: its first byte came then.
        let first_byte = head.map(|h| h.first_byte.unwrap_or(done));
        let record = RequestRecord {
            op,
            status,
            error,
            rt_us: got_answer.then_some(rt.as_micros() as u64),
            st_us: got_answer.then(|| done.saturating_duration_since(sent).as_micros() as u64),
            lag_us: lag.as_micros() as u64,
            late,
            fault: fault_kind,
            fault_window: fault.as_ref().map(|f| f.window),
            trace_id: ids.trace_id,
            at_us: at.as_micros() as u64,
            bytes_sent: if self.h2 {
                self.h2_sent
            } else {
                (self.wbuf.len() as u64).saturating_mul(attempts)
            },
            bytes_received: head.map_or(0, |h| h.wire),
            connect_us: opened.map(|o| o.0),
            tls_us: opened.and_then(|o| o.1),
            ttfb_us: first_byte.map(|f| f.saturating_duration_since(sent).as_micros() as u64),
            receive_us: first_byte.map(|f| done.saturating_duration_since(f).as_micros() as u64),
        };
        // The recorder decides whose client span is exported (the sampled share and every id
        // it will show) and shows an id only when this accepted its span.
        let export = || {
            let Some(tx) = &shared.spans else {
                return false;
            };
            let duration = done.saturating_duration_since(sent);
            tx.try_send(SpanRecord {
                trace_id: ids.trace_id,
                span_id: ids.span_id,
                op: shared.names[op].clone(),
                method: span_method,
                url: format!(
                    "{}{}",
                    shared.common.origin,
                    String::from_utf8_lossy(&self.path)
                ),
                status,
                error,
                start: SystemTime::now() - duration,
                duration,
                fault: fault_kind,
            })
            .is_ok()
        };
        {
            let mut rec = st.rec.borrow_mut();
            match info.step {
                Some((step, _)) => {
                    self.flow.note(&record, sent);
                    rec.record_step(step, &record, ids.sampled, export);
                }
                None => rec.record_traced(&record, ids.sampled, export),
            }
            if pass + fail > 0 {
                rec.checks(op, pass, fail);
            }
        }
        head
    }
}

/// Records a panic caught while running one arrival of `op` (the run fails on it).
pub fn record_panic(st: &Local, op: usize) {
    st.rec
        .borrow_mut()
        .record(&RequestRecord::unsent(op, ErrorKind::Panic, 0));
}

/// (passed, failed) of `checks` for one response (`status` None = no response: all fail).
pub fn eval_checks(checks: &[Check], status: Option<u16>, body: &[u8], rt: Duration) -> (u64, u64) {
    let mut pass = 0;
    let mut fail = 0;
    for c in checks {
        let ok = match (c, status) {
            (_, None) => false,
            (Check::Status(ranges), Some(s)) => {
                ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&s))
            }
            (Check::BodyContains(needle), Some(_)) => http::find(body, needle.as_bytes()).is_some(),
            (Check::LatencyBelow(max), Some(_)) => rt <= *max,
        };
        if ok {
            pass += 1;
        } else {
            fail += 1;
        }
    }
    (pass, fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_count_each_assertion() {
        let checks = [
            Check::Status(vec![(200, 299)]),
            Check::BodyContains("ok".into()),
            Check::LatencyBelow(Duration::from_millis(5)),
        ];
        assert_eq!(
            eval_checks(&checks, Some(201), b"it is ok", Duration::from_millis(1)),
            (3, 0)
        );
        assert_eq!(
            eval_checks(&checks, Some(500), b"nope", Duration::from_millis(9)),
            (0, 3)
        );
        assert_eq!(eval_checks(&checks, None, b"", Duration::ZERO), (0, 3));
    }
}
