//! The largest (and smallest) values the scenario format allows. The JSON Schema carries the
//! integer ones (`#[schemars(range(...))]` in `model`), `plan::build` checks them all (with
//! positions, `plan::limits`), and a test checks schema and validator agree at each limit. The
//! table is documented in scenarios/README.md ("Limits").
//!
//! The limits are far above what one process can drive (the bench reaches ~100 000 req/s on
//! two cores) and far below what would overflow: 30 days of run at 100 000 000/s is 2.6 × 10¹⁴
//! arrivals, well within `u64`; an hour's timeout added to any `Instant` is safe. The rate's
//! limit is high on purpose: a schedule beyond what the machine can release is a run the
//! generator must survive and call out (exit 97, "schedule missed"), not an input error.

use std::time::Duration;

/// Scenario files larger than this are refused before they are read whole.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// Requests per second (stage `rate`, `start_rate`, `max_rate`, `--rate`).
pub const MAX_RATE: f64 = 100_000_000.0;
/// The whole load (sum of the stages, `--duration`).
pub const MAX_RUN: Duration = Duration::from_secs(30 * 24 * 3600);
/// Virtual users (stage `vus`, `start_vus`, `--vus`).
pub const MAX_VUS: u32 = 100_000;
/// `target.max_connections`, `load.max_in_flight`.
pub const MAX_CONNECTIONS: u32 = 100_000;
/// `load.max_queue` (arrivals waiting for a connection are kept in memory).
pub const MAX_QUEUE: u32 = 1_000_000;
/// `target.max_streams` (HTTP/2 streams per connection).
pub const MAX_STREAMS: u32 = 10_000;
/// `target.max_body`: response bytes kept per request in flight (64 MiB).
pub const MAX_BODY: u64 = 64 << 20;
/// Redirect hops per request.
pub const MAX_REDIRECTS: u32 = 20;
/// `mix.pool_capacity` (ids kept in memory).
pub const MAX_POOL: u32 = 10_000_000;
/// `output.keep_traces` (kept per kind, per worker, in every snapshot).
pub const MAX_KEEP_TRACES: u32 = 10_000;
/// `verify.assertions[].limit` (trace lookups).
pub const MAX_TRACE_LOOKUPS: u32 = 1_000;
/// An operation's weight (the sum of weights must fit comfortably in `u64`).
pub const MAX_WEIGHT: u32 = 1_000_000;
/// Timeouts and per-request delays: `connect_timeout`, `request_timeout`, `latency_below`,
/// fault `delay`/`jitter`, `think_time`, and the polling intervals.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Waits of a whole phase: `ready.timeout`, `verify.deadline`, `telemetry.linger`,
/// `mix.cleanup_timeout`.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
/// Segments of a distributed run (`--segment i/N`, `--segments N`, a report's segment count).
pub const MAX_SEGMENTS: u32 = 10_000;
/// Worker threads (`--workers`).
pub const MAX_WORKERS: usize = 256;
