//! A pre-norm transformer block.

use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use crate::attention::{AttentionContext, SelfAttention, SelfAttentionConfig};
use crate::config::{AttentionKind, TransformerConfig};
use crate::feed_forward::Mlp;
use crate::kernels;
use crate::kv_cache::KvCache;

/// `x + drop(attn(norm(x)))`, then `x + drop(mlp(norm(x)))`.
#[derive(Module, Debug)]
pub struct Block {
    attention_norm: LayerNorm,
    attention: SelfAttention,
    mlp_norm: LayerNorm,
    mlp: Mlp,
    dropout: Dropout,
}

impl Block {
    /// A block shaped by `config`.
    #[must_use]
    pub fn new(config: &TransformerConfig, device: &Device) -> Self {
        Self {
            attention_norm: LayerNormConfig::new(config.d_model).init(device),
            attention: SelfAttentionConfig {
                d_model: config.d_model,
                n_heads: config.n_heads,
                dropout: config.attention_dropout.unwrap_or(config.dropout),
                relative: config.relative_distance(),
                multi_scale: matches!(config.attention, AttentionKind::MultiScale { .. }),
            }
            .init(device),
            mlp_norm: LayerNormConfig::new(config.d_model).init(device),
            mlp: Mlp::new(config.feed_forward, config.d_model, config.d_ff, device),
            dropout: DropoutConfig::new(config.dropout).init(),
        }
    }

    /// The element type of its attention's query projection weight.
    pub(crate) fn first_projection_dtype(&self) -> burn::tensor::DType {
        self.attention.query_dtype()
    }

    /// Whether its attention adds Music Transformer relative-position scores.
    pub(crate) fn has_relative_positions(&self) -> bool {
        self.attention.has_relative_positions()
    }

    pub(crate) fn forward(
        &self,
        x: Tensor<3>,
        context: &AttentionContext<'_>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let normed = kernels::layer_norm(&self.attention_norm, x.clone());
        let a = self.attention.forward(normed, context, cache);
        let x = x + kernels::dropout(&self.dropout, a);
        let m = self
            .mlp
            .forward(kernels::layer_norm(&self.mlp_norm, x.clone()));
        x + kernels::dropout(&self.dropout, m)
    }
}
