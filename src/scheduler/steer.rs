//! Steering: run-time changes of the planned load asked through the control API (next to the
//! live dashboard): a new open-model rate, a new closed-model VU count, pause and resume.
//!
//! The run loop holds the sender of one `watch` channel; every worker holds a `Steering` and
//! looks at it only when it wakes up anyway (the open loop's dispatcher on a change, a virtual
//! user between requests), never per request on the open model's hot path. Without a
//! dashboard the channel has no sender and nothing here changes what the plan says.
//!
//! A change applies from its offset (`at`) on: the open loop rebuilds its arrival schedule
//! from there at the new rate, arrivals before it are not replayed. So arrivals planned under
//! a changed rate are released through the same `release` as planned ones (and counted as
//! planned, then completed or dropped), and a pause plans none.
//!
//! The values are this process's: in a distributed run each segment has its own dashboard.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::{OpenSchedule, dispatch, rate_at, vus_at};
use crate::plan::{Arrivals, RateStage, Segment, VuStage};

/// The load as the control API left it. `PLAN` (the default) changes nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadOverride {
    /// Bumped at every change (reseeds Poisson arrivals of a new rate).
    pub version: u64,
    /// Offset from the start of the load at which this state took effect.
    pub at: Duration,
    /// No arrivals (open) and no active VUs (closed) until resumed.
    pub paused: bool,
    /// Open model: this process's arrivals per second from `at` on; `None` = the plan's stages.
    pub rate: Option<f64>,
    /// Closed model: this process's virtual users from `at` on; `None` = the plan's stages.
    pub vus: Option<u32>,
}

impl LoadOverride {
    pub const PLAN: LoadOverride = LoadOverride {
        version: 0,
        at: Duration::ZERO,
        paused: false,
        rate: None,
        vus: None,
    };
}

impl Default for LoadOverride {
    fn default() -> Self {
        LoadOverride::PLAN
    }
}

/// A worker's end of the steering channel (cheap to clone; one per VU task).
#[derive(Debug, Clone, Default)]
pub struct Steering {
    rx: Option<watch::Receiver<LoadOverride>>,
    /// The sender went away (end of run): `changed` never resolves again.
    closed: bool,
}

impl Steering {
    /// No control: the plan alone decides.
    pub fn none() -> Steering {
        Steering::default()
    }

    /// A steering channel: the run loop keeps the sender.
    pub fn channel() -> (watch::Sender<LoadOverride>, Steering) {
        let (tx, rx) = watch::channel(LoadOverride::PLAN);
        (
            tx,
            Steering {
                rx: Some(rx),
                closed: false,
            },
        )
    }

    /// Whether anyone can change the load (a control API is listening).
    pub fn is_live(&self) -> bool {
        self.rx.is_some() && !self.closed
    }

    pub fn current(&self) -> LoadOverride {
        self.rx
            .as_ref()
            .map_or(LoadOverride::PLAN, |rx| *rx.borrow())
    }

    /// Resolves at the next change; never when there is no control (or no more).
    pub async fn changed(&mut self) {
        if !self.closed
            && let Some(rx) = &mut self.rx
        {
            if rx.changed().await.is_ok() {
                return;
            }
            self.closed = true;
        }
        std::future::pending::<()>().await
    }
}

/// The planned rate (this process's share) at `t` seconds under `o`; 0 after `end` seconds.
pub fn rate_now(
    start_rate: f64,
    stages: &[RateStage],
    share: f64,
    o: &LoadOverride,
    t: f64,
) -> f64 {
    let end: f64 = stages.iter().map(|s| s.duration.as_secs_f64()).sum();
    if t >= end {
        return 0.0;
    }
    if o.paused {
        return 0.0;
    }
    match o.rate {
        Some(r) => r,
        None => rate_at(start_rate, stages, t) / share.max(1.0),
    }
}

