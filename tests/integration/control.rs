//! The control API beside the live dashboard, against real runs of the binary on the embedded
//! todo-api: bad input gets 4xx JSON, a rate change and a pause are applied (the report's
//! timeline follows them, arrivals add up), recorded in the report and counted in /metrics,
//! and a token is asked whenever one is set (always beyond loopback).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::outputs::{out_dir, root};
use super::support::{Proc, free_port};

/// Starts `trafficgen run SCENARIO --dashboard ADDR` and returns it with the dashboard's
/// `host:port` (from its stderr; a 0.0.0.0 listener is reached over loopback).
fn start(
    dir: &std::path::Path,
    scenario: &str,
    dashboard: &str,
    extra: &[&str],
    token: Option<&str>,
) -> (Proc, String) {
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, scenario).unwrap();
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("trafficgen"));
    c.arg("run")
        .arg(&path)
        .args(["--dashboard", dashboard, "--report"])
        .arg(dir.join("r.json"))
        .args(extra)
        .env_remove("TRAFFICGEN_DASHBOARD_TOKEN")
        .env_remove("TRAFFICGEN_TARGET_URL")
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(t) = token {
        c.env("TRAFFICGEN_DASHBOARD_TOKEN", t);
    }
    let mut child = Proc(c.spawn().unwrap());
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let host = loop {
        let line = lines
            .next()
            .expect("the run printed no dashboard URL")
            .unwrap();
        if let Some(u) = line.strip_prefix("trafficgen: dashboard on http://") {
            break u.trim_end_matches('/').replace("0.0.0.0", "127.0.0.1");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, host)
}

