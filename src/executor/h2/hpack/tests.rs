//! Tests of the HPACK encoder and decoder: the RFC 7541 Appendix C examples, the encoder's
//! indexing policy and size updates, the decoder's errors, and encoder-to-decoder round trips.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

type Lines = Vec<(Vec<u8>, Vec<u8>)>;
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn hex(s: &str) -> Vec<u8> {
    let digit = |c: u8| (c as char).to_digit(16).unwrap() as u8;
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).map(digit).collect();
    digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
}

fn lines(pairs: Pairs) -> Lines {
    let line = |&(n, v): &(&str, &str)| (n.as_bytes().to_vec(), v.as_bytes().to_vec());
    pairs.iter().map(line).collect()
}

fn decode(d: &mut Decoder, block: &[u8]) -> Result<Lines, DecodeError> {
    let mut out = Vec::new();
    d.decode(block, |n, v| out.push((n.to_vec(), v.to_vec())))?;
    Ok(out)
}

fn contents(t: &Table) -> Lines {
    let parts = |e: &Entry| (e.parts().0.to_vec(), e.parts().1.to_vec());
    t.entries.iter().map(parts).collect()
}

/// Decodes (block, its headers, the dynamic table after it newest first, its size) in order.
fn sequence(max: usize, steps: &[(&str, Pairs, Pairs, usize)]) {
    let mut d = Decoder::new(max, usize::MAX);
    for &(block, headers, table, size) in steps {
        assert_eq!(decode(&mut d, &hex(block)), Ok(lines(headers)), "{block}");
        assert_eq!(
            (contents(&d.table), d.table.size),
            (lines(table), size),
            "{block}"
        );
    }
}

#[test]
fn rfc_c2_representations() {
    let custom = [("custom-key", "custom-header")];
    sequence(
        4096,
        &[(
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            &custom,
            &custom,
            55,
        )],
    );
    sequence(
        4096,
        &[(
            "040c 2f73 616d 706c 652f 7061 7468",
            &[(":path", "/sample/path")],
            &[],
            0,
        )],
    );
    sequence(
        4096,
        &[(
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            &[("password", "secret")],
            &[],
            0,
        )],
    );
    sequence(4096, &[("82", &[(":method", "GET")], &[], 0)]);
}

/// C.3 and C.4: the same requests, without and with Huffman coding.
fn requests(blocks: [&str; 3]) {
    let (get, http, root) = ((":method", "GET"), (":scheme", "http"), (":path", "/"));
    let auth = (":authority", "www.example.com");
    let (no_cache, custom) = (
        ("cache-control", "no-cache"),
        ("custom-key", "custom-value"),
    );
    sequence(
        4096,
        &[
            (blocks[0], &[get, http, root, auth], &[auth], 57),
            (
                blocks[1],
                &[get, http, root, auth, no_cache],
                &[no_cache, auth],
                110,
            ),
            (
                blocks[2],
                &[
                    get,
                    (":scheme", "https"),
                    (":path", "/index.html"),
                    auth,
                    custom,
                ],
                &[custom, no_cache, auth],
                164,
            ),
        ],
    );
}

#[test]
fn rfc_c3_c4_requests() {
    requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
    requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

/// C.5 and C.6: the same responses, without and with Huffman coding, in a 256-octet table.
fn responses(blocks: [&str; 3]) {
    let (s302, s307) = ((":status", "302"), (":status", "307"));
    let (private, location) = (
        ("cache-control", "private"),
        ("location", "https://www.example.com"),
    );
    let date1 = ("date", "Mon, 21 Oct 2013 20:13:21 GMT");
    let date2 = ("date", "Mon, 21 Oct 2013 20:13:22 GMT");
    let gzip = ("content-encoding", "gzip");
    let cookie = (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    );
    sequence(
        256,
        &[
            (
                blocks[0],
                &[s302, private, date1, location],
                &[location, date1, private, s302],
                222,
            ),
            (
                blocks[1],
                &[s307, private, date1, location],
                &[s307, location, date1, private],
                222,
            ),
            (
                blocks[2],
                &[(":status", "200"), private, date2, location, gzip, cookie],
                &[cookie, gzip, date2],
                215,
            ),
        ],
    );
}

#[test]
fn rfc_c5_c6_responses() {
    responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31",
    ]);
    responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

