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
    // The key repeated over 16 bytes (the pattern is periodic, so this is
    // the same on either byte order): one vector register on targets with
    // 128-bit SIMD, two general registers elsewhere.
    let word = u32::from_ne_bytes(rotated);
    let w = u128::from(word);
    let wide = w | (w << 32) | (w << 64) | (w << 96);
    let mut blocks = buf.chunks_exact_mut(64);
    for block in &mut blocks {
        // Four independent 16-byte XORs per iteration: the loop stays
        // unrolled even where the function is inlined into a larger one.
        for lane in block.chunks_exact_mut(16) {
            xor16(lane, wide);
        }
    }
    // Every block is a multiple of 4 bytes, so the key phase is unchanged.
    let rest = blocks.into_remainder();
    let mut lanes = rest.chunks_exact_mut(16);
    for lane in &mut lanes {
        xor16(lane, wide);
    }
    for (b, k) in lanes
        .into_remainder()
        .iter_mut()
        .zip(wide.to_ne_bytes().iter())
    {
        *b ^= *k;
    }
}

/// XORs 16 bytes with `wide` (`lane` is exactly 16 bytes long).
#[inline(always)]
fn xor16(lane: &mut [u8], wide: u128) {
    let mut v = [0u8; 16];
    v.copy_from_slice(lane);
    let x = u128::from_ne_bytes(v) ^ wide;
    lane.copy_from_slice(&x.to_ne_bytes());
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
