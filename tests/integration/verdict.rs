//! Verdict: thresholds on whole runs, op filters, no-samples failures, sliding windows (a spike
//! inside one window fails `over 1m` while the whole-run p99 passes), abort_on_fail, merge.

use std::time::Duration;

use trafficgen::plan::{Aggregation, Comparison, Segment, Threshold, ThresholdMetric};
use trafficgen::report::{self, Report, Timeline};
use trafficgen::verdict::{self, Live};

use super::report::{Sim, meta, plan as make_plan, run};

fn thr(
    source: &str,
    metric: ThresholdMetric,
    aggregation: Aggregation,
    comparison: Comparison,
    value: f64,
) -> Threshold {
    Threshold {
        source: source.into(),
        metric,
        op: None,
        aggregation,
        comparison,
        value,
        window: None,
        abort_on_fail: false,
        delay_abort_eval: Duration::ZERO,
    }
}

use Aggregation as A;
use Comparison as C;
use ThresholdMetric as M;

/// Evaluates `thresholds` on a 10 s synthetic run (fed to `Live` like the engine does).
fn verdicts(thresholds: Vec<Threshold>) -> Vec<report::ThresholdResult> {
    let plan = make_plan(thresholds);
    let r = run(&plan, 10, 100, |_| true);
    let live = Live::new(&plan);
    verdict::evaluate(&plan, &r, &live)
}

#[test]
fn whole_run_thresholds_pass_and_fail_with_observed_values() {
    let mut on_get = thr(
        "response_time{op:get}: max<1",
        M::ResponseTime,
        A::Max,
        C::Lt,
        1.0,
    );
    on_get.op = Some("get".into());
    let res = verdicts(vec![
        thr(
            "response_time: p(95)<300",
            M::ResponseTime,
            A::Percentile(95.0),
            C::Lt,
            300.0,
        ),
        thr(
            "response_time: p(50)<10",
            M::ResponseTime,
            A::Percentile(50.0),
            C::Lt,
            10.0,
        ),
        thr(
            "service_time: avg<1000",
            M::ServiceTime,
            A::Avg,
            C::Lt,
            1000.0,
        ),
        thr("schedule_lag: max<=2", M::ScheduleLag, A::Max, C::Le, 2.0),
        thr("errors: rate<0.02", M::Errors, A::Rate, C::Lt, 0.02),
        thr("errors: count==0", M::Errors, A::Count, C::Eq, 0.0),
        thr(
            "requests: count>=1000",
            M::Requests,
            A::Count,
            C::Ge,
            1000.0,
        ),
        thr("requests: rate>99", M::Requests, A::Rate, C::Gt, 99.0),
        thr("checks: rate>0.99", M::Checks, A::Rate, C::Gt, 0.99),
        thr("dropped: count==0", M::Dropped, A::Count, C::Eq, 0.0),
        on_get,
    ]);
    let got: Vec<(&str, bool)> = res.iter().map(|r| (r.source.as_str(), r.passed)).collect();
    assert_eq!(
        got,
        vec![
            ("response_time: p(95)<300", true),
            ("response_time: p(50)<10", false),
            ("service_time: avg<1000", true),
            ("schedule_lag: max<=2", true),
            ("errors: rate<0.02", true),
            ("errors: count==0", false),
            ("requests: count>=1000", true),
            ("requests: rate>99", true),
            ("checks: rate>0.99", false),
            ("dropped: count==0", true),
            ("response_time{op:get}: max<1", false),
        ]
    );
    // 1000 arrivals, k % 97 == 0 fail: 11 errors.
    assert_eq!(res[5].observed, Some(11.0));
    assert!((res[4].observed.unwrap() - 0.011).abs() < 1e-12);
    assert_eq!(res[6].observed, Some(1000.0));
    assert!((res[7].observed.unwrap() - 100.0).abs() < 1e-9);
    assert!(
        res[1]
            .message
            .contains("does not satisfy response_time: p(50)<10")
    );
    // The summary shows time thresholds in ms.
    let p = make_plan(vec![thr(
        "response_time: p(95)<300",
        M::ResponseTime,
        A::Percentile(95.0),
        C::Lt,
        300.0,
    )]);
    let mut r = run(&p, 2, 10, |_| true);
    r.set_thresholds(verdict::evaluate(&p, &r, &Live::new(&p)));
    let s = r.summary();
    assert!(
        s.contains("✓ response_time: p(95)<300  observed ") && s.contains(" ms\n"),
        "{s}"
    );
}

