//! Report: build from synthetic snapshots (known values recorded into histograms), timeline,
//! summary, write/read round trip, version check, merge exactness, JSON Schema.

use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use trafficgen::plan::{
    Arrivals, FaultKind, FaultVia, FaultWindow, LoadModel, OpKind, Operation, Plan, RateStage,
    Segment, Threshold, TodoOp,
};
use trafficgen::recorder::{Counts, ErrorKind, OpSnapshot, Snapshot, TraceRef};
use trafficgen::report::{self, Report, ReportError, RunMeta, Timeline, hist};

mod cli;

pub const OPS: [&str; 3] = ["create", "list", "get"];

/// A plan built in code (from `support::plan`): three todo operations, the given thresholds,
/// no planned duration (reports use the elapsed time of each synthetic run).
pub fn plan(thresholds: Vec<Threshold>) -> Plan {
    let ops = [TodoOp::Create, TodoOp::List, TodoOp::Get];
    let load = LoadModel::Open {
        start_rate: 100.0,
        stages: vec![RateStage {
            duration: Duration::ZERO,
            target: 100.0,
        }],
        arrivals: Arrivals::Constant,
        max_in_flight: 64,
        max_queue: 64,
    };
    let operations = OPS
        .iter()
        .zip(ops)
        .map(|(n, k)| Operation {
            name: n.to_string(),
            weight: 1,
            kind: OpKind::Todo(k),
            checks: vec![],
            follow_redirects: None,
            expect_status: Vec::new(),
        })
        .collect();
    let mut p = super::support::plan(None, load, operations, None);
    p.name = "synthetic".into();
    p.mix.pool_capacity = 100;
    p.target.max_connections = 8;
    p.target.ready.interval = Duration::from_millis(100);
    p.output.interval = Duration::from_secs(1);
    p.seed = 1;
    p.thresholds = thresholds;
    p
}

pub fn meta() -> RunMeta {
    RunMeta {
        run_id: "run-1".into(),
        started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ended_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_060),
        interrupted: false,
        aborted: None,
        target_url: "http://127.0.0.1:1".into(),
    }
}

/// Cumulative recorder state of a synthetic run, advanced one arrival at a time.
#[derive(Clone)]
pub struct Sim {
    pub ops: Vec<OpSnapshot>,
    pub slowest: Vec<TraceRef>,
    pub failed: Vec<TraceRef>,
}

impl Sim {
    pub fn new() -> Self {
        let h = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        Sim {
            ops: OPS
                .iter()
                .map(|n| OpSnapshot {
                    name: n.to_string(),
                    counts: Counts::default(),
                    response_time: h(),
                    service_time: h(),
                    lag: h(),
                    last_trace: None,
                    phases: Default::default(),
                })
                .collect(),
            slowest: vec![],
            failed: vec![],
        }
    }

    /// One completed request: response time `us`, service time `us - lag`, lag, status.
    pub fn record(&mut self, op: usize, at_ms: f64, us: u64, lag_us: u64, status: u16) {
        let o = &mut self.ops[op];
        o.counts.requests += 1;
        o.counts.status_class[(status / 100 - 1) as usize] += 1;
        match o.counts.status.binary_search_by_key(&status, |&(k, _)| k) {
            Ok(i) => o.counts.status[i].1 += 1,
            Err(i) => o.counts.status.insert(i, (status, 1)),
        }
        if status >= 500 {
            o.counts.errors[ErrorKind::Status5xx.index()] += 1;
        }
        if lag_us > 1000 {
            o.counts.late += 1;
        }
        o.counts.checks_passed += u64::from(status < 400);
        o.counts.checks_failed += u64::from(status >= 400);
        o.response_time.record(us).unwrap();
        o.service_time
            .record(us.saturating_sub(lag_us).max(1))
            .unwrap();
        o.lag.record(lag_us.max(1)).unwrap();
        let tr = TraceRef {
            trace_id: format!("{:032x}", (at_ms * 1000.0) as u128 + 1),
            op: OPS[op].into(),
            at_ms,
            response_time_ms: us as f64 / 1000.0,
            status: Some(status),
            error: (status >= 500).then_some(ErrorKind::Status5xx),
            fault: None,
        };
        if status >= 500 {
            self.failed.insert(0, tr.clone());
            self.failed.truncate(5);
        }
        self.slowest.push(tr);
        self.slowest
            .sort_by(|a, b| b.response_time_ms.total_cmp(&a.response_time_ms));
        self.slowest.truncate(5);
    }

