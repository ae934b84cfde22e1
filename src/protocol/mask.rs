//! Payload masking (RFC 6455 §5.3).
//!
//! Masking XORs every payload byte with `key[i % 4]`. Done a byte at a time
//! it dominates the receive path, so [`apply_mask`] works on 16-byte blocks
//! with the key repeated (and rotated for the stream position): the compiler
//! turns the fixed-size inner loop into one vector XOR per block, in safe
//! code and on every architecture.
//!
//! [`extend_masked`] is the receive path's form: it appends the unmasked
//! copy of the input to the message buffer in one pass (read, XOR, write),
//! instead of copying and then unmasking the copy in place (two passes over
//! the payload). Its whole 64-byte blocks go through `xor_blocks`, compiled
//! out of line (so its vector loop does not depend on the caller) and, on
//! x86-64 CPUs with AVX2, for 32-byte vectors.
//!
//! The protocol core's only `unsafe` code is here, two audited lines: the
//! `set_len` in `extend_masked_with` and the call of the AVX2 build of the
//! block loop after run-time detection in `xor_blocks`.

use std::mem::MaybeUninit;

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

/// Appends `src` XORed with the mask `key` to `dst`, where `src[0]` is byte
/// number `offset` of the frame's payload: the same bytes as
/// `dst.extend_from_slice(src)` followed by [`apply_mask`] on the new part,
/// in one pass (read, XOR, write): whole 64-byte blocks in `xor_blocks`,
/// then 16-byte lanes, then bytes.
///
/// It needs `unsafe` for `set_len` after writing the spare capacity. The
/// safe formulations tried: `Vec::extend` from a `chunks_exact` flat-map
/// compiled, in this crate, to a loop LLVM did not unroll, and a 64 KiB
/// frame took about twice as long to decode; `extend_from_slice` of each
/// masked 64- or 256-byte block keeps a capacity check and length store per
/// block and was 8–20 % slower in a stand-alone test (docs/benchmarks.md).
#[inline(always)]
pub fn extend_masked(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    extend_masked_with(dst, src, key, offset, xor_blocks);
}

/// [`extend_masked`] with the block loop given: [`xor_blocks`], or in tests
/// [`xor_blocks_portable`] too (the dispatch picks only one per CPU).
/// `blocks` must initialise exactly the first bytes of its output that its
/// result says, a multiple of 64, as both do.
#[inline(always)]
fn extend_masked_with(
    dst: &mut Vec<u8>,
    src: &[u8],
    key: [u8; 4],
    offset: usize,
    blocks: fn(&mut [MaybeUninit<u8>], &[u8], u32) -> usize,
) {
    let start = dst.len();
    dst.reserve(src.len());
    let word = rotated_key(key, offset);
    let out = &mut dst.spare_capacity_mut()[..src.len()];
    let done = if src.len() >= 64 {
        blocks(out, src, word)
    } else {
        0
    };
    // Every block and lane is a multiple of 4 bytes: the phase is unchanged.
    // At most three lanes, inlined: this form compiles to one `pxor` per
    // lane in the receive path (checked in its disassembly); the block
    // loop's element-wise form compiled to byte stores here, lacking the
    // aliasing facts the out-of-line function has.
    let mut out_lanes = out[done..].chunks_exact_mut(16);
    let mut lanes = src[done..].chunks_exact(16);
    for (o, i) in (&mut out_lanes).zip(&mut lanes) {
        o.copy_from_slice(&xor16_copy(i, word).map(MaybeUninit::new));
    }
    let pattern = xor16_copy(&[0; 16], word);
    let rest = lanes.remainder().iter().zip(pattern.iter());
    for (o, (b, k)) in out_lanes.into_remainder().iter_mut().zip(rest) {
        o.write(b ^ k);
    }
    // SAFETY: `out` is the first `src.len()` elements of the spare capacity
    // (`reserve` made room) and every one of them is initialised: the first
    // `done` by `blocks` (`xor_blocks` or `xor_blocks_portable`, which write
    // exactly that many, a multiple of 64), the rest by the 16-byte lanes
    // and then the last bytes, zipped with the same split of `src`, which
    // has `out`'s length. `rfc6455_5_3_extend_masked_matches_reference`
    // checks every length 0..=257 (every path through the loops, up to four
    // blocks), alignment and phase against the bytewise reference, with and
    // without spare capacity, through both block loops.
    #[allow(unsafe_code)]
    unsafe {
        dst.set_len(start + src.len());
    }
}

