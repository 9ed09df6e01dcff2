//! HPACK (RFC 7541) for the HTTP/2 client: the `Encoder` of our request header blocks, the
//! `Decoder` of the peer's response header blocks, and what both share (the static table, the
//! dynamic table with its eviction, §5 integers and strings).
//!
//! The encoder never Huffman-codes (cheaper for us and for the server; after the first request
//! most lines are indexed anyway) and indexes on repeat: a line is inserted into the dynamic
//! table only the second time it is seen, so values that change on every request do not evict
//! the ones that repeat.

use std::collections::VecDeque;

use super::huffman;

/// RFC 7541 Appendix A; index = position + 1.
const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The first dynamic table index (§2.3.3).
const FIRST_DYNAMIC: usize = STATIC.len() + 1;
/// SETTINGS_HEADER_TABLE_SIZE's initial value (RFC 9113 §6.5.2), the most our encoder uses.
const DEFAULT_TABLE_SIZE: usize = 4096;

/// §4.1: an entry's size counts 32 octets of overhead beside its name and value.
fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len().saturating_add(value.len()).saturating_add(32)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("header block ends inside a representation")]
    Truncated,
    #[error("integer above u32::MAX")]
    IntegerOverflow,
    #[error("string runs past the end of the header block")]
    StringPastEnd,
    #[error("index {0} is in neither table")]
    BadIndex(u32),
    #[error("dynamic table size update to {0}, above our SETTINGS_HEADER_TABLE_SIZE")]
    SizeUpdateTooLarge(u32),
    #[error("dynamic table size update after a header or after two others")]
    SizeUpdateMisplaced,
    #[error("header list larger than {0} octets")]
    ListTooLarge(usize),
    #[error("invalid Huffman-coded string")]
    Huffman,
}

/// One dynamic table entry: name and value in one allocation.
struct Entry {
    bytes: Vec<u8>,
    split: usize,
}

impl Entry {
    fn parts(&self) -> (&[u8], &[u8]) {
        self.bytes.split_at_checked(self.split).unwrap_or_default()
    }
}

/// The dynamic table (§2.3.2), newest entry first. The encoder's copy mirrors the peer's
/// decoder: both apply the same insertions and evictions.
struct Table {
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
    /// The buffer of the last evicted entry, reused by the next insertion.
    spare: Vec<u8>,
    /// Bumped whenever an index may have changed meaning (insertion, eviction, new size).
    version: u64,
}

impl Table {
    fn new(max: usize) -> Table {
        Table {
            entries: VecDeque::new(),
            size: 0,
            max,
            spare: Vec::new(),
            version: 0,
        }
    }

    /// `i` counts from the newest entry, 0-based.
    fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.entries.get(i).map(Entry::parts)
    }

    fn set_max(&mut self, max: usize) {
        self.max = max;
        self.version = self.version.wrapping_add(1);
        self.evict_for(0);
    }

    /// §4.4: evicts the oldest entries until `room` more octets fit.
    fn evict_for(&mut self, room: usize) {
        while self.size.saturating_add(room) > self.max {
            let Some(old) = self.entries.pop_back() else {
                break;
            };
            let (name, value) = old.parts();
            self.size = self.size.saturating_sub(entry_size(name, value));
            self.spare = old.bytes;
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        self.version = self.version.wrapping_add(1);
        let size = entry_size(name, value);
        if size > self.max {
            // §4.4: an entry larger than the table empties it and is not inserted.
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_for(size);
        let mut bytes = std::mem::take(&mut self.spare);
        bytes.clear();
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        self.entries.push_front(Entry {
            bytes,
            split: name.len(),
        });
        self.size += size;
    }
}

/// The unread rest of a header block.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    /// §5.1: an integer in the low `bits` bits of `first`, then continuation octets. More than
    /// five of them cannot stay within u32.
    fn int(&mut self, first: u8, bits: u32) -> Result<u32, DecodeError> {
        let mask = (1u32 << bits) - 1;
        let prefix = u32::from(first) & mask;
        if prefix < mask {
            return Ok(prefix);
        }
        let mut value = u64::from(prefix);
        for shift in (0..5).map(|k| k * 7) {
            let b = self.byte()?;
            let add = u64::from(b & 0x7f)
                .checked_shl(shift)
                .ok_or(DecodeError::IntegerOverflow)?;
            value = value.checked_add(add).ok_or(DecodeError::IntegerOverflow)?;
            if value > u64::from(u32::MAX) {
                return Err(DecodeError::IntegerOverflow);
            }
            if b & 0x80 == 0 {
                return u32::try_from(value).map_err(|_| DecodeError::IntegerOverflow);
            }
        }
        Err(DecodeError::IntegerOverflow)
    }

    /// §5.2: a string literal, raw (borrowed from the block) or Huffman-decoded into `buf`.
    fn string<'s>(
        &mut self,
        buf: &'s mut Vec<u8>,
        cache: &mut huffman::Cache,
    ) -> Result<&'s [u8], DecodeError>
    where
        'a: 's,
    {
        let first = self.byte()?;
        let len = usize::try_from(self.int(first, 7)?).map_err(|_| DecodeError::StringPastEnd)?;
        let s = self.rest.get(..len).ok_or(DecodeError::StringPastEnd)?;
        self.rest = self.rest.get(len..).unwrap_or_default();
        if first & 0x80 == 0 {
            return Ok(s);
        }
        cache.decode(s, buf).map_err(|_| DecodeError::Huffman)?;
        Ok(buf)
    }
}