    pub fn snapshot(&self, elapsed: Duration, finished: bool) -> Snapshot {
        Snapshot {
            elapsed,
            ops: self.ops.clone(),
            target_rate: 100.0,
            achieved_rate: 100.0,
            in_flight: 0,
            vus: 0,
            active_faults: vec![],
            slowest: self.slowest.clone(),
            failed: self.failed.clone(),
            faulted: vec![],
            fault_injected: vec![],
            finished,
            steps: vec![],
        }
    }
}

/// Deterministic pseudo-random latency in µs (1 ms … ~200 ms, long tail) for arrival `k`.
pub fn latency_us(k: u64) -> u64 {
    let x = k
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        >> 33;
    1000 + (x % 1000) * (x % 1000) / 5
}

/// Runs `secs` seconds at `rate`/s of synthetic arrivals; arrival k goes to op k % 3 and is
/// kept only if `keep(k)`. Returns the report (timeline fed once per second).
pub fn run(plan: &Plan, secs: u64, rate: u64, keep: impl Fn(u64) -> bool) -> Report {
    let mut sim = Sim::new();
    let mut timeline = Timeline::new(plan);
    for s in 0..secs {
        for i in 0..rate {
            let k = s * rate + i;
            if !keep(k) {
                continue;
            }
            let status = if k.is_multiple_of(97) { 503 } else { 200 };
            let at_ms = (k as f64) * 1000.0 / rate as f64;
            sim.record((k % 3) as usize, at_ms, latency_us(k), k % 2000, status);
        }
        timeline.observe(&sim.snapshot(Duration::from_secs(s + 1), false));
    }
    let last = sim.snapshot(Duration::from_secs(secs), true);
    super::support::build_report(plan, &last, timeline, meta())
}

#[test]
fn build_computes_counts_percentiles_rate_and_histograms() {
    let plan = plan(vec![]);
    let mut sim = Sim::new();
    // 1..=1000 ms into `create`, once each: p50 = 500 ms, p99 = 990 ms, max = 1000 ms.
    for v in 1..=1000u64 {
        sim.record(0, v as f64, v * 1000, 0, if v <= 10 { 500 } else { 201 });
    }
    let last = sim.snapshot(Duration::from_secs(10), true);
    let r = super::support::build_report(&plan, &last, Timeline::new(&plan), meta());
    let (name, create) = &r.ops[0];
    assert_eq!(name, "create");
    assert_eq!(create.counts.requests, 1000);
    assert_eq!(create.counts.errors[ErrorKind::Status5xx.index()], 10);
    assert_eq!(create.counts.status, vec![(201, 990), (500, 10)]);
    assert!((create.rate - 100.0).abs() < 1e-9, "rate {}", create.rate);
    let close = |a: f64, b: f64| (a - b).abs() <= b * 0.001 + 0.001;
    let p = &create.response_time_ms;
    assert!(close(p.p50, 500.0), "p50 {}", p.p50);
    assert!(close(p.p90, 900.0), "p90 {}", p.p90);
    assert!(close(p.p99, 990.0), "p99 {}", p.p99);
    assert!(close(p.max, 1000.0), "max {}", p.max);
    assert!(close(p.min, 1.0), "min {}", p.min);
    assert!(close(p.mean, 500.5), "mean {}", p.mean);
    // The serialized histogram holds every sample, in microseconds.
    let h = hist::decode(&create.histograms.response_time).unwrap();
    assert_eq!(h.len(), 1000);
    assert!(close(h.max() as f64, 1_000_000.0));
    // Empty operations report zeros, and the totals equal the only busy operation.
    assert_eq!(r.ops[1].1.counts.requests, 0);
    assert_eq!(r.ops[1].1.response_time_ms.p99, 0.0);
    assert_eq!(r.totals.counts, create.counts);
    assert_eq!(r.totals.response_time_ms, create.response_time_ms);
    assert_eq!(r.started_at, "2027-01-15T08:00:00Z");
    assert_eq!(r.slowest.len(), 5);
    assert_eq!(r.slowest[0].response_time_ms, 1000.0);
    // Not judged until the verdict stage says so; with no threshold, nothing was judged.
    assert!(!r.passed);
    let mut r = r;
    trafficgen::verdict::Verdict::of_report(&r).apply(&mut r);
    assert!(r.passed);
    assert_eq!(r.verdict.state, report::VerdictState::NoThresholds);
}

