//! A transformer VAE over token sequences: a bidirectional encoder pools a window into a
//! global latent code (and, hierarchically, one local code per segment); the decoder is the
//! causal [`Transformer`] with the codes added to its input embeddings at every position.
//!
//! Conditioning per position `p` of segment `s(p)`:
//! `W_g·z + conductor(z)[s(p)] + W_l·z_local[s(p)]`, where the conductor (a learned
//! per-segment projection of `z`, standing in for MusicVAE's conductor RNN) exists when the
//! window has segments, and the local codes when `local_z_dim > 0`. Segments are equal spans
//! of the training window (`max_seq_len / segments` positions), so training and generation
//! agree on them without reading bar lines.
//!
//! ```
//! use aurl_model::vae::{LatentRng, VaeConfig, VaeLossConfig};
//! use aurl_model::loss::TokenLoss;
//! use burn::prelude::*;
//!
//! let device = Device::flex();
//! let vae = VaeConfig::tiny(40).init(&device)?;
//! let ids = Tensor::<2, Int>::from_data(TensorData::new((1..=9i64).collect(), [1, 9]), &device);
//! let (inputs, targets) = (ids.clone().narrow(1, 0, 8), ids.narrow(1, 1, 8));
//! let padding = Tensor::<2, Bool>::empty([1, 8], &device).equal_elem(true); // nothing padded
//! let mut rng = LatentRng::new(7);
//! let loss = vae.loss(inputs, targets, padding, &TokenLoss::new(40), &VaeLossConfig::default(), 0, &mut rng)?;
//! assert!(loss.total.into_scalar::<f32>().is_finite());
//! # Ok::<(), aurl_model::ModelError>(())
//! ```

mod encoder;
mod latent;
mod prior;

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use encoder::SequenceEncoder;
pub use latent::{Latent, LatentRng, Posterior, attribute_vector, interpolate, slerp};
pub use prior::{MixturePrior, PriorKind};

use crate::config::TransformerConfig;
use crate::error::{ModelError, invalid};
use crate::kv_cache::KvCache;
use crate::loss::{FreeBits, KlSchedule, TokenLoss, gaussian_kl};
use crate::transformer::Transformer;
use encoder::{masked_mean, segment_means, segment_of};

/// A VAE: the decoder's shape plus the latent space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// The decoder (and the encoder's width, heads and feed-forward).
    pub decoder: TransformerConfig,
    /// Encoder blocks (0 = as many as the decoder).
    #[serde(default)]
    pub encoder_layers: usize,
    /// Width of the global code.
    pub z_dim: usize,
    /// Segments of a window, each with its own conditioning (0 = none).
    #[serde(default)]
    pub segments: usize,
    /// Width of the per-segment local codes (0 = none; needs `segments`).
    #[serde(default)]
    pub local_z_dim: usize,
    /// The global code's prior.
    #[serde(default)]
    pub prior: PriorKind,
    /// How training weighs the KL term (free bits, β schedule).
    #[serde(default)]
    pub loss: VaeLossConfig,
}

