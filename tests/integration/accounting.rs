//! Every planned arrival is accounted for: `planned = completed + dropped + abandoned`, per
//! operation and in total, against targets that misbehave like real ones (one that stalls, one
//! that never answers), when the run is stopped mid-way by SIGINT (the binary, for real) and
//! when a second signal stops it at once. Also: latency is timed without the generator's own
//! timer lag (a target with a known delay), and a schedule the machine cannot follow ends in
//! time with its own verdict (exit 97) unless the scenario allows it.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use trafficgen::exit::Exit;
use trafficgen::recorder::Counts;
use trafficgen::report::{Report, VerdictState};

use super::support::{Proc, rfc3339};

/// A loopback HTTP/1.1 server: `/health` answers at once; every other request after `delay`
/// (`None`: never). Counts the requests it read.
struct Server {
    addr: SocketAddr,
    seen: Arc<AtomicU64>,
    /// Wall-clock times (Unix nanoseconds) of the first and the last request counted.
    first: Arc<AtomicU64>,
    last: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn server(delay: Option<Duration>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let (first, last) = (
        Arc::new(AtomicU64::new(u64::MAX)),
        Arc::new(AtomicU64::new(0)),
    );
    let (counter, first_at, last_at) = (seen.clone(), first.clone(), last.clone());
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut sock, _)) = listener.accept().await {
            let (seen, first, last) = (counter.clone(), first_at.clone(), last_at.clone());
            conns.spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let health = buf.starts_with(b"GET /health ");
                    buf.drain(..end + 4);
                    if !health {
                        seen.fetch_add(1, Ordering::Relaxed);
                        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
                        first.fetch_min(now, Ordering::Relaxed);
                        last.fetch_max(now, Ordering::Relaxed);
                        match delay {
                            Some(d) => tokio::time::sleep(d).await,
                            None => std::future::pending::<()>().await,
                        }
                    }
                    let resp = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if sock.write_all(resp).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Server {
        addr,
        seen,
        first,
        last,
        task,
    }
}

fn scenario(addr: SocketAddr, load: &str, target: &str) -> String {
    format!(
        "name: accounting\ntarget:\n  url: http://{addr}\n  ready: {{ path: /health, timeout: 5s, interval: 50ms }}\n{target}load:\n{load}mix:\n  operations:\n    - name: a\n      weight: 3\n      request: {{ path: /a }}\n    - name: b\n      weight: 1\n      request: {{ path: /b }}\noutput:\n  interval: 200ms\n"
    )
}

/// The identity, per operation and in total.
fn identity(r: &Report) {
    let check = |name: &str, c: &Counts| {
        assert_eq!(
            c.planned,
            c.completed + c.dropped + c.abandoned,
            "{name}: planned {} completed {} dropped {} abandoned {}",
            c.planned,
            c.completed,
            c.dropped,
            c.abandoned
        );
    };
    for (name, op) in &r.ops {
        check(name, &op.counts);
    }
    check("totals", &r.totals.counts);
    assert!(r.totals.counts.planned > 0, "nothing planned");
    let sum: u64 = r.ops.iter().map(|(_, o)| o.counts.planned).sum();
    assert_eq!(sum, r.totals.counts.planned);
}

struct Ended {
    exit: Exit,
    summary: String,
    report: Report,
}

async fn run(yaml: &str) -> Ended {
    run_on(yaml, 2).await
}

async fn run_on(yaml: &str, workers: usize) -> Ended {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let overrides = trafficgen::plan::Overrides {
        report: Some(path.clone()),
        ..Default::default()
    };
    let plan =
        trafficgen::plan::build_from_str(yaml, "accounting.yaml", None, &overrides, &|_| None)
            .unwrap_or_else(|e| panic!("{e:?}"));
    let mut out = Vec::new();
    let exit = trafficgen::app::run_plan(plan, workers, &mut out, std::future::pending())
        .await
        .expect("run");
    Ended {
        exit,
        summary: String::from_utf8(out).unwrap(),
        report: Report::read(&path).expect("report written"),
    }
}

/// 100 arrivals in 1 s against a target that needs 300 ms per request over 4 connections:
/// some wait (late), some find the queue full (dropped), and the ones still queued or in
/// flight when the 400 ms drain bound passes are abandoned; the plan is whole in the sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_target_loses_no_arrival() {
    let srv = server(Some(Duration::from_millis(300))).await;
    let yaml = scenario(
        srv.addr,
        "  stages:\n    - { duration: 1s, rate: 100/s }\n  max_queue: 20\n  drain: 400ms\n",
        "  max_connections: 4\n  request_timeout: 5s\n",
    );
    let e = run(&yaml).await;
    identity(&e.report);
    let t = &e.report.totals.counts;
    assert_eq!(t.planned, 100, "every arrival of the schedule came due");
    assert!(t.dropped > 0, "the queue of 20 overflowed: {t:?}");
    assert!(t.abandoned > 0, "the drain bound cut the queue: {t:?}");
    // Abandoned arrivals are in the response-time histogram with the time they waited.
    let (rt, _, _) = e.report.totals.decode_histograms().unwrap();
    assert_eq!(rt.len(), t.requests + t.abandoned);
    assert!(
        e.report.totals.response_time_ms.max >= 300.0,
        "{:?}",
        e.report.totals.response_time_ms
    );
    // Rates are per real second (the load and its drain), not per planned second.
    assert!(e.report.elapsed_s > 1.3, "{}", e.report.elapsed_s);
    let rate = t.requests as f64 / e.report.elapsed_s;
    assert!((e.report.totals.rate - rate).abs() < 1e-9);
    assert!(
        e.summary.contains(&format!(
            "planned {} = completed {} + dropped {} + abandoned {}",
            t.planned, t.completed, t.dropped, t.abandoned
        )),
        "{}",
        e.summary
    );
}

