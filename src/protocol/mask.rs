//! Payload masking (RFC 6455 §5.3).
//!
//! Masking XORs every payload byte with `key[i % 4]`. Done a byte at a time
//! it dominates the receive path, so [`apply_mask`] works on 16-byte blocks
//! with the key repeated (and rotated for the stream position): the compiler
//! turns the fixed-size inner loop into one vector XOR per block, in safe
//! code and on every architecture.

/// XORs `buf` with the mask `key`, where `buf[0]` is byte number `offset` of
/// the frame's payload (so a payload can be unmasked in pieces as it arrives).
/// Applying the same mask twice restores the input.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut rotated = [0u8; 4];
    for (i, r) in rotated.iter_mut().enumerate() {
        *r = key[(offset + i) % 4];
    }
    let mut wide = [0u8; 16];
    for (i, w) in wide.iter_mut().enumerate() {
        *w = rotated[i % 4];
    }
    let mut blocks = buf.chunks_exact_mut(16);
    for block in &mut blocks {
        for (b, k) in block.iter_mut().zip(wide.iter()) {
            *b ^= *k;
        }
    }
    // The remainder starts at a multiple of 16, i.e. at key phase 0 again.
    for (b, k) in blocks.into_remainder().iter_mut().zip(wide.iter()) {
        *b ^= *k;
    }
}

/// The byte-at-a-time reference, kept for tests and benchmarks.
pub fn apply_mask_bytewise(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length 0..=257 at every start alignment and key phase matches the
    /// byte-by-byte reference.
    #[test]
    fn rfc6455_5_3_fast_mask_matches_reference() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let storage: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..=257 {
            for align in 0..16 {
                for offset in 0..4 {
                    // Mask in place inside a larger buffer so the slice really
                    // starts at a different address alignment.
                    let mut fast = storage.clone();
                    let mut slow = storage.clone();
                    apply_mask(&mut fast[align..align + len], key, offset);
                    apply_mask_bytewise(&mut slow[align..align + len], key, offset);
                    assert_eq!(fast, slow, "len {len} align {align} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn mask_in_pieces_equals_mask_whole() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..100).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data.clone();
        let (a, b) = pieces.split_at_mut(37);
        apply_mask(a, key, 0);
        apply_mask(b, key, 37);
        assert_eq!(whole, pieces);
    }
}
