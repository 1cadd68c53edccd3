//! Hierarchical attention: every query attends to the keys of its local window and to one
//! summary (the mean key and value) of each earlier block, in one softmax.

use burn::prelude::*;
use burn::tensor::activation::softmax;

use super::SelfAttention;
use super::scores::Scores;

impl SelfAttention {
    /// Attention over the `local` (masked) scores and the summaries' scores together; plain
    /// softmax attention when the call has no summaries (no complete block yet).
    pub(super) fn hierarchical(&self, local: Tensor<4>, scores: &Scores) -> Tensor<4> {
        match (&scores.summary_scores, &scores.summaries) {
            (Some(summary), Some((_, summary_values))) => {
                let n = scores.keys();
                let weights = self
                    .dropout
                    .forward(softmax(Tensor::cat(vec![local, summary.clone()], 3), 3));
                weights
                    .clone()
                    .narrow(3, 0, n)
                    .matmul(scores.values.clone())
                    + weights
                        .narrow(3, n, summary_values.dims()[2])
                        .matmul(summary_values.clone())
            }
            _ => self.softmax_values(local, &scores.values),
        }
    }
}
