//! The command line (clap derive). Flags are overrides of the scenario; each also reads an
//! environment variable `TRAFFICGEN_<FLAG>` (`env.rs`: the same values as the flag, empty =
//! unset, errors naming the variable). Precedence, highest first: command-line flag >
//! environment variable > scenario file > built-in default (this module resolves the first
//! two, the plan stage the rest).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::plan::{Overrides, Progress, Segment};

mod env;
pub use env::CliError;

#[derive(Debug, Parser)]
#[command(
    name = "trafficgen",
    version,
    about = "Scenario-driven synthetic traffic generator that checks the telemetry it caused"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run a scenario.
    Run(RunArgs),
    /// Check a scenario and print every problem (exit 2 when there is one).
    Validate { scenario: PathBuf },
    /// Print the JSON Schema of the scenario format.
    Schema,
    /// Work with saved reports.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Re-run a scenario's `verify` section against a saved report.
    Verify {
        report: PathBuf,
        #[arg(long)]
        scenario: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Merge the reports of the segments of one run (exit 99 when the merged verdict fails).
    Merge {
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Print a report's summary.
    Render { report: PathBuf },
    /// Compare a run against a baseline run: per-operation deltas, and regression rules
    /// (exit 99 when one fails).
    Compare {
        baseline: PathBuf,
        new: PathBuf,
        /// A regression rule, e.g. `response_time: p(95) < baseline * 1.10` (repeatable).
        #[arg(long = "rule")]
        rules: Vec<String>,
        #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
        format: CompareFormat,
    },
    /// Write a report's thresholds, checks and assertions as JUnit XML.
    Junit {
        report: PathBuf,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Write a report as one self-contained HTML page (charts, tables, trace links).
    Html {
        report: PathBuf,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
}

/// Output of `report compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    Text,
    /// GitHub-flavoured Markdown, for a pull-request comment or a job summary.
    Markdown,
}

/// URL flags hide their environment values in `--help`: URLs may carry credentials.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file; or none with --url (quick mode).
    #[arg(required_unless_present = "url")]
    pub scenario: Option<PathBuf>,
    /// Quick mode, without a scenario file: load this URL (with --rate or --vus, --duration).
    #[arg(long, conflicts_with = "scenario")]
    pub url: Option<String>,
    /// Quick mode: the method (default GET).
    #[arg(long, requires = "url")]
    pub method: Option<String>,
    /// Quick mode: a header `Name: value` (repeatable).
    #[arg(long = "header", requires = "url")]
    pub headers: Vec<String>,
    /// Quick mode: the request body, or `@file` to read it from a file.
    #[arg(long, requires = "url")]
    pub body: Option<String>,
    /// Quick mode: a threshold `METRIC: EXPR` (repeatable), e.g. `response_time: p(95)<300ms`.
    #[arg(long = "threshold", requires = "url")]
    pub thresholds: Vec<String>,
    /// Base URL of the target (http://host:port); without it the bundled todo-api runs in-process.
    #[arg(long, env = "TRAFFICGEN_TARGET_URL", hide_env_values = true)]
    pub target_url: Option<String>,
    /// Open model: one constant rate (requests/s) instead of the scenario's stages.
    #[arg(long, env = "TRAFFICGEN_RATE")]
    pub rate: Option<f64>,
    /// Total duration (e.g. 30s, 2m, 1h30m); stages are scaled to it.
    #[arg(long, env = "TRAFFICGEN_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Closed model: a constant number of virtual users.
    #[arg(long, env = "TRAFFICGEN_VUS")]
    pub vus: Option<u32>,
    /// Where to write the JSON report.
    #[arg(long, env = "TRAFFICGEN_REPORT")]
    pub report: Option<PathBuf>,
    /// Where to write the self-contained HTML report.
    #[arg(long, env = "TRAFFICGEN_HTML")]
    pub html: Option<PathBuf>,
    /// Where to write JUnit XML (one test case per threshold, check and assertion).
    #[arg(long, env = "TRAFFICGEN_JUNIT")]
    pub junit: Option<PathBuf>,
    /// Serve a live dashboard (the report's charts, updated every second) on this address;
    /// beyond loopback TRAFFICGEN_DASHBOARD_TOKEN must be set and is asked of every client.
    #[arg(long, env = "TRAFFICGEN_DASHBOARD")]
    pub dashboard: Option<SocketAddr>,
    /// No progress output (the summary is still printed).
    #[arg(long, env = "TRAFFICGEN_QUIET")]
    pub quiet: bool,
    /// Plain progress lines instead of a bar.
    #[arg(long, env = "TRAFFICGEN_NO_PROGRESS")]
    pub no_progress: bool,
    #[arg(long, env = "TRAFFICGEN_SEED")]
    pub seed: Option<u64>,
    /// Worker threads (default: one per two cores, 1..=8).
    #[arg(long, env = "TRAFFICGEN_WORKERS", value_parser = parse_workers)]
    pub workers: Option<usize>,
    /// This process's share of a distributed run, `i/N` (0-based i).
    #[arg(long, env = "TRAFFICGEN_SEGMENT", value_parser = parse_segment)]
    pub segment: Option<Segment>,
    /// A distributed run of N segments; this process's index comes from `JOB_COMPLETION_INDEX`
    /// (set by a Kubernetes Indexed Job). Either this or --segment.
    #[arg(long, env = "TRAFFICGEN_SEGMENTS", conflicts_with = "segment", value_parser = parse_segments)]
    pub segments: Option<u32>,
    /// HOST:PORT of segment 0, which coordinates a distributed run (it listens on PORT on all
    /// interfaces; the others connect). Needs --segment or --segments. Default port 7000.
    #[arg(long, env = "TRAFFICGEN_COORDINATOR", value_parser = parse_coordinator)]
    pub coordinator: Option<crate::coord::Address>,
    /// How long the coordinator waits for every segment to register (and, after its own load,
    /// for their reports); how long a segment keeps trying to reach the coordinator.
    #[arg(long, env = "TRAFFICGEN_COORDINATOR_TIMEOUT", value_parser = parse_wait, default_value = "5m")]
    pub coordinator_timeout: Duration,
    /// Where to write a compact JSON summary (≤ 4 KiB: verdict, totals, thresholds) on every
    /// exit path of a run; e.g. /dev/termination-log in Kubernetes.
    #[arg(long, env = "TRAFFICGEN_SUMMARY_FILE")]
    pub summary_file: Option<PathBuf>,
    /// At the very end, the full report as one stdout line prefixed `trafficgen-report: `
    /// (`--report-log`, `--report-log=false`; the variable takes true/false/1/0).
    #[arg(
        long,
        env = "TRAFFICGEN_REPORT_LOG",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        value_parser = parse_bool
    )]
    pub report_log: bool,
    #[arg(long, env = "TRAFFICGEN_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[arg(long, env = "TRAFFICGEN_METRICS_LINGER", value_parser = parse_duration)]
    pub metrics_linger: Option<Duration>,
    /// The `instance` label of pushed and remote-written series (default: the host name);
    /// Kubernetes manifests set it to the pod's name.
    #[arg(long, env = "TRAFFICGEN_INSTANCE")]
    pub instance: Option<String>,
    #[arg(long, env = "TRAFFICGEN_PUSHGATEWAY", hide_env_values = true)]
    pub pushgateway: Option<String>,
    #[arg(long, env = "TRAFFICGEN_REMOTE_WRITE", hide_env_values = true)]
    pub remote_write: Option<String>,
    #[arg(long, env = "TRAFFICGEN_GRAFANA_URL", hide_env_values = true)]
    pub grafana_url: Option<String>,
    /// `(--flag, VARIABLE)` for each value that came from the environment, so problems with it
    /// name the variable.
    #[arg(skip)]
    pub from_env: Vec<(String, String)>,
}

