//! The task that owns one HTTP/2 connection's socket: it writes the frames requests queued in
//! `State::out` (all that queued since its last turn, in one write) and reads and handles the
//! server's frames: response heads decoded with HPACK into the stream's slot, bodies counted
//! and their kept prefix stored, flow control given back, settings applied and acknowledged,
//! pings answered, GOAWAY and RST_STREAM turned into failures of the streams they end.
//!
//! A violation by the server is an error of the stream (RST_STREAM, the request fails with
//! `protocol`) or of the connection (GOAWAY, every request on it fails), as RFC 9113 §5.4
//! says; nothing the server sends can make it panic or grow without bound: frames above our
//! SETTINGS_MAX_FRAME_SIZE, header blocks above `MAX_BLOCK` and header lists above
//! `http::MAX_HEAD` are errors.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::conn::{CONN_WINDOW, Phase, STREAM_WINDOW, Slot, State};
use super::frame::{self as f, Header};
use super::hpack::Decoder;
use crate::executor::http::{Failure, MAX_HEAD};
use crate::executor::tls::Stream;
use crate::recorder::ErrorKind;

/// Our SETTINGS_MAX_FRAME_SIZE: the default, so no setting needs sending.
const MAX_FRAME: usize = f::DEFAULT_MAX_FRAME as usize;
/// Largest header block (HEADERS and its CONTINUATIONs, compressed) accepted.
const MAX_BLOCK: usize = 2 * MAX_HEAD;
/// Read buffer: room for a few maximal frames per read.
const READ_BUF: usize = 4 * (MAX_FRAME + f::HEADER_LEN);

/// The connection's driver (a future of its own: one poll writes and reads).
pub struct Driver {
    st: Rc<RefCell<State>>,
    io: Stream,
    buf: Box<[u8]>,
    have: usize,
    dec: Decoder,
    /// A header block still expecting CONTINUATION frames: its stream, END_STREAM flag and
    /// the bytes of its frames so far (with their headers: what the stream received).
    cont: Option<(u32, bool, u64)>,
    block: Vec<u8>,
    /// The socket has written bytes not yet flushed (TLS buffers them).
    unflushed: bool,
    /// A connection error was sent: end once `out` is written.
    closing: bool,
}

impl Driver {
    pub fn new(st: Rc<RefCell<State>>, io: Stream) -> Driver {
        Driver {
            st,
            io,
            buf: vec![0; READ_BUF].into_boxed_slice(),
            have: 0,
            dec: Decoder::new(4096, MAX_HEAD),
            cont: None,
            block: Vec::new(),
            unflushed: false,
            closing: false,
        }
    }

