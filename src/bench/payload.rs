//! The bench's messages: `B<run> <seq> <sent-ns> ` in ASCII, padded with
//! `x` to the requested size. Text (valid UTF-8, no newline), so every
//! ingress carries it unchanged; the run id lets subscribers ignore any
//! other traffic on a real deployment.

/// The smallest `--size` accepted: room for the header with any sequence
/// number and timestamp (`B` + 8 hex digits + two 20-digit numbers + 3 spaces).
pub(crate) const MIN_SIZE: usize = 52;

/// Writes message `seq`, sent at `sent_ns` (nanoseconds since the bench
/// started), padded to `size` bytes, into `out` (cleared first).
pub(crate) fn encode(out: &mut Vec<u8>, run: u32, seq: u64, sent_ns: u64, size: usize) {
    use std::io::Write;
    out.clear();
    let _ = write!(out, "B{run:08x} {seq} {sent_ns} ");
    if out.len() < size {
        out.resize(size, b'x');
    }
}

/// Reads `(seq, sent_ns)` from a message of run `run`; `None` for anything
/// else (another run's or someone else's message).
pub(crate) fn decode(data: &[u8], run: u32) -> Option<(u64, u64)> {
    let rest = data.strip_prefix(b"B")?;
    let (id, rest) = (rest.get(..8)?, rest.get(8..)?);
    if parse_hex(id)? != run {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let (seq, rest) = parse_dec(rest)?;
    let rest = rest.strip_prefix(b" ")?;
    let (sent, rest) = parse_dec(rest)?;
    rest.first().filter(|&&b| b == b' ')?;
    Some((seq, sent))
}

/// The payload of a recovery envelope (`--url 'ws://…/?recover=1'`,
/// docs/recovery.md): `{"ch":…,"data":"B…"}` gives the `B…` part (bench
/// payloads need no JSON escaping); anything else is returned as is.
pub(crate) fn unwrap_envelope(data: &[u8]) -> &[u8] {
    const KEY: &[u8] = b"\"data\":\"";
    if !data.starts_with(b"{\"ch\":") {
        return data;
    }
    match data.windows(KEY.len()).position(|w| w == KEY) {
        Some(i) => {
            let rest = &data[i + KEY.len()..];
            rest.strip_suffix(b"\"}").unwrap_or(rest)
        }
        None => data,
    }
}

fn parse_hex(s: &[u8]) -> Option<u32> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
}

/// A run of decimal digits (at least one) and what follows it.
fn parse_dec(s: &[u8]) -> Option<(u64, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in &s[..digits] {
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((v, &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_unwrapped() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, 3, 9, MIN_SIZE);
        let mut env = br#"{"ch":"*","ep":"0123456789ab","off":3,"data":""#.to_vec();
        env.extend_from_slice(&buf);
        env.extend_from_slice(b"\"}");
        assert_eq!(decode(unwrap_envelope(&env), 7), Some((3, 9)));
        assert_eq!(unwrap_envelope(&buf), &buf[..]);
        let pos = br#"{"ch":"*","ep":"0123456789ab","off":3}"#;
        assert_eq!(decode(unwrap_envelope(pos), 7), None);
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode(&mut buf, 0xdead_beef, 42, 1_234_567_890, 128);
        assert_eq!(buf.len(), 128);
        assert!(buf.starts_with(b"Bdeadbeef 42 1234567890 xxx"));
        assert_eq!(decode(&buf, 0xdead_beef), Some((42, 1_234_567_890)));
        assert_eq!(decode(&buf, 1), None, "another run's message");
        encode(&mut buf, 7, u64::MAX, u64::MAX, MIN_SIZE);
        assert_eq!(buf.len(), MIN_SIZE);
        assert_eq!(decode(&buf, 7), Some((u64::MAX, u64::MAX)));
        for other in [
            &b""[..],
            b"hello",
            b"B0000000",
            b"B00000007 1",
            b"B00000007 1 2",
        ] {
            assert_eq!(decode(other, 7), None, "{other:?}");
        }
    }
}