fn put_int(out: &mut Vec<u8>, flags: u8, bits: u32, value: usize) {
    let mask = (1usize << bits) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// A raw (not Huffman-coded) string literal.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// The decoder of the peer's header blocks.
pub struct Decoder {
    table: Table,
    /// Our SETTINGS_HEADER_TABLE_SIZE: the largest size update accepted.
    max_size: usize,
    max_list: usize,
    /// Huffman-decoded names and values, and copies of dynamic table names (the insertion
    /// that follows may evict the entry they come from).
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
    huff: huffman::Cache,
}

impl Decoder {
    /// `max_size`: our SETTINGS_HEADER_TABLE_SIZE (4096); `max_list`: the largest decoded header
    /// list accepted (sum of name+value+32 per RFC 9113 §6.5.2), beyond which decode fails.
    pub fn new(max_size: usize, max_list: usize) -> Decoder {
        Decoder {
            table: Table::new(max_size),
            max_size,
            max_list,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
            huff: huffman::Cache::new(),
        }
    }

    /// Decodes one complete header block (the caller concatenates HEADERS+CONTINUATION
    /// fragments), calling `f(name, value)` for each header in order. On error the connection is
    /// dead (the caller sends GOAWAY COMPRESSION_ERROR), so the table state after an error does
    /// not matter.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let (max_size, max_list) = (self.max_size, self.max_list);
        let Decoder {
            table,
            name_buf,
            value_buf,
            huff,
            ..
        } = self;
        let mut input = Input { rest: block };
        let mut list = 0usize;
        let mut account = |name: &[u8], value: &[u8]| {
            list = list.saturating_add(entry_size(name, value));
            if list > max_list {
                Err(DecodeError::ListTooLarge(max_list))
            } else {
                Ok(())
            }
        };
        // §4.2: size updates only at the start of a block; two when the size went down and up.
        let mut updates_allowed = 2u8;
        while let Some(&first) = input.rest.first() {
            input.rest = input.rest.get(1..).unwrap_or_default();
            if first & 0x80 != 0 {
                let (name, value) = lookup(table, input.int(first, 7)?)?;
                account(name, value)?;
                f(name, value);
            } else if first & 0xe0 == 0x20 {
                updates_allowed = updates_allowed
                    .checked_sub(1)
                    .ok_or(DecodeError::SizeUpdateMisplaced)?;
                let n = input.int(first, 5)?;
                let size = usize::try_from(n)
                    .ok()
                    .filter(|&s| s <= max_size)
                    .ok_or(DecodeError::SizeUpdateTooLarge(n))?;
                table.set_max(size);
                continue;
            } else {
                // 01: incremental indexing (6-bit index); 0000 / 0001: without / never indexed.
                let indexing = first & 0x40 != 0;
                let index = input.int(first, if indexing { 6 } else { 4 })?;
                let name: &[u8] = if index == 0 {
                    input.string(name_buf, huff)?
                } else if let Some((name, _)) = static_entry(index) {
                    name
                } else {
                    let (name, _) = lookup(table, index)?;
                    name_buf.clear();
                    name_buf.extend_from_slice(name);
                    name_buf
                };
                let value = input.string(value_buf, huff)?;
                account(name, value)?;
                f(name, value);
                if indexing {
                    table.insert(name, value);
                }
            }
            updates_allowed = 0;
        }
        Ok(())
    }
}

fn static_entry(index: u32) -> Option<(&'static [u8], &'static [u8])> {
    let i = usize::try_from(index).ok()?.checked_sub(1)?;
    STATIC.get(i).copied()
}

/// §2.3.3: index 1..=61 is the static table, then the dynamic one; 0 is no index.
fn lookup(table: &Table, index: u32) -> Result<(&[u8], &[u8]), DecodeError> {
    let dynamic = || {
        let i = usize::try_from(index).ok()?.checked_sub(FIRST_DYNAMIC)?;
        table.get(i)
    };
    static_entry(index)
        .or_else(dynamic)
        .ok_or(DecodeError::BadIndex(index))
}

/// Slots of the encoder's "seen once" memory.
const SEEN_SLOTS: usize = 64;

/// The encoder of our request header blocks.
pub struct Encoder {
    table: Table,
    /// The smallest table size since the last block, when the size changed: §4.2 wants it
    /// signalled before the final one.
    pending: Option<usize>,
    /// Hashes of (name, value) lines sent once, direct-mapped: a collision only makes a line
    /// inserted on its first repeat-looking occurrence, never a wrong encoding.
    seen: [u64; SEEN_SLOTS],
    /// Per position in the block: the last line found indexed there and its encoding.
    memo: Vec<Memo>,
    /// Position of the next line in the current block.
    pos: usize,
}