/// A target that reads requests and never answers: every request in flight at the drain
/// bound (shorter than the request timeout) is abandoned and counted, none vanishes; a
/// `dropped` threshold sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_is_abandoned_and_counted() {
    let srv = server(None).await;
    let yaml = scenario(
        srv.addr,
        "  stages:\n    - { duration: 1s, rate: 20/s }\n  drain: 300ms\n",
        "  max_connections: 50\n  request_timeout: 30s\n",
    ) + "thresholds:\n  dropped: \"count==0\"\n";
    let started = tokio::time::Instant::now();
    let e = run(&yaml).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the drain"
    );
    identity(&e.report);
    let t = &e.report.totals.counts;
    assert_eq!(t.planned, 20);
    assert_eq!(t.abandoned, srv.seen.load(Ordering::Relaxed));
    assert_eq!(t.abandoned + t.dropped, 20, "{t:?}");
    assert_eq!(t.completed, 0);
    agree(&e, VerdictState::ThresholdsFailed);
}

/// The summary's last line, the report's verdict and the exit code say `state`.
fn agree(e: &Ended, state: VerdictState) {
    assert_eq!(e.exit, Exit::Judged(state), "{}", e.summary);
    assert_eq!(e.report.verdict.state, state);
    assert_eq!(e.report.verdict.exit_code, e.exit.code());
    let last = e.summary.lines().rev().find(|l| !l.trim().is_empty());
    assert_eq!(last, Some(e.report.verdict.message.as_str()));
}

/// A target that answers after 20 ms: the response time is that delay (plus loopback
/// service), not the generator's own 1 ms timer on top. Bounds are generous: this checks what
/// is recorded, not the machine's speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_time_is_the_targets_delay() {
    let srv = server(Some(Duration::from_millis(20))).await;
    let yaml = scenario(
        srv.addr,
        "  stages:\n    - { duration: 1s, rate: 50/s }\n",
        "  max_connections: 20\n",
    );
    let e = run(&yaml).await;
    identity(&e.report);
    let p = &e.report.totals.response_time_ms;
    assert!(p.p50 >= 20.0 && p.p50 < 30.0, "{p:?}");
    // Service time (from the send) is never more than response time at the median.
    assert!(e.report.totals.service_time_ms.p50 <= p.p50 + 0.01);
}

/// A schedule far beyond what the machine can release ends in about its duration plus the
/// drain, counts every arrival that came due, and says the generator could not keep the
/// schedule: exit 97, unless `load.allow_schedule_miss` makes it a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_the_machine_cannot_follow_is_a_verdict() {
    let srv = server(Some(Duration::ZERO)).await;
    // The validation limit (1 000 000/s) on one worker of a debug build: far beyond what it
    // can release.
    let load = "  stages:\n    - { duration: 1s, rate: 1000000/s }\n  drain: 200ms\n";
    let started = tokio::time::Instant::now();
    let e = run_on(&scenario(srv.addr, load, "  max_connections: 2\n"), 1).await;
    // 1 s of load + 200 ms of drain (+ readiness and a busy machine's slack): the dispatcher
    // neither runs on behind its schedule nor walks the arrivals it could not release.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    identity(&e.report);
    agree(&e, VerdictState::ScheduleMissed);
    assert_eq!(e.exit.code(), 97);
    assert!(e.report.schedule_missed.is_some());
    assert!(
        e.summary
            .contains("WARNING: the generator could not keep the schedule")
    );
    let allowed = load.to_string() + "  allow_schedule_miss: true\n";
    let e = run_on(&scenario(srv.addr, &allowed, "  max_connections: 2\n"), 1).await;
    agree(&e, VerdictState::NoThresholds);
    assert!(e.report.schedule_missed.is_some());
    assert!(e.summary.contains("allowed by load.allow_schedule_miss"));
}

