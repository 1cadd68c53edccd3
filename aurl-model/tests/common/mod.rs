//! Shared test helpers: the devices this build can run on, and small tensors.

#![allow(dead_code)]

use burn::prelude::*;

/// Every device the test build has: the default CPU backend, plus wgpu's with
/// `cargo test -p aurl-model --features wgpu`.
pub fn devices() -> Vec<Device> {
    #[allow(unused_mut)]
    let mut d = vec![Device::flex()];
    #[cfg(feature = "wgpu")]
    d.push(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
    d
}

/// Token ids `[rows.len(), rows[0].len()]` on `device`.
pub fn ids(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let t = rows[0].len();
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), t]), device)
}

/// Deterministic pseudo-random ids below `vocab`.
pub fn random_rows(batch: usize, t: usize, vocab: usize, seed: u64) -> Vec<Vec<i64>> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..batch)
        .map(|_| {
            (0..t)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % vocab as u64) as i64
                })
                .collect()
        })
        .collect()
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// Repetitive token "pieces" of 200 ids over 1..=7 (one bar each), which a model can learn.
pub fn sequences(n: usize) -> Vec<aurl_core::tokenize::TokenSequence> {
    (0..n)
        .map(|k| aurl_core::tokenize::TokenSequence {
            ids: (0..200).map(|i| 1 + ((i * 3 + k) % 7) as u16).collect(),
            bars: vec![aurl_core::tokenize::BarStart {
                token_index: 0,
                time_signature: None,
                tempo: None,
            }],
        })
        .collect()
}

/// The flex device's RNG is shared by the threads of this test binary: tests that seed it
/// and depend on its stream run one at a time.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn rng_guard() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