#[test]
fn a_threshold_without_samples_fails_and_says_so() {
    let mut unknown = thr(
        "response_time{op:nope}: p(99)<300",
        M::ResponseTime,
        A::Percentile(99.0),
        C::Lt,
        300.0,
    );
    unknown.op = Some("nope".into());
    let res = verdicts(vec![
        // The synthetic run records no dropped arrivals and no checks would be 0/0 … but it has
        // checks; an op filter on an operation that never ran has no samples at all.
        unknown,
    ]);
    assert!(!res[0].passed);
    assert_eq!(res[0].observed, None);
    assert!(res[0].message.contains("no samples"), "{}", res[0].message);

    // An operation that exists but got no request: latency has no samples.
    let plan = make_plan(vec![
        {
            let mut t = thr(
                "response_time{op:list}: p(99)<300",
                M::ResponseTime,
                A::Percentile(99.0),
                C::Lt,
                300.0,
            );
            t.op = Some("list".into());
            t
        },
        thr("checks: rate>0.9", M::Checks, A::Rate, C::Gt, 0.9),
    ]);
    let mut sim = Sim::new();
    sim.ops[0].counts.requests = 0;
    let r = super::support::build_report(
        &plan,
        &sim.snapshot(Duration::from_secs(5), true),
        Timeline::new(&plan),
        meta(),
    );
    let res = verdict::evaluate(&plan, &r, &Live::new(&plan));
    for t in &res {
        assert!(!t.passed, "{t:?}");
        assert!(t.message.contains("no samples"), "{}", t.message);
    }
    let mut r = r;
    r.set_thresholds(res);
    assert!(!r.passed);
    assert!(
        r.summary()
            .contains("✗ checks: rate>0.9  observed no samples")
    );
}

/// 10 minutes at 100/s, 10 ms each, except a 3 s spike of 500 ms at minute 5 (0.5 % of all
/// requests): whole-run p99 is 10 ms, but the windows holding the spike have a p99 of 500 ms.
fn soak(live: &mut Live, sim: &mut Sim, abort_at: &mut Option<(u64, String)>) {
    for s in 0..600u64 {
        for i in 0..100u64 {
            let us = if (300..303).contains(&s) {
                500_000
            } else {
                10_000
            };
            sim.record(0, (s * 1000 + i * 10) as f64, us, 0, 200);
        }
        if let Some(reason) = live.observe(&sim.snapshot(Duration::from_secs(s + 1), false))
            && abort_at.is_none()
        {
            *abort_at = Some((s + 1, reason));
        }
    }
}

#[test]
fn a_spike_inside_one_window_fails_the_windowed_threshold_while_the_whole_run_passes() {
    let whole = thr(
        "response_time: p(99)<300",
        M::ResponseTime,
        A::Percentile(99.0),
        C::Lt,
        300.0,
    );
    let mut windowed = whole.clone();
    windowed.source = "response_time: p(99)<300 over 1m".into();
    windowed.window = Some(Duration::from_secs(60));
    let mut err_window = thr(
        "errors: rate<0.01 over 30s",
        M::Errors,
        A::Rate,
        C::Lt,
        0.01,
    );
    err_window.window = Some(Duration::from_secs(30));
    let plan = make_plan(vec![whole, windowed, err_window]);
    let mut live = Live::new(&plan);
    let mut sim = Sim::new();
    let mut abort = None;
    soak(&mut live, &mut sim, &mut abort);
    assert!(abort.is_none(), "no abort_on_fail threshold: {abort:?}");
    // Bounded memory: the ring of the 1 m window holds at most 60 ticks after 600.
    assert!(live.retained_ticks() <= 2 * 61, "{}", live.retained_ticks());
    let r = super::support::build_report(
        &plan,
        &sim.snapshot(Duration::from_secs(600), true),
        Timeline::new(&plan),
        meta(),
    );
    let res = verdict::evaluate(&plan, &r, &live);
    assert!(res[0].passed, "{:?}", res[0]);
    assert!((res[0].observed.unwrap() - 10.0).abs() < 0.01);
    assert!(!res[1].passed, "{:?}", res[1]);
    assert!(
        (res[1].observed.unwrap() - 500.0).abs() < 0.5,
        "{:?}",
        res[1]
    );
    assert!(
        res[1].message.contains("in the window"),
        "{}",
        res[1].message
    );
    assert!(res[2].passed, "{:?}", res[2]);
    assert_eq!(res[2].observed, Some(0.0));
}

#[test]
fn a_run_shorter_than_the_window_is_evaluated_whole_and_says_so() {
    let mut t = thr(
        "response_time: p(99)<5 over 10m",
        M::ResponseTime,
        A::Percentile(99.0),
        C::Lt,
        5.0,
    );
    t.window = Some(Duration::from_secs(600));
    let plan = make_plan(vec![t]);
    let mut live = Live::new(&plan);
    let mut sim = Sim::new();
    for s in 0..5u64 {
        sim.record(0, s as f64 * 1000.0, 20_000, 0, 200);
        assert!(
            live.observe(&sim.snapshot(Duration::from_secs(s + 1), false))
                .is_none()
        );
    }
    let r = super::support::build_report(
        &plan,
        &sim.snapshot(Duration::from_secs(5), true),
        Timeline::new(&plan),
        meta(),
    );
    let res = verdict::evaluate(&plan, &r, &live);
    assert!(!res[0].passed);
    assert!(
        res[0].message.contains("shorter than the 600s window"),
        "{}",
        res[0].message
    );
}

