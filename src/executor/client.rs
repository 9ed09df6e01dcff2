//! One connection's request loop body: build the operation's request, send it on the keep-alive
//! connection (reconnecting with backoff when the target is down), read the response, run the
//! checks, record the outcome. Owned by one connection task (open model) or one VU.

use std::pin::Pin;
use std::time::{Duration, SystemTime};

use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, sleep_until};

use super::Shared;
use super::http::{self, Buffers, Head};
use super::request::{self, Parts, TraceIds, static_method, todo_request, write_request};
use super::worker::Local;
use crate::plan::{CaptureSource, Check, OpKind, RequestTemplate, TodoOp, Vars};
use crate::recorder::{ErrorKind, Outcome, SpanRecord};

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

pub struct Client {
    stream: Option<TcpStream>,
    reused: bool,
    bufs: Buffers,
    wbuf: Vec<u8>,
    path: Vec<u8>,
    body: Vec<u8>,
    has_body: bool,
    hdrs: Vec<u8>,
    vars: Vars,
    timer: Pin<Box<Sleep>>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl Client {
    pub fn new(shared: &Shared) -> Client {
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
            timer: Box::pin(tokio::time::sleep_until(
                Instant::now() + shared.plan.target.request_timeout,
            )),
            backoff: Duration::ZERO,
            retry_at: None,
        }
    }

    pub fn close(&mut self) {
        self.stream = None;
    }

