//! `x·W + b` and its three gradients on Flex, one gemm call each on both cores.
//!
//! Replaces Burn's path for a training-sized `Linear`: the dispatch layer decomposes it
//! into a broadcast batched matmul plus a bias add (one core), and every Flex matmul output
//! is allocated zeroed as bytes and copied once more to align it. Here the output starts as
//! the bias rows and gemm accumulates into it; `dW = xᵀ·dy` reads both operands in place.

use std::mem::MaybeUninit;

use burn::backend::flex::FlexTensor;

use super::simd::vectorized;
use super::{contiguous, run, tensor};

mod few_rows;

#[allow(unused_imports)]
use few_rows::*;
pub(super) use few_rows::{FEW_ROWS, few_rows, few_rows_int8};

/// Products below this many multiply-adds run on one thread (gemm's own threshold for
/// splitting work is about the same).
const PARALLEL: usize = 1 << 21;

fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= PARALLEL {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// `x [rows, d_in] · w [d_in, d_out] + bias [d_out]`.
pub(super) fn forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> FlexTensor {
    let (rows, d_in) = dims2(x);
    let d_out = dims2(weight).1;
    let (x, w) = (contiguous(x), contiguous(weight));
    let bias = bias.map(contiguous);
    let mut y: Vec<f32> = Vec::with_capacity(rows * d_out);
    let uninit = &mut y.spare_capacity_mut()[..rows * d_out];
    if let Some(bias) = &bias {
        let chunks: Vec<_> = uninit.chunks_mut(ROWS * d_out).collect();
        run(
            chunks,
            rows * d_out,
            || (),
            |(), _, chunk| {
                for row in chunk.chunks_exact_mut(d_out) {
                    for (y, &b) in row.iter_mut().zip(bias.iter()) {
                        *y = MaybeUninit::new(b);
                    }
                }
            },
        );
    }
    // SAFETY: x is rows × d_in and w d_in × d_out, row-major; y has room for rows × d_out
    // and gemm writes every element (reading them only when accumulating onto the bias).
    unsafe {
        gemm::gemm(
            rows,
            d_out,
            d_in,
            uninit.as_mut_ptr().cast::<f32>(),
            1,
            d_out as isize,
            bias.is_some(),
            x.as_ptr(),
            1,
            d_in as isize,
            w.as_ptr(),
            1,
            d_out as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(rows, d_out, d_in),
        );
        y.set_len(rows * d_out);
    }
    tensor(y, [rows, d_out])
}

/// `dx = dy · wᵀ` `[rows, d_in]`.
pub(super) fn input_grad(weight: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (d_in, d_out) = dims2(weight);
    let rows = dims2(grad).0;
    let (w, g) = (contiguous(weight), contiguous(grad));
    let mut dx: Vec<f32> = Vec::with_capacity(rows * d_in);
    // SAFETY: g is rows × d_out, w d_in × d_out read transposed; dx has room for rows × d_in,
    // every element written by gemm (no accumulation).
    unsafe {
        gemm::gemm(
            rows,
            d_in,
            d_out,
            dx.as_mut_ptr(),
            1,
            d_in as isize,
            false,
            g.as_ptr(),
            1,
            d_out as isize,
            w.as_ptr(),
            d_out as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism(rows, d_in, d_out),
        );
        dx.set_len(rows * d_in);
    }
    tensor(dx, [rows, d_in])
}

/// `dw = xᵀ · dy` `[d_in, d_out]`.
pub(super) fn weight_grad(x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (rows, d_in) = dims2(x);
    let d_out = dims2(grad).1;
    let (x, g) = (contiguous(x), contiguous(grad));
    let mut dw: Vec<f32> = Vec::with_capacity(d_in * d_out);
    // SAFETY: x is rows × d_in read transposed, g rows × d_out; dw has room for d_in × d_out,
    // every element written by gemm.
    unsafe {
        gemm::gemm(
            d_in,
            d_out,
            rows,
            dw.as_mut_ptr(),
            1,
            d_out as isize,
            false,
            x.as_ptr(),
            d_in as isize,
            1,
            g.as_ptr(),
            1,
            d_out as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism(d_in, d_out, rows),
        );
        dw.set_len(d_in * d_out);
    }
    tensor(dw, [d_in, d_out])
}

/// `db = Σ_rows dy` `[d_out]`: partial sums per block of rows, added in block order.
pub(super) fn bias_grad(grad: &FlexTensor) -> FlexTensor {
    let d_out = dims2(grad).1;
    let g = contiguous(grad);
    let block = ROWS * 16 * d_out;
    let mut partial = vec![0f32; g.len().div_ceil(block.max(1)) * d_out];
    let blocks: Vec<_> = g
        .chunks(block.max(1))
        .zip(partial.chunks_mut(d_out))
        .collect();
    run(
        blocks,
        g.len(),
        || (),
        |(), _, (rows, sum)| column_sums(rows, sum),
    );
    let mut db = vec![0f32; d_out];
    for sum in partial.chunks_exact(d_out.max(1)) {
        for (s, v) in db.iter_mut().zip(sum) {
            *s += v;
        }
    }
    tensor(db, [d_out])
}

vectorized! {
    /// Adds the rows of `block` (width `sum.len()`) into `sum`.
    fn column_sums(block: &[f32], sum: &mut [f32]) {
        for row in block.chunks_exact(sum.len()) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v;
            }
        }
    }
}

fn dims2(t: &FlexTensor) -> (usize, usize) {
    let shape = t.layout().shape();
    (shape[0], shape[1])
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;
    use burn::tensor::f16;

    #[test]
    fn widening_converts_every_half_exactly() {
        let halves: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        let mut wide = vec![0f32; halves.len()];
        super::widen(&halves, &mut wide);
        for (h, w) in halves.iter().zip(&wide) {
            let expected = h.to_f32();
            assert!(expected.to_bits() == w.to_bits() || (expected.is_nan() && w.is_nan()));
        }
    }

    #[test]
    fn half_to_single_is_exact_for_every_half() {
        for bits in 0..=u16::MAX {
            let expected = f16::from_bits(bits).to_f32();
            let got = f16_to_f32(bits);
            if expected.is_nan() {
                assert!(got.is_nan(), "{bits:#x}");
            } else {
                assert_eq!(got.to_bits(), expected.to_bits(), "{bits:#x}");
            }
        }
    }
}