    /// Writes what is queued; `Err` when the socket is gone.
    fn write(&mut self, cx: &mut Context<'_>) -> Result<(), ()> {
        let mut st = self.st.borrow_mut();
        while st.written < st.out.len() {
            let at = st.written;
            match Pin::new(&mut self.io).poll_write(cx, &st.out[at..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(()),
                Poll::Ready(Ok(n)) => {
                    st.written += n;
                    self.unflushed = true;
                }
                Poll::Pending => break,
            }
        }
        if st.written == st.out.len() {
            st.out.clear();
            st.written = 0;
        }
        drop(st);
        if self.unflushed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => return Err(()),
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    /// Handles every whole frame in the buffer and keeps the partial one.
    fn frames(&mut self) {
        let mut at = 0;
        let mut now = None;
        let mut st = self.st.borrow_mut();
        while self.have - at >= f::HEADER_LEN {
            let Ok(hb) = <&[u8; f::HEADER_LEN]>::try_from(&self.buf[at..at + f::HEADER_LEN]) else {
                break;
            };
            let h = Header::parse(hb);
            if h.len > MAX_FRAME {
                connection_error(&mut st, f::FRAME_SIZE_ERROR);
                self.closing = true;
                break;
            }
            let end = at + f::HEADER_LEN + h.len;
            if end > self.have {
                break;
            }
            let p = &self.buf[at + f::HEADER_LEN..end];
            let mut cx = Frames {
                st: &mut st,
                dec: &mut self.dec,
                cont: &mut self.cont,
                block: &mut self.block,
                now: &mut now,
            };
            if let Err(code) = cx.frame(&h, p) {
                connection_error(&mut st, code);
                self.closing = true;
                break;
            }
            at = end;
        }
        self.buf.copy_within(at..self.have, 0);
        self.have -= at;
    }

    /// The connection is over: streams still in flight fail with `io` (after a connection
    /// error they have failed already, with `protocol`).
    fn end(&mut self) -> Poll<()> {
        let mut st = self.st.borrow_mut();
        st.fail_all(Failure {
            kind: ErrorKind::Io,
            nothing_received: false,
        });
        st.ended = true;
        st.driver = None;
        Poll::Ready(())
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        {
            let mut st = this.st.borrow_mut();
            if !st.driver.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                st.driver = Some(cx.waker().clone());
            }
        }
        loop {
            if this.write(cx).is_err() {
                return this.end();
            }
            {
                let st = this.st.borrow();
                let drained = st.out.is_empty() && !this.unflushed;
                if drained && (this.closing || (st.closed.is_some() && st.active == 0)) {
                    drop(st);
                    return this.end();
                }
            }
            if this.closing {
                // Only the GOAWAY is left to write; nothing more is read.
                return Poll::Pending;
            }
            let mut rb = ReadBuf::new(&mut this.buf[this.have..]);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        return this.end();
                    }
                    this.have += n;
                    this.frames();
                }
                Poll::Ready(Err(_)) => return this.end(),
                // Whatever the last read queued was written at the top of this turn.
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A connection error (RFC 9113 §5.4.1): GOAWAY with `code`, every stream fails.
fn connection_error(st: &mut State, code: u32) {
    f::goaway(&mut st.out, 0, code);
    st.fail_all(Failure {
        kind: ErrorKind::Protocol,
        nothing_received: false,
    });
}

/// What handling one frame needs.
struct Frames<'a> {
    st: &'a mut State,
    dec: &'a mut Decoder,
    cont: &'a mut Option<(u32, bool, u64)>,
    block: &'a mut Vec<u8>,
    /// Read once per batch of frames, when a response head first needs it.
    now: &'a mut Option<Instant>,
}

/// A stream error: RST_STREAM with `code`, and its request fails with `protocol`.
fn reset(out: &mut Vec<u8>, s: &mut Slot, code: u32) {
    f::rst_stream(out, s.id, code);
    s.fail(Failure {
        kind: ErrorKind::Protocol,
        nothing_received: false,
    });
}

impl Frames<'_> {
    /// Handles one frame; `Err` is a connection error with its code.
    fn frame(&mut self, h: &Header, p: &[u8]) -> Result<(), u32> {
        if let Some((sid, _, _)) = *self.cont
            && (h.kind != f::CONTINUATION || h.stream != sid)
        {
            return Err(f::PROTOCOL_ERROR);
        }
        match h.kind {
            f::DATA => self.data(h, p),
            f::HEADERS => {
                if h.stream == 0 || h.stream.is_multiple_of(2) {
                    return Err(f::PROTOCOL_ERROR);
                }
                let frag = f::unpad(h, p).ok_or(f::PROTOCOL_ERROR)?;
                let end_stream = h.flags & f::END_STREAM != 0;
                if h.flags & f::END_HEADERS != 0 {
                    return self.head(h.stream, frag, end_stream, wire_len(p));
                }
                self.block.clear();
                self.block.extend_from_slice(frag);
                *self.cont = Some((h.stream, end_stream, wire_len(p)));
                Ok(())
            }
            f::CONTINUATION => {
                let Some((sid, end_stream, wire)) = *self.cont else {
                    return Err(f::PROTOCOL_ERROR);
                };
                if self.block.len().saturating_add(p.len()) > MAX_BLOCK {
                    return Err(f::PROTOCOL_ERROR);
                }
                self.block.extend_from_slice(p);
                let wire = wire.saturating_add(wire_len(p));
                if h.flags & f::END_HEADERS == 0 {
                    *self.cont = Some((sid, end_stream, wire));
                    return Ok(());
                }
                *self.cont = None;
                let block = std::mem::take(self.block);
                let r = self.head(sid, &block, end_stream, wire);
                *self.block = block;
                r
            }
            f::RST_STREAM => {
                if h.stream == 0 {
                    return Err(f::PROTOCOL_ERROR);
                }
                let code = be32(p).ok_or(f::FRAME_SIZE_ERROR)?;
                if let Some(s) = self.st.open_slot(h.stream).map(|i| &mut self.st.slots[i]) {
                    // Refused: the server did not process it (RFC 9113 §8.7).
                    let refused = code == f::REFUSED_STREAM && s.phase == Phase::Waiting;
                    s.fail(Failure {
                        kind: ErrorKind::Io,
                        nothing_received: refused,
                    });
                } else if h.stream >= self.st.next_id {
                    return Err(f::PROTOCOL_ERROR);
                }
                Ok(())
            }
            f::SETTINGS => self.settings(h, p),
            f::PING => {
                if h.stream != 0 {
                    return Err(f::PROTOCOL_ERROR);
                }
                let payload: &[u8; 8] = p.try_into().map_err(|_| f::FRAME_SIZE_ERROR)?;
                if h.flags & f::ACK == 0 {
                    f::ping_ack(&mut self.st.out, payload);
                }
                Ok(())
            }
            f::GOAWAY => {
                if h.stream != 0 {
                    return Err(f::PROTOCOL_ERROR);
                }
                let last = p.get(..4).and_then(be32).ok_or(f::FRAME_SIZE_ERROR)? & 0x7fff_ffff;
                if self.st.closed.is_none() {
                    self.st.closed = Some(ErrorKind::Io);
                }
                for s in self.st.slots.iter_mut().filter(|s| s.id > last) {
                    // Above the last stream the server will process: never seen by it.
                    s.fail(Failure {
                        kind: ErrorKind::Io,
                        nothing_received: true,
                    });
                }
                Ok(())
            }
            f::WINDOW_UPDATE => self.window_update(h, p),
            // Push is disabled in our SETTINGS (§8.4).
            f::PUSH_PROMISE => Err(f::PROTOCOL_ERROR),
            // PRIORITY and unknown types are ignored (§5.5).
            _ => Ok(()),
        }
    }

