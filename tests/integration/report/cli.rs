//! `trafficgen report merge|render` through the real binary: exit codes and files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use trafficgen::plan::{Aggregation, Comparison, Segment, Threshold, ThresholdMetric};
use trafficgen::report::Report;
use trafficgen::verdict::{self, Live};

use super::{plan, run};

fn count_at_least(n: f64) -> Threshold {
    Threshold {
        source: format!("requests: count>={n}"),
        metric: ThresholdMetric::Requests,
        op: None,
        aggregation: Aggregation::Count,
        comparison: Comparison::Ge,
        value: n,
        window: None,
        abort_on_fail: false,
        delay_abort_eval: Duration::ZERO,
    }
}

/// Writes the N segment reports of a 10 s, 100/s synthetic load with `threshold`.
fn segments(dir: &Path, n: u32, threshold: Threshold) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let mut p = plan(vec![threshold.clone()]);
            p.segment = Segment { index: i, count: n };
            let mut r = run(&p, 10, 100, |k| k % u64::from(n) == u64::from(i));
            let res = verdict::evaluate(&p, &r, &Live::new(&p));
            r.set_thresholds(res);
            let path = dir.join(format!("segment-{i}.json"));
            r.write(&path).unwrap();
            path
        })
        .collect()
}

fn trafficgen() -> Command {
    Command::cargo_bin("trafficgen").unwrap()
}

#[test]
fn merge_passes_when_the_whole_load_meets_a_threshold_no_segment_meets() {
    let dir = tempfile::tempdir().unwrap();
    let paths = segments(dir.path(), 3, count_at_least(1000.0));
    let out = dir.path().join("merged.json");
    let a = trafficgen()
        .arg("report")
        .arg("merge")
        .args(&paths)
        .arg("-o")
        .arg(&out)
        .assert();
    let stdout = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    a.code(0);
    assert!(stdout.contains("✓ requests: count>=1000"), "{stdout}");
    let merged = Report::read(&out).unwrap();
    assert_eq!(merged.totals.counts.requests, 1000);
    assert!(merged.passed);
    let rendered = trafficgen()
        .arg("report")
        .arg("render")
        .arg(&out)
        .assert()
        .code(0);
    let text = String::from_utf8(rendered.get_output().stdout.clone()).unwrap();
    assert!(text.contains("all: 1000 requests"), "{text}");
}

#[test]
fn merge_exits_99_when_the_merged_verdict_fails_and_1_on_a_bad_set() {
    let dir = tempfile::tempdir().unwrap();
    let paths = segments(dir.path(), 2, count_at_least(2000.0));
    let a = trafficgen()
        .arg("report")
        .arg("merge")
        .args(&paths)
        .assert()
        .code(99);
    let stdout = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains("✗ requests: count>=2000  observed 1000"),
        "{stdout}"
    );

    let a = trafficgen()
        .arg("report")
        .arg("merge")
        .arg(&paths[0])
        .assert()
        .code(1);
    let stderr = String::from_utf8(a.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("segments 1 of 2 are missing"), "{stderr}");

    let bad = dir.path().join("old.json");
    std::fs::write(&bad, br#"{"version": 0}"#).unwrap();
    let a = trafficgen()
        .arg("report")
        .arg("render")
        .arg(&bad)
        .assert()
        .code(1);
    let stderr = String::from_utf8(a.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("report version 0 is not supported"),
        "{stderr}"
    );
}