#[test]
fn timeline_has_one_point_per_second_with_that_seconds_percentiles() {
    let plan = plan(vec![]);
    let mut sim = Sim::new();
    let mut tl = Timeline::new(&plan);
    // Second 1: 100 × 10 ms; second 2: 100 × 400 ms (5 of them 503); second 3: 50 × 10 ms.
    // Ticks every 500 ms: a point per whole second, not per tick.
    for (sec, n, us) in [
        (0u64, 100u64, 10_000u64),
        (1, 100, 400_000),
        (2, 50, 10_000),
    ] {
        for i in 0..n {
            let status = if sec == 1 && i < 5 { 503 } else { 200 };
            sim.record(0, (sec * 1000 + i) as f64, us, 0, status);
            if i == n / 2 {
                tl.observe(&sim.snapshot(Duration::from_millis(sec * 1000 + 500), false));
            }
        }
        tl.observe(&sim.snapshot(Duration::from_secs(sec + 1), false));
    }
    let r = super::support::build_report(
        &plan,
        &sim.snapshot(Duration::from_secs(3), true),
        tl,
        meta(),
    );
    let t: Vec<(u64, u64, u64)> = r
        .timeline
        .iter()
        .map(|p| (p.t, p.requests, p.errors))
        .collect();
    assert_eq!(t, vec![(1, 100, 0), (2, 100, 5), (3, 50, 0)]);
    assert!(
        (r.timeline[0].p99_ms - 10.0).abs() < 0.05,
        "{}",
        r.timeline[0].p99_ms
    );
    assert!(
        (r.timeline[1].p50_ms - 400.0).abs() < 0.5,
        "{}",
        r.timeline[1].p50_ms
    );
    assert!((r.timeline[2].p99_ms - 10.0).abs() < 0.05);
}

#[test]
fn timeline_points_carry_p95_service_time_lag_and_errors_by_kind() {
    let plan = plan(vec![]);
    let mut sim = Sim::new();
    let mut tl = Timeline::new(&plan);
    // Second 1: 100 × 10 ms, no lag. Second 2: 100 × 400 ms of which 300 ms waited for a
    // connection (service time 100 ms); 7 of them 503.
    for (sec, us, lag) in [(0u64, 10_000u64, 0u64), (1, 400_000, 300_000)] {
        for i in 0..100 {
            let status = if sec == 1 && i < 7 { 503 } else { 200 };
            sim.record(1, (sec * 1000 + i) as f64, us, lag, status);
        }
        tl.observe(&sim.snapshot(Duration::from_secs(sec + 1), false));
    }
    let r = super::support::build_report(
        &plan,
        &sim.snapshot(Duration::from_secs(2), true),
        tl,
        meta(),
    );
    let near = |a: f64, b: f64| (a - b).abs() <= b * 0.002 + 0.01;
    let (a, b) = (&r.timeline[0], &r.timeline[1]);
    assert!(
        near(a.p95_ms, 10.0) && near(a.service_p95_ms, 10.0),
        "{a:?}"
    );
    assert!(a.lag_p99_ms <= 0.01, "{a:?}");
    assert_eq!(a.errors_by_kind, [0; ErrorKind::COUNT]);
    assert!(near(b.p95_ms, 400.0), "{b:?}");
    for s in [b.service_p50_ms, b.service_p95_ms, b.service_p99_ms] {
        assert!(near(s, 100.0), "service {s} in {b:?}");
    }
    assert!(
        near(b.lag_p99_ms, 300.0) && near(b.lag_max_ms, 300.0),
        "{b:?}"
    );
    let mut kinds = [0; ErrorKind::COUNT];
    kinds[ErrorKind::Status5xx.index()] = 7;
    assert_eq!((b.errors_by_kind, b.errors), (kinds, 7));
}

