//! The live dashboard (`--dashboard ADDR`): the HTML report's page served during the run, its
//! charts fed one point per second over Server-Sent Events. `GET /` is the page with the
//! points so far (a reload loses nothing), `GET /events` the stream: one `point` event per
//! new second (the same columns `report::html::charts` computes) with the fault windows that
//! have started. Off unless asked; beyond loopback a token is required (`?token=` or
//! `Authorization: Bearer`). The failing windows of windowed thresholds are hatched as they
//! fail (as the HTML report hatches its worst one).
//!
//! Beside it, the control API (docs/control.md): `GET /control` is the load's state, `POST
//! /control` with a JSON body (`Content-Type: application/json`, which a cross-site form
//! cannot send without a preflight this server refuses) changes the rate or the VUs, pauses,
//! resumes, opens or closes a fault window, or adds an annotation. The same token rule holds.
//! Requests go to the run loop (`run::control`), which applies and answers them; every
//! applied action comes back as `Event::Control`, is pushed to the page (`control` events)
//! and lands in the report's `control` list.
//!
//! `on_interval` only folds the snapshot into a `Timeline` and hands a small JSON line to a
//! broadcast channel: the HTTP server runs on a task of its own and never blocks the run.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::control::{self, Action, Request};
use super::{Control, Event, Finish, Sink};
use crate::plan::Plan;
use crate::recorder::Snapshot;
use crate::report::html::{self, charts};
use crate::report::{ControlEvent, FaultReport, Report, ThresholdResult, Timeline};
use crate::verdict::Live;

/// What the server shares with the sink.
struct Shared {
    /// The report so far: scenario, run id, timeline points, started fault windows, failing
    /// threshold windows, control actions.
    report: Mutex<Report>,
    /// (SSE event name, data): `point` per new second, `control` per applied action.
    tx: broadcast::Sender<(&'static str, String)>,
    token: Option<String>,
    /// To the run loop (`run::control`).
    control: mpsc::Sender<Request>,
    /// `open` or `closed`: which control the page offers.
    model: &'static str,
}

pub struct Dashboard {
    shared: Arc<Shared>,
    timeline: Timeline,
    faults: Vec<FaultReport>,
    sent: usize,
    server: Option<tokio::task::JoinHandle<()>>,
    requests: Option<mpsc::Receiver<Request>>,
    /// Live threshold state (its own: sinks share nothing) for the failing windows.
    live: Live,
    /// Per threshold, the time ranges its windows failed in, merged.
    failing: Vec<Vec<(f64, f64)>>,
    control: Vec<ControlEvent>,
}

/// How long a control request may wait for the run loop (it answers between two ticks).
const CONTROL_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

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
    Html(html::render_live(&report, &events, &control_section(&s))).into_response()
}

/// The page's control form (drawn by page.js from `window.trafficgenControl`).
fn control_section(s: &Shared) -> String {
    let events = s.report.lock().expect("dashboard state").control.clone();
    let config = serde_json::json!({
        "url": "control",
        "token": s.token,
        "model": s.model,
        "events": events,
    });
    let unit = if s.model == "open" {
        "rate (per second)"
    } else {
        "virtual users"
    };
    format!(
        "<script>window.trafficgenControl = {};</script>\n\
         <section id=\"control\"><h2>Control</h2><form id=\"control-form\">\
         <label>{unit} <input id=\"control-value\" type=\"number\" min=\"0\" step=\"any\" \
         required></label> <button type=\"submit\">Apply</button> \
         <button type=\"button\" id=\"control-pause\">Pause</button> \
         <button type=\"button\" id=\"control-resume\">Resume</button> \
         <input id=\"control-note\" placeholder=\"annotation\" maxlength=\"500\"> \
         <button type=\"button\" id=\"control-annotate\">Annotate</button></form>\
         <p class=\"note\" id=\"control-status\">Changes apply from now until the end of the \
         planned load (or the next change).</p><p id=\"control-now\"></p><ol id=\"control-events\"></ol></section>\n",
        serde_json::to_string(&config)
            .unwrap_or_default()
            .replace('<', "\\u003c")
    )
}

