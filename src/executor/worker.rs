//! One worker thread: its `current_thread` runtime, its share of the arrivals (open model:
//! a deadline dispatcher feeding a local queue served by connection tasks) or of the virtual
//! users (closed model), and the periodic hand-off of its recorder to the collector.
//! Everything here is single-threaded: `Rc`/`RefCell`/`Cell`, never a lock.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use futures_util::FutureExt as _;

use super::client::{Client, record_panic};
use super::local::{Arrival, Local};
use super::request::Pool;
use super::{Control, Shared, split};
use crate::plan::{LoadModel, ThinkTime};
use crate::recorder::interval::Span;
use crate::recorder::{BEHIND_US, WorkerRecorder};
use crate::scheduler::{self, OpenSchedule, dispatch, steer};

/// Thread entry point.
pub fn run(
    w: usize,
    shared: Arc<Shared>,
    deltas: mpsc::UnboundedSender<WorkerRecorder>,
    spares: std::sync::mpsc::Receiver<WorkerRecorder>,
    control: watch::Receiver<Control>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trafficgen: worker {w}: cannot start a runtime: {e}");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let (nops, keep) = (
        shared.plan.mix.operations.len(),
        shared.plan.output.keep_traces,
    );
    let last = deltas.clone();
    let run = AssertUnwindSafe(|| local.block_on(&rt, main(w, shared, deltas, spares, control)));
    if std::panic::catch_unwind(run).is_err() {
        // The worker's unflushed figures are lost with it; what remains says the run failed.
        let mut rec = WorkerRecorder::new(w, nops, keep);
        rec.task_panic(0);
        rec.finished = true;
        let _ = last.send(rec);
    }
}

/// Runs one arrival with a panic guard: a panic is recorded against the operation and the
/// client is replaced (its connection state is unknown), so the run goes on and fails.
async fn guarded(
    st: &Local,
    client: &mut Client,
    op: usize,
    intended: Instant,
    released: Option<Instant>,
) {
    if panicked(client.run_op(st, op, intended, released)).await {
        record_panic(st, op);
        *client = Client::new(&st.shared, st.next_client_id());
    }
}

/// Polls `fut` to completion; true when it panicked (caught here, not propagated). Not an
/// `async fn`: one would keep `fut` twice in its state (the argument and the awaited copy),
/// and this future is built once per arrival.
fn panicked(fut: impl std::future::Future<Output = ()>) -> impl std::future::Future<Output = bool> {
    AssertUnwindSafe(fut).catch_unwind().map(|r| r.is_err())
}

/// Awaits every task of `set`; a task that panicked outside the per-arrival guard counts as
/// a panic of the first operation.
async fn join_all(st: &Local, set: &mut JoinSet<()>) {
    while let Some(r) = set.join_next().await {
        if r.is_err_and(|e| e.is_panic()) {
            st.rec.borrow_mut().task_panic(0);
        }
    }
}

