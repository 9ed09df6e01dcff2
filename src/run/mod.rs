//! The run loop: one resolved plan against one ready target. Starts the workers and the
//! server-side fault timeline, merges the workers' recorder deltas, and at every interval hands
//! the merged snapshot to the sinks; stops on SIGINT/SIGTERM, on a sink's request (an
//! `abort_on_fail` threshold) or when the workers are done; then judges the run (`finish`).
//!
//! It knows no sink by name: outputs are added in `sinks::for_run`, never here.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::executor::{self, Common, Control as WorkerControl, Shared};
use crate::faults::{self, HeaderFaults, ServerFaults};
use crate::plan::{LoadModel, Plan};
use crate::recorder::{Collector, Snapshot, SpanRecord};
use crate::report::RunMeta;
use crate::scheduler;
use crate::sinks::{Control, Event, Sink};
use crate::target::Target;
use crate::verdict::RunEnd;

mod control;
mod finish;
mod health;
mod intervals;

pub use finish::{collect, finish, judge};

/// Where sampled client spans go (from the telemetry, before it becomes a sink).
pub struct SpanHook {
    pub sender: Option<mpsc::Sender<SpanRecord>>,
    pub sample_ratio: f64,
}

/// What the load left for judging.
pub struct Loaded {
    pub last: Snapshot,
    pub meta: RunMeta,
    pub end: RunEnd,
    /// Problems of the server-side fault timeline, for stderr.
    pub fault_messages: Vec<String>,
    /// The target's fault counter over the load (when it has one and the plan has windows).
    pub target_faults: Option<faults::Measured>,
    /// `mix.cleanup`'s result (None: no cleanup asked for, or interrupted).
    pub cleanup: Option<executor::Cleanup>,
    /// Server-side fault windows that could not be applied: (index into `plan.faults`, why).
    pub failed_faults: Vec<(usize, String)>,
    /// Why the generator could not keep its schedule (`health::Health`), if it could not.
    pub schedule_missed: Option<String>,
}