/// Whether VU `v` (numbered over the whole distributed run) is active at `t` under `o`. An
/// override counts this process's VUs: its rank here is `v / segments`.
pub fn vu_active(
    start_vus: u32,
    stages: &[VuStage],
    seg: Segment,
    o: &LoadOverride,
    v: u32,
    t: f64,
) -> bool {
    let end: f64 = stages.iter().map(|s| s.duration.as_secs_f64()).sum();
    if t >= end || o.paused {
        return false;
    }
    match o.vus {
        Some(n) => v / seg.count.max(1) < n,
        None => vus_at(start_vus, stages, t) > v,
    }
}

/// When VU `v` should look again (seconds), or None when the load is over. Under an override
/// nothing changes before the plan's end but another change (the VU also waits for that).
pub fn next_vu_change(
    start_vus: u32,
    stages: &[VuStage],
    o: &LoadOverride,
    v: u32,
    t: f64,
) -> Option<f64> {
    let end: f64 = stages.iter().map(|s| s.duration.as_secs_f64()).sum();
    if o.paused || o.vus.is_some() {
        return (t < end).then_some(end);
    }
    super::next_vu_change(start_vus, stages, v, t)
}

/// The VU tasks a worker needs for `o` (numbers `0..slots` over the whole run): the plan's
/// most, or more when an override asks for more.
pub fn vu_slots(plan_max: u32, seg: Segment, o: &LoadOverride) -> u32 {
    let want = o.vus.map_or(0, |n| n.saturating_mul(seg.count.max(1)));
    plan_max.max(want)
}

/// What the open loop needs to rebuild its schedule.
#[derive(Debug, Clone, Copy)]
pub struct OpenPlan<'a> {
    pub start_rate: f64,
    pub stages: &'a [RateStage],
    pub arrivals: Arrivals,
    pub seed: u64,
    pub segment: Segment,
    pub worker: usize,
    pub workers: usize,
}

/// One worker's arrivals from offset `from` on under `o`: none while paused; at a steady
/// `o.rate` until the plan's end; else the plan's own schedule (from 0 it is exactly the
/// schedule without control).
pub fn open_arrivals(p: OpenPlan<'_>, o: &LoadOverride, from: Duration) -> OpenSchedule {
    let end: Duration = p.stages.iter().map(|s| s.duration).sum();
    let (worker, workers) = (p.worker, p.workers);
    if o.paused || from >= end {
        return OpenSchedule::new(0.0, &[], p.arrivals, p.seed);
    }
    if let Some(rate) = o.rate {
        let stage = [RateStage {
            duration: end - from,
            target: rate,
        }];
        // The rate is this process's: its arrivals are split over its workers only.
        let seed = p.seed ^ o.version.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        return OpenSchedule::new(rate, &stage, p.arrivals, seed)
            .owned_by(Segment::WHOLE, worker, workers)
            .shifted(from);
    }
    // Back to the plan: its arrivals from `from` on (the prefix is skipped by count for
    // constant arrivals, walked for Poisson ones: paid only at a resume).
    let mut s = OpenSchedule::new(p.start_rate, p.stages, p.arrivals, p.seed)
        .owned_by(p.segment, worker, workers);
    if let Some(before) = from.checked_sub(Duration::from_nanos(1)) {
        s.skip_due(before);
    }
    s
}

