//! Fused attention on Flex: FlashAttention-2 (Dao, 2023) tiles on the CPU.
//!
//! Forward, per (batch, head, block of [`BLOCK_Q`] queries) — independent tasks on rayon:
//! the block's scores against one tile of [`BLOCK_K`] keys at a time (`q·kᵀ` by gemm into a
//! 32 KB scratch), the mask applied as a per-row range of visible keys, an online softmax
//! (running maximum and sum, the accumulated output rescaled when the maximum grows), and
//! `p·v` accumulated by gemm. Tiles wholly past the causal diagonal or before the window are
//! never computed. Only the output and every query's log-sum-exp are written.
//!
//! Backward, per (batch, head): the probabilities of each tile are recomputed from the
//! log-sum-exp, and `dv += pᵀ·do`, `dp = do·vᵀ`, `ds = p ⊙ (dp − rowsum(do ⊙ o))`,
//! `dq += ds·k`, `dk += dsᵀ·q` run tile by tile (five gemm calls), `dk`/`dv` accumulated in the
//! task's own scratch.
//!
//! Inputs are read in place through their strides (a projection's `[b, t, h, d]` output
//! viewed as `[b, h, t, d]` needs no copy); outputs are written `[b, t, h, d]` in memory and
//! returned as `[b, h, t, d]` views, so merging the heads afterwards is free.

use burn::backend::flex::FlexTensor;

use super::math::exp;
use super::simd::vectorized;
use super::{SharedMut, contiguous, filled, run, strided, tensor};
use crate::kernels::AttentionOptions;
use crate::kernels::random::{bits, stream_keys, threshold};

/// Queries per forward task and per step of the backward loop (64 computed less of the
/// masked diagonal tiles but ran no faster: its gemm calls were too small).
const BLOCK_Q: usize = 128;
/// Keys per tile.
const BLOCK_K: usize = 512;
/// Lanes of the manual reductions: 16 f32 fill one AVX-512 register.
const LANES: usize = 16;

/// Where a rank-4 tensor's elements are.
#[derive(Clone, Copy)]
struct Heads {
    ptr: *const f32,
    strides: [isize; 4],
    shape: [usize; 4],
}

// SAFETY: read-only access to a buffer that outlives the parallel loops.
unsafe impl Send for Heads {}
unsafe impl Sync for Heads {}

impl Heads {
    fn of(t: &FlexTensor) -> Self {
        let layout = t.layout();
        let shape: [usize; 4] = layout
            .shape()
            .to_vec()
            .try_into()
            .unwrap_or_else(|_| unreachable!("attention tensors are rank 4"));
        let strides: [isize; 4] = layout
            .strides()
            .try_into()
            .unwrap_or_else(|_| unreachable!("attention tensors are rank 4"));
        let storage = t.storage::<f32>();
        // SAFETY: the layout's start offset lies inside the storage.
        let ptr = unsafe { storage.as_ptr().add(layout.start_offset()) };
        Self {
            ptr,
            strides,
            shape,
        }
    }

    /// Element `(b, h, 0, 0)`.
    fn head(&self, b: usize, h: usize) -> *const f32 {
        let offset = b as isize * self.strides[0] + h as isize * self.strides[1];
        // SAFETY: in bounds for b, h inside the shape (the layout maps them into storage).
        unsafe { self.ptr.offset(offset) }
    }

    fn row(&self) -> isize {
        self.strides[2]
    }

    fn col(&self) -> isize {
        self.strides[3]
    }
}

/// `dst[m×n] = beta·lhs·rhs` (or `+=` with `accumulate`); strides as (row, column).
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_row: isize,
    accumulate: bool,
    (lhs, lhs_row, lhs_col): (*const f32, isize, isize),
    (rhs, rhs_row, rhs_col): (*const f32, isize, isize),
    beta: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the caller passes pointers and strides that stay inside their buffers.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_row,
            accumulate,
            lhs,
            lhs_col,
            lhs_row,
            rhs,
            rhs_col,
            rhs_row,
            if accumulate { 1.0 } else { 0.0 },
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// What every task of one call shares.
struct Call<'a> {
    q: Heads,
    k: Heads,
    v: Heads,
    bias: Option<&'a [f32]>,
    options: &'a AttentionOptions,
    heads: usize,
    tq: usize,
    tk: usize,
    d: usize,
}

