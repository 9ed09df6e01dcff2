//! Scheduler: *when* requests start. Pure functions from the plan to absolute offsets from the
//! start of the load (open model), the number of active virtual users at an offset (closed
//! model), and which arrivals belong to this process and worker. No I/O and no clock here;
//! `dispatch` turns offsets into wake-ups on tokio's clock and `steer` rebuilds the schedule
//! when the control API changes the load.
//!
//! Arrival `k` (0-based, over the whole distributed run) happens at the time `t_k` where the
//! integral of the rate, Λ(t), equals `k` (constant arrivals) or the k-th point of a unit-rate
//! Poisson process (Poisson arrivals, seeded). So a stage [a, b) gets exactly
//! `ceil(Λ(b)) − ceil(Λ(a))` constant arrivals: the integral of its (possibly ramping) rate.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp1};

use crate::plan::{Arrivals, RateStage, Segment, VuStage};

pub mod dispatch;
pub mod steer;

/// Planned arrival rate (per second) at `t` seconds from the start (0 after the last stage).
pub fn rate_at(start_rate: f64, stages: &[RateStage], t: f64) -> f64 {
    let mut from = start_rate;
    let mut at = 0.0;
    for s in stages {
        let d = s.duration.as_secs_f64();
        if t < at + d {
            return from + (s.target - from) * (t - at) / d;
        }
        at += d;
        from = s.target;
    }
    0.0
}

/// Λ(t): arrivals planned in [0, t) — the integral of the rate.
pub fn cumulative(start_rate: f64, stages: &[RateStage], t: f64) -> f64 {
    let mut from = start_rate;
    let mut at = 0.0;
    let mut sum = 0.0;
    for s in stages {
        let d = s.duration.as_secs_f64();
        let tau = (t - at).clamp(0.0, d);
        if d > 0.0 {
            sum += from * tau + (s.target - from) * tau * tau / (2.0 * d);
        }
        if t <= at + d {
            return sum;
        }
        at += d;
        from = s.target;
    }
    sum
}

/// Arrival offsets of an open-model load, in order: an iterator over (arrival number, offset).
#[derive(Debug, Clone)]
pub struct OpenSchedule {
    start_rate: f64,
    stages: Vec<RateStage>,
    /// Stage being walked, its start time, rate at its start and Λ at its start.
    stage: usize,
    stage_at: f64,
    stage_from: f64,
    stage_lambda: f64,
    next_k: u64,
    /// Poisson: Λ of the next arrival (sum of unit exponential gaps).
    poisson: Option<(SmallRng, f64)>,
    /// Only arrivals `k ≡ r (mod m)` are yielded (`owned_by`); `(1, 0)` = all.
    owner: (u64, u64),
    /// The arrival `peek` looked at (outer None: not looked yet).
    peeked: Option<Option<(u64, Duration)>>,
    /// Constant arrivals: how many the whole schedule has (`ceil(Λ(end))`).
    total: u64,
    /// Added to every offset (`shifted`): a schedule that starts later than the load.
    shift: Duration,
}

/// Arrivals skipped at once by `OpenSchedule::skip_due`: `count` of them, the latest at
/// `latest` (offset from the start of the load).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Skipped {
    pub count: u64,
    pub latest: Duration,
}

impl OpenSchedule {
    pub fn new(start_rate: f64, stages: &[RateStage], arrivals: Arrivals, seed: u64) -> Self {
        let poisson = match arrivals {
            Arrivals::Constant => None,
            Arrivals::Poisson => {
                let mut rng = SmallRng::seed_from_u64(seed ^ 0x5ce3_d01e);
                let first: f64 = Exp1.sample(&mut rng);
                Some((rng, first))
            }
        };
        let end: f64 = stages.iter().map(|s| s.duration.as_secs_f64()).sum();
        let lambda_end = cumulative(start_rate, stages, end);
        OpenSchedule {
            start_rate,
            stages: stages.to_vec(),
            stage: 0,
            stage_at: 0.0,
            stage_from: start_rate,
            stage_lambda: 0.0,
            next_k: 0,
            poisson,
            owner: (1, 0),
            peeked: None,
            total: if lambda_end.is_finite() && lambda_end > 0.0 {
                lambda_end.ceil().min(u64::MAX as f64) as u64
            } else {
                0
            },
            shift: Duration::ZERO,
        }
    }

    /// The same arrivals `by` later: a schedule built for a stretch that starts at offset `by`
    /// of the load (the control API's new rate).
    pub fn shifted(mut self, by: Duration) -> Self {
        self.shift = by;
        self
    }

    /// Only the arrivals of this process's `segment` and, within it, of worker `worker` of
    /// `workers` (`owns`). Constant arrivals jump straight to the next owned one.
    pub fn owned_by(mut self, segment: Segment, worker: usize, workers: usize) -> Self {
        let n = segment.count.max(1) as u64;
        let w = workers.max(1) as u64;
        // owns(k) ⇔ k = index + n·j with j ≡ worker (mod workers) ⇔ k ≡ index + n·worker (mod n·workers).
        self.owner = (
            n.saturating_mul(w),
            segment.index as u64 + n * worker as u64,
        );
        self
    }

