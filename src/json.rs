//! JSON string escaping (RFC 8259 §7), the one copy every JSON writer in the
//! crate uses: the recovery envelopes (a hot path: one call per delivered
//! message to opted-in clients), the admin endpoint and control socket, the
//! socket.io emitter bridge and the `bench` tool's JSON line.

use std::fmt::Write as _;

/// Appends `s` as a JSON string: quotes, backslashes and control characters
/// escaped as `JSON.stringify` escapes them (`\n`, `\r`, `\t`, `\b`, `\f` by
/// name, the rest as `\u00XX`); everything else is copied as UTF-8, in runs
/// between escapes rather than char by char.
pub(crate) fn push_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        push_string(&mut out, s);
        out
    }

    #[test]
    fn quotes_backslashes_and_controls_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd\u{1}é\t"), r#""a\"b\\c\nd\u0001é\t""#);
        assert_eq!(esc("\r\u{8}\u{c}\u{1f}"), r#""\r\b\f\u001f""#);
        assert_eq!(esc(""), r#""""#);
        assert_eq!(esc("plain ✓ 🦀"), "\"plain ✓ 🦀\"");
    }

    #[test]
    fn appends_to_what_is_there() {
        let mut out = String::from("{\"k\":");
        push_string(&mut out, "v");
        assert_eq!(out, "{\"k\":\"v\"");
    }
}
