//! Waiting for the target: a line about every second on stderr while it waits (none with
//! `--quiet`), and on exit 3 the last attempt's reason — connection refused (nothing listens),
//! HTTP 503 (a server that is up but not ready), timeout (a server that accepts and never
//! answers), TLS error (a server that does not speak TLS to an https probe) — each against a
//! real socket on loopback.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A thread serving `answer` to every connection (None: read, never answer) until dropped.
struct Server {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(answer: Option<&'static [u8]>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(200)));
                        let mut buf = [0u8; 2048];
                        let _ = s.read(&mut buf);
                        match answer {
                            Some(a) => {
                                let _ = s.write_all(a);
                            }
                            None => held.push(s),
                        }
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        Server { addr, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Runs a scenario whose readiness waits 2.5 s for `url`; (exit code, stderr).
fn run(url: &str, quiet: bool) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(
        &file,
        format!(
            "name: ready\n\
             target:\n  url: {url}\n  ready: {{path: /health, timeout: 2500ms, interval: 200ms}}\n\
             load:\n  stages:\n    - {{duration: 1s, rate: 10/s}}\n\
             mix:\n  operations:\n    - todo: list\n\
             output:\n  progress: plain\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trafficgen"));
    cmd.arg("run").arg(&file);
    if quiet {
        cmd.arg("--quiet");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_not_ready(code: Option<i32>, stderr: &str, reason: &str) {
    assert_eq!(code, Some(3), "{stderr}");
    let last = stderr
        .lines()
        .find(|l| l.contains("not ready within"))
        .unwrap_or_else(|| panic!("no final line: {stderr}"));
    assert!(last.contains(&format!("last attempt: {reason}")), "{last}");
    let waiting = stderr.lines().filter(|l| l.contains("waiting for")).count();
    // 2.5 s of waiting, a line about every second.
    assert!(
        (1..=3).contains(&waiting),
        "{waiting} waiting lines: {stderr}"
    );
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains("waiting for"))
            .all(|l| l.ends_with(reason) || l.contains(&format!(": {reason}"))),
        "{stderr}"
    );
}

#[test]
fn readiness_says_why_it_waits_and_why_it_gave_up() {
    // Nothing listens: bind, take the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, err) = run(&format!("http://127.0.0.1:{port}"), false);
    assert_not_ready(code, &err, "connection refused");

    let busy = Server::start(Some(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ));
    let (code, err) = run(&format!("http://{}", busy.addr), false);
    assert_not_ready(code, &err, "HTTP 503");
    // Quiet: no waiting lines, still the reason.
    let (code, err) = run(&format!("http://{}", busy.addr), true);
    assert_eq!(code, Some(3), "{err}");
    assert!(!err.contains("waiting for"), "{err}");
    assert!(err.contains("last attempt: HTTP 503"), "{err}");

    let silent = Server::start(None);
    let (code, err) = run(&format!("http://{}", silent.addr), false);
    assert_not_ready(code, &err, "timeout");

    let plain = Server::start(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    let (code, err) = run(&format!("https://127.0.0.1:{}", plain.addr.port()), false);
    assert_not_ready(code, &err, "TLS error");
}
