//! The client against raw-frame servers that break the protocol or the client's limits: each
//! kind of connection error answered with its GOAWAY code, an endless body read with bounded
//! memory, a server that stops reading.

use std::task::Poll;

use trafficgen::executor::h2::Pool;
use trafficgen::recorder::ErrorKind;

use super::raw::*;
use super::{ask, connect, get, io_never_processed, local};

/// What a server that breaks the protocol sends after the request's HEADERS, and the GOAWAY
/// code the client must answer with.
#[tokio::test]
async fn connection_errors_are_answered_with_goaway_and_fail_every_stream() {
    let cases: Vec<(&str, Frame, u32)> = vec![
        (
            "frame above 16 KiB",
            Frame {
                kind: DATA,
                flags: 0,
                stream: 1,
                payload: vec![0; 20_000],
            },
            6,
        ),
        (
            "HPACK index 0",
            Frame {
                kind: HEADERS,
                flags: END_HEADERS,
                stream: 1,
                payload: vec![0x80],
            },
            9,
        ),
        (
            "HPACK index past the tables",
            Frame {
                kind: HEADERS,
                flags: END_HEADERS,
                stream: 1,
                payload: vec![0xff, 0x40],
            },
            9,
        ),
        (
            "DATA on stream 0",
            Frame {
                kind: DATA,
                flags: 0,
                stream: 0,
                payload: vec![1],
            },
            1,
        ),
        (
            "PUSH_PROMISE",
            Frame {
                kind: PUSH_PROMISE,
                flags: END_HEADERS,
                stream: 1,
                payload: vec![0, 0, 0, 2, 0x82],
            },
            1,
        ),
        (
            "zero window increment",
            Frame {
                kind: WINDOW_UPDATE,
                flags: 0,
                stream: 0,
                payload: vec![0; 4],
            },
            1,
        ),
        (
            "window above 2^31-1",
            Frame {
                kind: WINDOW_UPDATE,
                flags: 0,
                stream: 0,
                payload: vec![0x7f, 0xff, 0xff, 0xff],
            },
            3,
        ),
        (
            "max frame size 100",
            Frame {
                kind: SETTINGS,
                flags: 0,
                stream: 0,
                payload: vec![0, 5, 0, 0, 0, 100],
            },
            1,
        ),
        (
            "settings of 5 bytes",
            Frame {
                kind: SETTINGS,
                flags: 0,
                stream: 0,
                payload: vec![0; 5],
            },
            6,
        ),
        (
            "ping of 4 bytes",
            Frame {
                kind: PING,
                flags: 0,
                stream: 0,
                payload: vec![0; 4],
            },
            6,
        ),
        (
            "HEADERS on an even stream",
            Frame {
                kind: HEADERS,
                flags: END_HEADERS,
                stream: 2,
                payload: OK.to_vec(),
            },
            1,
        ),
        (
            "HEADERS on a stream never opened",
            Frame {
                kind: HEADERS,
                flags: END_HEADERS,
                stream: 9,
                payload: OK.to_vec(),
            },
            1,
        ),
        (
            "CONTINUATION interrupted",
            Frame {
                kind: PING,
                flags: 0,
                stream: 0,
                payload: vec![0; 8],
            },
            1,
        ),
    ];
    for (name, bad, code) in cases {
        local(async {
            let (addr, server) = serve_one(&[], move |mut r| async move {
                r.next(HEADERS).await.unwrap();
                if name == "CONTINUATION interrupted" {
                    r.send(HEADERS, 0, 1, OK).await;
                }
                r.send(bad.kind, bad.flags, bad.stream, &bad.payload).await;
                let g = r.next(GOAWAY).await;
                let code = g.map(|g| u32::from_be_bytes(g.payload[4..8].try_into().unwrap()));
                // Then the client closes the connection.
                let eof = r.frame().await.is_none();
                (code, eof)
            })
            .await;
            let conn = connect(addr).await.unwrap();
            let e = ask(&conn, get("/"), 8).await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Protocol, "{name}");
            assert_eq!(server.await.unwrap(), (Some(code), true), "{name}");
            assert_eq!(
                ask(&conn, get("/"), 8).await.unwrap_err().kind,
                ErrorKind::Protocol,
                "{name}"
            );
        })
        .await;
    }
}

#[tokio::test]
async fn an_endless_body_is_read_with_bounded_memory_and_reset_when_dropped() {
    local(async {
        let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
        let (addr, server) = serve_one(&[], move |mut r| async move {
            r.next(HEADERS).await.unwrap();
            r.send(HEADERS, END_HEADERS, 1, OK).await;
            // 8 MiB: eight times the stream window, so the client must keep giving it back.
            let chunk = vec![b'z'; 16_384];
            for _ in 0..512 {
                r.send(DATA, 0, 1, &chunk).await;
            }
            // Wait for the window updates that let all of it through, then report.
            let mut stream_updates = 0;
            let mut given = 0u64;
            while given < 7 << 20 {
                let f = r.next(WINDOW_UPDATE).await.unwrap();
                if f.stream == 1 {
                    stream_updates += 1;
                    given += u64::from(u32::from_be_bytes(f.payload[..4].try_into().unwrap()));
                }
            }
            sent_tx.send(stream_updates).unwrap();
            let rst = r.next(RST_STREAM).await.unwrap();
            (rst.stream, rst.payload)
        })
        .await;
        let conn = connect(addr).await.unwrap();
        let c = conn.clone();
        let req = tokio::task::spawn_local(async move { ask(&c, get("/endless"), 100).await });
        assert!(sent_rx.await.unwrap() >= 14);
        req.abort();
        assert!(req.await.unwrap_err().is_cancelled());
        // Dropping the request reset its stream with CANCEL.
        assert_eq!(server.await.unwrap(), (1, vec![0, 0, 0, 8]));
        assert_eq!(conn.streams(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_server_that_stops_reading_bounds_what_is_queued_for_it() {
    local(async {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, server) = serve_one(&[], move |r| async move {
            // Holds the connection open and reads nothing after the preface.
            let _ = done_rx.await;
            drop(r);
        })
        .await;
        let conn = connect(addr).await.unwrap();
        // 16 KB a request: larger than half the HPACK table, so sent in full every time.
        let big = "v".repeat(16_000);
        let raw = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n").into_bytes();
        let mut refused_at = None;
        for n in 0..4000 {
            // Each request is given up after its first poll (its stream reset), as a timeout
            // would; the driver then writes what the socket takes.
            let polled = {
                let mut fut = std::pin::pin!(ask(&conn, raw.clone(), 0));
                std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
            };
            if let Poll::Ready(r) = polled {
                assert_eq!(r.unwrap_err(), io_never_processed());
                refused_at = Some(n);
                break;
            }
            tokio::task::yield_now().await;
        }
        // Once the socket's buffers are full, about 1 MiB more is queued, then no stream opens.
        assert!(refused_at.is_some_and(|n| n > 64), "{refused_at:?}");
        let pool = Pool::default();
        pool.add(conn.clone());
        assert!(pool.pick(10).is_none());
        done_tx.send(()).unwrap();
        server.await.unwrap();
    })
    .await;
}
