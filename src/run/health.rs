//! The generator's health: whether it kept its schedule. Read from the interval snapshots'
//! exact counters (`Counts::planned`, `Counts::behind`), not from latency: an arrival is
//! *behind* when the dispatcher released it more than `recorder::BEHIND_US` after its intended
//! start, which only the generator causes (waiting for a connection happens after the release
//! and is the target's doing). An interval in which more than 1 % of the arrivals due were
//! behind (its dispatch-lag p99 beyond the bound), and at least `MIN_BEHIND` of them, is a bad
//! interval; two bad intervals with more than 1 % of all arrivals behind mean the schedule was
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
    /// Intervals that were behind, and the first of them described.
    bad: u32,
    first: Option<String>,
    /// Set once the schedule is found missed: the description.
    pub missed: Option<String>,
}

impl Health {
    /// Looks at the interval since the previous snapshot; returns the description the first
    /// time the schedule is found missed (for the progress output).
    pub fn observe(&mut self, snap: &Snapshot) -> Option<&str> {
        let t = snap.totals();
        let planned = t.planned.saturating_sub(self.prev_planned);
        let behind = t.behind.saturating_sub(self.prev_behind);
        let (from, to) = (self.prev_elapsed, snap.elapsed);
        self.prev_planned = t.planned;
        self.prev_behind = t.behind;
        self.prev_elapsed = snap.elapsed;
        if self.missed.is_some() || !missed(planned, behind) {
            return None;
        }
        self.bad += 1;
        let first = self.first.get_or_insert_with(|| {
            format!(
                "{behind} of {planned} arrivals due between {:.1} s and {:.1} s were released \
                 more than {} ms late",
                from.as_secs_f64(),
                to.as_secs_f64(),
                BEHIND_US / 1000
            )
        });
        if self.bad < BAD_INTERVALS || t.behind.saturating_mul(100) <= t.planned {
            return None;
        }
        self.missed = Some(format!(
            "{first}; {} of {} behind so far",
            t.behind, t.planned
        ));
        self.missed.as_deref()
    }
}

/// The rule for one interval: more than 1 % of its arrivals behind, and at least
/// `MIN_BEHIND`. The schedule is missed when `BAD_INTERVALS` intervals broke it and more than
/// 1 % of all arrivals so far were behind: a single stall (a busy machine starting the
/// workers late) is not a verdict, a generator that cannot follow the rate is.
pub fn missed(planned: u64, behind: u64) -> bool {
    behind >= MIN_BEHIND && behind.saturating_mul(100) > planned
}

/// See `missed`.
pub const BAD_INTERVALS: u32 = 2;

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
    fn the_rule_needs_a_share_and_a_count() {
        assert!(!missed(1_000, 10), "1 % is not more than 1 %");
        assert!(missed(1_000, 11));
        assert!(!missed(20, 9), "a few late arrivals are noise");
        assert!(missed(20, 10));
        assert!(!missed(0, 0));
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
    fn one_stall_is_not_a_verdict_two_bad_intervals_are() {
        let mut h = Health::default();
        assert!(h.observe(&snap(1, 40, 11)).is_none(), "a late start");
        assert!(h.observe(&snap(2, 80, 11)).is_none());
        assert!(h.missed.is_none());
        let mut h = Health::default();
        assert!(h.observe(&snap(1, 1000, 500)).is_none());
        let m = h.observe(&snap(2, 2000, 1400)).expect("missed").to_string();
        assert!(
            m.starts_with("500 of 1000 arrivals due between 0.0 s and 1.0 s"),
            "{m}"
        );
        assert!(h.observe(&snap(3, 3000, 2400)).is_none(), "said once");
        assert_eq!(h.missed.as_deref(), Some(m.as_str()));
    }
}
