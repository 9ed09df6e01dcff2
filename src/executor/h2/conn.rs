//! One HTTP/2 connection's shared state (`State`), as the requests of a worker's tasks and the
//! connection's driver see it: the frames waiting to be written, the streams in flight (a slot
//! each, reused), both ends' settings and flow-control windows, and the request side's HPACK
//! encoder. Requests append their frames to `out` and wake the driver; the driver fills the
//! slots from what it reads and wakes the request waiting on each.
//!
//! Single-threaded (one worker's `LocalSet`): a `RefCell`, never a lock. A slot's buffers are
//! swapped with the request's own at the end, so a response costs no allocation once every
//! slot has grown to its size.

use std::task::Waker;

use tokio::time::Instant;

use super::frame::{self, DEFAULT_MAX_FRAME, DEFAULT_WINDOW};
use super::hpack::Encoder;
use crate::executor::http::Failure;
use crate::recorder::ErrorKind;

/// Our SETTINGS_INITIAL_WINDOW_SIZE and connection window: large enough that a fast server is
/// not throttled by our acknowledgements; replenished when half is used.
pub const STREAM_WINDOW: i64 = 1 << 20;
pub const CONN_WINDOW: i64 = 1 << 24;

/// Where a stream's response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Slot not in use.
    Free,
    /// Sent, no final response head yet.
    Waiting,
    /// Final head received, body (or trailers) to come.
    Body,
    Done,
    Failed(Failure),
}

