//! Whatever frames a server sends, in whatever order, handling them never panics: a property
//! test over random sequences of frames (random types, flags, streams and payloads, mixed
//! with well-formed heads, window updates and settings) on a connection with open streams.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::*;

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..80),
        // `:status 200`; with `content-length: 5`; a 103; a literal with incremental indexing.
        Just(vec![0x88]),
        Just(vec![0x88, 0x0f, 0x0d, 0x01, b'5']),
        Just(vec![0x08, 0x03, b'1', b'0', b'3']),
        Just(vec![0x48, 0x03, b'2', b'0', b'4']),
        // The lengths of WINDOW_UPDATE, RST_STREAM, SETTINGS, PING and GOAWAY.
        vec(any::<u8>(), 4..=4),
        vec(any::<u8>(), 6..=6),
        vec(any::<u8>(), 8..=8),
    ]
}

fn frame() -> impl Strategy<Value = (u8, u8, u32, Vec<u8>)> {
    (
        0u8..12,
        prop_oneof![
            Just(0u8),
            Just(f::END_STREAM),
            Just(f::END_HEADERS),
            Just(5),
            any::<u8>()
        ],
        prop_oneof![Just(0u32), Just(1), Just(3), Just(5), 0u32..12],
        payload(),
    )
}

proptest! {
    // Failure seeds beside the integration tests' (`tests/proptest-regressions/`), not in a
    // top-level folder of their own.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/proptest-regressions/h2_frames.txt",
        ))),
        ..ProptestConfig::default()
    })]
    #[test]
    fn no_sequence_of_frames_panics(frames in vec(frame(), 1..60)) {
        let mut st = State::new();
        let a = st.open(0, false).unwrap();
        let b = st.open(16, true).unwrap();
        st.slots[b].pending.extend_from_slice(&[b'x'; 100_000]);
        st.push_body(b);
        let mut dec = Decoder::new(4096, MAX_HEAD);
        let (mut cont, mut block, mut now) = (None, Vec::new(), None);
        for (kind, flags, stream, p) in frames {
            let h = Header { len: p.len(), kind, flags, stream };
            let mut fr = Frames {
                st: &mut st,
                dec: &mut dec,
                cont: &mut cont,
                block: &mut block,
                now: &mut now,
            };
            if fr.frame(&h, &p).is_err() {
                // A connection error: the driver sends GOAWAY and stops reading.
                connection_error(&mut st, f::PROTOCOL_ERROR);
                break;
            }
        }
        // The requests release their slots whatever happened.
        st.release(a);
        st.release(b);
        prop_assert_eq!(st.active, 0);
        prop_assert!(st.send_window <= f::MAX_WINDOW);
    }
}
