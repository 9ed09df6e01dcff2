//! Property test of the HTTP/1.1 response reader with hyper's client as the oracle: for
//! generated responses (every framing, chunk layouts, extensions, trailers, wrong lengths,
//! interim 1xx), `executor::http::exchange` and hyper agree on the status and the body, or
//! both reject the response. Mutated and arbitrary bytes must never panic or hang it, and
//! where both still accept a mutated response they agree.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trafficgen::executor::http::{self, Buffers};

/// (status, body) or an error.
type Seen = Result<(u16, Vec<u8>), ()>;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Serves `bytes` on one end of an in-memory pipe (then closes it) and returns the other end.
fn serve(bytes: Vec<u8>) -> tokio::io::DuplexStream {
    let (client, mut server) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        // Answer only once the request is in: hyper refuses a response that comes before it.
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            match server.read(&mut buf).await {
                Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        let _ = server.write_all(&bytes).await;
        let _ = server.shutdown().await;
        // Keep reading so the client's request write never blocks.
        let mut sink = [0u8; 4096];
        while matches!(server.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    client
}

async fn ours(bytes: Vec<u8>) -> Seen {
    let mut io = serve(bytes);
    let mut bufs = Buffers::default();
    let f = http::exchange(
        &mut io,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &mut bufs,
        false,
        usize::MAX,
    );
    match tokio::time::timeout(Duration::from_secs(5), f).await {
        Ok(Ok(h)) => Ok((h.status, bufs.body)),
        Ok(Err(_)) => Err(()),
        Err(_) => panic!("the reader hung on a closed stream"),
    }
}

async fn hypers(bytes: Vec<u8>) -> Seen {
    let io = TokioIo::new(serve(bytes));
    let (mut send, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|_| ())?;
    tokio::spawn(conn);
    let req = ::http::Request::get("/")
        .header("host", "x")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let f = async {
        let resp = send.send_request(req).await.map_err(|_| ())?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|_| ())?.to_bytes();
        Ok((status, body.to_vec()))
    };
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .unwrap_or(Err(()))
}

#[derive(Debug, Clone)]
enum Framing {
    Length,
    /// A Content-Length off by this much (truncated or followed by junk).
    WrongLength(i8),
    /// Chunk sizes, with or without an extension, and trailers.
    Chunked(Vec<usize>, bool, bool),
    /// Chunked and a (wrong) Content-Length: Transfer-Encoding wins.
    ChunkedAndLength(Vec<usize>),
    UntilClose,
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::Length),
        (-3i8..3).prop_map(Framing::WrongLength),
        (
            prop::collection::vec(1usize..40, 0..6),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(c, e, t)| Framing::Chunked(c, e, t)),
        prop::collection::vec(1usize..40, 0..4).prop_map(Framing::ChunkedAndLength),
        Just(Framing::UntilClose),
    ]
}

fn response(
    status: u16,
    interim: bool,
    headers: &[(String, String)],
    body: &[u8],
    framing: &Framing,
) -> Vec<u8> {
    let mut out = Vec::new();
    if interim {
        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    out.extend_from_slice(format!("HTTP/1.1 {status} X\r\n").as_bytes());
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    let chunked = |sizes: &[usize], ext: bool, trailer: bool, out: &mut Vec<u8>| {
        let mut at = 0;
        for &s in sizes {
            let s = s.min(body.len() - at);
            if s == 0 {
                break;
            }
            out.extend_from_slice(format!("{s:x}").as_bytes());
            if ext {
                out.extend_from_slice(b";k=v");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body[at..at + s]);
            out.extend_from_slice(b"\r\n");
            at += s;
        }
        if at < body.len() {
            out.extend_from_slice(format!("{:x}\r\n", body.len() - at).as_bytes());
            out.extend_from_slice(&body[at..]);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        if trailer {
            out.extend_from_slice(b"X-Sum: 1\r\n");
        }
        out.extend_from_slice(b"\r\n");
    };
    match framing {
        Framing::Length => {
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
        }
        Framing::WrongLength(d) => {
            let l = (body.len() as i64 + *d as i64).max(0);
            out.extend_from_slice(format!("Content-Length: {l}\r\n\r\n").as_bytes());
            out.extend_from_slice(body);
        }
        Framing::Chunked(sizes, ext, trailer) => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            chunked(sizes, *ext, *trailer, &mut out);
        }
        Framing::ChunkedAndLength(sizes) => {
            out.extend_from_slice(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
            chunked(sizes, false, false, &mut out);
        }
        Framing::UntilClose => {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
        }
    }
    out
}

fn header() -> impl Strategy<Value = (String, String)> {
    ("X-[A-Za-z]{1,8}", "[ -~]{0,20}").prop_map(|(k, v)| (k, v.trim().to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_hyper_on_generated_responses(
        status in prop::sample::select(vec![200u16, 201, 204, 301, 304, 404, 500, 503]),
        interim in any::<bool>(),
        headers in prop::collection::vec(header(), 0..40),
        body in prop::collection::vec(any::<u8>(), 0..300),
        framing in framing(),
    ) {
        let bytes = response(status, interim, &headers, &body, &framing);
        let rt = rt();
        let (mine, theirs) = rt.block_on(async {
            (ours(bytes.clone()).await, hypers(bytes).await)
        });
        prop_assert_eq!(mine, theirs);
    }

    #[test]
    fn mutated_responses_never_panic_and_agree_where_both_accept(
        headers in prop::collection::vec(header(), 0..5),
        body in prop::collection::vec(any::<u8>(), 0..100),
        framing in framing(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = response(200, false, &headers, &body, &framing);
        for (at, b, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = b,
                1 => bytes.insert(i, b),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        let rt = rt();
        let (mine, theirs) = rt.block_on(async {
            (ours(bytes.clone()).await, hypers(bytes).await)
        });
        if let (Ok(m), Ok(t)) = (&mine, &theirs) {
            prop_assert_eq!(m, t);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = rt().block_on(ours(bytes));
    }
}
