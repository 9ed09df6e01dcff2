//! Executor: *what* is sent. Worker threads, each with its own `current_thread` tokio runtime,
//! run the connection tasks (open model) or virtual users (closed model) and record into the
//! worker's own `WorkerRecorder`. The hot path is raw HTTP/1.1 over keep-alive sockets with
//! pre-serialized request parts (see `http` and `request`): no lock, no allocation, no channel
//! send per request except for sampled client spans (`try_send`); a flow's and an HTTP/2
//! request's futures are boxed (once per flow, per HTTP/2 request), so that every request's
//! future stays small (see `transport`). HTTP/2 is hand-written as well (see `h2`): a request
//! HPACK-encodes its frames straight into its connection's output, which the connection's
//! task writes in one go with whatever else queued meanwhile.
//!
//! Worker count: `--workers`, default one per two cores (at least 1, at most 8), because on a
//! loopback or embedded target the server needs the other half; the bench passes `--workers 1`.
//! Arrivals, VUs, connections, the id pool and the queue bound are split evenly over workers.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::faults::HeaderFaults;
use crate::plan::{CaptureSource, Check, HttpVersion, LoadModel, OpKind, Plan, TodoOp};
use crate::recorder::{SpanRecord, WorkerRecorder};

pub mod cleanup;
mod client;
pub mod connect;
mod flow;
mod follow;
pub mod h2;
pub mod http;
mod local;
mod render;
pub mod request;
pub mod tls;
mod transport;
mod worker;

pub use cleanup::Cleanup;
pub use connect::resolve;
pub use request::{Common, HeaderSet};

/// What the executor needs per request template (an operation, or one step of a flow),
/// worked out once per run.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub headers: HeaderSet,
    /// Keep up to `target.max_body` bytes of the response body: a check reads it, a capture
    /// parses it, or a created todo's id is taken from it. Otherwise nothing is kept.
    pub keep_body: bool,
    /// Same-origin redirects to follow.
    pub follow: u32,
    /// A flow step: (index over every flow step of the plan, `Mix::flow_steps`; index in its
    /// flow). Recorded apart as that step, and as part of its flow.
    pub step: Option<(usize, usize)>,
}

/// The protocol of new connections (from `target.http_version` and the scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    /// HTTP/2 only: ALPN `h2` over TLS, prior knowledge (h2c) over plain TCP.
    H2,
    /// Over TLS, whatever the server selects from `h2`, `http/1.1`.
    Auto,
}

/// Run state sent from the app to the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Run,
    /// Release no more arrivals; finish the requests in flight.
    Stop,
    /// Abandon the requests in flight (the drain bound passed).
    Abort,
}

pub type Limiter = governor::DefaultDirectRateLimiter;

