//! Causal multi-head self-attention — full, sliding-window, hierarchical (local window plus
//! block summaries) or a learned multi-scale mix of the three — with rotary or relative
//! positions and the KV cache. [`SelfAttention::forward`] picks one [`Variant`] per call;
//! each variant has its file here.

mod hierarchical;
mod multi_scale;
mod scores;
mod structured;

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig, RotaryEncoding};
use burn::prelude::*;

use crate::kv_cache::KvCache;
use crate::positions::rotate_rows;
use crate::project::project;
use crate::relative::RelativePositions;

/// Multi-head self-attention over a causal (optionally local) context.
///
/// Shapes: input `[batch, t, d_model]` → output `[batch, t, d_model]`.
#[derive(Module, Debug)]
pub struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    /// Music Transformer relative-position embeddings, if the model uses them.
    relative: Option<RelativePositions>,
    /// Multi-scale attention: per head, the logits of the mix of the full, sliding and
    /// hierarchical scales `[n_heads, 3]`.
    mix: Option<Param<Tensor<2>>>,
    dropout: Dropout,
    n_heads: usize,
    d_head: usize,
}

/// Builds a [`SelfAttention`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfAttentionConfig {
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of heads (`d_model` must be a multiple).
    pub n_heads: usize,
    /// Dropout on the attention weights.
    pub dropout: f64,
    /// Learned relative-position embeddings for distances `0..d` (Music Transformer), or
    /// `None`.
    pub relative: Option<usize>,
    /// Mix the full, sliding and hierarchical scales with learned per-head weights
    /// ([`AttentionKind::MultiScale`](crate::AttentionKind::MultiScale)).
    pub multi_scale: bool,
}

impl SelfAttentionConfig {
    /// Initialises the projections on `device`.
    #[must_use]
    pub fn init(&self, device: &Device) -> SelfAttention {
        let linear = || LinearConfig::new(self.d_model, self.d_model).init(device);
        SelfAttention {
            query: linear(),
            key: linear(),
            value: linear(),
            output: linear(),
            relative: self.relative.map(|max_distance| {
                RelativePositions::new(
                    self.n_heads,
                    self.d_model / self.n_heads,
                    max_distance,
                    device,
                )
            }),
            // Zeros: the three scales start equally weighted.
            mix: self
                .multi_scale
                .then(|| Initializer::Zeros.init([self.n_heads, 3], device)),
            dropout: DropoutConfig::new(self.dropout).init(),
            n_heads: self.n_heads,
            d_head: self.d_model / self.n_heads,
        }
    }
}

/// Which computation an attention call runs: chosen once per call from the layer (relative
/// positions, a multi-scale mix) and its context (block summaries, a mask given as
/// structure), then dispatched to the variant's file.
// One value per call, moved straight into its arm: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Variant<'s> {
    /// Full or sliding-window attention with the mask as structure and no relative
    /// positions: [`crate::kernels::attention`], fused where the backend has a kernel
    /// (`structured.rs`).
    Structured(StructuredMask),
    /// Full or sliding-window attention over dense scores and an additive mask tensor:
    /// relative positions, or keys in a wrapped ring buffer (`scores.rs`).
    Dense,
    /// A local window plus one summary per earlier block of keys (`hierarchical.rs`).
    Hierarchical(SummaryPlan),
    /// Full, sliding and hierarchical scales mixed with learned per-head weights
    /// (`multi_scale.rs`).
    MultiScale {
        mix: &'s Param<Tensor<2>>,
        plan: Option<SummaryPlan>,
    },
}

