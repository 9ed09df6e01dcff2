//! Subcommand dispatch: each command of the CLI mapped to the stages that do it, and every path
//! to an `exit::Exit`. A run goes plan → `coord::run` (alone or as a segment of a distributed
//! run: target and readiness, `run::load` with the sinks, `run::finish` — the verdict).
//! Nothing here is on the hot path.

use std::future::Future;
use std::io::Write;
use std::path::Path;

use crate::cli::{Cli, Command, ReportCmd, RunArgs};
use crate::exit::Exit;
use crate::plan::{self, Plan};
use crate::report::Report;
use crate::verdict::{self, RunEnd, Verdict};
use crate::{coord, executor, scenario, verify};

/// Runs one command. `out` receives the command's result (summary, schema, …); progress and
/// errors go to stderr. `shutdown` resolves on SIGINT/SIGTERM.
pub async fn run(cli: Cli, out: &mut dyn Write, shutdown: impl Future<Output = ()>) -> Exit {
    let r = match cli.command {
        Command::Run(args) => run_scenario(&args, out, shutdown).await,
        Command::Validate { scenario } => Ok(validate(&scenario, out)),
        Command::Schema => serde_json::to_string_pretty(&scenario::json_schema())
            .map_err(Into::into)
            .and_then(|s| writeln!(out, "{s}").map_err(Into::into))
            .map(|_| Exit::Done),
        Command::Report(ReportCmd::Merge { reports, output }) => {
            merge(&reports, output.as_deref(), out)
        }
        Command::Report(ReportCmd::Render { report }) => Report::read(&report)
            .map_err(Into::into)
            .and_then(|r| writeln!(out, "{}", r.summary()).map_err(Into::into))
            .map(|_| Exit::Done),
        Command::Report(ReportCmd::Compare {
            baseline,
            new,
            rules,
            format,
        }) => compare(&baseline, &new, &rules, format, out),
        Command::Report(ReportCmd::Junit { report, output }) => Report::read(&report)
            .and_then(|r| crate::report::junit::write(&r, &output))
            .map_err(Into::into)
            .map(|_| Exit::Done),
        Command::Report(ReportCmd::Html { report, output }) => Report::read(&report)
            .and_then(|r| crate::report::html::write(&r, &output))
            .map_err(Into::into)
            .map(|_| Exit::Done),
        Command::Verify { report, scenario } => verify_cmd(&report, &scenario, out).await,
    };
    r.unwrap_or_else(|e| {
        eprintln!("trafficgen: error: {e:#}");
        Exit::Error
    })
}

/// The plan of a scenario file, or every problem printed and `Exit::Invalid`.
fn build_plan(
    path: &Path,
    overrides: &plan::Overrides,
    args: Option<&RunArgs>,
) -> Result<Plan, Exit> {
    plan::build(path, overrides).map_err(|errors| {
        print_problems(&errors, args);
        eprintln!("{} problem(s) in {}", errors.len(), path.display());
        Exit::Invalid
    })
}

/// Problems on stderr; those of a command-line value name it as the user gave it: the
/// `TRAFFICGEN_*` variable when it came from the environment, and in quick mode the flag
/// rather than a place in the scenario text made of the flags.
fn print_problems(errors: &[plan::PlanError], args: Option<&RunArgs>) {
    let mut shown: Vec<String> = Vec::new();
    for e in errors {
        let mut e = e.clone();
        if e.file == plan::COMMAND_LINE {
            let flag = match e.field.as_str() {
                "load.stages[0].duration" => Some("--duration"),
                "load.stages[0].rate" | "load.start_rate" => Some("--rate"),
                "load.stages[0].vus" | "load.start_vus" => Some("--vus"),
                _ => None,
            };
            if let Some(flag) = flag.filter(|_| e.line > 0) {
                (e.line, e.column, e.field) = (0, 0, flag.to_string());
            }
            if let Some(a) = args {
                e.field = a.source_name(&e.field).to_string();
            }
        }
        let line = e.to_string();
        if !shown.contains(&line) {
            eprintln!("{line}");
            shown.push(line);
        }
    }
}

/// Quick mode: the flags as a one-operation scenario, validated like a file.
fn quick_plan(
    q: &plan::quick::Quick,
    overrides: &plan::Overrides,
    args: &RunArgs,
) -> Result<Plan, Exit> {
    let text = plan::quick::scenario_text(q).map_err(|m| {
        eprintln!("trafficgen run: {m}");
        Exit::Invalid
    })?;
    // The load comes from the flags already; the URL too.
    let o = plan::Overrides {
        target_url: None,
        rate: None,
        vus: None,
        duration: None,
        ..overrides.clone()
    };
    plan::build_from_str(&text, plan::COMMAND_LINE, None, &o, &|n| {
        std::env::var(n).ok()
    })
    .map_err(|errors| {
        print_problems(&errors, Some(args));
        Exit::Invalid
    })
}

fn validate(path: &Path, out: &mut dyn Write) -> Exit {
    match build_plan(path, &plan::Overrides::default(), None) {
        Ok(p) => {
            let _ = writeln!(
                out,
                "{}: ok (scenario {:?}, {} operations)",
                path.display(),
                p.name,
                p.mix.operations.len()
            );
            Exit::Done
        }
        Err(e) => e,
    }
}