/// Read-only state shared by all workers of a run.
pub struct Shared {
    pub plan: Plan,
    /// Every address of the target host; connections rotate over them.
    pub addrs: Vec<SocketAddr>,
    pub common: Common,
    /// Per operation, per flow step (one entry for other operations).
    pub requests: Vec<Vec<RequestInfo>>,
    /// TLS for an `https` target.
    pub tls: Option<tls::TlsTarget>,
    /// What is spoken on new connections.
    pub proto: Proto,
    pub names: Vec<Arc<str>>,
    /// Cumulative operation weights, for the weighted pick.
    pub cum_weights: Vec<u64>,
    pub faults: HeaderFaults,
    pub faults_empty: bool,
    pub spans: Option<mpsc::Sender<SpanRecord>>,
    pub sample_ratio: f64,
    pub workers: usize,
    /// The instant the load starts (arrival offsets count from here).
    pub start: Instant,
    /// Closed model rate cap for this process.
    pub limiter: Option<Arc<Limiter>>,
    /// `mix.cleanup`: the ids left in the workers' pools when their load ended.
    pub leftover: std::sync::Mutex<Vec<u64>>,
    /// Run-time changes of the load from the control API (none unless a dashboard listens;
    /// the run loop sets it after `new`).
    pub steering: crate::scheduler::steer::Steering,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: Plan,
        addrs: Vec<SocketAddr>,
        common: Common,
        faults: HeaderFaults,
        spans: Option<mpsc::Sender<SpanRecord>>,
        sample_ratio: f64,
        workers: usize,
        start: Instant,
    ) -> Result<Shared, tls::TlsError> {
        let names = plan
            .mix
            .operations
            .iter()
            .map(|o| Arc::<str>::from(o.name.as_str()))
            .collect();
        let mut acc = 0u64;
        let cum_weights = plan
            .mix
            .operations
            .iter()
            .map(|o| {
                acc += o.weight as u64;
                acc
            })
            .collect();
        let limiter = match &plan.load {
            LoadModel::Closed {
                max_rate: Some(r), ..
            } => {
                let share = (r / plan.segment.count.max(1) as f64).max(0.001);
                let period = std::time::Duration::from_secs_f64(1.0 / share);
                governor::Quota::with_period(period).map(|q| {
                    Arc::new(governor::RateLimiter::direct(
                        q.allow_burst(NonZeroU32::MIN),
                    ))
                })
            }
            _ => None,
        };
        let faults_empty = faults.is_empty();
        let https = plan
            .target
            .base_url
            .as_ref()
            .is_some_and(|b| b.scheme == "https");
        let proto = match (plan.target.http_version, https) {
            (HttpVersion::Http11, _) | (HttpVersion::Auto, false) => Proto::H1,
            (HttpVersion::Http2, _) => Proto::H2,
            (HttpVersion::Auto, true) => Proto::Auto,
        };
        let alpn: &[&[u8]] = match proto {
            Proto::H1 => &[b"http/1.1"],
            Proto::H2 => &[b"h2"],
            Proto::Auto => &[b"h2", b"http/1.1"],
        };
        let tls = match &plan.target.base_url {
            Some(base) => tls::target(base, &plan.target.tls, alpn)?,
            None => None,
        };
        if tls.is_some() && plan.target.tls.insecure_skip_verify {
            eprintln!(
                "trafficgen: WARNING: target.tls.insecure_skip_verify is set: the target's \
                 certificate is NOT verified; anyone on the path can read and change this traffic"
            );
        }
        let mut flat = 0;
        let requests = plan
            .mix
            .operations
            .iter()
            .map(|o| {
                let follow = o.follow_redirects.unwrap_or(plan.target.follow_redirects);
                let mut infos = request_infos(&common, &o.kind, &o.checks);
                let flow = matches!(o.kind, OpKind::Flow(_));
                for (n, i) in infos.iter_mut().enumerate() {
                    i.follow = follow;
                    if flow {
                        // The same order as `Mix::flow_steps`.
                        i.step = Some((flat, n));
                        flat += 1;
                    }
                }
                infos
            })
            .collect();
        Ok(Shared {
            plan,
            addrs,
            common,
            requests,
            tls,
            proto,
            names,
            cum_weights,
            faults,
            faults_empty,
            spans,
            sample_ratio,
            workers: workers.max(1),
            start,
            limiter,
            leftover: Default::default(),
            steering: crate::scheduler::steer::Steering::none(),
        })
    }

    /// Weighted operation pick from a uniform draw in `0..total_weight()`.
    pub fn pick(&self, draw: u64) -> usize {
        self.cum_weights
            .partition_point(|&c| c <= draw)
            .min(self.cum_weights.len().saturating_sub(1))
    }

    /// Keeps a worker's remaining pool ids for `mix.cleanup` (once, when its load ends).
    pub fn keep_leftover(&self, ids: Vec<u64>) {
        self.leftover
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(ids);
    }

    /// Takes the ids every worker left (`keep_leftover`).
    pub fn take_leftover(&self) -> Vec<u64> {
        std::mem::take(&mut *self.leftover.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn total_weight(&self) -> u64 {
        self.cum_weights.last().copied().unwrap_or(0)
    }

    /// `count` arrivals shared among the operations in proportion to their weights.
    pub fn split_by_weight(&self, count: u64) -> Vec<u64> {
        split_by_weight(&self.cum_weights, count)
    }
}

/// `count` shared in proportion to the weights whose running sums are `cum`, exactly: each
/// share rounded down, the remainder (fewer than the shares) one by one in order.
fn split_by_weight(cum: &[u64], count: u64) -> Vec<u64> {
    let total = cum.last().copied().unwrap_or(0).max(1) as u128;
    let mut prev = 0u64;
    let mut out: Vec<u64> = cum
        .iter()
        .map(|&c| {
            let w = c.saturating_sub(prev);
            prev = c;
            (count as u128 * w as u128 / total) as u64
        })
        .collect();
    let left = count - out.iter().sum::<u64>();
    for n in out.iter_mut().take(left as usize) {
        *n += 1;
    }
    out
}

fn reads_body(checks: &[Check]) -> bool {
    checks.iter().any(|c| matches!(c, Check::BodyContains(_)))
}

fn request_infos(common: &Common, kind: &OpKind, checks: &[Check]) -> Vec<RequestInfo> {
    match kind {
        OpKind::Todo(t) => vec![RequestInfo {
            headers: common.headers_for(std::iter::empty()),
            keep_body: *t == TodoOp::Create || reads_body(checks),
            follow: 0,
            step: None,
        }],
        OpKind::Request(rt) => vec![RequestInfo {
            headers: common.headers_for(rt.headers.iter().map(|(n, _)| n.as_str())),
            keep_body: reads_body(checks),
            follow: 0,
            step: None,
        }],
        OpKind::Flow(steps) => steps
            .iter()
            .map(|s| RequestInfo {
                headers: common.headers_for(s.request.headers.iter().map(|(n, _)| n.as_str())),
                keep_body: reads_body(checks)
                    || reads_body(&s.checks)
                    || s.captures
                        .iter()
                        .any(|c| matches!(c.from, CaptureSource::JsonPointer(_))),
                follow: 0,
                step: None,
            })
            .collect(),
    }
}

/// Default worker count (see the module doc).
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cores / 2).clamp(1, 8)
}

