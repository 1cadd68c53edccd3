//! Causal multi-head self-attention — full, sliding-window, hierarchical (local window plus
//! block summaries) or a learned multi-scale mix of the three — with rotary or relative
//! positions and the KV cache.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig, RotaryEncoding};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::cache::{KvCache, block_means};
use crate::kernels::{self, AttentionOptions};
use crate::mask::summary_bias;
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

/// Everything an attention call needs besides its input.
pub(crate) struct AttentionContext<'a> {
    /// Absolute position of the first input token.
    pub offset: usize,
    /// Rotary encoding applied to queries and keys, if the model uses it.
    pub rotary: Option<&'a RotaryEncoding>,
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
    /// positions then run [`kernels::attention`] (fused on backends with a kernel) and
    /// `bias` is not built.
    pub structured: Option<StructuredMask>,
}

/// Which keys each query sees, for [`kernels::attention`].
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

    /// Whether this layer takes [`kernels::attention`] when the context allows it (full or
    /// sliding attention without relative positions).
    fn structured(&self, context: &AttentionContext<'_>) -> Option<StructuredMask> {
        let plain = self.relative.is_none() && self.mix.is_none() && context.summaries.is_none();
        context.structured.clone().filter(|_| plain)
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
        if let Some(rotary) = context.rotary {
            q = rotary.apply(q, context.offset);
            k = rotary.apply(k, context.offset);
        }
        if let Some(mask) = self.structured(context) {
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
            let attended = kernels::attention(q, k, v, mask.key_bias, options);
            return project(&self.output, attended.swap_dims(1, 2).reshape([b, t, d]));
        }
        let cached = cache.is_some();
        let (k, v, summaries) = match cache {
            Some((cache, layer)) => {
                let summaries = context
                    .summaries
                    .and_then(|_| cache.append_summaries(layer, k.clone(), v.clone()));
                let (k, v) = cache.append(layer, k, v);
                (k, v, summaries)
            }
            None => {
                let summaries = context.summaries.and_then(|plan| {
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
        let scores = scores.mul_scalar(scale);
        let biased = |bias: &Option<Tensor<4>>| match bias {
            Some(bias) => scores.clone() + bias.clone(),
            None => scores.clone(),
        };
        // The summaries' scores `[b, h, t, blocks]`, masked by block visibility (blocks
        // count from the cache's start, or from the input's without a cache).
        let summary_scores = summaries
            .as_ref()
            .zip(context.summaries)
            .map(|((sk, _), plan)| {
                let s = q
                    .clone()
                    .matmul(sk.clone().swap_dims(2, 3))
                    .mul_scalar(scale);
                let first = if cached { context.offset } else { 0 };
                let blocks = sk.dims()[2];
                match summary_bias(first, t, blocks, plan.block, plan.window, &s.device()) {
                    Some(bias) => s + bias,
                    None => s,
                }
            });
        let hierarchical = |local: Tensor<4>| match (&summary_scores, &summaries) {
            (Some(s), Some((_, sv))) => {
                let weights = self
                    .dropout
                    .forward(softmax(Tensor::cat(vec![local, s.clone()], 3), 3));
                weights.clone().narrow(3, 0, n).matmul(v.clone())
                    + weights.narrow(3, n, sv.dims()[2]).matmul(sv.clone())
            }
            _ => self.dropout.forward(softmax(local, 3)).matmul(v.clone()),
        };
        let attended = match (&self.mix, context.summaries) {
            // Multi-scale: full, sliding and hierarchical, mixed per head.
            (Some(mix), _) => {
                let local = biased(&context.local_bias);
                let scales = [
                    self.dropout
                        .forward(softmax(biased(&context.bias), 3))
                        .matmul(v.clone()),
                    self.dropout
                        .forward(softmax(local.clone(), 3))
                        .matmul(v.clone()),
                    hierarchical(local),
                ];
                let weights = softmax(mix.val(), 1);
                let h = self.n_heads;
                scales
                    .into_iter()
                    .enumerate()
                    .map(|(i, out)| out * weights.clone().narrow(1, i, 1).reshape([1, h, 1, 1]))
                    .reduce(|a, b| a + b)
                    .expect("three scales")
            }
            (None, Some(_)) => hierarchical(biased(&context.bias)),
            (None, None) => self
                .dropout
                .forward(softmax(biased(&context.bias), 3))
                .matmul(v.clone()),
        };
        let context = attended.swap_dims(1, 2).reshape([b, t, d]);
        project(&self.output, context)
    }
}