/// One stream in flight.
#[derive(Debug)]
pub struct Slot {
    pub id: u32,
    pub phase: Phase,
    pub status: u16,
    pub interim: u32,
    /// The final response's head, HTTP/1.1-style ("HTTP/1.1 200 h2", header lines, CRLF).
    pub head: Vec<u8>,
    /// The kept prefix of the body, up to `keep` bytes.
    pub body: Vec<u8>,
    pub keep: usize,
    pub total: u64,
    /// The response's `content-length`, which the body must match.
    pub expect: Option<u64>,
    /// A HEAD request: no body whatever the length says.
    pub head_only: bool,
    pub first_byte: Option<Instant>,
    pub waker: Option<Waker>,
    /// Received on this stream and not yet given back by WINDOW_UPDATE.
    pub recv_unacked: i64,
    pub recv_window: i64,
    pub send_window: i64,
    /// Request body bytes still to send (flow control held them back), from `pending_at`.
    pub pending: Vec<u8>,
    pub pending_at: usize,
    /// Bytes of frames queued for this stream (HEADERS, CONTINUATION, DATA, with headers).
    pub sent: u64,
    /// Bytes of frames received on this stream (HEADERS, CONTINUATION, DATA, with headers).
    pub received: u64,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            id: 0,
            phase: Phase::Free,
            status: 0,
            interim: 0,
            head: Vec::new(),
            body: Vec::new(),
            keep: 0,
            total: 0,
            expect: None,
            head_only: false,
            first_byte: None,
            waker: None,
            recv_unacked: 0,
            recv_window: 0,
            send_window: 0,
            pending: Vec::new(),
            pending_at: 0,
            sent: 0,
            received: 0,
        }
    }

    /// The stream ended with `f`; its request is told.
    pub fn fail(&mut self, f: Failure) {
        if matches!(self.phase, Phase::Waiting | Phase::Body) {
            self.phase = Phase::Failed(f);
            self.pending.clear();
            if let Some(w) = self.waker.take() {
                w.wake();
            }
        }
    }

    pub fn finish(&mut self) {
        self.phase = Phase::Done;
        self.pending.clear();
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The connection as both sides share it.
pub struct State {
    /// Frames to write, from `written` on.
    pub out: Vec<u8>,
    pub written: usize,
    /// The driver's waker: woken when `out` gets bytes or the connection is to close.
    pub driver: Option<Waker>,
    pub slots: Vec<Slot>,
    /// Streams in flight.
    pub active: u32,
    pub next_id: u32,
    pub enc: Encoder,
    /// Scratch for a header block before it is framed, and for a lower-cased name.
    pub block: Vec<u8>,
    pub lname: Vec<u8>,
    /// The peer's settings.
    pub peer_max_streams: u32,
    pub peer_initial_window: i64,
    pub peer_max_frame: usize,
    pub send_window: i64,
    pub recv_window: i64,
    pub recv_unacked: i64,
    /// The server's SETTINGS arrived (the handshake is done) and who waits for it.
    pub ready: bool,
    pub ready_waker: Option<Waker>,
    /// No new streams: GOAWAY received, an error, the end of the connection, or ids used up.
    /// `Some` holds why, for the requests that find it so.
    pub closed: Option<ErrorKind>,
    /// The driver has ended: nothing more is read or written.
    pub ended: bool,
}

impl State {
    pub fn new() -> State {
        State {
            out: Vec::with_capacity(4096),
            written: 0,
            driver: None,
            slots: Vec::new(),
            active: 0,
            next_id: 1,
            enc: Encoder::new(),
            block: Vec::with_capacity(512),
            lname: Vec::with_capacity(64),
            peer_max_streams: u32::MAX,
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_frame: DEFAULT_MAX_FRAME as usize,
            send_window: DEFAULT_WINDOW,
            recv_window: CONN_WINDOW,
            recv_unacked: 0,
            ready: false,
            ready_waker: None,
            closed: None,
            ended: false,
        }
    }

    pub fn wake_driver(&mut self) {
        if let Some(w) = &self.driver {
            w.wake_by_ref();
        }
    }

    /// A new stream can be opened now (under the caller's own limit `max`).
    pub fn can_open(&self, max: u32) -> bool {
        self.closed.is_none() && self.active < max.min(self.peer_max_streams)
    }

    /// Takes a slot for a new stream and gives it the next id; `None` when the connection
    /// takes no more streams.
    pub fn open(&mut self, keep: usize, head_only: bool) -> Option<usize> {
        if self.closed.is_some() {
            return None;
        }
        let id = self.next_id;
        match id.checked_add(2) {
            Some(n) if n <= 0x7fff_ffff => self.next_id = n,
            // The last id of the connection: it serves this stream, then no more.
            _ => self.closed = Some(ErrorKind::Io),
        }
        let i = match self.slots.iter().position(|s| s.phase == Phase::Free) {
            Some(i) => i,
            None => {
                self.slots.push(Slot::new());
                self.slots.len() - 1
            }
        };
        let s = &mut self.slots[i];
        // A fresh slot but for the buffers, which keep their capacity.
        let mut bufs = [
            std::mem::take(&mut s.head),
            std::mem::take(&mut s.body),
            std::mem::take(&mut s.pending),
        ];
        bufs.iter_mut().for_each(Vec::clear);
        let [head, body, pending] = bufs;
        *s = Slot {
            id,
            phase: Phase::Waiting,
            head,
            body,
            keep,
            head_only,
            recv_window: STREAM_WINDOW,
            send_window: self.peer_initial_window,
            pending,
            ..Slot::new()
        };
        self.active += 1;
        Some(i)
    }

    /// The index of stream `id`'s slot while the stream is open (no complete response and no
    /// failure yet): frames for any other stream change nothing.
    pub fn open_slot(&self, id: u32) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.id == id && matches!(s.phase, Phase::Waiting | Phase::Body))
    }

    /// Gives slot `i` back; a stream still open is cancelled (RST_STREAM CANCEL).
    pub fn release(&mut self, i: usize) {
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        if s.phase == Phase::Free {
            return;
        }
        let open = matches!(s.phase, Phase::Waiting | Phase::Body);
        let id = s.id;
        s.phase = Phase::Free;
        s.waker = None;
        s.pending.clear();
        self.active = self.active.saturating_sub(1);
        if open && !self.ended {
            frame::rst_stream(&mut self.out, id, frame::CANCEL);
            self.wake_driver();
        } else if self.closed.is_some() && self.active == 0 {
            // The last stream of a closed connection: its driver can end now.
            self.wake_driver();
        }
    }

    /// Sends what flow control allows of slot `i`'s pending body.
    pub fn push_body(&mut self, i: usize) {
        let max_frame = self.peer_max_frame;
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        while s.pending_at < s.pending.len() {
            let room = self.send_window.min(s.send_window).min(max_frame as i64);
            if room <= 0 {
                return;
            }
            let left = s.pending.len() - s.pending_at;
            let n = left.min(room as usize);
            let end = s.pending_at + n;
            let last = end == s.pending.len();
            frame::data(&mut self.out, s.id, &s.pending[s.pending_at..end], last);
            s.sent += (frame::HEADER_LEN + n) as u64;
            s.pending_at = end;
            self.send_window -= n as i64;
            s.send_window -= n as i64;
        }
    }

    /// After a window grew: the bodies that were waiting for it.
    pub fn push_bodies(&mut self) {
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if matches!(s.phase, Phase::Waiting | Phase::Body) && s.pending_at < s.pending.len() {
                self.push_body(i);
            }
        }
    }

    /// The connection is over (error, end of stream, GOAWAY with nothing left): every stream
    /// in flight fails with `f`, and no new one opens.
    pub fn fail_all(&mut self, f: Failure) {
        if self.closed.is_none() {
            self.closed = Some(f.kind);
        }
        for s in &mut self.slots {
            s.fail(f);
        }
        if let Some(w) = self.ready_waker.take() {
            w.wake();
        }
    }
}
