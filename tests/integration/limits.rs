//! Values beyond a limit or an overflow, through the real binary: each is exit 2 with a
//! message naming the limit (never a panic, exit 101, nor memory exhaustion). The scenario
//! cases are data files (`tests/fixtures/limits/X.yaml` with the exact problems in
//! `X.expected`; `TRAFFICGEN_BLESS=1` rewrites them); the command-line and environment cases
//! are the table below. Also: `TRAFFICGEN_*` variables take what their flags take.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary with no `TRAFFICGEN_*` variable of the caller's.
fn bin() -> Command {
    let mut c = Command::cargo_bin("trafficgen").expect("trafficgen binary");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TRAFFICGEN_") {
            c.env_remove(k);
        }
    }
    c.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    c.current_dir(root());
    c.timeout(Duration::from_secs(30));
    c
}

/// Runs `c`, asserts exit 2 without a panic, and returns stderr.
fn refused(mut c: Command, what: &str) -> String {
    let out = c.output().expect("run trafficgen");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{what}: panicked:\n{err}");
    assert_eq!(out.status.code(), Some(2), "{what}: exit code\n{err}");
    err
}

#[test]
fn scenario_values_beyond_a_limit_are_located_problems() {
    let dir = Path::new("tests/fixtures/limits");
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "limit fixtures missing: {files:?}");
    let mut mismatches = Vec::new();
    for f in files {
        let rel = dir.join(f.file_name().expect("name"));
        let name = rel.display().to_string();
        let mut c = bin();
        if name.ends_with("fd-limit.yaml") {
            // The fd check reads this process's limit: run it under a known one.
            c = Command::new("sh");
            c.current_dir(root())
                .timeout(Duration::from_secs(30))
                .arg("-c")
                .arg("ulimit -n 1024 && exec \"$0\" validate \"$1\"")
                .arg(assert_cmd::cargo::cargo_bin("trafficgen"))
                .arg(&rel);
        } else {
            c.arg("validate").arg(&rel);
        }
        let err = refused(c, &name);
        let got: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("problem(s) in"))
            .collect();
        let expected_path = root().join(rel.with_extension("expected"));
        if std::env::var_os("TRAFFICGEN_BLESS").is_some() {
            std::fs::write(&expected_path, got.join("\n") + "\n").expect("write expected");
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let expected: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
        if got != expected {
            mismatches.push(format!(
                "{name}:\n  got:\n    {}\n  expected:\n    {}",
                got.join("\n    "),
                expected.join("\n    ")
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn command_line_and_environment_values_beyond_a_limit_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A sparse 1 GiB file: refused by its length, never read.
    let big = dir.path().join("big.yaml");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(1 << 30))
        .expect("sparse file");
    let big = big.to_string_lossy().into_owned();
    let too_big = "the scenario is larger than the limit of 4194304 bytes (4 MiB)";
    // (arguments, environment, a line stderr must contain)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["validate", "/dev/zero"], &[], too_big),
        (&["validate", &big], &[], too_big),
        (
            &[
                "run",
                "--url",
                "http://127.0.0.1:9/",
                "--rate",
                "1",
                "--duration",
                "1s",
                "--body",
                "@/dev/zero",
            ],
            &[],
            "--body @/dev/zero: the body file is larger than the limit of 4194304 bytes (4 MiB)",
        ),
        (
            &["run", "scenarios/closed-vus.yaml", "--vus", "300000"],
            &[],
            "<command line>:0:0: --vus: 300000 is beyond the limit of 100000",
        ),
        (
            &["run", "scenarios/closed-vus.yaml"],
            &[("TRAFFICGEN_VUS", "300000")],
            "<command line>:0:0: TRAFFICGEN_VUS: 300000 is beyond the limit of 100000",
        ),
        (
            &["run", "scenarios/smoke.yaml", "--rate", "1e30"],
            &[],
            "--rate: 1000000000000000000000000000000/s is beyond the limit of 100000000/s",
        ),
        (
            &["run", "scenarios/smoke.yaml", "--rate", "inf"],
            &[],
            "--rate: must be greater than 0",
        ),
        (
            &["run", "scenarios/smoke.yaml", "--duration", "1000000h"],
            &[],
            "--duration: `1000000h` is beyond the limit of 720h",
        ),
        (
            &["run", "scenarios/smoke.yaml"],
            &[("TRAFFICGEN_DURATION", "1000000h")],
            "TRAFFICGEN_DURATION: `1000000h` is beyond the limit of 720h",
        ),
        (
            &[
                "run",
                "scenarios/smoke.yaml",
                "--duration",
                "100000000000000000000h",
            ],
            &[],
            "is too long for a duration",
        ),
        (
            &["run", "scenarios/smoke.yaml", "--metrics-linger", "100000h"],
            &[],
            "--metrics-linger: `100000h` is beyond the limit of 24h",
        ),
        (
            &[
                "run",
                "scenarios/smoke.yaml",
                "--segment",
                "0/2",
                "--coordinator",
                "127.0.0.1:0",
                "--coordinator-timeout",
                "4000000000000000h",
            ],
            &[],
            "`4000000000000000h` is beyond the limit of 24h",
        ),
        (
            &["run", "scenarios/smoke.yaml"],
            &[("TRAFFICGEN_COORDINATOR_TIMEOUT", "4000000000000000h")],
            "environment variable TRAFFICGEN_COORDINATOR_TIMEOUT=4000000000000000h: `4000000000000000h` is beyond the limit of 24h",
        ),
        (
            &["run", "scenarios/smoke.yaml", "--workers", "100000000"],
            &[],
            "expected a number of workers in 1..=256",
        ),
        (
            &["run", "scenarios/smoke.yaml", "--segment", "0/4000000000"],
            &[],
            "at most 10000 segments",
        ),
        (
            &["run", "scenarios/smoke.yaml", "--segments", "4000000000"],
            &[],
            "expected a number of segments up to 10000",
        ),
        // Quick mode: the flags are named, not a place in the text made of them.
        (
            &[
                "run",
                "--url",
                "http://127.0.0.1:9/",
                "--rate",
                "2e7",
                "--duration",
                "100000000h",
            ],
            &[],
            "<command line>:0:0: --duration: `100000000h` is beyond the limit of 720h",
        ),
        (
            &["run", "--url", "http://127.0.0.1:9/", "--duration", "1s"],
            &[("TRAFFICGEN_VUS", "300000")],
            "<command line>:0:0: TRAFFICGEN_VUS: 300000 is beyond the limit of 100000",
        ),
    ];
    // A report is read as it is parsed: an endless file is an error at its first byte (exit 1,
    // like any unreadable report), never a read that exhausts memory.
    let out = bin()
        .args(["report", "merge", "/dev/zero", "/dev/zero"])
        .output()
        .expect("merge");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/dev/zero: not a trafficgen report: invalid JSON"),
        "{err}"
    );
    for (args, env, want) in cases {
        let mut c = bin();
        c.args(*args);
        for (k, v) in *env {
            c.env(k, v);
        }
        let what = format!("{args:?} {env:?}");
        let err = refused(c, &what);
        assert!(err.contains(want), "{what}: wanted `{want}` in:\n{err}");
    }
}