    /// The next arrival without taking it.
    pub fn peek(&mut self) -> Option<(u64, Duration)> {
        if self.peeked.is_none() {
            self.peeked = Some(self.next_owned());
        }
        self.peeked.flatten()
    }

    /// Takes every arrival due at or before `t` at once, without yielding them one by one:
    /// constant arrivals are counted from Λ(t) and the ownership rule (O(1) however many),
    /// Poisson ones are walked. For a dispatcher far behind at a stop.
    pub fn skip_due(&mut self, t: Duration) -> Skipped {
        let mut out = Skipped {
            count: 0,
            latest: Duration::ZERO,
        };
        if let Some(Some((_, off))) = self.peeked {
            if off > t {
                return out;
            }
            self.peeked = None;
            out = Skipped {
                count: 1,
                latest: off,
            };
        }
        if self.poisson.is_some() {
            while let Some((_, off)) = self.peek() {
                if off > t {
                    break;
                }
                self.peeked = None;
                out.count += 1;
                out.latest = off;
            }
            return out;
        }
        let Some(local) = t.checked_sub(self.shift) else {
            return out;
        };
        let lambda = cumulative(self.start_rate, &self.stages, local.as_secs_f64());
        let due_end = if lambda.is_finite() && lambda >= 0.0 {
            ((lambda.floor() + 1.0).min(u64::MAX as f64) as u64).min(self.total)
        } else {
            self.total
        };
        if due_end > self.next_k {
            let owned = owned_below(due_end, self.owner) - owned_below(self.next_k, self.owner);
            if owned > 0 {
                out.count += owned;
                out.latest = t;
            }
            self.next_k = due_end;
        }
        out
    }

    fn next_owned(&mut self) -> Option<(u64, Duration)> {
        let (m, r) = self.owner;
        loop {
            if self.poisson.is_none() && m > 1 {
                // Jump to the next owned arrival number.
                let k = self.next_k;
                let ahead = (r % m + m - k % m) % m;
                self.next_k = k.checked_add(ahead)?;
            }
            let item = self.next_raw()?;
            if m <= 1 || item.0 % m == r % m {
                return Some(item);
            }
        }
    }

    fn next_raw(&mut self) -> Option<(u64, Duration)> {
        let x = match &self.poisson {
            None => self.next_k as f64,
            Some((_, x)) => *x,
        };
        let t = self.invert(x)?;
        if let Some((rng, x)) = &mut self.poisson {
            let gap: f64 = Exp1.sample(rng);
            *x += gap;
        }
        let k = self.next_k;
        self.next_k += 1;
        Some((k, Duration::from_secs_f64(t).checked_add(self.shift)?))
    }

    /// Time (s) at which Λ reaches `x`, or None after the last stage.
    fn invert(&mut self, x: f64) -> Option<f64> {
        loop {
            let s = *self.stages.get(self.stage)?;
            let d = s.duration.as_secs_f64();
            let (r0, r1) = (self.stage_from, s.target);
            let total = (r0 + r1) * d / 2.0;
            let want = x - self.stage_lambda;
            if want < total && d > 0.0 {
                // Λ within the stage: r0·τ + a·τ², a = (r1 − r0)/(2d). Solve for τ in the
                // numerically stable form 2w / (r0 + sqrt(r0² + 4aw)).
                let a = (r1 - r0) / (2.0 * d);
                let disc = (r0 * r0 + 4.0 * a * want).max(0.0);
                let denom = r0 + disc.sqrt();
                let tau = if denom > 0.0 { 2.0 * want / denom } else { 0.0 };
                return Some(self.stage_at + tau.min(d));
            }
            self.stage += 1;
            self.stage_at += d;
            self.stage_from = r1;
            self.stage_lambda += total;
        }
    }
}

impl Iterator for OpenSchedule {
    type Item = (u64, Duration);
    fn next(&mut self) -> Option<(u64, Duration)> {
        match self.peeked.take() {
            Some(p) => p,
            None => self.next_owned(),
        }
    }
}

/// How many `k < x` have `k ≡ r (mod m)`.
fn owned_below(x: u64, (m, r): (u64, u64)) -> u64 {
    let m = m.max(1);
    let r = r % m;
    if x > r { (x - r - 1) / m + 1 } else { 0 }
}

/// Whether arrival `k` (or VU `k`) belongs to this process's `segment` and, within it, to
/// worker `worker` of `workers`: segment shares are `k % count`, workers split the segment's
/// arrivals round-robin. Every arrival has exactly one owner, so shares add up exactly.
pub fn owns(k: u64, segment: Segment, worker: usize, workers: usize) -> bool {
    let n = segment.count.max(1) as u64;
    k % n == segment.index as u64 && (k / n) % workers.max(1) as u64 == worker as u64
}

