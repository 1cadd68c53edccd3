//! Causal multi-head self-attention, full or sliding-window, with rotary or relative
//! positions and the KV cache.

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, RotaryEncoding};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::cache::KvCache;
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
}

impl SelfAttention {
    fn heads(&self, linear: &Linear, x: Tensor<3>) -> Tensor<4> {
        let [b, t, _] = x.dims();
        linear
            .forward(x)
            .reshape([b, t, self.n_heads, self.d_head])
            .swap_dims(1, 2)
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
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v),
            None => (k, v),
        };
        let scale = (self.d_head as f64).sqrt().recip();
        let n = k.dims()[2];
        let keys = k.swap_dims(2, 3);
        let scores = match &self.relative {
            None => q.matmul(keys),
            Some(relative) => {
                let by_distance = match &context.ring {
                    Some(positions) => relative.gathered(q.clone(), context.offset, positions),
                    None => relative.skewed(q.clone(), n),
                };
                q.matmul(keys) + by_distance
            }
        };
        let mut scores = scores.mul_scalar(scale);
        if let Some(bias) = &context.bias {
            scores = scores + bias.clone();
        }
        let weights = self.dropout.forward(softmax(scores, 3));
        let context = weights.matmul(v).swap_dims(1, 2).reshape([b, t, d]);
        self.output.forward(context)
    }
}
