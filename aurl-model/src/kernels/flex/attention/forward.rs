//! The forward pass: per block of queries, tiles of keys with an online softmax.

use burn::backend::flex::FlexTensor;

use super::*;

/// Forward: the output `[b, h, tq, d]` (stored `[b, tq, h, d]`) and log-sum-exp `[b, h, tq]`.
pub(in crate::kernels::flex) fn forward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    key_bias: Option<&FlexTensor>,
    options: &AttentionOptions,
) -> (FlexTensor, FlexTensor) {
    let bias = key_bias.map(contiguous);
    let call = call(q, k, v, bias.as_deref(), options);
    let [b, h, tq, d] = call.q.shape;
    if tq <= FEW_QUERIES && [call.q, call.k, call.v].iter().all(|t| t.col() == 1) {
        return forward_few(&call);
    }
    let blocks = tq.div_ceil(BLOCK_Q);
    let mut lse = Vec::new();
    // Every (b, h, block) task writes its rows of the output and of the log-sum-exp.
    let out = filled(b * tq * h * d, |out| {
        lse = filled(b * h * tq, |lse| {
            let (out_ptr, lse_ptr) = (
                SharedMut(out.as_mut_ptr().cast()),
                SharedMut(lse.as_mut_ptr().cast()),
            );
            let tasks: Vec<usize> = (0..b * h * blocks).collect();
            let work = b * h * tq * call.tk * d;
            run(tasks, work, ForwardScratch::default, |scratch, _, task| {
                let (head, block) = (task / blocks, task % blocks);
                let i0 = block * BLOCK_Q;
                let rows = BLOCK_Q.min(tq - i0);
                forward_block(&call, head / h, head % h, i0, rows, scratch);
                scratch.write(&call, head / h, head % h, i0, rows, out_ptr, lse_ptr);
            });
        });
    });
    (
        strided(out, [b, h, tq, d], strided_bthd(tq, h, d)),
        tensor(lse, [b, h, tq]),
    )
}

/// Queries per call up to which [`forward_few`] replaces the tiles (a decoding step).
pub(super) const FEW_QUERIES: usize = 4;

/// Forward for a few queries (a decoding step over the KV cache): per head, the scores
/// against every visible key by dot products (a gemm call per tile would cost more than the
/// product for one query row), one softmax, and `Σ p·v` — one pass over the cached keys and
/// one over the values.
pub(super) fn forward_few(call: &Call<'_>) -> (FlexTensor, FlexTensor) {
    let [b, h, tq, d] = call.q.shape;
    let mut lse = Vec::new();
    let out = filled(b * tq * h * d, |out| {
        lse = filled(b * h * tq, |lse| {
            let (out_ptr, lse_ptr) = (
                SharedMut(out.as_mut_ptr().cast()),
                SharedMut(lse.as_mut_ptr().cast()),
            );
            let heads: Vec<usize> = (0..b * h).collect();
            run(
                heads,
                b * h * tq * call.tk * d,
                Vec::new,
                |scores, _, head| {
                    let (bi, hi) = (head / h, head % h);
                    for i in 0..tq {
                        let (lo, hi_key) = call.row_span(i, 0, call.tk);
                        let (row_lse, values) = attend_row(call, (bi, hi), i, (lo, hi_key), scores);
                        let base = ((bi * tq + i) * h + hi) * d;
                        for (c, value) in values.into_iter().enumerate() {
                            // SAFETY: row (b, i, h) belongs to this task alone.
                            unsafe { out_ptr.write(base + c, value) };
                        }
                        // SAFETY: as above.
                        unsafe { lse_ptr.write(head * tq + i, row_lse) };
                    }
                },
            );
        });
    });
    (
        strided(out, [b, h, tq, d], strided_bthd(tq, h, d)),
        tensor(lse, [b, h, tq]),
    )
}