impl RunArgs {
    /// `field` (a flag such as `--rate`) named as the user gave it: the variable when the value
    /// came from the environment.
    pub fn source_name<'a>(&'a self, field: &'a str) -> &'a str {
        self.from_env
            .iter()
            .find(|(flag, _)| flag == field)
            .map_or(field, |(_, var)| var.as_str())
    }

    /// The quick-mode flags, when --url is given.
    pub fn quick(&self) -> Option<crate::plan::quick::Quick> {
        Some(crate::plan::quick::Quick {
            url: self.url.clone()?,
            method: self.method.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
            rate: self.rate,
            vus: self.vus,
            duration: self.duration,
            thresholds: self.thresholds.clone(),
        })
    }

    /// This process's segment: `--segment i/N`, or `--segments N` with the index from
    /// `JOB_COMPLETION_INDEX` (`job_index`). A message for exit 2 when it cannot be resolved.
    pub fn resolve_segment(&self, job_index: Option<&str>) -> Result<Option<Segment>, String> {
        let segment = match (self.segment, self.segments) {
            (Some(s), _) => Some(s),
            (None, None) => None,
            (None, Some(0)) => return Err("--segments: N must be at least 1".into()),
            (None, Some(count)) => {
                let raw = job_index.ok_or_else(|| {
                    format!(
                        "--segments {count}: JOB_COMPLETION_INDEX is not set (it is set by a \
                         Kubernetes Indexed Job; elsewhere use --segment i/{count})"
                    )
                })?;
                let index: u32 = raw.trim().parse().map_err(|_| {
                    format!("--segments {count}: JOB_COMPLETION_INDEX `{raw}` is not a number")
                })?;
                if index >= count {
                    return Err(format!(
                        "--segments {count}: JOB_COMPLETION_INDEX {index} is out of range 0..{count}"
                    ));
                }
                Some(Segment { index, count })
            }
        };
        if self.coordinator.is_some() && segment.is_none_or(|s| s.count < 2) {
            return Err(
                "--coordinator needs a distributed run of at least 2 segments (--segment i/N or --segments N)"
                    .into(),
            );
        }
        Ok(segment)
    }

