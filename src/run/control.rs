//! The control API's run-time side. The dashboard forwards each request (`sinks::control`);
//! the run loop hands it here between two ticks: a new rate or VU count and pause/resume go
//! to the workers through the steering channel (`scheduler::steer`), fault windows to the
//! target's fault API, annotations nowhere but the record. Every applied action becomes an
//! `Event::Control` for the sinks (the report's `control` list, the metrics) and the answer.
//!
//! Fault API calls run on a task of their own, so a slow target never holds up the run loop;
//! their outcome comes back through `next` and is recorded when it is known.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::executor::Shared;
use crate::faults::HeaderFaults;
use crate::faults::live::LiveWindows;
use crate::plan::{LoadModel, Plan};
use crate::report::ControlEvent;
use crate::scheduler::steer::{self, LoadOverride, Steering};
use crate::sinks::control::{Action, Refusal, Reply, Request};
use crate::sinks::{Event, Sink};
use crate::target::Target;

/// Control calls to the fault API must not hang the run's end.
const API_TIMEOUT: Duration = Duration::from_secs(10);
/// An ad-hoc fault window's length when the request names none.
const DEFAULT_FAULT_SECS: f64 = 60.0;

mod fault_windows;
use fault_windows::delete_rules;

/// What `next` yields: a new request, or a fault API call's outcome.
pub enum Msg {
    Request(Request),
    Done(Done),
}

/// A fault API call finished.
pub enum Done {
    Opened {
        id: String,
        rules: Vec<String>,
        values: Map<String, Value>,
        who: String,
        reply: oneshot::Sender<Reply>,
    },
    Closed {
        values: Map<String, Value>,
        who: String,
        reply: oneshot::Sender<Reply>,
        errors: Vec<String>,
    },
    Failed {
        reply: oneshot::Sender<Reply>,
        refusal: Refusal,
    },
}

/// A fault window the control API opened and has not closed.
struct OpenFault {
    id: String,
    /// The fault API's rule ids (server-side); empty for a header window.
    rules: Vec<String>,
    values: Map<String, Value>,
    header: bool,
}

pub struct Controller {
    requests: Option<mpsc::Receiver<Request>>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    steer: watch::Sender<LoadOverride>,
    steering: Steering,
    plan: Plan,
    start: Instant,
    started_at: SystemTime,
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    open: Vec<OpenFault>,
    next_id: u64,
    /// Header windows the control API opens (the workers' `HeaderFaults` consult them).
    live: Option<Arc<LiveWindows>>,
}

impl Controller {
    /// Takes the control requests of the first sink that serves them (none: every call is a
    /// no-op and the workers' steering stays empty). `start` is the load's time 0.
    pub fn new(
        plan: &Plan,
        target: &Target,
        start: Instant,
        sinks: &mut [Box<dyn Sink>],
    ) -> Controller {
        let requests = sinks.iter_mut().find_map(|s| s.control_requests());
        let control = requests.is_some();
        let (steer, steering) = Steering::channel();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let started_at = SystemTime::now()
            .checked_add(start.saturating_duration_since(Instant::now()))
            .unwrap_or_else(SystemTime::now);
        Controller {
            steering: if requests.is_some() {
                steering
            } else {
                Steering::none()
            },
            requests,
            done_tx,
            done_rx,
            steer,
            plan: plan.clone(),
            start,
            started_at,
            client: reqwest::Client::builder()
                .timeout(API_TIMEOUT)
                .build()
                .unwrap_or_default(),
            base: target.url.trim_end_matches('/').to_string(),
            token: target.fault_token.clone(),
            open: Vec::new(),
            next_id: 1,
            live: control.then(|| Arc::new(LiveWindows::new(plan))),
        }
    }

    /// The plan's header faults plus the windows this control API may open.
    pub fn header_faults(&self, faults: HeaderFaults) -> HeaderFaults {
        match &self.live {
            Some(l) => faults.with_live(l.clone()),
            None => faults,
        }
    }

