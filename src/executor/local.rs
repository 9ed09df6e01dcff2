//! The state one worker thread's tasks share (`Local`): its recorder, random generator, id
//! pool, arrival queue and gauges. Its own module so the worker (which creates it) and the
//! client (which reads it per request) both depend on it and not on each other.
//! Single-threaded: `Rc`/`RefCell`/`Cell`, never a lock.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;

use rand::Rng;
use rand::rngs::SmallRng;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::request::Pool;
use super::{Control, Shared};
use crate::recorder::WorkerRecorder;

/// A released arrival waiting for a connection.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub op: usize,
    pub intended: Instant,
    /// Where its response time counts from: the release when a connection was free for it
    /// then (the dispatcher's own lag is not the target's latency), the intended start when it
    /// had to wait for a connection (that wait is the target's doing and stays in).
    pub released: Instant,
}

/// The worker's state, shared by its tasks.
pub struct Local {
    pub shared: Arc<Shared>,
    pub worker: usize,
    pub rec: RefCell<WorkerRecorder>,
    pub rng: RefCell<SmallRng>,
    /// The operation picks alone: they happen at release while the other draws (templates,
    /// trace ids) happen at send, so one shared stream would interleave them by timing and
    /// `--seed` would not replay the run.
    pub pick_rng: RefCell<SmallRng>,
    pub pool: RefCell<Pool>,
    pub queue: RefCell<VecDeque<Arrival>>,
    pub notify: Notify,
    /// Connection tasks not busy with an arrival (also while they are still connecting): the
    /// arrivals that can be waiting in the queue without anyone being late.
    pub idle: Cell<u64>,
    pub done: Cell<bool>,
    pub in_flight: Cell<u64>,
    pub vus: Cell<u64>,
    /// Set once the app asks to stop: read per request instead of the watch channel, whose
    /// `borrow` takes a lock shared by all workers.
    pub stopping: Cell<bool>,
    /// `{{seq}}` of templates: bumped per rendered request, per worker.
    pub seq: Cell<u64>,
    /// Clients created so far (spreads their first target address).
    pub clients: Cell<usize>,
    /// The worker's HTTP/2 connections, shared by its tasks.
    pub h2: super::h2::Pool,
    /// TLS failure reasons already printed by this worker (each is printed once).
    pub tls_reasons: RefCell<Vec<String>>,
    /// One slot per connection task (open) or VU (closed): the arrival it is handling now,
    /// as (operation, response-time origin), so a hard stop can count what was in flight.
    pub busy: RefCell<Vec<Option<(usize, Instant)>>>,
}

impl Local {
    /// After a wake-up by the control channel (rare path): take its state now, whichever task
    /// the runtime polls first.
    pub fn note(&self, control: &watch::Receiver<Control>) {
        if *control.borrow() != Control::Run {
            self.stopping.set(true);
        }
    }

    /// Prints a TLS handshake failure the first time this worker sees its reason.
    pub fn tls_failed(&self, reason: String) {
        let mut seen = self.tls_reasons.borrow_mut();
        if !seen.contains(&reason) && seen.len() < 16 {
            eprintln!("trafficgen: TLS handshake with the target failed: {reason}");
            seen.push(reason);
        }
    }

    /// A new busy slot (for a connection task or a VU).
    pub fn slot(&self) -> usize {
        let mut b = self.busy.borrow_mut();
        b.push(None);
        b.len() - 1
    }

    /// Slot `i` starts handling an arrival of `op` whose response time counts from `origin`.
    pub fn begin(&self, i: usize, op: usize, origin: Instant) {
        self.rec.borrow_mut().planned_if_closed(self.closed(), op);
        if let Some(s) = self.busy.borrow_mut().get_mut(i) {
            *s = Some((op, origin));
        }
    }

    /// Slot `i`'s arrival was handled to its end.
    pub fn end(&self, i: usize, op: usize) {
        self.rec.borrow_mut().completed(op);
        if let Some(s) = self.busy.borrow_mut().get_mut(i) {
            *s = None;
        }
    }

    fn closed(&self) -> bool {
        matches!(self.shared.plan.load, crate::plan::LoadModel::Closed { .. })
    }

    /// A hard stop (the drain bound passed, a second signal): every arrival still queued or
    /// in flight is abandoned, counted with the time it had waited. The tasks handling them
    /// are being dropped, so their slots are read here, once.
    pub fn abandon_rest(&self) {
        let now = Instant::now();
        let mut rec = self.rec.borrow_mut();
        for a in self.queue.borrow_mut().drain(..) {
            rec.abandoned(
                a.op,
                now.saturating_duration_since(a.released).as_micros() as u64,
            );
        }
        for (op, origin) in self.busy.borrow_mut().iter_mut().filter_map(Option::take) {
            rec.abandoned(op, now.saturating_duration_since(origin).as_micros() as u64);
        }
    }

    pub fn next_client_id(&self) -> usize {
        let n = self.clients.get();
        self.clients.set(n.wrapping_add(1));
        n.wrapping_mul(self.shared.workers)
            .wrapping_add(self.worker)
    }

    pub fn pick_op(&self) -> usize {
        let total = self.shared.total_weight().max(1);
        let draw = self.pick_rng.borrow_mut().random_range(0..total);
        self.shared.pick(draw)
    }
}

/// Counts a request in flight for as long as it lives (also when its task unwinds).
pub(super) struct InFlight<'a>(&'a Cell<u64>);

impl<'a> InFlight<'a> {
    pub(super) fn new(c: &'a Cell<u64>) -> Self {
        c.set(c.get() + 1);
        InFlight(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}
