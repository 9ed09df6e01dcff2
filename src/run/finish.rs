//! Judging a finished load: the report from the final snapshot, what the sinks kept
//! (`complete`), the observability assertions, the one `Verdict`, then the outputs in a fixed
//! order — report file, summary, the sinks' `finish`. The verdict is written into the report
//! before anything is output, so the file, the summary's last line and the exit code agree.
//!
//! Two halves, so that a distributed run can judge a merged report: `collect` (this process's
//! report, thresholds evaluated on its own data) and `judge` (assertions, verdict, outputs).

use std::io::Write;

use tracing::Instrument as _;

use super::Loaded;
use crate::plan::Plan;
use crate::report::Report;
use crate::sinks::Sink;
use crate::verdict::{RunEnd, Verdict};
use crate::verify;

/// One process's whole run: `collect`, then `judge`. Returns the verdict and the judged report.
pub async fn finish(
    plan: &Plan,
    loaded: Loaded,
    sinks: &mut [Box<dyn Sink>],
    out: &mut dyn Write,
) -> (Verdict, Report) {
    let (mut report, end) = collect(plan, loaded, sinks);
    let verdict = judge(plan, &mut report, end, sinks, out).await;
    (verdict, report)
}

/// This process's report: built from the final snapshot and completed by the sinks (timeline,
/// threshold results on this process's data). Not judged yet.
pub fn collect(plan: &Plan, loaded: Loaded, sinks: &mut [Box<dyn Sink>]) -> (Report, RunEnd) {
    for m in &loaded.fault_messages {
        eprintln!("trafficgen: faults: {m}");
    }
    let mut report = Report::build(plan, &loaded.last, loaded.meta);
    report.schedule_missed = loaded.schedule_missed;
    let header = loaded.last.totals();
    report.target_faults = loaded.target_faults.map(|m| {
        m.with_header(crate::faults::ByKind {
            latency: header.faults_latency,
            error: header.faults_error,
        })
    });
    report.cleanup = loaded.cleanup;
    for (i, why) in loaded.failed_faults {
        // The report lists the windows that started during the load, in plan order.
        if let Some(f) = report.faults.get_mut(i) {
            f.failed = Some(why);
        }
    }
    for s in sinks.iter_mut() {
        s.complete(&mut report);
    }
    (report, loaded.end)
}

/// Judges `report` (whose thresholds are already evaluated): `verify`, the verdict, then the
/// outputs in their fixed order.
pub async fn judge(
    plan: &Plan,
    report: &mut Report,
    end: RunEnd,
    sinks: &mut [Box<dyn Sink>],
    out: &mut dyn Write,
) -> Verdict {
    for s in sinks.iter_mut() {
        s.before_verify(report);
    }
    if let Some(v) = &plan.verify {
        let results = verify::run(v, report)
            .instrument(tracing::info_span!(
                "verify",
                assertions = v.assertions.len()
            ))
            .await;
        report.set_verify(results);
    }
    let mut verdict = Verdict::decide(end, &report.thresholds, &report.verify)
        .with_schedule(report)
        .with_faults_failed(report);
    verdict.apply(report);
    if let Some(path) = &plan.output.report
        && let Err(e) = report.write(path)
    {
        eprintln!("trafficgen: {e}");
        verdict = verdict.failed(format!("the report was not written: {e}"));
        verdict.apply(report);
    }
    // A closed stdout must not change the verdict or skip the flush below.
    let _ = writeln!(out, "{}", report.summary());
    for s in sinks.iter_mut() {
        for m in s.finish(report).await {
            eprintln!("trafficgen: {m}");
        }
    }
    verdict
}