/// One query row of [`forward_few`]: its log-sum-exp and output.
pub(super) fn attend_row(
    call: &Call<'_>,
    (b, h): (usize, usize),
    i: usize,
    (lo, hi): (usize, usize),
    scores: &mut Vec<f32>,
) -> (f32, Vec<f32>) {
    let d = call.d;
    // SAFETY: rows i of q and lo..hi of k and v lie inside their tensors, whose columns are
    // contiguous (checked by the caller).
    let (q, k, v) = unsafe {
        (
            std::slice::from_raw_parts(call.q.head(b, h).offset(i as isize * call.q.row()), d),
            call.k.head(b, h),
            call.v.head(b, h),
        )
    };
    let key =
        |j: usize| unsafe { std::slice::from_raw_parts(k.offset(j as isize * call.k.row()), d) };
    let value =
        |j: usize| unsafe { std::slice::from_raw_parts(v.offset(j as isize * call.v.row()), d) };
    let mut out = vec![0f32; d];
    // Leading keys biased by -inf weigh exactly nothing: skipping them (the slots before a
    // row of a continuous batch) makes the row's sums those of the row alone.
    let mut lo = lo;
    if let Some(bias) = call.bias {
        let row = &bias[b * call.tk..(b + 1) * call.tk];
        while lo + 1 < hi && row[lo] == f32::NEG_INFINITY {
            lo += 1;
        }
    }
    if lo >= hi {
        return (f32::NEG_INFINITY, out);
    }
    scores.clear();
    scores.extend((lo..hi).map(|j| dot(q, key(j)) * call.options.scale));
    if let Some(bias) = call.bias {
        for (s, b) in scores
            .iter_mut()
            .zip(&bias[b * call.tk + lo..b * call.tk + hi])
        {
            *s += b;
        }
    }
    let max = lane_max(scores);
    let sum = exp_sum(scores, max);
    for (j, &p) in (lo..hi).zip(scores.iter()) {
        axpy(p / sum, value(j), &mut out);
    }
    (max + sum.ln(), out)
}

vectorized! {
    /// `Σ a·b` in 16 lanes.
    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut lanes = [0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
        for (a, b) in ca.zip(cb) {
            for ((l, &x), &y) in lanes.iter_mut().zip(a).zip(b) {
                *l += x * y;
            }
        }
        lanes.iter().sum::<f32>() + tail
    }
}

vectorized! {
    /// `y += a·x`.
    pub(super) fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }
}

/// Strides of a `[b, h, t, d]` view of `[b, t, h, d]` memory.
pub(super) fn strided_bthd(t: usize, h: usize, d: usize) -> [isize; 4] {
    [(t * h * d) as isize, d as isize, (h * d) as isize, 1]
}

#[derive(Default)]
pub(super) struct ForwardScratch {
    scores: Vec<f32>,
    acc: Vec<f32>,
    max: Vec<f32>,
    sum: Vec<f32>,
}

impl ForwardScratch {
    /// Normalises the accumulated rows and writes them, with their log-sum-exp.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        call: &Call<'_>,
        b: usize,
        h: usize,
        i0: usize,
        rows: usize,
        out: SharedMut,
        lse: SharedMut,
    ) {
        let (heads, tq, d) = (call.heads, call.tq, call.d);
        for r in 0..rows {
            let i = i0 + r;
            let l = self.sum[r];
            let inv = if l > 0.0 { 1.0 / l } else { 0.0 };
            let base = ((b * tq + i) * heads + h) * d;
            let row = &self.acc[r * d..(r + 1) * d];
            // SAFETY: row (b, i, h) belongs to this task alone.
            let target = unsafe { std::slice::from_raw_parts_mut(out.0.add(base), d) };
            for (t, &a) in target.iter_mut().zip(row) {
                *t = a * inv;
            }
            // SAFETY: as above.
            unsafe { *lse.0.add((b * heads + h) * tq + i) = self.max[r] + l.ln() };
        }
    }
}

pub(super) fn forward_block(
    call: &Call<'_>,
    b: usize,
    h: usize,
    i0: usize,
    rows: usize,
    s: &mut ForwardScratch,
) {
    let d = call.d;
    s.scores.resize(BLOCK_Q * BLOCK_K, 0.0);
    s.acc.clear();
    s.acc.resize(rows * d, 0.0);
    s.max.clear();
    s.max.resize(rows, f32::NEG_INFINITY);
    s.sum.clear();
    s.sum.resize(rows, 0.0);
    let (q, k, v) = (call.q.head(b, h), call.k.head(b, h), call.v.head(b, h));
    let dropout = call.dropout(b, h);
    let (lo, hi) = call.key_span(i0, rows);
    let mut kb = lo;
    while kb < hi {
        let cols = BLOCK_K.min(hi - kb);
        // SAFETY: rows i0.., keys kb.. and d columns lie inside q, k, v; the scratch holds
        // BLOCK_Q × BLOCK_K scores and rows × d accumulators.
        unsafe {
            gemm(
                (rows, cols, d),
                s.scores.as_mut_ptr(),
                BLOCK_K as isize,
                false,
                (
                    q.offset(i0 as isize * call.q.row()),
                    call.q.row(),
                    call.q.col(),
                ),
                (
                    k.offset(kb as isize * call.k.row()),
                    call.k.col(),
                    call.k.row(),
                ),
                call.options.scale,
            );
        }
        softmax_tile(call, b, (i0, rows), (kb, cols), dropout, s);
        // SAFETY: as above; the scores' tile is rows × cols with row stride BLOCK_K.
        unsafe {
            gemm(
                (rows, d, cols),
                s.acc.as_mut_ptr(),
                d as isize,
                true,
                (s.scores.as_ptr(), BLOCK_K as isize, 1),
                (
                    v.offset(kb as isize * call.v.row()),
                    call.v.row(),
                    call.v.col(),
                ),
                1.0,
            );
        }
        kb += cols;
    }
}

