//! The Huffman code of HPACK (RFC 7541 §5.2, Appendix B): decoding of the strings a peer sends
//! Huffman-coded (our encoder never Huffman-codes, so the encoder here is for tests only).
//!
//! Decoding is a table-driven state machine that consumes a nibble per step: the states are the
//! 256 internal nodes of the code tree (the bits read since the last symbol), and each
//! (state, nibble) entry holds the next state and the symbol completed on the way, if any. At
//! most one symbol completes per nibble because the shortest code has 5 bits. The table is built
//! once, on first use, from the code lengths alone. `Cache` keeps the last strings decoded by
//! their coded form, for the servers that send the same coded values in every response.

use std::sync::OnceLock;

/// RFC 7541 Appendix B code lengths, index = symbol (256 = EOS). The code is canonical (codes
/// are assigned in order of (length, symbol)), so the codes follow from the lengths.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

const EOS: u16 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HuffmanError {
    #[error("the EOS symbol is in the string")]
    Eos,
    #[error("the padding is longer than 7 bits or not all ones")]
    Padding,
}

/// Appends the decoding of the Huffman-coded `src` to `out`.
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let table = table();
    // At most 8/5 symbols per byte; a failed reservation only means growing on the way.
    let _ = out.try_reserve(src.len().saturating_mul(8) / 5);
    let mut state = 0u8;
    let mut accept = true;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = table[usize::from(state)][usize::from(nibble)];
            if step.flags & FAIL != 0 {
                return Err(HuffmanError::Eos);
            }
            if step.flags & EMIT != 0 {
                out.push(step.sym);
            }
            state = step.next;
            accept = step.flags & ACCEPT != 0;
        }
    }
    if accept {
        Ok(())
    } else {
        Err(HuffmanError::Padding)
    }
}

/// Appends the Huffman coding of `src` to `out`, padded with ones.
#[cfg(test)]
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    let codes = codes();
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = codes[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
    }
}

/// The step completes a symbol: `sym`.
const EMIT: u8 = 1;
/// The step completes EOS: the string is invalid.
const FAIL: u8 = 2;
/// The bits read since the last symbol are a valid padding (at most 7 ones), so the string may
/// end after this step.
const ACCEPT: u8 = 4;

#[derive(Clone, Copy, Default)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

type Table = [[Step; 16]; 256];

fn table() -> &'static Table {
    static TABLE: OnceLock<Box<Table>> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// (code, length) per symbol, the code in the low bits.
fn codes() -> [(u32, u8); 257] {
    let mut order: [u16; 257] = std::array::from_fn(|s| s as u16);
    order.sort_by_key(|&s| (LENGTHS[usize::from(s)], s));
    let mut codes = [(0u32, 0u8); 257];
    let mut code = 0u32;
    let mut prev = 0u8;
    for (k, &s) in order.iter().enumerate() {
        let len = LENGTHS[usize::from(s)];
        if k > 0 {
            code = (code + 1) << (len - prev);
        }
        prev = len;
        codes[usize::from(s)] = (code, len);
    }
    codes
}

#[derive(Clone, Copy, PartialEq)]
enum Link {
    Empty,
    Node(u8),
    Leaf(u16),
}

/// The code tree: internal nodes with their two children, the root is node 0.
fn tree() -> Vec<[Link; 2]> {
    let mut nodes = vec![[Link::Empty; 2]];
    for (sym, &(code, len)) in codes().iter().enumerate() {
        let mut node = 0usize;
        for bit in (0..len).rev() {
            let side = usize::from((code >> bit) & 1 == 1);
            if bit == 0 {
                nodes[node][side] = Link::Leaf(sym as u16);
            } else if let Link::Node(n) = nodes[node][side] {
                node = usize::from(n);
            } else {
                // A canonical code over 257 symbols has exactly 256 internal nodes.
                let n = u8::try_from(nodes.len()).expect("more than 256 internal nodes");
                nodes.push([Link::Empty; 2]);
                nodes[node][side] = Link::Node(n);
                node = usize::from(n);
            }
        }
    }
    nodes
}