    fn data(&mut self, h: &Header, p: &[u8]) -> Result<(), u32> {
        if h.stream == 0 {
            return Err(f::PROTOCOL_ERROR);
        }
        let st = &mut *self.st;
        // Padding counts against flow control too (§6.1).
        let len = h.len as i64;
        st.recv_window -= len;
        if st.recv_window < 0 {
            return Err(f::FLOW_CONTROL_ERROR);
        }
        st.recv_unacked += len;
        if st.recv_unacked >= CONN_WINDOW / 2 {
            f::window_update(&mut st.out, 0, st.recv_unacked as u32);
            st.recv_window += st.recv_unacked;
            st.recv_unacked = 0;
        }
        let data = f::unpad(h, p).ok_or(f::PROTOCOL_ERROR)?;
        let next = st.next_id;
        let Some(i) = st.open_slot(h.stream) else {
            // A stream we reset or that ended: ignored. One never opened is an error.
            return if h.stream >= next {
                Err(f::PROTOCOL_ERROR)
            } else {
                Ok(())
            };
        };
        let State { slots, out, .. } = st;
        let s = &mut slots[i];
        s.received = s.received.saturating_add(wire_len(p));
        if s.phase == Phase::Waiting {
            // Data before the response head.
            reset(out, s, f::PROTOCOL_ERROR);
            return Ok(());
        }
        s.recv_window -= len;
        if s.recv_window < 0 {
            reset(out, s, f::FLOW_CONTROL_ERROR);
            return Ok(());
        }
        s.total = s.total.saturating_add(data.len() as u64);
        let room = s.keep.saturating_sub(s.body.len()).min(data.len());
        s.body.extend_from_slice(&data[..room]);
        if h.flags & f::END_STREAM != 0 {
            end_of_body(out, s);
            return Ok(());
        }
        s.recv_unacked += len;
        if s.recv_unacked >= STREAM_WINDOW / 2 {
            f::window_update(out, s.id, s.recv_unacked as u32);
            s.recv_window += s.recv_unacked;
            s.recv_unacked = 0;
        }
        Ok(())
    }

