//! The deadline dispatcher: turns arrival offsets into releases on tokio's clock. Each wake-up
//! releases every arrival already due and then sleeps until the next one's absolute deadline
//! (`start + offset`), never by a relative sleep, so the schedule cannot drift. Wake-ups are at
//! least 1 ms apart (tokio's timer granularity): at high rates one wake-up releases a batch, which
//! is what keeps the per-request CPU low. The lag this adds (release − intended) is reported as
//! schedule lag; a request whose connection was free is timed from when its connection task
//! picked it up, so the timer's lag does not become target latency (see docs/architecture.md,
//! "Measures").
//!
//! A batch is cut after `CHUNK` releases to yield: at a rate the machine cannot follow, the
//! release loop would otherwise never return to the runtime, so neither a stop nor the
//! connection tasks (nor the flush) would run. The schedule is borrowed, so after a stop the
//! caller can account for the arrivals that were due but not released (`due_unreleased`,
//! in slices, without walking them one by one).

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::OpenSchedule;

/// Minimum spacing of wake-ups.
pub const BATCH: Duration = Duration::from_millis(1);

/// Releases per batch before the loop yields and looks at `stop` again.
pub const CHUNK: u32 = 1024;

/// After the end of the load (`end` of `run`) plus this, nothing is released any more: a
/// dispatcher still behind then leaves the rest to `due_unreleased` (abandoned), instead of
/// releasing for seconds past the planned duration.
pub const LATE_END: Duration = Duration::from_millis(100);

/// Releases arrivals of `schedule` (arrival number, offset from `start`) at their deadlines by
/// calling `release(k, intended, bulk)` (`bulk`: more than a whole `CHUNK` was due at this
/// wake-up, so the generator is releasing faster than its connection tasks can run), until the
/// schedule ends, `stop` turns true (or its sender goes away), or it is `LATE_END` past `end`
/// (the end of the load). `release` returns true when the arrival found no free connection.
/// Returns how many were released; what is left stays in `schedule`.
pub async fn run<F>(
    schedule: &mut OpenSchedule,
    start: Instant,
    end: Instant,
    mut release: F,
    stop: &mut watch::Receiver<bool>,
) -> u64
where
    F: FnMut(u64, Instant, bool) -> bool,
{
    let mut released = 0u64;
    let mut bulk = false;
    // The last release found every connection busy.
    let mut busy = false;
    loop {
        if *stop.borrow() {
            return released;
        }
        let now = Instant::now();
        if now.saturating_duration_since(end) > LATE_END {
            return released;
        }
        let mut batch = 0u32;
        while let Some((k, off)) = schedule.peek() {
            let Some(intended) = start.checked_add(off) else {
                // Beyond the clock's range: never due.
                return released;
            };
            if intended > now || batch == CHUNK {
                break;
            }
            busy = release(k, intended, bulk);
            released += 1;
            batch += 1;
            schedule.next();
        }
        if batch == CHUNK {
            // Still behind: no sleep, but let a stop and the connection tasks in.
            bulk = true;
            tokio::task::yield_now().await;
            continue;
        }
        bulk = false;
        let Some((_, off)) = schedule.peek() else {
            return released;
        };
        let Some(due) = start.checked_add(off) else {
            return released;
        };
        let wake = due.max(now + BATCH);
        tokio::select! {
            biased;
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return released;
                }
            }
            _ = sleep_until(wake) => {}
        }
        // When the connections were all busy, let the tasks whose responses arrived meanwhile
        // run first (tokio defers a yield until after the I/O driver was polled), so a
        // connection that is in fact free is not seen busy and an arrival is not dropped for
        // the generator's own scheduling order. With a free connection there is nothing to
        // wait for, and the yield would cost a poll of the driver every wake-up.
        if busy {
            tokio::task::yield_now().await;
        }
    }
}

/// Slices `due_unreleased` cuts the unreleased arrivals into: each slice's arrivals are
/// recorded with the wait of its latest one, a lower bound for all of them.
pub const SLICES: u32 = 16;

/// After a stop: takes the arrivals of `schedule` already due at `now` (they were never
/// released) in `SLICES` slices of time and hands each to `abandon(count, waited)`, `waited`
/// being how long the slice's latest arrival had been due. Constant arrivals are counted, not
/// walked, so this is immediate however far behind the dispatcher was. Returns how many.
pub fn due_unreleased<F>(
    schedule: &mut OpenSchedule,
    start: Instant,
    now: Instant,
    mut abandon: F,
) -> u64
where
    F: FnMut(u64, Duration),
{
    let Some((_, first)) = schedule.peek() else {
        return 0;
    };
    let until = now.saturating_duration_since(start);
    if first > until {
        return 0;
    }
    let span = until - first;
    let mut n = 0;
    for i in 1..=SLICES {
        let cut = first + span.mul_f64(i as f64 / SLICES as f64);
        let s = schedule.skip_due(cut.min(until));
        if s.count > 0 {
            abandon(s.count, until.saturating_sub(s.latest));
            n += s.count;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::plan::{Arrivals, RateStage};

    /// A schedule far beyond what can be released (10 M arrivals/s) still sees a stop
    /// between chunks, and what it did not release is counted by `due_unreleased` at once.
    #[tokio::test(start_paused = true)]
    async fn a_stop_is_seen_between_chunks_at_any_rate() {
        let start = Instant::now();
        let (tx, mut rx) = watch::channel(false);
        let stage = RateStage {
            duration: Duration::from_secs(2),
            target: 10_000_000.0,
        };
        let mut sched = OpenSchedule::new(10_000_000.0, &[stage], Arrivals::Constant, 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        let mut count = 0u64;
        let n = run(
            &mut sched,
            start,
            start + Duration::from_secs(2),
            |_, _, _| {
                count += 1;
                if count == 3 * CHUNK as u64 + 5 {
                    let _ = tx.send(true);
                }
                false
            },
            &mut rx,
        )
        .await;
        assert_eq!(
            n,
            4 * CHUNK as u64,
            "stops at the end of the chunk it was told in"
        );
        let mut waits = Vec::new();
        let left = due_unreleased(&mut sched, start, Instant::now(), |c, w| waits.push((c, w)));
        // Arrivals 0 ..= 10 M are due at 1 s (arrival k at k / 10 M s).
        assert_eq!(n + left, 10_000_001);
        assert_eq!(waits.iter().map(|w| w.0).sum::<u64>(), left);
        assert!(waits.len() as u32 <= SLICES && waits[0].1 > waits[waits.len() - 1].1);
        // Nothing more was due.
        assert_eq!(
            due_unreleased(&mut sched, start, Instant::now(), |_, _| {}),
            0
        );
    }

    /// A dispatcher behind at the end of the load stops releasing shortly after it, however
    /// much of the schedule is left; the rest is counted as due and unreleased.
    #[tokio::test(start_paused = true)]
    async fn nothing_is_released_long_after_the_end() {
        let start = Instant::now();
        let (_tx, mut rx) = watch::channel(false);
        let stage = RateStage {
            duration: Duration::from_secs(1),
            target: 1_000_000.0,
        };
        let mut sched = OpenSchedule::new(1_000_000.0, &[stage], Arrivals::Constant, 1);
        // The whole load is due before the dispatcher first runs (a stalled worker).
        tokio::time::advance(Duration::from_secs(3)).await;
        let end = start + Duration::from_secs(1);
        let n = run(&mut sched, start, end, |_, _, _| false, &mut rx).await;
        assert_eq!(n, 0);
        let left = due_unreleased(&mut sched, start, Instant::now(), |_, _| {});
        assert_eq!(left, 1_000_000);
    }
}
