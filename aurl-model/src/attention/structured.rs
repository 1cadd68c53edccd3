//! Full and sliding-window attention with the mask given as structure: one call of
//! [`kernels::attention`], fused where the backend has a kernel (no `[b, h, t, keys]` scores
//! or mask tensor is built).

use burn::prelude::*;

use super::{SelfAttention, StructuredMask};
use crate::kernels::{self, AttentionOptions};
use crate::kv_cache::KvCache;

impl SelfAttention {
    /// Attention of `q` over `k`, `v` (appended to layer `layer` of the cache first, if
    /// any) as `mask` says: `[b, h, t, d_head]`.
    pub(super) fn structured(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: StructuredMask,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<4> {
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v),
            None => (k, v),
        };
        let options = AttentionOptions {
            causal: mask.causal,
            offset: mask.offset,
            window: mask.window,
            scale: (self.d_head as f32).sqrt().recip(),
            dropout: kernels::training_dropout(&self.dropout, &q.device()),
        };
        kernels::attention(q, k, v, mask.key_bias, options)
    }
}