#[test]
fn final_partial_second_and_fault_windows_are_reported() {
    let mut plan = plan(vec![]);
    plan.faults = vec![
        FaultWindow {
            start: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            ops: vec![],
            route: None,
            method: None,
            share: 0.5,
            kind: FaultKind::Error { status: 503 },
            via: FaultVia::Header,
        },
        FaultWindow {
            start: Duration::from_secs(30),
            duration: Duration::from_secs(5),
            ops: vec![],
            route: None,
            method: None,
            share: 1.0,
            kind: FaultKind::Latency {
                delay: Duration::from_millis(5),
                jitter: Duration::ZERO,
                span: None,
            },
            via: FaultVia::Server,
        },
    ];
    let mut sim = Sim::new();
    let mut tl = Timeline::new(&plan);
    sim.record(0, 0.0, 1000, 0, 200);
    tl.observe(&sim.snapshot(Duration::from_secs(1), false));
    sim.record(0, 1100.0, 1000, 0, 503);
    sim.ops[0].counts.faults_error += 1;
    let mut s = sim.snapshot(Duration::from_millis(1500), true);
    s.active_faults = vec![0];
    // Credited per window by the recorder when the request was recorded.
    s.fault_injected = vec![1];
    tl.observe(&s);
    let r = super::support::build_report(&plan, &s, tl, meta());
    // The load ended at 1.5 s: the second window never started; the first ends with the load.
    assert_eq!(r.faults.len(), 1);
    assert_eq!(r.faults[0].kind, "error");
    assert_eq!(r.faults[0].end_s, 1.5);
    assert_eq!(r.faults[0].injected, Some(1));
    let t: Vec<(u64, u64, Vec<usize>)> = r
        .timeline
        .iter()
        .map(|p| (p.t, p.requests, p.faults.clone()))
        .collect();
    assert_eq!(t, vec![(1, 1, vec![]), (2, 1, vec![0])]);
}

#[test]
fn summary_lists_ops_errors_percentiles_thresholds_and_traces() {
    let mut r = run(&plan(vec![]), 5, 100, |_| true);
    r.config.grafana_url = Some("http://grafana.local:3000/".into());
    r.set_thresholds(vec![
        report::ThresholdResult {
            window: None,
            source: "response_time: p(95)<300".into(),
            passed: true,
            observed: Some(120.5),
            message: String::new(),
        },
        report::ThresholdResult {
            window: None,
            source: "errors: rate<0.001".into(),
            passed: false,
            observed: Some(0.0103),
            message: "observed 0.0103 does not satisfy errors: rate<0.001".into(),
        },
    ]);
    trafficgen::verdict::Verdict::of_report(&r).apply(&mut r);
    let s = r.summary();
    for needle in [
        "create: 167 requests",
        "status_5xx",
        "p99.9",
        "service",
        "lag",
        "dropped 0",
        "✓ response_time: p(95)<300  observed 120.5000",
        "✗ errors: rate<0.001  observed 0.0103",
        "slowest requests (5 kept)",
        "failed requests",
        &r.slowest[0].trace_id,
        "http://grafana.local:3000/explore?left=",
        // The run's range: 5 min before the start (1_800_000_000 s) to 15 min after the end.
        "%5B%221799999700000%22%2C%221800000960000%22%2C%22tempo%22",
        "FAILED: 1 of 2 threshold(s) failed",
    ] {
        assert!(s.contains(needle), "summary lacks {needle:?}:\n{s}");
    }
    assert!(!r.passed);
}

#[test]
fn write_then_read_round_trips_and_checks_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let r = run(&plan(vec![]), 3, 50, |_| true);
    r.write(&path).unwrap();
    assert_eq!(Report::read(&path).unwrap(), r);
    // No temp file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["version"] = 99.into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    match Report::read(&path) {
        Err(e @ ReportError::Format { .. }) => {
            let m = e.to_string();
            assert!(m.contains("report version 99 is not supported"), "{m}");
            assert!(m.contains("report.json"), "{m}");
        }
        other => panic!("expected a version error, got {other:?}"),
    }
    std::fs::write(&path, b"{\"hello\": 1}").unwrap();
    let m = Report::read(&path).unwrap_err().to_string();
    assert!(
        m.contains("not a trafficgen report: no `version` field"),
        "{m}"
    );
    let m = Report::read(&dir.path().join("absent.json"))
        .unwrap_err()
        .to_string();
    assert!(m.contains("absent.json"), "{m}");
}

fn segment_plan(i: u32, n: u32) -> Plan {
    let mut p = plan(vec![]);
    p.segment = Segment { index: i, count: n };
    p
}