impl Call<'_> {
    /// Keys `[lo, hi)` some query of the block `i0..i0 + rows` sees.
    fn key_span(&self, i0: usize, rows: usize) -> (usize, usize) {
        let first = self.options.offset + i0;
        let lo = self
            .options
            .window
            .map_or(0, |w| (first + 1).saturating_sub(w));
        let hi = if self.options.causal {
            (first + rows).min(self.tk)
        } else {
            self.tk
        };
        (lo, hi.max(lo))
    }

    /// Keys `[lo, hi)` query `i` sees, within the tile `kb..kb + cols`, relative to `kb`.
    fn row_span(&self, i: usize, kb: usize, cols: usize) -> (usize, usize) {
        let position = self.options.offset + i;
        let lo = self
            .options
            .window
            .map_or(0, |w| (position + 1).saturating_sub(w))
            .max(kb);
        let hi = if self.options.causal {
            (position + 1).min(kb + cols)
        } else {
            kb + cols
        };
        (lo - kb, hi.max(lo) - kb)
    }

    /// The dropout stream of head `(b, h)` and its threshold and scale.
    fn dropout(&self, b: usize, h: usize) -> Option<((u32, u32), u32, f32)> {
        self.options.dropout.map(|dropout| {
            (
                stream_keys(dropout.seed, (b * self.heads + h) as u64),
                threshold(dropout.prob),
                1.0 / (1.0 - dropout.prob),
            )
        })
    }
}

fn call<'a>(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    bias: Option<&'a [f32]>,
    options: &'a AttentionOptions,
) -> Call<'a> {
    let (q, k, v) = (Heads::of(q), Heads::of(k), Heads::of(v));
    let [_, heads, tq, d] = q.shape;
    Call {
        q,
        k,
        v,
        bias,
        options,
        heads,
        tq,
        tk: k.shape[2],
        d,
    }
}