    /// A complete header block for `id`: the response head, an interim head or trailers.
    /// `wire`: the bytes of the block's frames, headers included (what the stream received).
    fn head(&mut self, id: u32, block: &[u8], end_stream: bool, wire: u64) -> Result<(), u32> {
        let now = *self.now.get_or_insert_with(Instant::now);
        let next = self.st.next_id;
        let open = self.st.open_slot(id);
        let State { slots, out, .. } = &mut *self.st;
        let Some(s) = open.map(|i| &mut slots[i]) else {
            // Decoded all the same: the table is shared by every stream.
            self.dec
                .decode(block, |_, _| {})
                .map_err(|_| f::COMPRESSION_ERROR)?;
            return if id >= next {
                Err(f::PROTOCOL_ERROR)
            } else {
                Ok(())
            };
        };
        s.received = s.received.saturating_add(wire);
        if s.phase == Phase::Body {
            // Trailers: read and dropped; they must end the stream (§8.1).
            self.dec
                .decode(block, |_, _| {})
                .map_err(|_| f::COMPRESSION_ERROR)?;
            if end_stream {
                end_of_body(out, s);
            } else {
                reset(out, s, f::PROTOCOL_ERROR);
            }
            return Ok(());
        }
        let mut form = HeadForm::default();
        s.head.clear();
        self.dec
            .decode(block, |name, value| form.line(&mut s.head, name, value))
            .map_err(|_| f::COMPRESSION_ERROR)?;
        if form.malformed || !(100..=999).contains(&form.status) {
            reset(out, s, f::PROTOCOL_ERROR);
            return Ok(());
        }
        if form.status < 200 {
            // Interim (RFC 9110 §15.2); 101 is not allowed in HTTP/2 (RFC 9113 §8.6).
            if form.status == 101 || end_stream {
                reset(out, s, f::PROTOCOL_ERROR);
            } else {
                s.interim = s.interim.saturating_add(1);
            }
            return Ok(());
        }
        s.head.extend_from_slice(b"\r\n");
        s.status = form.status;
        s.expect = form.length;
        s.first_byte = Some(now);
        s.phase = Phase::Body;
        if end_stream {
            end_of_body(out, s);
        }
        Ok(())
    }

