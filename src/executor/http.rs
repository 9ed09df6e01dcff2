//! Raw HTTP/1.1 over a keep-alive `TcpStream`: write a pre-built request, read one response
//! with `httparse` into a reused buffer (Content-Length, chunked, or until close). No
//! allocation per request once the buffers have grown to the largest response seen.
//!
//! Timeouts are lazy: one `Sleep` per connection is only reset when it fires before the
//! request's own deadline, so a request costs no timer-wheel insertion.

use std::pin::Pin;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::recorder::ErrorKind;

/// Where the body of the last response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `rbuf[start..end]`.
    Raw(usize, usize),
    /// The decoded chunked body is in `cbuf`.
    Chunked,
}

/// The parsed head of one response.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    pub status: u16,
    /// Length of the head in `rbuf`.
    pub head_len: usize,
    pub body: Body,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// A failed exchange: the error and whether no byte of a response had arrived (then a request
/// on a reused connection can be retried once on a fresh one: the server closed it idle).
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    pub kind: ErrorKind,
    pub nothing_received: bool,
}

/// Per-connection buffers.
#[derive(Debug, Default)]
pub struct Buffers {
    pub rbuf: Vec<u8>,
    pub cbuf: Vec<u8>,
}

impl Buffers {
    pub fn body<'a>(&'a self, head: &Head) -> &'a [u8] {
        match head.body {
            Body::Raw(s, e) => &self.rbuf[s..e],
            Body::Chunked => &self.cbuf,
        }
    }
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Io,
    }
}

/// Sends `req` and reads one response, failing with `Timeout` at `deadline`.
pub async fn exchange(
    stream: &mut TcpStream,
    req: &[u8],
    bufs: &mut Buffers,
    deadline: Instant,
    timer: &mut Pin<Box<Sleep>>,
    head_only: bool,
) -> Result<Head, Failure> {
    if let Err(e) = stream.write_all(req).await {
        return Err(Failure {
            kind: io_kind(&e),
            nothing_received: true,
        });
    }
    bufs.rbuf.clear();
    let mut parsed: Option<(Head, Framing)> = None;
    loop {
        if bufs.rbuf.capacity() - bufs.rbuf.len() < 4096 {
            bufs.rbuf.reserve(16 * 1024);
        }
        let n = tokio::select! {
            biased;
            r = stream.read_buf(&mut bufs.rbuf) => match r {
                Ok(n) => n,
                Err(e) => return Err(Failure { kind: io_kind(&e), nothing_received: bufs.rbuf.is_empty() }),
            },
            _ = timer.as_mut() => {
                if Instant::now() >= deadline {
                    return Err(Failure { kind: ErrorKind::Timeout, nothing_received: false });
                }
                timer.as_mut().reset(deadline);
                continue;
            }
        };
        if parsed.is_none() {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&bufs.rbuf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = resp.code.unwrap_or(0);
                    let mut close = resp.version == Some(0);
                    let mut framing = Framing::UntilClose;
                    for h in resp.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let len = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok());
                            match len {
                                Some(l) => framing = Framing::Length(l),
                                None => {
                                    return Err(Failure {
                                        kind: ErrorKind::Protocol,
                                        nothing_received: false,
                                    });
                                }
                            }
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            if h.value
                                .windows(7)
                                .any(|w| w.eq_ignore_ascii_case(b"chunked"))
                            {
                                framing = Framing::Chunked;
                            }
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            if h.value.windows(5).any(|w| w.eq_ignore_ascii_case(b"close")) {
                                close = true;
                            } else if h
                                .value
                                .windows(10)
                                .any(|w| w.eq_ignore_ascii_case(b"keep-alive"))
                            {
                                close = false;
                            }
                        }
                    }
                    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
                        framing = Framing::Length(0);
                    }
                    if matches!(framing, Framing::UntilClose) {
                        close = true;
                    }
                    parsed = Some((
                        Head {
                            status,
                            head_len,
                            body: Body::Raw(head_len, head_len),
                            close,
                        },
                        framing,
                    ));
                }
                Ok(httparse::Status::Partial) => {
                    if n == 0 {
                        return Err(Failure {
                            kind: ErrorKind::Io,
                            nothing_received: bufs.rbuf.is_empty(),
                        });
                    }
                    if bufs.rbuf.len() > 64 * 1024 {
                        return Err(Failure {
                            kind: ErrorKind::Protocol,
                            nothing_received: false,
                        });
                    }
                    continue;
                }
                Err(_) => {
                    return Err(Failure {
                        kind: ErrorKind::Protocol,
                        nothing_received: false,
                    });
                }
            }
        }
        let Some((mut head, framing)) = parsed.take() else {
            continue;
        };
        let have = bufs.rbuf.len() - head.head_len;
        match framing {
            Framing::Length(l) => {
                if have >= l {
                    head.body = Body::Raw(head.head_len, head.head_len + l);
                    return Ok(head);
                }
            }
            Framing::Chunked => match decode_chunked(&bufs.rbuf[head.head_len..], &mut bufs.cbuf) {
                Ok(true) => {
                    head.body = Body::Chunked;
                    return Ok(head);
                }
                Ok(false) => {}
                Err(()) => {
                    return Err(Failure {
                        kind: ErrorKind::Protocol,
                        nothing_received: false,
                    });
                }
            },
            Framing::UntilClose => {
                if n == 0 {
                    head.body = Body::Raw(head.head_len, bufs.rbuf.len());
                    return Ok(head);
                }
            }
        }
        if n == 0 {
            return Err(Failure {
                kind: ErrorKind::Io,
                nothing_received: false,
            });
        }
        parsed = Some((head, framing));
    }
}

#[allow(clippy::result_unit_err)]
/// Decodes a complete chunked body from `src` into `out`; `Ok(false)` = not complete yet.
pub fn decode_chunked(src: &[u8], out: &mut Vec<u8>) -> Result<bool, ()> {
    out.clear();
    let mut i = 0;
    loop {
        let Some(eol) = find(&src[i..], b"\r\n") else {
            return Ok(false);
        };
        let line = &src[i..i + eol];
        let size_part = line.split(|&b| b == b';').next().unwrap_or(line);
        let size_str = std::str::from_utf8(size_part).map_err(|_| ())?;
        let size = usize::from_str_radix(size_str.trim(), 16).map_err(|_| ())?;
        i += eol + 2;
        if size == 0 {
            // Trailers end with an empty line.
            let rest = &src[i..];
            if rest.starts_with(b"\r\n") {
                return Ok(true);
            }
            return Ok(find(rest, b"\r\n\r\n").is_some());
        }
        if src.len() < i + size + 2 {
            return Ok(false);
        }
        out.extend_from_slice(&src[i..i + size]);
        i += size + 2;
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` in a response head (for flow captures; not on the hot path).
pub fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(head).ok()?;
    resp.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_only_when_complete() {
        let mut out = Vec::new();
        assert_eq!(
            decode_chunked(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", &mut out),
            Ok(true)
        );
        assert_eq!(out, b"hello world");
        assert_eq!(
            decode_chunked(b"5\r\nhello\r\n6\r\n wor", &mut out),
            Ok(false)
        );
        assert_eq!(decode_chunked(b"zz\r\n", &mut out), Err(()));
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let head = b"HTTP/1.1 201 Created\r\nLocation: /api/todos/7\r\n\r\n";
        assert_eq!(header(head, "location"), Some(&b"/api/todos/7"[..]));
    }
}