/// Drives the plan's load against `target` and feeds `sinks`. `shutdown` resolves on the
/// first SIGINT/SIGTERM. The load starts at `start` (a distributed run's segments get one
/// common start from the coordinator; `None` = now).
#[allow(clippy::too_many_arguments)]
pub async fn load(
    plan: &Plan,
    target: &Target,
    run_id: &str,
    start: Option<Instant>,
    workers: usize,
    spans: SpanHook,
    sinks: &mut [Box<dyn Sink>],
    mut shutdown: Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<Loaded> {
    let addrs = target.resolve().await?;
    let common = Common::new(&target.base, &plan.target.headers, run_id);
    // The target's fault counter before any request: server-side faults are its change.
    // Segment 0 alone reads it (it alone sets server rules); in a distributed run the others
    // start at the announced instant, so a reading finished after it is not a "before".
    let fault_counter = if plan.segment.index == 0 {
        faults::read_counter(plan, &target.url)
            .await
            .filter(|_| start.is_none_or(|s| Instant::now() < s))
    } else {
        None
    };
    // Never in the past: a late start announcement starts at once (and the report says when).
    // 100 ms: time for the worker threads to start and connect on a busy machine, so the
    // first arrivals are not released late (which the health check would count).
    // An announced start (distributed run) is kept unless it is already (nearly) past.
    let now = Instant::now();
    let start = start.map_or(now + Duration::from_millis(100), |s| {
        s.max(now + Duration::from_millis(20))
    });
    let mut controller = control::Controller::new(plan, target, start, sinks);
    let shared = Arc::new(controller.attach(Shared::new(
        plan.clone(),
        addrs,
        common,
        controller.header_faults(HeaderFaults::new(plan)),
        spans.sender,
        spans.sample_ratio,
        workers,
        start,
    )?));
    // Server-side rules change the target for everyone: in a distributed run segment 0 alone
    // posts them, once, for the whole load (each segment posting would compound the shares).
    let server_faults = (plan.segment.index == 0).then(|| {
        let mut f =
            ServerFaults::spawn(plan, target.url.clone(), target.fault_token.clone(), start);
        f.set_before(fault_counter);
        f
    });
    let (ctl, ctl_rx) = watch::channel(WorkerControl::Run);
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let ws = executor::start(shared.clone(), dtx, ctl_rx).context("starting workers")?;
    // The wall-clock time of `start` (the load's time 0), so that segments' reports line up.
    let started_at = SystemTime::now()
        .checked_add(start.saturating_duration_since(Instant::now()))
        .unwrap_or_else(SystemTime::now);
    let names: Vec<String> = plan.mix.operations.iter().map(|o| o.name.clone()).collect();
    let mut collector =
        Collector::new(names, workers, plan.output.keep_traces).with_steps(plan.mix.flow_steps());
    let mut control = Control::default();
    let interval = plan.output.interval.max(Duration::from_millis(10));
    // Tick a little after the workers' flushes so each snapshot holds the whole interval.
    let offset = (interval / 10).min(Duration::from_millis(50));
    let mut n = 1u32;
    // After the last arrival (or the first stop) the queued and in-flight arrivals get this
    // long; then the workers abandon (and count) what is left.
    let drain = plan.drain();
    let far = Duration::from_secs(86_400 * 365);
    let mut abort_at = start
        .checked_add(plan.load.duration().saturating_add(drain))
        .unwrap_or_else(|| start + far);
    let (mut interrupted, mut aborted, mut abort_sent) = (false, None::<String>, false);
    let mut failed_faults: Vec<(usize, String)> = Vec::new();
    let mut active: Vec<usize> = Vec::new();
    let mut health = health::Health::default();
    // Armed by the first signal: a second one stops at once.
    let mut second: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = None;
    let mut intervals = intervals::Intervals::new(workers);
    // The tick of interval `n` passed: its snapshot waits (until then) for late workers.
    let mut due: Option<Instant> = None;
    loop {
        let tick = interval
            .checked_mul(n)
            .and_then(|d| start.checked_add(d + offset))
            .unwrap_or_else(|| start + far);
        tokio::select! {
            biased;
            d = drx.recv() => match d {
                Some(d) => {
                    if let Some(d) = intervals.arrive(d, &mut collector) {
                        recycle(&ws, d);
                    }
                }
                None => break,
            },
            _ = &mut shutdown, if !interrupted => {
                interrupted = true;
                second = Some(next_signal());
                let _ = ctl.send(WorkerControl::Stop);
                abort_at = abort_at.min(Instant::now().checked_add(drain).unwrap_or(abort_at));
                emit(sinks, &Event::Stopping("interrupted (SIGINT/SIGTERM)".into()));
            }
            _ = async { match second.as_mut() {
                Some(f) => f.await,
                None => std::future::pending().await,
            } }, if !abort_sent => {
                // The second signal: what is queued or in flight is abandoned (and counted) now.
                abort_sent = true;
                second = None;
                let _ = ctl.send(WorkerControl::Abort);
                eprintln!("trafficgen: second signal: stopping now, abandoning the requests in flight");
            }
            // The control API (next to the dashboard): applied between two ticks.
            m = controller.next() => controller.handle(m, sinks),
            _ = sleep_until(tick), if due.is_none() => {
                due = Some(Instant::now() + intervals::WAIT);
            }
            _ = sleep_until(due.unwrap_or(tick)), if due.is_some() => {}
            _ = sleep_until(abort_at), if !abort_sent => {
                abort_sent = true;
                let _ = ctl.send(WorkerControl::Abort);
            }
        }
        if let Some(deadline) = due
            && (intervals.complete() || Instant::now() >= deadline)
        {
            due = None;
            let elapsed = interval * n;
            n = n.saturating_add(1);
            failed_fault_events(sinks, server_faults.as_ref(), &mut failed_faults);
            // A window that could not be applied is not active (gauge, timeline, events).
            let mut now_active = faults::active_windows(&plan.faults, elapsed);
            now_active.retain(|i| !failed_faults.iter().any(|(f, _)| f == i));
            fault_events(sinks, &active, &now_active);
            active = now_active.clone();
            let snap =
                collector.snapshot(elapsed, controller.target_rate(elapsed), now_active, false);
            if let Some(m) = health.observe(&snap, false) {
                eprintln!("trafficgen: {}", health::message(m));
            }
            for s in sinks.iter_mut() {
                s.on_interval(&snap, &mut control);
            }
            if let Some(reason) = control.take_abort()
                && aborted.is_none()
            {
                eprintln!("trafficgen: aborting: {reason}");
                emit(sinks, &Event::Stopping(reason.clone()));
                aborted = Some(reason);
                let _ = ctl.send(WorkerControl::Stop);
                abort_at = abort_at.min(Instant::now().checked_add(drain).unwrap_or(abort_at));
            }
            for d in intervals.advance(&mut collector) {
                recycle(&ws, d);
            }
        }
    }
    intervals.finish(&mut collector);
    let mut panicked = Vec::new();
    for (i, t) in ws.threads.into_iter().enumerate() {
        if let Ok(Err(_)) = tokio::task::spawn_blocking(move || t.join()).await {
            panicked.push(i);
        }
    }
    fault_events(sinks, &active, &[]);
    failed_fault_events(sinks, server_faults.as_ref(), &mut failed_faults);
    let elapsed = Instant::now().saturating_duration_since(start);
    let last = collector.snapshot(elapsed, 0.0, vec![], true);
    if let Some(m) = health.observe(&last, true) {
        eprintln!("trafficgen: {}", health::message(m));
    }
    for s in sinks.iter_mut() {
        s.on_interval(&last, &mut control);
    }
    let (mut fault_messages, target_faults) = match server_faults {
        Some(f) => f.stop_and_measure().await,
        None => (Vec::new(), None),
    };
    let cleanup = cleanup(plan, target, &shared, interrupted).await;
    fault_messages.extend(controller.finish().await);
    // Panics the workers caught themselves (a request's handling, a connection task).
    let caught = last.totals().panics;
    let end = if !panicked.is_empty() {
        RunEnd::GeneratorFailed(format!(
            "worker thread(s) {panicked:?} panicked; their requests are missing from the counts"
        ))
    } else if caught > 0 {
        RunEnd::GeneratorFailed(format!(
            "{caught} panic(s) in the generator while sending requests (counted as error `panic`)"
        ))
    } else if interrupted {
        RunEnd::Interrupted
    } else if let Some(reason) = &aborted {
        RunEnd::Aborted(reason.clone())
    } else {
        RunEnd::Completed
    };
    let meta = RunMeta {
        run_id: run_id.to_string(),
        started_at,
        ended_at: SystemTime::now(),
        interrupted,
        aborted,
        target_url: target.url.clone(),
    };
    Ok(Loaded {
        last,
        meta,
        end,
        fault_messages,
        target_faults,
        cleanup,
        failed_faults,
        schedule_missed: health.missed,
    })
}

/// Events for the server-side windows that failed since the last call (`seen` grows).
fn failed_fault_events(
    sinks: &mut [Box<dyn Sink>],
    server: Option<&ServerFaults>,
    seen: &mut Vec<(usize, String)>,
) {
    let Some(server) = server else { return };
    for (i, why) in server.failed_windows().into_iter().skip(seen.len()) {
        emit(sinks, &Event::FaultFailed(i, why.clone()));
        seen.push((i, why));
    }
}

/// `mix.cleanup`, after the last snapshot (its requests are in no count of the load); not
/// after an interrupt, which asked to stop now.
async fn cleanup(
    plan: &Plan,
    target: &Target,
    shared: &Shared,
    interrupted: bool,
) -> Option<executor::Cleanup> {
    let bound = plan.mix.cleanup?;
    let ids = shared.take_leftover();
    if interrupted {
        eprintln!(
            "trafficgen: cleanup skipped (interrupted): {} created todo(s) left on the target",
            ids.len()
        );
        return None;
    }
    let headers: Vec<(String, String)> = plan
        .target
        .headers
        .iter()
        .filter(|(_, v)| v.is_static())
        .map(|(k, v)| {
            let mut buf = Vec::new();
            v.render(&Default::default(), &mut rand::rng(), &mut buf);
            (k.clone(), String::from_utf8_lossy(&buf).into_owned())
        })
        .collect();
    let base = target.url.trim_end_matches('/');
    let timeout = plan.target.request_timeout.min(bound);
    let client = match crate::target::control_client(plan, target, timeout) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "trafficgen: cleanup not done ({e}): {} created todo(s) left on the target",
                ids.len()
            );
            return None;
        }
    };
    let c = executor::cleanup::delete_all(client, base, &headers, ids, bound).await;
    Some(c)
}

