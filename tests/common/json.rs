//! Reading fields out of the flat JSON objects the server writes (recovery
//! envelopes, `--json` lines, control-socket and admin answers): no spaces,
//! no nesting, no escaped quotes in the values the tests read.

/// The value of `"key":` in `json`: a string's contents without its
/// quotes, or a number, `true`, `false` or `null` as written; `None` when
/// the key is missing.
pub fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let i = json.find(&pat)? + pat.len();
    let rest = &json[i..];
    match rest.strip_prefix('"') {
        Some(s) => Some(&s[..s.find('"')?]),
        None => Some(&rest[..rest.find([',', '}'])?]),
    }
}

/// The unsigned integer at `"key":` in `json`; panics when the key is
/// missing or its value does not start with a digit.
pub fn json_u64(json: &str, key: &str) -> u64 {
    let needle = format!("\"{key}\":");
    let at = json
        .find(&needle)
        .unwrap_or_else(|| panic!("no {needle} in the JSON line: {json}"))
        + needle.len();
    let digits: String = json[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not an integer in: {json}"))
}
