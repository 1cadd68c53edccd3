//! Attention biases: causal and sliding-window masks by absolute position, and key padding,
//! as additive float tensors (0 where attention is allowed, a large negative number where
//! not, so a fully masked row stays finite instead of turning into NaN).

use burn::prelude::*;

/// What a masked score becomes before the softmax: `exp` of it underflows to exactly 0.
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
            data.push(if allowed { 0.0 } else { MASKED });
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
