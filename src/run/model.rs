//! The `[model]` table of a run config: a preset with overrides, the mode (transformer, VAE,
//! VAE-GAN) and the sections of the latent side and the discriminator.

use serde::{Deserialize, Serialize};

use crate::core::tokenize::Vocabulary;
use crate::model::loss::{FreeBits, KlSchedule};
use crate::model::vae::{PriorKind, VaeConfig, VaeLossConfig};
use crate::model::{
    AttentionKind, DiscriminatorConfig, FeedForward, GanLossConfig, ModelError,
    MusicalPositionConfig, PositionEncoding, TransformerConfig, VaeGanConfig,
};

/// A named model size ([`TransformerConfig::tiny`], `small`, `base`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Trains in seconds on CPU.
    Tiny,
    /// The CPU benchmark shape.
    Small,
    /// GPU-sized.
    Base,
    /// [`TransformerConfig::music_transformer`]: relative attention, 2048-token context.
    MusicTransformer,
}

/// Which kind of model a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModelMode {
    /// A decoder-only language model.
    #[default]
    Transformer,
    /// A VAE whose decoder is the transformer the preset and overrides describe
    /// (see `[model.vae]`).
    Vae,
    /// That VAE with a multi-scale discriminator (`[model.discriminator]`, `[model.gan]`;
    /// its optimizer and D:G ratio are `[train.discriminator]`).
    VaeGan,
}

/// The latent side of a VAE run (`[model.vae]`); the decoder is the `[model]` transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeSection {
    /// Encoder blocks (0 = as many as the decoder).
    pub encoder_layers: usize,
    /// Width of the global code.
    pub z_dim: usize,
    /// Segments of a window with their own conditioning (0 = none).
    pub segments: usize,
    /// Width of the per-segment local codes (0 = none).
    pub local_z_dim: usize,
    /// Prior of the global code.
    pub prior: PriorKind,
    /// Free bits and the β schedule.
    pub loss: VaeLossConfig,
}

impl Default for VaeSection {
    /// z 64, 4 segments with local codes of 16, a Gaussian prior, 32 free bits per window
    /// and β rising linearly to 0.2 over 1,000 steps.
    fn default() -> Self {
        Self {
            encoder_layers: 0,
            z_dim: 64,
            segments: 4,
            local_z_dim: 16,
            prior: PriorKind::Gaussian,
            loss: VaeLossConfig {
                free_bits: FreeBits::Total { bits: 32.0 },
                kl: KlSchedule::Linear {
                    beta: 0.2,
                    steps: 1000,
                },
                kl_start: 0,
            },
        }
    }
}

/// The model: a preset, with any field overridden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// What is trained: a transformer language model or a VAE.
    pub mode: ModelMode,
    /// The VAE's latent side (used when `mode = "vae"` or `"vae_gan"`).
    pub vae: VaeSection,
    /// The discriminator's shape (used when `mode = "vae_gan"`).
    pub discriminator: DiscriminatorConfig,
    /// The adversarial terms and when they start (used when `mode = "vae_gan"`).
    pub gan: GanLossConfig,
    /// Starting point.
    pub preset: Preset,
    /// Width of the residual stream.
    pub d_model: Option<usize>,
    /// Number of blocks.
    pub n_layers: Option<usize>,
    /// Attention heads.
    pub n_heads: Option<usize>,
    /// Feed-forward width.
    pub d_ff: Option<usize>,
    /// Training context (window length).
    pub max_seq_len: Option<usize>,
    /// Positions usable when generating.
    pub max_positions: Option<usize>,
    /// Dropout.
    pub dropout: Option<f64>,
    /// Dropout on the attention weights alone (default: `dropout`); 0 trains faster.
    pub attention_dropout: Option<f64>,
    /// Position encoding.
    pub positions: Option<PositionEncoding>,
    /// Relative positions: distances with their own embedding.
    pub max_relative: Option<usize>,
    /// Attention variant.
    pub attention: Option<AttentionKind>,
    /// Feed-forward variant.
    pub feed_forward: Option<FeedForward>,
    /// Musical positions (bar, beat and step embeddings read off the tokens; schemes with
    /// Bar and Position tokens, i.e. REMI): the number of bars with their own embedding.
    /// Off when absent.
    pub musical_positions: Option<usize>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            mode: ModelMode::Transformer,
            vae: VaeSection::default(),
            discriminator: DiscriminatorConfig::default(),
            gan: GanLossConfig::default(),
            preset: Preset::Tiny,
            d_model: None,
            n_layers: None,
            n_heads: None,
            d_ff: None,
            max_seq_len: None,
            max_positions: None,
            dropout: None,
            attention_dropout: None,
            positions: None,
            max_relative: None,
            attention: None,
            feed_forward: None,
            musical_positions: None,
        }
    }
}

