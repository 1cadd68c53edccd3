//! The VAE-GAN (Larsen et al., "Autoencoding beyond pixels using a learned similarity
//! metric", ICML 2016, with a sequence decoder): a [`Vae`] whose reconstructions are also
//! judged by a multi-scale [`Discriminator`]. The discriminator reads the decoder's *soft*
//! tokens (softmax or Gumbel-softmax of its logits, [`soft_tokens`]), so the adversarial
//! gradient reaches the decoder without sampling.
//!
//! Training runs in stages (see [`GanLossConfig`]): reconstruction alone, then the KL term
//! (`VaeLossConfig::kl_start`), then the adversarial terms (`GanLossConfig::start`, ramped in
//! over `ramp` steps). One backward pass serves both players: the generator's loss reads a
//! copy of the discriminator whose parameters take no gradient, the discriminator's loss
//! reads the generator's output detached, and the trainer hands each player's gradients to
//! its own optimizer ([`TrainModel`](crate::train::TrainModel)).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::discriminator::{Discriminator, DiscriminatorConfig, Judgement, soft_tokens};
use crate::error::{ModelError, invalid};
use crate::loss::{AdversarialLoss, TokenLoss, feature_matching};
use crate::vae::{LatentRng, Vae, VaeConfig};

/// How the adversarial terms enter the generator's loss, and when.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GanLossConfig {
    /// The GAN objective of both players.
    pub loss: AdversarialLoss,
    /// Weight of the generator's adversarial loss (after the ramp).
    pub weight: f64,
    /// Weight of feature matching (the distance between the discriminator's mean features on
    /// real and reconstructed windows), relative to `weight`.
    pub feature_matching: f64,
    /// Weight of the discriminator's (finite-difference) R1 penalty on real data; 0 = off.
    pub r1: f64,
    /// Step at which the adversarial stage starts: the discriminator trains from here on and
    /// the generator's adversarial weight ramps up from 0.
    pub start: u64,
    /// Steps over which the generator's adversarial weight rises linearly to `weight`.
    pub ramp: u64,
    /// Temperature of the soft tokens the discriminator reads.
    pub temperature: f64,
    /// Gumbel-softmax soft tokens (samples approaching one-hot rows) instead of the plain
    /// softmax (whose smooth rows a discriminator tells from one-hot data too easily).
    pub gumbel: bool,
    /// Also judge teacher-forced decodes from codes drawn from the prior (Larsen et al.'s
    /// third term): a second decoder pass per step.
    pub prior_samples: bool,
}

impl Default for GanLossConfig {
    /// Non-saturating loss, weight 0.1, feature matching 1, no R1, from step 0 with a
    /// 100-step ramp, Gumbel-softmax at τ = 1, reconstructions only.
    fn default() -> Self {
        Self {
            loss: AdversarialLoss::NonSaturating,
            weight: 0.1,
            feature_matching: 1.0,
            r1: 0.0,
            start: 0,
            ramp: 100,
            temperature: 1.0,
            gumbel: true,
            prior_samples: false,
        }
    }
}

impl GanLossConfig {
    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), ModelError> {
        for (field, v) in [
            ("gan.weight", self.weight),
            ("gan.feature_matching", self.feature_matching),
            ("gan.r1", self.r1),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(field, "must be finite and >= 0"));
            }
        }
        if !self.temperature.is_finite() || self.temperature <= 0.0 {
            return Err(invalid("gan.temperature", "must be finite and > 0"));
        }
        Ok(())
    }

    /// Whether the adversarial stage has begun at `step` (0-based).
    #[must_use]
    pub fn active(&self, step: u64) -> bool {
        step >= self.start
    }

    /// The generator's adversarial weight at `step`: 0 before `start`, then a linear ramp to
    /// `weight` over `ramp` steps.
    ///
    /// ```
    /// use aurl_model::GanLossConfig;
    /// let c = GanLossConfig { start: 10, ramp: 4, weight: 1.0, ..GanLossConfig::default() };
    /// assert_eq!((c.weight_at(9), c.weight_at(10), c.weight_at(13), c.weight_at(99)), (0.0, 0.25, 1.0, 1.0));
    /// ```
    #[must_use]
    pub fn weight_at(&self, step: u64) -> f64 {
        match step.checked_sub(self.start) {
            None => 0.0,
            Some(_) if self.ramp == 0 => self.weight,
            Some(s) => self.weight * ((s + 1) as f64 / self.ramp as f64).min(1.0),
        }
    }
}

/// A VAE-GAN: the VAE, its discriminator and the adversarial loss settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeGanConfig {
    /// The generator.
    pub vae: VaeConfig,
    /// The critic.
    #[serde(default)]
    pub discriminator: DiscriminatorConfig,
    /// The adversarial terms and their stage.
    #[serde(default)]
    pub gan: GanLossConfig,
}

