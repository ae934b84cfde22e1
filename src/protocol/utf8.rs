//! Incremental UTF-8 validation that fails fast (RFC 6455 §8.1).
//!
//! A text message may arrive in many frames and each frame in many reads.
//! The validator is fed every chunk as it arrives and reports an invalid
//! sequence as soon as its bytes are seen, even in the middle of a fragment
//! (Autobahn 6.4.x); [`Utf8Validator::finish`] rejects a message that ends
//! inside a code point. The bulk of each chunk is checked with
//! `std::str::from_utf8`; only an unfinished code point (at most 3 bytes) is
//! carried between chunks.

/// State carried between chunks of one text message.
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

/// The input is not valid UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Error;

/// The number of bytes of the sequence a leading byte starts (0 if invalid).
fn sequence_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 0,
    }
}

/// Checks `bytes`, which must be a prefix of one code point: `Ok(true)` when
/// complete and valid, `Ok(false)` when it can still become valid.
fn check_prefix(bytes: &[u8]) -> Result<bool, Utf8Error> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(true),
        Err(e) if e.error_len().is_none() => Ok(false),
        Err(_) => Err(Utf8Error),
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next chunk of the message.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len > 0 {
            let have = self.partial_len as usize;
            let need = sequence_len(self.partial[0]);
            let take = (need - have).min(chunk.len());
            self.partial[have..have + take].copy_from_slice(&chunk[..take]);
            self.partial_len += take as u8;
            chunk = &chunk[take..];
            if !check_prefix(&self.partial[..self.partial_len as usize])? {
                return Ok(()); // still incomplete, and chunk is used up
            }
            self.partial_len = 0;
        }
        match std::str::from_utf8(chunk) {
            Ok(_) => Ok(()),
            Err(e) => {
                if e.error_len().is_some() {
                    return Err(Utf8Error);
                }
                // A valid prefix of a code point ends the chunk: keep it.
                let tail = &chunk[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the message: an unfinished code point is an error.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let complete = self.partial_len == 0;
        self.partial_len = 0;
        if complete { Ok(()) } else { Err(Utf8Error) }
    }

    /// Forgets any state (a new message starts).
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate_split(bytes: &[u8], split: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &s in split {
            v.feed(&bytes[start..s])?;
            start = s;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    /// RFC 6455 §8.1: valid text in any split validates.
    #[test]
    fn valid_text_any_split() {
        let text = "κόσμε 𝄞 a€b\u{10ffff}".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(validate_split(text, &[i, j]), Ok(()), "split {i},{j}");
            }
        }
    }

    /// Fails fast: the error shows up at the chunk that makes the sequence
    /// impossible, not at the end of the message.
    #[test]
    fn rfc6455_8_1_invalid_sequence_fails_at_first_bad_chunk() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("κόσμε".as_bytes()), Ok(()));
        assert_eq!(v.feed(&[0xce]), Ok(())); // valid prefix so far
        assert_eq!(v.feed(&[0xff]), Err(Utf8Error));

        // F4 90 can never start a valid code point (> U+10FFFF).
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xf4]), Ok(()));
        assert_eq!(v.feed(&[0x90]), Err(Utf8Error));

        // ED A0 is a surrogate: rejected before the third byte.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[b'a', 0xed, 0xa0]), Err(Utf8Error));
    }

    #[test]
    fn message_ending_mid_code_point_fails() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[b'a', 0xe2, 0x82]), Ok(()));
        assert_eq!(v.finish(), Err(Utf8Error));
    }

    #[test]
    fn agrees_with_std_on_every_split_of_mixed_inputs() {
        let inputs: [&[u8]; 6] = [
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf0\x90\x80\x80",
            b"\xf8\x88\x80\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"hello\xf4\x8f\xbf\xbf",
        ];
        for input in inputs {
            let expected = std::str::from_utf8(input).is_ok();
            for i in 0..=input.len() {
                assert_eq!(
                    validate_split(input, &[i]).is_ok(),
                    expected,
                    "{input:?} at {i}"
                );
            }
        }
    }
}