impl VaeConfig {
    /// For tests: the tiny decoder, one encoder block, z 16, 4 segments with local codes of 8.
    #[must_use]
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            decoder: TransformerConfig::tiny(vocab_size),
            encoder_layers: 1,
            z_dim: 16,
            segments: 4,
            local_z_dim: 8,
            prior: PriorKind::Gaussian,
            loss: VaeLossConfig::default(),
        }
    }

    /// The numbers of MusicVAE's hierarchical 16-bar model (Roberts et al., "A Hierarchical
    /// Latent Vector Model for Learning Long-Term Structure in Music", ICML 2018, and
    /// Magenta's `hierdec-mel_16bar` config): a 512-wide latent, a 16 × 16 hierarchy
    /// (16 segments of 16 steps: the conductor emits one embedding per bar), free bits 256
    /// and β 0.2 ([`VaeLossConfig::musicvae`]). The LSTMs become transformers here
    /// (d_model 512, 4 blocks each side, 8 heads, feed-forward 2048) over 256-token windows.
    #[must_use]
    pub fn musicvae_hierdec(vocab_size: usize) -> Self {
        Self {
            decoder: TransformerConfig {
                d_model: 512,
                n_layers: 4,
                n_heads: 8,
                d_ff: 2048,
                max_seq_len: 256,
                max_positions: 256,
                dropout: 0.1,
                ..TransformerConfig::small(vocab_size)
            },
            encoder_layers: 4,
            z_dim: 512,
            segments: 16,
            local_z_dim: 0,
            prior: PriorKind::Gaussian,
            loss: VaeLossConfig::musicvae(),
        }
    }

    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), ModelError> {
        self.decoder.validate()?;
        if self.z_dim == 0 {
            return Err(invalid("z_dim", "must be at least 1"));
        }
        if self.local_z_dim > 0 && self.segments == 0 {
            return Err(invalid("local_z_dim", "local codes need segments > 0"));
        }
        if self.segments > self.decoder.max_seq_len {
            return Err(invalid("segments", "at most one segment per position"));
        }
        if let PriorKind::Mixture { components: 0 } = self.prior {
            return Err(invalid("prior.components", "must be at least 1"));
        }
        self.loss.free_bits.validate()?;
        self.loss.kl.validate()
    }

    /// Builds the model on `device`, every weight drawn now (see [`TransformerConfig::init`]).
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the bad field.
    pub fn init(&self, device: &Device) -> Result<Vae, ModelError> {
        self.validate()?;
        let d = self.decoder.d_model;
        let layers = if self.encoder_layers == 0 {
            self.decoder.n_layers
        } else {
            self.encoder_layers
        };
        let local = self.local_z_dim > 0;
        Ok(crate::eager::eager(Vae {
            encoder: SequenceEncoder::new(&self.decoder, layers, device),
            to_global: LinearConfig::new(d, 2 * self.z_dim).init(device),
            to_local: local.then(|| LinearConfig::new(d, 2 * self.local_z_dim).init(device)),
            from_global: LinearConfig::new(self.z_dim, d).init(device),
            conductor: (self.segments > 0)
                .then(|| LinearConfig::new(self.z_dim, self.segments * d).init(device)),
            from_local: local.then(|| LinearConfig::new(self.local_z_dim, d).init(device)),
            mixture: match self.prior {
                PriorKind::Gaussian => None,
                PriorKind::Mixture { components } => {
                    Some(MixturePrior::new(components, self.z_dim, device))
                }
            },
            decoder: self.decoder.init(device)?,
            segments: self.segments,
            frame: self.decoder.max_seq_len,
            z_dim: self.z_dim,
            local_z_dim: self.local_z_dim,
            loss: self.loss,
        }))
    }
}

/// How the VAE's loss weighs the KL term.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct VaeLossConfig {
    /// KL budget spent for free.
    pub free_bits: FreeBits,
    /// β over the training steps.
    pub kl: KlSchedule,
    /// Steps of reconstruction alone before the KL stage: β is 0 before this step, and the
    /// schedule starts from its own step 0 at it (stage one of a VAE-GAN's training).
    pub kl_start: u64,
}

impl VaeLossConfig {
    /// MusicVAE's: 256 free bits per example, β rising to 0.2 as `0.2·(1 − 0.99999^step)`.
    #[must_use]
    pub fn musicvae() -> Self {
        Self {
            free_bits: FreeBits::Total { bits: 256.0 },
            kl: KlSchedule::Exponential {
                beta: 0.2,
                rate: 0.99999,
            },
            kl_start: 0,
        }
    }

    /// β at training step `step`: 0 during the reconstruction warm-up, then the schedule.
    ///
    /// ```
    /// use aurl_model::loss::KlSchedule;
    /// use aurl_model::vae::VaeLossConfig;
    /// let c = VaeLossConfig {
    ///     kl: KlSchedule::Linear { beta: 1.0, steps: 10 },
    ///     kl_start: 100,
    ///     ..VaeLossConfig::default()
    /// };
    /// assert_eq!(c.beta(99), 0.0);
    /// assert_eq!(c.beta(105), 0.5);
    /// ```
    #[must_use]
    pub fn beta(&self, step: u64) -> f64 {
        step.checked_sub(self.kl_start)
            .map_or(0.0, |s| self.kl.beta(s))
    }
}

/// One training step's loss, with its parts for logging.
#[derive(Debug, Clone)]
pub struct VaeLoss {
    /// What to minimise: reconstruction NLL per example + β · KL penalty per example.
    pub total: Tensor<1>,
    /// Reconstruction NLL per counted token (nats).
    pub reconstruction: Tensor<1>,
    /// KL per example before free bits (nats).
    pub kl: Tensor<1>,
    /// β at this step.
    pub beta: f64,
    /// The decoder's logits `[b, t, vocab]`.
    pub logits: Tensor<3>,
}

/// The VAE: [`SequenceEncoder`] → posterior → codes → conditioned [`Transformer`].
#[derive(Module, Debug)]
pub struct Vae {
    encoder: SequenceEncoder,
    to_global: Linear,
    to_local: Option<Linear>,
    from_global: Linear,
    conductor: Option<Linear>,
    from_local: Option<Linear>,
    mixture: Option<MixturePrior>,
    decoder: Transformer,
    segments: usize,
    frame: usize,
    z_dim: usize,
    local_z_dim: usize,
    #[module(skip)]
    loss: VaeLossConfig,
}

