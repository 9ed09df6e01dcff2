//! The live dashboard (`--dashboard`) of a real run of `tests/fixtures/report-faults.yaml`: it
//! updates in Debian's chromium while the run goes on, asks for its token, and refuses to
//! listen beyond loopback without one.

use std::process::Command as Std;
use std::time::Duration;

use super::outputs::{bin, out_dir, root};

/// A child process killed (and reaped) when the test ends, also on a failed assertion.
struct Running(std::process::Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a run of the fixture with `--dashboard 127.0.0.1:0` and returns it with the
/// dashboard's URL (read from its stderr).
fn run_with_dashboard(token: Option<&str>) -> (Running, String) {
    use std::io::{BufRead, BufReader};
    let dir = out_dir(if token.is_some() {
        "dash-token"
    } else {
        "dash"
    });
    let mut c = Std::new(assert_cmd::cargo::cargo_bin("trafficgen"));
    c.arg("run")
        .arg(root().join("tests/fixtures/report-faults.yaml"))
        .args(["--dashboard", "127.0.0.1:0", "--report"])
        .arg(dir.join("r.json"))
        .env_remove("TRAFFICGEN_DASHBOARD_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Some(t) = token {
        c.env("TRAFFICGEN_DASHBOARD_TOKEN", t);
    }
    let mut child = Running(c.spawn().unwrap());
    let stderr = child.0.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the run printed no dashboard URL")
            .unwrap();
        if let Some(u) = line.strip_prefix("trafficgen: dashboard on ") {
            break u.to_string();
        }
    };
    // Keep draining stderr so the run never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// The status code of a plain HTTP/1.0 GET of `path` with optional extra header lines.
fn http_status(url: &str, path: &str, header: &str) -> u16 {
    use std::io::{Read, Write};
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{header}\r\n").unwrap();
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn live_dashboard_updates_in_chromium() {
    let (mut run, url) = run_with_dashboard(None);
    let shots = root().join("artifacts/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let node = std::env::var("NODE_BIN").unwrap_or_else(|_| "node".into());
    let out = Std::new(node)
        .current_dir(root().join("tests/browser"))
        .arg("dashboard.mjs")
        .arg(&url)
        .arg(shots.join("dashboard.png"))
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "dashboard check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    // The run itself ends as it would without the dashboard (its windowed threshold fails).
    let status = run.0.wait().unwrap();
    assert_eq!(status.code(), Some(99));
}

#[test]
fn dashboard_asks_for_the_token_and_needs_one_beyond_loopback() {
    let (_run, url) = run_with_dashboard(Some("s3cret"));
    assert_eq!(http_status(&url, "/", ""), 401);
    assert_eq!(http_status(&url, "/events", ""), 401);
    assert_eq!(http_status(&url, "/?token=wrong", ""), 401);
    assert_eq!(http_status(&url, "/?token=s3cret", ""), 200);
    assert_eq!(
        http_status(&url, "/", "Authorization: Bearer s3cret\r\n"),
        200
    );
    // Beyond loopback without a token: a usage error before anything listens.
    let out = bin()
        .arg("run")
        .arg(root().join("tests/fixtures/report-faults.yaml"))
        .args(["--dashboard", "0.0.0.0:0"])
        .env_remove("TRAFFICGEN_DASHBOARD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set TRAFFICGEN_DASHBOARD_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The page's body (HTTP/1.0 GET).
fn http_body(url: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_page_hatches_a_failing_threshold_window_while_the_run_goes_on() {
    let (_run, url) = run_with_dashboard(None);
    // `p(99)<100ms over 2s` fails inside the latency window (2 s to 5 s), on a busy machine
    // already in the first window (the first requests open connections); poll the page (as a
    // reload would get it) until its chart data has a failing window, at most 12 s.
    let mut last = serde_json::Value::Null;
    for _ in 0..120 {
        let page = http_body(&url, "/");
        let data = page
            .split("<script type=\"application/json\" id=\"chart-data\">")
            .nth(1)
            .and_then(|s| s.split("</script>").next())
            .expect("chart data on the page");
        last = serde_json::from_str(data).unwrap();
        let hatched: Vec<&serde_json::Value> = last["bands"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["kind"] == "threshold")
            .collect();
        if let Some(b) = hatched.first() {
            assert_eq!(b["chart"], "latency", "{b}");
            assert!(
                b["label"].as_str().unwrap().contains("p(99)<100ms over 2s"),
                "{b}"
            );
            let (a, z) = (b["start_s"].as_f64().unwrap(), b["end_s"].as_f64().unwrap());
            assert!(a < z && z >= 2.0 && a < 6.0, "{a}–{z}");
            // The passing whole-run threshold `p(50)<250ms` is never hatched.
            assert!(
                hatched
                    .iter()
                    .all(|b| !b["label"].as_str().unwrap().contains("p(50)"))
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no failing window hatched on the live page: {last}");
}