    /// The distributed-run and end-of-run output options (not part of the scenario).
    pub fn coord_options(&self) -> crate::coord::Options {
        crate::coord::Options {
            coordinator: self.coordinator.clone(),
            timeout: self.coordinator_timeout,
            summary_file: self.summary_file.clone(),
            report_log: self.report_log,
        }
    }

    pub fn overrides(&self) -> Overrides {
        Overrides {
            target_url: self.target_url.clone(),
            rate: self.rate,
            duration: self.duration,
            vus: self.vus,
            report: self.report.clone(),
            progress: if self.quiet {
                Some(Progress::Quiet)
            } else if self.no_progress {
                Some(Progress::Plain)
            } else {
                None
            },
            seed: self.seed,
            segment: self.segment,
            metrics_addr: self.metrics_addr,
            linger: self.metrics_linger,
            instance: self.instance.clone(),
            pushgateway: self.pushgateway.clone(),
            remote_write: self.remote_write.clone(),
            grafana_url: self.grafana_url.clone(),
            html: self.html.clone(),
            junit: self.junit.clone(),
            dashboard: self.dashboard,
        }
    }
}

/// A duration in the scenario file's grammar (`250ms`, `30s`, `1m30s`, `500us`, `0`), so flags,
/// `TRAFFICGEN_*` variables and scenario files accept the same values with the same errors.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<crate::scenario::units::Duration>().map(|d| d.0)
}

/// A duration for a whole-phase wait (`--coordinator-timeout`): at most the scenario format's
/// `MAX_WAIT` (24h), so deadlines computed from it never overflow.
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    let max = crate::scenario::limits::MAX_WAIT;
    let d = parse_duration(s)?;
    if d > max {
        return Err(format!(
            "`{}` is beyond the limit of {}h",
            s.trim(),
            max.as_secs() / 3600
        ));
    }
    Ok(d)
}

/// `true`/`false`/`1`/`0` (also `yes`/`no`, `on`/`off`), for flags that variables set.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(format!("{s}: expected true or false (or 1/0)")),
    }
}

/// `HOST:PORT`, or `HOST` alone for the default port 7000.
pub fn parse_coordinator(s: &str) -> Result<crate::coord::Address, String> {
    s.parse()
}