/// `dispatch::run` that follows `steering`: at each change `schedule` is replaced by
/// `rebuild(state, from)` from the change's offset (after `abandon_due` took what the old one
/// had due before the change and did not release). `end` is the end of the load. With no control it is `dispatch::run` of
/// `schedule`. What is left of the current schedule stays in `schedule` (for the accounting
/// of a stop). Returns how many arrivals were released.
#[allow(clippy::too_many_arguments)]
pub async fn dispatch<R, A, F>(
    schedule: &mut OpenSchedule,
    mut rebuild: R,
    mut abandon_due: A,
    start: Instant,
    end: Instant,
    mut release: F,
    stop: &mut watch::Receiver<bool>,
    mut steering: Steering,
) -> u64
where
    R: FnMut(&LoadOverride, Duration) -> OpenSchedule,
    A: FnMut(&mut OpenSchedule, Instant),
    F: FnMut(u64, Instant, bool) -> bool,
{
    let released = std::cell::Cell::new(0u64);
    // The intended time of the latest release: a worker sees a change a little after it was
    // made (its thread may wait for a core), and the old schedule's arrivals released
    // meanwhile stand; the new schedule starts after them, so no stretch is planned twice.
    let last: std::cell::Cell<Option<Instant>> = std::cell::Cell::new(None);
    let mut count = |k: u64, at: Instant, bulk: bool| {
        released.set(released.get() + 1);
        last.set(Some(at));
        release(k, at, bulk)
    };
    loop {
        let live = steering.is_live();
        tokio::select! {
            biased;
            _ = dispatch::run(schedule, start, end, &mut count, stop) => {
                if *stop.borrow() || !live {
                    break;
                }
                // The schedule ran out (a pause, or the plan's end): wait for a change.
                tokio::select! {
                    biased;
                    r = stop.changed() => if r.is_err() || *stop.borrow() { break },
                    _ = steering.changed() => {}
                    _ = sleep_until(end) => break,
                }
            }
            _ = steering.changed(), if live => {}
        }
        let state = steering.current();
        // What the old schedule had due before the change and did not release (a dispatcher
        // behind) was planned under it: abandoned, not silently replaced.
        if let Some(at) = start.checked_add(state.at) {
            abandon_due(schedule, at);
        }
        *schedule = rebuild(&state, state.at);
        if let Some(floor) = last
            .get()
            .map(|l| l.saturating_duration_since(start))
            .filter(|&l| l >= state.at)
        {
            schedule.skip_due(floor);
        }
    }
    released.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(stages: &[RateStage], worker: usize, workers: usize) -> OpenPlan<'_> {
        OpenPlan {
            start_rate: stages[0].target,
            stages,
            arrivals: Arrivals::Constant,
            seed: 7,
            segment: Segment::WHOLE,
            worker,
            workers,
        }
    }

    const ST: [RateStage; 1] = [RateStage {
        duration: Duration::from_secs(10),
        target: 10.0,
    }];

    #[test]
    fn a_new_rate_plans_its_arrivals_from_the_change_to_the_end() {
        let o = LoadOverride {
            version: 1,
            at: Duration::from_secs(4),
            rate: Some(50.0),
            ..LoadOverride::PLAN
        };
        let offs: Vec<_> = open_arrivals(plan(&ST, 0, 1), &o, o.at).collect();
        // 6 s left at 50/s.
        assert_eq!(offs.len(), 300);
        assert_eq!(offs[0].1, Duration::from_secs(4));
        assert!(offs.iter().all(|&(_, off)| off < Duration::from_secs(10)));
        // Two workers share them exactly.
        let a = open_arrivals(plan(&ST, 0, 2), &o, o.at).count();
        let b = open_arrivals(plan(&ST, 1, 2), &o, o.at).count();
        assert_eq!(a + b, 300);
    }

    #[test]
    fn a_pause_plans_nothing_and_a_resume_continues_the_plan() {
        let paused = LoadOverride {
            paused: true,
            ..LoadOverride::PLAN
        };
        assert_eq!(
            open_arrivals(plan(&ST, 0, 1), &paused, Duration::ZERO).count(),
            0
        );
        let resumed: Vec<_> =
            open_arrivals(plan(&ST, 0, 1), &LoadOverride::PLAN, Duration::from_secs(7)).collect();
        assert_eq!(resumed.len(), 30);
        assert_eq!(resumed[0], (70, Duration::from_secs(7)));
        assert_eq!(rate_now(10.0, &ST, 1.0, &paused, 3.0), 0.0);
        assert_eq!(rate_now(10.0, &ST, 2.0, &LoadOverride::PLAN, 3.0), 5.0);
    }

    #[test]
    fn a_vu_override_counts_this_process_vus() {
        let stages = [VuStage {
            duration: Duration::from_secs(10),
            target: 2,
        }];
        let o = LoadOverride {
            vus: Some(5),
            ..LoadOverride::PLAN
        };
        let seg = Segment { index: 1, count: 2 };
        // This segment owns the odd VUs; its first five are 1, 3, 5, 7, 9.
        let active: Vec<u32> = (0..20)
            .filter(|&v| v % 2 == 1 && vu_active(2, &stages, seg, &o, v, 1.0))
            .collect();
        assert_eq!(active, vec![1, 3, 5, 7, 9]);
        assert_eq!(vu_slots(2, seg, &o), 10);
        assert!(!vu_active(2, &stages, seg, &o, 1, 10.0), "after the end");
        assert_eq!(next_vu_change(2, &stages, &o, 1, 1.0), Some(10.0));
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs `dispatch` over the 10/s plan `ST` until `end` (from the start) while `steer`
    /// changes the load through the control sender; (what it returned, each release's
    /// offset from the start).
    async fn steered<F: std::future::Future<Output = ()>>(
        end: Duration,
        steer: impl FnOnce(Instant, watch::Sender<LoadOverride>) -> F,
    ) -> (u64, Vec<Duration>) {
        let start = Instant::now();
        let (tx, steering) = Steering::channel();
        let (_stop_tx, mut stop) = watch::channel(false);
        let released = std::cell::RefCell::new(Vec::new());
        let stages = ST;
        let p = plan(&stages, 0, 1);
        let mut sched = open_arrivals(p, &LoadOverride::PLAN, Duration::ZERO);
        let run = dispatch(
            &mut sched,
            |o, from| open_arrivals(p, o, from),
            |_, _| {},
            start,
            start + end,
            |_, at: Instant, _| {
                released.borrow_mut().push(at - start);
                false
            },
            &mut stop,
            steering,
        );
        // A clone: the sender stays open until the dispatcher is done, whenever `steer` ends.
        let (n, _) = tokio::join!(run, steer(start, tx.clone()));
        (n, released.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn the_dispatcher_follows_a_rate_change_and_a_pause() {
        let (n, r) = steered(Duration::from_secs(10), |start, tx| async move {
            // Between two arrivals of the plan (they are 100 ms apart), so no tie decides.
            sleep_until(start + ms(2050)).await;
            tx.send_modify(|o| {
                *o = LoadOverride {
                    version: 1,
                    at: ms(2050),
                    rate: Some(100.0),
                    ..*o
                }
            });
            sleep_until(start + ms(4055)).await;
            tx.send_modify(|o| {
                o.version = 2;
                o.at = ms(4055);
                o.paused = true;
            });
            sleep_until(start + ms(8055)).await;
            tx.send_modify(|o| {
                o.version = 3;
                o.at = ms(8055);
                o.paused = false;
            });
        })
        .await;
        assert_eq!(n as usize, r.len());
        let between = |a: u64, b: u64| r.iter().filter(|&&d| d >= ms(a) && d < ms(b)).count();
        assert_eq!(between(0, 2050), 21, "plan: 10/s, 0.0 s to 2.0 s");
        // 100/s from 2.05 s: the arrival at 4.05 s is released before the pause at 4.055 s.
        assert_eq!(between(2050, 4055), 201, "changed: 100/s");
        assert_eq!(between(4055, 8055), 0, "paused");
        assert_eq!(between(8055, 10_000), 195, "resumed at the changed rate");
        assert_eq!(r.len(), 21 + 201 + 195);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_seen_late_plans_no_stretch_twice() {
        let (_, r) = steered(Duration::from_secs(2), |start, tx| async move {
            // Made at 1.0 s, seen at 1.55 s (the plan released 1.0 .. 1.5 s meanwhile).
            sleep_until(start + ms(1550)).await;
            tx.send_modify(|o| {
                o.version = 1;
                o.at = ms(1000);
                o.rate = Some(100.0);
            });
        })
        .await;
        let between = |a: u64, b: u64| r.iter().filter(|&&d| d >= ms(a) && d < ms(b)).count();
        assert_eq!(between(0, 1000), 10);
        assert_eq!(
            between(1000, 1501),
            6,
            "the plan's, released before the change was seen"
        );
        assert_eq!(between(1501, 2000), 49, "the new rate's, after them");
        let mut sorted = r.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), r.len(), "no instant planned twice");
    }
}
