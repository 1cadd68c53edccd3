//! The transformer's configuration, its presets and validation.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, invalid};
use crate::musical::MusicalPositionConfig;

/// How a decoding copy of a model stores its projection weights (attention, feed-forward,
/// output head); embeddings, norms and biases stay f32, and so do the activations.
///
/// A CPU decoding step is bound by reading the weights, so fewer bytes decode faster; the
/// kernels widen each weight as they read it and accumulate in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightFormat {
    /// Full precision (the trained weights as they are).
    #[default]
    F32,
    /// IEEE half precision: half the bytes.
    F16,
    /// Symmetric int8 with an f32 scale per run of 32 output columns of each weight row (a
    /// quarter of the bytes plus an eighth for scales); a projection whose width is not a
    /// multiple of 32 (a vocabulary-sized head) is stored in f16.
    Int8,
}

impl std::str::FromStr for WeightFormat {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "int8" => Ok(Self::Int8),
            other => Err(invalid(
                "weights",
                format!("`{other}`: expected f32, f16 or int8"),
            )),
        }
    }
}

impl std::fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Int8 => "int8",
        })
    }
}

/// How token positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionEncoding {
    /// Fixed sinusoids added to the embeddings (Vaswani et al., 2017).
    Sinusoidal,
    /// A learned embedding per position, added to the token embeddings.
    Learned,
    /// Rotary embeddings applied to queries and keys in every layer (Su et al., RoFormer,
    /// 2021): relative by construction, and usable beyond `max_seq_len` up to
    /// `max_positions`.
    Rotary,
    /// Learned per-head embeddings of the distance between query and key added to the
    /// attention scores (Shaw et al., 2018), computed with the Music Transformer's
    /// memory-efficient skewing (Huang et al., 2018). Relative by construction; distances
    /// from [`TransformerConfig::max_relative`] on share one embedding, so it works beyond
    /// `max_seq_len` up to `max_positions`.
    Relative,
}

/// Which keys a query may attend to (always causal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AttentionKind {
    /// Every earlier position and itself.
    Full,
    /// The `window` most recent positions including itself (local attention). The KV
    /// cache keeps only `window` entries per layer, so memory stays O(window).
    Sliding {
        /// Number of positions each query sees (≥ 1).
        window: usize,
    },
    /// Local attention over the `window` most recent positions plus strided global summary
    /// tokens: the mean key and value of every complete `block` of positions that ends before
    /// the query's window, all in one softmax (in the spirit of the Hierarchical Transformer
    /// and Longformer's global tokens, with pooled summaries). The cache keeps a ring of
    /// `window` entries plus one summary per block: one step costs O(window + length/block).
    /// Needs sinusoidal, learned or rotary positions (a summary has no single distance).
    Hierarchical {
        /// Number of recent positions each query sees in full (≥ 1).
        window: usize,
        /// Positions per summary token (≥ 1).
        block: usize,
    },
    /// A learned per-head mix (softmax weights, starting equal) of full causal attention,
    /// sliding-window attention over `window` and hierarchical attention (`window` + `block`
    /// summaries), sharing one set of projections. The cache holds every position (for the
    /// full scale) plus the summaries.
    MultiScale {
        /// The local scale's window (≥ 1).
        window: usize,
        /// The hierarchical scale's summary block (≥ 1).
        block: usize,
    },
}

/// The feed-forward part of each block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedForward {
    /// `down(gelu(up(x)))`.
    Gelu,
    /// `down(silu(gate(x)) ⊙ up(x))` (Shazeer, "GLU Variants Improve Transformer", 2020).
    SwiGlu,
}