/// Forward: the output `[b, h, tq, d]` (stored `[b, tq, h, d]`) and log-sum-exp `[b, h, tq]`.
pub(super) fn forward(
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
const FEW_QUERIES: usize = 4;

/// Forward for a few queries (a decoding step over the KV cache): per head, the scores
/// against every visible key by dot products (a gemm call per tile would cost more than the
/// product for one query row), one softmax, and `Σ p·v` — one pass over the cached keys and
/// one over the values.
fn forward_few(call: &Call<'_>) -> (FlexTensor, FlexTensor) {
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
fn attend_row(
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
    fn dot(a: &[f32], b: &[f32]) -> f32 {
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
    fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }
}

/// Strides of a `[b, h, t, d]` view of `[b, t, h, d]` memory.
fn strided_bthd(t: usize, h: usize, d: usize) -> [isize; 4] {
    [(t * h * d) as isize, d as isize, (h * d) as isize, 1]
}

#[derive(Default)]
struct ForwardScratch {
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

fn forward_block(
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
    fn softmax_tile(
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
fn online_softmax_row(
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
fn drop_row(row: &mut [f32], keys: (u32, u32), first: u32, threshold: u32, scale: f32) {
    for (j, x) in row.iter_mut().enumerate() {
        let kept = bits(keys, first.wrapping_add(j as u32)) >= threshold;
        *x *= if kept { scale } else { 0.0 };
    }
}

/// Maximum of `x` (non-empty), reduced in [`LANES`] lanes so it vectorises.
#[inline(always)]
fn lane_max(x: &[f32]) -> f32 {
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
fn exp_sum(x: &mut [f32], shift: f32) -> f32 {
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

#[derive(Default)]
struct BackwardScratch {
    probs: Vec<f32>,
    dropped: Vec<f32>,
    dprobs: Vec<f32>,
    dq: Vec<f32>,
    dk: Vec<f32>,
    dv: Vec<f32>,
    row_dot: Vec<f32>,
}

/// Backward: `(dq, dk, dv)`, each stored `[b, t, h, d]` and viewed as `[b, h, t, d]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    key_bias: Option<&FlexTensor>,
    out: &FlexTensor,
    lse: &FlexTensor,
    grad: &FlexTensor,
    options: &AttentionOptions,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let bias = key_bias.map(contiguous);
    let call = call(q, k, v, bias.as_deref(), options);
    let (out, grad) = (Heads::of(out), Heads::of(grad));
    let lse = contiguous(lse);
    let [b, h, tq, d] = call.q.shape;
    let tk = call.tk;
    let (mut dk, mut dv) = (Vec::new(), Vec::new());
    // Every (b, h) task writes all rows of its head in dq, dk and dv.
    let dq = filled(b * tq * h * d, |dq| {
        dk = filled(b * tk * h * d, |dk| {
            dv = filled(b * tk * h * d, |dv| {
                let ptrs = (
                    SharedMut(dq.as_mut_ptr().cast()),
                    SharedMut(dk.as_mut_ptr().cast()),
                    SharedMut(dv.as_mut_ptr().cast()),
                );
                let heads: Vec<usize> = (0..b * h).collect();
                let work = 2 * b * h * tq * tk * d;
                run(heads, work, BackwardScratch::default, |scratch, _, head| {
                    let (bi, hi) = (head / h, head % h);
                    let lse = &lse[head * tq..(head + 1) * tq];
                    backward_head(&call, (bi, hi), (out, grad), lse, scratch, ptrs.0);
                    scratch.write(&call, bi, hi, ptrs);
                });
            });
        });
    });
    (
        strided(dq, [b, h, tq, d], strided_bthd(tq, h, d)),
        strided(dk, [b, h, tk, d], strided_bthd(tk, h, d)),
        strided(dv, [b, h, tk, d], strided_bthd(tk, h, d)),
    )
}

impl BackwardScratch {
    /// Writes this head's `dk` and `dv` (its `dq` rows are written block by block).
    fn write(
        &self,
        call: &Call<'_>,
        b: usize,
        h: usize,
        (_, dk, dv): (SharedMut, SharedMut, SharedMut),
    ) {
        let (heads, tk, d) = (call.heads, call.tk, call.d);
        for j in 0..tk {
            let base = ((b * tk + j) * heads + h) * d;
            // SAFETY: rows (b, j, h) belong to this task alone; scratch rows hold d values.
            unsafe {
                std::ptr::copy_nonoverlapping(self.dk.as_ptr().add(j * d), dk.0.add(base), d);
                std::ptr::copy_nonoverlapping(self.dv.as_ptr().add(j * d), dv.0.add(base), d);
            }
        }
    }
}

fn backward_head(
    call: &Call<'_>,
    (b, h): (usize, usize),
    (out, grad): (Heads, Heads),
    lse: &[f32],
    s: &mut BackwardScratch,
    dq_out: SharedMut,
) {
    let (tq, tk, d) = (call.tq, call.tk, call.d);
    let (q, k, v) = (call.q.head(b, h), call.k.head(b, h), call.v.head(b, h));
    let (o, g) = (out.head(b, h), grad.head(b, h));
    let dropout = call.dropout(b, h);
    // Σ_j p_ij · dp_ij = do_i · o_i.
    s.row_dot.clear();
    for i in 0..tq {
        let value = if grad.col() == 1 && out.col() == 1 {
            // SAFETY: row i of o and g holds d contiguous values.
            let (gi, oi) = unsafe {
                (
                    std::slice::from_raw_parts(g.offset(i as isize * grad.row()), d),
                    std::slice::from_raw_parts(o.offset(i as isize * out.row()), d),
                )
            };
            dot(gi, oi)
        } else {
            (0..d)
                .map(|c| {
                    // SAFETY: (i, c) lies inside o and g.
                    unsafe {
                        *g.offset(i as isize * grad.row() + c as isize * grad.col())
                            * *o.offset(i as isize * out.row() + c as isize * out.col())
                    }
                })
                .sum()
        };
        s.row_dot.push(value);
    }
    s.probs.resize(BLOCK_Q * BLOCK_K, 0.0);
    s.dprobs.resize(BLOCK_Q * BLOCK_K, 0.0);
    if dropout.is_some() {
        s.dropped.resize(BLOCK_Q * BLOCK_K, 0.0);
    }
    for buffer in [&mut s.dk, &mut s.dv] {
        buffer.clear();
        buffer.resize(tk * d, 0.0);
    }
    let dq_base = |i: usize| ((b * tq + i) * call.heads + h) * d;
    for i0 in (0..tq).step_by(BLOCK_Q) {
        let rows = BLOCK_Q.min(tq - i0);
        s.dq.clear();
        s.dq.resize(rows * d, 0.0);
        let (lo, hi) = call.key_span(i0, rows);
        let q_block = (
            // SAFETY: row i0 lies inside q.
            unsafe { q.offset(i0 as isize * call.q.row()) },
            call.q.row(),
            call.q.col(),
        );
        // SAFETY: row i0 lies inside g.
        let g_block = (
            unsafe { g.offset(i0 as isize * grad.row()) },
            grad.row(),
            grad.col(),
        );
        let mut kb = lo;
        while kb < hi {
            let cols = BLOCK_K.min(hi - kb);
            // SAFETY: key row kb lies inside k and v.
            let (k_tile, v_tile) = unsafe {
                (
                    k.offset(kb as isize * call.k.row()),
                    v.offset(kb as isize * call.v.row()),
                )
            };
            // SAFETY: tiles inside their tensors; scratch sized BLOCK_Q × BLOCK_K.
            unsafe {
                gemm(
                    (rows, cols, d),
                    s.probs.as_mut_ptr(),
                    BLOCK_K as isize,
                    false,
                    q_block,
                    (k_tile, call.k.col(), call.k.row()),
                    call.options.scale,
                );
            }
            probabilities_tile(call, b, (i0, rows), (kb, cols), lse, dropout, s);
            let p_used = if dropout.is_some() {
                &s.dropped
            } else {
                &s.probs
            };
            // SAFETY: dv rows kb.. lie inside the tk × d scratch.
            unsafe {
                // dv[kb..] += pᵀ · do
                gemm(
                    (cols, d, rows),
                    s.dv.as_mut_ptr().add(kb * d),
                    d as isize,
                    true,
                    (p_used.as_ptr(), 1, BLOCK_K as isize),
                    g_block,
                    1.0,
                );
                // dp = do · vᵀ
                gemm(
                    (rows, cols, d),
                    s.dprobs.as_mut_ptr(),
                    BLOCK_K as isize,
                    false,
                    g_block,
                    (v_tile, call.v.col(), call.v.row()),
                    1.0,
                );
            }
            score_gradients_tile(call, (i0, rows), (kb, cols), dropout, s);
            // SAFETY: as above; dk rows kb.. lie inside the scratch.
            unsafe {
                // dq += ds · k
                gemm(
                    (rows, d, cols),
                    s.dq.as_mut_ptr(),
                    d as isize,
                    true,
                    (s.dprobs.as_ptr(), BLOCK_K as isize, 1),
                    (k_tile, call.k.row(), call.k.col()),
                    1.0,
                );
                // dk[kb..] += dsᵀ · q
                gemm(
                    (cols, d, rows),
                    s.dk.as_mut_ptr().add(kb * d),
                    d as isize,
                    true,
                    (s.dprobs.as_ptr(), 1, BLOCK_K as isize),
                    q_block,
                    1.0,
                );
            }
            kb += cols;
        }
        for r in 0..rows {
            // SAFETY: rows (b, i, h) of dq belong to this task alone; the scratch row holds d.
            unsafe {
                let target = dq_out.0.add(dq_base(i0 + r));
                std::ptr::copy_nonoverlapping(s.dq.as_ptr().add(r * d), target, d);
            }
        }
    }
}

vectorized! {
    /// The probabilities of one tile's rows from their log-sum-exp (and, with dropout, the
    /// dropped-out copy `pᵀ·do` uses).
    fn probabilities_tile(
        call: &Call<'_>,
        b: usize,
        i0_rows: (usize, usize),
        kb_cols: (usize, usize),
        lse: &[f32],
        dropout: Option<((u32, u32), u32, f32)>,
        s: &mut BackwardScratch,
    ) {
        let (i0, rows) = i0_rows;
        let (kb, cols) = kb_cols;
        let tk = call.tk;
        for r in 0..rows {
            let span = call.row_span(i0 + r, kb, cols);
            let row = &mut s.probs[r * BLOCK_K..r * BLOCK_K + cols];
            let bias = call.bias.map(|bias| &bias[b * tk + kb..b * tk + kb + cols]);
            probabilities_row(row, span, bias, lse[i0 + r]);
            if let Some((keys, threshold, scale)) = dropout {
                let dropped = &mut s.dropped[r * BLOCK_K..r * BLOCK_K + cols];
                dropped.copy_from_slice(row);
                let first = ((i0 + r) * tk + kb) as u32;
                drop_row(dropped, keys, first, threshold, scale);
            }
        }
    }
}

vectorized! {
    /// `ds = p ⊙ (dp − rowsum(do ⊙ o)) · scale` over one tile, in place of `dp` (masked by
    /// dropout first when there is dropout).
    fn score_gradients_tile(
        call: &Call<'_>,
        i0_rows: (usize, usize),
        kb_cols: (usize, usize),
        dropout: Option<((u32, u32), u32, f32)>,
        s: &mut BackwardScratch,
    ) {
        let (i0, rows) = i0_rows;
        let (kb, cols) = kb_cols;
        for r in 0..rows {
            let p = &s.probs[r * BLOCK_K..r * BLOCK_K + cols];
            let dp = &mut s.dprobs[r * BLOCK_K..r * BLOCK_K + cols];
            let row_dot = s.row_dot[i0 + r];
            if let Some((keys, threshold, scale)) = dropout {
                let first = ((i0 + r) * call.tk + kb) as u32;
                drop_row(dp, keys, first, threshold, scale);
            }
            for (x, &p) in dp.iter_mut().zip(p) {
                *x = p * (*x - row_dot) * call.options.scale;
            }
        }
    }
}

/// One row of probabilities `exp(s + bias − lse)` over the visible keys `c0..c1`, 0 elsewhere.
#[inline(always)]
fn probabilities_row(row: &mut [f32], (c0, c1): (usize, usize), bias: Option<&[f32]>, lse: f32) {
    if c0 >= c1 {
        row.fill(0.0);
        return;
    }
    match bias {
        Some(bias) => {
            for (s, b) in row[c0..c1].iter_mut().zip(&bias[c0..c1]) {
                *s = exp(*s + b - lse);
            }
        }
        None => {
            for s in &mut row[c0..c1] {
                *s = exp(*s - lse);
            }
        }
    }
    row[..c0].fill(0.0);
    row[c1..].fill(0.0);
}
