//! A flow: its steps run in order on one connection until the first that fails, what their
//! requests add up to (`FlowAcc`), and the one record of the whole flow as a request of its
//! operation (each step is also recorded on its own, by `Client::send`).

use tokio::time::Instant;

use super::Shared;
use super::client::Client;
use super::local::Local;
use super::request::static_method;
use crate::recorder::{ErrorKind, RequestRecord};

/// One flow's outcome so far, from its steps' requests: the flow is recorded once, as one
/// request of its operation, when it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlowAcc {
    pub first_sent: Option<Instant>,
    pub lag_us: u64,
    pub late: bool,
    pub answered: bool,
    pub status: Option<u16>,
    /// The first failure ends the flow; it is the flow's error.
    pub error: Option<ErrorKind>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl FlowAcc {
    pub(super) fn note(&mut self, r: &RequestRecord, sent: Instant) {
        if self.first_sent.is_none() {
            self.first_sent = Some(sent);
            self.lag_us = r.lag_us;
            self.late = r.late;
        }
        self.answered |= r.rt_us.is_some();
        self.status = r.status.or(self.status);
        if self.error.is_none() {
            self.error = r.error;
        }
        self.bytes_sent = self.bytes_sent.saturating_add(r.bytes_sent);
        self.bytes_received = self.bytes_received.saturating_add(r.bytes_received);
    }
}

impl Client {
    /// Runs one arrival of the flow `op`: its steps in order on this connection, until the
    /// first that fails; then records the flow.
    pub(super) async fn run_flow(
        &mut self,
        st: &Local,
        op: usize,
        steps: &[crate::plan::FlowStep],
        intended: Instant,
        released: Option<Instant>,
    ) {
        let shared: &Shared = &st.shared;
        let operation = &shared.plan.mix.operations[op];
        let infos = &shared.requests[op];
        self.vars.values.clear();
        self.flow = FlowAcc::default();
        let mut at = intended;
        let mut rel = released;
        for (step, info) in steps.iter().zip(infos) {
            let json = match self.render(st, &step.request, info) {
                Ok(json) => json,
                Err(kind) => {
                    self.refuse(st, op, info.step.map(|s| s.0), at, kind);
                    break;
                }
            };
            if self
                .send(
                    st,
                    op,
                    info,
                    &step.request.method,
                    static_method(&step.request.method),
                    json,
                    at,
                    rel,
                    &operation.checks,
                    &step.checks,
                )
                .await
                .is_none()
                || self.flow.error.is_some()
            {
                // A transport error, a status >= 400 or a capture that found nothing.
                break;
            }
            at = Instant::now();
            rel = None;
        }
        self.record_flow(st, op, intended, released);
    }

    /// Records a whole flow as one request of its operation: response time = to the end of
    /// its last step from where a single request's would count (its release when a connection
    /// was free, else its intended start: `Arrival::released`), service time from its first
    /// send; the last status, the first error. No trace id (each step has its own, listed there).
    pub(super) fn record_flow(
        &mut self,
        st: &Local,
        op: usize,
        intended: Instant,
        released: Option<Instant>,
    ) {
        let done = Instant::now();
        let origin = released.map_or(intended, |r| r.max(intended));
        let f = std::mem::take(&mut self.flow);
        let at = intended.saturating_duration_since(st.shared.start);
        st.rec.borrow_mut().record(&RequestRecord {
            op,
            status: f.status,
            error: f.error,
            rt_us: f
                .answered
                .then(|| done.saturating_duration_since(origin).as_micros() as u64),
            st_us: f
                .first_sent
                .filter(|_| f.answered)
                .map(|s| done.saturating_duration_since(s).as_micros() as u64),
            lag_us: f.lag_us,
            late: f.late,
            fault: None,
            fault_window: None,
            trace_id: [0; 16],
            at_us: at.as_micros() as u64,
            bytes_sent: f.bytes_sent,
            bytes_received: f.bytes_received,
            connect_us: None,
            tls_us: None,
            ttfb_us: None,
            receive_us: None,
        });
    }
}