impl ModelConfig {
    /// The full model configuration for `vocabulary`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for musical positions over a vocabulary without bars.
    pub fn resolve(&self, vocabulary: &Vocabulary) -> Result<TransformerConfig, ModelError> {
        let mut c = self.shape(vocabulary.len());
        c.musical_positions = self
            .musical_positions
            .map(|bars| MusicalPositionConfig::from_vocabulary(vocabulary, bars))
            .transpose()?;
        Ok(c)
    }

    /// The training context (window length) the config asks for.
    #[must_use]
    pub fn seq_len(&self) -> usize {
        self.shape(1).max_seq_len
    }

    /// The preset with every override applied, for `vocab_size` ids.
    fn shape(&self, vocab_size: usize) -> TransformerConfig {
        let mut c = match self.preset {
            Preset::Tiny => TransformerConfig::tiny(vocab_size),
            Preset::Small => TransformerConfig::small(vocab_size),
            Preset::Base => TransformerConfig::base(vocab_size),
            Preset::MusicTransformer => TransformerConfig::music_transformer(vocab_size),
        };
        c.d_model = self.d_model.unwrap_or(c.d_model);
        c.n_layers = self.n_layers.unwrap_or(c.n_layers);
        c.n_heads = self.n_heads.unwrap_or(c.n_heads);
        c.d_ff = self.d_ff.unwrap_or(c.d_ff);
        c.max_seq_len = self.max_seq_len.unwrap_or(c.max_seq_len);
        c.max_positions = self.max_positions.unwrap_or(c.max_positions);
        c.dropout = self.dropout.unwrap_or(c.dropout);
        c.attention_dropout = self.attention_dropout.or(c.attention_dropout);
        c.positions = self.positions.unwrap_or(c.positions);
        // 0 (in a file or `--set`) means the model's context, as in `TransformerConfig`.
        if let Some(distance) = self.max_relative {
            c.max_relative = (distance > 0).then_some(distance);
        }
        c.attention = self.attention.unwrap_or(c.attention);
        c.feed_forward = self.feed_forward.unwrap_or(c.feed_forward);
        c
    }

    /// The VAE configuration for `vocabulary`: the resolved transformer as decoder, and
    /// `[model.vae]`.
    ///
    /// # Errors
    /// As [`ModelConfig::resolve`].
    pub fn resolve_vae(&self, vocabulary: &Vocabulary) -> Result<VaeConfig, ModelError> {
        let v = &self.vae;
        Ok(VaeConfig {
            decoder: self.resolve(vocabulary)?,
            encoder_layers: v.encoder_layers,
            z_dim: v.z_dim,
            segments: v.segments,
            local_z_dim: v.local_z_dim,
            prior: v.prior,
            loss: v.loss,
        })
    }

    /// The VAE-GAN configuration: [`ModelConfig::resolve_vae`], `[model.discriminator]` and
    /// `[model.gan]`.
    ///
    /// # Errors
    /// As [`ModelConfig::resolve`].
    pub fn resolve_vae_gan(&self, vocabulary: &Vocabulary) -> Result<VaeGanConfig, ModelError> {
        Ok(VaeGanConfig {
            vae: self.resolve_vae(vocabulary)?,
            discriminator: self.discriminator.clone(),
            gan: self.gan,
        })
    }
}
