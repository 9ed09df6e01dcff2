//! The run's names and times (from the report) and the `${…}` substitution of queries.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::EVAL_DELAY;
use crate::report::Report;

/// The run's names and times, for substitution and query ranges.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: String,
    pub scenario: String,
    /// RFC 3339 as in the report.
    pub start_text: String,
    pub end_text: String,
    pub started: OffsetDateTime,
    pub ended: OffsetDateTime,
    /// Fault windows as (start, end), absolute.
    pub faults: Vec<(OffsetDateTime, OffsetDateTime)>,
}

impl RunContext {
    pub fn from_report(r: &Report) -> Result<RunContext, String> {
        let parse = |s: &str| OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("{s:?}: {e}"));
        let started = parse(&r.started_at)?;
        let ended = parse(&r.ended_at)?;
        // Checked: a report is input, and a fault time of 1e30 s must be an error, not a panic.
        let at = |s: f64| {
            Duration::try_from_secs_f64(s.max(0.0))
                .ok()
                .and_then(|d| time::Duration::try_from(d).ok())
                .and_then(|d| started.checked_add(d))
                .ok_or_else(|| format!("fault window time {s}s is out of range"))
        };
        Ok(RunContext {
            run_id: r.run_id.clone(),
            scenario: r.scenario.clone(),
            start_text: r.started_at.clone(),
            end_text: r.ended_at.clone(),
            started,
            ended,
            faults: r
                .faults
                .iter()
                .map(|f| Ok((at(f.start_s)?, at(f.end_s)?)))
                .collect::<Result<_, String>>()?,
        })
    }

    /// The instant queries are evaluated at (and range queries end at).
    pub fn eval_time(&self) -> OffsetDateTime {
        self.ended + EVAL_DELAY
    }

    /// Replaces `${run_id}`, `${scenario}`, `${range}` (start of the run → evaluation time,
    /// i.e. the run's length + `EVAL_DELAY`, whole seconds rounded up, e.g. `153s` for a 93 s
    /// run: `increase(x[${range}])` evaluated at the end + `EVAL_DELAY` covers the whole run),
    /// `${start}`/`${end}` (RFC 3339), `${start_unix}`/`${end_unix}` and
    /// `${fault_N_start}`/`${fault_N_end}` (unix seconds of window N, for PromQL's `@`).
    /// Unknown `${…}` stay as they are.
    pub fn substitute(&self, query: &str) -> String {
        let eval = self.eval_time();
        let range = ((eval - self.started).as_seconds_f64().ceil() as i64).max(1);
        let unix = |t: OffsetDateTime| format!("{:.3}", t.unix_timestamp_nanos() as f64 / 1e9);
        let mut out = String::with_capacity(query.len());
        let mut rest = query;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let Some(len) = rest[i..].find('}') else {
                rest = &rest[i..];
                break;
            };
            let name = &rest[i + 2..i + len];
            let value = match name {
                "run_id" => Some(self.run_id.clone()),
                "scenario" => Some(self.scenario.clone()),
                "range" => Some(format!("{range}s")),
                "start" => Some(self.start_text.clone()),
                "end" => Some(self.end_text.clone()),
                "start_unix" => Some(unix(self.started)),
                "end_unix" => Some(unix(self.ended)),
                _ => fault_var(name).and_then(|(n, end)| {
                    self.faults
                        .get(n)
                        .map(|&(s, e)| unix(if end { e } else { s }))
                }),
            };
            match value {
                Some(v) => out.push_str(&v),
                None => out.push_str(&rest[i..i + len + 1]),
            }
            rest = &rest[i + len + 1..];
        }
        out.push_str(rest);
        out
    }
}

use crate::plan::placeholders::fault_var;
pub use crate::plan::placeholders::{PLACEHOLDERS, is_placeholder};
