//! The limits of every number a scenario (or a flag) may give, checked before anything is
//! computed from them (the constants are the scenario format's, `scenario::limits`), so an
//! absurd value is a located problem (exit 2) and never a panic (an `Instant` overflow, a
//! `Duration` multiplication) or memory exhaustion (four billion connection tasks); and the
//! process's file-descriptor limit against the connections a plan opens.

use std::time::Duration;

use super::{Errors, Overrides};
use crate::scenario::Sp;
use crate::scenario::model::{self, ThinkTimeSpec};
use crate::scenario::units::Duration as Dur;

pub use crate::scenario::limits::*;

/// File descriptors kept free besides the connections (listeners, telemetry, report files,
/// the runtime's own); see `fd_problem`.
pub const FD_MARGIN: u64 = 128;

/// `720h`, `90m`, `7200s`, `250ms`: the largest whole unit.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        _ if d.subsec_nanos() != 0 || secs == 0 => Dur(d).to_string(),
        _ if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
        _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

/// Checks every limited value of the scenario (located) and of the overrides (named by flag).
pub(super) fn check(s: &model::Scenario, o: &Overrides, errs: &mut Errors) {
    let dur = |errs: &mut Errors, d: Option<&Sp<Dur>>, field: &str, max: Duration| {
        if let Some(d) = d.filter(|d| d.value.0 > max) {
            errs.at(
                d,
                field,
                format!(
                    "`{}` is beyond the limit of {}",
                    human(d.value.0),
                    human(max)
                ),
            );
        }
    };
    let int = |errs: &mut Errors, v: Option<&Sp<u32>>, field: &str, max: u32| {
        if let Some(v) = v.filter(|v| v.value > max) {
            errs.at(
                v,
                field,
                format!("{} is beyond the limit of {max}", v.value),
            );
        }
    };
    let rate = |errs: &mut Errors, r: Option<&Sp<crate::scenario::units::Rate>>, field: &str| {
        if let Some(r) = r.filter(|r| r.value.0 > MAX_RATE) {
            errs.at(
                r,
                field,
                format!("{}/s is beyond the limit of {MAX_RATE}/s", r.value.0),
            );
        }
    };
    if let Some(t) = &s.target {
        dur(
            errs,
            t.connect_timeout.as_ref(),
            "target.connect_timeout",
            MAX_TIMEOUT,
        );
        dur(
            errs,
            t.request_timeout.as_ref(),
            "target.request_timeout",
            MAX_TIMEOUT,
        );
        int(
            errs,
            t.max_connections.as_ref(),
            "target.max_connections",
            MAX_CONNECTIONS,
        );
        int(
            errs,
            t.max_streams.as_ref(),
            "target.max_streams",
            MAX_STREAMS,
        );
        int(
            errs,
            t.follow_redirects.as_ref(),
            "target.follow_redirects",
            MAX_REDIRECTS,
        );
        if let Some(b) = t.max_body.as_ref().filter(|b| b.value > MAX_BODY) {
            errs.at(
                b,
                "target.max_body",
                format!("{} is beyond the limit of {MAX_BODY} (64 MiB)", b.value),
            );
        }
        if let Some(r) = &t.ready {
            dur(errs, r.timeout.as_ref(), "target.ready.timeout", MAX_WAIT);
            dur(
                errs,
                r.interval.as_ref(),
                "target.ready.interval",
                MAX_TIMEOUT,
            );
        }
    }
    let l = &s.load.value;
    let mut total = Duration::ZERO;
    for (i, st) in l.stages.iter().enumerate() {
        let field = format!("load.stages[{i}]");
        dur(
            errs,
            Some(&st.duration),
            &format!("{field}.duration"),
            MAX_RUN,
        );
        total = total.saturating_add(st.duration.value.0);
        rate(errs, st.rate.as_ref(), &format!("{field}.rate"));
        int(errs, st.vus.as_ref(), &format!("{field}.vus"), MAX_VUS);
    }
    if total > MAX_RUN && o.duration.is_none() && l.stages.iter().all(|s| s.duration.0 <= MAX_RUN) {
        errs.at(
            &l.stages,
            "load.stages",
            format!(
                "the stages last {} in all, beyond the limit of {}",
                human(total),
                human(MAX_RUN)
            ),
        );
    }
    rate(errs, l.start_rate.as_ref(), "load.start_rate");
    rate(errs, l.max_rate.as_ref(), "load.max_rate");
    int(errs, l.start_vus.as_ref(), "load.start_vus", MAX_VUS);
    int(
        errs,
        l.max_in_flight.as_ref(),
        "load.max_in_flight",
        MAX_CONNECTIONS,
    );
    int(errs, l.max_queue.as_ref(), "load.max_queue", MAX_QUEUE);
    if let Some(t) = &l.think_time {
        let longest = match &t.value {
            ThinkTimeSpec::Fixed(d) => d.0,
            ThinkTimeSpec::Uniform { min, max } => min.0.max(max.0),
        };
        if longest > MAX_TIMEOUT {
            errs.at(
                t,
                "load.think_time",
                format!(
                    "{} is beyond the limit of {}",
                    human(longest),
                    human(MAX_TIMEOUT)
                ),
            );
        }
    }
    int(
        errs,
        s.mix.pool_capacity.as_ref(),
        "mix.pool_capacity",
        MAX_POOL,
    );
    dur(
        errs,
        s.mix.cleanup_timeout.as_ref(),
        "mix.cleanup_timeout",
        MAX_WAIT,
    );
    for (i, op) in s.mix.operations.iter().enumerate() {
        let field = format!("mix.operations[{i}]");
        int(
            errs,
            op.weight.as_ref(),
            &format!("{field}.weight"),
            MAX_WEIGHT,
        );
        int(
            errs,
            op.follow_redirects.as_ref(),
            &format!("{field}.follow_redirects"),
            MAX_REDIRECTS,
        );
        if let Some(c) = &op.checks {
            dur(
                errs,
                c.latency_below.as_ref(),
                &format!("{field}.checks.latency_below"),
                MAX_TIMEOUT,
            );
        }
        for (j, step) in op.flow.iter().flat_map(|f| f.iter()).enumerate() {
            if let Some(c) = &step.checks {
                dur(
                    errs,
                    c.latency_below.as_ref(),
                    &format!("{field}.flow[{j}].checks.latency_below"),
                    MAX_TIMEOUT,
                );
            }
        }
    }
    for (i, f) in s.faults.iter().flatten().enumerate() {
        let field = format!("faults[{i}]");
        dur(errs, Some(&f.start), &format!("{field}.start"), MAX_RUN);
        dur(
            errs,
            Some(&f.duration),
            &format!("{field}.duration"),
            MAX_RUN,
        );
        dur(
            errs,
            f.delay.as_ref(),
            &format!("{field}.delay"),
            MAX_TIMEOUT,
        );
        dur(
            errs,
            f.jitter.as_ref(),
            &format!("{field}.jitter"),
            MAX_TIMEOUT,
        );
    }
    if let Some(v) = &s.verify {
        dur(errs, v.deadline.as_ref(), "verify.deadline", MAX_WAIT);
        dur(errs, v.interval.as_ref(), "verify.interval", MAX_TIMEOUT);
        for (i, a) in v.assertions.iter().enumerate() {
            int(
                errs,
                a.limit.as_ref(),
                &format!("verify.assertions[{i}].limit"),
                MAX_TRACE_LOOKUPS,
            );
        }
    }
    if let Some(t) = &s.telemetry {
        dur(errs, t.linger.as_ref(), "telemetry.linger", MAX_WAIT);
    }
    if let Some(out) = &s.output {
        dur(errs, out.interval.as_ref(), "output.interval", MAX_TIMEOUT);
        int(
            errs,
            out.keep_traces.as_ref(),
            "output.keep_traces",
            MAX_KEEP_TRACES,
        );
    }
    for (key, list) in s.thresholds.iter().flat_map(|t| t.0.iter()) {
        for entry in list.0.iter() {
            if let Some(d) = entry.delay_abort_eval.filter(|d| d.0 > MAX_RUN) {
                errs.at(
                    list,
                    format!("thresholds.{}.delay_abort_eval", key.value),
                    format!("`{}` is beyond the limit of {}", human(d.0), human(MAX_RUN)),
                );
            }
        }
    }
    flags(o, errs);
}