/// `total` split over `n` parts: part `i`'s share (the first `total % n` parts get one more).
pub fn split(total: u64, n: usize, i: usize) -> u64 {
    let n = n.max(1) as u64;
    total / n + u64::from((i as u64) < total % n)
}

/// The running workers.
pub struct Workers {
    pub threads: Vec<JoinHandle<()>>,
    /// Per worker: where the collector returns emptied recorders for reuse.
    pub recycle: Vec<std::sync::mpsc::Sender<WorkerRecorder>>,
}

/// Starts `shared.workers` worker threads. Each sends its recorder deltas on `deltas` every
/// `plan.output.interval` and a last one (`finished`) when its load is done; the channel closes
/// when all workers have exited.
pub fn start(
    shared: Arc<Shared>,
    deltas: mpsc::UnboundedSender<WorkerRecorder>,
    control: watch::Receiver<Control>,
) -> std::io::Result<Workers> {
    let mut threads = Vec::new();
    let mut recycle = Vec::new();
    for w in 0..shared.workers {
        let (tx, rx) = std::sync::mpsc::channel();
        recycle.push(tx);
        let (shared, deltas, control) = (shared.clone(), deltas.clone(), control.clone());
        let t = std::thread::Builder::new()
            .name(format!("trafficgen-w{w}"))
            .spawn(move || worker::run(w, shared, deltas, rx, control))?;
        threads.push(t);
    }
    Ok(Workers { threads, recycle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_by_weight_is_exact_and_proportional() {
        assert_eq!(split_by_weight(&[3, 4], 100), vec![75, 25]);
        assert_eq!(split_by_weight(&[1, 2, 3], 10), vec![4, 3, 3]);
        assert_eq!(split_by_weight(&[5], 7), vec![7]);
        for n in [0, 1, 99, 1_000_003, u64::MAX / 2] {
            assert_eq!(split_by_weight(&[2, 9, 10], n).iter().sum::<u64>(), n);
        }
    }

    #[test]
    fn split_adds_up() {
        for total in 0..20u64 {
            assert_eq!((0..3).map(|i| split(total, 3, i)).sum::<u64>(), total);
        }
    }
}