#[test]
fn abort_on_fail_stops_only_after_delay_abort_eval() {
    let mut t = thr(
        "response_time: p(99)<300 over 1m",
        M::ResponseTime,
        A::Percentile(99.0),
        C::Lt,
        300.0,
    );
    t.window = Some(Duration::from_secs(60));
    t.abort_on_fail = true;
    t.delay_abort_eval = Duration::from_secs(120);
    let plan = make_plan(vec![t]);
    let mut live = Live::new(&plan);
    let mut sim = Sim::new();
    let mut abort = None;
    soak(&mut live, &mut sim, &mut abort);
    let (at, reason) = abort.expect("the spike must abort the run");
    // The spike starts in second 301: 100 of the window's 6000 requests are over 1 %.
    assert_eq!(at, 301, "{reason}");
    assert!(
        reason.contains("response_time: p(99)<300 over 1m"),
        "{reason}"
    );

    // Whole-run error rate with a delay: errors from the start, no abort before 10 s.
    let mut e = thr("errors: rate<0.1", M::Errors, A::Rate, C::Lt, 0.1);
    e.abort_on_fail = true;
    e.delay_abort_eval = Duration::from_secs(10);
    let plan = make_plan(vec![e]);
    let mut live = Live::new(&plan);
    let mut sim = Sim::new();
    let mut first = None;
    for s in 0..20u64 {
        sim.record(0, s as f64 * 1000.0, 1000, 0, 503);
        if first.is_none()
            && live
                .observe(&sim.snapshot(Duration::from_secs(s + 1), false))
                .is_some()
        {
            first = Some(s + 1);
        }
    }
    assert_eq!(first, Some(10));
}

#[test]
fn merge_re_evaluates_thresholds_on_the_merged_data() {
    let thresholds = || {
        let mut w = thr(
            "requests: count>=100 over 2s",
            M::Requests,
            A::Count,
            C::Ge,
            100.0,
        );
        w.window = Some(Duration::from_secs(2));
        vec![
            thr(
                "requests: count>=1000",
                M::Requests,
                A::Count,
                C::Ge,
                1000.0,
            ),
            w,
        ]
    };
    let n = 2u64;
    let parts: Vec<Report> = (0..n)
        .map(|i| {
            let mut p = make_plan(thresholds());
            p.segment = Segment {
                index: i as u32,
                count: n as u32,
            };
            // Feed `Live` with the segment's snapshots through `run`'s report, then evaluate.
            let mut r = run(&p, 10, 100, |k| k % n == i);
            let live = Live::new(&p);
            let res = verdict::evaluate(&p, &r, &live);
            r.set_thresholds(res);
            r
        })
        .collect();
    // Each segment has 500 requests: its `count>=1000` fails.
    assert!(parts.iter().all(|r| !r.thresholds[0].passed && !r.passed));
    let merged = verdict::merge_reports(&parts).unwrap();
    assert_eq!(merged.thresholds[0].observed, Some(1000.0));
    assert!(merged.thresholds[0].passed);
    // The windowed count comes from the merged per-second timeline: 200 per 2 s window.
    assert_eq!(
        merged.thresholds[1].observed,
        Some(200.0),
        "{:?}",
        merged.thresholds[1]
    );
    assert!(merged.thresholds[1].passed);
    assert!(merged.passed);
    assert_eq!(merged.verdict.state, report::VerdictState::Passed);
    assert_eq!(merged.verdict.exit_code, 0);
}

#[test]
fn window_memory_is_bounded_whatever_the_interval_and_window() {
    // 250 ms ticks, 1 m window: ticks fold into 1 s slices.
    let mut t = thr(
        "response_time: p(99)<300 over 1m",
        M::ResponseTime,
        A::Percentile(99.0),
        C::Lt,
        300.0,
    );
    t.window = Some(Duration::from_secs(60));
    let mut long = t.clone();
    long.source = "response_time: p(99)<300 over 1h".into();
    long.window = Some(Duration::from_secs(3600));
    let plan = make_plan(vec![t]);
    let mut live = Live::new(&plan);
    let mut sim = Sim::new();
    for tick in 0..1200u64 {
        sim.record(0, tick as f64 * 250.0, 5_000 + tick, 0, 200);
        live.observe(&sim.snapshot(Duration::from_millis((tick + 1) * 250), false));
    }
    assert!(live.retained_ticks() <= 61, "{}", live.retained_ticks());

    // A 1 h window over 2 h of 1 s ticks: slices of 6 s, at most ~600 of them.
    let plan = make_plan(vec![long]);
    let mut live = Live::new(&plan);
    let mut sim = Sim::new();
    for s in 0..7200u64 {
        sim.record(0, s as f64 * 1000.0, 5_000, 0, 200);
        live.observe(&sim.snapshot(Duration::from_secs(s + 1), false));
    }
    assert!(live.retained_ticks() <= 601, "{}", live.retained_ticks());
    let r = super::support::build_report(
        &plan,
        &sim.snapshot(Duration::from_secs(7200), true),
        Timeline::new(&plan),
        meta(),
    );
    let res = verdict::evaluate(&plan, &r, &live);
    assert!(res[0].passed, "{:?}", res[0]);
    assert!((res[0].observed.unwrap() - 5.0).abs() < 0.01);
}
