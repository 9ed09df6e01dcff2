//! The deadline dispatcher: turns arrival offsets into releases on tokio's clock. Each wake-up
//! releases every arrival already due and then sleeps until the next one's absolute deadline
//! (`start + offset`), never by a relative sleep, so the schedule cannot drift. Wake-ups are at
//! least 1 ms apart (tokio's timer granularity): at high rates one wake-up releases a batch, which
//! is what keeps the per-request CPU low; the lag this adds is measured (latency counts from the
//! intended time) and reported as schedule lag.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// Minimum spacing of wake-ups.
pub const BATCH: Duration = Duration::from_millis(1);

/// Releases arrivals of `schedule` (arrival number, offset from `start`) at their deadlines by
/// calling `release(k, intended)`, until the schedule ends or `stop` turns true (or its sender
/// goes away). Returns how many were released.
pub async fn run<I, F>(
    schedule: I,
    start: Instant,
    mut release: F,
    stop: &mut watch::Receiver<bool>,
) -> u64
where
    I: Iterator<Item = (u64, Duration)>,
    F: FnMut(u64, Instant),
{
    let mut schedule = schedule.peekable();
    let mut released = 0u64;
    loop {
        if *stop.borrow() {
            return released;
        }
        let now = Instant::now();
        while let Some(&(k, off)) = schedule.peek() {
            let intended = start + off;
            if intended > now {
                break;
            }
            release(k, intended);
            released += 1;
            schedule.next();
        }
        let Some(&(_, off)) = schedule.peek() else {
            return released;
        };
        let wake = (start + off).max(now + BATCH);
        tokio::select! {
            biased;
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return released;
                }
            }
            _ = sleep_until(wake) => {}
        }
        // Let the tasks whose responses arrived meanwhile run first (tokio defers a yield until
        // after the I/O driver was polled), so a connection that is in fact free is not seen busy
        // and an arrival is not dropped for the generator's own scheduling order.
        tokio::task::yield_now().await;
    }
}
