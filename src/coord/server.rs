//! The coordinator's side (segment 0): an axum server on the coordinator port. It takes the
//! registrations, announces one start once all N segments registered, and collects the
//! segments' final reports. Segment 0 registers and delivers through the same functions as
//! the HTTP handlers, so every segment passes the same checks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::CoordError;
use super::protocol::{self, Joined, LiveAnswer, LiveSnapshot, Refused, Register, Start};
use crate::report::Report;

/// How far ahead of the last registration the start is announced: enough for every segment's
/// next poll (every 100 ms) to see it and for its workers to be ready.
const START_AHEAD: Duration = Duration::from_secs(2);
/// A report of a long soak carries its whole per-second timeline and histograms.
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Live snapshots kept per segment: the coordinator judges the newest tick every segment sent.
pub const LIVE_KEEP: usize = 16;

pub struct Server {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub addr: SocketAddr,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every change, so the coordinator's waits wake up.
    changed: watch::Sender<u64>,
}

struct State {
    count: u32,
    fingerprint: String,
    run_id: String,
    seed: u64,
    /// Registered segments and the token of the process that registered each.
    registered: BTreeMap<u32, String>,
    refused: Vec<String>,
    start: Option<Start>,
    reports: BTreeMap<u32, Report>,
    /// The latest live snapshots of each segment ≠ 0, oldest first (at most `LIVE_KEEP`).
    live: BTreeMap<u32, VecDeque<LiveSnapshot>>,
    /// Set once the segments must stop; every live answer carries it.
    stop: Option<String>,
}

/// What the coordinator's live sink needs of the server: the segments' latest snapshots, and
/// a way to tell them to stop.
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

impl Handle {
    /// Every segment's (≠ 0) snapshot of the tick at `elapsed_ms`, once all have sent it.
    /// Segments share one start and one interval, so their ticks have equal `elapsed_ms`.
    pub fn live_at(&self, elapsed_ms: u64) -> Option<Vec<LiveSnapshot>> {
        let s = self.0.lock();
        (1..s.count)
            .map(|i| {
                s.live
                    .get(&i)?
                    .iter()
                    .find(|l| l.elapsed_ms == elapsed_ms)
                    .cloned()
            })
            .collect()
    }

    /// Every segment's next live answer tells it to stop (the first reason wins).
    pub fn stop(&self, reason: &str) {
        self.0.lock().stop.get_or_insert_with(|| reason.to_string());
    }
}