/// Worker threads: 1..=`MAX_WORKERS`.
pub fn parse_workers(s: &str) -> Result<usize, String> {
    let max = crate::scenario::limits::MAX_WORKERS;
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{s}: expected a number of workers in 1..={max}")),
    }
}

/// A segment count N: 0..=`MAX_SEGMENTS` (0 is reported by `resolve_segment`).
pub fn parse_segments(s: &str) -> Result<u32, String> {
    let max = crate::scenario::limits::MAX_SEGMENTS;
    match s.trim().parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("{s}: expected a number of segments up to {max}")),
    }
}

/// `i/N` with 0 <= i < N <= `MAX_SEGMENTS`.
pub fn parse_segment(s: &str) -> Result<Segment, String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s}: expected i/N, e.g. 0/4"))?;
    let index: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("{s}: i is not a number"))?;
    let count: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("{s}: N is not a number"))?;
    if count == 0 || index >= count {
        return Err(format!("{s}: need 0 <= i < N"));
    }
    if count > crate::scenario::limits::MAX_SEGMENTS {
        return Err(format!(
            "{s}: at most {} segments",
            crate::scenario::limits::MAX_SEGMENTS
        ));
    }
    Ok(Segment { index, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_segments_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        // The scenario file's rules: a unit is required, larger units first.
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("30s1m").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_wait("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(
            parse_wait("4000000000000000h"),
            Err("`4000000000000000h` is beyond the limit of 24h".into())
        );
        assert_eq!(parse_segment("1/4"), Ok(Segment { index: 1, count: 4 }));
        assert!(parse_segment("4/4").is_err());
    }

    #[test]
    fn flag_beats_env_and_env_fills_in() {
        use clap::Parser as _;
        // clap reads the environment; the flag wins when both are given. (Env is process-wide,
        // so this test only checks the flag side and the parser wiring.)
        let cli = Cli::try_parse_from([
            "trafficgen",
            "run",
            "s.yaml",
            "--rate",
            "50",
            "--quiet",
            "--segment",
            "0/2",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("run")
        };
        let o = args.overrides();
        assert_eq!(o.rate, Some(50.0));
        assert_eq!(o.progress, Some(Progress::Quiet));
        assert_eq!(o.segment, Some(Segment { index: 0, count: 2 }));
    }

    #[test]
    fn segments_take_the_index_from_the_indexed_job() {
        use clap::Parser as _;
        let args = |extra: &[&str]| {
            let mut v = vec!["trafficgen", "run", "s.yaml"];
            v.extend_from_slice(extra);
            let Command::Run(a) = Cli::try_parse_from(v).unwrap().command else {
                panic!("run")
            };
            a
        };
        let a = args(&["--segments", "4", "--coordinator", "j-0.svc"]);
        assert_eq!(
            a.resolve_segment(Some("2")),
            Ok(Some(Segment { index: 2, count: 4 }))
        );
        assert_eq!(a.coord_options().coordinator.map(|c| c.port), Some(7000));
        assert_eq!(a.coord_options().timeout, Duration::from_secs(300));
        assert!(a.resolve_segment(None).unwrap_err().contains("not set"));
        assert!(
            a.resolve_segment(Some("4"))
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            a.resolve_segment(Some("x"))
                .unwrap_err()
                .contains("not a number")
        );
        let a = args(&["--coordinator", "h:7001"]);
        assert!(
            a.resolve_segment(None)
                .unwrap_err()
                .contains("--coordinator needs")
        );
        assert!(
            Cli::try_parse_from([
                "trafficgen",
                "run",
                "s",
                "--segment",
                "0/2",
                "--segments",
                "2"
            ])
            .is_err()
        );
        assert!(args(&["--report-log"]).report_log);
        assert!(!args(&["--report-log=0"]).report_log);
        assert!(!args(&[]).report_log);
        assert_eq!(
            args(&["--coordinator-timeout", "30s"]).coordinator_timeout,
            Duration::from_secs(30)
        );
    }
}