#[test]
fn merge_of_segments_equals_the_whole_count_for_count_and_bucket_for_bucket() {
    let (secs, rate, n) = (20, 150, 4u64);
    let whole = run(&plan(vec![]), secs, rate, |_| true);
    // Arrival k belongs to segment k % N, as the scheduler splits the load.
    let parts: Vec<Report> = (0..n)
        .rev() // order of the inputs does not matter
        .map(|i| {
            run(&segment_plan(i as u32, n as u32), secs, rate, |k| {
                k % n == i
            })
        })
        .collect();
    let merged = report::merge(&parts).unwrap();
    assert_eq!(merged.segment, Segment::WHOLE);
    assert_eq!(merged.ops.len(), whole.ops.len());
    let all = merged.ops.iter().zip(&whole.ops).map(|(a, b)| (&a.1, &b.1));
    for (m, w) in all.chain([(&merged.totals, &whole.totals)]) {
        assert_eq!(m.counts, w.counts);
        assert!((m.rate - w.rate).abs() < 1e-9);
        let (mr, ms, ml) = m.decode_histograms().unwrap();
        let (wr, ws, wl) = w.decode_histograms().unwrap();
        assert!(!wr.is_empty());
        assert_eq!(hist::buckets(&mr), hist::buckets(&wr));
        assert_eq!(hist::buckets(&ms), hist::buckets(&ws));
        assert_eq!(hist::buckets(&ml), hist::buckets(&wl));
        assert_eq!(m.response_time_ms, w.response_time_ms);
        assert_eq!(m.service_time_ms, w.service_time_ms);
        assert_eq!(m.lag_ms, w.lag_ms);
    }
    // N segments of a rate add up to the rate.
    let sum: f64 = parts.iter().map(|p| p.totals.rate).sum();
    assert!(
        (sum - merged.totals.rate).abs() < 1e-9,
        "{sum} vs {}",
        merged.totals.rate
    );
    let per_second = |r: &Report| -> Vec<(u64, u64, u64)> {
        r.timeline
            .iter()
            .map(|p| (p.t, p.requests, p.errors))
            .collect()
    };
    assert_eq!(per_second(&merged), per_second(&whole));
    let times = |r: &Report| -> Vec<f64> { r.slowest.iter().map(|t| t.response_time_ms).collect() };
    assert_eq!(times(&merged), times(&whole));
    assert_eq!(merged.failed, whole.failed);
}

#[test]
fn merge_adds_up_flow_steps_cleanups_and_keeps_failed_fault_windows() {
    let (secs, rate, n) = (4, 50, 2u64);
    let mut parts: Vec<Report> = (0..n)
        .map(|i| {
            run(&segment_plan(i as u32, n as u32), secs, rate, |k| {
                k % n == i
            })
        })
        .collect();
    for (i, p) in parts.iter_mut().enumerate() {
        // A step with the operation's own figures, so the merged step equals the merged op.
        let step = p.ops[0].1.clone();
        p.ops[0].1.steps = vec![("first".into(), step)];
        p.cleanup = Some(trafficgen::executor::Cleanup {
            known: 10,
            deleted: 9,
            failed: 1,
            duration_s: i as f64,
            ..Default::default()
        });
    }
    parts[0].faults = vec![trafficgen::report::FaultReport {
        start_s: 1.0,
        end_s: 2.0,
        kind: "error".into(),
        via: "server".into(),
        ops: vec![],
        route: None,
        share: 1.0,
        injected: None,
        failed: Some("HTTP 401".into()),
    }];
    parts[1].faults = vec![trafficgen::report::FaultReport {
        failed: None,
        ..parts[0].faults[0].clone()
    }];
    let merged = report::merge(&parts).unwrap();
    let op = &merged.ops[0].1;
    assert_eq!(op.steps.len(), 1);
    assert_eq!(op.steps[0].0, "first");
    assert_eq!(op.steps[0].1.counts, op.counts);
    assert_eq!(op.steps[0].1.response_time_ms, op.response_time_ms);
    let c = merged.cleanup.clone().unwrap();
    assert_eq!(
        (c.known, c.deleted, c.failed, c.duration_s),
        (20, 18, 2, 1.0)
    );
    assert_eq!(merged.faults[0].failed.as_deref(), Some("HTTP 401"));
    let v = trafficgen::verdict::Verdict::of_report(&merged);
    assert_eq!(v.state(), trafficgen::report::VerdictState::FaultsFailed);
}

