//! Attention biases: causal and sliding-window masks by absolute position, and key padding,
//! as additive float tensors (0 where attention is allowed).
//!
//! Causal and window masks use −∞: every query sees at least itself, so no row is fully
//! masked, and `exp(−∞)` takes the fast path where a large finite value would go through
//! the slow underflow path of `expf` (3% of a training step). Padding uses a large finite
//! value instead, so the rows of padding queries (which may see only padding) stay finite
//! rather than turning into NaN and poisoning later layers.

use burn::prelude::*;

/// What a padded key's score becomes before the softmax: `exp` of it underflows to 0.
pub const MASKED: f32 = -1.0e9;

/// The causal (and, with `window`, local) bias `[1, 1, queries, keys]` for queries at
/// `first_query..first_query + queries` and keys at the given absolute positions, or `None`
/// when nothing is masked.
pub(crate) fn causal_bias(
    first_query: usize,
    queries: usize,
    keys: &[usize],
    window: Option<usize>,
    device: &Device,
) -> Option<Tensor<4>> {
    let mut data = Vec::with_capacity(queries * keys.len());
    let mut any = false;
    for q in first_query..first_query + queries {
        for &k in keys {
            let allowed = k <= q && window.is_none_or(|w| q - k < w);
            any |= !allowed;
            data.push(if allowed { 0.0 } else { f32::NEG_INFINITY });
        }
    }
    any.then(|| {
        Tensor::<1>::from_data(TensorData::new(data, [queries * keys.len()]), device).reshape([
            1,
            1,
            queries,
            keys.len(),
        ])
    })
}

/// The bias `[1, 1, queries, blocks]` over block summaries for queries at
/// `first_query..first_query + queries`: summary `j` (positions `j·block..(j+1)·block`) is
/// visible to query `q` when the block ends before the query's local window of `window`
/// positions, `(j + 1)·block + window ≤ q + 1`. `None` when nothing is masked.
pub(crate) fn summary_bias(
    first_query: usize,
    queries: usize,
    blocks: usize,
    block: usize,
    window: usize,
    device: &Device,
) -> Option<Tensor<4>> {
    let mut data = Vec::with_capacity(queries * blocks);
    let mut any = false;
    for q in first_query..first_query + queries {
        for j in 0..blocks {
            let visible = (j + 1) * block + window <= q + 1;
            any |= !visible;
            data.push(if visible { 0.0 } else { f32::NEG_INFINITY });
        }
    }
    any.then(|| {
        Tensor::<1>::from_data(TensorData::new(data, [queries * blocks]), device)
            .reshape([1, 1, queries, blocks])
    })
}

/// The bias `[batch, 1, 1, keys]` that hides padded keys (`true` in `padding`).
pub(crate) fn padding_bias(padding: Tensor<2, Bool>) -> Tensor<4> {
    let [b, k] = padding.dims();
    padding.float().mul_scalar(MASKED).reshape([b, 1, 1, k])
}

/// Sum of two optional biases (broadcasting).
pub(crate) fn combine(a: Option<Tensor<4>>, b: Option<Tensor<4>>) -> Option<Tensor<4>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}
