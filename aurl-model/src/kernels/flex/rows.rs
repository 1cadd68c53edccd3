//! Row kernels on Flex: layer normalisation forward and backward, and the token cross
//! entropy forward and backward; parallel over fixed blocks of rows, column sums reduced in
//! block order so they do not depend on scheduling.

use std::mem::MaybeUninit;

use burn::backend::flex::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::IntTensor;
use burn::tensor::DType;

use super::math::exp;
use super::simd::vectorized;
use super::{contiguous, filled, run, tensor};

/// Rows per parallel task.
const ROWS: usize = 64;

fn rows_and_width(x: &FlexTensor) -> (usize, usize) {
    let shape = x.layout().shape();
    let d = shape[shape.num_dims() - 1];
    (shape.num_elements() / d.max(1), d)
}

/// The shape of `x` with its last dimension 1.
fn reduced_shape(x: &FlexTensor) -> Vec<usize> {
    let mut shape = x.layout().shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = 1;
    }
    shape
}

/// Sum of `x` in 16 lanes (vectorises; fixed order).
#[inline(always)]
fn sum(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `Σ a·b` in 16 lanes.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (a, b) in ca.zip(cb) {
        for ((l, &x), &y) in lanes.iter_mut().zip(a).zip(b) {
            *l += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

vectorized! {
    /// Normalises the rows of `x` (width `gamma.len()`) into `out`, with their statistics.
    fn layer_norm_rows(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        epsilon: f32,
        out: &mut [MaybeUninit<f32>],
        mean: &mut [f32],
        rstd: &mut [f32],
    ) {
        let d = gamma.len();
        for (r, (y, row)) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)).enumerate() {
            let m = sum(row) / d as f32;
            let mut lanes = [0f32; 16];
            let chunks = row.chunks_exact(16);
            let tail: f32 = chunks.remainder().iter().map(|v| (v - m) * (v - m)).sum();
            for chunk in chunks {
                for (l, &v) in lanes.iter_mut().zip(chunk) {
                    *l += (v - m) * (v - m);
                }
            }
            let var = (lanes.iter().sum::<f32>() + tail) / d as f32;
            let s = 1.0 / (var + epsilon).sqrt();
            for (((y, &v), &g), &b) in y.iter_mut().zip(row).zip(gamma).zip(beta) {
                *y = MaybeUninit::new((v - m) * s * g + b);
            }
            mean[r] = m;
            rstd[r] = s;
        }
    }
}

/// Layer norm: output, mean and `1 / sqrt(var + ε)` per row.
pub(super) fn layer_norm(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f32,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (n, d) = rows_and_width(x);
    let (data, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let mut mean = vec![0f32; n];
    let mut rstd = vec![0f32; n];
    let out = filled(n * d, |out| {
        let blocks: Vec<_> = out
            .chunks_mut(ROWS * d)
            .zip(mean.chunks_mut(ROWS).zip(rstd.chunks_mut(ROWS)))
            .collect();
        run(
            blocks,
            n * d,
            || (),
            |(), block, (out, (mean, rstd))| {
                let input = &data[block * ROWS * d..block * ROWS * d + out.len()];
                layer_norm_rows(input, &gamma, &beta, epsilon, out, mean, rstd);
            },
        );
    });
    let shape = x.layout().shape().clone();
    let reduced = reduced_shape(x);
    (
        tensor(out, shape),
        tensor(mean, reduced.clone()),
        tensor(rstd, reduced),
    )
}

vectorized! {
    /// `dx` of a block of rows, and the block's `Σ g·x̂` and `Σ g` (`partial`: `[2, d]`).
    fn layer_norm_backward_rows(
        x_grad: (&[f32], &[f32]),
        gamma: &[f32],
        mean_rstd: (&[f32], &[f32]),
        dx: &mut [MaybeUninit<f32>],
        partial: &mut [f32],
    ) {
        let (x, grad) = x_grad;
        let (mean, rstd) = mean_rstd;
        let d = gamma.len();
        let (dgamma, dbeta) = partial.split_at_mut(d);
        let mut scaled = vec![0f32; d];
        let mut normalized = vec![0f32; d];
        for (r, dx) in dx.chunks_exact_mut(d).enumerate() {
            let row = &x[r * d..(r + 1) * d];
            let g = &grad[r * d..(r + 1) * d];
            let (m, s) = (mean[r], rstd[r]);
            for ((((a, xh), &v), &g), &gm) in scaled
                .iter_mut()
                .zip(normalized.iter_mut())
                .zip(row)
                .zip(g)
                .zip(gamma)
            {
                *xh = (v - m) * s;
                *a = g * gm;
            }
            let mean_a = sum(&scaled) / d as f32;
            let mean_ax = dot(&scaled, &normalized) / d as f32;
            for ((dx, &a), &xh) in dx.iter_mut().zip(&scaled).zip(&normalized) {
                *dx = MaybeUninit::new(s * (a - mean_a - xh * mean_ax));
            }
            for (((dg, db), &g), &xh) in
                dgamma.iter_mut().zip(dbeta.iter_mut()).zip(g).zip(&normalized)
            {
                *dg += g * xh;
                *db += g;
            }
        }
    }
}

/// Layer norm backward: `(dx, dγ, dβ)`.
pub(super) fn layer_norm_backward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    mean: &FlexTensor,
    rstd: &FlexTensor,
    grad: &FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (n, d) = rows_and_width(x);
    let (data, gamma, grad_data) = (contiguous(x), contiguous(gamma), contiguous(grad));
    let (mean, rstd) = (contiguous(mean), contiguous(rstd));
    let blocks = n.div_ceil(ROWS);
    // Per block of rows: Σ g·x̂ and Σ g, summed over the blocks afterwards in block order.
    let mut partial = vec![0f32; blocks * 2 * d];
    let dx = filled(n * d, |dx| {
        let blocks: Vec<_> = dx
            .chunks_mut(ROWS * d)
            .zip(partial.chunks_mut(2 * d))
            .collect();
        run(
            blocks,
            n * d,
            || (),
            |(), block, (dx, partial)| {
                let span = block * ROWS * d..block * ROWS * d + dx.len();
                let rows = block * ROWS..block * ROWS + dx.len() / d;
                layer_norm_backward_rows(
                    (&data[span.clone()], &grad_data[span]),
                    &gamma,
                    (&mean[rows.clone()], &rstd[rows]),
                    dx,
                    partial,
                );
            },
        );
    });
    let mut dgamma = vec![0f32; d];
    let mut dbeta = vec![0f32; d];
    for block in partial.chunks_exact(2 * d) {
        for (total, &p) in dgamma.iter_mut().zip(&block[..d]) {
            *total += p;
        }
        for (total, &p) in dbeta.iter_mut().zip(&block[d..]) {
            *total += p;
        }
    }
    (
        tensor(dx, x.layout().shape().clone()),
        tensor(dgamma, [d]),
        tensor(dbeta, [d]),
    )
}

/// The target ids as `usize` (any integer element type).
fn targets_of(targets: &IntTensor<Flex>) -> Vec<usize> {
    let t = targets.to_contiguous();
    match t.dtype() {
        DType::I64 => t.storage::<i64>().iter().map(|&v| v as usize).collect(),
        DType::I32 => t.storage::<i32>().iter().map(|&v| v as usize).collect(),
        DType::U32 => t.storage::<u32>().iter().map(|&v| v as usize).collect(),
        DType::U64 => t.storage::<u64>().iter().map(|&v| v as usize).collect(),
        DType::I16 => t.storage::<i16>().iter().map(|&v| v as usize).collect(),
        DType::U16 => t.storage::<u16>().iter().map(|&v| v as usize).collect(),
        other => unreachable!("integer targets, got {other:?}"),
    }
}

vectorized! {
    /// Losses and log-sum-exp of a block of rows of width `v`.
    fn token_nll_rows(
        logits: &[f32],
        targets: &[usize],
        v: usize,
        smoothing: f32,
        loss: &mut [f32],
        lse: &mut [f32],
    ) {
        for (r, (loss, lse)) in loss.iter_mut().zip(lse.iter_mut()).enumerate() {
            let row = &logits[r * v..(r + 1) * v];
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            let mut lanes = [0f32; 16];
            let chunks = row.chunks_exact(16);
            let tail: f32 = chunks.remainder().iter().map(|&x| exp(x - max)).sum();
            for chunk in chunks {
                for (l, &x) in lanes.iter_mut().zip(chunk) {
                    *l += exp(x - max);
                }
            }
            let l = max + (lanes.iter().sum::<f32>() + tail).ln();
            let nll = l - row[targets[r].min(v - 1)];
            *loss = if smoothing > 0.0 {
                (1.0 - smoothing) * nll + smoothing * (l - sum(row) / v as f32)
            } else {
                nll
            };
            *lse = l;
        }
    }
}

/// Token cross entropy: losses `[n]` and log-sum-exp `[n]`.
pub(super) fn token_nll(
    logits: &FlexTensor,
    targets: &IntTensor<Flex>,
    smoothing: f32,
) -> (FlexTensor, FlexTensor) {
    let (n, v) = rows_and_width(logits);
    let data = contiguous(logits);
    let targets = targets_of(targets);
    let mut loss = vec![0f32; n];
    let mut lse = vec![0f32; n];
    let blocks: Vec<_> = loss.chunks_mut(ROWS).zip(lse.chunks_mut(ROWS)).collect();
    run(
        blocks,
        n * v,
        || (),
        |(), block, (loss, lse)| {
            let rows = block * ROWS..block * ROWS + loss.len();
            let logits = &data[rows.start * v..rows.end * v];
            token_nll_rows(logits, &targets[rows], v, smoothing, loss, lse);
        },
    );
    (tensor(loss, [n]), tensor(lse, [n]))
}

vectorized! {
    /// Gradient rows of a block of rows of width `out.len() / targets.len()`.
    fn token_nll_backward_rows(
        logits: &[f32],
        targets: &[usize],
        lse_grad: (&[f32], &[f32]),
        smoothing: f32,
        out: &mut [MaybeUninit<f32>],
    ) {
        let (lse, grad) = lse_grad;
        let v = out.len() / targets.len().max(1);
        let uniform = smoothing / v as f32;
        for (r, dy) in out.chunks_exact_mut(v).enumerate() {
            let row = &logits[r * v..(r + 1) * v];
            let (l, g) = (lse[r], grad[r]);
            let target = targets[r].min(v - 1);
            for (c, (dy, &x)) in dy.iter_mut().zip(row).enumerate() {
                let hit = if c == target { 1.0 - smoothing } else { 0.0 };
                *dy = MaybeUninit::new(g * (exp(x - l) - uniform - hit));
            }
        }
    }
}

/// Token cross entropy backward: `grad · (softmax − (1 − ε)·onehot − ε/v)` `[n, v]`.
pub(super) fn token_nll_backward(
    logits: &FlexTensor,
    targets: &IntTensor<Flex>,
    lse: &FlexTensor,
    grad: &FlexTensor,
    smoothing: f32,
) -> FlexTensor {
    let (n, v) = rows_and_width(logits);
    let (data, lse, grad) = (contiguous(logits), contiguous(lse), contiguous(grad));
    let targets = targets_of(targets);
    let out = filled(n * v, |out| {
        let blocks: Vec<_> = out.chunks_mut(ROWS * v).collect();
        run(
            blocks,
            n * v,
            || (),
            |(), block, out| {
                let rows = block * ROWS..block * ROWS + out.len() / v;
                let logits = &data[rows.start * v..rows.end * v];
                let (lse, grad) = (&lse[rows.clone()], &grad[rows.clone()]);
                token_nll_backward_rows(logits, &targets[rows], (lse, grad), smoothing, out);
            },
        );
    });
    tensor(out, [n, v])
}