#[test]
fn eviction() {
    let mut t = Table::new(64);
    t.insert(b"a", b"b");
    t.insert(b"c", b"d");
    assert_eq!(
        (contents(&t), t.size),
        (lines(&[("c", "d")]), 34),
        "oldest evicted"
    );
    t.insert(b"k", &[b'x'; 40]);
    assert_eq!(
        (t.entries.len(), t.size),
        (0, 0),
        "larger than the table: emptied"
    );
}

fn block(enc: &mut Encoder, pairs: Pairs) -> Vec<u8> {
    let mut out = Vec::new();
    enc.begin(&mut out);
    for (n, v) in pairs {
        enc.header(n.as_bytes(), v.as_bytes(), &mut out);
    }
    out
}

#[test]
fn index_on_repeat() {
    let mut enc = Encoder::new();
    let statics = [(":method", "GET"), (":scheme", "https"), (":path", "/")];
    assert_eq!(block(&mut enc, &statics), [0x82, 0x87, 0x84]);
    // First seen: without indexing, name 58 by index; second: inserted; then indexed.
    let ua: Pairs = &[("user-agent", "tg")];
    assert_eq!(block(&mut enc, ua), [0x0f, 58 - 15, 2, b't', b'g']);
    assert!(enc.table.entries.is_empty());
    assert_eq!(block(&mut enc, ua), [0x40 | 58, 2, b't', b'g']);
    assert_eq!(contents(&enc.table), lines(ua));
    assert_eq!(block(&mut enc, ua), [0xbe]);
    // A literal name; once inserted, the name by its dynamic index.
    let x_a = [0, 3, b'x', b'-', b'a', 1, b'1'];
    assert_eq!(block(&mut enc, &[("x-a", "1")]), x_a);
    assert_eq!(block(&mut enc, &[("x-a", "1")])[0], 0x40);
    assert_eq!(block(&mut enc, &[("x-a", "2")]), [0x0f, 62 - 15, 1, b'2']);
    let traceparent = [&[0x10, 11][..], b"traceparent", &[2], b"00"].concat();
    for _ in 0..3 {
        assert_eq!(block(&mut enc, &[("traceparent", "00")]), traceparent);
    }
    // Nor inserted when larger than half the table.
    let big = "v".repeat(2100);
    block(&mut enc, &[("x-big", &big)]);
    block(&mut enc, &[("x-big", &big)]);
    assert_eq!(
        contents(&enc.table),
        lines(&[("x-a", "1"), ("user-agent", "tg")])
    );
}

#[test]
fn size_updates() {
    let mut enc = Encoder::new();
    block(&mut enc, &[("x-a", "1")]);
    block(&mut enc, &[("x-a", "1")]);
    enc.set_max_size(1 << 20);
    assert_eq!(block(&mut enc, &[]), b"", "still 4096");
    enc.set_max_size(100);
    assert_eq!(block(&mut enc, &[]), [0x3f, 100 - 31]);
    assert_eq!(enc.table.size, 36, "the entry still fits");
    enc.set_max_size(0);
    enc.set_max_size(4096);
    let out = block(&mut enc, &[(":method", "GET")]);
    assert_eq!(
        out,
        [0x20, 0x3f, 0xe1, 0x1f, 0x82],
        "the smallest, then the final size"
    );
    assert!(enc.table.entries.is_empty());
    assert_eq!(block(&mut enc, &[]), b"");
    let mut dec = Decoder::new(4096, usize::MAX);
    assert_eq!(decode(&mut dec, &out), Ok(lines(&[(":method", "GET")])));
}

