//! Raw HTTP/1.1 (RFC 9112) over a keep-alive stream: write a pre-built request, read one final
//! response with `httparse` into a reused buffer. Interim 1xx responses are skipped; the body
//! is framed by Transfer-Encoding (which wins), Content-Length, or the end of the connection,
//! decoded as a stream and discarded except for the first `keep` bytes that checks and
//! captures need. Memory per connection is bounded by `MAX_HEAD + READ_CHUNK + keep` whatever
//! the server sends; time is bounded by the caller's deadline.
//!
//! Hand-written instead of hyper's client: hyper's per-request `Request`/`HeaderMap` and its
//! dispatch channel cost 1.03–1.11× wrk's CPU per request against 0.89–0.93× for this design
//! (bench/README.md). Nothing here may panic on input: all arithmetic on sizes is checked.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::recorder::ErrorKind;

mod chunked;

use chunked::Chunked;
pub use chunked::decode_chunked;

/// Largest response head (status line + headers) accepted, bytes. Far above what real servers
/// send (nginx's own limit for request heads is 32 KiB) yet bounded.
pub const MAX_HEAD: usize = 256 * 1024;
/// Bytes read per `read` call while streaming a body.
const READ_CHUNK: usize = 16 * 1024;
/// Header slots tried on the stack before falling back to a heap array sized by the head.
const STACK_HEADERS: usize = 32;

/// The parsed head of the final response, plus what its body amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Length of the head at the start of `Buffers::rbuf` (captures read headers from there).
    pub head_len: usize,
    /// The connection cannot be reused after this response (`Connection: close`, HTTP/1.0,
    /// body delimited by close, both Transfer-Encoding and Content-Length, extra bytes).
    pub close: bool,
    /// Decoded body bytes received (kept or not).
    pub body_bytes: u64,
    /// The response's bytes as they came over the connection: interim responses, the head,
    /// the body with its chunk framing (HTTP/2: the stream's frames, 9-byte headers included;
    /// TLS records not counted).
    pub wire: u64,
    /// Interim (1xx) responses skipped before this one.
    pub interim: u32,
    /// When the first byte of the response arrived (for time to first byte); `None` when the
    /// whole response came in the read that completed it, so it arrived when the exchange
    /// ended (the caller's clock read serves: one read fewer per request).
    pub first_byte: Option<Instant>,
}

/// A failed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    /// No byte of a response had arrived: on a reused connection the server may have closed it
    /// while idle, so an idempotent request may be sent again on a fresh one.
    pub nothing_received: bool,
}

impl Failure {
    fn protocol() -> Failure {
        Failure {
            kind: ErrorKind::Protocol,
            nothing_received: false,
        }
    }
}

/// Per-connection buffers, reused across requests.
#[derive(Debug, Default)]
pub struct Buffers {
    /// The final response's head at `[..head_len]`; body bytes pass through after it.
    pub rbuf: Vec<u8>,
    /// The kept prefix of the decoded body.
    pub body: Vec<u8>,
    /// The last final head parsed on this connection and what it said (`HeadMemo`).
    memo: HeadMemo,
}

/// Heads longer than this are parsed every time (the memo stays small per connection).
const MEMO_MAX: usize = 1024;

/// A server sends the same head for the same resource again and again (nginx changes its
/// `Date` once a second): a head byte-identical to the last one says the same, so one
/// comparison replaces the parse. Parsing and interpreting the head was 13 % of the client's
/// user time in the closed loop against nginx (bench/README.md).
#[derive(Debug, Default)]
struct HeadMemo {
    bytes: Vec<u8>,
    /// What `bytes` parsed to, for a request that was (or was not) a HEAD.
    parsed: Option<(Parsed, bool)>,
}

impl HeadMemo {
    /// The parse of the head at the start of `buf`, from the memo or freshly.
    fn parse(&mut self, buf: &[u8], head_only: bool) -> Result<Option<(usize, Parsed)>, Failure> {
        if let Some((p, ho)) = self.parsed
            && ho == head_only
            && !self.bytes.is_empty()
            && buf.starts_with(&self.bytes)
        {
            // The memo ends with the blank line: the same bytes are the same whole head.
            return Ok(Some((self.bytes.len(), p)));
        }
        let r = parse_head(buf, head_only)?;
        if let Some((n, p)) = r
            && n <= MEMO_MAX
            && p.status >= 200
        {
            self.bytes.clear();
            self.bytes.extend_from_slice(&buf[..n]);
            self.parsed = Some((p, head_only));
        }
        Ok(r)
    }
}

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

/// What the head says about the connection and the body.
#[derive(Debug, Clone, Copy)]
struct Parsed {
    status: u16,
    close: bool,
    framing: Framing,
}

