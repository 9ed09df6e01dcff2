//! A local simulation of a distributed run (issue 14): N trafficgen processes (the built
//! binary) with `JOB_COMPLETION_INDEX` set, as an Indexed Job sets it, and the coordinator on
//! an ephemeral loopback port, started a second apart, against one in-test todo-api. Checked:
//! one run id, starts within 100 ms, merged counts equal the app's own counters and a
//! single-process run of the same plan, the coordinator's exit code is the merged verdict, a
//! segment failing its own share neither stops nor fails, a missing segment fails the
//! coordinator within its timeout, server-side faults are applied once. Also the summary file
//! (≤ 4 KiB) and the report log line, and the flags' errors (exit 2).

mod harness;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use harness::{
    Dist, FaultApp, Proc, free_port, read_json, requests, scenario, scenario_at, start_segments,
    started_at, watch_rules,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_segments_share_one_run_one_start_and_one_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let app = FaultApp::start().await;
    let url = format!("http://{}", app.addr);

    // The reference: one process, the same plan.
    let single_scenario = scenario_at(dir.path(), "single.yaml", 5, "500ms", "");
    let (b_req, b_faults) = (app.todo_requests().await, app.faults_injected().await);
    let single_report = dir.path().join("single.json");
    let single = Proc::spawn(
        dir.path(),
        "single",
        &[
            "run",
            single_scenario.to_str().unwrap(),
            "--target-url",
            &url,
            "--report",
            single_report.to_str().unwrap(),
            "--workers",
            "1",
        ],
        &[],
    )
    .wait(Duration::from_secs(30))
    .await;
    assert_eq!(single.code, Some(0), "{}", single.stderr);
    let single_report = read_json(&single_report);
    let single_requests = app.todo_requests().await - b_req;
    let single_faults = app.faults_injected().await - b_faults;
    assert_eq!(requests(&single_report), 10, "constant 5/s for 2 s");
    assert_eq!(single_requests, 10);
    assert_eq!(
        single_faults, 5,
        "the 5 arrivals 0.6 s … 1.4 s inside the 503 window 0.5 s – 1.5 s"
    );

    // Each share (3 or 4 requests, ~2/s) fails these; the whole run (10, ~5/s) holds
    // them. The abort_on_fail one would have stopped a segment on its own share.
    let dist = scenario_at(
        dir.path(),
        "dist.yaml",
        5,
        "500ms",
        "thresholds:\n  requests:\n    - \"count>=10\"\n    - threshold: \"rate>=3/s\"\n      abort_on_fail: true\n  response_time: \"p(99)<5s over 1s\"\n",
    );
    let (b_req, b_faults) = (app.todo_requests().await, app.faults_injected().await);
    let (max_rules, stop_watch) = watch_rules(&app);
    let port = free_port();
    let d = Dist {
        dir: dir.path(),
        scenario: &dist,
        url: &url,
        n: 3,
        port,
        timeout: "20s",
        extra: &[],
    };
    let procs = start_segments(&d, &[0, 1, 2], Duration::from_millis(1200)).await;
    let mut ended = BTreeMap::new();
    for (i, p) in procs {
        ended.insert(i, p.wait(Duration::from_secs(40)).await);
    }
    let _ = stop_watch.send(());
    for (i, e) in &ended {
        assert_eq!(
            e.code,
            Some(0),
            "segment {i}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
            e.code,
            e.stdout,
            e.stderr
        );
    }
    let merged = read_json(&dir.path().join("seg-0.json"));
    let seg: Vec<Value> = (1..3)
        .map(|i| read_json(&dir.path().join(format!("seg-{i}.json"))))
        .collect();

    // One run id, one start.
    let run_id = merged["run_id"].as_str().unwrap();
    assert!(!run_id.contains(','), "one run id, not a list: {run_id}");
    for s in &seg {
        assert_eq!(s["run_id"], merged["run_id"]);
    }
    let starts: Vec<_> = seg.iter().map(started_at).collect();
    let first = started_at(&merged); // the earliest of the three
    for s in &starts {
        let skew = (*s - first).abs();
        assert!(
            skew <= time::Duration::milliseconds(100),
            "segments started {skew} apart although they were launched 1.2 s apart"
        );
    }

