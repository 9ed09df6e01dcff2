//! A run as one process sees it: alone, or as one segment of a distributed run coordinated
//! without a shared volume (segment 0 coordinates: `server`; the others connect: `client`;
//! the messages: `protocol`). Also the outputs a process leaves last on every exit path of a
//! run: the compact summary file and the report log line (`summary`).
//!
//! Distributed run: every segment (0 included) registers (index, N, plan fingerprint); once all
//! N did, the coordinator announces one run id, one seed and one wall-clock start a couple of
//! seconds ahead; every segment starts its share then. Each segment delivers its final report;
//! the coordinator merges them (`verdict::merge_reports`), runs `verify` on the merged result,
//! writes the merged report and exits with the merged verdict. The other segments exit 0 once
//! they ran their share and delivered it: only the coordinator judges. During the load the
//! segments forward their interval snapshots, so the coordinator evaluates the thresholds
//! live across all segments (windows, `abort_on_fail`) and can tell every segment to stop
//! (`live`).

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::Instrument as _;

use crate::exit::Exit;
use crate::plan::{Plan, Segment};
use crate::report::{Report, VerdictState};
use crate::run::{self, SpanHook};
use crate::sinks;
use crate::target::{self, Embedded, Target};
use crate::telemetry::Telemetry;
use crate::verdict::{self, RunEnd, Verdict};

pub mod client;
pub mod live;
pub mod protocol;
pub mod server;
pub mod summary;

/// The port segment 0 listens on when `--coordinator` names none.
pub const DEFAULT_PORT: u16 = 7000;

/// `HOST:PORT` of the coordinator (segment 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

impl FromStr for Address {
    type Err = String;

