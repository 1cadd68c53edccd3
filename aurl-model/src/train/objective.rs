//! What the trainer needs of a model: its loss on a batch and its validation figure. The
//! [`Transformer`] minimises next-token cross entropy; the [`Vae`] its reconstruction NLL plus
//! the β-weighted KL penalty of its [`VaeLossConfig`](crate::vae::VaeLossConfig); the
//! [`VaeGan`] adds the adversarial terms, and its discriminator is a second player with its
//! own loss and optimizer (`train.discriminator`).

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Gradients;

use super::{NllSum, TokenWindows};
use crate::error::ModelError;
use crate::loss::TokenLoss;
use crate::vae::{LatentRng, Vae};
use crate::weights::ModelKind;
use crate::{Transformer, VaeGan};

/// One micro-batch of training windows on the model's device.
#[derive(Debug, Clone)]
pub struct TrainBatch {
    /// Input ids `[b, t]`.
    pub inputs: Tensor<2, Int>,
    /// Next-token targets `[b, t]`.
    pub targets: Tensor<2, Int>,
    /// The padding id (padded positions hold it in both).
    pub pad: i64,
}

impl TrainBatch {
    /// `true` at padded input positions `[b, t]`.
    #[must_use]
    pub fn padding(&self) -> Tensor<2, Bool> {
        self.inputs.clone().equal_elem(self.pad)
    }
}

/// Where the loop is, for objectives with per-step randomness or schedules.
#[derive(Debug, Clone, Copy)]
pub struct StepContext {
    /// 0-based step index.
    pub step: usize,
    /// The run's seed.
    pub seed: u64,
    /// Whether the trainer needs [`TrainLoss::logits`] (for the grammar loss); when not,
    /// models should not keep them (a kept clone stops the loss from reusing their memory).
    pub keep_logits: bool,
    /// Whether the model's second player (if any) trains at this step: the trainer's D:G
    /// schedule (`train.discriminator`) and the model's stage
    /// ([`TrainModel::adversary_active`]) agree.
    pub adversary: bool,
}

impl StepContext {
    /// A seed for this step's own noise (the same on resume).
    #[must_use]
    pub fn step_seed(&self) -> u64 {
        aurl_core::rng::SeedRng::derive(self.seed, &[self.step as u64]).next_u64()
    }
}