/// Active virtual users at `t` seconds (closed model): linear between stage targets, rounded
/// down, so a stage's target is reached exactly at its end. 0 after the last stage.
pub fn vus_at(start_vus: u32, stages: &[VuStage], t: f64) -> u32 {
    let mut from = start_vus as f64;
    let mut at = 0.0;
    for s in stages {
        let d = s.duration.as_secs_f64();
        if t < at + d {
            let x = from + (s.target as f64 - from) * (t - at) / d;
            return (x + 1e-9).floor() as u32;
        }
        at += d;
        from = s.target as f64;
    }
    0
}

/// The largest number of VUs the stages ever ask for.
pub fn max_vus(start_vus: u32, stages: &[VuStage]) -> u32 {
    stages
        .iter()
        .map(|s| s.target)
        .chain([start_vus])
        .max()
        .unwrap_or(0)
}

/// The next time (s) strictly after `t` at which VU `v`'s state (active = `vus_at > v`) may
/// change (a ramp crossing `v + 1`, or the end of the current stage), or None after the last
/// stage. VU loops sleep until then and look again; a spurious wake-up only costs a check.
pub fn next_vu_change(start_vus: u32, stages: &[VuStage], v: u32, t: f64) -> Option<f64> {
    let mut from = start_vus as f64;
    let mut at = 0.0;
    let edge = v as f64 + 1.0;
    for s in stages {
        let d = s.duration.as_secs_f64();
        let to = s.target as f64;
        if at + d > t {
            if to != from {
                let cross = at + (edge - from) * d / (to - from);
                if cross > t && cross <= at + d {
                    // Just past the crossing, so vus_at there already shows the new state.
                    return Some(cross + 1e-6);
                }
            }
            return Some(at + d);
        }
        at += d;
        from = to;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(secs: u64, target: f64) -> RateStage {
        RateStage {
            duration: Duration::from_secs(secs),
            target,
        }
    }

    #[test]
    fn constant_rate_counts_are_exact() {
        let s = OpenSchedule::new(10.0, &[st(10, 10.0)], Arrivals::Constant, 1);
        let offs: Vec<_> = s.collect();
        assert_eq!(offs.len(), 100);
        assert_eq!(offs[1].1, Duration::from_millis(100));
    }

    #[test]
    fn skipping_counts_exactly_what_walking_yields() {
        let stages = [st(2, 50.0), st(3, 10.0)];
        for (seg, w, nw) in [
            (Segment::WHOLE, 0, 1),
            (Segment { index: 1, count: 3 }, 1, 2),
        ] {
            for cut in [0.0, 0.013, 1.0, 2.5, 4.99, 9.0] {
                let t = Duration::from_secs_f64(cut);
                let walked = OpenSchedule::new(10.0, &stages, Arrivals::Constant, 1)
                    .owned_by(seg, w, nw)
                    .take_while(|&(_, off)| off <= t)
                    .count() as u64;
                let mut s =
                    OpenSchedule::new(10.0, &stages, Arrivals::Constant, 1).owned_by(seg, w, nw);
                let first = s.peek();
                let skipped = s.skip_due(t);
                assert_eq!(skipped.count, walked, "cut {cut} {seg:?}");
                // What is left is exactly what walking would yield after the cut.
                let rest: Vec<_> = s.collect();
                let all: Vec<_> = OpenSchedule::new(10.0, &stages, Arrivals::Constant, 1)
                    .owned_by(seg, w, nw)
                    .collect();
                assert_eq!(rest[..], all[walked as usize..], "cut {cut}");
                assert!(first.is_some());
            }
        }
    }

    #[test]
    fn ownership_inside_the_schedule_matches_owns() {
        let seg = Segment { index: 1, count: 2 };
        for arrivals in [Arrivals::Constant, Arrivals::Poisson] {
            let inside: Vec<_> = OpenSchedule::new(30.0, &[st(3, 30.0)], arrivals, 5)
                .owned_by(seg, 2, 3)
                .collect();
            let outside: Vec<_> = OpenSchedule::new(30.0, &[st(3, 30.0)], arrivals, 5)
                .filter(|&(k, _)| owns(k, seg, 2, 3))
                .collect();
            assert_eq!(inside, outside);
            assert!(!inside.is_empty());
        }
    }

    #[test]
    fn owners_partition_the_arrivals() {
        let seg = [
            Segment { index: 0, count: 2 },
            Segment { index: 1, count: 2 },
        ];
        for k in 0..100u64 {
            let n = seg
                .iter()
                .flat_map(|&sg| (0..3).map(move |w| owns(k, sg, w, 3)))
                .filter(|&b| b)
                .count();
            assert_eq!(n, 1);
        }
    }
}