#[test]
fn merge_rejects_incomplete_or_foreign_segment_sets() {
    let seg = |i, n| run(&segment_plan(i, n), 2, 10, |_| true);
    let err = |rs: &[Report]| report::merge(rs).unwrap_err().to_string();
    assert!(err(&[seg(0, 3), seg(2, 3)]).contains("segments 1 of 3 are missing"));
    assert!(err(&[seg(0, 2), seg(0, 2)]).contains("segment 0/2 given twice"));
    assert!(err(&[seg(0, 2), seg(1, 3)]).contains("does not belong"));
    let mut other = seg(1, 2);
    other.scenario = "else".into();
    assert!(err(&[seg(0, 2), other]).contains("different scenarios"));
    assert!(err(&[]).contains("no reports"));
    // Segments of different plans (another seed) or of different runs.
    let mut reseeded = segment_plan(1, 2);
    reseeded.seed += 1;
    let reseeded = run(&reseeded, 2, 10, |_| true);
    assert!(err(&[seg(0, 2), reseeded]).contains("ran different plans (seeds"));
    let mut rerun = seg(1, 2);
    rerun.run_id = "another".into();
    assert!(err(&[seg(0, 2), rerun]).contains("are from different runs"));
}

#[test]
fn committed_report_schema_is_current() {
    let committed = include_str!("../../scenarios/report.schema.json");
    let current = report::json_schema();
    if committed != current {
        panic!(
            "scenarios/report.schema.json is stale; regenerate it with \
             `cargo test --test integration write_report_schema -- --ignored`"
        );
    }
}

#[test]
#[ignore = "writes scenarios/report.schema.json"]
fn write_report_schema() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/report.schema.json");
    std::fs::write(path, report::json_schema()).unwrap();
}

#[test]
fn a_real_report_validates_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../scenarios/report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut r = run(&plan(vec![]), 3, 30, |_| true);
    r.config.grafana_url = Some("http://g".into());
    let value = serde_json::to_value(&r).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match its schema: {errors:?}"
    );
    // The schema is not vacuous: a report without `totals` is rejected.
    let mut broken = value.clone();
    broken.as_object_mut().unwrap().remove("totals");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn rates_are_per_real_elapsed_second_the_drain_included() {
    let mut plan = plan(vec![]);
    plan.load = LoadModel::Open {
        start_rate: 10.0,
        stages: vec![RateStage {
            duration: Duration::from_secs(60),
            target: 10.0,
        }],
        arrivals: Arrivals::Constant,
        max_in_flight: 8,
        max_queue: 8,
    };
    let mut sim = Sim::new();
    for i in 0..600u64 {
        sim.record(1, i as f64 * 100.0, 2_000, 0, 200);
    }
    // The final snapshot is taken after a 1.5 s drain: the planned duration stays the load's,
    // the rates are per second of the 61.5 s it really took (requests completed in the drain
    // belong to the load; dividing by 60 s would overstate the rate a slow target got).
    let r = super::support::build_report(
        &plan,
        &sim.snapshot(Duration::from_millis(61_500), true),
        Timeline::new(&plan),
        meta(),
    );
    assert_eq!(r.duration_s, 60.0);
    assert_eq!(r.elapsed_s, 61.5);
    assert!(
        (r.totals.rate - 600.0 / 61.5).abs() < 1e-12,
        "{}",
        r.totals.rate
    );
    // A complete run whose last request finished just before the planned end: the plan's 60 s.
    let r = super::support::build_report(
        &plan,
        &sim.snapshot(Duration::from_millis(59_990), true),
        Timeline::new(&plan),
        meta(),
    );
    assert_eq!(r.duration_s, 60.0);
    // An interrupted run counts what it ran.
    let mut interrupted = meta();
    interrupted.interrupted = true;
    let r = super::support::build_report(
        &plan,
        &sim.snapshot(Duration::from_secs(30), true),
        Timeline::new(&plan),
        interrupted,
    );
    assert_eq!(r.duration_s, 30.0);
}

#[test]
fn merge_keeps_every_segment_s_control_actions_in_time_order() {
    let event = |t_s: f64, who: &str| report::ControlEvent {
        t_s,
        at: String::new(),
        action: "annotate".into(),
        values: serde_json::Map::new(),
        who: who.into(),
    };
    let mut parts: Vec<Report> = (0..2)
        .map(|i| run(&segment_plan(i, 2), 2, 20, move |k| k % 2 == i as u64))
        .collect();
    parts[0].control = vec![event(0.5, "a"), event(1.5, "a")];
    parts[1].control = vec![event(1.0, "b")];
    let merged = report::merge(&parts).unwrap();
    let got: Vec<(f64, &str)> = merged
        .control
        .iter()
        .map(|e| (e.t_s, e.who.as_str()))
        .collect();
    assert_eq!(got, [(0.5, "a"), (1.0, "b"), (1.5, "a")]);
}