fn merge(
    paths: &[std::path::PathBuf],
    output: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<Exit> {
    let reports = paths
        .iter()
        .map(|p| Report::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = match verdict::merge_reports(&reports) {
        Ok(m) => m,
        // Reports of different plans or runs: a usage error (exit 2, as `exit.rs` documents).
        Err(e @ crate::report::ReportError::Mismatch(_)) => {
            eprintln!("trafficgen: {e}");
            return Ok(Exit::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(o) = output {
        merged.write(o)?;
    }
    writeln!(out, "{}", merged.summary())?;
    Ok(Exit::Judged(merged.verdict.state))
}

/// `report compare`: rules that do not parse exit 2, a regression exits 99 (the code of failed
/// thresholds, as `exit.rs` documents).
fn compare(
    baseline: &Path,
    new: &Path,
    rules: &[String],
    format: crate::cli::CompareFormat,
    out: &mut dyn Write,
) -> anyhow::Result<Exit> {
    use crate::verdict::compare as cmp;
    let (baseline, new) = (Report::read(baseline)?, Report::read(new)?);
    // The new run's scenario rules (kept in its report), then the command line's.
    let mut parsed = Vec::with_capacity(rules.len() + new.config.compare.len());
    let sources = new.config.compare.iter().map(|r| ("compare", r));
    for (from, r) in sources.chain(rules.iter().map(|r| ("--rule", r))) {
        match plan::compare::parse_line(r) {
            Ok(rule) => parsed.push(rule),
            Err(e) => {
                eprintln!("trafficgen: {from} `{r}`: {e}");
                return Ok(Exit::Invalid);
            }
        }
    }
    let c = cmp::compare(&baseline, &new, &parsed);
    let text = match format {
        crate::cli::CompareFormat::Text => cmp::text(&c),
        crate::cli::CompareFormat::Markdown => cmp::markdown(&c),
    };
    write!(out, "{text}")?;
    Ok(if c.regressed() {
        Exit::Judged(crate::report::VerdictState::ThresholdsFailed)
    } else {
        Exit::Done
    })
}

async fn verify_cmd(report: &Path, scenario: &Path, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let plan = match build_plan(scenario, &plan::Overrides::default(), None) {
        Ok(p) => p,
        Err(e) => return Ok(e),
    };
    let Some(v) = &plan.verify else {
        eprintln!("{}: the scenario has no verify section", scenario.display());
        return Ok(Exit::Invalid);
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
    // Only the assertions are judged again: the load is over.
    let verdict = Verdict::decide(RunEnd::Completed, &[], &results);
    writeln!(out, "{}", verdict.line())?;
    Ok(Exit::Judged(verdict.state()))
}

async fn run_scenario(
    args: &RunArgs,
    out: &mut dyn Write,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Exit> {
    let opts = args.coord_options();
    let job_index = std::env::var("JOB_COMPLETION_INDEX").ok();
    let segment = match args.resolve_segment(job_index.as_deref()) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("trafficgen: {msg}");
            coord::summary_before_run(&opts, plan::Segment::WHOLE, &msg);
            return Ok(Exit::Invalid);
        }
    };
    let mut overrides = args.overrides();
    overrides.segment = segment;
    let built = match (&args.scenario, args.quick()) {
        (_, Some(q)) => quick_plan(&q, &overrides, args)
            .map_err(|e| (e, "invalid quick-mode flags".to_string())),
        (Some(path), None) => build_plan(path, &overrides, Some(args))
            .map_err(|e| (e, format!("invalid scenario {}", path.display()))),
        (None, None) => Err((Exit::Invalid, "give a scenario file or --url".to_string())),
    };
    let plan = match built {
        Ok(p) => p,
        Err((e, msg)) => {
            coord::summary_before_run(&opts, segment.unwrap_or(plan::Segment::WHOLE), &msg);
            return Ok(e);
        }
    };
    let problems = preflight(&plan);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("trafficgen: {p}");
        }
        coord::summary_before_run(&opts, plan.segment, &problems.join("; "));
        return Ok(Exit::Invalid);
    }
    let workers = args
        .workers
        .unwrap_or_else(executor::default_workers)
        .max(1);
    coord::run(plan, workers, &opts, out, shutdown).await
}

/// What would only fail after the load, checked before it (a two-hour soak must not lose its
/// report to a typo): every output file's directory exists and takes a new file (one is
/// created and removed beside it), and the metrics and dashboard addresses can be bound.
/// Each problem names the setting.
pub fn preflight(plan: &Plan) -> Vec<String> {
    let mut problems = Vec::new();
    let outputs = [
        ("report", plan.output.report.as_deref()),
        ("html", plan.output.html.as_deref()),
        ("junit", plan.output.junit.as_deref()),
    ];
    for (what, path) in outputs {
        if let Some(p) = path
            && let Err(m) = writable(p)
        {
            problems.push(format!("the {what} path {}: {m}", p.display()));
        }
    }
    let addrs = [
        ("metrics address", plan.telemetry.metrics_addr),
        ("dashboard address", plan.output.dashboard),
    ];
    for (what, addr) in addrs {
        if let Some(a) = addr
            && let Err(e) = std::net::TcpListener::bind(a)
        {
            problems.push(format!("the {what} {a} cannot be bound: {e}"));
        }
    }
    problems
}

/// Whether a file can be written at `path`: not a directory, in an existing directory where a
/// new file can be created (and is removed at once).
fn writable(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("is a directory".into());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!("the directory {} does not exist", dir.display()));
    }
    let name = path
        .file_name()
        .map_or("report".into(), |n| n.to_string_lossy().into_owned());
    let probe = dir.join(format!(".{name}.{}.trafficgen-check", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Runs a resolved plan in this process alone: starts the embedded todo-api when the plan has
/// no target, waits for readiness, drives the load with the sinks and judges it.
pub async fn run_plan(
    plan: Plan,
    workers: usize,
    out: &mut dyn Write,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Exit> {
    coord::run(plan, workers, &coord::Options::default(), out, shutdown).await
}
