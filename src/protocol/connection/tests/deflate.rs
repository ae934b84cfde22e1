//! RFC 7692: permessage-deflate on the connection.

use super::helpers::*;
use crate::protocol::connection::{Connection, Event, MessageKind, Role};
use crate::protocol::limits::Limits;

use crate::protocol::deflate::DeflateParams;

fn params(takeover: bool) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    }
}

fn pair(takeover: bool, limits: Limits) -> (Connection, Connection) {
    let mut client = Connection::new(Role::Client, limits);
    let mut server = Connection::new(Role::Server, limits);
    client.set_deflate(params(takeover));
    server.set_deflate(params(takeover));
    (client, server)
}

/// RFC 7692 §6, §7.2: messages compressed by one end inflate at the
/// other, with and without context takeover, at every split.
#[test]
fn rfc7692_7_2_round_trip_both_ways() {
    for takeover in [false, true] {
        let (mut client, mut server) = pair(takeover, Limits::default());
        let texts = ["Hello", "Hello", "", "κόσμε κόσμε κόσμε κόσμε"];
        for t in texts {
            client
                .send_message(MessageKind::Text, t.as_bytes())
                .unwrap();
        }
        let wire = client.take_transmit();
        assert_eq!(wire[0] & 0x40, 0x40, "RSV1 marks the compressed message");
        for split in 0..wire.len() {
            let (_, mut s) = pair(takeover, Limits::default());
            let mut ev = Vec::new();
            s.receive(&wire[..split], &mut ev);
            s.receive(&wire[split..], &mut ev);
            let got: Vec<Event> = texts.iter().map(|t| text(t)).collect();
            assert_eq!(ev, got, "takeover {takeover} split {split}");
        }
        let mut ev = Vec::new();
        server.receive(&wire, &mut ev);
        server
            .send_message(MessageKind::Binary, &[7u8; 5000])
            .unwrap();
        let back = server.take_transmit();
        assert!(
            back.len() < 100,
            "5000 equal bytes compress: {}",
            back.len()
        );
        client.receive(&back, &mut ev);
        assert_eq!(
            ev.last(),
            Some(&Event::Message {
                kind: MessageKind::Binary,
                data: vec![7u8; 5000]
            })
        );
    }
}

/// The limit applies to the inflated size: a bomb fails with 1009 and
/// the memory is released.
#[test]
fn rfc7692_inflated_size_is_limited() {
    let limits = Limits {
        max_message: 64 * 1024,
        ..Limits::default()
    };
    let (mut client, mut server) = pair(false, Limits::default());
    client
        .send_message(MessageKind::Binary, &vec![0u8; 8 << 20])
        .unwrap();
    let wire = client.take_transmit();
    assert!(wire.len() < 20_000);
    let (_, mut s) = pair(false, limits);
    let mut ev = Vec::new();
    s.receive(&wire, &mut ev);
    assert!(failed_with(&ev, 1009), "{ev:?}");
    assert_eq!(s.buffered_bytes(), 0);
    drop(server.take_transmit());
}

/// RFC 7692 §6.1: RSV1 only on the first frame of a data message.
#[test]
fn rfc7692_6_1_rsv1_on_continuation_or_control_fails() {
    let (_, mut s) = pair(false, Limits::default());
    let mut input = cf(false, 1, b"a");
    input.extend(raw(true, 0b100, 0, b"b", Some([1, 2, 3, 4])));
    let mut ev = Vec::new();
    s.receive(&input, &mut ev);
    assert!(failed_with(&ev, 1002));
    let (_, mut s) = pair(false, Limits::default());
    let mut ev = Vec::new();
    s.receive(&raw(true, 0b100, 9, b"", Some([1, 2, 3, 4])), &mut ev);
    assert!(failed_with(&ev, 1002));
    // RSV2/RSV3 stay reserved.
    let (_, mut s) = pair(false, Limits::default());
    let mut ev = Vec::new();
    s.receive(&raw(true, 0b010, 1, b"x", Some([1, 2, 3, 4])), &mut ev);
    assert!(failed_with(&ev, 1002));
}

/// RFC 7692 §8: data that does not inflate fails the connection (1007).
#[test]
fn rfc7692_8_corrupt_data_fails_1007() {
    let (_, mut s) = pair(false, Limits::default());
    let mut ev = Vec::new();
    s.receive(
        &raw(
            true,
            0b100,
            2,
            &[0xff, 0xff, 0xff, 0xff],
            Some([1, 2, 3, 4]),
        ),
        &mut ev,
    );
    assert!(failed_with(&ev, 1007), "{ev:?}");
}

/// Invalid UTF-8 inside a compressed text message fails (1007).
#[test]
fn compressed_text_is_utf8_checked() {
    let (mut client, _) = pair(false, Limits::default());
    // Compress invalid UTF-8 as if it were binary, then relabel it text.
    client
        .send_message(MessageKind::Binary, b"ok \xff\xfe bad")
        .unwrap();
    let mut wire = client.take_transmit();
    wire[0] = (wire[0] & 0xf0) | 0x1;
    let (_, mut s) = pair(false, Limits::default());
    let mut ev = Vec::new();
    s.receive(&wire, &mut ev);
    assert!(failed_with(&ev, 1007), "{ev:?}");
}

/// Found by the connection_deflate fuzz target: a compressed message
/// that passes the limit (or holds bad UTF-8) and then turns corrupt must
/// fail the same way whatever the read split: stream order decides.
#[test]
fn inflate_failures_do_not_depend_on_the_split() {
    let limits = Limits {
        max_message: 8192,
        ..Limits::default()
    };
    let compress = |data: &[u8]| {
        let mut d = crate::protocol::deflate::Deflater::new(15).unwrap();
        let mut c = Vec::new();
        d.compress(data, &mut c);
        c
    };
    let cases: [(u8, Vec<u8>); 2] = [
        // Too big (10 KiB of zeros, limit 8 KiB), then garbage.
        (2, [compress(&[0u8; 10_240]), vec![0xff; 16]].concat()),
        // Invalid UTF-8 in a text message, then garbage.
        (
            1,
            [compress(b"valid so far \xff\xfe then not"), vec![0xff; 16]].concat(),
        ),
    ];
    for (opcode, payload) in cases {
        let frame = raw(true, 0b100, opcode, &payload, Some([1, 2, 3, 4]));
        let (_, mut whole) = pair(false, limits);
        let mut expected = Vec::new();
        whole.receive(&frame, &mut expected);
        for chunk in [1, 2, 7, 64] {
            let (_, mut s) = pair(false, limits);
            let ev = feed_chunked(&mut s, &frame, chunk);
            assert_eq!(ev, expected, "opcode {opcode} chunk {chunk}");
            assert_eq!(s.take_transmit(), whole.take_transmit());
            whole = pair(false, limits).1;
            whole.receive(&frame, &mut Vec::new());
        }
        assert!(
            matches!(expected.last(), Some(Event::Failed(_))),
            "{expected:?}"
        );
    }
}

/// Without negotiation RSV1 stays a protocol error.
#[test]
fn rsv1_without_negotiation_fails() {
    let (ev, _, _) = run(&raw(true, 0b100, 1, b"x", Some([1, 2, 3, 4])));
    assert!(failed_with(&ev, 1002));
}
