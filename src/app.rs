//! Orchestration only: wires the stages of a run (plan → target → readiness → telemetry →
//! faults → load with per-interval snapshots → report → verdict → verify → outputs) and the
//! other subcommands, and maps every path to an `exit::Outcome`. Nothing here is on the hot path.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};

use crate::cli::{Cli, Command, ReportCmd, RunArgs};
use crate::executor::{self, Common, Control, Shared};
use crate::exit::Outcome;
use crate::faults::{HeaderFaults, ServerFaults};
use crate::plan::{self, BaseUrl, LoadModel, Plan};
use crate::progress::Progress;
use crate::recorder::Collector;
use crate::report::{self, Report, RunMeta, Timeline};
use crate::telemetry::Telemetry;
use crate::{scenario, scheduler, verdict, verify};

/// Runs one command. `out` receives the command's result (summary, schema, …); progress and
/// errors go to stderr. `shutdown` resolves on SIGINT/SIGTERM.
pub async fn run(cli: Cli, out: &mut dyn Write, shutdown: impl Future<Output = ()>) -> Outcome {
    let r = match cli.command {
        Command::Run(args) => run_scenario(&args, out, shutdown).await,
        Command::Validate { scenario } => Ok(validate(&scenario, out)),
        Command::Schema => serde_json::to_string_pretty(&scenario::json_schema())
            .map_err(Into::into)
            .and_then(|s| writeln!(out, "{s}").map_err(Into::into))
            .map(|_| Outcome::Passed),
        Command::Report(ReportCmd::Merge { reports, output }) => {
            merge(&reports, output.as_deref(), out)
        }
        Command::Report(ReportCmd::Render { report }) => Report::read(&report)
            .map_err(Into::into)
            .and_then(|r| writeln!(out, "{}", r.summary()).map_err(Into::into))
            .map(|_| Outcome::Passed),
        Command::Verify { report, scenario } => verify_cmd(&report, &scenario, out).await,
    };
    r.unwrap_or_else(|e| {
        eprintln!("trafficgen: error: {e:#}");
        Outcome::Error
    })
}

fn validate(path: &Path, out: &mut dyn Write) -> Outcome {
    match plan::build(path, &plan::Overrides::default()) {
        Ok(p) => {
            let _ = writeln!(
                out,
                "{}: ok (scenario {:?}, {} operations)",
                path.display(),
                p.name,
                p.mix.operations.len()
            );
            Outcome::Passed
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("{} problem(s) in {}", errors.len(), path.display());
            Outcome::Invalid
        }
    }
}

fn merge(
    paths: &[std::path::PathBuf],
    output: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let reports = paths
        .iter()
        .map(|p| Report::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = report::merge(&reports)?;
    if let Some(o) = output {
        merged.write(o)?;
    }
    writeln!(out, "{}", merged.summary())?;
    Ok(if merged.passed {
        Outcome::Passed
    } else {
        Outcome::ThresholdFailed
    })
}

async fn verify_cmd(
    report: &Path,
    scenario: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let plan = match plan::build(scenario, &plan::Overrides::default()) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return Ok(Outcome::Invalid);
        }
    };
    let Some(v) = &plan.verify else {
        eprintln!("{}: the scenario has no verify section", scenario.display());
        return Ok(Outcome::Invalid);
    };
    let r = Report::read(report)?;
    let results = verify::run(v, &r).await;
    for a in &results {
        writeln!(
            out,
            "{} {}: {}",
            if a.passed {
                "PASS"
            } else if a.skipped {
                "SKIP"
            } else {
                "FAIL"
            },
            a.name,
            a.message
        )?;
    }
    Ok(if results.iter().all(|a| !a.failed()) {
        Outcome::Passed
    } else {
        Outcome::AssertionFailed
    })
}