/// A JSON error answer.
fn refuse(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (code, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Hands `action` to the run loop and answers with what it says.
async fn ask(s: &Shared, action: Action, who: String) -> Response {
    let (reply, answer) = oneshot::channel();
    if let Err(e) = s.control.try_send(Request { action, who, reply }) {
        return match e {
            mpsc::error::TrySendError::Full(_) => refuse(503, "busy: too many control requests"),
            mpsc::error::TrySendError::Closed(_) => refuse(503, "the run is over"),
        };
    }
    match tokio::time::timeout(CONTROL_WAIT, answer).await {
        Ok(Ok(Ok(v))) => axum::Json(v).into_response(),
        Ok(Ok(Err(r))) => refuse(r.status, &r.message),
        Ok(Err(_)) => refuse(503, "the run is over"),
        Err(_) => refuse(504, "the run did not answer in time"),
    }
}

/// Without a token the server listens on loopback only, but a web page can still reach it
/// through a name that resolves to 127.0.0.1 (DNS rebinding): the control API then only
/// answers requests addressed to a loopback address or `localhost`.
fn loopback_host(s: &Shared, headers: &HeaderMap) -> bool {
    if s.token.is_some() {
        return true;
    }
    let Some(host) = headers.get("host").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // `127.0.0.1:8089`, `[::1]:8089`, `localhost:8089` (the port is not checked).
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The checks every control request passes first: the token, then the host.
fn control_refusal(
    s: &Shared,
    q: &Query<Vec<(String, String)>>,
    headers: &HeaderMap,
) -> Option<Response> {
    if !authorized(s, q, headers) {
        return Some(refuse(401, "token required"));
    }
    if !loopback_host(s, headers) {
        return Some(refuse(
            403,
            "without a token the control API answers only requests to a loopback address or localhost",
        ));
    }
    None
}

async fn control_state(
    State(s): State<Arc<Shared>>,
    q: Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = control_refusal(&s, &q, &headers) {
        return r;
    }
    ask(&s, Action::Status, String::new()).await
}

async fn control_post(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    q: Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = control_refusal(&s, &q, &headers) {
        return r;
    }
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return refuse(415, "send the body as Content-Type: application/json");
    }
    match control::parse(&body) {
        Ok((action, who)) => ask(&s, action, who.unwrap_or_else(|| peer.ip().to_string())).await,
        Err(r) => refuse(r.status, &r.message),
    }
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
                Ok((name, data)) => {
                    let e = SseEvent::default().event(name).data(data);
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
        let (control, requests) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            report: Mutex::new(report),
            tx,
            token,
            control,
            model: match plan.load {
                crate::plan::LoadModel::Open { .. } => "open",
                crate::plan::LoadModel::Closed { .. } => "closed",
            },
        });
        let app = Router::new()
            .route("/", get(page))
            .route("/events", get(events))
            .route("/control", get(control_state).post(control_post))
            .with_state(shared.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
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
            requests: Some(requests),
            live: Live::new(plan),
            failing: vec![Vec::new(); plan.thresholds.len()],
            control: Vec::new(),
        })
    }

    /// Folds the thresholds' latest failing windows into `failing` (overlapping ones merge).
    fn observe_thresholds(&mut self, snapshot: &Snapshot) {
        self.live.observe(snapshot);
        for (i, a, b) in self.live.failing_now() {
            let (a, b) = (a.as_secs_f64(), b.as_secs_f64());
            let Some(ranges) = self.failing.get_mut(i) else {
                continue;
            };
            match ranges.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => ranges.push((a, b)),
            }
        }
    }

    /// The failing ranges as threshold results (what the report's charts hatch).
    fn failing_results(&self) -> Vec<ThresholdResult> {
        let mut out = Vec::new();
        for (t, ranges) in self.live_thresholds().zip(&self.failing) {
            for &(a, b) in ranges {
                out.push(ThresholdResult {
                    source: t.to_string(),
                    passed: false,
                    observed: None,
                    message: format!("failed in the window {a:.1}s–{b:.1}s (live)"),
                    window: Some([a, b]),
                });
            }
        }
        out
    }

    fn live_thresholds(&self) -> impl Iterator<Item = &str> {
        self.live.sources()
    }

    /// A control-opened fault window as a band (open until closed, or for its duration).
    fn control_faults(&self, now_s: f64) -> Vec<FaultReport> {
        let mut out: Vec<FaultReport> = Vec::new();
        for e in &self.control {
            let id = e.values.get("id").and_then(|v| v.as_str());
            match e.action.as_str() {
                "fault_open" => {
                    let d = e
                        .values
                        .get("duration_s")
                        .and_then(|v| v.as_f64())
                        .unwrap_or(0.0);
                    let text =
                        |k: &str| e.values.get(k).and_then(|v| v.as_str()).map(str::to_string);
                    out.push(FaultReport {
                        start_s: e.t_s,
                        end_s: (e.t_s + d).min(now_s),
                        kind: text("kind").unwrap_or_else(|| "error".into()),
                        via: format!("control {}", id.unwrap_or("?")),
                        ops: Vec::new(),
                        route: text("route"),
                        share: e
                            .values
                            .get("share")
                            .and_then(|v| v.as_f64())
                            .unwrap_or(1.0),
                        injected: None,
                        failed: None,
                    });
                }
                "fault_close" => {
                    let via = format!("control {}", id.unwrap_or("?"));
                    if let Some(f) = out.iter_mut().find(|f| f.via == via) {
                        f.end_s = f.end_s.min(e.t_s);
                    }
                }
                _ => {}
            }
        }
        out
    }
}

