//! The backward pass: per (batch, head), probabilities recomputed per tile from the
//! log-sum-exp, five gemm calls per tile.

use burn::backend::flex::FlexTensor;

use super::*;

#[derive(Default)]
pub(super) struct BackwardScratch {
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
pub(in crate::kernels::flex) fn backward(
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
    /// Sizes the tiles' buffers and zeroes the head's `dk`/`dv` accumulators (`keys_d`
    /// values each).
    fn prepare(&mut self, keys_d: usize, dropout: bool) {
        self.probs.resize(BLOCK_Q * BLOCK_K, 0.0);
        self.dprobs.resize(BLOCK_Q * BLOCK_K, 0.0);
        if dropout {
            self.dropped.resize(BLOCK_Q * BLOCK_K, 0.0);
        }
        for buffer in [&mut self.dk, &mut self.dv] {
            buffer.clear();
            buffer.resize(keys_d, 0.0);
        }
    }

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

/// `Σ_j p_ij · dp_ij = do_i · o_i` for every query row `i` of one head, into `row_dot`.
fn row_dots(
    (o, out): (*const f32, Heads),
    (g, grad): (*const f32, Heads),
    (tq, d): (usize, usize),
    row_dot: &mut Vec<f32>,
) {
    row_dot.clear();
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
        row_dot.push(value);
    }
}

pub(super) fn backward_head(
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
    row_dots((o, out), (g, grad), (tq, d), &mut s.row_dot);
    s.prepare(tk * d, dropout.is_some());
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
    pub(super) fn probabilities_tile(
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
    pub(super) fn score_gradients_tile(
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
pub(super) fn probabilities_row(
    row: &mut [f32],
    (c0, c1): (usize, usize),
    bias: Option<&[f32]>,
    lse: f32,
) {
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