/// A decoder-only transformer language model over token ids.
///
/// Blocks are pre-norm (`x + attn(norm(x))`, `x + ff(norm(x))`) with dropout on both
/// residual branches, as in GPT-2 and the Music Transformer reimplementations.
///
/// ```
/// use aurl_model::TransformerConfig;
/// let c = TransformerConfig::small(431);
/// assert_eq!((c.d_model, c.n_layers, c.n_heads, c.d_ff), (256, 4, 4, 1024));
/// c.validate()?;
/// # Ok::<(), aurl_model::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// Number of token ids (the vocabulary's length).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of blocks.
    pub n_layers: usize,
    /// Attention heads per block (`d_model` must be a multiple).
    pub n_heads: usize,
    /// Hidden width of the feed-forward part.
    pub d_ff: usize,
    /// Training context length.
    pub max_seq_len: usize,
    /// Positions the encoding covers (≥ `max_seq_len`); generation with a KV cache may go
    /// this far (with rotary positions and sliding attention, arbitrarily long pieces only
    /// need this large enough for the whole piece).
    #[serde(default)]
    pub max_positions: usize,
    /// Dropout probability on embeddings, attention weights and residual branches.
    #[serde(default)]
    pub dropout: f64,
    /// Dropout on the attention weights alone, when it should differ from `dropout`
    /// (`None`: `dropout`). Those weights are `[batch, heads, t, t]`: their dropout masks
    /// are most of the random numbers a training step draws — on CPU, Burn draws them one
    /// at a time, ≈ 15% of a `small()` B8×512 step — so `Some(0.0)` trains faster, as
    /// many recent models do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_dropout: Option<f64>,
    /// How positions are encoded.
    pub positions: PositionEncoding,
    /// With [`PositionEncoding::Relative`]: distances `0..max_relative` have their own
    /// embedding, farther keys share the last one (`None`: `max_seq_len`; `0` in a file).
    #[serde(default, with = "crate::zero_is_none")]
    pub max_relative: Option<usize>,
    /// Which keys each query attends to.
    pub attention: AttentionKind,
    /// The feed-forward variant.
    pub feed_forward: FeedForward,
    /// Musical positions (bar, beat and step embeddings read off the token stream, added on
    /// top of `positions`); `None` = off. Build with
    /// [`MusicalPositionConfig::from_vocabulary`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub musical_positions: Option<MusicalPositionConfig>,
}

