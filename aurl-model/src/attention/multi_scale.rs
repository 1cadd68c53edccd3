//! Multi-scale attention: the full, sliding-window and hierarchical scales computed from the
//! same scores and mixed with learned per-head weights (a softmax over the three).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::scores::Scores;
use super::{AttentionContext, SelfAttention};

impl SelfAttention {
    /// The three scales of `scores` mixed by `mix` `[n_heads, 3]`.
    pub(super) fn multi_scale(
        &self,
        mix: &Param<Tensor<2>>,
        scores: &Scores,
        context: &AttentionContext<'_>,
    ) -> Tensor<4> {
        let local = scores.biased(context.local_bias.as_ref());
        let full = self.softmax_values(scores.biased(context.bias.as_ref()), &scores.values);
        let sliding = self.softmax_values(local.clone(), &scores.values);
        let hierarchical = self.hierarchical(local, scores);
        let weights = softmax(mix.val(), 1);
        let h = self.n_heads;
        let weight = |i: usize| weights.clone().narrow(1, i, 1).reshape([1, h, 1, 1]);
        full * weight(0) + sliding * weight(1) + hierarchical * weight(2)
    }
}