fn build() -> Box<Table> {
    let nodes = tree();
    // §5.2: padding is a strict prefix of EOS (all ones) of at most 7 bits.
    let mut accepting = [false; 256];
    let mut node = 0usize;
    accepting[0] = true;
    for _ in 0..7 {
        if let Link::Node(n) = nodes[node][1] {
            node = usize::from(n);
            accepting[node] = true;
        }
    }
    let mut table = Box::new([[Step::default(); 16]; 256]);
    for (state, row) in table.iter_mut().enumerate().take(nodes.len()) {
        for (nibble, step) in row.iter_mut().enumerate() {
            let mut node = state;
            for bit in (0..4).rev() {
                match nodes[node][(nibble >> bit) & 1] {
                    Link::Node(n) => node = usize::from(n),
                    Link::Leaf(EOS) => {
                        step.flags = FAIL;
                        break;
                    }
                    Link::Leaf(sym) => {
                        debug_assert!(step.flags & EMIT == 0, "two symbols in a nibble");
                        step.sym = sym as u8;
                        step.flags |= EMIT;
                        node = 0;
                    }
                    Link::Empty => unreachable!("the code tree is full"),
                }
            }
            if step.flags & FAIL == 0 {
                step.next = node as u8;
                if accepting[node] {
                    step.flags |= ACCEPT;
                }
            }
        }
    }
    table
}

/// Slots of the decoder's Huffman cache (16 sets of 2), and the longest coded string it keeps.
const HUFF_SLOTS: usize = 32;
const HUFF_KEEP: usize = 128;

/// Huffman-coded strings decoded lately, by their coded form. nginx codes `server`, `date`,
/// `content-type` and the like anew in every response and never indexes them, so the same
/// coded bytes come back on every response: a comparison instead of a decode (Huffman decoding
/// was 2 % of the client's CPU against nginx over TLS). Two-way: a miss only decodes;
/// bounded by `HUFF_SLOTS` × `HUFF_KEEP` whatever the peer sends.
pub struct Cache {
    slots: Vec<(Vec<u8>, Vec<u8>)>,
    #[cfg(test)]
    pub misses: usize,
}

impl Cache {
    pub fn new() -> Cache {
        Cache {
            slots: (0..HUFF_SLOTS).map(|_| (Vec::new(), Vec::new())).collect(),
            #[cfg(test)]
            misses: 0,
        }
    }

