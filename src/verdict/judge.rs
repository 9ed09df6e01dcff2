//! The one `Verdict` of a run (or of a merge, or of a re-verify): built from how the run ended,
//! the threshold results and the observability assertion results. It alone decides the state,
//! the summary's last line and — through `exit::code` — the exit code, and it writes all three
//! into the report (`Verdict::apply`), so they can never disagree.

use crate::exit;
use crate::report::{AssertionResult, Report, ThresholdResult, VerdictRecord, VerdictState};

/// How the load ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The planned load ran to its end (also: nothing to run, as for `report merge`).
    Completed,
    /// SIGINT/SIGTERM stopped it early.
    Interrupted,
    /// A threshold with `abort_on_fail` stopped it; the reason names the threshold.
    Aborted(String),
    /// The generator itself failed (a worker panicked, the report could not be written).
    GeneratorFailed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub end: RunEnd,
    pub thresholds: usize,
    pub thresholds_failed: usize,
    pub assertions: usize,
    pub assertions_failed: usize,
    /// Assertions not checked (their backend left out by `TRAFFICGEN_VERIFY_BACKENDS`):
    /// neither held nor failed, said in the line.
    pub assertions_skipped: usize,
    /// Why the generator could not keep its schedule, when that is a verdict of its own (the
    /// scenario did not allow it; see `with_schedule`).
    pub schedule_missed: Option<String>,
    /// Server-side fault windows that could not be applied, and the first one's reason.
    pub faults_failed: usize,
    pub fault_failure: Option<String>,
}

impl Verdict {
    pub fn decide(
        end: RunEnd,
        thresholds: &[ThresholdResult],
        assertions: &[AssertionResult],
    ) -> Verdict {
        Verdict {
            end,
            thresholds: thresholds.len(),
            thresholds_failed: thresholds.iter().filter(|t| !t.passed).count(),
            assertions: assertions.len(),
            assertions_failed: assertions.iter().filter(|a| a.failed()).count(),
            assertions_skipped: assertions.iter().filter(|a| a.skipped).count(),
            schedule_missed: None,
            faults_failed: 0,
            fault_failure: None,
        }
    }

    /// The same verdict, knowing whether the generator kept its schedule (`report`'s
    /// `schedule_missed`); an allowed miss (`load.allow_schedule_miss`) stays a warning the
    /// summary prints, not a state.
    pub fn with_schedule(mut self, report: &Report) -> Verdict {
        self.schedule_missed = report
            .schedule_missed
            .clone()
            .filter(|_| !report.config.allow_schedule_miss);
        self
    }

