//! Property tests: encode → decode round trip, masking twice, any split of
//! a valid stream, arbitrary bytes never panic or overbuffer.

use super::helpers::*;
use crate::protocol::connection::{Connection, Event, Role};
use crate::protocol::frame::{FrameHeader, OpCode, encode_frame};
use crate::protocol::limits::Limits;

use proptest::prelude::*;

fn opcode_strategy() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=125, 126usize..=0xffff, 0x10000usize..0x12000]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// encode → decode round trip over every opcode, length class and mask.
    #[test]
    fn frame_round_trip(op in opcode_strategy(), fin in any::<bool>(), len in len_strategy(),
                        mask in proptest::option::of(any::<[u8; 4]>()), seed in any::<u8>()) {
        // Control frames are valid only unfragmented and up to 125 bytes (§5.5).
        let (fin, len) = if op.is_control() { (true, len % 126) } else { (fin, len) };
        let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let mut out = Vec::new();
        encode_frame(&mut out, fin, op, &payload, mask);
        let (h, n) = FrameHeader::decode(&out).unwrap().unwrap();
        prop_assert_eq!((h.fin, h.opcode, h.mask, h.len), (fin, op, mask, len as u64));
        let mut body = out[n..].to_vec();
        if let Some(k) = h.mask { crate::protocol::mask::apply_mask(&mut body, k, 0); }
        prop_assert_eq!(body, payload);
    }

    /// Masking twice is the identity, at any phase.
    #[test]
    fn mask_twice_is_identity(data in proptest::collection::vec(any::<u8>(), 0..300),
                              key in any::<[u8; 4]>(), offset in 0usize..4) {
        let mut m = data.clone();
        crate::protocol::mask::apply_mask(&mut m, key, offset);
        crate::protocol::mask::apply_mask(&mut m, key, offset);
        prop_assert_eq!(m, data);
    }

    /// Any split of a valid stream gives the same events as feeding it whole.
    #[test]
    fn any_split_gives_same_events(msgs in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300), 1usize..4), 1..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let mut stream = Vec::new();
        for (is_text, data, frags) in &msgs {
            let data: Vec<u8> = if *is_text { String::from_utf8_lossy(data).into_owned().into_bytes() } else { data.clone() };
            let step = data.len().div_ceil(*frags).max(1);
            let pieces: Vec<&[u8]> = if data.is_empty() { vec![&data[..]] } else { data.chunks(step).collect() };
            for (i, p) in pieces.iter().enumerate() {
                let op = if i > 0 { 0 } else if *is_text { 1 } else { 2 };
                stream.extend(cf(i + 1 == pieces.len(), op, p));
                if i == 0 { stream.extend(cf(true, 9, b"ping")); }
            }
        }
        let mut whole = server();
        let expected = feed_chunked(&mut whole, &stream, stream.len());
        prop_assert_eq!(expected.iter().filter(|e| matches!(e, Event::Message { .. })).count(), msgs.len());
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.sort_unstable();
        let mut c = server();
        let mut events = Vec::new();
        let mut start = 0;
        for p in points { c.receive(&stream[start..p], &mut events); start = p; }
        c.receive(&stream[start..], &mut events);
        prop_assert_eq!(events, expected);
        prop_assert_eq!(c.take_transmit(), whole.take_transmit());
    }

    /// Arbitrary bytes never panic and never make the connection hold more
    /// than the limits allow.
    #[test]
    fn arbitrary_bytes_never_panic_or_overbuffer(data in proptest::collection::vec(any::<u8>(), 0..2000),
                                                 chunk in 1usize..64) {
        let limits = Limits { max_frame: 256, max_message: 512, max_fragments: 8 };
        let mut c = Connection::new(Role::Server, limits);
        let mut events = Vec::new();
        for piece in data.chunks(chunk) {
            c.receive(piece, &mut events);
            // The message limit plus one control frame's payload (125 bytes,
            // held in a Vec whose capacity may round up to 128).
            prop_assert!(c.buffered_bytes() <= 512 + 128, "{}", c.buffered_bytes());
        }
        for e in &events {
            if let Event::Message { data, .. } = e { prop_assert!(data.len() <= 512); }
        }
    }
}