    /// Decodes the Huffman-coded `coded` into `buf` (replacing its contents).
    pub fn decode(&mut self, coded: &[u8], buf: &mut Vec<u8>) -> Result<(), HuffmanError> {
        buf.clear();
        let (Some(&first), Some(&last)) = (coded.first(), coded.last()) else {
            return decode(coded, buf);
        };
        if coded.len() > HUFF_KEEP {
            return decode(coded, buf);
        }
        // Two ways per set: the set from a multiplicative hash of the length and three octets
        // (nginx's `date` and `content-type` fell in one slot of a plain sum of them).
        let mid = coded.get(coded.len() / 2).copied().unwrap_or(0);
        let key = u32::from_le_bytes([coded.len() as u8, first, mid, last]);
        let set = (key.wrapping_mul(0x9e37_79b1) >> 28) as usize * 2;
        for way in set..set + 2 {
            if let Some((k, plain)) = self.slots.get(way)
                && k.as_slice() == coded
            {
                buf.extend_from_slice(plain);
                return Ok(());
            }
        }
        #[cfg(test)]
        {
            self.misses += 1;
        }
        decode(coded, buf)?;
        // The newer of the two in the first way; the older one leaves.
        self.slots.swap(set, set + 1);
        if let Some((k, plain)) = self.slots.get_mut(set) {
            k.clear();
            k.extend_from_slice(coded);
            plain.clear();
            plain.extend_from_slice(buf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        let nibble = |c: u8| (c as char).to_digit(16).unwrap() as u8;
        digits
            .chunks(2)
            .map(|p| (nibble(p[0]) << 4) | nibble(p[1]))
            .collect()
    }

    /// Every Huffman-coded string of RFC 7541 Appendix C.4 and C.6.
    const RFC: [(&str, &str); 11] = [
        ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
        ("a8eb 1064 9cbf", "no-cache"),
        ("25a8 49e9 5ba9 7d7f", "custom-key"),
        ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
        ("6402", "302"),
        ("aec3 771a 4b", "private"),
        (
            "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
            "Mon, 21 Oct 2013 20:13:21 GMT",
        ),
        (
            "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
            "https://www.example.com",
        ),
        ("640e ff", "307"),
        ("9bd9 ab", "gzip"),
        (
            "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 \
             3160 65c0 03ed 4ee5 b106 3d50 07",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
    ];

    #[test]
    fn rfc_examples_decode_and_encode() {
        for (coded, text) in RFC {
            let mut out = Vec::new();
            decode(&hex(coded), &mut out).unwrap();
            assert_eq!(out, text.as_bytes(), "{text}");
            let mut enc = Vec::new();
            encode(text.as_bytes(), &mut enc);
            assert_eq!(enc, hex(coded), "{text}");
        }
    }

    #[test]
    fn lengths_are_a_complete_prefix_code() {
        // Kraft: the sum of 2^-len over all symbols is exactly 1.
        let sum: u64 = LENGTHS.iter().map(|&l| 1u64 << (30 - l)).sum();
        assert_eq!(sum, 1 << 30);
        assert_eq!(
            LENGTHS.iter().min(),
            Some(&5),
            "one symbol per nibble at most"
        );
        assert_eq!(tree().len(), 256);
        assert_eq!(codes()[usize::from(EOS)], (0x3fff_ffff, 30));
        assert_eq!(codes()[usize::from(b'a')], (0b00011, 5));
    }

    #[test]
    fn errors() {
        let mut out = Vec::new();
        // EOS (30 ones) decoded.
        assert_eq!(decode(&[0xff; 4], &mut out), Err(HuffmanError::Eos));
        // 'a' (00011) then 11 ones of padding.
        assert_eq!(decode(&[0x1f, 0xff], &mut out), Err(HuffmanError::Padding));
        // A whole byte of padding.
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError::Padding));
        // 'a' then padding 000: not ones.
        assert_eq!(decode(&[0x18], &mut out), Err(HuffmanError::Padding));
        // 'a' then a partial code that is not a prefix of EOS.
        assert_eq!(decode(&[0x1f, 0x00], &mut out), Err(HuffmanError::Padding));
        out.clear();
        assert_eq!(decode(&[0x1f], &mut out), Ok(()));
        assert_eq!(out, b"a");
        assert_eq!(decode(&[], &mut out), Ok(()));
    }

    proptest! {
        #[test]
        fn round_trip(src in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut coded = Vec::new();
            encode(&src, &mut coded);
            let mut out = vec![7];
            decode(&coded, &mut out).unwrap();
            prop_assert_eq!(&out[1..], &src[..]);
        }
    }

    #[test]
    fn the_huffman_cache_tells_colliding_strings_apart() {
        // Ten strings whose codes have the same length, first and last octet (they differ in one
        // symbol of the ten with 5-bit codes): one cache slot.
        let coded: Vec<(Vec<u8>, Vec<u8>)> = b"012aceiost"
            .iter()
            .map(|&c| {
                let plain = [&b"ab"[..], &[c], b"cdef"].concat();
                let mut e = Vec::new();
                encode(&plain, &mut e);
                (plain, e)
            })
            .collect();
        let slot = |e: &[u8]| (e.len(), e[0], e[e.len() - 1]);
        assert!(coded.iter().all(|(_, e)| slot(e) == slot(&coded[0].1)));
        let mut cache = Cache::new();
        let mut buf = Vec::new();
        for _ in 0..3 {
            for (plain, e) in &coded {
                cache.decode(e, &mut buf).unwrap();
                assert_eq!(&buf, plain);
                // A hit gives the same.
                cache.decode(e, &mut buf).unwrap();
                assert_eq!(&buf, plain);
            }
        }
        // Longer than what is kept: decoded every time, still right.
        let long: Vec<u8> = (0..200).map(|i| b'a' + (i % 26) as u8).collect();
        let mut e = Vec::new();
        encode(&long, &mut e);
        cache.decode(&e, &mut buf).unwrap();
        assert_eq!(buf, long);
    }
}