    /// The same verdict, knowing the report's fault windows that could not be applied.
    pub fn with_faults_failed(mut self, report: &Report) -> Verdict {
        let failed: Vec<(usize, &str)> = report
            .faults
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((i, f.failed.as_deref()?)))
            .collect();
        self.faults_failed = failed.len();
        self.fault_failure = failed.first().map(|(i, why)| format!("window {i}: {why}"));
        self
    }

    /// The verdict of a saved (or merged) report, from its own fields.
    pub fn of_report(report: &Report) -> Verdict {
        let end = match (&report.aborted, report.interrupted) {
            (Some(reason), _) => RunEnd::Aborted(reason.clone()),
            (None, true) => RunEnd::Interrupted,
            (None, false) => RunEnd::Completed,
        };
        Verdict::decide(end, &report.thresholds, &report.verify)
            .with_schedule(report)
            .with_faults_failed(report)
    }

    /// The same verdict, but the generator failed (keeps the counts for the message).
    pub fn failed(mut self, why: String) -> Verdict {
        self.end = RunEnd::GeneratorFailed(why);
        self
    }

    /// Precedence: a failed generator, then an early end (the load asked for was not done),
    /// then a missed schedule (no figure of the run can be trusted), then fault windows that
    /// could not be applied (the run did not test what was asked), then failed thresholds,
    /// then failed assertions.
    pub fn state(&self) -> VerdictState {
        match &self.end {
            RunEnd::GeneratorFailed(_) => VerdictState::GeneratorFailed,
            RunEnd::Interrupted => VerdictState::Interrupted,
            RunEnd::Aborted(_) => VerdictState::Aborted,
            RunEnd::Completed if self.schedule_missed.is_some() => VerdictState::ScheduleMissed,
            RunEnd::Completed if self.faults_failed > 0 => VerdictState::FaultsFailed,
            RunEnd::Completed => match (self.thresholds_failed > 0, self.assertions_failed > 0) {
                (true, true) => VerdictState::ThresholdsAndVerifyFailed,
                (true, false) => VerdictState::ThresholdsFailed,
                (false, true) => VerdictState::VerifyFailed,
                (false, false) if self.thresholds + self.assertions == 0 => {
                    VerdictState::NoThresholds
                }
                (false, false) => VerdictState::Passed,
            },
        }
    }

    pub fn passed(&self) -> bool {
        self.state().is_pass()
    }

    pub fn exit_code(&self) -> u8 {
        exit::code(self.state())
    }

    /// The summary's last line.
    pub fn line(&self) -> String {
        let failures = || {
            let mut parts = Vec::new();
            if self.thresholds_failed > 0 {
                parts.push(format!(
                    "{} of {} threshold(s)",
                    self.thresholds_failed, self.thresholds
                ));
            }
            if self.assertions_failed > 0 {
                parts.push(format!(
                    "{} of {} assertion(s)",
                    self.assertions_failed, self.assertions
                ));
            }
            parts.join(" and ")
        };
        let skipped = if self.assertions_skipped > 0 {
            format!(
                "; {} assertion(s) skipped, not checked",
                self.assertions_skipped
            )
        } else {
            String::new()
        };
        let judged = if self.thresholds_failed + self.assertions_failed > 0 {
            format!("; {} failed{skipped}", failures())
        } else {
            skipped.clone()
        };
        match (&self.end, self.state()) {
            (RunEnd::GeneratorFailed(why), _) => format!("FAILED: the generator failed: {why}"),
            (RunEnd::Interrupted, _) => format!(
                "INTERRUPTED: the run was stopped before the load ended, so it did not pass{judged}"
            ),
            (RunEnd::Aborted(reason), _) => format!("ABORTED: {reason}{judged}"),
            (_, VerdictState::ScheduleMissed) => format!(
                "SCHEDULE MISSED: the generator could not keep the schedule: latency figures are not trustworthy ({}){judged}",
                self.schedule_missed.as_deref().unwrap_or("")
            ),
            (_, VerdictState::FaultsFailed) => format!(
                "FAULTS FAILED: {} server-side fault window(s) could not be applied, so the run \
                 did not test what it was asked to ({}){judged}",
                self.faults_failed,
                self.fault_failure.as_deref().unwrap_or("")
            ),
            (_, VerdictState::NoThresholds) => {
                "NO THRESHOLDS: the run completed; no threshold or assertion was set, so nothing was judged"
                    .to_string()
            }
            (_, VerdictState::Passed) => format!(
                "PASSED: {} threshold(s) and {} assertion(s) held{skipped}",
                self.thresholds,
                self.assertions - self.assertions_skipped
            ),
            _ => format!("FAILED: {} failed{skipped}", failures()),
        }
    }

    /// What the report keeps of this verdict.
    pub fn record(&self) -> VerdictRecord {
        VerdictRecord {
            state: self.state(),
            exit_code: self.exit_code(),
            message: self.line(),
        }
    }

    /// Writes the verdict into the report (its `verdict` record and `passed`).
    pub fn apply(&self, report: &mut Report) {
        report.set_verdict(self.record());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(passed: bool) -> ThresholdResult {
        ThresholdResult {
            source: "errors: rate<1%".into(),
            passed,
            observed: Some(0.0),
            message: String::new(),
            window: None,
        }
    }

    #[test]
    fn precedence_and_codes() {
        let v = |end: RunEnd, ts: &[bool]| {
            let ts: Vec<_> = ts.iter().map(|&p| t(p)).collect();
            Verdict::decide(end, &ts, &[])
        };
        assert_eq!(
            v(RunEnd::Completed, &[]).state(),
            VerdictState::NoThresholds
        );
        assert_eq!(v(RunEnd::Completed, &[]).exit_code(), 0);
        assert_eq!(v(RunEnd::Completed, &[true]).state(), VerdictState::Passed);
        assert_eq!(v(RunEnd::Completed, &[true, false]).exit_code(), 99);
        assert_eq!(
            v(RunEnd::Interrupted, &[true]).state(),
            VerdictState::Interrupted
        );
        assert!(!v(RunEnd::Interrupted, &[true]).passed());
        assert_eq!(
            v(RunEnd::Aborted("x".into()), &[false]).state(),
            VerdictState::Aborted
        );
        let missed = Report {
            schedule_missed: Some("at 3 s: 40 of 100 arrivals released late".into()),
            ..Report::default()
        };
        let m = v(RunEnd::Completed, &[false]).with_schedule(&missed);
        assert_eq!(m.state(), VerdictState::ScheduleMissed);
        assert_eq!(m.exit_code(), 97);
        assert!(
            m.line()
                .starts_with("SCHEDULE MISSED: the generator could not keep")
        );
        // Below an early end, and only a warning when the scenario allows it.
        let m = v(RunEnd::Interrupted, &[]).with_schedule(&missed);
        assert_eq!(m.state(), VerdictState::Interrupted);
        let mut allowed = missed.clone();
        allowed.config.allow_schedule_miss = true;
        let m = v(RunEnd::Completed, &[true]).with_schedule(&allowed);
        assert_eq!(m.state(), VerdictState::Passed);
        let mut r = Report::default();
        r.faults.push(crate::report::FaultReport {
            start_s: 1.0,
            end_s: 2.0,
            kind: "latency".into(),
            via: "server".into(),
            ops: vec![],
            route: None,
            share: 1.0,
            injected: None,
            failed: Some("POST /admin/faults: HTTP 404".into()),
        });
        let faulty = v(RunEnd::Completed, &[false]).with_faults_failed(&r);
        assert_eq!(faulty.state(), VerdictState::FaultsFailed);
        assert_eq!(faulty.exit_code(), 96);
        assert!(
            faulty
                .line()
                .starts_with("FAULTS FAILED: 1 server-side fault window(s)"),
            "{}",
            faulty.line()
        );
        assert!(faulty.line().contains("HTTP 404"), "{}", faulty.line());
        assert!(
            faulty.line().contains("1 of 1 threshold(s)"),
            "{}",
            faulty.line()
        );
        // An early end still comes first.
        let stopped = v(RunEnd::Interrupted, &[]).with_faults_failed(&r);
        assert_eq!(stopped.state(), VerdictState::Interrupted);
        let failed = v(RunEnd::Completed, &[true]).failed("worker 0 panicked".into());
        assert_eq!(failed.state(), VerdictState::GeneratorFailed);
        assert_eq!(failed.exit_code(), 1);
        assert!(
            v(RunEnd::Completed, &[false])
                .line()
                .starts_with("FAILED: 1 of 1")
        );
    }
}
