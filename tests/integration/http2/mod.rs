//! The hand-written HTTP/2 client against servers over loopback sockets: the `h2` crate's
//! server (an independent HPACK encoder with Huffman coding and a dynamic table, flow control
//! both ways, trailers, 1xx) and a raw-frame server scripted to misbehave (GOAWAY, RST_STREAM,
//! interim and invalid statuses, padding, CONTINUATION, bad frames and header blocks, endless
//! bodies, a server that never finishes the handshake), then a whole run whose counts must
//! equal the server's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::LocalSet;
use trafficgen::executor::h2::{self, Conn};
use trafficgen::executor::http::{Buffers, Failure, Head};
use trafficgen::executor::tls::Stream;
use trafficgen::recorder::ErrorKind;

mod hostile;
mod peer;
mod raw;

pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t.example\r\nUser-Agent: tg-test\r\n\r\n").into_bytes()
}

pub async fn connect(addr: SocketAddr) -> Result<Conn, Failure> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    h2::handshake(Stream::Plain(tcp), Duration::from_secs(10)).await
}

pub async fn ask(conn: &Conn, raw: Vec<u8>, keep: usize) -> Result<(Head, Buffers), Failure> {
    let mut bufs = Buffers::default();
    let scheme = "http";
    let h = h2::exchange(conn, &raw, scheme, &mut bufs, keep, &mut 0).await?;
    Ok((h, bufs))
}

pub fn text(bufs: &Buffers, h: &Head) -> String {
    String::from_utf8_lossy(&bufs.rbuf[..h.head_len]).into_owned()
}

/// Runs `f` on a current-thread runtime's `LocalSet` (the client's tasks are local).
pub async fn local<F: std::future::Future<Output = ()>>(f: F) {
    LocalSet::new().run_until(f).await;
}

pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A server on a fresh listener that hands each accepted connection, in a task of its own,
/// to `serve` with a counter the caller reads back (what the server says it answered).
pub async fn serve_counting<F, Fut>(serve: F) -> (SocketAddr, Arc<AtomicU64>)
where
    F: Fn(TcpStream, Arc<AtomicU64>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (l, addr) = listener().await;
    let counted = Arc::new(AtomicU64::new(0));
    let count = counted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            tokio::spawn(serve(s, count.clone()));
        }
    });
    (addr, counted)
}

pub fn io_never_processed() -> Failure {
    Failure {
        kind: ErrorKind::Io,
        nothing_received: true,
    }
}

/// Runs scenario `yaml` against `addr` over cleartext HTTP/2 with two workers; its report.
pub async fn run(yaml: &str, addr: SocketAddr) -> trafficgen::report::Report {
    let o = trafficgen::plan::Overrides {
        target_url: Some(format!("http://{addr}")),
        ..Default::default()
    };
    let mut plan = trafficgen::plan::build_from_str(yaml, "h2.yaml", None, &o, &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    plan.output.report = Some(path.clone());
    let mut out = Vec::new();
    trafficgen::app::run_plan(plan, 2, &mut out, std::future::pending())
        .await
        .expect("run");
    trafficgen::report::Report::read(&path).unwrap()
}