    /// Gives the workers their end of the steering channel.
    pub fn attach(&self, mut shared: Shared) -> Shared {
        shared.steering = self.steering.clone();
        shared
    }

    /// The planned rate of this process at `elapsed`, as the control API left it.
    pub fn target_rate(&self, elapsed: Duration) -> f64 {
        let o = *self.steer.borrow();
        match &self.plan.load {
            LoadModel::Open {
                start_rate, stages, ..
            } if o != LoadOverride::PLAN => steer::rate_now(
                *start_rate,
                stages,
                self.plan.segment.count as f64,
                &o,
                elapsed.as_secs_f64(),
            ),
            LoadModel::Closed { .. } if o.paused => 0.0,
            _ => super::target_rate(&self.plan, elapsed),
        }
    }

    /// The next request or fault API outcome; never resolves without a control API.
    pub async fn next(&mut self) -> Msg {
        loop {
            tokio::select! {
                Some(d) = self.done_rx.recv() => return Msg::Done(d),
                r = recv(&mut self.requests) => match r {
                    Some(r) => return Msg::Request(r),
                    // The dashboard went away: only fault outcomes can still come.
                    None => self.requests = None,
                },
            }
        }
    }

    /// Applies `msg`; applied actions go to `sinks` as `Event::Control`.
    pub fn handle(&mut self, msg: Msg, sinks: &mut [Box<dyn Sink>]) {
        match msg {
            Msg::Request(Request {
                action: Action::Status,
                reply,
                ..
            }) => {
                let _ = reply.send(Ok(self.state()));
            }
            Msg::Request(Request { action, who, reply }) => {
                // `None`: sent to the fault API; recorded and answered on `Done`.
                if let Some((reply, answer)) = self.apply(action, &who, reply) {
                    let answer = answer.map(|(action, values)| {
                        let event = self.record(action, values, who);
                        emit(sinks, &event);
                        json!({"ok": true, "event": event, "state": self.state()})
                    });
                    let _ = reply.send(answer);
                }
            }
            Msg::Done(d) => self.done(d, sinks),
        }
    }