    // Exact counts: merged = the app's own counters = the single-process run.
    let app_requests = app.todo_requests().await - b_req;
    assert_eq!(requests(&merged), app_requests);
    assert_eq!(requests(&merged), single_requests);
    // Arrival k belongs to segment k % 3: 0,3,6,9 (4), 1,4,7 (3), 2,5,8 (3).
    assert_eq!(
        seg.iter().map(requests).collect::<Vec<_>>(),
        [3, 3],
        "segments 1 and 2"
    );
    assert_eq!(requests(&merged) - 6, 4, "segment 0");

    // Server-side faults once: one live rule at a time, and the same count as one process.
    assert_eq!(app.faults_injected().await - b_faults, single_faults);
    assert_eq!(
        max_rules.load(Ordering::SeqCst),
        1,
        "exactly one rule was live during the window (one per segment would compound)"
    );

    // The segments' own shares failed the thresholds but neither stopped nor failed the run.
    for s in &seg {
        assert!(
            s["aborted"].is_null(),
            "a segment aborted: {}",
            s["aborted"]
        );
        assert_eq!(s["verdict"]["state"], "thresholds_failed");
    }
    assert_eq!(
        merged["verdict"]["state"], "passed",
        "{}",
        merged["verdict"]
    );
    assert_eq!(merged["segment"]["count"], 1);

    // The coordinator's summary file and report line; the segments print no report line.
    let summary = std::fs::read_to_string(dir.path().join("summary-0.json")).unwrap();
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["role"], "coordinator");
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["totals"]["requests"], 10);
    let seg_summary = read_json(&dir.path().join("summary-1.json"));
    assert_eq!(seg_summary["role"], "segment");
    assert_eq!(seg_summary["exit_code"], 0);
    let line = ended[&0]
        .stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("trafficgen-report: "))
        .expect("the report line is the coordinator's last stdout line");
    let logged: Value = serde_json::from_str(line).unwrap();
    assert_eq!(logged["run_id"], merged["run_id"]);
    assert_eq!(requests(&logged), 10);
    assert!(!ended[&1].stdout.contains("trafficgen-report: "));
    app.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinators_exit_code_is_the_merged_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let app = FaultApp::start().await;
    let url = format!("http://{}", app.addr);
    // 20 requests in all: crossed on the merged data.
    let s = scenario(
        dir.path(),
        "fail.yaml",
        "thresholds:\n  requests: \"count>=1000\"\n",
    );
    let d = Dist {
        dir: dir.path(),
        scenario: &s,
        url: &url,
        n: 2,
        port: free_port(),
        timeout: "20s",
        extra: &[],
    };
    let procs = start_segments(&d, &[1, 0], Duration::from_millis(800)).await;
    let mut ended = BTreeMap::new();
    for (i, p) in procs {
        ended.insert(i, p.wait(Duration::from_secs(40)).await);
    }
    assert_eq!(ended[&0].code, Some(99), "{}", ended[&0].stderr);
    assert_eq!(ended[&1].code, Some(0), "{}", ended[&1].stderr);
    let merged = read_json(&dir.path().join("seg-0.json"));
    assert_eq!(merged["verdict"]["exit_code"], 99);
    assert_eq!(requests(&merged), 20);
    let summary = read_json(&dir.path().join("summary-0.json"));
    assert_eq!(summary["exit_code"], 99);
    assert_eq!(summary["thresholds"][0]["passed"], false);
    app.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_never_arrives_fails_the_coordinator_within_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let app = FaultApp::start().await;
    let url = format!("http://{}", app.addr);
    let s = scenario(dir.path(), "s.yaml", "");
    let before = app.todo_requests().await;
    // Segment 2 of 3 is never started.
    let d = Dist {
        dir: dir.path(),
        scenario: &s,
        url: &url,
        n: 3,
        port: free_port(),
        timeout: "2s",
        extra: &[],
    };
    let procs = start_segments(&d, &[0, 1], Duration::from_millis(200)).await;
    let mut ended = BTreeMap::new();
    for (i, p) in procs {
        ended.insert(i, p.wait(Duration::from_secs(20)).await);
    }
    let c = &ended[&0];
    assert_eq!(c.code, Some(1), "{}", c.stderr);
    assert!(
        c.stderr.contains("segment(s) 2 of 3 never registered"),
        "names the missing segment: {}",
        c.stderr
    );
    assert!(
        c.took < Duration::from_secs(6),
        "failed after {:?}, timeout 2s",
        c.took
    );
    assert_eq!(ended[&1].code, Some(1), "{}", ended[&1].stderr);
    let summary = read_json(&dir.path().join("summary-0.json"));
    assert_eq!(summary["exit_code"], 1);
    assert!(summary["message"].as_str().unwrap().contains("2 of 3"));
    assert_eq!(
        app.todo_requests().await,
        before,
        "no load without all segments"
    );
    app.shut_down().await;
}