async fn main(
    w: usize,
    shared: Arc<Shared>,
    deltas: mpsc::UnboundedSender<WorkerRecorder>,
    spares: std::sync::mpsc::Receiver<WorkerRecorder>,
    mut control: watch::Receiver<Control>,
) {
    let plan = &shared.plan;
    let nops = plan.mix.operations.len();
    let keep = plan.output.keep_traces;
    let seed = plan.seed
        ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ ((plan.segment.index as u64) << 48);
    // The pool is the whole run's: a segment of a distributed run holds its share, so the run
    // never keeps (with `mix.steady_state`, never leaves on the target) more than the capacity.
    let seg = plan.segment;
    let seg_cap = split(
        plan.mix.pool_capacity as u64,
        seg.count.max(1) as usize,
        seg.index as usize,
    );
    let pool_cap = split(seg_cap, shared.workers, w).max(1) as usize;
    let st = Rc::new(Local {
        shared: shared.clone(),
        worker: w,
        rec: RefCell::new({
            let mut r = WorkerRecorder::new(w, nops, keep);
            r.span = Span::first(flush_interval(&shared).as_micros() as u64);
            r
        }),
        rng: RefCell::new(SmallRng::seed_from_u64(seed)),
        pick_rng: RefCell::new(SmallRng::seed_from_u64(seed ^ 0x6f70_2d70_6963_6b73)),
        pool: RefCell::new(Pool::new(pool_cap)),
        queue: RefCell::new(VecDeque::new()),
        notify: Notify::new(),
        idle: Cell::new(0),
        done: Cell::new(false),
        in_flight: Cell::new(0),
        vus: Cell::new(0),
        stopping: Cell::new(false),
        seq: Cell::new(0),
        clients: Cell::new(0),
        h2: Default::default(),
        tls_reasons: RefCell::new(Vec::new()),
        busy: RefCell::new(Vec::new()),
    });
    let watcher = {
        let (st, mut control) = (st.clone(), control.clone());
        tokio::task::spawn_local(async move {
            let _ = control.wait_for(|c| *c != Control::Run).await;
            st.stopping.set(true);
        })
    };
    let flusher = tokio::task::spawn_local(flush_loop(st.clone(), deltas.clone(), spares));
    let load_control = control.clone();
    match &shared.plan.load {
        // The open model handles `Abort` itself: it must account for its schedule first.
        LoadModel::Open { .. } => open(&st, load_control).await,
        LoadModel::Closed { .. } => tokio::select! {
            _ = closed(&st, load_control) => {}
            _ = control.wait_for(|c| *c == Control::Abort) => {}
        },
    }
    // Whatever is still queued or in flight now is abandoned (its tasks are being dropped).
    st.abandon_rest();
    flusher.abort();
    watcher.abort();
    if shared.plan.mix.cleanup.is_some() {
        shared.keep_leftover(st.pool.borrow_mut().drain());
    }
    let mut last = std::mem::replace(&mut *st.rec.borrow_mut(), WorkerRecorder::new(w, 0, 0));
    last.in_flight = 0;
    last.vus = 0;
    last.finished = true;
    let _ = deltas.send(last);
}

async fn flush_loop(
    st: Rc<Local>,
    deltas: mpsc::UnboundedSender<WorkerRecorder>,
    spares: std::sync::mpsc::Receiver<WorkerRecorder>,
) {
    let interval = flush_interval(&st.shared);
    let mut n = 1u32;
    loop {
        sleep_until(st.shared.start + interval * n).await;
        n += 1;
        let plan = &st.shared.plan;
        let spare = spares.try_recv().unwrap_or_else(|_| {
            WorkerRecorder::new(
                st.worker,
                plan.mix.operations.len(),
                plan.output.keep_traces,
            )
        });
        // Exactly interval `n - 1`'s requests, however late this runs (`recorder::interval`).
        let mut delta = st.rec.borrow_mut().rotate(spare);
        delta.in_flight = st.in_flight.get();
        delta.vus = st.vus.get();
        delta.finished = false;
        if deltas.send(delta).is_err() {
            return;
        }
    }
}

/// The flush interval (the run loop ticks on the same one).
fn flush_interval(shared: &Shared) -> Duration {
    shared.plan.output.interval.max(Duration::from_millis(10))
}