impl TransformerConfig {
    /// For tests: 2 layers of width 32, 2 heads, context 64; trains in seconds on CPU.
    #[must_use]
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            d_model: 32,
            n_layers: 2,
            n_heads: 2,
            d_ff: 64,
            max_seq_len: 64,
            max_positions: 256,
            dropout: 0.0,
            positions: PositionEncoding::Sinusoidal,
            max_relative: None,
            attention: AttentionKind::Full,
            feed_forward: FeedForward::Gelu,
            musical_positions: None,
            attention_dropout: None,
        }
    }

    /// Our CPU benchmark shape: d_model 256, 4 layers, 4 heads, feed-forward 1024, context
    /// 512 (≈ 3.4 M parameters plus embeddings and head for a ~430-token vocabulary).
    #[must_use]
    pub fn small(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            d_model: 256,
            n_layers: 4,
            n_heads: 4,
            d_ff: 1024,
            max_seq_len: 512,
            max_positions: 8192,
            dropout: 0.1,
            positions: PositionEncoding::Sinusoidal,
            max_relative: None,
            attention: AttentionKind::Full,
            feed_forward: FeedForward::Gelu,
            musical_positions: None,
            attention_dropout: None,
        }
    }

    /// A GPU-sized model: d_model 512, 8 layers, 8 heads, feed-forward 2048, context 1024,
    /// rotary positions.
    #[must_use]
    pub fn base(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            d_model: 512,
            n_layers: 8,
            n_heads: 8,
            d_ff: 2048,
            max_seq_len: 1024,
            max_positions: 8192,
            dropout: 0.1,
            positions: PositionEncoding::Rotary,
            max_relative: None,
            attention: AttentionKind::Full,
            feed_forward: FeedForward::Gelu,
            musical_positions: None,
            attention_dropout: None,
        }
    }

    /// The Music Transformer (Huang et al., "Music Transformer: Generating Music with
    /// Long-Term Structure", ICLR 2019): relative attention with the skewing algorithm,
    /// maximum relative distance 1024, a 6-layer decoder with 8 heads over 2048-token
    /// training crops; width 512 and feed-forward 2048 as in the Transformer base that
    /// implementation starts from (Vaswani et al., 2017), dropout 0.1. About 22 M parameters
    /// (3.1 M of them relative embeddings) plus token embeddings and head: a GPU model.
    #[must_use]
    pub fn music_transformer(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            d_model: 512,
            n_layers: 6,
            n_heads: 8,
            d_ff: 2048,
            max_seq_len: 2048,
            max_positions: 8192,
            dropout: 0.1,
            positions: PositionEncoding::Relative,
            max_relative: Some(1024),
            attention: AttentionKind::Full,
            feed_forward: FeedForward::Gelu,
            musical_positions: None,
            attention_dropout: None,
        }
    }

    /// The relative-distance table size the attention layers use, if positions are relative.
    #[must_use]
    pub fn relative_distance(&self) -> Option<usize> {
        let distance = self.max_relative.unwrap_or(self.max_seq_len);
        (self.positions == PositionEncoding::Relative).then_some(distance)
    }

    /// Positions the encoding covers (`max_positions`, or `max_seq_len` when unset).
    #[must_use]
    pub fn position_capacity(&self) -> usize {
        self.max_positions.max(self.max_seq_len)
    }

    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.vocab_size < 2 || self.vocab_size > 1 << 20 {
            return Err(invalid("vocab_size", "must be in 2..=1048576"));
        }
        for (field, v) in [
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("d_ff", self.d_ff),
            ("max_seq_len", self.max_seq_len),
        ] {
            if v == 0 {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(invalid(
                "n_heads",
                format!(
                    "d_model {} is not a multiple of {}",
                    self.d_model, self.n_heads
                ),
            ));
        }
        let d_head = self.d_model / self.n_heads;
        if self.positions == PositionEncoding::Rotary && !d_head.is_multiple_of(2) {
            return Err(invalid(
                "positions",
                format!("rotary positions need an even head width (got {d_head})"),
            ));
        }
        if self.positions == PositionEncoding::Sinusoidal && !self.d_model.is_multiple_of(2) {
            return Err(invalid(
                "d_model",
                "sinusoidal positions need an even width",
            ));
        }
        if self.max_relative == Some(0) {
            return Err(invalid(
                "max_relative",
                "must be at least 1 (None, or 0 in a file: max_seq_len)",
            ));
        }
        if self.max_positions != 0 && self.max_positions < self.max_seq_len {
            return Err(invalid("max_positions", "must be at least max_seq_len"));
        }
        if !self.dropout.is_finite() || !(0.0..1.0).contains(&self.dropout) {
            return Err(invalid("dropout", "must be in [0, 1)"));
        }
        if let Some(p) = self.attention_dropout
            && (!p.is_finite() || !(0.0..1.0).contains(&p))
        {
            return Err(invalid("attention_dropout", "must be in [0, 1)"));
        }
        match self.attention {
            AttentionKind::Sliding { window: 0 }
            | AttentionKind::Hierarchical { window: 0, .. }
            | AttentionKind::MultiScale { window: 0, .. } => {
                return Err(invalid("attention.window", "must be at least 1"));
            }
            AttentionKind::Hierarchical { block: 0, .. }
            | AttentionKind::MultiScale { block: 0, .. } => {
                return Err(invalid("attention.block", "must be at least 1"));
            }
            _ => {}
        }
        if self.summary_block().is_some() && self.positions == PositionEncoding::Relative {
            return Err(invalid(
                "attention",
                "block summaries have no single distance to a query: use sinusoidal, learned \
                 or rotary positions with hierarchical or multi-scale attention",
            ));
        }
        if let Some(m) = &self.musical_positions {
            m.validate()?;
            let ids = m
                .bar_ids
                .iter()
                .chain(m.position_ids.iter().map(|(id, _)| id));
            if ids.into_iter().any(|&id| id as usize >= self.vocab_size) {
                return Err(invalid(
                    "musical_positions",
                    "names ids outside the vocabulary (built from another one?)",
                ));
            }
        }
        Ok(())
    }

    /// The local window the KV cache keeps as a ring and that masks the attended keys
    /// (sliding and hierarchical attention); `None` = every earlier position is kept.
    #[must_use]
    pub fn window(&self) -> Option<usize> {
        match self.attention {
            AttentionKind::Full | AttentionKind::MultiScale { .. } => None,
            AttentionKind::Sliding { window } | AttentionKind::Hierarchical { window, .. } => {
                Some(window)
            }
        }
    }

    /// Positions per summary token of hierarchical and multi-scale attention.
    #[must_use]
    pub fn summary_block(&self) -> Option<usize> {
        match self.attention {
            AttentionKind::Hierarchical { block, .. } | AttentionKind::MultiScale { block, .. } => {
                Some(block)
            }
            _ => None,
        }
    }
}