/// Whether comma-separated header `value` lists `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The framing of a parsed head (RFC 9112 §6.1, §6.3).
fn interpret(resp: &httparse::Response<'_, '_>, head_only: bool) -> Result<Parsed, Failure> {
    let status = resp.code.ok_or_else(Failure::protocol)?;
    let http10 = resp.version == Some(0);
    let mut close = http10;
    let mut length: Option<u64> = None;
    let mut te_last: Option<&[u8]> = None;
    let mut te_seen = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            // A list of identical values is the same length (RFC 9110 §8.6); anything else
            // is a framing error.
            for part in h.value.split(|&b| b == b',') {
                let l = parse_length(part).ok_or_else(Failure::protocol)?;
                if length.is_some_and(|p| p != l) {
                    return Err(Failure::protocol());
                }
                length = Some(l);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te_seen = true;
            if let Some(last) = h.value.rsplit(|&b| b == b',').next() {
                let last = last.trim_ascii();
                if !last.is_empty() {
                    te_last = Some(last);
                }
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if has_token(h.value, b"close") {
                close = true;
            } else if http10 && has_token(h.value, b"keep-alive") {
                close = false;
            }
        }
    }
    let no_body = head_only || status == 204 || status == 304 || (100..200).contains(&status);
    let framing = if no_body {
        Framing::None
    } else if te_seen {
        // An HTTP/1.0 message with Transfer-Encoding has faulty framing (§6.1).
        if http10 {
            return Err(Failure::protocol());
        }
        // Transfer-Encoding wins over Content-Length, but such a response may be smuggled
        // bytes: do not reuse the connection after it (§6.3 item 3).
        if length.is_some() {
            close = true;
        }
        if te_last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")) {
            Framing::Chunked(Chunked::START)
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(0) => Framing::None,
            Some(l) => Framing::Length(l),
            None => Framing::UntilClose,
        }
    };
    if framing == Framing::UntilClose {
        close = true;
    }
    Ok(Parsed {
        status,
        close,
        framing,
    })
}

/// Runs `parse` on header slots on the stack and, when the message has more headers than
/// they hold, once more on a heap array sized so that any message of `len` bytes fits (each
/// header line takes at least 3 bytes, "a:\n"): most messages cost no allocation.
pub(super) fn with_header_slots<'b, T>(
    len: usize,
    mut parse: impl FnMut(&mut [httparse::Header<'b>]) -> Result<T, httparse::Error>,
) -> Result<T, httparse::Error> {
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    match parse(&mut stack) {
        Err(httparse::Error::TooManyHeaders) => {
            parse(&mut vec![httparse::EMPTY_HEADER; len / 3 + 1])
        }
        r => r,
    }
}

/// Parses a head at the start of `buf`: `Ok(None)` = incomplete.
fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<(usize, Parsed)>, Failure> {
    let parsed = with_header_slots(buf.len(), |slots| {
        let mut resp = httparse::Response::new(slots);
        Ok(match resp.parse(buf)? {
            httparse::Status::Complete(n) => Some((n, interpret(&resp, head_only))),
            httparse::Status::Partial => None,
        })
    });
    match parsed {
        Ok(Some((n, p))) => Ok(Some((n, p?))),
        Ok(None) => Ok(None),
        Err(_) => Err(Failure::protocol()),
    }
}

fn io_failure(e: &std::io::Error, nothing_received: bool) -> Failure {
    Failure {
        kind: match e.kind() {
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        },
        nothing_received,
    }
}

/// Appends to `buf` from `stream`, at most `limit` bytes in one read; returns the bytes read
/// (0 = the peer closed).
async fn fill<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < limit {
        buf.reserve(limit);
    }
    let mut lim = (&mut *stream).take(limit as u64);
    lim.read_buf(buf).await
}

/// Keeps up to `keep` bytes of body data in `body`; counts all of it.
fn sink(body: &mut Vec<u8>, keep: usize, data: &[u8], total: &mut u64) {
    *total = total.saturating_add(data.len() as u64);
    let room = keep.saturating_sub(body.len());
    body.extend_from_slice(&data[..room.min(data.len())]);
}