    /// Opens the connection ahead of the first arrival so its connect time is not charged to
    /// the first request; a failure here is not a request and is not counted.
    pub async fn preconnect(&mut self, shared: &Shared) {
        if let Ok(Ok(s)) = tokio::time::timeout(
            shared.plan.target.connect_timeout,
            TcpStream::connect(shared.addr),
        )
        .await
        {
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
            self.reused = false;
        }
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
        match &operation.kind {
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
                self.has_body = !self.body.is_empty();
                let head = self
                    .send(
                        st,
                        op,
                        method,
                        method,
                        true,
                        intended,
                        released,
                        &operation.checks,
                        &[],
                    )
                    .await;
                if *t == TodoOp::Create
                    && let Some(h) = head
                    && (200..300).contains(&h.status)
                    && let Some(id) = request::created_id(self.bufs.body(&h))
                {
                    st.pool.borrow_mut().push(id);
                }
            }
            OpKind::Request(rt) => {
                self.vars.values.clear();
                let json = self.render(st, rt);
                self.send(
                    st,
                    op,
                    &rt.method,
                    static_method(&rt.method),
                    json,
                    intended,
                    released,
                    &operation.checks,
                    &[],
                )
                .await;
            }
            OpKind::Flow(steps) => {
                self.vars.values.clear();
                let mut at = intended;
                let mut rel = released;
                for step in steps {
                    let json = self.render(st, &step.request);
                    let Some(h) = self
                        .send(
                            st,
                            op,
                            &step.request.method,
                            static_method(&step.request.method),
                            json,
                            at,
                            rel,
                            &operation.checks,
                            &step.checks,
                        )
                        .await
                    else {
                        break;
                    };
                    if h.status >= 400 {
                        break;
                    }
                    self.capture(&h, step);
                    at = Instant::now();
                    rel = None;
                }
            }
        }
    }

    /// Renders a generic request's path, headers and body; returns whether to add the JSON
    /// content type.
    fn render(&mut self, st: &Local, rt: &RequestTemplate) -> bool {
        let mut rng = st.rng.borrow_mut();
        self.vars.seq = st.seq.get();
        st.seq.set(self.vars.seq + 1);
        self.path.clear();
        rt.path.render(&self.vars, &mut *rng, &mut self.path);
        self.hdrs.clear();
        let mut has_ct = false;
        for (k, v) in &rt.headers {
            has_ct |= k.eq_ignore_ascii_case("content-type");
            self.hdrs.extend_from_slice(k.as_bytes());
            self.hdrs.extend_from_slice(b": ");
            v.render(&self.vars, &mut *rng, &mut self.hdrs);
            self.hdrs.extend_from_slice(b"\r\n");
        }
        self.body.clear();
        self.has_body = rt.body.is_some();
        if let Some(b) = &rt.body {
            b.render(&self.vars, &mut *rng, &mut self.body);
        }
        !has_ct
    }

    fn capture(&mut self, h: &Head, step: &crate::plan::FlowStep) {
        if step.captures.is_empty() {
            return;
        }
        let body = self.bufs.body(h);
        let json: Option<serde_json::Value> = step
            .captures
            .iter()
            .any(|c| matches!(c.from, CaptureSource::JsonPointer(_)))
            .then(|| serde_json::from_slice(body).ok())
            .flatten();
        for c in &step.captures {
            let v = match &c.from {
                CaptureSource::JsonPointer(p) => {
                    json.as_ref().and_then(|j| j.pointer(p)).map(|x| match x {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                }
                CaptureSource::Header(name) => http::header(&self.bufs.rbuf[..h.head_len], name)
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            };
            if let Some(v) = v {
                self.vars.set(&c.var, &v);
            }
        }
    }

    /// Sends the request in `path`/`hdrs`/`body` and records the outcome.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &mut self,
        st: &Local,
        op: usize,
        method: &str,
        span_method: &'static str,
        json: bool,
        intended: Instant,
        released: Option<Instant>,
        checks: &[Check],
        step_checks: &[Check],
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
                path: &self.path,
                headers: &self.hdrs,
                body,
                json,
                ids,
                fault: fault.as_ref(),
            },
        );
        let fault_kind = fault.as_ref().map(|f| f.kind());
        st.in_flight.set(st.in_flight.get() + 1);
        let result = self.exchange(shared, method == "HEAD").await;
        st.in_flight.set(st.in_flight.get() - 1);
        let done = Instant::now();
        let (head, sent, error) = match result {
            Ok((h, sent)) => {
                let e = match h.status {
                    400..=499 => Some(ErrorKind::Status4xx),
                    500.. => Some(ErrorKind::Status5xx),
                    _ => None,
                };
                (Some(h), sent, e)
            }
            Err((kind, sent)) => (None, sent, Some(kind)),
        };
        let got_answer = head.is_some() || error == Some(ErrorKind::Timeout);
        let rt = done.saturating_duration_since(intended);
        let lag = sent.saturating_duration_since(intended);
        let late =
            released.is_some_and(|r| sent.saturating_duration_since(r) > Duration::from_millis(1));
        let status = head.map(|h| h.status);
        let body_bytes: &[u8] = match &head {
            Some(h) => self.bufs.body(h),
            None => &[],
        };
        let (mut pass, mut fail) = eval_checks(checks, status, body_bytes, rt);
        let (p2, f2) = eval_checks(step_checks, status, body_bytes, rt);
        pass += p2;
        fail += f2;
        let outcome = Outcome {
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
            rec.record_traced(&outcome, ids.sampled, export);
            if pass + fail > 0 {
                rec.checks(op, pass, fail);
            }
        }
        head
    }

    /// Connects when needed and exchanges `wbuf`; returns the head and the actual send time.
    async fn exchange(
        &mut self,
        shared: &Shared,
        head_only: bool,
    ) -> Result<(Head, Instant), (ErrorKind, Instant)> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                if let Some(t) = self.retry_at.take() {
                    sleep_until(t).await;
                }
                let t0 = Instant::now();
                match tokio::time::timeout(
                    shared.plan.target.connect_timeout,
                    TcpStream::connect(shared.addr),
                )
                .await
                {
                    Ok(Ok(s)) => {
                        let _ = s.set_nodelay(true);
                        self.stream = Some(s);
                        self.reused = false;
                        self.backoff = Duration::ZERO;
                    }
                    _ => {
                        self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                        self.retry_at = Some(Instant::now() + self.backoff);
                        return Err((ErrorKind::Connect, t0));
                    }
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            let sent = Instant::now();
            let deadline = sent + shared.plan.target.request_timeout;
            match http::exchange(
                stream,
                &self.wbuf,
                &mut self.bufs,
                deadline,
                &mut self.timer,
                head_only,
            )
            .await
            {
                Ok(h) => {
                    if h.close {
                        self.stream = None;
                    } else {
                        self.reused = true;
                    }
                    return Ok((h, sent));
                }
                Err(f) => {
                    let was_reused = self.reused;
                    self.stream = None;
                    // A kept-alive connection the server closed while idle: nothing was
                    // processed, so send once more on a fresh connection.
                    if f.nothing_received && was_reused && attempt == 0 {
                        continue;
                    }
                    return Err((f.kind, sent));
                }
            }
        }
        Err((ErrorKind::Io, Instant::now()))
    }
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
