//! The live dashboard (`--dashboard ADDR`): the HTML report's page served during the run, its
//! charts fed one point per second over Server-Sent Events. `GET /` is the page with the
//! points so far (a reload loses nothing), `GET /events` the stream: one `point` event per
//! new second (the same columns `report::html::charts` computes) with the fault windows that
//! have started. Off unless asked; beyond loopback a token is required (`?token=` or
//! `Authorization: Bearer`). Read-only: run control is not part of it.
//!
//! `on_interval` only folds the snapshot into a `Timeline` and hands a small JSON line to a
//! broadcast channel: the HTTP server runs on a task of its own and never blocks the run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::broadcast;

use super::{Control, Finish, Sink};
use crate::plan::Plan;
use crate::recorder::Snapshot;
use crate::report::html::{self, charts};
use crate::report::{FaultReport, Report, Timeline};

/// What the server shares with the sink.
struct Shared {
    /// The report so far: scenario, run id, timeline points, started fault windows.
    report: Mutex<Report>,
    tx: broadcast::Sender<String>,
    token: Option<String>,
}

pub struct Dashboard {
    shared: Arc<Shared>,
    timeline: Timeline,
    faults: Vec<FaultReport>,
    sent: usize,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The plan's fault windows as they stand at `now_s` (started ones, end clamped to now).
fn started_faults(all: &[FaultReport], now_s: f64) -> Vec<FaultReport> {
    all.iter()
        .filter(|f| f.start_s <= now_s)
        .map(|f| FaultReport {
            end_s: f.end_s.min(now_s),
            ..f.clone()
        })
        .collect()
}

/// Percent-encoding of a query value (unreserved characters kept).
fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn authorized(shared: &Shared, query: &Query<Vec<(String, String)>>, headers: &HeaderMap) -> bool {
    let Some(token) = &shared.token else {
        return true;
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let param = query
        .0
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str());
    bearer == Some(token.as_str()) || param == Some(token.as_str())
}

async fn page(
    State(s): State<Arc<Shared>>,
    q: Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&s, &q, &headers) {
        return (StatusCode::UNAUTHORIZED, "token required\n").into_response();
    }
    let report = s.report.lock().expect("dashboard state").clone();
    // The token goes along to the event stream (EventSource cannot send headers).
    let events = match &s.token {
        Some(t) => format!("events?token={}", percent(t)),
        None => "events".to_string(),
    };
    Html(html::render_live(&report, &events)).into_response()
}

async fn events(
    State(s): State<Arc<Shared>>,
    q: Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&s, &q, &headers) {
        return (StatusCode::UNAUTHORIZED, "token required\n").into_response();
    }
    let rx = s.tx.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(data) => {
                    let e = SseEvent::default().event("point").data(data);
                    return Some((Ok::<_, Infallible>(e), rx));
                }
                // A slow client skips points rather than slowing anything down.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

impl Dashboard {
    /// Binds `addr` and serves the dashboard on a task of its own; the URL goes to stderr.
    pub fn start(plan: &Plan, addr: SocketAddr, token: Option<String>) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (tx, _) = broadcast::channel(64);
        let report = Report {
            scenario: plan.name.clone(),
            ..Report::default()
        };
        let shared = Arc::new(Shared {
            report: Mutex::new(report),
            tx,
            token,
        });
        let app = Router::new()
            .route("/", get(page))
            .route("/events", get(events))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        eprintln!("trafficgen: dashboard on http://{local}/");
        // Every window the plan has, as the report will list them (clamped as they start).
        let faults = plan
            .faults
            .iter()
            .map(|f| {
                let start_s = f.start.as_secs_f64();
                FaultReport {
                    start_s,
                    end_s: start_s + f.duration.as_secs_f64(),
                    kind: match f.kind {
                        crate::plan::FaultKind::Latency { .. } => "latency".into(),
                        crate::plan::FaultKind::Error { .. } => "error".into(),
                    },
                    via: match f.via {
                        crate::plan::FaultVia::Header => "header".into(),
                        crate::plan::FaultVia::Server => "server".into(),
                    },
                    ops: f.ops.clone(),
                    route: f.route.clone(),
                    share: f.share,
                    injected: None,
                    failed: None,
                }
            })
            .collect();
        Ok(Dashboard {
            shared,
            timeline: Timeline::new(plan),
            faults,
            sent: 0,
            server: Some(server),
        })
    }
}

impl Sink for Dashboard {
    fn on_interval(&mut self, snapshot: &Snapshot, _control: &mut Control) {
        self.timeline.observe(snapshot);
        if self.timeline.points.len() == self.sent {
            return;
        }
        let now_s = snapshot.elapsed.as_secs_f64();
        let faults = started_faults(&self.faults, now_s);
        let new_points = self.timeline.points[self.sent..].to_vec();
        self.sent = self.timeline.points.len();
        let mut state = self.shared.report.lock().expect("dashboard state");
        state.timeline.extend(new_points.iter().cloned());
        state.faults = faults.clone();
        state.duration_s = now_s;
        drop(state);
        // The new seconds' columns, computed like the report's, plus the windows so far.
        let part = Report {
            timeline: new_points,
            faults,
            ..Report::default()
        };
        let data = charts::chart_data_with(&part, true);
        if let Ok(json) = serde_json::to_string(&data) {
            // No receiver (nobody watching) is fine.
            let _ = self.shared.tx.send(json);
        }
    }

    fn finish<'a>(&'a mut self, _report: &'a Report) -> Finish<'a> {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        Box::pin(async { Vec::new() })
    }
}