    /// Applies an action now (`Some`: the reply and what to record or why not) or hands it to
    /// a fault API task (`None`).
    #[allow(clippy::type_complexity)]
    fn apply(
        &mut self,
        action: Action,
        who: &str,
        reply: oneshot::Sender<Reply>,
    ) -> Option<(
        oneshot::Sender<Reply>,
        Result<(&'static str, Map<String, Value>), Refusal>,
    )> {
        let name = action.name();
        let open = matches!(self.plan.load, LoadModel::Open { .. });
        let conflict = |m: &str| Err(Refusal::new(409, m));
        let result = match action {
            Action::Status => Ok(Map::new()),
            Action::Rate { .. } if !open => {
                conflict("this run is a closed model (virtual users): change `vus`, not `rate`")
            }
            Action::Vus { .. } if open => {
                conflict("this run is an open model (arrival rate): change `rate`, not `vus`")
            }
            Action::Rate { rate } => {
                let before = self.target_rate(self.elapsed());
                self.change(|o| o.rate = rate);
                Ok(values(json!({"rate": rate, "previous": before})))
            }
            Action::Vus { vus } => {
                let before = self.steer.borrow().vus;
                self.change(|o| o.vus = vus);
                Ok(values(json!({"vus": vus, "previous": before})))
            }
            Action::Pause if self.steer.borrow().paused => conflict("the load is paused already"),
            Action::Resume if !self.steer.borrow().paused => conflict("the load is not paused"),
            Action::Pause | Action::Resume => {
                let paused = matches!(action, Action::Pause);
                self.change(|o| o.paused = paused);
                Ok(values(json!({ "paused": paused })))
            }
            Action::Annotate { text } => Ok(values(json!({ "text": text }))),
            Action::FaultOpen(spec) if self.is_header(&spec) => self.open_header(&spec),
            Action::FaultOpen(spec) => match self.rules_for(&spec) {
                Ok((rules, vals)) => {
                    self.open_fault(rules, vals, who.to_string(), reply);
                    return None;
                }
                Err(r) => Err(r),
            },
            Action::FaultClose { id } => match self.open.iter().position(|f| f.id == id) {
                Some(i) if self.open[i].header => {
                    self.open.remove(i);
                    if let Some(l) = &self.live {
                        l.close(&id, self.elapsed());
                    }
                    Ok(values(json!({"id": id, "via": "header"})))
                }
                Some(i) => {
                    let f = self.open.remove(i);
                    self.close_fault(f, who.to_string(), reply);
                    return None;
                }
                None => Err(Refusal::new(
                    404,
                    format!("no open control fault window `{id}`"),
                )),
            },
        };
        Some((reply, result.map(|v| (name, v))))
    }

    fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    /// A new steering state from now on.
    fn change(&mut self, f: impl FnOnce(&mut LoadOverride)) {
        let at = self.elapsed();
        self.steer.send_modify(|o| {
            f(o);
            o.version += 1;
            o.at = at;
        });
    }

    fn record(&self, action: &str, values: Map<String, Value>, who: String) -> ControlEvent {
        let t = self.elapsed();
        let at = self
            .started_at
            .checked_add(t)
            .unwrap_or_else(SystemTime::now);
        ControlEvent {
            t_s: (t.as_secs_f64() * 1000.0).round() / 1000.0,
            at: time::OffsetDateTime::from(at)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            action: action.to_string(),
            values,
            who,
        }
    }

    /// What `GET /control` answers.
    fn state(&self) -> Value {
        let o = *self.steer.borrow();
        let t = self.elapsed();
        json!({
            "model": if matches!(self.plan.load, LoadModel::Open { .. }) { "open" } else { "closed" },
            "t_s": t.as_secs_f64(),
            "paused": o.paused,
            "rate": o.rate,
            "vus": o.vus,
            "target_rate": self.target_rate(t),
            "open_faults": self.open.iter().map(|f| Value::Object(f.values.clone())).collect::<Vec<_>>(),
        })
    }

    fn done(&mut self, d: Done, sinks: &mut [Box<dyn Sink>]) {
        match d {
            Done::Opened {
                id,
                rules,
                values,
                who,
                reply,
            } => {
                let event = self.record("fault_open", values.clone(), who);
                self.open.push(OpenFault {
                    id,
                    rules,
                    values,
                    header: false,
                });
                emit(sinks, &event);
                let _ = reply.send(Ok(
                    json!({"ok": true, "event": event, "state": self.state()}),
                ));
            }
            Done::Closed {
                values,
                who,
                reply,
                errors,
            } => {
                let event = self.record("fault_close", values, who);
                emit(sinks, &event);
                let _ = reply.send(Ok(json!({
                    "ok": errors.is_empty(), "event": event, "errors": errors, "state": self.state(),
                })));
            }
            Done::Failed { reply, refusal } => {
                let _ = reply.send(Err(refusal));
            }
        }
    }

    /// At the end of the load: removes the rules of windows still open (they would expire by
    /// themselves; a later run must not meet them). Problems come back as text.
    pub async fn finish(self) -> Vec<String> {
        let mut errors = Vec::new();
        for f in &self.open {
            errors.extend(
                delete_rules(&self.client, &self.base, self.token.as_deref(), &f.rules).await,
            );
        }
        errors
    }
}

async fn recv(r: &mut Option<mpsc::Receiver<Request>>) -> Option<Request> {
    match r {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

fn values(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn emit(sinks: &mut [Box<dyn Sink>], event: &ControlEvent) {
    // One stderr line per action, so the run's log (and Loki, in a cluster) shows it too.
    let values: Vec<String> = event
        .values
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    eprintln!(
        "trafficgen: control at {:.1}s: {} {} (by {})",
        event.t_s,
        event.action,
        values.join(" "),
        event.who
    );
    let e = Event::Control(event.clone());
    for s in sinks.iter_mut() {
        s.on_event(&e);
    }
}