    fn settings(&mut self, h: &Header, p: &[u8]) -> Result<(), u32> {
        if h.stream != 0 {
            return Err(f::PROTOCOL_ERROR);
        }
        if h.flags & f::ACK != 0 {
            return if p.is_empty() {
                Ok(())
            } else {
                Err(f::FRAME_SIZE_ERROR)
            };
        }
        if !p.len().is_multiple_of(6) {
            return Err(f::FRAME_SIZE_ERROR);
        }
        let st = &mut *self.st;
        for kv in p.chunks_exact(6) {
            let id = u16::from_be_bytes([kv[0], kv[1]]);
            let v = u32::from_be_bytes([kv[2], kv[3], kv[4], kv[5]]);
            match id {
                f::SETTINGS_HEADER_TABLE_SIZE => st.enc.set_max_size(v),
                f::SETTINGS_MAX_CONCURRENT_STREAMS => st.peer_max_streams = v,
                f::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let v = i64::from(v);
                    if v > f::MAX_WINDOW {
                        return Err(f::FLOW_CONTROL_ERROR);
                    }
                    let delta = v - st.peer_initial_window;
                    st.peer_initial_window = v;
                    for s in st
                        .slots
                        .iter_mut()
                        .filter(|s| matches!(s.phase, Phase::Waiting | Phase::Body))
                    {
                        let w = s.send_window + delta;
                        if w > f::MAX_WINDOW {
                            return Err(f::FLOW_CONTROL_ERROR);
                        }
                        s.send_window = w;
                    }
                }
                f::SETTINGS_MAX_FRAME_SIZE => {
                    if !(f::DEFAULT_MAX_FRAME..=f::LARGEST_MAX_FRAME).contains(&v) {
                        return Err(f::PROTOCOL_ERROR);
                    }
                    st.peer_max_frame = v as usize;
                }
                f::SETTINGS_ENABLE_PUSH if v > 1 => return Err(f::PROTOCOL_ERROR),
                // Others (and unknown ones, §6.5.2) change nothing we send.
                _ => {}
            }
        }
        f::settings_ack(&mut st.out);
        st.push_bodies();
        if !st.ready {
            st.ready = true;
            if let Some(w) = st.ready_waker.take() {
                w.wake();
            }
        }
        Ok(())
    }

    fn window_update(&mut self, h: &Header, p: &[u8]) -> Result<(), u32> {
        let inc = i64::from(be32(p).ok_or(f::FRAME_SIZE_ERROR)? & 0x7fff_ffff);
        let st = &mut *self.st;
        if h.stream == 0 {
            if inc == 0 {
                return Err(f::PROTOCOL_ERROR);
            }
            let w = st.send_window + inc;
            if w > f::MAX_WINDOW {
                return Err(f::FLOW_CONTROL_ERROR);
            }
            st.send_window = w;
            st.push_bodies();
            return Ok(());
        }
        let Some(i) = st.open_slot(h.stream) else {
            return Ok(());
        };
        let State { slots, out, .. } = &mut *st;
        let s = &mut slots[i];
        if inc == 0 {
            reset(out, s, f::PROTOCOL_ERROR);
            return Ok(());
        }
        let w = s.send_window + inc;
        if w > f::MAX_WINDOW {
            reset(out, s, f::FLOW_CONTROL_ERROR);
            return Ok(());
        }
        s.send_window = w;
        st.push_body(i);
        Ok(())
    }
}

/// A frame's bytes as they came over the connection: its 9-byte header and payload.
fn wire_len(payload: &[u8]) -> u64 {
    (f::HEADER_LEN + payload.len()) as u64
}

/// The stream's END_STREAM: done, unless its body disagrees with its `content-length` (a
/// malformed response, RFC 9113 §8.1.1).
fn end_of_body(out: &mut Vec<u8>, s: &mut Slot) {
    if s.pending_at < s.pending.len() {
        // Answered before our body was all sent: the rest is not needed (RFC 9113 §8.1).
        f::rst_stream(out, s.id, f::CANCEL);
    }
    match s.expect {
        Some(n) if n != s.total && !s.head_only && s.status != 204 && s.status != 304 => {
            reset(out, s, f::PROTOCOL_ERROR)
        }
        _ => s.finish(),
    }
}

fn be32(p: &[u8]) -> Option<u32> {
    let b: &[u8; 4] = p.try_into().ok()?;
    Some(u32::from_be_bytes(*b))
}

/// Turns decoded response header fields into the HTTP/1.1-style head the checks read.
#[derive(Default)]
struct HeadForm {
    status: u16,
    length: Option<u64>,
    regular: bool,
    malformed: bool,
}

impl HeadForm {
    fn line(&mut self, head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        if let Some(pseudo) = name.strip_prefix(b":") {
            // Only `:status`, once, before every regular field (RFC 9113 §8.3).
            if pseudo != b"status" || self.status != 0 || self.regular {
                self.malformed = true;
                return;
            }
            self.status = match value {
                [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
                    u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
                }
                _ => {
                    self.malformed = true;
                    return;
                }
            };
            head.extend_from_slice(b"HTTP/1.1 ");
            head.extend_from_slice(value);
            head.extend_from_slice(b" h2\r\n");
            return;
        }
        if self.status == 0 {
            self.malformed = true;
            return;
        }
        self.regular = true;
        if name == b"content-length" {
            match std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()) {
                Some(n) if self.length.is_none_or(|l| l == n) => self.length = Some(n),
                _ => self.malformed = true,
            }
        }
        head.extend_from_slice(name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests;