impl VaeGanConfig {
    /// [`VaeConfig::tiny`] with the default discriminator shrunk to match (for tests).
    #[must_use]
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            vae: VaeConfig::tiny(vocab_size),
            discriminator: DiscriminatorConfig {
                d_embed: 16,
                hidden: 32,
                scales: vec![4, 16, 0],
                leak: 0.2,
            },
            gan: GanLossConfig::default(),
        }
    }

    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), ModelError> {
        self.vae.validate()?;
        self.discriminator.validate()?;
        self.gan.validate()
    }

    /// Builds the model on `device`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the bad field.
    pub fn init(&self, device: &Device) -> Result<VaeGan, ModelError> {
        self.validate()?;
        Ok(VaeGan {
            vae: self.vae.init(device)?,
            discriminator: self
                .discriminator
                .init(self.vae.decoder.vocab_size, device)?,
            gan: self.gan,
        })
    }
}

/// A training step's loss for both players (see [`VaeGan::loss`]).
#[derive(Debug, Clone)]
pub struct VaeGanLoss {
    /// The generator's objective: the VAE's plus the weighted adversarial terms.
    pub generator: Tensor<1>,
    /// The discriminator's objective (when it trains at this step).
    pub discriminator: Option<Tensor<1>>,
    /// Named parts for the metrics log (reconstruction, kl, adversarial, …).
    pub parts: Vec<(&'static str, Tensor<1>)>,
    /// Named numbers of the step (β, the adversarial weight).
    pub values: Vec<(&'static str, f64)>,
    /// The decoder's logits `[b, t, vocab]`.
    pub logits: Tensor<3>,
}

/// The VAE-GAN: a [`Vae`] (the generator) and a [`Discriminator`].
#[derive(Module, Debug)]
pub struct VaeGan {
    vae: Vae,
    discriminator: Discriminator,
    #[module(skip)]
    gan: GanLossConfig,
}

impl VaeGan {
    /// The generator: everything generation needs.
    #[must_use]
    pub fn vae(&self) -> &Vae {
        &self.vae
    }

    /// The critic.
    #[must_use]
    pub fn discriminator(&self) -> &Discriminator {
        &self.discriminator
    }

    /// The generator and the critic, by value.
    #[must_use]
    pub fn into_parts(self) -> (Vae, Discriminator) {
        (self.vae, self.discriminator)
    }

    /// The adversarial settings.
    #[must_use]
    pub fn gan_config(&self) -> GanLossConfig {
        self.gan
    }

    /// Advances the discriminator's spectral-norm power iteration by one step (after each of
    /// its updates).
    #[must_use]
    pub fn after_discriminator_step(mut self) -> Self {
        self.discriminator = self.discriminator.power_iteration(1);
        self
    }

    /// The losses of both players on `inputs` → `targets` at `step`; `padding` marks padded
    /// input positions and `pad` is the padding id. With `train_discriminator`, the
    /// discriminator's loss (real targets against the detached reconstructions, plus R1) is
    /// included. Gumbel noise comes from the device's seeded generator; the latent sample
    /// from `rng`.
    ///
    /// # Errors
    /// As [`Vae::loss`].
    #[allow(clippy::too_many_arguments)]
    pub fn loss(
        &self,
        inputs: Tensor<2, Int>,
        targets: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
        pad: i64,
        token_loss: &TokenLoss,
        step: u64,
        train_discriminator: bool,
        rng: &mut LatentRng,
    ) -> Result<VaeGanLoss, ModelError> {
        let vae = self.vae.loss(
            inputs.clone(),
            targets.clone(),
            padding.clone(),
            token_loss,
            &self.vae.loss_config(),
            step,
            rng,
        )?;
        let mut parts = vec![("reconstruction", vae.reconstruction), ("kl", vae.kl)];
        let weight = self.gan.weight_at(step);
        let mut values = vec![("beta", vae.beta), ("adversarial_weight", weight)];
        let mut generator = vae.total;
        let train_discriminator = train_discriminator && self.gan.active(step);
        if weight == 0.0 && !train_discriminator {
            return Ok(VaeGanLoss {
                generator,
                discriminator: None,
                parts,
                values,
                logits: vae.logits,
            });
        }
        let target_padding = targets.clone().equal_elem(pad);
        let mut fakes = vec![self.fake_tokens(vae.logits.clone(), &target_padding, pad)];
        if self.gan.prior_samples {
            let latent = self
                .vae
                .sample_prior(inputs.dims()[0], rng, &inputs.device());
            let logits = self.vae.decode(inputs, padding, &latent)?;
            fakes.push(self.fake_tokens(logits, &target_padding, pad));
        }
        let real = self.discriminator.forward_ids(targets.clone());
        if weight > 0.0 {
            // The critic as a constant: gradients reach the generator's soft tokens only.
            let critic = self.discriminator.clone().no_grad();
            let real_features: Vec<Tensor<3>> =
                real.features.iter().map(|f| f.clone().detach()).collect();
            let (mut adversarial, mut matching) = (None, None);
            for fake in &fakes {
                let judged = critic.forward(fake.clone());
                let a = sum_scales(&judged, |l| self.gan.loss.generator(l));
                let m = feature_matching(&real_features, &judged.features)?;
                adversarial = Some(add(adversarial, a));
                matching = Some(add(matching, m));
            }
            let n = fakes.len() as f64;
            let adversarial = adversarial.expect("one fake").div_scalar(n);
            let matching = matching.expect("one fake").div_scalar(n);
            generator = generator
                + (adversarial.clone() + matching.clone().mul_scalar(self.gan.feature_matching))
                    .mul_scalar(weight);
            parts.push(("adversarial", adversarial));
            parts.push(("feature_matching", matching));
        }
        let discriminator = train_discriminator.then(|| {
            let mut total = None;
            let mut real_logit = None;
            let mut fake_logit = None;
            for fake in &fakes {
                let judged = self.discriminator.forward(fake.clone().detach());
                let mut d = None;
                for (r, f) in real.logits.iter().zip(&judged.logits) {
                    d = Some(add(d, self.gan.loss.discriminator(r.clone(), f.clone())));
                    fake_logit = Some(add(fake_logit, f.clone().detach().mean()));
                }
                total = Some(add(total, d.expect("one scale")));
            }
            for r in &real.logits {
                real_logit = Some(add(real_logit, r.clone().detach().mean()));
            }
            let scales = real.logits.len() as f64;
            let mut total = total.expect("one fake").div_scalar(fakes.len() as f64);
            if self.gan.r1 > 0.0 {
                let r1 = self.discriminator.r1_penalty(targets, 0.1, 1);
                parts.push(("r1", r1.clone().detach()));
                total = total + r1.mul_scalar(self.gan.r1);
            }
            parts.push((
                "d_real_logit",
                real_logit.expect("one scale").div_scalar(scales),
            ));
            parts.push((
                "d_fake_logit",
                fake_logit
                    .expect("one scale")
                    .div_scalar(scales * fakes.len() as f64),
            ));
            parts.push(("discriminator", total.clone().detach()));
            total
        });
        values.push((
            "discriminator_step",
            f64::from(u8::from(train_discriminator)),
        ));
        Ok(VaeGanLoss {
            generator,
            discriminator,
            parts,
            values,
            logits: vae.logits,
        })
    }

    /// The discriminator's loss alone, on a fresh reconstruction detached from the generator
    /// (the extra rounds of a D:G ratio above 1).
    ///
    /// # Errors
    /// As [`Vae::decode`].
    pub fn discriminator_loss(
        &self,
        inputs: Tensor<2, Int>,
        targets: Tensor<2, Int>,
        padding: Tensor<2, Bool>,
        pad: i64,
        rng: &mut LatentRng,
    ) -> Result<Tensor<1>, ModelError> {
        let posterior = self.vae.encode(inputs.clone(), padding.clone());
        let latent = posterior.sample(rng);
        let logits = self.vae.decode(inputs, padding, &latent)?.detach();
        let target_padding = targets.clone().equal_elem(pad);
        let fake = self.fake_tokens(logits, &target_padding, pad);
        let real = self.discriminator.forward_ids(targets.clone());
        let judged = self.discriminator.forward(fake);
        let mut total = None;
        for (r, f) in real.logits.into_iter().zip(judged.logits) {
            total = Some(add(total, self.gan.loss.discriminator(r, f)));
        }
        let mut total = total.expect("one scale");
        if self.gan.r1 > 0.0 {
            total = total
                + self
                    .discriminator
                    .r1_penalty(targets, 0.1, 1)
                    .mul_scalar(self.gan.r1);
        }
        Ok(total)
    }

    /// Soft tokens of the decoder's `logits`, with padded target positions replaced by the
    /// one-hot padding row real data has there (so padding tells nothing apart).
    fn fake_tokens(
        &self,
        logits: Tensor<3>,
        target_padding: &Tensor<2, Bool>,
        pad: i64,
    ) -> Tensor<3> {
        let [b, t, v] = logits.dims();
        let device = logits.device();
        let soft = soft_tokens(logits, self.gan.temperature, self.gan.gumbel);
        let padded = target_padding.clone().float().reshape([b, t, 1]);
        let mut row = vec![0.0f32; v];
        if let Some(r) = usize::try_from(pad).ok().and_then(|p| row.get_mut(p)) {
            *r = 1.0;
        }
        let one_hot = Tensor::<1>::from_floats(row.as_slice(), &device).reshape([1, 1, v]);
        soft * padded.clone().neg().add_scalar(1.0).expand([b, t, v])
            + one_hot.expand([b, t, v]) * padded.expand([b, t, v])
    }
}

fn sum_scales(judged: &Judgement, f: impl Fn(Tensor<2>) -> Tensor<1>) -> Tensor<1> {
    let mut total = None;
    for l in &judged.logits {
        total = Some(add(total, f(l.clone())));
    }
    total.expect("one scale")
}

fn add(acc: Option<Tensor<1>>, x: Tensor<1>) -> Tensor<1> {
    match acc {
        Some(a) => a + x,
        None => x,
    }
}