/// Resolves on the next SIGINT or SIGTERM after this call (the listeners are registered here,
/// before it returns, so a signal right after the first one is not lost).
fn next_signal() -> Pin<Box<dyn Future<Output = ()> + Send>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => Box::pin(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }),
            _ => Box::pin(std::future::pending()),
        }
    }
    #[cfg(not(unix))]
    Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Hands an absorbed delta back to its worker for reuse (a finished worker needs none).
fn recycle(ws: &executor::Workers, mut d: crate::recorder::WorkerRecorder) {
    if let Some(back) = ws.recycle.get(d.worker)
        && !d.finished
    {
        d.reset();
        let _ = back.send(d);
    }
}

fn emit(sinks: &mut [Box<dyn Sink>], event: &Event) {
    for s in sinks.iter_mut() {
        s.on_event(event);
    }
}

/// Events for the fault windows that opened or closed between two ticks.
fn fault_events(sinks: &mut [Box<dyn Sink>], before: &[usize], now: &[usize]) {
    for &i in now.iter().filter(|i| !before.contains(i)) {
        emit(sinks, &Event::FaultOpened(i));
    }
    for &i in before.iter().filter(|i| !now.contains(i)) {
        emit(sinks, &Event::FaultClosed(i));
    }
}

/// The planned request rate of this process at `elapsed`.
fn target_rate(plan: &Plan, elapsed: Duration) -> f64 {
    let share = plan.segment.count.max(1) as f64;
    match &plan.load {
        LoadModel::Open {
            start_rate, stages, ..
        } => scheduler::rate_at(*start_rate, stages, elapsed.as_secs_f64()) / share,
        LoadModel::Closed { max_rate, .. } => max_rate.map(|r| r / share).unwrap_or(0.0),
    }
}
