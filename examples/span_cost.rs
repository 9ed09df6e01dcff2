//! What exporting client spans costs per request: builds `SpanRecord`s as the executor does,
//! sends them through the telemetry span channel, and lets the OTLP exporter ship them to an
//! in-process OTLP/HTTP sink that accepts everything. Prints the conversion cost alone and the
//! whole process's CPU time per exported span at a steady rate.
//!
//!     cargo run --release --example span_cost [-- RATE_PER_S SECONDS]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use tokio::time::Instant;
use trafficgen::recorder::SpanRecord;
use trafficgen::telemetry::otlp_env::Signal;
use trafficgen::telemetry::spans::{SpanExport, scope, span_data};

fn cpu_seconds() -> f64 {
    // utime + stime of the whole process, in clock ticks (fields 14 and 15).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn record(i: u64) -> SpanRecord {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&i.to_be_bytes());
    trace_id[15] = 1;
    SpanRecord {
        trace_id,
        span_id: (i | 1).to_be_bytes(),
        op: Arc::from("create"),
        method: "POST",
        url: format!("http://127.0.0.1:8081/api/todos/{i}"),
        status: Some(201),
        error: None,
        start: SystemTime::now(),
        duration: Duration::from_micros(850),
        fault: None,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);

    // 1. Conversion alone.
    let n = 200_000u64;
    let recs: Vec<SpanRecord> = (0..n).map(record).collect();
    let sc = scope();
    let t0 = Instant::now();
    let mut keep = 0usize;
    for r in &recs {
        keep += span_data(r, "run-1", &sc).attributes.len();
    }
    let conv = t0.elapsed().as_nanos() as f64 / n as f64;
    println!("SpanRecord -> SpanData: {conv:.0} ns/span ({keep} attributes built)");

    // 2. The whole path at a steady rate, into a sink that counts what it gets.
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let (rq, by) = (requests.clone(), bytes.clone());
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            rq.fetch_add(1, Ordering::Relaxed);
            by.fetch_add(body.len() as u64, Ordering::Relaxed);
            async { "" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let signal = Signal::http(&format!("http://{addr}"), "/v1/traces");
    let export = SpanExport::start(&signal, "run-1").unwrap();
    let tx = export.sender();
    let per_tick = rate / 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let total = rate * secs;
    let (mut sent, mut full) = (0u64, 0u64);
    let cpu0 = cpu_seconds();
    let w0 = Instant::now();
    while sent + full < total {
        tick.tick().await;
        for _ in 0..per_tick {
            match tx.try_send(record(sent)) {
                Ok(()) => sent += 1,
                Err(_) => full += 1,
            }
        }
    }
    drop(tx);
    export.finish().await.unwrap();
    let cpu = cpu_seconds() - cpu0;
    let wall = w0.elapsed().as_secs_f64();
    println!(
        "steady {rate}/s for {secs}s: {sent} spans sent ({full} refused by a full channel), \
         {} OTLP requests, {} bytes; process CPU {cpu:.2}s over {wall:.2}s wall \
         = {:.2} µs CPU per exported span (includes the record building and the sink)",
        requests.load(Ordering::Relaxed),
        bytes.load(Ordering::Relaxed),
        cpu * 1e6 / sent.max(1) as f64
    );
}