#[test]
fn segment_flags_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path(), "s.yaml", "");
    let run = |args: &[&str], env: &[(&str, String)]| {
        let mut c = assert_cmd::Command::cargo_bin("trafficgen").unwrap();
        c.env_remove("JOB_COMPLETION_INDEX")
            .env_remove("TRAFFICGEN_SEGMENT")
            .env_remove("TRAFFICGEN_SEGMENTS")
            .env_remove("TRAFFICGEN_COORDINATOR")
            .arg("run")
            .arg(&s)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .timeout(Duration::from_secs(20));
        c.output().unwrap()
    };
    let summary = dir.path().join("sum.json");
    let out = run(
        &[
            "--segments",
            "3",
            "--summary-file",
            summary.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JOB_COMPLETION_INDEX is not set"));
    let sum = read_json(&summary);
    assert_eq!(sum["exit_code"], 2);
    let out = run(
        &["--segments", "3"],
        &[("JOB_COMPLETION_INDEX", "3".into())],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range 0..3"));
    let out = run(&["--coordinator", "127.0.0.1:1"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--coordinator needs"));
    let out = run(&["--report-log=maybe"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

/// The summary file stays ≤ 4 KiB however many thresholds the scenario has (failing ones are
/// kept first), and `TRAFFICGEN_REPORT_LOG` takes true/false/1/0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_file_fits_4_kib_and_report_log_follows_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let app = FaultApp::start().await;
    let url = format!("http://{}", app.addr);
    let mut th = String::from("thresholds:\n  response_time:\n");
    for i in 0..150 {
        th += &format!("    - \"p(99)<{}ms\"\n", 10_000 + i);
    }
    th += "  requests: \"count>=100000\"\n";
    let s = scenario(dir.path(), "many.yaml", &th);
    for (value, expect_line) in [("1", true), ("false", false)] {
        let summary = dir.path().join(format!("sum-{value}.json"));
        let e = Proc::spawn(
            dir.path(),
            &format!("many-{value}"),
            &[
                "run",
                s.to_str().unwrap(),
                "--target-url",
                &url,
                "--duration",
                "1s",
                "--summary-file",
                summary.to_str().unwrap(),
            ],
            &[("TRAFFICGEN_REPORT_LOG", value.into())],
        )
        .wait(Duration::from_secs(30))
        .await;
        assert_eq!(e.code, Some(99), "{}", e.stderr);
        let text = std::fs::read_to_string(&summary).unwrap();
        assert!(text.len() <= 4096, "{} bytes", text.len());
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["exit_code"], 99);
        let kept = v["thresholds"].as_array().unwrap();
        assert!(v["thresholds_omitted"].as_u64().unwrap() > 0);
        assert_eq!(
            kept.len() as u64 + v["thresholds_omitted"].as_u64().unwrap(),
            151
        );
        assert_eq!(
            kept[0]["passed"], false,
            "the failing threshold is kept first"
        );
        let has_line = e
            .stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("trafficgen-report: {"));
        assert_eq!(has_line, expect_line, "TRAFFICGEN_REPORT_LOG={value}");
    }
    app.shut_down().await;
}

/// Live across segments: `requests: count<15` with `abort_on_fail` (4 s at 10/s: 40 planned,
/// 20 per share) fails on the merged data at about 1.5 s, long before any share reaches 15;
/// the coordinator stops its own load and tells the segment to stop. The coordinator exits
/// 98, the segment 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_is_judged_on_all_segments_live_and_stops_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let app = FaultApp::start().await;
    let url = format!("http://{}", app.addr);
    let s = scenario(
        dir.path(),
        "abort.yaml",
        "thresholds:\n  requests:\n    - threshold: \"count<15\"\n      abort_on_fail: true\n",
    );
    let before = app.todo_requests().await;
    let d = Dist {
        dir: dir.path(),
        scenario: &s,
        url: &url,
        n: 2,
        port: free_port(),
        timeout: "20s",
        extra: &["--duration", "4s"],
    };
    let procs = start_segments(&d, &[0, 1], Duration::from_millis(700)).await;
    let mut ended = BTreeMap::new();
    for (i, p) in procs {
        ended.insert(i, p.wait(Duration::from_secs(40)).await);
    }
    assert_eq!(ended[&0].code, Some(98), "{}", ended[&0].stderr);
    assert_eq!(ended[&1].code, Some(0), "{}", ended[&1].stderr);
    let merged = read_json(&dir.path().join("seg-0.json"));
    let segment = read_json(&dir.path().join("seg-1.json"));
    let reason = segment["aborted"]
        .as_str()
        .expect("the segment was stopped");
    assert!(
        reason.contains("count<15") && reason.contains("across all segments"),
        "{reason}"
    );
    assert_eq!(merged["verdict"]["state"], "aborted");
    let total = requests(&merged);
    assert!(
        (15..35).contains(&total),
        "stopped soon after the merged count crossed 15, well before the planned 40: {total}"
    );
    assert!(
        requests(&segment) < 17,
        "the segment stopped early too (its share: 20)"
    );
    assert_eq!(app.todo_requests().await - before, total);
    app.shut_down().await;
}

/// SIGTERM to the coordinator mid-run (a deleted Job): it stops its load and tells the
/// segments to stop; they deliver and exit 0; the coordinator exits 105 (interrupted, never a
/// pass) with the merged report and summary written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_coordinator_stops_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    let app = FaultApp::start().await;
    let url = format!("http://{}", app.addr);
    let s = scenario(
        dir.path(),
        "term.yaml",
        "thresholds:\n  errors: \"rate<100%\"\n",
    );
    let d = Dist {
        dir: dir.path(),
        scenario: &s,
        url: &url,
        n: 2,
        port: free_port(),
        timeout: "20s",
        extra: &["--duration", "6s"],
    };
    let mut procs = start_segments(&d, &[0, 1], Duration::from_millis(300)).await;
    let coordinator = procs.remove(&0).unwrap();
    coordinator.when_loading(Duration::from_secs(20)).await;
    coordinator.terminate();
    let c = coordinator.wait(Duration::from_secs(20)).await;
    let seg = procs
        .remove(&1)
        .unwrap()
        .wait(Duration::from_secs(20))
        .await;
    assert_eq!(c.code, Some(105), "{}", c.stderr);
    assert_eq!(seg.code, Some(0), "{}", seg.stderr);
    let segment = read_json(&dir.path().join("seg-1.json"));
    assert!(
        segment["aborted"]
            .as_str()
            .is_some_and(|r| r.contains("interrupted")),
        "the segment was told why: {}",
        segment["aborted"]
    );
    assert!(requests(&segment) < 25, "stopped early (its share: 30)");
    let merged = read_json(&dir.path().join("seg-0.json"));
    assert_eq!(merged["verdict"]["state"], "interrupted");
    assert_eq!(
        read_json(&dir.path().join("summary-0.json"))["exit_code"],
        105
    );
    app.shut_down().await;
}
