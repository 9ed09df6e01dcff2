//! `verify`: observability assertions (PromQL, LogQL, TraceQL, Tempo trace lookup) checked
//! after the run against the generator's ground truth, polling until telemetry has arrived.
//!
//! (CONTRACT: signatures below. OWNER: telemetry helper.)

use crate::plan::Verify;
use crate::report::{AssertionResult, Report};

/// Runs every assertion, polling each until it passes or `verify.deadline` passes.
pub async fn run(_verify: &Verify, _report: &Report) -> Vec<AssertionResult> {
    todo!("telemetry helper")
}
