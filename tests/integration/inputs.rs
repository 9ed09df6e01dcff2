//! The input side of a run through the real binary: expected statuses are not errors; the
//! seed is printed, stored and replays a run's choices; pre-run checks of the report path and
//! the listen addresses; `report merge` refuses different plans and runs.

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
    let mut c = Command::cargo_bin("trafficgen").expect("trafficgen binary");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TRAFFICGEN_") {
            c.env_remove(k);
        }
    }
    c.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    c.current_dir(root());
    c.timeout(Duration::from_secs(60));
    c
}

fn report(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("report written")).expect("json")
}

/// Requests and errors of operation `name` in a report.
fn op_counts(r: &serde_json::Value, name: &str) -> (u64, u64) {
    let ops = r["ops"].as_array().expect("ops");
    let (_, op) = ops
        .iter()
        .filter_map(|o| Some((o[0].as_str()?, &o[1])))
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no op {name}"));
    let errors: u64 = op["counts"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e.as_u64().unwrap_or(0))
        .sum();
    (op["counts"]["requests"].as_u64().unwrap_or(0), errors)
}

/// Every request of the fixture gets a 404 from the embedded todo-api: where the 404 is
/// expected (a status check, `expect_status`) it is no error; elsewhere it is.
#[test]
fn expected_statuses_are_not_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.json");
    let out = bin()
        .args([
            "run",
            "tests/fixtures/runs/expected-status.yaml",
            "--seed",
            "3",
        ])
        .arg("--report")
        .arg(&path)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r = report(&path);
    for (name, expected) in [
        ("checked", true),
        ("expected", true),
        ("plain", false),
        ("wrong", false),
        ("unexpected", false),
    ] {
        let (requests, errors) = op_counts(&r, name);
        assert!(requests > 0, "{name}: no requests");
        let want = if expected { 0 } else { requests };
        assert_eq!(errors, want, "{name}: {requests} requests, {errors} errors");
    }
    // The 200s nobody expected are `unexpected_status`, not a 4xx/5xx kind.
    let ops = r["ops"].as_array().expect("ops");
    let unexpected = ops
        .iter()
        .find(|o| o[0] == "unexpected")
        .map(|o| &o[1]["counts"])
        .expect("op unexpected");
    let kinds = unexpected["errors"].as_array().expect("errors");
    let (requests, _) = op_counts(&r, "unexpected");
    assert_eq!(kinds.len(), 12);
    assert_eq!(kinds[11].as_u64(), Some(requests), "{kinds:?}");
    assert_eq!(unexpected["status"][0][0].as_u64(), Some(200));
}

/// An HTTP/1.1 server that answers every request `200 ok` and records the request targets
/// under `/op/` per connection, in order (one connection per worker in the runs below, so a
/// connection's list is one worker's choices).
struct Recorder {
    port: u16,
    conns: std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>>,
}

impl Recorder {
    fn start() -> Recorder {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let all = conns.clone();
        // The accept loop ends with the test process; each connection's thread ends when the
        // generator closes it.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let all = all.clone();
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut w = stream.try_clone().expect("clone");
                    let mut r = BufReader::new(stream);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let target = line.split(' ').nth(1).unwrap_or("").to_string();
                        // The head's other lines (GET requests carry no body).
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                                break;
                            }
                        }
                        if target.starts_with("/op/") {
                            seen.push(target);
                        }
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if w.write_all(ok).is_err() {
                            break;
                        }
                    }
                    if !seen.is_empty() {
                        all.lock().expect("lock").push(seen);
                    }
                });
            }
        });
        Recorder { port, conns }
    }

    /// Runs the mix with `workers` workers (one connection each) and returns the sorted
    /// per-connection sequences, and stdout.
    fn run(&self, workers: u32, seed: Option<u64>) -> (Vec<Vec<String>>, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let scenario = dir.path().join("replay.yaml");
        std::fs::write(
            &scenario,
            format!(
                "name: replay\ntarget:\n  url: http://127.0.0.1:{}\n  max_connections: {workers}\n  ready: {{path: /health}}\nload:\n  stages:\n    - {{duration: 1s, rate: 60/s}}\nmix:\n  operations:\n    - name: a\n      weight: 5\n      request: {{path: \"/op/a?n={{{{random_int(1,1000000)}}}}\"}}\n    - name: b\n      weight: 3\n      request: {{path: \"/op/b/{{{{random_string(8)}}}}\"}}\n    - name: c\n      weight: 2\n      request: {{path: /op/c}}\noutput:\n  progress: quiet\n",
                self.port
            ),
        )
        .expect("write");
        self.conns.lock().expect("lock").clear();
        let mut c = bin();
        c.arg("run")
            .arg(&scenario)
            .args(["--workers", &workers.to_string()]);
        if let Some(s) = seed {
            c.args(["--seed", &s.to_string()]);
        }
        let out = c.output().expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The generator has closed its connections when it exits; give their threads a moment
        // to file what they saw (bounded poll).
        let want = workers as usize;
        for _ in 0..200 {
            if self.conns.lock().expect("lock").len() >= want {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut seqs = self.conns.lock().expect("lock").clone();
        seqs.sort();
        (seqs, stdout)
    }
}

/// The seed is printed and kept in the report; `--seed N` replays every choice (operations,
/// template randoms) exactly, per worker count; a run without a seed prints the one it drew,
/// and rerunning with it replays that run.
#[test]
fn the_seed_replays_a_runs_choices() {
    let server = Recorder::start();
    for workers in [1, 2] {
        let (first, out) = server.run(workers, Some(42));
        assert!(
            out.contains(" · seed 42"),
            "the summary shows the seed: {out}"
        );
        let total: usize = first.iter().map(Vec::len).sum();
        assert!(
            total >= 50,
            "{workers} worker(s): {total} requests recorded"
        );
        let (second, _) = server.run(workers, Some(42));
        assert_eq!(
            first, second,
            "{workers} worker(s): same seed, same choices"
        );
        let (other, _) = server.run(workers, Some(43));
        assert_ne!(
            first, other,
            "{workers} worker(s): another seed, other choices"
        );
    }
    let (drawn, out) = server.run(2, None);
    let seed: u64 = out
        .split(" · seed ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seed in the summary: {out}"));
    let (again, _) = server.run(2, Some(seed));
    assert_eq!(drawn, again, "rerun with the printed seed {seed}");
}

