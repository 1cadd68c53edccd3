//! The VAE's bidirectional encoder: token embeddings, positions, transformer blocks without a
//! causal mask (padding hidden), then masked mean pooling over the whole sequence and over
//! each segment.

use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::prelude::*;

use crate::attention::{AttentionContext, StructuredMask};
use crate::block::Block;
use crate::config::{AttentionKind, PositionEncoding, TransformerConfig};
use crate::mask::MASKED;
use crate::positions::Positions;

/// A stack of bidirectional blocks over token ids.
///
/// Shapes: tokens `[batch, t]`, padding `[batch, t]` → states `[batch, t, d_model]`.
#[derive(Module, Debug)]
pub struct SequenceEncoder {
    embedding: Embedding,
    positions: Positions,
    blocks: Vec<Block>,
    norm: LayerNorm,
}

impl SequenceEncoder {
    /// An encoder shaped like `config` with `layers` blocks. Relative positions are causal
    /// by construction (one embedding per backward distance), so a relative-position
    /// decoder gets a sinusoidal encoder; every other encoding is kept. The encoder attends
    /// to the whole sequence both ways whatever the decoder's attention kind.
    #[must_use]
    pub fn new(config: &TransformerConfig, layers: usize, device: &Device) -> Self {
        let config = TransformerConfig {
            n_layers: layers,
            positions: match config.positions {
                PositionEncoding::Relative => PositionEncoding::Sinusoidal,
                other => other,
            },
            attention: AttentionKind::Full,
            ..config.clone()
        };
        Self {
            embedding: EmbeddingConfig::new(config.vocab_size, config.d_model).init(device),
            positions: Positions::new(&config, device),
            blocks: (0..layers).map(|_| Block::new(&config, device)).collect(),
            norm: LayerNormConfig::new(config.d_model).init(device),
        }
    }

    /// Contextual states of every position; padded keys are never attended to.
    #[must_use]
    pub fn forward(&self, tokens: Tensor<2, Int>, padding: Tensor<2, Bool>) -> Tensor<3> {
        let mut x = self.positions.add(self.embedding.forward(tokens), 0);
        // Full attention without relative positions (forced in `new`): the kernel path,
        // bidirectional, padded keys hidden by their bias.
        let context = AttentionContext {
            offset: 0,
            rotary: self.positions.rotary(),
            rows: None,
            bias: None,
            ring: None,
            summaries: None,
            local_bias: None,
            structured: Some(StructuredMask {
                causal: false,
                offset: 0,
                window: None,
                key_bias: Some(padding.float().mul_scalar(MASKED)),
            }),
        };
        for block in &self.blocks {
            x = block.forward(x, &context, None);
        }
        crate::kernels::layer_norm(&self.norm, x)
    }
}

/// Mean of `states` `[b, t, d]` over the positions where `weights` `[b, t]` is 1 (0 where
/// padded): `[b, d]`. Rows with no weight give 0.
pub(crate) fn masked_mean(states: Tensor<3>, weights: Tensor<2>) -> Tensor<2> {
    let [b, t, d] = states.dims();
    let w = weights.reshape([b, t, 1]);
    let total = (states * w.clone()).sum_dim(1).reshape([b, d]);
    total / w.sum_dim(1).reshape([b, 1]).clamp_min(1.0)
}

/// Segment of every position `0..t` when a training window of `frame` positions is cut
/// into `segments` equal parts (positions past the frame stay in the last one).
pub(crate) fn segment_of(position: usize, frame: usize, segments: usize) -> usize {
    (position * segments / frame.max(1)).min(segments.saturating_sub(1))
}

/// Per-segment means `[b, segments, d]` of `states` over non-padded positions.
pub(crate) fn segment_means(
    states: Tensor<3>,
    keep: Tensor<2>,
    frame: usize,
    segments: usize,
) -> Tensor<3> {
    let [b, t, d] = states.dims();
    let device = states.device();
    // One-hot assignment [segments, t], masked per row by `keep`.
    let mut assign = vec![0.0f32; segments * t];
    for p in 0..t {
        assign[segment_of(p, frame, segments) * t + p] = 1.0;
    }
    let assign = Tensor::<1>::from_data(TensorData::new(assign, [segments * t]), &device)
        .reshape([1, segments, t]);
    let weights = assign * keep.reshape([b, 1, t]);
    let counts = weights.clone().sum_dim(2).clamp_min(1.0);
    weights.matmul(states) / counts.reshape([b, segments, 1]).expand([b, segments, d])
}
