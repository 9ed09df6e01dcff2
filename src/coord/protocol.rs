//! The messages of the coordination protocol (HTTP + JSON), the plan fingerprint that keeps
//! segments of different scenarios apart, and the mapping of the announced wall-clock start to
//! this process's monotonic clock.
//!
//! `POST /v1/register` (`Register` → `Joined`, polled until `Joined::start` is set; 409 with
//! `Refused` when the segment does not belong to this run) and `POST /v1/report` (a segment's
//! final `Report` → 200, or 409 with `Refused`), and during the load `POST /v1/live` (a
//! segment's cumulative `LiveSnapshot` every interval → `LiveAnswer`: whether to stop).

use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::plan::Plan;

pub const REGISTER: &str = "/v1/register";
pub const REPORT: &str = "/v1/report";
pub const LIVE: &str = "/v1/live";

/// A segment asking to take part in the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Register {
    pub index: u32,
    pub count: u32,
    pub fingerprint: String,
    /// Random per process: tells a segment's repeated polls from a second process that claims
    /// the same index.
    pub token: String,
}

/// The coordinator's answer: `start` once every segment registered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Joined {
    pub start: Option<Start>,
}

/// The one run id, start time and seed of the whole distributed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    pub run_id: String,
    /// Wall clock, milliseconds since the Unix epoch.
    pub start_unix_ms: u64,
    /// Every segment uses the coordinator's seed, so the run is repeatable from its report.
    pub seed: u64,
}

/// A segment's cumulative figures at one interval tick: what the coordinator's live
/// thresholds need (counts and the three histograms per operation, as in the report).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveSnapshot {
    pub index: u32,
    pub run_id: String,
    pub elapsed_ms: u64,
    /// Same order as the plan's operations.
    pub ops: Vec<LiveOp>,
    pub in_flight: u64,
    pub vus: u64,
    pub achieved_rate: f64,
    pub target_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LiveOp {
    pub counts: crate::recorder::Counts,
    /// HdrHistogram V2, base64 (`report::hist::encode`), microseconds.
    pub response_time: String,
    pub service_time: String,
    pub lag: String,
}

/// The coordinator's answer to a live snapshot: `stop` once the run must end (an
/// `abort_on_fail` threshold failed on the merged data, or the coordinator was interrupted).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LiveAnswer {
    pub stop: Option<String>,
}

/// Why the coordinator refused a request (HTTP 409).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refused {
    pub error: String,
}

/// What must be equal in every segment of one run: the scenario as resolved (load, mix,
/// thresholds, fault timeline, target) and N. Not the seed (the coordinator hands out its own),
/// not output paths or telemetry (those are per process). `DefaultHasher::new()` has fixed
/// keys, so equal builds of trafficgen agree; different builds may refuse each other, which is
/// what a run mixing two versions deserves.
pub fn fingerprint(plan: &Plan) -> String {
    let mut h = std::hash::DefaultHasher::new();
    plan.name.hash(&mut h);
    format!("{:?}", plan.load).hash(&mut h);
    format!("{:?}", plan.mix).hash(&mut h);
    for t in &plan.thresholds {
        t.source.hash(&mut h);
    }
    format!("{:?}", plan.faults).hash(&mut h);
    format!("{:?}", plan.target.base_url).hash(&mut h);
    plan.segment.count.hash(&mut h);
    format!("{:016x}", h.finish())
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// This process's `Instant` for a wall-clock time (clocks of the machines are assumed to be in
/// sync, as NTP keeps cluster nodes); a time already past maps to now.
pub fn instant_of(unix_ms: u64, now_wall: SystemTime, now: Instant) -> Instant {
    let at = UNIX_EPOCH
        .checked_add(Duration::from_millis(unix_ms))
        .unwrap_or(now_wall);
    match at.duration_since(now_wall) {
        Ok(ahead) => now.checked_add(ahead).unwrap_or(now),
        Err(_) => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_start_maps_to_the_monotonic_clock() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_millis(1_000_000);
        assert_eq!(
            instant_of(1_002_500, wall, now),
            now + Duration::from_millis(2500)
        );
        // Already past: start at once.
        assert_eq!(instant_of(999_000, wall, now), now);
        assert_eq!(unix_ms(wall), 1_000_000);
    }
}