/// Sends `req` and reads one final response. The caller bounds the time (the whole future
/// is raced against the request's deadline) and decides what to do with the connection.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    req: &[u8],
    bufs: &mut Buffers,
    head_only: bool,
    keep: usize,
) -> Result<Head, Failure> {
    if let Err(e) = stream.write_all(req).await {
        return Err(io_failure(&e, true));
    }
    bufs.rbuf.clear();
    bufs.body.clear();
    let mut interim = 0u32;
    let mut interim_bytes = 0u64;
    // The clock is read for the first byte only when a second read follows the first one: just
    // before it, which is when the first read's bytes were parsed (a few hundred ns later).
    let mut first_byte = None;
    let mut read_once = false;
    // Head: read until a complete final head is at the start of rbuf.
    let (head_len, parsed) = loop {
        if !bufs.rbuf.is_empty() {
            match bufs.memo.parse(&bufs.rbuf, head_only)? {
                Some((n, p)) if (100..200).contains(&p.status) => {
                    // A 101 switches protocols, which this client never asks for.
                    if p.status == 101 {
                        return Err(Failure::protocol());
                    }
                    interim = interim.saturating_add(1);
                    interim_bytes += n as u64;
                    bufs.rbuf.drain(..n);
                    continue;
                }
                Some(done) => break done,
                None if bufs.rbuf.len() >= MAX_HEAD => return Err(Failure::protocol()),
                None => {}
            }
        }
        let room = MAX_HEAD - bufs.rbuf.len();
        if read_once && first_byte.is_none() {
            first_byte = Some(Instant::now());
        }
        let got = fill(stream, &mut bufs.rbuf, room.min(READ_CHUNK))
            .await
            .map_err(|e| io_failure(&e, bufs.rbuf.is_empty() && interim == 0))?;
        if got == 0 {
            return Err(Failure {
                kind: ErrorKind::Io,
                nothing_received: bufs.rbuf.is_empty() && interim == 0,
            });
        }
        read_once = true;
    };
    let mut head = Head {
        status: parsed.status,
        head_len,
        close: parsed.close,
        body_bytes: 0,
        wire: interim_bytes.saturating_add(head_len as u64),
        interim,
        first_byte,
    };
    let mut framing = parsed.framing;
    // Body: decode what follows the head in rbuf, drop it, read more.
    let mut eof = false;
    loop {
        let avail = &bufs.rbuf[head_len..];
        let used = match &mut framing {
            Framing::None => 0,
            Framing::Length(left) => {
                let take = (*left).min(avail.len() as u64) as usize;
                sink(&mut bufs.body, keep, &avail[..take], &mut head.body_bytes);
                *left -= take as u64;
                take
            }
            Framing::Chunked(st) => {
                let mut at = 0;
                while at < avail.len() && *st != Chunked::Done {
                    let (used, data) = st.step(&avail[at..]).map_err(|()| Failure::protocol())?;
                    sink(
                        &mut bufs.body,
                        keep,
                        &avail[at + data.start..at + data.end],
                        &mut head.body_bytes,
                    );
                    at += used;
                }
                at
            }
            Framing::UntilClose => {
                sink(&mut bufs.body, keep, avail, &mut head.body_bytes);
                avail.len()
            }
        };
        let complete = match framing {
            Framing::None => true,
            Framing::Length(left) => left == 0,
            Framing::Chunked(st) => st == Chunked::Done,
            Framing::UntilClose => eof,
        };
        head.wire = head.wire.saturating_add(used as u64);
        if complete {
            // Bytes beyond the response: the stream is out of step with our requests.
            if bufs.rbuf.len() > head_len + used {
                head.close = true;
            }
            bufs.rbuf.truncate(head_len);
            return Ok(head);
        }
        bufs.rbuf.truncate(head_len);
        if eof {
            return Err(Failure {
                kind: ErrorKind::Io,
                nothing_received: false,
            });
        }
        if head.first_byte.is_none() {
            head.first_byte = Some(Instant::now());
        }
        let got = fill(stream, &mut bufs.rbuf, READ_CHUNK)
            .await
            .map_err(|e| io_failure(&e, false))?;
        eof = got == 0;
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
    let mut headers = vec![httparse::EMPTY_HEADER; head.len() / 3 + 1];
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
    fn header_lookup_is_case_insensitive() {
        let head = b"HTTP/1.1 201 Created\r\nLocation: /api/todos/7\r\n\r\n";
        assert_eq!(header(head, "location"), Some(&b"/api/todos/7"[..]));
    }

    #[test]
    fn a_repeated_head_comes_from_the_memo_and_any_difference_is_parsed() {
        let mut m = HeadMemo::default();
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let five = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let framing = |m: &mut HeadMemo, buf: &[u8], head_only: bool| {
            m.parse(buf, head_only)
                .unwrap()
                .map(|(n, p)| (n, p.status, p.framing, p.close))
        };
        let first = framing(&mut m, ok, false);
        assert_eq!(first, Some((ok.len() - 2, 200, Framing::Length(2), false)));
        assert_eq!(m.bytes, &ok[..ok.len() - 2]);
        assert_eq!(framing(&mut m, ok, false), first);
        assert_eq!(
            framing(&mut m, five, false),
            Some((five.len() - 5, 200, Framing::Length(5), false))
        );
        // The same bytes for a HEAD request say: no body.
        assert_eq!(
            framing(&mut m, five, true),
            Some((five.len() - 5, 200, Framing::None, false))
        );
        assert_eq!(
            framing(&mut m, five, false).map(|f| f.2),
            Some(Framing::Length(5))
        );
        // Part of a remembered head is incomplete, not the remembered head.
        assert_eq!(framing(&mut m, &five[..20], false), None);
        // One byte different (a close) is parsed again.
        let close = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
        assert_eq!(framing(&mut m, close, false).map(|f| f.3), Some(true));
        // Interim heads are not remembered.
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(framing(&mut m, cont, false).map(|f| f.1), Some(100));
        assert_eq!(m.bytes, &close[..]);
    }

    #[test]
    fn connection_tokens_are_list_members() {
        assert!(has_token(b"keep-alive, Close", b"close"));
        assert!(!has_token(b"closed", b"close"));
    }
}