/// One HTTP/1.0 exchange: (status, body).
fn http(host: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // `headers` may name another Host (what a browser sends for a rebound name).
    let host_line = if headers.contains("Host: ") {
        String::new()
    } else {
        format!("Host: {host}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.0\r\n{host_line}Content-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

const JSON: &str = "Content-Type: application/json\r\n";

fn post(host: &str, body: Value) -> (u16, Value) {
    let (status, text) = http(host, "POST", "/control", JSON, &body.to_string());
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Polls `GET /control` until the load's clock reached `t` seconds (a readiness poll on the
/// run's own clock, not a sleep of ours).
fn wait_until(host: &str, t: f64) {
    for _ in 0..400 {
        let (status, text) = http(host, "GET", "/control", "", "");
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["t_s"].as_f64().unwrap() >= t {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the run never reached {t} s");
}

const OPEN: &str = "name: control-open
load:
  stages:
    - {duration: 8s, rate: 40/s}
mix:
  operations:
    - {todo: create, weight: 1}
    - {todo: list, weight: 1}
output:
  progress: quiet
";

#[test]
fn bad_control_requests_get_json_errors() {
    let dir = out_dir("control-bad");
    let (_run, host) = start(&dir, OPEN, "127.0.0.1:0", &[], None);
    let cases = [
        ("{nope", JSON, 400, "not JSON"),
        (r#"{"action":"rate","rate":-5}"#, JSON, 400, "from 0 to"),
        (r#"{"action":"warp"}"#, JSON, 400, "unknown variant"),
        (r#"{"action":"rate","rate":5}"#, "", 415, "application/json"),
        (r#"{"action":"vus","vus":3}"#, JSON, 409, "open model"),
        (r#"{"action":"resume"}"#, JSON, 409, "not paused"),
        (
            r#"{"action":"fault_close","id":"c9"}"#,
            JSON,
            404,
            "no open control fault",
        ),
        (
            r#"{"action":"fault_open","window":3}"#,
            JSON,
            404,
            "no window 3",
        ),
        // Without a token, only requests addressed to loopback (no DNS rebinding).
        (
            r#"{"action":"pause"}"#,
            "Content-Type: application/json\r\nHost: evil.example:8089\r\n",
            403,
            "loopback",
        ),
    ];
    for (body, headers, want, says) in cases.iter().copied() {
        let (status, text) = http(&host, "POST", "/control", headers, body);
        assert_eq!(status, want, "{body}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let by_name = "Content-Type: application/json\r\nHost: localhost:8089\r\n";
    let (status, text) = http(
        &host,
        "POST",
        "/control",
        by_name,
        r#"{"action":"annotate","text":"x"}"#,
    );
    assert_eq!(status, 200, "localhost is loopback: {text}");
}

/// `trafficgen_control_*` lines of a scrape, whitespace-normalised.
fn control_lines(port: u16) -> String {
    let (_, text) = http(&format!("127.0.0.1:{port}"), "GET", "/metrics", "", "");
    text.lines()
        .filter(|l| l.starts_with("trafficgen_control_") || l.starts_with("trafficgen_target_rate"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_rate_change_and_a_pause_are_applied_recorded_and_counted() {
    let dir = out_dir("control-rate");
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let (mut run, host) = start(
        &dir,
        OPEN,
        "127.0.0.1:0",
        &["--metrics-addr", &metrics],
        None,
    );

    wait_until(&host, 2.0);
    let (status, v) = post(&host, json!({"action": "rate", "rate": 120, "who": "ci"}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["state"]["rate"], 120.0);
    // Counted at once, with the setting as a gauge and the planned rate following it.
    let lines = control_lines(port);
    assert!(
        lines.contains("action=\"rate\"")
            && lines
                .lines()
                .any(|l| l.contains("action=\"rate\"") && l.ends_with(" 1")),
        "{lines}"
    );
    assert!(
        lines.contains("action=\"pause\"")
            && lines
                .lines()
                .any(|l| l.contains("action=\"pause\"") && l.ends_with(" 0")),
        "{lines}"
    );
    assert!(
        lines
            .lines()
            .any(|l| l.contains("setting=\"rate\"") && l.ends_with(" 120")),
        "{lines}"
    );

    wait_until(&host, 4.5);
    let (status, v) = post(&host, json!({"action": "pause"}));
    assert_eq!(status, 200, "{v}");
    let (status, v) = post(
        &host,
        json!({"action": "annotate", "text": "paused for the test"}),
    );
    assert_eq!(status, 200, "{v}");
    wait_until(&host, 7.0);
    let (status, v) = post(&host, json!({"action": "resume", "who": "ci"}));
    assert_eq!(status, 200, "{v}");
    let lines = control_lines(port);
    assert!(
        lines
            .lines()
            .any(|l| l.contains("setting=\"paused\"") && l.ends_with(" 0")),
        "{lines}"
    );
    // The whole exposition, control families included, is clean for promtool.
    let (_, text) = http(&format!("127.0.0.1:{port}"), "GET", "/metrics", "", "");
    let promtool = super::support::binary("PROMTOOL_BIN", "promtool");
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let status = run.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "no thresholds: the run passes");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let events = report["control"].as_array().expect("a control list");
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rate", "pause", "annotate", "resume"]);
    assert_eq!(events[0]["who"], "ci");
    assert_eq!(events[0]["values"]["rate"], 120.0);
    assert_eq!(events[0]["values"]["previous"], 40.0);
    assert_eq!(
        events[1]["who"], "127.0.0.1",
        "without `who`, the client's address"
    );
    assert_eq!(events[2]["values"]["text"], "paused for the test");
    let t: Vec<f64> = events.iter().map(|e| e["t_s"].as_f64().unwrap()).collect();
    assert!(t[0] >= 2.0 && t[1] >= 4.5 && t[3] >= 7.0, "{t:?}");

    // The timeline follows: full seconds at 120/s after the change, none while paused.
    let timeline = report["timeline"].as_array().unwrap();
    let second = |n: u64| {
        timeline
            .iter()
            .find(|p| p["t"].as_u64() == Some(n))
            .unwrap_or_else(|| panic!("no second {n}"))
    };
    let after = second(t[0].ceil() as u64 + 1);
    assert_eq!(after["target_rate"], 120.0, "{after}");
    let got = after["requests"].as_u64().unwrap();
    assert!(
        (100..=140).contains(&got),
        "a full second at 120/s completed {got}"
    );
    let n = t[1].ceil() as u64 + 1;
    assert!(n as f64 <= t[3], "a whole second paused: {t:?}");
    let p = second(n);
    assert_eq!(p["target_rate"], 0.0, "{p}");
    assert_eq!(
        p["requests"], 0,
        "paused: nothing planned, nothing completed: {p}"
    );
    // Accounting: everything planned (40/s, then 120/s, nothing while paused, 120/s again)
    // was completed or dropped. A worker thread applies a change when it sees it, which on a
    // busy machine can be some time after it was made (allowed: up to 250 ms): the old rate
    // holds meanwhile (80/s fewer after the rate change, 120/s more after the pause); the
    // resume catches up from the instant it was made.
    let planned = 40.0 * t[0] + 120.0 * (t[1] - t[0]) + 120.0 * (8.0 - t[3]);
    let counts = &report["totals"]["counts"];
    let done = (counts["requests"].as_u64().unwrap() + counts["dropped"].as_u64().unwrap()) as f64;
    assert!(
        done >= planned - 80.0 * 0.25 - 3.0 && done <= planned + 120.0 * 0.25 + 3.0,
        "planned ≈ {planned:.1}, completed + dropped = {done}"
    );

    // The HTML report lists the actions and marks them on its charts.
    let html = dir.join("r.html");
    let out = super::outputs::bin()
        .args(["report", "html"])
        .arg(dir.join("r.json"))
        .arg("-o")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<table id=\"control-actions\">"),
        "no control table"
    );
    assert!(
        page.contains("text=paused for the test"),
        "no annotation row"
    );
    let data = page
        .split("<script type=\"application/json\" id=\"chart-data\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap();
    let data: Value = serde_json::from_str(data).unwrap();
    let marks: Vec<&str> = data["marks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["label"].as_str().unwrap())
        .collect();
    assert_eq!(marks, ["rate", "pause", "annotate", "resume"]);
}

#[test]
fn control_asks_for_the_token_beyond_loopback() {
    let dir = out_dir("control-token");
    let (_run, host) = start(&dir, OPEN, "0.0.0.0:0", &[], Some("s3cret"));
    let body = r#"{"action":"annotate","text":"hello"}"#;
    let (status, text) = http(&host, "POST", "/control", JSON, body);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("\"error\""), "{text}");
    let wrong = format!("{JSON}Authorization: Bearer nope\r\n");
    assert_eq!(http(&host, "POST", "/control", &wrong, body).0, 401);
    assert_eq!(http(&host, "GET", "/control", "", "").0, 401);
    let right = format!("{JSON}Authorization: Bearer s3cret\r\n");
    let (status, text) = http(&host, "POST", "/control", &right, body);
    assert_eq!(status, 200, "{text}");
    assert_eq!(http(&host, "GET", "/control?token=s3cret", "", "").0, 200);
}

#[test]
fn a_rate_change_on_the_page_is_followed_in_chromium() {
    let dir = out_dir("control-browser");
    let scenario = OPEN.replace("8s, rate: 40/s", "14s, rate: 30/s");
    let (mut run, host) = start(&dir, &scenario, "127.0.0.1:0", &[], Some("t0k"));
    let shots = root().join("artifacts/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let node = std::env::var("NODE_BIN").unwrap_or_else(|_| "node".into());
    let out = Command::new(node)
        .current_dir(root().join("tests/browser"))
        .arg("control.mjs")
        .arg(format!("http://{host}/?token=t0k"))
        .arg("90")
        .arg(shots.join("dashboard-control.png"))
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "control check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(run.0.wait().unwrap().code(), Some(0));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let events = report["control"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "rate");
    assert_eq!(events[0]["values"]["rate"], 90.0);
    assert_eq!(events[0]["who"], "dashboard");
}

#[test]
fn fault_windows_opened_and_closed_through_the_api_hit_the_target() {
    let dir = out_dir("control-fault");
    let scenario = OPEN.replace(
        "output:",
        "faults:\n  - {start: 30s, duration: 1s, kind: error, status: 502, route: /api/todos, \
         method: POST, via: server}\n  - {start: 30s, duration: 1s, kind: error, status: 500, \
         ops: [create], via: header}\noutput:",
    );
    // The windows start after the load: only the control API opens them here.
    let scenario = scenario.replace("8s, rate: 40/s", "40s, rate: 40/s");
    let (mut run, host) = start(&dir, &scenario, "127.0.0.1:0", &[], None);
    wait_until(&host, 1.0);
    // Ad hoc, server-side: 503 for the list operation (GET /api/todos), half the load.
    let (status, v) = post(
        &host,
        json!({"action": "fault_open", "kind": "error", "status": 503, "route": "/api/todos",
               "method": "get", "duration_s": 30}),
    );
    assert_eq!(status, 200, "{v}");
    let id = v["event"]["values"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["state"]["open_faults"][0]["id"], id.as_str());
    wait_until(&host, 3.2);
    let (status, v) = post(&host, json!({"action": "fault_close", "id": id}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    // The scenario's server window, now, for 1.5 s (its rule expires on the target).
    wait_until(&host, 4.0);
    let (status, v) = post(
        &host,
        json!({"action": "fault_open", "window": 0, "duration_s": 1.5}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["event"]["values"]["kind"], "error");
    // Ad hoc, by header: the generator asks for 504 on every list request.
    wait_until(&host, 6.0);
    let (status, v) = post(
        &host,
        json!({"action": "fault_open", "kind": "error", "status": 504, "via": "header",
               "ops": ["list"]}),
    );
    assert_eq!(status, 200, "{v}");
    let header_id = v["event"]["values"]["id"].as_str().unwrap().to_string();
    wait_until(&host, 7.2);
    let (status, v) = post(&host, json!({"action": "fault_close", "id": header_id}));
    assert_eq!(status, 200, "{v}");
    // The scenario's header window (500 on create), now, for one second.
    wait_until(&host, 8.0);
    let (status, v) = post(
        &host,
        json!({"action": "fault_open", "window": 1, "duration_s": 1}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["event"]["values"]["via"], "header");
    wait_until(&host, 10.0);
    let (status, v) = post(&host, json!({"action": "rate", "rate": 0}));
    assert_eq!(status, 200, "{v}");
    // Nothing is planned any more: stop the run rather than wait for its 40 s.
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(run.0.id().to_string())
        .status();
    run.0.wait().unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let actions: Vec<&str> = report["control"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "fault_open",
            "fault_close",
            "fault_open",
            "fault_open",
            "fault_close",
            "fault_open",
            "rate"
        ]
    );
    let by_second: Vec<(u64, u64)> = report["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["t"].as_u64().unwrap(), p["errors"].as_u64().unwrap()))
        .collect();
    let errors_at = |t: u64| by_second.iter().find(|p| p.0 == t).map_or(0, |p| p.1);
    assert_eq!(errors_at(1), 0, "{by_second:?}");
    assert!(
        errors_at(3) >= 10,
        "the ad-hoc server window, in second 3: {by_second:?}"
    );
    // Closed at 3.2 s: second 4 has fewer errors than second 3 (how many fewer depends on
    // how soon a busy machine applies the close, so no fixed bound).
    assert!(
        errors_at(4) < errors_at(3),
        "closed at 3.2 s: {by_second:?}"
    );
    assert!(
        errors_at(5) >= 10,
        "the scenario's server window: {by_second:?}"
    );
    assert!(
        errors_at(7) >= 10,
        "the ad-hoc header window: {by_second:?}"
    );
    assert!(
        errors_at(9) >= 10,
        "the scenario's header window: {by_second:?}"
    );
    // Header faults are the generator's own: counted per operation.
    let faults_error = |op: &str| {
        report["ops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o[0] == op)
            .unwrap()[1]["counts"]["faults_error"]
            .as_u64()
            .unwrap()
    };
    // About 20 list requests per second for 1.2 s, 20 creates for 1 s (fewer on a busy
    // machine, whose workers see a change a little late).
    assert!(faults_error("list") >= 8, "{}", faults_error("list"));
    assert!(faults_error("create") >= 8, "{}", faults_error("create"));
}

#[test]
fn a_vu_change_beyond_the_plan_starts_more_virtual_users() {
    let dir = out_dir("control-vus");
    let scenario = "name: control-closed
load:
  model: closed
  start_vus: 2
  think_time: 100ms
  stages:
    - {duration: 7s, vus: 2}
mix:
  operations:
    - {todo: list, weight: 1}
output:
  progress: quiet
";
    let (mut run, host) = start(&dir, scenario, "127.0.0.1:0", &["--workers", "2"], None);
    wait_until(&host, 1.5);
    let (status, v) = post(&host, json!({"action": "rate", "rate": 10}));
    assert_eq!(status, 409, "{v}");
    let (status, v) = post(&host, json!({"action": "vus", "vus": 7}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"]["vus"], 7);
    wait_until(&host, 4.2);
    let (status, v) = post(&host, json!({"action": "pause"}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(run.0.wait().unwrap().code(), Some(0));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let t: Vec<f64> = report["control"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["t_s"].as_f64().unwrap())
        .collect();
    let timeline = report["timeline"].as_array().unwrap();
    let second = |n: u64| {
        timeline
            .iter()
            .find(|p| p["t"].as_u64() == Some(n))
            .unwrap()
    };
    let (before, after) = (second(1), second(t[0].ceil() as u64 + 1));
    assert_eq!(before["vus"], 2, "{before}");
    assert_eq!(
        after["vus"], 7,
        "7 VUs, 5 more than the plan ever has: {after}"
    );
    // About 10 requests per VU-second (100 ms think time plus a fast answer).
    let (b, a) = (
        before["requests"].as_u64().unwrap(),
        after["requests"].as_u64().unwrap(),
    );
    assert!(a * 2 >= b * 5, "7 VUs sent {a}, 2 VUs {b}");
    let paused = second(t[1].ceil() as u64 + 1);
    assert_eq!(paused["vus"], 0, "paused: {paused}");
    assert_eq!(paused["requests"], 0, "paused: {paused}");
}
