//! HTTPS against a real nginx from Debian with certificates made by the test (`openssl`):
//! the generator's counts equal nginx's access log; TLS 1.2 and 1.3; sessions resumed on
//! reconnect; a wrong CA, a name mismatch and an expired certificate are `tls` errors and the
//! run does not pass; mutual TLS with `ssl_verify_client on`; HTTP/2 over TLS (ALPN, `2` and
//! `auto`) and cleartext with prior knowledge (h2c), streams sharing connections.

use std::future::pending;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use trafficgen::exit::Exit;
use trafficgen::plan::Overrides;
use trafficgen::recorder::{Counts, ErrorKind};
use trafficgen::report::{Report, VerdictState};

use crate::telemetry::{Proc, binary, free_port};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(binary("OPENSSL_BIN", "openssl"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME-ca.pem`/`.key`) in `dir`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
        ],
    );
}

/// A certificate `NAME.pem`/`.key` signed by `CA`, valid for `days` (negative: expired).
fn cert(dir: &Path, ca: &str, name: &str, ext: &str, days: i32) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            &days.to_string(),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

const SERVER_EXT: &str = "subjectAltName=DNS:localhost,IP:127.0.0.1\n";

/// nginx serving HTTPS on 127.0.0.1 with `server.pem`; one access-log line per request:
/// `$server_protocol $status $ssl_protocol $ssl_session_reused $request_uri`.
struct Nginx {
    proc: Proc,
    dir: PathBuf,
    port: u16,
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its worker (a SIGKILLed master leaves it running);
    /// `Proc` kills and reaps whatever is left.
    fn drop(&mut self) {
        let pid = self.proc.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if matches!(self.proc.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Nginx {
    async fn start(dir: &Path, cert: &str, extra: &str) -> Nginx {
        Self::start_with(dir, cert, extra, "ssl").await
    }

    /// `listen` takes `params` (`ssl`, `ssl http2`, `http2` for cleartext HTTP/2).
    async fn start_with(dir: &Path, cert: &str, extra: &str, params: &str) -> Nginx {
        let port = free_port();
        let d = dir.display();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let conf = format!(
            "worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  log_format p '$server_protocol $status $ssl_protocol $ssl_session_reused $request_uri';
  access_log {d}/access.log p;
  log_format c '$connection $request_uri';
  access_log {d}/conn.log c;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{port} {params};
    ssl_certificate {d}/{cert}.pem;
    ssl_certificate_key {d}/{cert}.key;
    {extra}
    location = /health {{ return 200 ok; }}
    location / {{ return 200 hello; }}
  }}
}}
"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary("NGINX_BIN", "nginx"))
            .args([
                "-p",
                &d.to_string(),
                "-c",
                &format!("{d}/nginx.conf"),
                "-g",
                "daemon off;",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        let proc = Proc(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Nginx {
                    proc,
                    dir: dir.to_path_buf(),
                    port,
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }

    /// Distinct connections that carried requests other than the readiness probe.
    fn connections(&self) -> usize {
        let text = std::fs::read_to_string(self.dir.join("conn.log")).unwrap_or_default();
        let set: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.ends_with(" /health"))
            .filter_map(|l| l.split(' ').next())
            .collect();
        set.len()
    }

    /// Access-log lines of requests other than the readiness probe.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.ends_with(" /health"))
            .map(str::to_string)
            .collect()
    }
}

fn certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca(d, "good");
    ca(d, "other");
    cert(d, "good", "server", SERVER_EXT, 2);
    cert(d, "good", "expired", SERVER_EXT, -1);
    cert(d, "good", "client", "extendedKeyUsage=clientAuth\n", 2);
    dir
}

async fn run(dir: &Path, port: u16, tls: &str, extra: &str) -> (Exit, Option<Report>) {
    run_vus(dir, port, tls, extra, 2).await
}

async fn run_vus(
    dir: &Path,
    port: u16,
    tls: &str,
    extra: &str,
    vus: u32,
) -> (Exit, Option<Report>) {
    run_url(dir, &format!("https://127.0.0.1:{port}"), tls, extra, vus).await
}

async fn run_url(
    dir: &Path,
    url: &str,
    tls: &str,
    extra: &str,
    vus: u32,
) -> (Exit, Option<Report>) {
    let yaml = format!(
        "name: tls
target:
  tls: {{{tls}}}
  {extra}
load:
  model: closed
  start_vus: {vus}
  think_time: 2ms
  stages:
    - {{duration: 1s, vus: {vus}}}
mix:
  operations:
    - name: get
      request: {{path: /x}}
thresholds:
  errors: 'rate<1%'
"
    );
    let o = Overrides {
        target_url: Some(url.to_string()),
        ..Default::default()
    };
    let mut plan = trafficgen::plan::build_from_str(&yaml, "tls.yaml", None, &o, &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}"));
    // A certificate the probe rejects never gets ready: give up soon.
    plan.target.ready.timeout = Duration::from_millis(500);
    let path = dir.join("report.json");
    let _ = std::fs::remove_file(&path);
    plan.output.report = Some(path.clone());
    let mut out = Vec::new();
    let outcome = trafficgen::app::run_plan(plan, 1, &mut out, pending())
        .await
        .expect("run");
    (outcome, Report::read(&path).ok())
}

fn counts(r: &Option<Report>) -> &Counts {
    &r.as_ref().expect("a report").ops[0].1.counts
}

/// The reason of a handshake with nginx at `port` under `tls` (None: it succeeded).
async fn handshake(port: u16, tls: &trafficgen::plan::Tls) -> Option<String> {
    let base = trafficgen::plan::parse_base_url(&format!("https://127.0.0.1:{port}")).unwrap();
    let t = trafficgen::executor::tls::target(&base, tls, &[b"http/1.1"])
        .unwrap()
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    trafficgen::executor::tls::handshake(&t, tcp).await.err()
}

fn file(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_counts_equal_nginx_and_sessions_resume_on_tls_1_2_and_1_3() {
    let certs = certs();
    let d = certs.path();
    let ca = file(d, "good-ca.pem");
    for (protocols, expect, reconnect) in [
        ("TLSv1.3", "TLSv1.3", false),
        ("TLSv1.2", "TLSv1.2", false),
        ("TLSv1.2 TLSv1.3", "TLSv1.3", true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        for f in ["server.pem", "server.key"] {
            std::fs::copy(d.join(f), dir.path().join(f)).unwrap();
        }
        let mut extra = format!("ssl_protocols {protocols};");
        if reconnect {
            // Every response closes the connection: each request after the first handshake
            // of the session cache is a resumed session.
            extra.push_str(" keepalive_requests 1;");
        }
        let nginx = Nginx::start(dir.path(), "server", &extra).await;
        let (outcome, report) = run(dir.path(), nginx.port, &format!("ca_file: '{ca}'"), "").await;
        let c = counts(&report);
        let log = nginx.log();
        assert_eq!(
            outcome,
            Exit::Judged(VerdictState::Passed),
            "{protocols}: {c:?}"
        );
        assert!(c.requests > 10, "{c:?}");
        assert_eq!(
            log.len() as u64,
            c.requests,
            "{protocols}: nginx saw every request once"
        );
        assert_eq!(c.status, vec![(200, c.requests)]);
        assert!(
            log.iter()
                .all(|l| l.starts_with(&format!("HTTP/1.1 200 {expect} "))),
            "{protocols}: {log:?}"
        );
        let ph = &report.as_ref().unwrap().ops[0].1.phases_ms;
        assert!(ph.tls.max > 0.0 && ph.connect.max > 0.0, "{ph:?}");
        if reconnect {
            let resumed = log.iter().filter(|l| l.contains(" r /x")).count();
            assert!(
                resumed * 10 >= log.len() * 8,
                "resumed {resumed} of {}",
                log.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_are_tls_errors_and_the_run_does_not_pass() {
    let certs = certs();
    let d = certs.path();
    let good = d.join("good-ca.pem");
    let other = d.join("other-ca.pem");
    let tls = |ca: Option<&Path>, name: Option<&str>| trafficgen::plan::Tls {
        ca_file: ca.map(Path::to_path_buf),
        server_name: name.map(str::to_string),
        ..Default::default()
    };
    let cases = [
        ("server", tls(Some(&other), None), "UnknownIssuer"),
        ("server", tls(None, None), "UnknownIssuer"),
        (
            "server",
            tls(Some(&good), Some("wrong.example")),
            "NotValidForName",
        ),
        ("expired", tls(Some(&good), None), "Expired"),
        ("server", tls(Some(&good), None), ""),
    ];
    for (cert, tls, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["pem", "key"] {
            let f = format!("{cert}.{ext}");
            std::fs::copy(d.join(&f), dir.path().join(&f)).unwrap();
        }
        let nginx = Nginx::start(dir.path(), cert, "").await;
        let got = handshake(nginx.port, &tls).await;
        match got {
            None => assert!(reason.is_empty(), "{tls:?} was accepted"),
            Some(r) => assert!(!reason.is_empty() && r.contains(reason), "{tls:?}: {r}"),
        }
        if reason.is_empty() {
            continue;
        }
        let yaml_tls = format!(
            "ca_file: '{}'{}",
            tls.ca_file.as_deref().unwrap_or(&other).display(),
            tls.server_name
                .as_ref()
                .map(|n| format!(", server_name: {n}"))
                .unwrap_or_default()
        );
        let (outcome, report) = run(dir.path(), nginx.port, &yaml_tls, "").await;
        assert_ne!(outcome, Exit::Judged(VerdictState::Passed), "{yaml_tls}");
        if tls.server_name.is_some() {
            // The probe checks the URL's host (valid); the load sends the wrong name.
            let c = counts(&report);
            assert!(c.requests > 0);
            assert_eq!(c.errors[ErrorKind::Tls.index()], c.requests, "{c:?}");
            assert_eq!(outcome, Exit::Judged(VerdictState::ThresholdsFailed));
        } else {
            // The readiness probe already fails: the load never starts.
            assert_eq!(outcome, Exit::NotReady, "{yaml_tls}");
        }
        assert!(
            nginx.log().is_empty(),
            "{yaml_tls}: no request reached nginx"
        );
    }
    // insecure_skip_verify accepts the unknown issuer.
    let dir = tempfile::tempdir().unwrap();
    for f in ["server.pem", "server.key"] {
        std::fs::copy(d.join(f), dir.path().join(f)).unwrap();
    }
    let nginx = Nginx::start(dir.path(), "server", "").await;
    let (outcome, report) = run(dir.path(), nginx.port, "insecure_skip_verify: true", "").await;
    assert_eq!(outcome, Exit::Judged(VerdictState::Passed));
    assert_eq!(nginx.log().len() as u64, counts(&report).requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_ssl_verify_client_on() {
    let certs = certs();
    let d = certs.path();
    let dir = tempfile::tempdir().unwrap();
    for f in ["server.pem", "server.key"] {
        std::fs::copy(d.join(f), dir.path().join(f)).unwrap();
    }
    let extra = format!(
        "ssl_verify_client on; ssl_client_certificate {};",
        file(d, "good-ca.pem")
    );
    let nginx = Nginx::start(dir.path(), "server", &extra).await;
    let ca = file(d, "good-ca.pem");
    let with = format!(
        "ca_file: '{ca}', client_cert: '{}', client_key: '{}'",
        file(d, "client.pem"),
        file(d, "client.key")
    );
    let (outcome, report) = run(dir.path(), nginx.port, &with, "").await;
    let c = counts(&report);
    assert_eq!(outcome, Exit::Judged(VerdictState::Passed), "{c:?}");
    assert_eq!(c.status, vec![(200, c.requests)]);
    let served = nginx.log().len() as u64;
    assert_eq!(served, c.requests);
    // Without a client certificate nginx answers 400 (the readiness probe too): no load.
    let (outcome, report) = run(dir.path(), nginx.port, &format!("ca_file: '{ca}'"), "").await;
    assert_eq!(outcome, Exit::NotReady);
    assert!(report.is_none());
    assert_eq!(nginx.log().len() as u64, served);
    let health = std::fs::read_to_string(nginx.dir.join("access.log")).unwrap();
    assert!(
        health
            .lines()
            .any(|l| l.starts_with("HTTP/1.1 400 ") && l.ends_with(" /health"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_multiplexes_streams_and_nginx_logs_http_2() {
    let certs = certs();
    let d = certs.path();
    let ca = file(d, "good-ca.pem");
    let tls = format!("ca_file: '{ca}'");
    for (params, version, expect) in [
        ("ssl http2", "'2'", "HTTP/2.0"),
        ("ssl http2", "auto", "HTTP/2.0"),
        ("ssl", "auto", "HTTP/1.1"),
        ("http2", "'2'", "HTTP/2.0"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        for f in ["server.pem", "server.key"] {
            std::fs::copy(d.join(f), dir.path().join(f)).unwrap();
        }
        let nginx = Nginx::start_with(dir.path(), "server", "", params).await;
        let extra = format!("http_version: {version}\n  max_streams: 4");
        let (outcome, report) = if params.starts_with("ssl") {
            run_vus(dir.path(), nginx.port, &tls, &extra, 8).await
        } else {
            run_url(
                dir.path(),
                &format!("http://127.0.0.1:{}", nginx.port),
                "",
                &extra,
                8,
            )
            .await
        };
        let c = counts(&report);
        let log = nginx.log();
        assert_eq!(
            outcome,
            Exit::Judged(VerdictState::Passed),
            "{version}: {c:?}"
        );
        assert!(c.requests > 10, "{c:?}");
        assert_eq!(c.status, vec![(200, c.requests)], "{version}");
        assert_eq!(
            log.len() as u64,
            c.requests,
            "{version}: nginx saw every request once"
        );
        assert!(
            log.iter().all(|l| l.starts_with(&format!("{expect} 200 "))),
            "{version}: {log:?}"
        );
        // 8 VUs: 4 streams per HTTP/2 connection = 2 connections; HTTP/1.1 needs 8.
        let conns = nginx.connections();
        if expect == "HTTP/2.0" {
            assert_eq!(conns, 2, "{version}: streams share connections");
        } else {
            assert_eq!(conns, 8, "{version}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_ending_http2_connections_after_keepalive_requests_loses_no_request() {
    // nginx sends GOAWAY after `keepalive_requests` streams on a connection; the streams the
    // client had opened beyond it are never processed and must be sent again, not failed.
    let dir = tempfile::tempdir().unwrap();
    let certs = certs();
    for f in ["server.pem", "server.key"] {
        std::fs::copy(certs.path().join(f), dir.path().join(f)).unwrap();
    }
    let nginx = Nginx::start_with(dir.path(), "server", "keepalive_requests 20;", "http2").await;
    let url = format!("http://127.0.0.1:{}", nginx.port);
    let extra = "http_version: '2'\n  max_streams: 4";
    let (outcome, report) = run_url(dir.path(), &url, "", extra, 8).await;
    let c = counts(&report);
    assert_eq!(outcome, Exit::Judged(VerdictState::Passed), "{c:?}");
    assert_eq!(c.errors.iter().sum::<u64>(), 0, "{c:?}");
    assert!(c.requests > 200, "{c:?}");
    assert!(c.retries > 0, "{c:?}");
    assert_eq!(
        nginx.log().len() as u64,
        c.requests,
        "each request processed once"
    );
    assert!(nginx.connections() as u64 >= c.requests / 20, "{c:?}");
}
