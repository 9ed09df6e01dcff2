//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte frame header, the frame types, flags, settings
//! and error codes this client uses, and writers that append whole frames to an output
//! buffer. Reading is done by the connection's driver on its own buffer: `Header::parse`
//! on the first nine bytes, then the payload.

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADER_LEN: usize = 9;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;

/// The protocol's default and smallest allowed SETTINGS_MAX_FRAME_SIZE, and its largest.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
pub const LARGEST_MAX_FRAME: u32 = (1 << 24) - 1;
/// Flow-control windows are 31-bit (RFC 9113 §6.9.1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;
pub const DEFAULT_WINDOW: i64 = 65_535;

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Header {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            // The reserved bit is ignored on receipt (§4.1).
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// Appends a frame header; `len` must fit in 24 bits (callers split larger payloads).
pub fn header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len <= LARGEST_MAX_FRAME as usize);
    let l = (len as u32).to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

pub fn settings(out: &mut Vec<u8>, pairs: &[(u16, u32)]) {
    header(out, pairs.len() * 6, SETTINGS, 0, 0);
    for (id, v) in pairs {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
}

pub fn settings_ack(out: &mut Vec<u8>) {
    header(out, 0, SETTINGS, ACK, 0);
}

pub fn window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    header(out, 4, WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&(increment & 0x7fff_ffff).to_be_bytes());
}

pub fn rst_stream(out: &mut Vec<u8>, stream: u32, code: u32) {
    header(out, 4, RST_STREAM, 0, stream);
    out.extend_from_slice(&code.to_be_bytes());
}

pub fn goaway(out: &mut Vec<u8>, last_stream: u32, code: u32) {
    header(out, 8, GOAWAY, 0, 0);
    out.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
}

pub fn ping_ack(out: &mut Vec<u8>, payload: &[u8; 8]) {
    header(out, 8, PING, ACK, 0);
    out.extend_from_slice(payload);
}

/// Appends `block` as a HEADERS frame and as many CONTINUATION frames as `max_frame` needs.
pub fn headers(out: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool, max_frame: usize) {
    let max = max_frame.max(1);
    let mut chunks = block.chunks(max);
    let first = chunks.next().unwrap_or(&[]);
    let mut flags = if end_stream { END_STREAM } else { 0 };
    let more = block.len() > max;
    if !more {
        flags |= END_HEADERS;
    }
    header(out, first.len(), HEADERS, flags, stream);
    out.extend_from_slice(first);
    let mut rest = chunks.peekable();
    while let Some(c) = rest.next() {
        let flags = if rest.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        header(out, c.len(), CONTINUATION, flags, stream);
        out.extend_from_slice(c);
    }
}

pub fn data(out: &mut Vec<u8>, stream: u32, bytes: &[u8], end_stream: bool) {
    header(
        out,
        bytes.len(),
        DATA,
        if end_stream { END_STREAM } else { 0 },
        stream,
    );
    out.extend_from_slice(bytes);
}

/// The payload of a DATA or HEADERS frame without its padding (§6.1, §6.2), and for HEADERS
/// without the priority fields; `None` when the padding does not fit (a PROTOCOL_ERROR).
pub fn unpad<'a>(h: &Header, payload: &'a [u8]) -> Option<&'a [u8]> {
    let mut p = payload;
    let mut pad = 0usize;
    if h.flags & PADDED != 0 {
        let (&n, rest) = p.split_first()?;
        pad = usize::from(n);
        p = rest;
    }
    if h.kind == HEADERS && h.flags & PRIORITY_FLAG != 0 {
        p = p.get(5..)?;
    }
    let end = p.len().checked_sub(pad)?;
    p.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_the_reserved_bit_is_ignored() {
        let mut out = Vec::new();
        header(&mut out, 0x01_02_03, HEADERS, END_HEADERS, 7);
        assert_eq!(out, [1, 2, 3, 1, 4, 0, 0, 0, 7]);
        out[5] |= 0x80;
        let h = Header::parse(out[..9].try_into().unwrap());
        assert_eq!(
            h,
            Header {
                len: 0x01_02_03,
                kind: HEADERS,
                flags: END_HEADERS,
                stream: 7
            }
        );
    }

    #[test]
    fn a_large_block_is_split_into_continuations_ending_with_end_headers() {
        let block: Vec<u8> = (0..25u8).collect();
        let mut out = Vec::new();
        headers(&mut out, 3, &block, true, 10);
        let mut frames = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let h = Header::parse(out[at..at + 9].try_into().unwrap());
            frames.push((h.kind, h.flags, h.len));
            at += 9 + h.len;
        }
        assert_eq!(
            frames,
            [
                (HEADERS, END_STREAM, 10),
                (CONTINUATION, 0, 10),
                (CONTINUATION, END_HEADERS, 5)
            ]
        );
        let mut small = Vec::new();
        headers(&mut small, 3, &block[..4], false, 10);
        assert_eq!(small[4], END_HEADERS);
    }

    #[test]
    fn padding_and_priority_are_stripped_and_bad_padding_is_refused() {
        let h = Header {
            len: 0,
            kind: HEADERS,
            flags: PADDED | PRIORITY_FLAG,
            stream: 1,
        };
        let p = [2, 0, 0, 0, 1, 16, b'a', b'b', 0, 0];
        assert_eq!(unpad(&h, &p), Some(&b"ab"[..]));
        let d = Header { kind: DATA, ..h };
        assert_eq!(unpad(&d, &[9, 1, 2]), None);
        assert_eq!(unpad(&d, &[]), None);
        assert_eq!(unpad(&d, &[1, b'x', 0]), Some(&b"x"[..]));
    }
}
