//! A small JSON writer for the admin endpoint and the control socket.
//!
//! Everything we emit is flat objects of strings, integers and arrays of
//! strings; a few lines over the crate's one string escaper (`crate::json`)
//! are less to audit than a serialisation framework, and allocate into one
//! `String`.

use std::fmt::Write;

use crate::json::push_string as string;

/// An object being written: `Obj::new(out)`, fields, then [`Obj::end`].
pub(crate) struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub(crate) fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, k);
        self.out.push(':');
        self.out
    }

    pub(crate) fn str(&mut self, k: &str, v: &str) -> &mut Self {
        let out = self.key(k);
        string(out, v);
        self
    }

    pub(crate) fn num(&mut self, k: &str, v: u64) -> &mut Self {
        let out = self.key(k);
        let _ = write!(out, "{v}");
        self
    }

    /// A field whose value the caller has already encoded as JSON.
    pub(crate) fn raw(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k).push_str(v);
        self
    }

    pub(crate) fn strs<'s>(&mut self, k: &str, v: impl IntoIterator<Item = &'s str>) -> &mut Self {
        let out = self.key(k);
        out.push('[');
        for (i, s) in v.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            string(out, s);
        }
        out.push(']');
        self
    }

    pub(crate) fn end(&mut self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_objects() {
        let mut s = String::new();
        string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let mut s = String::new();
        Obj::new(&mut s)
            .str("id", "x.1")
            .num("n", 42)
            .strs("channels", ["a", "b\"c"])
            .strs("none", [])
            .raw("o", "{}")
            .end();
        assert_eq!(
            s,
            r#"{"id":"x.1","n":42,"channels":["a","b\"c"],"none":[],"o":{}}"#
        );
    }
}