#[test]
fn variables_take_what_their_flags_take_and_name_themselves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("s.yaml");
    std::fs::write(
        &scenario,
        "name: env\nload:\n  stages:\n    - {duration: 300ms, rate: 10/s}\nmix:\n  operations:\n    - todo: list\n",
    )
    .expect("write");
    // Switches take 0/1/true/false; an empty variable is unset (here: no target URL, so the
    // embedded todo-api answers).
    let out = bin()
        .arg("run")
        .arg(&scenario)
        .env("TRAFFICGEN_QUIET", "0")
        .env("TRAFFICGEN_NO_PROGRESS", "1")
        .env("TRAFFICGEN_TARGET_URL", "")
        .env("TRAFFICGEN_REPORT_LOG", "true")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("trafficgen-report: "),
        "TRAFFICGEN_REPORT_LOG=true was applied: {stdout}"
    );
    // Invalid values: every one is reported, each naming its variable, exit 2.
    let mut c = bin();
    c.arg("run")
        .arg(&scenario)
        .env("TRAFFICGEN_QUIET", "maybe")
        .env("TRAFFICGEN_RATE", "fast")
        .env("TRAFFICGEN_DURATION", "5x");
    let err = refused(c, "invalid variables");
    for want in [
        "environment variable TRAFFICGEN_QUIET=maybe: expected a switch value",
        "environment variable TRAFFICGEN_RATE=fast: invalid float literal",
        "environment variable TRAFFICGEN_DURATION=5x: `5x`: unknown unit `x`",
    ] {
        assert!(err.contains(want), "wanted `{want}` in:\n{err}");
    }
    assert!(!err.contains("--rate"), "the flag is not named: {err}");
    // Only `run` reads the variables; and a flag given on the command line wins over its
    // variable, which is then not even checked.
    bin()
        .arg("validate")
        .arg(&scenario)
        .env("TRAFFICGEN_RATE", "fast")
        .assert()
        .code(0);
    let mut c = bin();
    c.args(["run", "--rate", "5"])
        .arg(&scenario)
        .env("TRAFFICGEN_RATE", "fast")
        .env("TRAFFICGEN_DURATION", "1000000h");
    let err = refused(c, "flag over variable");
    assert!(
        err.contains("TRAFFICGEN_DURATION: `1000000h` is beyond") && !err.contains("fast"),
        "{err}"
    );
}

/// A saved report is input too: `trafficgen verify REPORT` on a report whose fault window
/// time overflows fails its assertions with a message, never a panic.
#[test]
fn a_report_with_overflowing_times_is_a_failed_verify_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("v.yaml");
    std::fs::write(
        &scenario,
        "name: v\nload:\n  stages:\n    - {duration: 300ms, rate: 10/s}\nmix:\n  operations:\n    - todo: list\nfaults:\n  - {start: 0s, duration: 200ms, kind: latency, delay: 1ms}\nverify:\n  prometheus_url: http://127.0.0.1:9\n  deadline: 1s\n  assertions:\n    - promql: up\n",
    )
    .expect("write");
    let path = dir.path().join("r.json");
    let mut c = bin();
    c.args(["run", "--quiet", "--report"])
        .arg(&path)
        .arg(&scenario);
    let _ = c.output().expect("run");
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("report")).expect("json");
    r["faults"][0]["start_s"] = 1e30.into();
    std::fs::write(&path, r.to_string()).expect("write");
    let out = bin()
        .arg("verify")
        .arg(&path)
        .arg("--scenario")
        .arg(&scenario)
        .output()
        .expect("verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(out.status.code(), Some(100), "{text}");
    assert!(text.contains("out of range"), "{text}");
}