impl Vae {
    /// The conditioned decoder (for generation loops).
    #[must_use]
    pub fn decoder(&self) -> &Transformer {
        &self.decoder
    }

    /// Width of the global code.
    #[must_use]
    pub fn z_dim(&self) -> usize {
        self.z_dim
    }

    /// How training weighs the KL term.
    #[must_use]
    pub fn loss_config(&self) -> VaeLossConfig {
        self.loss
    }

    /// An empty KV cache for the decoder.
    #[must_use]
    pub fn new_cache(&self, batch: usize) -> KvCache {
        self.decoder.new_cache(batch)
    }

    /// The posterior `q(z | tokens)`; `padding` `[b, t]` is `true` at padded positions.
    #[must_use]
    pub fn encode(&self, tokens: Tensor<2, Int>, padding: Tensor<2, Bool>) -> Posterior {
        let keep = padding.clone().bool_not().float();
        let states = self.encoder.forward(tokens, padding);
        let pooled = masked_mean(states.clone(), keep.clone());
        let (mean, log_var) = halves2(self.to_global.forward(pooled), self.z_dim);
        let local = self.to_local.as_ref().map(|to_local| {
            let per_segment = segment_means(states, keep, self.frame, self.segments);
            let [b, s, _] = per_segment.dims();
            let stats = to_local.forward(per_segment);
            let mean = stats.clone().narrow(2, 0, self.local_z_dim);
            let log_var = stats.narrow(2, self.local_z_dim, self.local_z_dim);
            (
                mean.reshape([b, s, self.local_z_dim]),
                log_var.reshape([b, s, self.local_z_dim]),
            )
        });
        Posterior {
            mean,
            log_var,
            local,
        }
    }