    fn from_str(s: &str) -> Result<Address, String> {
        let s = s.trim();
        // `[::1]:7000`, `host:7000`, or `host` alone.
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("{s}: `{p}` is not a port (expected HOST:PORT)"))?;
                (h, port)
            }
            _ => (s, DEFAULT_PORT),
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "{s}: expected HOST:PORT, e.g. trafficgen-0.trafficgen-segments:7000"
            ));
        }
        Ok(Address {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// What a run takes besides the plan: coordination and the end-of-run outputs.
#[derive(Debug, Clone)]
pub struct Options {
    pub coordinator: Option<Address>,
    pub timeout: Duration,
    pub summary_file: Option<PathBuf>,
    pub report_log: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            coordinator: None,
            timeout: Duration::from_secs(300),
            summary_file: None,
            report_log: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("coordinator: cannot listen on port {port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("coordinator refused: {0}")]
    Refused(String),
    #[error("distributed run failed: {0}")]
    Missing(String),
    #[error("segment: {0}")]
    Unreachable(String),
}

enum Role {
    Single,
    Coordinator(server::Server),
    Segment(client::Client),
}

impl Role {
    fn name(&self) -> &'static str {
        match self {
            Role::Single => "single",
            Role::Coordinator(_) => "coordinator",
            Role::Segment(_) => "segment",
        }
    }
}

/// How the run ended, for the summary file.
struct Ended {
    exit: Exit,
    state: String,
    report: Option<Report>,
    message: String,
}

impl Ended {
    fn judged(verdict: &Verdict, report: Report) -> Ended {
        Ended {
            exit: Exit::Judged(verdict.state()),
            state: verdict.state().as_str().to_string(),
            report: Some(report),
            message: verdict.line(),
        }
    }

    fn early(exit: Exit, state: &str, message: String) -> Ended {
        Ended {
            exit,
            state: state.to_string(),
            report: None,
            message,
        }
    }
}

/// The summary file of a run that never started (invalid command line or scenario).
pub fn summary_before_run(opts: &Options, segment: Segment, message: &str) {
    if let Some(path) = &opts.summary_file {
        let ending = summary::Ending {
            role: if opts.coordinator.is_some() {
                "segment"
            } else {
                "single"
            },
            segment,
            state: "invalid",
            exit_code: Exit::Invalid.code(),
            message,
        };
        summary::write_file(path, &ending, None);
    }
}

/// Runs a resolved plan as this process's role (alone, coordinator or segment), then writes
/// the report log line and the summary file, whatever the outcome.
pub async fn run(
    plan: Plan,
    workers: usize,
    opts: &Options,
    out: &mut dyn Write,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Exit> {
    let segment = plan.segment;
    let role = match &opts.coordinator {
        None => Ok(Role::Single),
        Some(a) if segment.index == 0 => server::Server::bind(
            a.port,
            segment.count,
            protocol::fingerprint(&plan),
            target::random_id(),
            plan.seed,
        )
        .await
        .map(Role::Coordinator),
        Some(a) => Ok(Role::Segment(client::Client::new(a, opts.timeout))),
    };
    let role_name = role.as_ref().map_or("coordinator", Role::name);
    let result = match role {
        Ok(role) => run_as(plan, workers, role, opts, out, shutdown).await,
        Err(e) => Err(e.into()),
    };
    let ended = match &result {
        Ok(e) => e,
        Err(e) => &Ended::early(Exit::Error, "error", format!("{e:#}")),
    };
    // A segment's report reached the coordinator; the log line is the merged run's only.
    if opts.report_log
        && role_name != "segment"
        && let Some(r) = &ended.report
    {
        summary::write_report_line(out, r);
    }
    if let Some(path) = &opts.summary_file {
        let ending = summary::Ending {
            role: role_name,
            segment,
            state: &ended.state,
            exit_code: ended.exit.code(),
            message: &ended.message,
        };
        summary::write_file(path, &ending, ended.report.as_ref());
    }
    result.map(|e| e.exit)
}

async fn run_as(
    mut plan: Plan,
    workers: usize,
    role: Role,
    opts: &Options,
    out: &mut dyn Write,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Ended> {
    // The coordinator's wait for registrations counts from its own start.
    let register_deadline = Instant::now() + opts.timeout;
    let (embedded, target) = match &plan.target.base_url {
        Some(base) => (
            None,
            Target::new(base.clone(), std::env::var("TRAFFICGEN_FAULT_TOKEN").ok()),
        ),
        None => {
            if !matches!(role, Role::Single) {
                eprintln!(
                    "trafficgen: warning: a distributed run without --target-url: every segment loads its own embedded todo-api (server-side faults reach segment 0's only)"
                );
            }
            let (e, t) = Embedded::start().await?;
            (Some(e), t)
        }
    };
    tokio::pin!(shutdown);
    let interrupted = || {
        Ok(Ended::early(
            Exit::Judged(VerdictState::Interrupted),
            VerdictState::Interrupted.as_str(),
            "interrupted (SIGINT/SIGTERM) before the load started".into(),
        ))
    };
    let result = async {
        let ready = tokio::select! {
            r = target::wait_ready(&plan, &target).instrument(tracing::info_span!("readiness")) => r,
            _ = &mut shutdown => return interrupted(),
        };
        if let Err(why) = ready {
            let msg = format!(
                "target {}{} not ready within {:?}: last attempt: {} ({} attempt(s))",
                target.url,
                plan.target.ready.path,
                plan.target.ready.timeout,
                why.last,
                why.attempts
            );
            eprintln!("trafficgen: {msg}");
            return Ok(Ended::early(Exit::NotReady, "not_ready", msg));
        }
        let reg = protocol::Register {
            index: plan.segment.index,
            count: plan.segment.count,
            fingerprint: protocol::fingerprint(&plan),
            token: target::random_id(),
        };
        let announced = match &role {
            Role::Single => None,
            Role::Coordinator(server) => {
                server.register_self(&reg)?;
                eprintln!(
                    "trafficgen: coordinator: listening on {}; waiting for {} segment(s)",
                    server.addr, plan.segment.count
                );
                let wait = register_deadline.saturating_duration_since(Instant::now());
                tokio::select! {
                    s = server.wait_start(wait) => Some(s?),
                    _ = &mut shutdown => return interrupted(),
                }
            }
            Role::Segment(client) => tokio::select! {
                s = client.join(&reg) => Some(s?),
                _ = &mut shutdown => return interrupted(),
            },
        };
        let (run_id, start) = match announced {
            // An uncoordinated segment (`--segment i/N` without `--coordinator`): the run id
            // is the plan's fingerprint (it includes the seed), so the segments of one run
            // agree on it and `report merge` can tell runs apart.
            None if plan.segment.count > 1 => (format!("p{}", plan.fingerprint()), None),
            None => (target::random_id(), None),
            Some(s) => {
                plan.seed = s.seed;
                let at = protocol::instant_of(s.start_unix_ms, SystemTime::now(), Instant::now());
                eprintln!(
                    "trafficgen: segment {}/{} of run {}: load starts in {:.2}s",
                    plan.segment.index,
                    plan.segment.count,
                    s.run_id,
                    at.saturating_duration_since(Instant::now()).as_secs_f64()
                );
                (s.run_id, Some(at))
            }
        };
        let span = tracing::info_span!("run", run_id = %run_id, scenario = %plan.name);
        let telemetry = Telemetry::start(&plan, &run_id).await?;
        let spans = SpanHook {
            sender: telemetry.span_sender(),
            sample_ratio: telemetry.sample_ratio(),
        };
        let mut sinks = sinks::for_run(&plan, telemetry);
        let merged_live = Arc::new(Mutex::new(verdict::Live::new(&plan)));
        match &role {
            Role::Single => {}
            Role::Coordinator(server) => {
                let judge = live::Judge::new(server.handle(), merged_live.clone());
                sinks.push(Box::new(judge));
            }
            Role::Segment(client) => {
                sinks.push(Box::new(live::Forward::spawn(client.clone(), &plan, &run_id)));
            }
        }
        let loaded = run::load(
            &plan,
            &target,
            &run_id,
            start,
            workers.max(1),
            spans,
            &mut sinks,
            shutdown.as_mut(),
        )
        .instrument(tracing::info_span!(parent: &span, "load"))
        .await?;
        match &role {
            Role::Single => {
                let (verdict, report) = run::finish(&plan, loaded, &mut sinks, out)
                    .instrument(span)
                    .await;
                Ok(Ended::judged(&verdict, report))
            }
            Role::Coordinator(server) => {
                let (mut own, end) = run::collect(&plan, loaded, &mut sinks);
                Verdict::decide(end.clone(), &own.thresholds, &[]).apply(&mut own);
                // A signal that already stopped the load has resolved `shutdown` (it must not be
                // polled again); the segments were told to stop, so their reports come soon.
                let signalled = matches!(end, RunEnd::Interrupted);
                let reports = tokio::select! {
                    r = server.gather(own, opts.timeout) => r?,
                    _ = &mut shutdown, if !signalled => return Ok(Ended::early(
                        Exit::Judged(VerdictState::Interrupted),
                        VerdictState::Interrupted.as_str(),
                        "interrupted (SIGINT/SIGTERM) while waiting for the segments' reports".into(),
                    )),
                };
                let mut merged = verdict::merge_reports(&reports)?;
                live::windows_from_live(&plan, &mut merged, &merged_live);
                let end = merged_end(end, &reports, &merged);
                let verdict = run::judge(&plan, &mut merged, end, &mut sinks, out)
                    .instrument(span)
                    .await;
                Ok(Ended::judged(&verdict, merged))
            }
            Role::Segment(client) => segment_end(&plan, loaded, &mut sinks, client, out).await,
        }
    }
    .await;
    if let Role::Coordinator(server) = role {
        server.shutdown().await;
    }
    if let Some(e) = embedded {
        e.shutdown().await;
    }
    result
}

/// How the merged run ended: the coordinator's own failure, then any segment's generator
/// failure, then what the merged report says (interrupted or aborted anywhere).
fn merged_end(own: RunEnd, reports: &[Report], merged: &Report) -> RunEnd {
    if let RunEnd::GeneratorFailed(_) | RunEnd::Interrupted = own {
        return own;
    }
    if let Some(r) = reports
        .iter()
        .find(|r| r.verdict.state == VerdictState::GeneratorFailed)
    {
        return RunEnd::GeneratorFailed(format!(
            "segment {}: {}",
            r.segment.index, r.verdict.message
        ));
    }
    Verdict::of_report(merged).end
}

/// A segment other than 0: its report (thresholds evaluated on its share, for the record and
/// for the merge of what cannot be merged exactly) goes to the coordinator; its own numbers
/// decide nothing, so it exits 0 once the share ran and was delivered.
async fn segment_end(
    plan: &Plan,
    loaded: run::Loaded,
    sinks: &mut [Box<dyn sinks::Sink>],
    client: &client::Client,
    out: &mut dyn Write,
) -> anyhow::Result<Ended> {
    let (mut report, end) = run::collect(plan, loaded, sinks);
    let share = Verdict::decide(end.clone(), &report.thresholds, &[]);
    share.apply(&mut report);
    if let Some(path) = &plan.output.report
        && let Err(e) = report.write(path)
    {
        eprintln!("trafficgen: {e}");
    }
    client.deliver(&report).await?;
    let seg = plan.segment;
    let _ = writeln!(out, "{}", report.summary());
    let (exit, message) = match &end {
        RunEnd::Interrupted => (
            Exit::Judged(VerdictState::Interrupted),
            format!(
                "segment {}/{}: interrupted before its share ended; the partial report was delivered to the coordinator",
                seg.index, seg.count
            ),
        ),
        RunEnd::GeneratorFailed(why) => (
            Exit::Judged(VerdictState::GeneratorFailed),
            format!(
                "segment {}/{}: the generator failed: {why}",
                seg.index, seg.count
            ),
        ),
        _ => (
            Exit::Done,
            format!(
                "segment {}/{}: share ran and its report was delivered to the coordinator, which judges the run (this share alone: {})",
                seg.index,
                seg.count,
                share.state().as_str()
            ),
        ),
    };
    let _ = writeln!(out, "{message}");
    for s in sinks.iter_mut() {
        for m in s.finish(&report).await {
            eprintln!("trafficgen: {m}");
        }
    }
    Ok(Ended {
        exit,
        state: share.state().as_str().to_string(),
        report: Some(report),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let a: Address = "trafficgen-0.trafficgen-segments:7000".parse().unwrap();
        assert_eq!(a.host, "trafficgen-0.trafficgen-segments");
        assert_eq!(a.port, 7000);
        let a: Address = "coord".parse().unwrap();
        assert_eq!(a.port, DEFAULT_PORT);
        let a: Address = "[::1]:7100".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("[::1]", 7100));
        assert!("host:notaport".parse::<Address>().is_err());
        assert!(":7000".parse::<Address>().is_err());
        assert!("http://x:1".parse::<Address>().is_err());
    }
}