vectorized! {
    /// The online softmax of one tile's rows (see [`online_softmax_row`]), then dropout.
    pub(super) fn softmax_tile(
        call: &Call<'_>,
        b: usize,
        i0_rows: (usize, usize),
        kb_cols: (usize, usize),
        dropout: Option<((u32, u32), u32, f32)>,
        s: &mut ForwardScratch,
    ) {
        let (i0, rows) = i0_rows;
        let (kb, cols) = kb_cols;
        let d = call.d;
        for r in 0..rows {
            let (c0, c1) = call.row_span(i0 + r, kb, cols);
            let row = &mut s.scores[r * BLOCK_K..r * BLOCK_K + cols];
            let bias = call.bias.map(|bias| &bias[b * call.tk + kb..b * call.tk + kb + cols]);
            let acc = &mut s.acc[r * d..(r + 1) * d];
            online_softmax_row(row, (c0, c1), bias, &mut s.max[r], &mut s.sum[r], acc);
            if let Some((keys, threshold, scale)) = dropout {
                let first = ((i0 + r) * call.tk + kb) as u32;
                drop_row(&mut row[c0..c1], keys, first + c0 as u32, threshold, scale);
            }
        }
    }
}

/// One query row of one tile: adds the key bias over the visible keys `c0..c1`, turns the
/// scores into `exp(s − max)` (0 outside the visible keys), and updates the running maximum
/// and sum, rescaling the accumulated output when the maximum grows.
#[inline(always)]
pub(super) fn online_softmax_row(
    row: &mut [f32],
    (c0, c1): (usize, usize),
    bias: Option<&[f32]>,
    max: &mut f32,
    sum: &mut f32,
    acc: &mut [f32],
) {
    if c0 >= c1 {
        row.fill(0.0);
        return;
    }
    if let Some(bias) = bias {
        for (s, b) in row[c0..c1].iter_mut().zip(&bias[c0..c1]) {
            *s += b;
        }
    }
    let new_max = max.max(lane_max(&row[c0..c1]));
    let correction = exp(*max - new_max);
    let tile_sum = exp_sum(&mut row[c0..c1], new_max);
    row[..c0].fill(0.0);
    row[c1..].fill(0.0);
    *sum = *sum * correction + tile_sum;
    if correction != 1.0 {
        for a in acc.iter_mut() {
            *a *= correction;
        }
    }
    *max = new_max;
}

/// Zeroes the dropped elements of `row` (elements `first..` of the stream) and scales the
/// others.
#[inline(always)]
pub(super) fn drop_row(row: &mut [f32], keys: (u32, u32), first: u32, threshold: u32, scale: f32) {
    for (j, x) in row.iter_mut().enumerate() {
        let kept = bits(keys, first.wrapping_add(j as u32)) >= threshold;
        *x *= if kept { scale } else { 0.0 };
    }
}

/// Maximum of `x` (non-empty), reduced in [`LANES`] lanes so it vectorises.
#[inline(always)]
pub(super) fn lane_max(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l = l.max(v);
        }
    }
    let mut max = tail.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for l in lanes {
        max = max.max(l);
    }
    max
}

/// Replaces `x` by `exp(x − shift)` and returns the sum, in [`LANES`] lanes.
#[inline(always)]
pub(super) fn exp_sum(x: &mut [f32], shift: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(chunk.iter_mut()) {
            *v = exp(*v - shift);
            *l += *v;
        }
    }
    let mut sum = 0.0;
    for v in chunks.into_remainder() {
        *v = exp(*v - shift);
        sum += *v;
    }
    lanes.iter().sum::<f32>() + sum
}
