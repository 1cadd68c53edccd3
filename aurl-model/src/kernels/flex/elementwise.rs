//! Element-wise kernels on Flex: GELU and its derivative with a vectorised erf, and dropout
//! with a counter-based mask; parallel over fixed chunks.

use std::mem::MaybeUninit;

use burn::backend::flex::FlexTensor;

use super::math::{erf, exp};
use super::simd::vectorized;
use super::{contiguous, filled, run, tensor};
use crate::kernels::Dropout;
use crate::kernels::random::{bits, stream_keys, threshold};

/// Elements per parallel task: big enough to amortise scheduling, small enough to split a
/// `[8, 512, 1024]` activation over both cores.
const CHUNK: usize = 1 << 15;

/// Runs `f(offset, input chunk, output chunk)` over `input` in parallel.
fn map_chunks(
    input: &[f32],
    f: impl Fn(usize, &[f32], &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    filled(input.len(), |out| {
        let chunks: Vec<_> = out.chunks_mut(CHUNK).zip(input.chunks(CHUNK)).collect();
        run(
            chunks,
            input.len(),
            || (),
            |(), i, (out, input)| f(i * CHUNK, input, out),
        );
    })
}

vectorized! {
    fn gelu_chunk(x: &[f32], y: &mut [MaybeUninit<f32>]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = MaybeUninit::new(0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2)));
        }
    }
}

vectorized! {
    fn gelu_backward_chunk(x: &[f32], g: &[f32], y: &mut [MaybeUninit<f32>]) {
        let inv_sqrt_2pi = 1.0 / (2.0 * std::f32::consts::PI).sqrt();
        for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
            let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
            let pdf = inv_sqrt_2pi * exp(-0.5 * x * x);
            *y = MaybeUninit::new(g * (cdf + x * pdf));
        }
    }
}

vectorized! {
    fn dropout_chunk(x: &[f32], y: &mut [MaybeUninit<f32>], keys: (u32, u32), first: u32, t: u32, scale: f32) {
        for (j, (y, &x)) in y.iter_mut().zip(x).enumerate() {
            let kept = bits(keys, first.wrapping_add(j as u32)) >= t;
            *y = MaybeUninit::new(x * if kept { scale } else { 0.0 });
        }
    }
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// `x·Φ(x)`.
pub(super) fn gelu(x: &FlexTensor) -> FlexTensor {
    let data = contiguous(x);
    let out = map_chunks(&data, |_, x, y| gelu_chunk(x, y));
    tensor(out, x.layout().shape().clone())
}

/// `grad · (Φ(x) + x·φ(x))`.
pub(super) fn gelu_backward(x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (data, grad_data) = (contiguous(x), contiguous(grad));
    let out = map_chunks(&data, |offset, x, y| {
        gelu_backward_chunk(x, &grad_data[offset..offset + x.len()], y);
    });
    tensor(out, x.layout().shape().clone())
}

vectorized! {
    fn residual_chunk(x: &[f32], a: &[f32], y: &mut [MaybeUninit<f32>]) {
        for ((y, &x), &a) in y.iter_mut().zip(x).zip(a) {
            *y = MaybeUninit::new(x + a);
        }
    }
}

vectorized! {
    fn residual_dropout_chunk(
        x: &[f32],
        a: &[f32],
        y: &mut [MaybeUninit<f32>],
        mask: ((u32, u32), u32, u32, f32),
    ) {
        let (keys, first, t, scale) = mask;
        for (j, ((y, &x), &a)) in y.iter_mut().zip(x).zip(a).enumerate() {
            let kept = bits(keys, first.wrapping_add(j as u32)) >= t;
            *y = MaybeUninit::new(x + a * if kept { scale } else { 0.0 });
        }
    }
}

/// `x + dropout(a)` in one pass (`x + a` without dropout): the mask is the one
/// [`dropout`] draws for `a`.
pub(super) fn residual(x: &FlexTensor, a: &FlexTensor, dropout: Option<Dropout>) -> FlexTensor {
    let (data, added) = (contiguous(x), contiguous(a));
    let out = map_chunks(&data, |offset, x, y| {
        let a = &added[offset..offset + x.len()];
        match dropout {
            Some(d) => {
                let keys = stream_keys(d.seed, (offset as u64) >> 32);
                let mask = (keys, offset as u32, threshold(d.prob), 1.0 / (1.0 - d.prob));
                residual_dropout_chunk(x, a, y, mask);
            }
            None => residual_chunk(x, a, y),
        }
    });
    tensor(out, x.layout().shape().clone())
}

/// `x` with the elements the mask drops set to 0, the others scaled by `1 / (1 − p)`.
pub(super) fn dropout(x: &FlexTensor, dropout: Dropout) -> FlexTensor {
    let data = contiguous(x);
    let t = threshold(dropout.prob);
    let scale = 1.0 / (1.0 - dropout.prob);
    let out = map_chunks(&data, |offset, x, y| {
        // A chunk never straddles a 2³² boundary (CHUNK divides 2³²).
        let keys = stream_keys(dropout.seed, (offset as u64) >> 32);
        dropout_chunk(x, y, keys, offset as u32, t, scale);
    });
    tensor(out, x.layout().shape().clone())
}