/// A line of an earlier block that was sent indexed: while the table has not changed since
/// (`version`), the same line at the same position encodes to the same bytes. Requests repeat
/// their lines in the same order, so most lines cost two comparisons instead of the table
/// scans (which were 2.5 % of the client's CPU against nginx).
#[derive(Default)]
struct Memo {
    version: u64,
    name: Vec<u8>,
    value: Vec<u8>,
    bytes: Vec<u8>,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// Dynamic table max size 4096 (the protocol default).
    pub fn new() -> Encoder {
        Encoder {
            table: Table::new(DEFAULT_TABLE_SIZE),
            pending: None,
            seen: [0; SEEN_SLOTS],
            memo: Vec::new(),
            pos: 0,
        }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE. We use min(4096, n). When that is below the size
    /// the encoder uses now, evict accordingly and emit a Dynamic Table Size Update (§6.3) at
    /// the start of the next block.
    pub fn set_max_size(&mut self, n: u32) {
        let size = usize::try_from(n).map_or(DEFAULT_TABLE_SIZE, |n| n.min(DEFAULT_TABLE_SIZE));
        // A size back up after a lower one is used too; the update then carries both (§4.2).
        if size == self.table.max {
            return;
        }
        self.pending = Some(self.pending.map_or(size, |p| p.min(size)));
        self.table.set_max(size);
    }

    /// Starts a header block: writes the pending size update, if any.
    pub fn begin(&mut self, out: &mut Vec<u8>) {
        self.pos = 0;
        if let Some(smallest) = self.pending.take() {
            if smallest < self.table.max {
                put_int(out, 0x20, 5, smallest);
            }
            put_int(out, 0x20, 5, self.table.max);
        }
    }

    /// Encodes one header line into `out`. `name` is already lower-case (pseudo-headers start
    /// with ':').
    pub fn header(&mut self, name: &[u8], value: &[u8], out: &mut Vec<u8>) {
        let pos = self.pos;
        self.pos += 1;
        if let Some(m) = self.memo.get(pos)
            && m.version == self.table.version
            && m.value == value
            && m.name == name
        {
            out.extend_from_slice(&m.bytes);
            return;
        }
        if name == b"traceparent" {
            // New on every request: never indexed (§6.2.3), by any intermediary either. Its
            // name is never in the dynamic table.
            out.push(0x10);
            put_string(out, name);
            put_string(out, value);
            return;
        }
        let static_name = STATIC.iter().position(|&(n, _)| n == name);
        if let Some(first) = static_name {
            let mut same_name = STATIC
                .iter()
                .enumerate()
                .skip(first)
                .take_while(|(_, e)| e.0 == name);
            if let Some((i, _)) = same_name.find(|(_, e)| e.1 == value) {
                self.indexed(pos, name, value, i + 1, out);
                return;
            }
        }
        let mut dynamic_name = None;
        let mut hit = None;
        for (i, entry) in self.table.entries.iter().enumerate() {
            let (n, v) = entry.parts();
            if n == name {
                if v == value {
                    hit = Some(FIRST_DYNAMIC + i);
                    break;
                }
                dynamic_name.get_or_insert(FIRST_DYNAMIC + i);
            }
        }
        if let Some(index) = hit {
            self.indexed(pos, name, value, index, out);
            return;
        }
        let name_index = static_name.map(|i| i + 1).or(dynamic_name);
        let hash = line_hash(name, value);
        let slot = &mut self.seen[(hash % SEEN_SLOTS as u64) as usize];
        let repeat = *slot == hash && entry_size(name, value) <= self.table.max / 2;
        if repeat {
            put_int(out, 0x40, 6, name_index.unwrap_or(0));
        } else {
            *slot = hash;
            put_int(out, 0x00, 4, name_index.unwrap_or(0));
        }
        if name_index.is_none() {
            put_string(out, name);
        }
        put_string(out, value);
        if repeat {
            self.table.insert(name, value);
        }
    }
}

impl Encoder {
    /// Writes the indexed representation of `index` and remembers it for position `pos`.
    fn indexed(&mut self, pos: usize, name: &[u8], value: &[u8], index: usize, out: &mut Vec<u8>) {
        let start = out.len();
        put_int(out, 0x80, 7, index);
        if self.memo.len() <= pos {
            self.memo.resize_with(pos + 1, Memo::default);
        }
        if let Some(m) = self.memo.get_mut(pos) {
            m.version = self.table.version;
            m.name.clear();
            m.name.extend_from_slice(name);
            m.value.clear();
            m.value.extend_from_slice(value);
            m.bytes.clear();
            m.bytes
                .extend_from_slice(out.get(start..).unwrap_or_default());
        }
    }
}

/// FNV-1a over the name's length, the name and the value.
fn line_hash(name: &[u8], value: &[u8]) -> u64 {
    let len = (name.len() as u64).to_le_bytes();
    len.iter()
        .chain(name)
        .chain(value)
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests;