async fn open(st: &Rc<Local>, mut control: watch::Receiver<Control>) {
    let shared = &st.shared;
    let plan = &shared.plan;
    let LoadModel::Open {
        start_rate,
        stages,
        arrivals,
        max_in_flight,
        max_queue,
    } = &plan.load
    else {
        return;
    };
    let (w, nw) = (st.worker, shared.workers);
    let conns = split(
        (*max_in_flight).min(plan.target.max_connections).max(1) as u64,
        nw,
        w,
    )
    .max(1);
    let queue_cap = split(*max_queue as u64, nw, w);
    let mut set = JoinSet::new();
    st.idle.set(conns);
    for _ in 0..conns {
        set.spawn_local(open_conn(st.clone()));
    }
    // The plan's arrivals, rebuilt from "now" when the control API changes the load.
    let open_plan = steer::OpenPlan {
        start_rate: *start_rate,
        stages,
        arrivals: *arrivals,
        seed: plan.seed,
        segment: plan.segment,
        worker: w,
        workers: nw,
    };
    let mut schedule = steer::open_arrivals(open_plan, &steer::LoadOverride::PLAN, Duration::ZERO);
    // The end of the load (a duration beyond the clock's range: a century, never reached).
    let end = shared
        .start
        .checked_add(plan.load.duration())
        .or_else(|| {
            shared
                .start
                .checked_add(Duration::from_secs(86_400 * 365 * 100))
        })
        .unwrap_or(shared.start);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let relay = async {
        let _ = control.wait_for(|c| *c != Control::Run).await;
        let _ = stop_tx.send(true);
    };
    let release = |_k: u64, intended: Instant, bulk: bool| {
        let op = st.pick_op();
        let now = Instant::now();
        let mut rec = st.rec.borrow_mut();
        rec.planned(op);
        let late = now.saturating_duration_since(intended).as_micros() as u64 > BEHIND_US;
        let mut q = st.queue.borrow_mut();
        let idle = st.idle.get();
        if q.len() as u64 >= queue_cap + idle {
            // Dropped while releasing in bulk: the connections are "busy" because this thread
            // gives them no time, not because the target is slow: the generator's lateness.
            if late || bulk {
                rec.behind(op);
            }
            rec.dropped(op);
            return true;
        }
        if late {
            rec.behind(op);
        }
        // A connection free for it now: timed from when it is picked up (`Arrival::released`).
        let free = (q.len() as u64) < idle;
        let released = if free { now.max(intended) } else { intended };
        q.push_back(Arrival {
            op,
            intended,
            released,
            free,
        });
        st.notify.notify_one();
        !free
    };
    // Arrivals of `s` already due at `until` but not released (a dispatcher behind) are
    // planned and abandoned. They never got an operation: they are shared among the
    // operations by weight.
    let abandon_due = |s: &mut OpenSchedule, until: Instant| {
        dispatch::due_unreleased(s, shared.start, until, |count, waited| {
            let mut rec = st.rec.borrow_mut();
            let waited = waited.as_micros() as u64;
            for (op, n) in st.shared.split_by_weight(count).into_iter().enumerate() {
                rec.unreleased(op, n, waited);
            }
        });
    };
    tokio::select! {
        _ = steer::dispatch(
            &mut schedule,
            |o: &steer::LoadOverride, from| steer::open_arrivals(open_plan, o, from),
            abandon_due,
            shared.start,
            end,
            release,
            &mut stop_rx,
            shared.steering.clone(),
        ) => {}
        _ = relay => {}
    }
    // Stopped early, or still behind at the end of the load: what was due and not released is
    // abandoned; the ones released are still sent (the drain). After a normal end nothing is
    // left.
    abandon_due(&mut schedule, Instant::now());
    st.done.set(true);
    st.notify.notify_waiters();
    tokio::select! {
        biased;
        _ = control.wait_for(|c| *c == Control::Abort) => {}
        _ = join_all(st, &mut set) => {}
    }
}

async fn open_conn(st: Rc<Local>) {
    let slot = st.slot();
    let mut client = Client::new(&st.shared, st.next_client_id());
    client.preconnect(&st).await;
    loop {
        let next = loop {
            if let Some(a) = st.queue.borrow_mut().pop_front() {
                break Some(a);
            }
            if st.done.get() {
                break None;
            }
            st.notify.notified().await;
        };
        let Some(a) = next else { return };
        st.idle.set(st.idle.get() - 1);
        let origin = if a.free {
            Instant::now().max(a.intended)
        } else {
            a.released
        };
        st.begin(slot, a.op, origin);
        guarded(&st, &mut client, a.op, a.intended, Some(origin)).await;
        st.end(slot, a.op);
        st.idle.set(st.idle.get() + 1);
    }
}

async fn closed(st: &Rc<Local>, control: watch::Receiver<Control>) {
    let shared = &st.shared;
    let plan = &shared.plan;
    let LoadModel::Closed {
        start_vus, stages, ..
    } = &plan.load
    else {
        return;
    };
    let mut set = JoinSet::new();
    let planned = scheduler::max_vus(*start_vus, stages);
    for v in 0..planned {
        if scheduler::owns(v as u64, plan.segment, st.worker, shared.workers) {
            set.spawn_local(vu(st.clone(), v, control.clone()));
        }
    }
    join_growing(st, &mut set, planned, &control).await;
}