/// Writes the whole 64-byte blocks of `src`, XORed with `word` repeated, to
/// the start of `out` (at least as long as `src`); returns how many bytes
/// that was (`src.len()` rounded down to a multiple of 64).
///
/// Not inlined, so that its code does not depend on the caller: the same
/// loop, inlined into the receive path, compiled to one vector XOR per 16
/// bytes by default but, with `-C target-cpu=native`, to byte stores and a
/// round trip through the stack (8x slower at 64 KiB); other formulations
/// did the same in other callers (docs/benchmarks.md, "Unmasking"). One
/// call per frame of 64 bytes or more costs a few instructions.
///
/// On x86-64 CPUs with AVX2 (checked once, then a cached flag) the same
/// loop runs compiled for 32-byte vectors: half the loads and stores of the
/// 16-byte SSE2 baseline every x86-64 build targets, which matters most
/// when the payload does not start on a 16-byte boundary, as in a frame
/// read after its header (docs/benchmarks.md).
#[inline(never)]
fn xor_blocks(out: &mut [MaybeUninit<u8>], src: &[u8], word: u32) -> usize {
    #[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `xor_blocks_avx2` has no requirement besides its target
        // feature, and the CPU running this has AVX2 (checked just above).
        // `rfc6455_5_3_extend_masked_matches_reference` runs this path on
        // CPUs with AVX2, and the portable one everywhere.
        #[allow(unsafe_code)]
        return unsafe { xor_blocks_avx2(out, src, word) };
    }
    xor_blocks_portable(out, src, word)
}

/// [`xor_blocks_portable`] compiled for AVX2.
#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
#[target_feature(enable = "avx2")]
fn xor_blocks_avx2(out: &mut [MaybeUninit<u8>], src: &[u8], word: u32) -> usize {
    xor_blocks_portable(out, src, word)
}

/// The loop of [`xor_blocks`], for the target the crate is compiled for.
#[inline(always)]
fn xor_blocks_portable(out: &mut [MaybeUninit<u8>], src: &[u8], word: u32) -> usize {
    // Same length as `src`: one loop bound for both.
    let out = &mut out[..src.len()];
    let mut pattern = [0u8; 64];
    for chunk in pattern.chunks_exact_mut(4) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let mut out_blocks = out.chunks_exact_mut(64);
    let mut blocks = src.chunks_exact(64);
    for (o, i) in (&mut out_blocks).zip(&mut blocks) {
        // One element-wise expression over fixed-size arrays, written
        // straight to the output: full-width vector loads, XORs and stores
        // on every target (16 bytes by default, 32 or 64 with wider SIMD).
        let o: &mut [MaybeUninit<u8>; 64] = o.try_into().expect("a 64-byte block");
        let i: &[u8; 64] = i.try_into().expect("a 64-byte block");
        for k in 0..64 {
            o[k].write(i[k] ^ pattern[k]);
        }
    }
    src.len() - blocks.remainder().len()
}

/// The key as a native-endian word whose bytes, in memory order, are the
/// key starting at payload position `offset`.
#[inline(always)]
fn rotated_key(key: [u8; 4], offset: usize) -> u32 {
    // Rotating the little-endian value right by 8 bits moves key byte 1 to
    // memory position 0, on either byte order (the bytes are read and
    // written back little-endian).
    let r = u32::from_le_bytes(key).rotate_right(8 * (offset % 4) as u32);
    u32::from_ne_bytes(r.to_le_bytes())
}

/// `lane` (exactly 16 bytes) XORed with `word` repeated four times.
#[inline(always)]
fn xor16_copy(lane: &[u8], word: u32) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, i) in out.chunks_exact_mut(4).zip(lane.chunks_exact(4)) {
        let mut v = [0u8; 4];
        v.copy_from_slice(i);
        o.copy_from_slice(&(u32::from_ne_bytes(v) ^ word).to_ne_bytes());
    }
    out
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

    /// `extend_masked` appends exactly what copying and then masking with
    /// the bytewise reference gives: every length 0..=257, every source
    /// alignment and key phase, appended to an empty buffer, to one with
    /// bytes in it and spare capacity, and to one with no spare capacity;
    /// with the block loop the CPU gets (AVX2 where it has it) and with the
    /// portable one.
    #[test]
    fn rfc6455_5_3_extend_masked_matches_reference() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let storage: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..=257 {
            for align in 0..16 {
                for offset in 0..4 {
                    let src = &storage[align..align + len];
                    let mut want_tail = src.to_vec();
                    apply_mask_bytewise(&mut want_tail, key, offset);
                    let prefixes: [Vec<u8>; 3] = [
                        Vec::new(),
                        {
                            let mut v = Vec::with_capacity(len + 64);
                            v.extend_from_slice(&[0xee; 5]);
                            v
                        },
                        {
                            let mut v = vec![0xdd; 3];
                            v.shrink_to_fit();
                            v
                        },
                    ];
                    for prefix in prefixes {
                        let mut want = prefix.clone();
                        want.extend_from_slice(&want_tail);
                        let mut dst = prefix.clone();
                        extend_masked(&mut dst, src, key, offset);
                        assert_eq!(dst, want, "len {len} align {align} offset {offset}");
                        let mut dst = prefix.clone();
                        extend_masked_with(&mut dst, src, key, offset, xor_blocks_portable);
                        assert_eq!(
                            dst, want,
                            "portable: len {len} align {align} offset {offset}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn extend_masked_in_pieces_equals_whole() {
        let key = [9, 8, 7, 6];
        let data: Vec<u8> = (0..200).collect();
        let mut whole = Vec::new();
        extend_masked(&mut whole, &data, key, 0);
        for cut in [0, 1, 3, 17, 64, 199, 200] {
            let mut pieces = Vec::new();
            extend_masked(&mut pieces, &data[..cut], key, 0);
            extend_masked(&mut pieces, &data[cut..], key, cut);
            assert_eq!(whole, pieces, "cut {cut}");
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
