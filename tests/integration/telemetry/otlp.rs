//! OTLP export against a real receiver (rotel, REAL-PARTS §2b): client spans with the
//! executor's ids, names and attributes; OTLP metrics under `service.name=trafficgen`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use trafficgen::recorder::{ErrorKind, SpanRecord};
use trafficgen::telemetry::Telemetry;
use trafficgen::telemetry::otlp_env::OtlpEnv;

use super::{Proc, binary, config, free_port, report, snapshot};

/// rotel on two ephemeral ports, logging what it receives to `dir/rotel.out`: the process and
/// its OTLP/HTTP base URL.
pub(crate) async fn rotel(dir: &Path) -> (Proc, String) {
    let (p, http, _grpc) = rotel_both(dir).await;
    (p, http)
}

/// `rotel`, with its OTLP/HTTP base URL and its OTLP/gRPC endpoint.
pub(crate) async fn rotel_both(dir: &Path) -> (Proc, String, String) {
    let bin = binary("ROTEL_BIN", "rotel-agent");
    let (grpc, http) = (free_port(), free_port());
    let out = std::fs::File::create(dir.join("rotel.out")).unwrap();
    let child = Command::new(&bin)
        .arg("start")
        .arg(format!("--otlp-grpc-endpoint=127.0.0.1:{grpc}"))
        .arg(format!("--otlp-http-endpoint=127.0.0.1:{http}"))
        .args([
            "--exporter",
            "blackhole",
            "--debug-log",
            "traces",
            "--debug-log",
            "metrics",
        ])
        .args(["--debug-log-verbosity", "detailed"])
        .arg(format!("--pid-file={}", dir.join("rotel.pid").display()))
        .arg(format!("--log-file={}", dir.join("rotel.log").display()))
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let p = Proc(child);
    let base = format!("http://127.0.0.1:{http}");
    // Ready when the OTLP/HTTP receiver accepts a (empty, valid) JSON export.
    let client = reqwest::Client::new();
    for _ in 0..300 {
        let r = client
            .post(format!("{base}/v1/traces"))
            .header("content-type", "application/json")
            .body(r#"{"resourceSpans":[]}"#)
            .send()
            .await;
        if matches!(r, Ok(ref r) if r.status().is_success()) {
            return (p, base, format!("http://127.0.0.1:{grpc}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("rotel never became ready on {base}");
}

/// rotel's stdout without ANSI colours.
pub(crate) fn received(dir: &Path) -> String {
    let raw = std::fs::read_to_string(dir.join("rotel.out")).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Polls rotel's output until `pred` holds (bounded).
pub(crate) async fn wait_received(dir: &Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    for _ in 0..300 {
        let text = received(dir);
        if pred(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("rotel never received {what}:\n{}", received(dir));
}

fn record(
    n: u8,
    method: &'static str,
    op: &str,
    status: Option<u16>,
    error: Option<ErrorKind>,
) -> SpanRecord {
    SpanRecord {
        trace_id: [0xa0, n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        span_id: [0xb0, n, 1, 2, 3, 4, 5, 6],
        op: Arc::from(op),
        method,
        url: format!("http://127.0.0.1:1/api/todos/{n}"),
        status,
        error,
        start: SystemTime::now(),
        duration: Duration::from_millis(12),
        fault: (n == 2).then_some("latency"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The OTLP destinations the standard variables would give (`protocol` = the value of
/// `OTEL_EXPORTER_OTLP_PROTOCOL`), without touching this process's environment.
pub(crate) fn otlp_env(protocol: &str, endpoint: &str) -> OtlpEnv {
    OtlpEnv::from_lookup(|k| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.to_string()),
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some(protocol.to_string()),
        _ => None,
    })
    .unwrap()
}

#[tokio::test]
async fn client_spans_and_metrics_reach_a_real_otlp_receiver_over_http() {
    spans_and_metrics_reach_rotel("http/protobuf").await;
}

#[tokio::test]
async fn client_spans_and_metrics_reach_a_real_otlp_receiver_over_grpc() {
    spans_and_metrics_reach_rotel("grpc").await;
}

async fn spans_and_metrics_reach_rotel(protocol: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_rotel, http, grpc) = rotel_both(dir.path()).await;
    let endpoint = if protocol == "grpc" { grpc } else { http };

    let mut cfg = config("otlp-1");
    cfg.outputs.trace_sample_ratio = 0.25;
    cfg.otlp = otlp_env(protocol, &endpoint);
    let mut t = Telemetry::start_with(cfg).await.unwrap();
    assert_eq!(t.sample_ratio(), 0.25);
    let tx = t
        .span_sender()
        .expect("spans are exported when an endpoint is set");
    let recs = [
        record(1, "POST", "create", Some(201), None),
        record(2, "GET", "list", Some(200), None),
        record(3, "DELETE", "delete", None, Some(ErrorKind::Timeout)),
    ];
    for r in &recs {
        tx.try_send(r.clone()).unwrap();
    }
    t.observe(&snapshot(true));
    let problems = t.finish(&report("otlp-1")).await;
    assert!(problems.is_empty(), "{problems:?}");
    // The executor's sender outlives finish: sending after it is harmless.
    let _ = tx.try_send(recs[0].clone());

    let ids: Vec<String> = recs.iter().map(|r| hex(&r.trace_id)).collect();
    let text = wait_received(dir.path(), "the three client spans", |t| {
        ids.iter().all(|id| t.contains(id.as_str()))
    })
    .await;
    for (r, id) in recs.iter().zip(&ids) {
        // The span block of this trace id: from its "Trace ID" line to the next span.
        let at = text.find(id.as_str()).unwrap();
        let block = &text[at..];
        let block = &block[..block[1..].find("Trace ID").map_or(block.len(), |i| i + 1)];
        assert!(
            block.contains(&hex(&r.span_id)),
            "span id of {id}:\n{block}"
        );
        assert!(
            block.lines().any(|l| {
                l.trim_start().starts_with("Name")
                    && l.trim_end().ends_with(&format!(": {}", r.method))
            }),
            "name of {id} (semantic conventions: the method alone):\n{block}"
        );
        assert!(
            block.contains("server.address") && block.contains("server.port"),
            "{block}"
        );
        assert!(block.contains("SPAN_KIND_CLIENT"), "kind of {id}:\n{block}");
        assert!(
            block.contains("trafficgen.run_id") && block.contains("otlp-1"),
            "{block}"
        );
        assert!(
            block.contains("url.full") && block.contains(&r.url),
            "{block}"
        );
        assert!(block.contains("http.request.method"), "{block}");
        assert_eq!(block.contains("fault.kind"), r.fault.is_some(), "{block}");
        assert_eq!(
            block.contains("http.response.status_code"),
            r.status.is_some(),
            "{block}"
        );
    }
    assert!(text.contains("trafficgen"), "{text}");
    let text = wait_received(dir.path(), "OTLP metrics of service trafficgen", |t| {
        t.contains("ResourceMetrics") && t.contains("-> Name: trafficgen_run_finished")
    })
    .await;
    let metrics = &text[text.find("ResourceMetrics").unwrap()..];
    assert!(
        metrics.contains("service.name: Str(trafficgen)"),
        "{metrics}"
    );
    assert!(
        metrics.contains("-> Name: trafficgen_requests\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("trafficgen_response_time_seconds"),
        "histograms are not sent over OTLP"
    );
    // The final export carries the final values: run_finished = 1.
    let last = &metrics[metrics.rfind("-> Name: trafficgen_run_finished").unwrap()..];
    let value = last
        .lines()
        .find_map(|l| l.strip_prefix("Value: "))
        .unwrap();
    assert_eq!(value.trim(), "1", "{last}");
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_sampled() {
    let t = Telemetry::start_with(config("otlp-2")).await.unwrap();
    assert!(t.span_sender().is_none());
    assert_eq!(t.sample_ratio(), 0.0);
}

/// `OTEL_EXPORTER_OTLP_HEADERS` reach the collector, over HTTP (as headers) and over gRPC (as
/// metadata): an in-test server on each transport records what arrives (rotel does not show
/// request headers).
#[tokio::test]
async fn otlp_headers_reach_the_collector_over_http_and_grpc() {
    use axum::http::HeaderMap;
    use std::sync::Mutex;
    let seen: Arc<Mutex<Vec<(String, HeaderMap)>>> = Arc::default();
    let s = seen.clone();
    let app =
        axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| async move {
            s.lock().unwrap().push((uri.path().to_string(), headers));
            // Enough for the exporter to finish its call; what it thinks of it is not the point.
            (
                [("content-type", "application/x-protobuf")],
                axum::body::Bytes::new(),
            )
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    for protocol in ["http/protobuf", "grpc"] {
        let mut cfg = config("hdr-1");
        cfg.otlp = OtlpEnv::from_lookup(|k| match k {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some(if protocol == "grpc" {
                format!("http://{addr}")
            } else {
                format!("http://{addr}/v1/traces")
            }),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some(protocol.to_string()),
            "OTEL_EXPORTER_OTLP_HEADERS" => {
                Some("Authorization=Bearer%20otlp-t0ken,X-Scope-OrgID=tenant-9".to_string())
            }
            _ => None,
        })
        .unwrap();
        let t = Telemetry::start_with(cfg).await.unwrap();
        t.span_sender()
            .unwrap()
            .try_send(record(9, "GET", "list", Some(200), None))
            .unwrap();
        // The export may be refused by this stand-in (not a real collector): only headers count.
        let _ = t.finish(&report("hdr-1")).await;
        let seen = seen.lock().unwrap();
        let want = if protocol == "grpc" {
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        } else {
            "/v1/traces"
        };
        let (_, h) = seen.iter().find(|(p, _)| p == want).unwrap_or_else(|| {
            panic!(
                "{protocol}: no export reached {want}: {:?}",
                seen.iter().map(|x| &x.0).collect::<Vec<_>>()
            )
        });
        assert_eq!(h["authorization"], "Bearer otlp-t0ken", "{protocol}");
        assert_eq!(h["x-scope-orgid"], "tenant-9", "{protocol}");
    }
}

/// An OTLP setting the generator cannot honour stops the run before any load, naming the
/// variable (no silent "0 spans delivered").
#[test]
fn an_unsupported_otlp_protocol_is_a_start_up_error() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/smoke.yaml");
    for (var, value) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_trafficgen"))
            .args(["run", scenario, "--quiet"])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
            .env(var, value)
            .env("OTEL_TRACES_EXPORTER", "otlp")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(var) && stderr.contains(value),
            "the error names the variable and its value: {stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("requests"),
            "no load ran"
        );
    }
}
