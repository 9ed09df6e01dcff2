//! The one table from a command's outcome to the process exit code (DESIGN.md, CONTRACTS.md).
//! An interrupted run (SIGINT/SIGTERM) whose thresholds passed exits 1: it did not do the load
//! it was asked for, so CI must not read it as a pass.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Any other error (I/O, a report that cannot be read, an interrupted run).
    Error,
    /// Invalid command line or scenario.
    Invalid,
    /// The target never became ready.
    NotReady,
    /// A threshold failed (also when it aborted the run).
    ThresholdFailed,
    /// An observability assertion failed.
    AssertionFailed,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Passed => 0,
            Outcome::Error => 1,
            Outcome::Invalid => 2,
            Outcome::NotReady => 3,
            Outcome::ThresholdFailed => 99,
            Outcome::AssertionFailed => 100,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(o.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_contract() {
        let table = [
            (Outcome::Passed, 0),
            (Outcome::Error, 1),
            (Outcome::Invalid, 2),
            (Outcome::NotReady, 3),
            (Outcome::ThresholdFailed, 99),
            (Outcome::AssertionFailed, 100),
        ];
        for (o, c) in table {
            assert_eq!(o.code(), c, "{o:?}");
        }
    }
}