    /// The most likely code of one piece (the posterior's mean), as a host vector (the
    /// layout of [`Latent::to_rows`]): what interpolation between two pieces starts from.
    /// `ids` are framed (BOS first) and at most the encoder's length.
    #[must_use]
    pub fn code_of(&self, ids: &[u16], device: &Device) -> Vec<f32> {
        let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        let n = ids.len();
        let tokens = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), device);
        let padding = tokens.clone().equal_elem(-1);
        self.encode(tokens, padding)
            .mode()
            .to_rows()
            .pop()
            .unwrap_or_default()
    }

    /// Length of a code as one host vector: the global code, then every local one.
    #[must_use]
    pub fn code_len(&self) -> usize {
        self.z_dim + self.segments * self.local_z_dim
    }

    /// Codes from host vectors laid out as [`Latent::to_rows`] gives them.
    ///
    /// # Errors
    /// [`ModelError::Shape`] if there are no rows or a row is not [`Vae::code_len`] long.
    pub fn latent_from_rows(&self, rows: &[&[f32]], device: &Device) -> Result<Latent, ModelError> {
        let n = self.code_len();
        if rows.is_empty() || rows.iter().any(|r| r.len() != n) {
            return Err(ModelError::Shape(format!(
                "latent codes of {:?} values for a model whose codes have {n}",
                rows.iter().map(|r| r.len()).collect::<Vec<_>>()
            )));
        }
        let b = rows.len();
        let flat: Vec<f32> = rows.concat();
        let all = Tensor::<1>::from_data(TensorData::new(flat, [b * n]), device).reshape([b, n]);
        let global = all.clone().narrow(1, 0, self.z_dim);
        let local = (self.local_z_dim > 0).then(|| {
            all.narrow(1, self.z_dim, n - self.z_dim)
                .reshape([b, self.segments, self.local_z_dim])
        });
        Ok(Latent { global, local })
    }

    /// Codes drawn from the prior, `batch` of them.
    #[must_use]
    pub fn sample_prior(&self, batch: usize, rng: &mut LatentRng, device: &Device) -> Latent {
        let global = match &self.mixture {
            Some(m) => m.sample(batch, rng),
            None => rng.normal([batch, self.z_dim], device),
        };
        let local = (self.local_z_dim > 0).then(|| {
            rng.normal([batch, self.segments * self.local_z_dim], device)
                .reshape([batch, self.segments, self.local_z_dim])
        });
        Latent { global, local }
    }

    /// The decoder's input offsets `[b, t, d_model]` for positions `offset..offset + t`.
    #[must_use]
    pub fn condition(&self, latent: &Latent, offset: usize, t: usize) -> Tensor<3> {
        let b = latent.batch();
        let d = self.decoder.d_model();
        let global = self.from_global.forward(latent.global.clone());
        let mut per_segment: Option<Tensor<3>> = self.conductor.as_ref().map(|c| {
            c.forward(latent.global.clone())
                .reshape([b, self.segments, d])
        });
        if let (Some(from_local), Some(local)) = (&self.from_local, &latent.local) {
            let l = from_local.forward(local.clone());
            per_segment = Some(match per_segment {
                Some(p) => p + l,
                None => l,
            });
        }
        let global = global.reshape([b, 1, d]);
        match per_segment {
            None => global,
            Some(per_segment) => {
                let device = latent.global.device();
                let index: Vec<i64> = (offset..offset + t)
                    .map(|p| segment_of(p, self.frame, self.segments) as i64)
                    .collect();
                let index = Tensor::<1, Int>::from_data(TensorData::new(index, [t]), &device);
                per_segment.select(1, index) + global
            }
        }
    }

    /// Teacher-forced decoder logits `[b, t, vocab]` for `tokens` given `latent`.
    ///
    /// # Errors
    /// As [`Transformer::forward_padded`].
    pub fn decode(
        &self,
        tokens: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
        latent: &Latent,
    ) -> Result<Tensor<3>, ModelError> {
        let t = tokens.dims()[1];
        let condition = self.condition(latent, 0, t);
        self.decoder
            .forward_padded_conditioned(tokens, padding, Some(condition))
    }

    /// One cached decoding call at `offset` given `latent` (see [`Transformer::forward`]).
    ///
    /// # Errors
    /// As [`Transformer::forward_conditioned`].
    pub fn decode_step(
        &self,
        tokens: Tensor<2, Int>,
        offset: usize,
        cache: &mut KvCache,
        latent: &Latent,
    ) -> Result<Tensor<3>, ModelError> {
        let t = tokens.dims()[1];
        let condition = self.condition(latent, offset, t);
        self.decoder
            .forward_conditioned(tokens, offset, Some(cache), Some(condition))
    }

    /// The KL term per example and dimension `[b, dims]` of `posterior` with sample `latent`
    /// (the global code's dimensions, then every local one; a mixture prior's global part
    /// is one sampled column).
    #[must_use]
    pub fn kl(&self, posterior: &Posterior, latent: &Latent) -> Tensor<2> {
        let global = prior::global_kl(
            self.mixture.as_ref(),
            latent.global.clone(),
            posterior.mean.clone(),
            posterior.log_var.clone(),
        );
        match &posterior.local {
            None => global,
            Some((mean, log_var)) => {
                let [b, s, z] = mean.dims();
                let local = gaussian_kl(
                    mean.clone().reshape([b, s * z]),
                    log_var.clone().reshape([b, s * z]),
                );
                Tensor::cat(vec![global, local], 1)
            }
        }
    }

    /// The training loss on `inputs` → `targets` (`[b, t]`; `padding` marks padded input
    /// positions): encode the inputs, sample a code, reconstruct the targets through the
    /// decoder, and add the β-weighted KL penalty (free bits applied) at `step`.
    ///
    /// # Errors
    /// As [`Vae::decode`] (inputs the decoder cannot take), and [`ModelError::Shape`] when
    /// targets or padding do not match the inputs.
    #[allow(clippy::too_many_arguments)]
    pub fn loss(
        &self,
        inputs: Tensor<2, Int>,
        targets: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
        token_loss: &TokenLoss,
        config: &VaeLossConfig,
        step: u64,
        rng: &mut LatentRng,
    ) -> Result<VaeLoss, ModelError> {
        let [b, t] = inputs.dims();
        if targets.dims() != [b, t] || padding.dims() != [b, t] {
            return Err(ModelError::Shape(format!(
                "targets {:?} and padding {:?} for inputs [{b}, {t}]",
                targets.dims(),
                padding.dims()
            )));
        }
        let posterior = self.encode(inputs.clone(), padding.clone());
        let latent = posterior.sample(rng);
        let logits = self.decode(inputs, padding, &latent)?;
        let (nll, counted) = token_loss.sums(logits.clone(), targets);
        let kl = self.kl(&posterior, &latent);
        let kl_total = kl.clone().sum_dim(1).mean().reshape([1]);
        let beta = config.beta(step);
        let total =
            nll.clone().div_scalar(b as f64) + config.free_bits.penalty(kl).mul_scalar(beta);
        Ok(VaeLoss {
            total,
            reconstruction: nll / counted.clamp_min(1.0),
            kl: kl_total,
            beta,
            logits,
        })
    }
}

/// Splits `[b, 2z]` into its halves `[b, z]`.
fn halves2(x: Tensor<2>, z: usize) -> (Tensor<2>, Tensor<2>) {
    (x.clone().narrow(1, 0, z), x.narrow(1, z, z))
}
