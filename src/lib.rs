//! trafficgen: a scenario-driven synthetic HTTP traffic generator that checks the telemetry it
//! caused.
//!
//! # Layout (the data flow, one module per arrow)
//!
//! ```text
//! secrets    masking credentials (URLs, headers, tokens) in every output; header lists
//! scenario   file → raw model with positions (serde), every problem at once
//! plan       validated, resolved Plan (defaults, templates, thresholds parsed)
//! scheduler  *when*: arrival offsets (open model) and VU stages (closed model); pure
//! faults     the fault timeline: per-request headers and the target's fault API
//! recorder   per-worker histograms and counters, merged into a Snapshot every interval
//! executor   *what*: worker threads send requests, record into their own recorders
//! report     the versioned JSON report model: build, merge, summary text, file I/O
//! exit       the exit code table (from the verdict's states)
//! verdict    thresholds (live and final) and the one Verdict of a run
//! verify     observability assertions against Prometheus, Loki and Tempo
//! telemetry  the generator's own /metrics, pushes, OTLP metrics and client spans
//! sinks      the seam between the run loop and every output (progress, timeline,
//!            thresholds, telemetry)
//! target     the embedded todo-api and readiness waiting
//! run        the run loop (load) and the judging of its end (collect, judge)
//! coord      one process's run, alone or as a segment of a distributed run; summary file
//! cli        the command line
//! app        subcommand dispatch
//! ```
//!
//! A module only imports modules above it in this list, so there is no import circle (the
//! recorder is listed before the executor because the executor writes into it; a test,
//! `layering`, keeps the list and the imports in step).
//!
//! # Glossary
//! - *arrival*: one planned request start (open model); *intended start* is when it was due.
//! - *response time*: to the last byte, from the intended start when the arrival waited for a
//!   free connection (the target's doing), else from its pick-up by a connection task (the
//!   generator's timer lag is not the target's); *service time*: from the actual send;
//!   *schedule lag*: send − intended. Exact definitions: docs/architecture.md, "Measures".
//! - *planned = completed + dropped + abandoned*: every arrival that came due is in one of the
//!   three (docs/architecture.md, "Accounting").
//! - *recorder*: the in-memory aggregator (histograms, counters) of one worker (k6 calls this a
//!   sink); *sink*: a consumer of snapshots and of the final report (k6 calls this an output).
//! - *snapshot*: the merged cumulative state at one interval tick.
//! - *verdict*: how a run ended and what that means; it decides the summary's last line, the
//!   report's verdict fields and the exit code.
//! - *segment*: one process's share of a distributed run (`--segment i/N`).
pub mod app;
pub mod cli;
pub mod coord;
pub mod executor;
pub mod exit;
pub mod faults;
pub mod plan;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scenario;
pub mod scheduler;
pub mod secrets;
pub mod sinks;
pub mod target;
pub mod telemetry;
pub mod verdict;
pub mod verify;