/// Everything an attention call needs besides its input.
pub(crate) struct AttentionContext<'a> {
    /// Absolute position of the first input token.
    pub offset: usize,
    /// Rotary encoding applied to queries and keys, if the model uses it.
    pub rotary: Option<&'a RotaryEncoding>,
    /// One position per row `[b]` when rows decode at different positions (one query
    /// each; `offset` is then unused).
    pub rows: Option<Tensor<1, Int>>,
    /// Additive bias broadcast onto the scores `[b|1, 1, t, keys]`.
    pub bias: Option<Tensor<4>>,
    /// Absolute positions of the attended keys when they are not the consecutive positions
    /// ending with the last query (a sliding window's ring buffer).
    pub ring: Option<Vec<usize>>,
    /// Hierarchical and multi-scale attention: the summaries' block and the local window.
    pub summaries: Option<SummaryPlan>,
    /// Multi-scale attention: the bias of the local (sliding) scale over the attended keys
    /// (causal and window masks; padding included when `bias` has it).
    pub local_bias: Option<Tensor<4>>,
    /// The mask as structure rather than a tensor, when the keys are consecutive positions
    /// (or a single query sees every held key): full and sliding attention without relative
    /// positions then run [`crate::kernels::attention`] (fused on backends with a kernel) and
    /// `bias` is not built.
    pub structured: Option<StructuredMask>,
}

/// Which keys each query sees, for [`crate::kernels::attention`].
#[derive(Debug, Clone)]
pub(crate) struct StructuredMask {
    /// Queries see only keys at or before their own position.
    pub causal: bool,
    /// Position of the first query relative to the first key.
    pub offset: usize,
    /// Sliding window, if any.
    pub window: Option<usize>,
    /// Additive bias per key `[b, keys]` (padding), if any.
    pub key_bias: Option<Tensor<2>>,
}

/// Shape of the block-summary part of hierarchical attention.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SummaryPlan {
    /// Positions per summary.
    pub block: usize,
    /// The local window a summary's block must end before.
    pub window: usize,
}

impl SelfAttention {
    fn heads(&self, linear: &Linear, x: Tensor<3>) -> Tensor<4> {
        let [b, t, _] = x.dims();
        project(linear, x)
            .reshape([b, t, self.n_heads, self.d_head])
            .swap_dims(1, 2)
    }

    /// The element type of the query projection's weight.
    pub(crate) fn query_dtype(&self) -> burn::tensor::DType {
        self.query.weight.val().dtype()
    }

    /// Whether it adds Music Transformer relative-position scores.
    pub(crate) fn has_relative_positions(&self) -> bool {
        self.relative.is_some()
    }

    /// The variant this layer runs in `context`.
    fn variant<'s>(&'s self, context: &AttentionContext<'_>) -> Variant<'s> {
        match (&self.mix, context.summaries) {
            (Some(mix), plan) => Variant::MultiScale { mix, plan },
            (None, Some(plan)) => Variant::Hierarchical(plan),
            (None, None) => match context.structured.clone() {
                Some(mask) if self.relative.is_none() => Variant::Structured(mask),
                _ => Variant::Dense,
            },
        }
    }

    /// Attends from every input position; with a cache, the new keys and values are stored
    /// in layer `layer` of it and earlier cached positions are attended to as well.
    pub(crate) fn forward(
        &self,
        x: Tensor<3>,
        context: &AttentionContext<'_>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let mut q = self.heads(&self.query, x.clone());
        let mut k = self.heads(&self.key, x.clone());
        let v = self.heads(&self.value, x);
        match (context.rotary, &context.rows) {
            (Some(rotary), Some(rows)) => {
                q = rotate_rows(rotary, q, rows.clone());
                k = rotate_rows(rotary, k, rows.clone());
            }
            (Some(rotary), None) => {
                q = rotary.apply(q, context.offset);
                k = rotary.apply(k, context.offset);
            }
            (None, _) => {}
        }
        let attended = match self.variant(context) {
            Variant::Structured(mask) => self.structured(q, k, v, mask, cache),
            Variant::Dense => {
                let scores = self.scores((q, k, v), context, None, cache);
                self.softmax_values(scores.biased(context.bias.as_ref()), &scores.values)
            }
            Variant::Hierarchical(plan) => {
                let scores = self.scores((q, k, v), context, Some(plan), cache);
                self.hierarchical(scores.biased(context.bias.as_ref()), &scores)
            }
            Variant::MultiScale { mix, plan } => {
                let scores = self.scores((q, k, v), context, plan, cache);
                self.multi_scale(mix, &scores, context)
            }
        };
        project(&self.output, attended.swap_dims(1, 2).reshape([b, t, d]))
    }
}
