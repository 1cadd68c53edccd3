//! Dense attention scores `[b, h, t, keys]` — with Music Transformer relative positions
//! (skewed, or gathered for keys in a wrapped ring buffer) — and, for the hierarchical
//! variants, the scores of the block summaries; the softmax-weighted values of dense
//! attention.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::{AttentionContext, SelfAttention, SummaryPlan};
use crate::kv_cache::{KvCache, block_means};
use crate::mask::summary_bias;

/// The scores of one attention call and the values they weight.
pub(super) struct Scores {
    /// Scaled `q·kᵀ` (plus the relative-position scores), before any mask.
    pub(super) scores: Tensor<4>,
    /// The attended values `[b, h, keys, d_head]`.
    pub(super) values: Tensor<4>,
    /// Block summaries of the keys and values, when the variant uses them.
    pub(super) summaries: Option<(Tensor<4>, Tensor<4>)>,
    /// The summaries' scores `[b, h, t, blocks]`, masked by block visibility.
    pub(super) summary_scores: Option<Tensor<4>>,
}

impl Scores {
    /// The scores with an additive mask, if any.
    pub(super) fn biased(&self, bias: Option<&Tensor<4>>) -> Tensor<4> {
        match bias {
            Some(bias) => self.scores.clone() + bias.clone(),
            None => self.scores.clone(),
        }
    }

    /// How many keys the scores cover.
    pub(super) fn keys(&self) -> usize {
        self.values.dims()[2]
    }
}

impl SelfAttention {
    /// The scores of `q` over `k` (appended to layer `layer` of the cache first, with their
    /// block summaries when `plan` asks for them).
    pub(super) fn scores(
        &self,
        (q, k, v): (Tensor<4>, Tensor<4>, Tensor<4>),
        context: &AttentionContext<'_>,
        plan: Option<SummaryPlan>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Scores {
        let t = q.dims()[2];
        let cached = cache.is_some();
        let (k, v, summaries) = match cache {
            Some((cache, layer)) => {
                let summaries =
                    plan.and_then(|_| cache.append_summaries(layer, k.clone(), v.clone()));
                let (k, v) = cache.append(layer, k, v);
                (k, v, summaries)
            }
            None => {
                let summaries = plan.and_then(|plan| {
                    let (sk, _) = block_means(k.clone(), plan.block);
                    let (sv, _) = block_means(v.clone(), plan.block);
                    sk.zip(sv)
                });
                (k, v, summaries)
            }
        };
        let scale = (self.d_head as f64).sqrt().recip();
        let n = k.dims()[2];
        let keys = k.swap_dims(2, 3);
        let scores = match &self.relative {
            None => q.clone().matmul(keys),
            Some(relative) => {
                let by_distance = match &context.ring {
                    Some(positions) => relative.gathered(q.clone(), context.offset, positions),
                    None => relative.skewed(q.clone(), n),
                };
                q.clone().matmul(keys) + by_distance
            }
        };
        // Blocks count from the cache's start, or from the input's without a cache.
        let summary_scores = summaries.as_ref().zip(plan).map(|((sk, _), plan)| {
            let s = q.matmul(sk.clone().swap_dims(2, 3)).mul_scalar(scale);
            let first = if cached { context.offset } else { 0 };
            let blocks = sk.dims()[2];
            match summary_bias(first, t, blocks, plan.block, plan.window, &s.device()) {
                Some(bias) => s + bias,
                None => s,
            }
        });
        Scores {
            scores: scores.mul_scalar(scale),
            values: v,
            summaries,
            summary_scores,
        }
    }

    /// `dropout(softmax(scores))·values`.
    pub(super) fn softmax_values(&self, scores: Tensor<4>, values: &Tensor<4>) -> Tensor<4> {
        self.dropout
            .forward(softmax(scores, 3))
            .matmul(values.clone())
    }
}