impl Shared {
    fn new(count: u32, fingerprint: String, run_id: String, seed: u64) -> Shared {
        Shared {
            state: Mutex::new(State {
                count,
                fingerprint,
                run_id,
                seed,
                registered: BTreeMap::new(),
                refused: Vec::new(),
                start: None,
                reports: BTreeMap::new(),
                live: BTreeMap::new(),
                stop: None,
            }),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn register(&self, r: &Register) -> Result<Joined, String> {
        let mut s = self.lock();
        let refuse = |s: &mut State, why: String| {
            s.refused.push(format!("segment {}: {why}", r.index));
            Err(why)
        };
        if r.count != s.count {
            let why = format!(
                "segment {}/{} does not belong to this run of {} segments",
                r.index, r.count, s.count
            );
            return refuse(&mut s, why);
        }
        if r.index >= s.count {
            let why = format!("segment index {} out of range 0..{}", r.index, s.count);
            return refuse(&mut s, why);
        }
        if r.fingerprint != s.fingerprint {
            let why = format!(
                "segment {}'s resolved scenario differs from the coordinator's (fingerprint {} ≠ {}): every segment must run the same scenario with the same load flags",
                r.index, r.fingerprint, s.fingerprint
            );
            return refuse(&mut s, why);
        }
        match s.registered.get(&r.index) {
            Some(_) if s.registered[&r.index] != r.token => {
                let why = format!(
                    "segment {} is already registered by another process",
                    r.index
                );
                return refuse(&mut s, why);
            }
            Some(_) => {}
            None => {
                s.registered.insert(r.index, r.token.clone());
                if s.registered.len() == s.count as usize && s.start.is_none() {
                    let at = SystemTime::now()
                        .checked_add(START_AHEAD)
                        .unwrap_or_else(SystemTime::now);
                    s.start = Some(Start {
                        run_id: s.run_id.clone(),
                        start_unix_ms: protocol::unix_ms(at),
                        seed: s.seed,
                    });
                }
                drop(s);
                self.bump();
                s = self.lock();
            }
        }
        Ok(Joined {
            start: s.start.clone(),
        })
    }

    fn deliver(&self, report: Report) -> Result<(), String> {
        let mut s = self.lock();
        let seg = report.segment;
        if seg.count != s.count || seg.index >= s.count {
            return Err(format!(
                "report of segment {}/{} does not belong to this run of {} segments",
                seg.index, seg.count, s.count
            ));
        }
        if report.run_id != s.run_id {
            return Err(format!(
                "report of segment {} is of run {}, not {}",
                seg.index, report.run_id, s.run_id
            ));
        }
        s.reports.insert(seg.index, report);
        drop(s);
        self.bump();
        Ok(())
    }
}

async fn live(AxState(shared): AxState<Arc<Shared>>, Json(l): Json<LiveSnapshot>) -> Response {
    let mut s = shared.lock();
    if l.run_id != s.run_id || l.index == 0 || l.index >= s.count {
        let why = format!(
            "live snapshot of segment {} of run {} does not belong to this run",
            l.index, l.run_id
        );
        drop(s);
        return refused(why);
    }
    let kept = s.live.entry(l.index).or_default();
    if kept.back().is_none_or(|old| old.elapsed_ms < l.elapsed_ms) {
        kept.push_back(l);
        if kept.len() > LIVE_KEEP {
            kept.pop_front();
        }
    }
    Json(LiveAnswer {
        stop: s.stop.clone(),
    })
    .into_response()
}

fn refused(why: String) -> Response {
    (StatusCode::CONFLICT, Json(Refused { error: why })).into_response()
}

async fn register(AxState(shared): AxState<Arc<Shared>>, Json(r): Json<Register>) -> Response {
    match shared.register(&r) {
        Ok(j) => Json(j).into_response(),
        Err(why) => refused(why),
    }
}

async fn report(AxState(shared): AxState<Arc<Shared>>, Json(r): Json<Report>) -> Response {
    match shared.deliver(r) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(why) => refused(why),
    }
}

/// `0, 2` — the segments of `0..count` for which `has` is false.
fn missing(count: u32, has: impl Fn(u32) -> bool) -> String {
    (0..count)
        .filter(|&i| !has(i))
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Server {
    /// Listens on `port` on all interfaces (the other segments connect from their own hosts).
    pub async fn bind(
        port: u16,
        count: u32,
        fingerprint: String,
        run_id: String,
        seed: u64,
    ) -> Result<Server, CoordError> {
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .map_err(|e| CoordError::Bind { port, source: e })?;
        let addr = listener
            .local_addr()
            .map_err(|e| CoordError::Bind { port, source: e })?;
        let shared = Arc::new(Shared::new(count, fingerprint, run_id, seed));
        let app = Router::new()
            .route(protocol::REGISTER, post(register))
            .route(protocol::REPORT, post(report))
            .route(protocol::LIVE, post(live))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                eprintln!("trafficgen: coordinator: server stopped: {e}");
            }
        });
        Ok(Server {
            shared,
            stop: Some(stop),
            task,
            addr,
        })
    }

    pub fn handle(&self) -> Handle {
        Handle(self.shared.clone())
    }

    /// Segment 0's own registration, through the same checks as the others'.
    pub fn register_self(&self, r: &Register) -> Result<(), CoordError> {
        self.shared
            .register(r)
            .map(|_| ())
            .map_err(CoordError::Refused)
    }

    /// Waits until every segment registered (the start is then announced), or fails after
    /// `timeout` naming the segments that never came.
    pub async fn wait_start(&self, timeout: Duration) -> Result<Start, CoordError> {
        let deadline = Instant::now() + timeout;
        let mut rx = self.shared.changed.subscribe();
        loop {
            {
                let s = self.shared.lock();
                if let Some(start) = &s.start {
                    return Ok(start.clone());
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                let s = self.shared.lock();
                let refused = if s.refused.is_empty() {
                    String::new()
                } else {
                    let mut r: Vec<&String> = s.refused.iter().collect();
                    r.dedup();
                    format!(
                        "; refused: {}",
                        r.iter().map(|x| x.as_str()).collect::<Vec<_>>().join("; ")
                    )
                };
                return Err(CoordError::Missing(format!(
                    "segment(s) {} of {} never registered with the coordinator within {:?}{refused}",
                    missing(s.count, |i| s.registered.contains_key(&i)),
                    s.count,
                    timeout
                )));
            }
        }
    }

    /// Adds segment 0's own report and waits for every other segment's, for at most `timeout`.
    /// The reports in segment order.
    pub async fn gather(&self, own: Report, timeout: Duration) -> Result<Vec<Report>, CoordError> {
        self.shared.deliver(own).map_err(CoordError::Refused)?;
        let deadline = Instant::now() + timeout;
        let mut rx = self.shared.changed.subscribe();
        loop {
            {
                let mut s = self.shared.lock();
                if s.reports.len() == s.count as usize {
                    return Ok(std::mem::take(&mut s.reports).into_values().collect());
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                let s = self.shared.lock();
                let have: BTreeSet<u32> = s.reports.keys().copied().collect();
                return Err(CoordError::Missing(format!(
                    "segment(s) {} of {} never delivered their report within {:?} after the coordinator's load ended",
                    missing(s.count, |i| have.contains(&i)),
                    s.count,
                    timeout
                )));
            }
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(index: u32, count: u32, fp: &str, token: &str) -> Register {
        Register {
            index,
            count,
            fingerprint: fp.into(),
            token: token.into(),
        }
    }

    #[test]
    fn registrations_are_checked_and_the_start_comes_once_all_are_in() {
        let s = Shared::new(2, "fp".into(), "run".into(), 7);
        let joined = s.register(&reg(0, 2, "fp", "a")).unwrap();
        assert!(joined.start.is_none(), "1 of 2 registered");
        let e = s.register(&reg(1, 3, "fp", "b")).unwrap_err();
        assert!(e.contains("does not belong"), "{e}");
        let e = s.register(&reg(1, 2, "other", "b")).unwrap_err();
        assert!(e.contains("differs"), "{e}");
        let e = s.register(&reg(2, 2, "fp", "b")).unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        let start = s.register(&reg(1, 2, "fp", "b")).unwrap().start.unwrap();
        assert_eq!((start.run_id.as_str(), start.seed), ("run", 7));
        let now = protocol::unix_ms(SystemTime::now());
        assert!(start.start_unix_ms > now && start.start_unix_ms <= now + 2_000);
        // A segment's next poll gets the same start; another process claiming index 1 does not.
        let again = s.register(&reg(1, 2, "fp", "b")).unwrap().start.unwrap();
        assert_eq!(again, start);
        let e = s.register(&reg(1, 2, "fp", "c")).unwrap_err();
        assert!(e.contains("another process"), "{e}");
        assert_eq!(s.lock().refused.len(), 4);
    }

    #[test]
    fn live_ticks_are_judged_once_every_segment_sent_them() {
        let s = Arc::new(Shared::new(3, "fp".into(), "run".into(), 7));
        let h = Handle(s.clone());
        let snap = |index, elapsed_ms| LiveSnapshot {
            index,
            run_id: "run".into(),
            elapsed_ms,
            ops: vec![],
            in_flight: 0,
            vus: 0,
            achieved_rate: 0.0,
            target_rate: 0.0,
        };
        for (i, t) in [(1, 250), (1, 500), (2, 250)] {
            s.lock().live.entry(i).or_default().push_back(snap(i, t));
        }
        assert_eq!(h.live_at(250).map(|v| v.len()), Some(2));
        assert!(
            h.live_at(500).is_none(),
            "segment 2 has not sent 500 ms yet"
        );
        h.stop("first");
        h.stop("second");
        assert_eq!(s.lock().stop.as_deref(), Some("first"));
    }
}