/// A random 16-hex-digit run id.
fn new_run_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The bundled todo-api, started in-process when the scenario has no target.
struct Embedded {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_embedded(token: &str) -> anyhow::Result<(Embedded, SocketAddr)> {
    let config = todo_api::Config {
        host: [127, 0, 0, 1].into(),
        port: 0,
        faults_enabled: true,
        fault_token: Some(token.to_string()),
        log: todo_api::LogOutput::Off,
        // With an OTLP endpoint the embedded app exports its server spans too, so a trace shows
        // trafficgen → todo-api even without a separate target.
        otlp_traces_endpoint: std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty())
            .map(|e| format!("{}/v1/traces", e.trim_end_matches('/'))),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("binding the embedded todo-api")?;
    let addr = listener.local_addr()?;
    let state = todo_api::AppState::new(config);
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(todo_api::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Ok((Embedded { stop, task }, addr))
}

impl Embedded {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

fn base_string(b: &BaseUrl) -> String {
    format!("{}://{}:{}{}", b.scheme, b.host, b.port, b.prefix)
}

/// Polls the readiness path until it answers 2xx (true) or the timeout passes (false).
async fn wait_ready(plan: &Plan, base: &str) -> bool {
    let r = &plan.target.ready;
    let url = format!("{base}{}", r.path);
    let client = match reqwest::Client::builder()
        .timeout(
            r.interval
                .max(Duration::from_millis(200))
                .min(Duration::from_secs(5)),
        )
        .build()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    let deadline = Instant::now() + r.timeout;
    loop {
        if let Ok(resp) = client.get(&url).send().await
            && resp.status().is_success()
        {
            return true;
        }
        if Instant::now() + r.interval > deadline {
            return false;
        }
        tokio::time::sleep(r.interval).await;
    }
}

async fn run_scenario(
    args: &RunArgs,
    out: &mut dyn Write,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Outcome> {
    let plan = match plan::build(&args.scenario, &args.overrides()) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            return Ok(Outcome::Invalid);
        }
    };
    let workers = args
        .workers
        .unwrap_or_else(executor::default_workers)
        .max(1);
    run_plan(plan, workers, out, shutdown).await
}

/// Runs a resolved plan: starts the embedded todo-api when the plan has no target, waits for
/// readiness, drives the load, writes the report and prints the summary.
pub async fn run_plan(
    mut plan: Plan,
    workers: usize,
    out: &mut dyn Write,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Outcome> {
    let run_id = new_run_id();
    let mut embedded = None;
    let token = match &plan.target.base_url {
        Some(_) => std::env::var("TRAFFICGEN_FAULT_TOKEN").ok(),
        None => {
            let token = new_run_id() + &new_run_id();
            let (e, addr) = start_embedded(&token).await?;
            embedded = Some(e);
            plan.target.base_url = Some(BaseUrl {
                scheme: "http".into(),
                host: addr.ip().to_string(),
                port: addr.port(),
                prefix: String::new(),
            });
            Some(token)
        }
    };
    let base = plan
        .target
        .base_url
        .clone()
        .ok_or_else(|| anyhow!("no target"))?;
    let base_url = base_string(&base);
    let result = async {
        tokio::pin!(shutdown);
        let ready = tokio::select! {
            r = wait_ready(&plan, &base_url) => r,
            _ = &mut shutdown => return Ok(Outcome::Error),
        };
        if !ready {
            eprintln!(
                "trafficgen: target {base_url}{} not ready within {:?}",
                plan.target.ready.path, plan.target.ready.timeout
            );
            return Ok(Outcome::NotReady);
        }
        load(
            &plan,
            &base,
            &base_url,
            &run_id,
            token,
            workers.max(1),
            out,
            shutdown,
        )
        .await
    }
    .await;
    if let Some(e) = embedded {
        e.shutdown().await;
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn load(
    plan: &Plan,
    base: &BaseUrl,
    base_url: &str,
    run_id: &str,
    token: Option<String>,
    workers: usize,
    out: &mut dyn Write,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<Outcome> {
    let addr = tokio::net::lookup_host((base.host.as_str(), base.port))
        .await
        .with_context(|| format!("resolving {}", base.host))?
        .next()
        .ok_or_else(|| anyhow!("{}: no address", base.host))?;
    let mut telemetry = Telemetry::start(plan, run_id).await?;
    let common = Common::new(base, &plan.target.headers, run_id);
    // The target's fault counter before any request: server-side faults are its change.
    let fault_counter = crate::faults::read_counter(plan, base_url).await;
    let start = Instant::now() + Duration::from_millis(20);
    let shared = Arc::new(Shared::new(
        plan.clone(),
        addr,
        common,
        HeaderFaults::new(plan),
        telemetry.span_sender(),
        telemetry.sample_ratio(),
        workers,
        start,
    ));
    let mut server_faults = ServerFaults::spawn(plan, base_url.to_string(), token, start);
    server_faults.set_before(fault_counter);
    let (ctl, ctl_rx) = watch::channel(Control::Run);
    let (dtx, mut drx) = mpsc::unbounded_channel();
    let ws = executor::start(shared, dtx, ctl_rx).context("starting workers")?;
    let started_at = SystemTime::now();
    let names: Vec<String> = plan.mix.operations.iter().map(|o| o.name.clone()).collect();
    let mut collector = Collector::new(names, workers, plan.output.keep_traces);
    let mut timeline = Timeline::new(plan);
    let mut live = verdict::Live::new(plan);
    let mut progress = Progress::new(plan.output.progress, plan.load.duration());
    let interval = plan.output.interval.max(Duration::from_millis(10));
    // Tick a little after the workers' flushes so each snapshot holds the whole interval.
    let offset = (interval / 10).min(Duration::from_millis(50));
    let mut n = 1u32;
    let drain = plan.target.request_timeout.min(Duration::from_secs(10)) + Duration::from_secs(1);
    let mut abort_at = start + plan.load.duration() + drain;
    let (mut interrupted, mut aborted, mut abort_sent) = (false, None::<String>, false);
    loop {
        tokio::select! {
            biased;
            d = drx.recv() => match d {
                Some(mut d) => {
                    collector.absorb(&d);
                    if let Some(back) = ws.recycle.get(d.worker) && !d.finished {
                        d.reset();
                        let _ = back.send(d);
                    }
                }
                None => break,
            },
            _ = &mut shutdown, if !interrupted => {
                interrupted = true;
                let _ = ctl.send(Control::Stop);
                abort_at = abort_at.min(Instant::now() + drain);
            }
            _ = sleep_until(start + interval * n + offset) => {
                let elapsed = interval * n;
                n += 1;
                let snap = collector.snapshot(elapsed, target_rate(plan, elapsed), active_faults(plan, elapsed), false);
                progress.tick(&snap);
                timeline.observe(&snap);
                if aborted.is_none() && let Some(reason) = live.observe(&snap) {
                    eprintln!("trafficgen: aborting: {reason}");
                    aborted = Some(reason);
                    let _ = ctl.send(Control::Stop);
                    abort_at = abort_at.min(Instant::now() + drain);
                }
                telemetry.observe(&snap);
            }
            _ = sleep_until(abort_at), if !abort_sent => {
                abort_sent = true;
                let _ = ctl.send(Control::Abort);
            }
        }
    }
    for t in ws.threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    progress.finish();
    let elapsed = Instant::now().saturating_duration_since(start);
    let last = collector.snapshot(elapsed, 0.0, vec![], true);
    timeline.observe(&last);
    let _ = live.observe(&last);
    telemetry.observe(&last);
    let (messages, target_faults) = server_faults.stop_and_measure().await;
    for m in messages {
        eprintln!("trafficgen: faults: {m}");
    }
    let meta = RunMeta {
        run_id: run_id.to_string(),
        started_at,
        ended_at: SystemTime::now(),
        interrupted,
        aborted,
        target_url: base_url.to_string(),
    };
    let mut report = Report::build(plan, &last, timeline, meta);
    let header = last.totals();
    report.target_faults = target_faults.map(|m| {
        m.with_header(crate::faults::ByKind {
            latency: header.faults_latency,
            error: header.faults_error,
        })
    });
    report.thresholds = verdict::evaluate(plan, &report, &live);
    // Threshold state goes to /metrics before verify queries Prometheus, so an assertion on
    // `trafficgen_threshold_failing` sees this run's verdict.
    telemetry.publish_report(&report);
    if let Some(v) = &plan.verify {
        report.verify = verify::run(v, &report).await;
    }
    let thresholds_ok = report.thresholds.iter().all(|t| t.passed);
    let verify_ok = report.verify.iter().all(|a| !a.failed());
    report.passed = thresholds_ok && verify_ok;
    if let Some(p) = &plan.output.report
        && let Err(e) = report.write(p)
    {
        eprintln!("trafficgen: {e}");
    }
    writeln!(out, "{}", report.summary())?;
    for m in telemetry.finish(&report).await {
        eprintln!("trafficgen: telemetry: {m}");
    }
    Ok(if !thresholds_ok {
        Outcome::ThresholdFailed
    } else if !verify_ok {
        Outcome::AssertionFailed
    } else if interrupted {
        Outcome::Error
    } else {
        Outcome::Passed
    })
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

fn active_faults(plan: &Plan, elapsed: Duration) -> Vec<usize> {
    plan.faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.start <= elapsed && elapsed < f.start + f.duration)
        .map(|(i, _)| i)
        .collect()
}
