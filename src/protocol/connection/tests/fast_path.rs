//! The whole-frame fast path gives exactly what the general path gives.

use super::helpers::*;
use crate::protocol::connection::{Connection, Role};
use crate::protocol::limits::Limits;

/// The mask on the frames a connection of `role` accepts: a server receives
/// masked frames, a client unmasked ones (RFC 6455 §5.1).
fn role_mask(role: Role, key: [u8; 4]) -> Option<[u8; 4]> {
    match role {
        Role::Server => Some(key),
        Role::Client => None,
    }
}

/// The whole-frame fast path gives exactly what the general path gives:
/// for both roles (masked and unmasked frames, each also in the wrong
/// form), every length class (7-bit, 16-bit, 64-bit, and 16-bit/64-bit
/// forms of small lengths), limits exactly at and one below the length,
/// no fragments allowed, valid and invalid text, a reserved bit, no FIN, a
/// frame one byte short, one followed by a ping, and with a recycled buffer
/// or none. Fed whole, a frame takes the fast path; in two reads split
/// after its first byte, the general one.
#[test]
fn whole_frame_fast_path_matches_general_path() {
    let key = [0xa1, 0xb2, 0xc3, 0xd4];
    let mut frames: Vec<(Role, Vec<u8>, usize)> = Vec::new();
    for role in [Role::Server, Role::Client] {
        let own = role_mask(role, key);
        let wrong = match role {
            Role::Server => None,
            Role::Client => Some(key),
        };
        for len in [0, 1, 16, 125, 126, 1000, 0xffff, 0x10000] {
            let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            for mask in [own, wrong] {
                for (fin, rsv, op) in [(true, 0, 0x1), (true, 0, 0x2), (false, 0, 0x2)] {
                    frames.push((role, raw(fin, rsv, op, &data, mask), len));
                }
                frames.push((role, raw(true, 0b100, 0x2, &data, mask), len));
            }
        }
        // Invalid UTF-8 at the start, middle and end; a truncated code point.
        for bad in [
            &b"\xffabc"[..],
            b"ab\xc3\x28cd",
            b"abc\xed\xa0\x80",
            b"abc\xe2\x82",
        ] {
            frames.push((role, raw(true, 0, 0x1, bad, own), bad.len()));
        }
        // Small lengths in the 16-bit and 64-bit forms (not minimal, legal).
        let mut h16 = vec![0x82, 126 | own.map_or(0, |_| 0x80), 0, 3];
        let mut h64 = vec![0x81, 127 | own.map_or(0, |_| 0x80), 0, 0, 0, 0, 0, 0, 0, 3];
        for h in [&mut h16, &mut h64] {
            let start = h.len();
            if let Some(k) = own {
                h.extend_from_slice(&k);
            }
            h.extend_from_slice(b"xyz");
            if let Some(k) = own {
                crate::protocol::mask::apply_mask_bytewise(&mut h[start + 4..], k, 0);
            }
        }
        frames.push((role, h16, 3));
        frames.push((role, h64, 3));
        // 64-bit length with the top bit set (the largest: no overflow).
        let mut top = vec![0x82, 127 | own.map_or(0, |_| 0x80)];
        top.extend_from_slice(&[0xff; 8]);
        if let Some(k) = own {
            top.extend_from_slice(&k);
        }
        frames.push((role, top, 1));
    }
    for (role, frame, len) in frames {
        let len = len as u64;
        let mut limit_cases = vec![Limits::default()];
        for l in [len, len.saturating_sub(1)] {
            limit_cases.push(Limits {
                max_frame: l,
                ..Limits::default()
            });
            limit_cases.push(Limits {
                max_message: l as usize,
                ..Limits::default()
            });
        }
        limit_cases.push(Limits {
            max_fragments: 0,
            ..Limits::default()
        });
        limit_cases.push(Limits {
            max_frame: u64::MAX,
            max_message: usize::MAX,
            ..Limits::default()
        });
        for limits in limit_cases {
            for recycle in [false, true] {
                // The frame whole, one byte short, and followed by a ping.
                let mut followed = frame.clone();
                followed.extend(raw(true, 0, 0x9, b"p", role_mask(role, key)));
                for input in [&frame[..], &frame[..frame.len() - 1], &followed[..]] {
                    let feed = |pieces: &[&[u8]]| {
                        let mut c = Connection::new(role, limits);
                        if recycle {
                            c.recycle(Vec::with_capacity(64));
                        }
                        let mut ev = Vec::new();
                        for p in pieces {
                            c.receive(p, &mut ev);
                        }
                        (ev, c.take_transmit(), c.close_state(), c.buffered_bytes())
                    };
                    let whole = feed(&[input]);
                    let split = feed(&[&input[..1], &input[1..]]);
                    let ctx = format!(
                        "{role:?} {limits:?} recycle {recycle} {:02x?}",
                        &input[..input.len().min(12)]
                    );
                    assert_eq!(whole.0, split.0, "events: {ctx}");
                    assert_eq!(whole.2, split.2, "state: {ctx}");
                    if role == Role::Server {
                        // A client masks its replies with fresh keys.
                        assert_eq!(whole.1, split.1, "transmit: {ctx}");
                    }
                    assert_eq!(whole.3, split.3, "buffered: {ctx}");
                }
            }
        }
    }
}
