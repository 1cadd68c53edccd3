//! Counter-based dropout masks: whether element `index` of stream `stream` is kept is a pure
//! function of the seed, so the backward pass recomputes the forward's mask instead of storing
//! it, every thread draws its own elements without sharing a generator, and the generic
//! bodies build exactly the mask the fused kernels use.

use aurl_core::rng::mix64;

/// The two 32-bit keys of stream `stream` (a head, or a 2³²-element block) under `seed`.
#[inline]
pub(crate) fn stream_keys(seed: u64, stream: u64) -> (u32, u32) {
    let k = mix64(seed ^ mix64(stream));
    (k as u32, (k >> 32) as u32)
}

/// Chris Wellons' `lowbias32` integer hash (bias ≈ 0.17 of the ideal): cheap enough to run
/// per element in SIMD lanes.
#[inline(always)]
fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// Uniform 32 bits for element `index` of the stream with `keys`.
#[inline(always)]
pub(crate) fn bits(keys: (u32, u32), index: u32) -> u32 {
    mix32(mix32(index ^ keys.0) ^ keys.1)
}

/// The threshold below which [`bits`] drops an element with probability `p`.
#[inline]
pub(crate) fn threshold(p: f32) -> u32 {
    // p < 1: at most 2³² · (1 − 2⁻²⁴), which fits.
    (f64::from(p) * 4_294_967_296.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_requested_fraction_independently_of_the_stream() {
        for (p, stream) in [(0.1f32, 0u64), (0.5, 7), (0.9, 123_456)] {
            let keys = stream_keys(42, stream);
            let t = threshold(p);
            let n = 200_000u32;
            let dropped = (0..n).filter(|&i| bits(keys, i) < t).count();
            let rate = dropped as f64 / f64::from(n);
            assert!((rate - f64::from(p)).abs() < 0.005, "p {p}: {rate}");
        }
    }

    #[test]
    fn streams_and_seeds_give_different_masks() {
        let mask = |seed, stream| -> Vec<bool> {
            let keys = stream_keys(seed, stream);
            (0..256).map(|i| bits(keys, i) < threshold(0.5)).collect()
        };
        assert_eq!(mask(1, 0), mask(1, 0));
        assert_ne!(mask(1, 0), mask(1, 1));
        assert_ne!(mask(1, 0), mask(2, 0));
    }
}
