//! The second player of adversarial training (the VAE-GAN's discriminator): its optimizer
//! settings and D:G ratio, and its updates of its own.

use burn::optim::ModuleOptimizer;
use serde::{Deserialize, Serialize};

use super::objective::{StepContext, TrainBatch, TrainModel};
use super::{LrSchedule, OptimizerKind, clip_global_norm, global_grad_norm};
use crate::error::{ModelError, invalid};

/// How the trainer updates a model's second player (the VAE-GAN's discriminator): its own
/// optimizer and learning-rate schedule, and how often it steps against the generator.
///
/// At every `every`-th training step of the model's adversarial stage (steps divisible by
/// `every`) the discriminator takes `steps` updates on that step's batch: `steps − 1` rounds
/// on its own (each with a fresh reconstruction and noise), then one from the generator
/// step's shared backward pass, applied together with the generator's update.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdversaryTraining {
    /// Its optimizer (default Adam, as GANs usually use).
    pub optimizer: OptimizerKind,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Floor of the cosine decay.
    pub min_learning_rate: f64,
    /// Warm-up then cosine, or plateau-driven (the generator's validation drives both).
    pub lr_schedule: LrSchedule,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Decoupled weight decay (AdamW, Lion) or L2 (Adam).
    pub weight_decay: f32,
    /// Clip the discriminator's gradients to this global norm.
    pub grad_clip_norm: Option<f32>,
    /// Discriminator updates per training step it trains at (the D:G ratio).
    pub steps: usize,
    /// Train it at every `every`-th step only (a G:D ratio above 1).
    pub every: usize,
}

impl Default for AdversaryTraining {
    /// Adam at 2·10⁻⁴ (warm-up 0, cosine to 2·10⁻⁵), no weight decay, clipping at 1, one
    /// update per step.
    fn default() -> Self {
        Self {
            optimizer: OptimizerKind::Adam,
            learning_rate: 2e-4,
            min_learning_rate: 2e-5,
            lr_schedule: LrSchedule::Cosine,
            warmup_steps: 0,
            weight_decay: 0.0,
            grad_clip_norm: Some(1.0),
            steps: 1,
            every: 1,
        }
    }
}

impl AdversaryTraining {
    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), ModelError> {
        for (field, v) in [
            ("train.discriminator.learning_rate", self.learning_rate),
            (
                "train.discriminator.min_learning_rate",
                self.min_learning_rate,
            ),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(field, "must be finite and >= 0"));
            }
        }
        if self.min_learning_rate > self.learning_rate {
            return Err(invalid(
                "train.discriminator.min_learning_rate",
                "exceeds learning_rate",
            ));
        }
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            return Err(invalid(
                "train.discriminator.weight_decay",
                "must be finite and >= 0",
            ));
        }
        if let Some(c) = self.grad_clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(invalid(
                "train.discriminator.grad_clip_norm",
                "must be finite and > 0",
            ));
        }
        if self.steps == 0 {
            return Err(invalid("train.discriminator.steps", "must be at least 1"));
        }
        if self.every == 0 {
            return Err(invalid("train.discriminator.every", "must be at least 1"));
        }
        Ok(())
    }

    /// Whether its schedule has it train at step `step` (0-based; the model's stage decides
    /// too).
    #[must_use]
    pub fn trains_at(&self, step: usize) -> bool {
        step.is_multiple_of(self.every.max(1))
    }
}

/// One update of the second player alone on `batch` (a round of a D:G ratio above 1). A
/// non-finite loss or gradient skips the round.
pub(crate) fn adversary_round<M: TrainModel>(
    model: M,
    optim: &mut ModuleOptimizer,
    batch: TrainBatch,
    context: StepContext,
    lr: f64,
    clip: Option<f32>,
) -> Result<M, ModelError> {
    let Some(loss) = model.adversary_loss(batch, context)? else {
        return Ok(model);
    };
    let value = f64::from(loss.clone().into_scalar::<f32>());
    let mut raw = loss.backward();
    let mut grads = model.adversary_grads(&mut raw);
    let norm = global_grad_norm(&model, &grads);
    if !value.is_finite() || !norm.is_finite() {
        tracing::warn!(
            step = context.step,
            value,
            norm,
            "skipped a bad discriminator round"
        );
        return Ok(model);
    }
    if let Some(max) = clip {
        clip_global_norm(&model, &mut grads, norm, max);
    }
    Ok(optim.step(lr, model, grads).after_adversary_step())
}
