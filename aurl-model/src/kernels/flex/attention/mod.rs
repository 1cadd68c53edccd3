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

mod backward;
mod forward;

pub(super) use backward::backward;
pub(super) use forward::forward;
#[allow(unused_imports)]
use forward::*;

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
    #[inline]
    fn head(&self, b: usize, h: usize) -> *const f32 {
        let offset = b as isize * self.strides[0] + h as isize * self.strides[1];
        // SAFETY: in bounds for b, h inside the shape (the layout maps them into storage).
        unsafe { self.ptr.offset(offset) }
    }

    #[inline]
    fn row(&self) -> isize {
        self.strides[2]
    }

    #[inline]
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
    #[inline]
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
    #[inline]
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
    #[inline]
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