/// The command line's (and environment's) limited values.
fn flags(o: &Overrides, errs: &mut Errors) {
    if let Some(r) = o.rate.filter(|r| *r > MAX_RATE) {
        errs.flag(
            "--rate",
            format!("{r}/s is beyond the limit of {MAX_RATE}/s"),
        );
    }
    if let Some(d) = o.duration.filter(|d| *d > MAX_RUN) {
        errs.flag(
            "--duration",
            format!("`{}` is beyond the limit of {}", human(d), human(MAX_RUN)),
        );
    }
    if let Some(v) = o.vus.filter(|v| *v > MAX_VUS) {
        errs.flag("--vus", format!("{v} is beyond the limit of {MAX_VUS}"));
    }
    if let Some(d) = o.linger.filter(|d| *d > MAX_WAIT) {
        errs.flag(
            "--metrics-linger",
            format!("`{}` is beyond the limit of {}", human(d), human(MAX_WAIT)),
        );
    }
}

/// The soft `RLIMIT_NOFILE` of this process (`None` where it cannot be read).
pub fn fd_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// The problem, if `connections` sockets (twice as many when the embedded todo-api answers them
/// in this same process) plus `FD_MARGIN` exceed `limit` file descriptors.
pub fn fd_problem(connections: u64, embedded: bool, limit: u64) -> Option<String> {
    let per = if embedded { 2 } else { 1 };
    let needed = connections.saturating_mul(per).saturating_add(FD_MARGIN);
    (needed > limit).then(|| {
        format!(
            "{connections} connections need about {needed} file descriptors{}, beyond this \
             process's limit of {limit} (`ulimit -n`); raise the limit or lower the value",
            if embedded {
                " (the embedded todo-api holds the other end of each)"
            } else {
                ""
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_problem_counts_both_ends_for_the_embedded_target() {
        assert_eq!(fd_problem(100, false, 1024), None);
        assert_eq!(fd_problem(896, false, 1024), None);
        assert!(fd_problem(897, false, 1024).is_some());
        let m = fd_problem(500, true, 1024).expect("2 × 500 + 128 > 1024");
        assert!(m.contains("1128 file descriptors"), "{m}");
        // Saturating, never an overflow.
        assert!(fd_problem(u64::MAX, true, 1 << 40).is_some());
    }
}