/// Starts the binary on `yaml` and returns it once the target has seen `n` requests.
fn start_binary(yaml: &str, dir: &std::path::Path) -> (Proc, std::path::PathBuf) {
    let scen = dir.join("s.yaml");
    std::fs::write(&scen, yaml).unwrap();
    let report = dir.join("r.json");
    let child = Command::new(env!("CARGO_BIN_EXE_trafficgen"))
        .arg("run")
        .arg(&scen)
        .arg("--no-progress")
        .arg("--report")
        .arg(&report)
        .env_remove("TRAFFICGEN_TARGET_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (Proc(child), report)
}

fn kill(p: &Proc, sig: &str) {
    let pid = p.0.id().to_string();
    assert!(
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

async fn until_seen(srv: &Server, n: u64) {
    for _ in 0..300 {
        if srv.seen.load(Ordering::Relaxed) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the target never saw {n} requests");
}

/// Waits for the child to exit (bounded), returns its code and the report.
fn ended(mut p: Proc, report: &std::path::Path, within: Duration) -> (Option<i32>, Report) {
    let deadline = std::time::SystemTime::now() + within;
    loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            let stderr = p.0.stderr.take().map(|e| {
                BufReader::new(e)
                    .lines()
                    .map_while(Result::ok)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            let r = Report::read(report).unwrap_or_else(|e| panic!("{e}: {stderr:?}"));
            return (s.code(), r);
        }
        assert!(
            std::time::SystemTime::now() < deadline,
            "the run did not end within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGINT mid-run (the real binary): the dispatcher stops, what was released is still served
/// within the drain, the sum equals the arrivals that came due, exit 105.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_mid_run_accounts_for_every_arrival_due() {
    let srv = server(Some(Duration::from_millis(50))).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = scenario(
        srv.addr,
        "  stages:\n    - { duration: 60s, rate: 100/s }\n",
        "  max_connections: 8\n  request_timeout: 5s\n",
    );
    let (p, report) = start_binary(&yaml, dir.path());
    until_seen(&srv, 30).await;
    kill(&p, "-INT");
    let (code, r) = tokio::task::spawn_blocking(move || ended(p, &report, Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(code, Some(105));
    assert!(r.interrupted);
    identity(&r);
    let t = &r.totals.counts;
    assert!(t.planned < 6000, "arrivals after the stop are not planned");
    // What was released was served in the drain (only arrivals due but not yet released by
    // a dispatcher behind on a busy machine can be abandoned here).
    assert_eq!(t.completed, t.requests, "{t:?}");
    assert_eq!(t.requests, srv.seen.load(Ordering::Relaxed));
}

/// A second SIGINT stops at once: requests in flight against a target that never answers are
/// abandoned and counted (the first signal's drain would wait the 30 s request timeout), the
/// report is still written, exit 105.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once_and_counts_what_was_in_flight() {
    let srv = server(None).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = scenario(
        srv.addr,
        "  stages:\n    - { duration: 60s, rate: 50/s }\n",
        "  max_connections: 100\n  request_timeout: 30s\n",
    );
    let (p, report) = start_binary(&yaml, dir.path());
    until_seen(&srv, 10).await;
    kill(&p, "-INT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(&p, "-INT");
    let (code, r) = tokio::task::spawn_blocking(move || ended(p, &report, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(code, Some(105));
    identity(&r);
    let t = &r.totals.counts;
    assert_eq!(t.completed, 0);
    assert!(t.abandoned >= 10, "{t:?}");
    assert_eq!(t.abandoned + t.dropped, t.planned);
}

/// The closed model keeps the identity too (every request a VU starts is an arrival): against
/// a target that never answers, each VU's request in flight at the drain bound is abandoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_vus_in_flight_are_abandoned_and_counted() {
    let srv = server(None).await;
    let yaml = scenario(
        srv.addr,
        "  model: closed\n  stages:\n    - { duration: 1s, vus: 6 }\n  drain: 300ms\n",
        "  request_timeout: 30s\n",
    );
    let e = run(&yaml).await;
    identity(&e.report);
    let t = &e.report.totals.counts;
    assert_eq!((t.planned, t.abandoned, t.completed), (6, 6, 0), "{t:?}");
    assert_eq!(srv.seen.load(Ordering::Relaxed), 6);
}

/// A closed-model run sends between the load's time 0 and its end, not before: VUs used to
/// start at once, in the 100 ms lead the workers get to start, and a 300 ms run then ran 400 ms
/// (its rate a third too high). The server's clock is the judge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_vus_send_nothing_before_the_load_starts() {
    let srv = server(Some(Duration::from_millis(2))).await;
    let yaml = scenario(
        srv.addr,
        "  model: closed\n  stages:\n    - { duration: 300ms, vus: 4 }\n",
        "",
    );
    let e = run(&yaml).await;
    identity(&e.report);
    let nanos = |s: &str| rfc3339(s).unix_timestamp_nanos() as u64;
    let (start, end) = (nanos(&e.report.started_at), nanos(&e.report.ended_at));
    let (first, last) = (
        srv.first.load(Ordering::Relaxed),
        srv.last.load(Ordering::Relaxed),
    );
    // 1 ms: the report's wall-clock start is converted from a monotonic instant.
    let slack = 1_000_000;
    assert!(
        first + slack >= start,
        "first request {:.1} ms before the load's start",
        (start - first) as f64 / 1e6
    );
    assert!(last <= end, "a request after the run's end");
    let t = &e.report.totals.counts;
    assert_eq!(t.completed, srv.seen.load(Ordering::Relaxed), "{t:?}");
}
