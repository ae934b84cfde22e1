//! Comma-separated token lists (RFC 7230 §7), as used by `Connection`,
//! `Upgrade`, `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions`.

/// Splits a comma-separated list, trimming optional white space and skipping
/// empty elements.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| !t.is_empty())
}

/// Whether a header value (a token list) contains `token`, compared ASCII
/// case-insensitively: `Connection: keep-alive, Upgrade` contains `upgrade`.
pub fn has_token(value: &[u8], token: &str) -> bool {
    std::str::from_utf8(value)
        .map(|v| split_list(v).any(|t| t.eq_ignore_ascii_case(token)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lists_are_case_insensitive_and_trimmed() {
        assert!(has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(has_token(b"UPGRADE", "upgrade"));
        assert!(has_token(b"a,\tupgrade ,b", "upgrade"));
        assert!(!has_token(b"upgrades", "upgrade"));
        assert!(!has_token(b"", "upgrade"));
        assert_eq!(split_list(" a, ,b ,").collect::<Vec<_>>(), ["a", "b"]);
    }
}
