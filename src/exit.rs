//! The one table from how a command ended to the process exit code. A run's code comes from its
//! `Verdict` (through `code`, which the verdict also writes into the report), so the summary,
//! the report and the exit code agree; the other rows are commands that never got to a verdict.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | passed, or no threshold or assertion was set (said as such) |
//! | 1 | any other error, including a generator failure (a worker panicked, the report could not be written) |
//! | 2 | invalid command line or scenario (a value beyond a limit included); `report merge` of reports of different plans or runs |
//! | 3 | the target never became ready |
//! | 96 | a server-side fault window could not be applied (no fault API, token refused) |
//! | 97 | the generator could not keep its schedule: latency figures are not trustworthy (unless `load.allow_schedule_miss`) |
//! | 98 | a threshold with `abort_on_fail` stopped the run |
//! | 99 | a threshold was crossed (also with failed assertions), or a `report compare` regression |
//! | 100 | an observability assertion failed |
//! | 105 | interrupted (SIGINT/SIGTERM) before the load ended: not a pass (k6 uses 105 too) |

use std::process::ExitCode;

use crate::report::VerdictState;

/// The exit code of a verdict state.
pub fn code(state: VerdictState) -> u8 {
    match state {
        VerdictState::Passed | VerdictState::NoThresholds => 0,
        VerdictState::GeneratorFailed | VerdictState::NotJudged => 1,
        VerdictState::FaultsFailed => 96,
        VerdictState::ScheduleMissed => 97,
        VerdictState::Aborted => 98,
        VerdictState::ThresholdsFailed | VerdictState::ThresholdsAndVerifyFailed => 99,
        VerdictState::VerifyFailed => 100,
        VerdictState::Interrupted => 105,
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A run, merge or verify that reached a verdict.
    Judged(VerdictState),
    /// A command without a verdict (validate, schema, render) that did its work.
    Done,
    /// Any other error (I/O, a report that cannot be read).
    Error,
    /// Invalid command line or scenario.
    Invalid,
    /// The target never became ready.
    NotReady,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Judged(state) => code(state),
            Exit::Done => 0,
            Exit::Error => 1,
            Exit::Invalid => 2,
            Exit::NotReady => 3,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_contract() {
        let table = [
            (Exit::Done, 0),
            (Exit::Judged(VerdictState::Passed), 0),
            (Exit::Judged(VerdictState::NoThresholds), 0),
            (Exit::Error, 1),
            (Exit::Judged(VerdictState::GeneratorFailed), 1),
            (Exit::Invalid, 2),
            (Exit::NotReady, 3),
            (Exit::Judged(VerdictState::FaultsFailed), 96),
            (Exit::Judged(VerdictState::ScheduleMissed), 97),
            (Exit::Judged(VerdictState::Aborted), 98),
            (Exit::Judged(VerdictState::ThresholdsFailed), 99),
            (Exit::Judged(VerdictState::ThresholdsAndVerifyFailed), 99),
            (Exit::Judged(VerdictState::VerifyFailed), 100),
            (Exit::Judged(VerdictState::Interrupted), 105),
        ];
        for (e, c) in table {
            assert_eq!(e.code(), c, "{e:?}");
        }
    }
}