/// Every report carries its seed and plan fingerprint; `report merge` takes the segments of one
/// run and refuses reports of different plans (here: another seed) or of different runs, with
/// exit 2.
#[test]
fn report_merge_refuses_different_plans_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segment = |i: u32, seed: u64, name: &str| {
        let path = dir.path().join(name);
        let out = bin()
            .args([
                "run",
                "scenarios/smoke.yaml",
                "--duration",
                "300ms",
                "--quiet",
            ])
            .args(["--segment", &format!("{i}/2"), "--seed", &seed.to_string()])
            .arg("--report")
            .arg(&path)
            .output()
            .expect("run");
        assert!(
            path.exists(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    };
    let (a, b) = (segment(0, 5, "a.json"), segment(1, 5, "b.json"));
    let (ra, rb) = (report(&a), report(&b));
    assert_eq!(ra["config"]["seed"], 5);
    let fp = ra["config"]["fingerprint"].as_str().expect("a fingerprint");
    assert_eq!(fp.len(), 16);
    assert_eq!(
        rb["config"]["fingerprint"], fp,
        "segments share the fingerprint"
    );
    assert_eq!(ra["run_id"], rb["run_id"], "and (uncoordinated) the run id");
    let merged = dir.path().join("m.json");
    let out = bin()
        .args(["report", "merge"])
        .args([&a, &b])
        .arg("-o")
        .arg(&merged)
        .output()
        .expect("merge");
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report(&merged)["config"]["fingerprint"], fp);

    let other_seed = segment(1, 6, "c.json");
    let mut c = bin();
    c.args(["report", "merge"]).args([&a, &other_seed]);
    let out = c.output().expect("merge");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ran different plans (seeds 5 and 6)"),
        "names the difference: {err}"
    );

    let mut rb = rb;
    rb["run_id"] = "another-run".into();
    let other_run = dir.path().join("d.json");
    std::fs::write(&other_run, rb.to_string()).expect("write");
    let out = bin()
        .args(["report", "merge"])
        .args([&a, &other_run])
        .output()
        .expect("merge");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("are from different runs"), "{err}");
}

/// A scenario of the embedded todo-api lasting `secs`.
fn long_scenario(dir: &std::path::Path, secs: u32) -> PathBuf {
    let p = dir.join("long.yaml");
    std::fs::write(
        &p,
        format!(
            "name: long\nload:\n  stages:\n    - {{duration: {secs}s, rate: 20/s}}\nmix:\n  operations:\n    - todo: list\n"
        ),
    )
    .expect("write");
    p
}

/// The report path, the metrics and the dashboard addresses are checked before the load: a
/// problem is exit 2 naming it, at once (the 60-second load never starts).
#[test]
fn outputs_and_addresses_are_checked_before_the_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = long_scenario(dir.path(), 60);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("addr").to_string();
    let missing = dir.path().join("no-such-dir/r.json");
    let cases: [(Vec<String>, String); 4] = [
        (
            vec!["--report".into(), missing.display().to_string()],
            format!(
                "the report path {}: the directory {} does not exist",
                missing.display(),
                dir.path().join("no-such-dir").display()
            ),
        ),
        (
            vec!["--report".into(), dir.path().display().to_string()],
            "is a directory".into(),
        ),
        (
            vec!["--metrics-addr".into(), taken.clone()],
            format!("the metrics address {taken} cannot be bound"),
        ),
        (
            vec!["--dashboard".into(), taken.clone()],
            format!("the dashboard address {taken} cannot be bound"),
        ),
    ];
    for (flags, want) in cases {
        let mut c = bin();
        c.arg("run").arg(&scenario).args(&flags).arg("--quiet");
        // Killed (no exit code, so the assertion below fails) if the load started.
        c.timeout(Duration::from_secs(20));
        let out = c.output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(&want), "{flags:?}: wanted `{want}` in {err}");
        assert!(out.stdout.is_empty(), "{flags:?}: no load, no summary");
    }
}

/// A report that cannot be written at the end (its directory vanished during the run) is a
/// non-zero exit, said in the summary.
#[test]
fn a_failed_report_write_is_a_non_zero_exit() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = long_scenario(dir.path(), 3);
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("trafficgen"))
        .arg("run")
        .arg(&scenario)
        .arg("--no-progress")
        .arg("--report")
        .arg(sub.join("r.json"))
        .env_remove("TRAFFICGEN_REPORT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Killed on every path out of this test.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().expect("stderr");
    let mut child = Kill(child);
    // The first progress line: the pre-run checks passed and the load runs.
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains(" req, "), "a progress line: {first}");
    std::fs::remove_dir_all(&sub).expect("remove the report's directory");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    // stdout to its end (the process exits), then the status.
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.0.stdout.as_mut().expect("stdout"), &mut stdout)
        .expect("read stdout");
    let status = child.0.wait().expect("wait");
    assert_ne!(status.code(), Some(0), "{stdout}{rest:?}");
    assert!(
        stdout.contains("the report was not written") || rest.iter().any(|l| l.contains("r.json")),
        "{stdout}{rest:?}"
    );
}