#[test]
fn decode_errors() {
    use DecodeError::*;
    let cases: &[(&[u8], DecodeError)] = &[
        (&[0x80], BadIndex(0)),
        (&[0xbe], BadIndex(62)),
        (&[0x0f, 70 - 15, 0], BadIndex(70)),
        (&[0xff], Truncated),
        (&[0xff, 0x80], Truncated),
        (&[0x40], Truncated),
        // Six continuation octets; 127 + 16 << 28 > u32::MAX.
        (&[0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0], IntegerOverflow),
        (&[0xff, 0x80, 0x80, 0x80, 0x80, 0x10], IntegerOverflow),
        (&[0x40, 5, b'a'], StringPastEnd),
        (&[0x04, 0x7f, 0x80, 0x01], StringPastEnd),
        (&[0x3f, 0xe2, 0x1f], SizeUpdateTooLarge(4097)),
        (&[0x82, 0x20], SizeUpdateMisplaced),
        (&[0x20, 0x20, 0x20], SizeUpdateMisplaced),
        // A Huffman name of one octet: '0' (00000), then the padding 000.
        (&[0, 0x81, 0, 0], Huffman),
    ];
    for &(block, err) in cases {
        let mut dec = Decoder::new(4096, 1 << 16);
        assert_eq!(decode(&mut dec, block), Err(err), "{block:02x?}");
    }
    // ":method: GET" counts 7 + 3 + 32 = 42 octets.
    assert_eq!(
        decode(&mut Decoder::new(4096, 83), &[0x82, 0x82]),
        Err(ListTooLarge(83))
    );
    assert!(decode(&mut Decoder::new(4096, 84), &[0x82, 0x82]).is_ok());
}

fn line() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let known = [&b":path"[..], b"user-agent", b"traceparent", b"x-a"].map(<[u8]>::to_vec);
    let name = prop_oneof![
        proptest::sample::select(known.to_vec()),
        vec(b'a'..=b'z', 1..10)
    ];
    let value = prop_oneof![
        Just(b"v".to_vec()),
        vec(any::<u8>(), 0..40),
        vec(any::<u8>(), 0..1500)
    ];
    (name, value)
}

proptest! {
    /// Blocks of a common list plus extra lines, with table size changes between them:
    /// each decodes to what was encoded, and the tables of both ends stay the same.
    #[test]
    fn encoded_blocks_decode_back(
        common in vec(line(), 0..10),
        blocks in vec((proptest::option::of(0u32..5000), vec(line(), 0..4)), 1..8),
    ) {
        let (mut enc, mut dec) = (Encoder::new(), Decoder::new(4096, usize::MAX));
        for (size, extra) in blocks {
            if let Some(n) = size {
                enc.set_max_size(n);
            }
            let list: Lines = common.iter().chain(&extra).cloned().collect();
            let mut out = Vec::new();
            enc.begin(&mut out);
            for (n, v) in &list {
                enc.header(n, v, &mut out);
            }
            prop_assert_eq!(decode(&mut dec, &out), Ok(list));
            prop_assert_eq!(contents(&dec.table), contents(&enc.table));
            prop_assert_eq!((dec.table.size, dec.table.max), (enc.table.size, enc.table.max));
        }
    }

    /// Huffman-coded literal names and values of any octets decode to those octets.
    #[test]
    fn huffman_literals_decode(name in vec(any::<u8>(), 0..50), value in vec(any::<u8>(), 0..300)) {
        let mut block = vec![0x40];
        for s in [&name, &value] {
            let mut coded = Vec::new();
            huffman::encode(s, &mut coded);
            put_int(&mut block, 0x80, 7, coded.len());
            block.extend_from_slice(&coded);
        }
        let mut dec = Decoder::new(4096, usize::MAX);
        prop_assert_eq!(decode(&mut dec, &block), Ok(vec![(name.clone(), value.clone())]));
        prop_assert_eq!(contents(&dec.table), vec![(name, value)]);
    }

    /// Whatever the peer sends, decoding ends (with headers or an error) without panicking.
    #[test]
    fn arbitrary_blocks_do_not_panic(blocks in vec(vec(any::<u8>(), 0..200), 1..4)) {
        let mut dec = Decoder::new(256, 4096);
        for block in blocks {
            let _ = dec.decode(&block, |_, _| {});
        }
    }
}

#[test]
fn nginx_responses_cost_one_huffman_decode_per_string_not_per_response() {
    // nginx 1.22's head for `return 200 'ok'` over HTTP/2: `server`, `date` and
    // `content-type` Huffman-coded and "inserted" anew in every response.
    let b = hex(
        "887689aa6355e580ae212e1f6196df697e940054be52282009c502e5c6deb82794c5a37f5f87497ca58ae819aa5c0132",
    );
    let mut d = Decoder::new(4096, 1 << 20);
    for _ in 0..100 {
        let l = decode(&mut d, &b).unwrap();
        assert_eq!(l[1], (b"server".to_vec(), b"nginx/1.22.1".to_vec()));
        assert_eq!(l[3], (b"content-type".to_vec(), b"text/plain".to_vec()));
    }
    assert_eq!(d.huff.misses, 3);
}