/// A step's loss: what to minimise, and its parts for the metrics log.
#[derive(Debug, Clone)]
pub struct TrainLoss {
    /// The objective (a scalar `[1]`).
    pub total: Tensor<1>,
    /// Named parts of it, logged as `components` in `metrics.jsonl`.
    pub parts: Vec<(&'static str, Tensor<1>)>,
    /// Named numbers of the step (a schedule's weight, …), logged likewise.
    pub values: Vec<(&'static str, f64)>,
    /// The next-token logits `[b, t, vocab]` behind the objective, for losses the trainer
    /// adds (the grammar loss).
    pub logits: Option<Tensor<3>>,
    /// The second player's objective, minimised by its own optimizer over its own
    /// parameters ([`TrainModel::adversary_grads`]); its graph must not reach the
    /// generator's parameters, nor `total`'s the adversary's.
    pub adversary: Option<Tensor<1>>,
}

/// A model the [`Trainer`](super::Trainer) can train.
pub trait TrainModel: ModelKind + Clone {
    /// Token ids the model predicts.
    fn vocab_size(&self) -> usize;
    /// Longest window the model takes.
    fn max_positions(&self) -> usize;
    /// The training objective on `batch`; `tokens` is the cross entropy configured for the
    /// run (padding, smoothing).
    ///
    /// # Errors
    /// [`ModelError::Shape`] and friends for a batch the model cannot take.
    fn train_loss(
        &self,
        batch: TrainBatch,
        tokens: &TokenLoss,
        context: StepContext,
    ) -> Result<TrainLoss, ModelError>;
    /// The validation NLL, summed over the windows `rows` of `windows` (for a VAE, the
    /// reconstruction NLL from the posterior means), in batches of `batch_size`; `None`
    /// when the model cannot take them. Sums, so that the shards of several ranks add up.
    fn valid_sum(
        &self,
        windows: &TokenWindows,
        rows: std::ops::Range<usize>,
        batch_size: usize,
    ) -> Option<NllSum>;

    /// The validation figure minimised by early stopping and keep-best: mean NLL per real
    /// target token over all of `windows`; `None` without windows.
    fn valid_nll(&self, windows: &TokenWindows, batch_size: usize) -> Option<f64> {
        self.valid_sum(windows, 0..windows.count(), batch_size)?
            .mean()
    }

    /// Whether the model has a second player (a discriminator) that the trainer updates with
    /// its own optimizer and schedule (`train.discriminator`). Default: no.
    fn has_adversary(&self) -> bool {
        false
    }

    /// Whether the second player's stage has begun at `step` (0-based).
    fn adversary_active(&self, step: usize) -> bool {
        let _ = step;
        false
    }

    /// The gradients, out of a backward pass, that the main optimizer applies. Default: all.
    fn generator_grads(&self, grads: &mut Gradients) -> GradientsParams {
        GradientsParams::from_module(grads, self)
    }

    /// The gradients, out of a backward pass, that the second player's optimizer applies.
    /// Default: none.
    fn adversary_grads(&self, grads: &mut Gradients) -> GradientsParams {
        let _ = grads;
        GradientsParams::new()
    }

    /// The second player's loss alone on `batch` (the extra rounds of a D:G ratio above 1);
    /// `None` for models without one.
    ///
    /// # Errors
    /// As [`TrainModel::train_loss`].
    fn adversary_loss(
        &self,
        batch: TrainBatch,
        context: StepContext,
    ) -> Result<Option<Tensor<1>>, ModelError> {
        let _ = (batch, context);
        Ok(None)
    }

    /// Called after every update of the second player (the discriminator's spectral-norm
    /// power iteration).
    #[must_use]
    fn after_adversary_step(self) -> Self {
        self
    }
}

impl TrainModel for Transformer {
    fn vocab_size(&self) -> usize {
        Transformer::vocab_size(self)
    }

    fn max_positions(&self) -> usize {
        Transformer::max_positions(self)
    }

    fn train_loss(
        &self,
        batch: TrainBatch,
        tokens: &TokenLoss,
        context: StepContext,
    ) -> Result<TrainLoss, ModelError> {
        let logits = self.forward(batch.inputs, 0, None)?;
        let kept = context.keep_logits.then(|| logits.clone());
        Ok(TrainLoss {
            total: tokens.forward(logits, batch.targets),
            parts: Vec::new(),
            values: Vec::new(),
            logits: kept,
            adversary: None,
        })
    }

    fn valid_sum(
        &self,
        windows: &TokenWindows,
        rows: std::ops::Range<usize>,
        batch_size: usize,
    ) -> Option<NllSum> {
        let device = super::model_device(self)?;
        NllSum::over(
            windows,
            rows,
            batch_size,
            &device,
            self.vocab_size(),
            |inputs| self.forward(inputs, 0, None).ok(),
        )
    }
}

impl TrainModel for Vae {
    fn vocab_size(&self) -> usize {
        self.decoder().vocab_size()
    }

    fn max_positions(&self) -> usize {
        self.decoder().max_positions()
    }

    fn train_loss(
        &self,
        batch: TrainBatch,
        tokens: &TokenLoss,
        context: StepContext,
    ) -> Result<TrainLoss, ModelError> {
        let padding = batch.padding();
        let mut rng = LatentRng::new(context.step_seed());
        let loss = self.loss(
            batch.inputs,
            batch.targets,
            padding,
            tokens,
            &self.loss_config(),
            context.step as u64,
            &mut rng,
        )?;
        Ok(TrainLoss {
            total: loss.total,
            parts: vec![("reconstruction", loss.reconstruction), ("kl", loss.kl)],
            values: vec![("beta", loss.beta)],
            logits: context.keep_logits.then_some(loss.logits),
            adversary: None,
        })
    }

    fn valid_sum(
        &self,
        windows: &TokenWindows,
        rows: std::ops::Range<usize>,
        batch_size: usize,
    ) -> Option<NllSum> {
        let device = super::model_device(self)?;
        let pad = i64::from(windows.pad());
        NllSum::over(
            windows,
            rows,
            batch_size,
            &device,
            self.vocab_size(),
            |inputs| {
                let padding = inputs.clone().equal_elem(pad);
                let latent = self.encode(inputs.clone(), padding.clone()).mode();
                self.decode(inputs, padding, &latent).ok()
            },
        )
    }
}

impl TrainModel for VaeGan {
    fn vocab_size(&self) -> usize {
        self.vae().vocab_size()
    }

    fn max_positions(&self) -> usize {
        self.vae().max_positions()
    }

    fn train_loss(
        &self,
        batch: TrainBatch,
        tokens: &TokenLoss,
        context: StepContext,
    ) -> Result<TrainLoss, ModelError> {
        let padding = batch.padding();
        let mut rng = LatentRng::new(context.step_seed());
        let loss = self.loss(
            batch.inputs,
            batch.targets,
            padding,
            batch.pad,
            tokens,
            context.step as u64,
            context.adversary,
            &mut rng,
        )?;
        Ok(TrainLoss {
            total: loss.generator,
            parts: loss.parts,
            values: loss.values,
            logits: context.keep_logits.then_some(loss.logits),
            adversary: loss.discriminator,
        })
    }

    fn valid_sum(
        &self,
        windows: &TokenWindows,
        rows: std::ops::Range<usize>,
        batch_size: usize,
    ) -> Option<NllSum> {
        self.vae().valid_sum(windows, rows, batch_size)
    }

    fn has_adversary(&self) -> bool {
        true
    }

    fn adversary_active(&self, step: usize) -> bool {
        self.gan_config().active(step as u64)
    }

    fn generator_grads(&self, grads: &mut Gradients) -> GradientsParams {
        GradientsParams::from_module(grads, self.vae())
    }

    fn adversary_grads(&self, grads: &mut Gradients) -> GradientsParams {
        GradientsParams::from_module(grads, self.discriminator())
    }

    fn adversary_loss(
        &self,
        batch: TrainBatch,
        context: StepContext,
    ) -> Result<Option<Tensor<1>>, ModelError> {
        let padding = batch.padding();
        // Not the generator step's own draw: a round's seed differs from the step's.
        let mut rng = LatentRng::new(context.step_seed() ^ 0xD15C_0000_0000_0000);
        self.discriminator_loss(batch.inputs, batch.targets, padding, batch.pad, &mut rng)
            .map(Some)
    }

    fn after_adversary_step(self) -> Self {
        self.after_discriminator_step()
    }
}