/// `join_all` of the VU tasks that also starts more of them when the control API asks for
/// more VUs than the plan ever has (only while someone can steer; otherwise `join_all`).
async fn join_growing(
    st: &Rc<Local>,
    set: &mut JoinSet<()>,
    mut slots: u32,
    control: &watch::Receiver<Control>,
) {
    let mut steering = st.shared.steering.clone();
    if !steering.is_live() {
        return join_all(st, set).await;
    }
    let (plan, shared) = (&st.shared.plan, &st.shared);
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                None => return,
                Some(r) => if r.is_err_and(|e| e.is_panic()) {
                    st.rec.borrow_mut().task_panic(0);
                },
            },
            _ = steering.changed() => {
                let want = steer::vu_slots(slots, plan.segment, &steering.current());
                for v in slots..want {
                    if scheduler::owns(v as u64, plan.segment, st.worker, shared.workers) {
                        set.spawn_local(vu(st.clone(), v, control.clone()));
                    }
                }
                slots = want;
            }
        }
    }
}

async fn vu(st: Rc<Local>, v: u32, mut control: watch::Receiver<Control>) {
    let shared = st.shared.clone();
    let LoadModel::Closed {
        start_vus,
        stages,
        think_time,
        ..
    } = &shared.plan.load
    else {
        return;
    };
    let mut client = Client::new(&shared, st.next_client_id());
    let slot = st.slot();
    let mut active = false;
    // The control API's VU count and pause (the plan's stages when nobody steers).
    let mut steering = shared.steering.clone();
    // The end of the VU's previous request when it follows at once (no think time).
    let mut follows: Option<Instant> = None;
    // Time 0 of the load is `shared.start`, after a lead for the threads to start (in a
    // distributed run, the announced start). A VU that sent before it ran the load longer than
    // planned: a 5 s run went on for 5.1 s and its rate read 2 % high.
    while Instant::now() < shared.start && !st.stopping.get() {
        tokio::select! {
            _ = sleep_until(shared.start) => {}
            r = control.changed() => match r {
                Ok(()) => st.note(&control),
                Err(_) => break,
            },
        }
    }
    loop {
        if st.stopping.get() {
            break;
        }
        let now = follows.take().unwrap_or_else(Instant::now);
        let t = now.saturating_duration_since(shared.start).as_secs_f64();
        let o = steering.current();
        if !steer::vu_active(*start_vus, stages, shared.plan.segment, &o, v, t) {
            if active {
                active = false;
                st.vus.set(st.vus.get() - 1);
                client.close();
            }
            let Some(next) = steer::next_vu_change(*start_vus, stages, &o, v, t) else {
                break;
            };
            tokio::select! {
                _ = sleep_until(shared.start + Duration::from_secs_f64(next)) => {}
                _ = control.changed() => st.note(&control),
                _ = steering.changed() => {}
            }
            continue;
        }
        if !active {
            active = true;
            st.vus.set(st.vus.get() + 1);
        }
        let intended = match &shared.limiter {
            Some(l) => {
                tokio::select! {
                    _ = l.until_ready() => {}
                    _ = control.changed() => { st.note(&control); continue }
                }
                Instant::now()
            }
            // One clock read serves both the VU schedule check and the request's start.
            None => now,
        };
        let op = st.pick_op();
        st.begin(slot, op, intended);
        guarded(&st, &mut client, op, intended, None).await;
        // Taken whatever follows, so a later arrival that sends nothing never finds it.
        let finished = client.done.take();
        st.end(slot, op);
        let think = match *think_time {
            ThinkTime::None => Duration::ZERO,
            ThinkTime::Fixed(d) => d,
            ThinkTime::Uniform(a, b) => {
                let (lo, hi) = (a.as_secs_f64(), b.as_secs_f64().max(a.as_secs_f64()));
                Duration::from_secs_f64(if hi > lo {
                    st.rng.borrow_mut().random_range(lo..hi)
                } else {
                    lo
                })
            }
        };
        if think.is_zero() {
            // Only what the arrival itself did lies between that instant and this one.
            follows = finished;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(think) => {}
                _ = control.changed() => st.note(&control),
            }
        }
    }
    if active {
        st.vus.set(st.vus.get() - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_arrival_is_caught_and_reported() {
        assert!(panicked(async { panic!("a bug") }).await);
        assert!(!panicked(async {}).await);
    }
}