impl Sink for Dashboard {
    fn on_interval(&mut self, snapshot: &Snapshot, _control: &mut Control) {
        self.timeline.observe(snapshot);
        self.observe_thresholds(snapshot);
        if self.timeline.points.len() == self.sent {
            return;
        }
        let now_s = snapshot.elapsed.as_secs_f64();
        let mut faults = started_faults(&self.faults, now_s);
        faults.extend(self.control_faults(now_s));
        let thresholds = self.failing_results();
        let new_points = self.timeline.points[self.sent..].to_vec();
        self.sent = self.timeline.points.len();
        let mut state = self.shared.report.lock().expect("dashboard state");
        state.timeline.extend(new_points.iter().cloned());
        state.faults = faults.clone();
        state.thresholds = thresholds.clone();
        state.duration_s = now_s;
        drop(state);
        // The new seconds' columns, computed like the report's, plus the windows so far.
        let part = Report {
            timeline: new_points,
            faults,
            thresholds,
            ..Report::default()
        };
        let data = charts::chart_data_with(&part, true);
        if let Ok(json) = serde_json::to_string(&data) {
            // No receiver (nobody watching) is fine.
            let _ = self.shared.tx.send(("point", json));
        }
    }

    fn on_event(&mut self, event: &Event) {
        let Event::Control(e) = event else {
            return;
        };
        self.control.push(e.clone());
        self.shared
            .report
            .lock()
            .expect("dashboard state")
            .control
            .push(e.clone());
        if let Ok(json) = serde_json::to_string(e) {
            let _ = self.shared.tx.send(("control", json));
        }
    }

    fn complete(&mut self, report: &mut Report) {
        report.control = self.control.clone();
    }

    fn control_requests(&mut self) -> Option<mpsc::Receiver<Request>> {
        self.requests.take()
    }

    fn finish<'a>(&'a mut self, _report: &'a Report) -> Finish<'a> {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        Box::pin(async { Vec::new() })
    }
}
