//! The chunked transfer coding (RFC 9112 §7.1) of response bodies, decoded incrementally: one
//! pass over the bytes as they arrive, checked arithmetic on the sizes, nothing buffered.

/// Incremental chunked decoder (RFC 9112 §7.1): one pass over the bytes, no buffering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunked {
    /// Hex digits of a chunk size; `digits` so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// Whitespace or extension after the size, up to CR.
    Ext {
        size: u64,
    },
    /// CR seen after the size line.
    SizeLf {
        size: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

impl Chunked {
    pub(super) const START: Chunked = Chunked::Size { size: 0, digits: 0 };

    /// Feeds `src`; returns how many bytes were consumed and which of them (range into `src`)
    /// are body data. Stops at the end of a data run so the caller can keep those bytes.
    pub(super) fn step(&mut self, src: &[u8]) -> Result<(usize, std::ops::Range<usize>), ()> {
        let mut i = 0;
        while i < src.len() {
            let b = src[i];
            match *self {
                Chunked::Size { size, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let d = (b as char).to_digit(16).ok_or(())? as u64;
                        // 16 hex digits fill a u64; more is an overflow, not a size.
                        let size = size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(d))
                            .ok_or(())?;
                        *self = Chunked::Size {
                            size,
                            digits: digits.saturating_add(1),
                        };
                    }
                    b';' | b' ' | b'\t' if digits > 0 => *self = Chunked::Ext { size },
                    b'\r' if digits > 0 => *self = Chunked::SizeLf { size },
                    _ => return Err(()),
                },
                Chunked::Ext { size } => match b {
                    b'\r' => *self = Chunked::SizeLf { size },
                    b'\n' | 0 => return Err(()),
                    _ => {}
                },
                Chunked::SizeLf { size } => {
                    if b != b'\n' {
                        return Err(());
                    }
                    *self = if size == 0 {
                        Chunked::TrailerStart
                    } else {
                        Chunked::Data { left: size }
                    };
                }
                Chunked::Data { left } => {
                    let avail = (src.len() - i) as u64;
                    let take = avail.min(left);
                    // take <= avail, which came from a usize.
                    let end = i + take as usize;
                    *self = if take == left {
                        Chunked::DataCr
                    } else {
                        Chunked::Data { left: left - take }
                    };
                    return Ok((end, i..end));
                }
                Chunked::DataCr => {
                    if b != b'\r' {
                        return Err(());
                    }
                    *self = Chunked::DataLf;
                }
                Chunked::DataLf => {
                    if b != b'\n' {
                        return Err(());
                    }
                    *self = Chunked::START;
                }
                Chunked::TrailerStart => {
                    *self = if b == b'\r' {
                        Chunked::EndLf
                    } else {
                        Chunked::TrailerLine
                    };
                }
                Chunked::TrailerLine => {
                    if b == b'\r' {
                        *self = Chunked::TrailerLf;
                    }
                }
                Chunked::TrailerLf => {
                    if b != b'\n' {
                        return Err(());
                    }
                    *self = Chunked::TrailerStart;
                }
                Chunked::EndLf => {
                    if b != b'\n' {
                        return Err(());
                    }
                    *self = Chunked::Done;
                    return Ok((i + 1, 0..0));
                }
                Chunked::Done => return Ok((i, 0..0)),
            }
            i += 1;
        }
        Ok((i, 0..0))
    }
}

/// Decodes a whole chunked body (tests and the property test's reference path).
#[allow(clippy::result_unit_err)]
pub fn decode_chunked(src: &[u8], out: &mut Vec<u8>) -> Result<bool, ()> {
    out.clear();
    let mut st = Chunked::START;
    let mut at = 0;
    while at < src.len() && st != Chunked::Done {
        let (used, data) = st.step(&src[at..])?;
        out.extend_from_slice(&src[at + data.start..at + data.end]);
        at += used;
    }
    Ok(st == Chunked::Done)
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
        assert_eq!(
            decode_chunked(b"3;name=v\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", &mut out),
            Ok(true)
        );
        assert_eq!(out, b"abc");
    }

    #[test]
    fn chunk_sizes_that_overflow_or_lack_digits_are_errors() {
        let mut out = Vec::new();
        assert_eq!(decode_chunked(b"fffffffffffffffff\r\n", &mut out), Err(()));
        assert_eq!(decode_chunked(b";x\r\n", &mut out), Err(()));
        assert_eq!(decode_chunked(b"\r\n", &mut out), Err(()));
        assert_eq!(decode_chunked(b"2\r\nabX", &mut out), Err(()));
        // The largest size parses (and waits for its data).
        assert_eq!(
            decode_chunked(b"ffffffffffffffff\r\nab", &mut out),
            Ok(false)
        );
    }
}
