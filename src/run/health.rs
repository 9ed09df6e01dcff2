//! The generator's health: whether it kept its schedule. Read from the interval snapshots'
//! exact counters (`Counts::planned`, `Counts::behind`), not from latency: an arrival is
//! *behind* when the dispatcher released it more than `recorder::BEHIND_US` after its intended
//! start, which only the generator causes (waiting for a connection happens after the release
//! and is the target's doing). An interval in which more than 5 % of the arrivals due were
//! behind (its dispatch-lag p95 beyond the bound), and at least `MIN_BEHIND` of them, is a bad
//! interval; when at least two and more than half of the intervals were bad, the schedule was
//! missed: the load the target saw was not the planned one, and the latency figures (timed
//! from the release) hide how late the generator was.

use std::time::Duration;

use crate::recorder::{BEHIND_US, Snapshot};

/// Fewer behind arrivals in an interval are noise (one stall of a busy machine).
pub const MIN_BEHIND: u64 = 10;

/// What the run loop keeps between ticks.
#[derive(Debug, Default)]
pub struct Health {
    prev_planned: u64,
    prev_behind: u64,
    prev_elapsed: Duration,
    /// Intervals seen (with arrivals) and bad ones; the worst bad one described.
    seen: u32,
    bad: u32,
    worst: Option<(u64, String)>,
    /// Set once the schedule is found missed: the description.
    pub missed: Option<String>,
}

impl Health {
    /// Looks at the interval since the previous snapshot (`last`: the final one, which
    /// decides); returns the description the first time the schedule is found missed.
    pub fn observe(&mut self, snap: &Snapshot, last: bool) -> Option<&str> {
        let t = snap.totals();
        let planned = t.planned.saturating_sub(self.prev_planned);
        let behind = t.behind.saturating_sub(self.prev_behind);
        let (from, to) = (self.prev_elapsed, snap.elapsed);
        self.prev_planned = t.planned;
        self.prev_behind = t.behind;
        self.prev_elapsed = snap.elapsed;
        if self.missed.is_some() {
            return None;
        }
        if planned > 0 || behind > 0 {
            self.seen += 1;
        }
        if bad_interval(planned, behind) {
            self.bad += 1;
            let share = behind.saturating_mul(1000) / planned.max(1);
            if self.worst.as_ref().is_none_or(|(w, _)| share > *w) {
                let text = format!(
                    "{behind} of {planned} arrivals due between {:.1} s and {:.1} s were \
                     released more than {} ms late",
                    from.as_secs_f64(),
                    to.as_secs_f64(),
                    BEHIND_US / 1000
                );
                self.worst = Some((share, text));
            }
        }
        // Mid-run only once the majority rule has enough intervals to go on.
        if !missed(self.seen, self.bad) || (!last && self.seen < 4) {
            return None;
        }
        let worst = self.worst.as_ref().map_or("", |w| w.1.as_str());
        self.missed = Some(format!(
            "{worst}; {} of {} intervals behind, {} of {} arrivals",
            self.bad, self.seen, t.behind, t.planned
        ));
        self.missed.as_deref()
    }
}

/// One interval is bad when more than 5 % of its arrivals (its dispatch-lag p95) and at least
/// `MIN_BEHIND` were behind.
pub fn bad_interval(planned: u64, behind: u64) -> bool {
    behind >= MIN_BEHIND && behind.saturating_mul(20) > planned
}

/// The schedule is missed when at least two intervals, and more than half of them, were bad:
/// a generator that could not follow the rate for most of the run. Stalls of a busy machine
/// (the workers starting late, a few slow seconds) are not a verdict.
pub fn missed(seen: u32, bad: u32) -> bool {
    bad >= 2 && bad.saturating_mul(2) > seen
}

/// The line for stderr / the progress output.
pub fn message(why: &str) -> String {
    format!(
        "the generator could not keep the schedule: latency figures are not trustworthy ({why})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_need_a_share_a_count_and_a_majority() {
        assert!(!bad_interval(1_000, 50), "5 % is not more than 5 %");
        assert!(bad_interval(1_000, 51));
        assert!(!bad_interval(20, 9), "a few late arrivals are noise");
        assert!(bad_interval(20, 10));
        assert!(!bad_interval(0, 0));
        assert!(!missed(2, 1) && !missed(4, 2) && missed(3, 2) && missed(2, 2));
    }

    fn snap(secs: u64, planned: u64, behind: u64) -> Snapshot {
        let mut op = crate::recorder::Collector::new(vec!["a".into()], 1, 0).snapshot(
            Duration::from_secs(secs),
            0.0,
            vec![],
            false,
        );
        op.ops[0].counts.planned = planned;
        op.ops[0].counts.behind = behind;
        op
    }

    #[test]
    fn one_stall_is_not_a_verdict_a_generator_behind_most_of_the_run_is() {
        let mut h = Health::default();
        assert!(h.observe(&snap(1, 40, 13), false).is_none(), "a late start");
        for s in 2..8 {
            assert!(h.observe(&snap(s, 40 * s, 13), false).is_none());
        }
        assert!(h.observe(&snap(8, 320, 13), true).is_none());
        assert!(h.missed.is_none());
        let mut h = Health::default();
        assert!(h.observe(&snap(1, 1000, 500), false).is_none());
        assert!(
            h.observe(&snap(2, 2000, 1400), false).is_none(),
            "too early to say"
        );
        assert!(h.observe(&snap(3, 3000, 1400), false).is_none());
        let m = h
            .observe(&snap(4, 4000, 2000), false)
            .expect("missed")
            .to_string();
        assert!(
            m.starts_with("900 of 1000 arrivals due between 1.0 s and 2.0 s"),
            "{m}"
        );
        assert!(m.contains("3 of 4 intervals"), "{m}");
        assert!(h.observe(&snap(5, 5000, 3000), true).is_none(), "said once");
        assert_eq!(h.missed.as_deref(), Some(m.as_str()));
        // A short run is judged at its end.
        let mut h = Health::default();
        assert!(h.observe(&snap(1, 1000, 900), false).is_none());
        assert!(h.observe(&snap(2, 2000, 1900), true).is_some());
    }
}
