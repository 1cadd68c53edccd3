//! A readable, explicit training loop for the language model: AdamW, warm-up then cosine
//! learning rate, clipping by the global gradient norm, skipping of non-finite steps, and
//! validation NLL per token.

mod clip;
mod metrics;
mod schedule;
mod windows;

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

pub use clip::{clip_global_norm, global_grad_norm};
pub use metrics::{MetricsLog, StepMetrics};
pub use schedule::learning_rate;
pub use windows::TokenWindows;

use crate::Transformer;
use crate::error::{ModelError, invalid};
use crate::loss::TokenLoss;

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// Windows per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_learning_rate: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// AdamW decoupled weight decay.
    pub weight_decay: f32,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    pub grad_clip_norm: Option<f32>,
    /// Label smoothing ε of the cross entropy.
    pub label_smoothing: f32,
    /// Validate every this many steps (and after the last one); 0 = only at the end.
    pub eval_every: usize,
    /// Seed of the batch order (weights are seeded through the device).
    pub seed: u64,
    /// Stop with an error after this many consecutive non-finite steps.
    pub max_bad_steps: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 16,
            learning_rate: 1e-3,
            min_learning_rate: 1e-4,
            warmup_steps: 100,
            weight_decay: 0.01,
            grad_clip_norm: Some(1.0),
            label_smoothing: 0.0,
            eval_every: 100,
            seed: 42,
            max_bad_steps: 20,
        }
    }
}

impl TrainConfig {
    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.steps == 0 {
            return Err(invalid("train.steps", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(invalid("train.batch_size", "must be at least 1"));
        }
        for (field, v) in [
            ("train.learning_rate", self.learning_rate),
            ("train.min_learning_rate", self.min_learning_rate),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(field, "must be finite and >= 0"));
            }
        }
        if self.min_learning_rate > self.learning_rate {
            return Err(invalid("train.min_learning_rate", "exceeds learning_rate"));
        }
        if !self.weight_decay.is_finite() || self.weight_decay < 0.0 {
            return Err(invalid("train.weight_decay", "must be finite and >= 0"));
        }
        if let Some(c) = self.grad_clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(invalid("train.grad_clip_norm", "must be finite and > 0"));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(invalid("train.label_smoothing", "must be in [0, 1)"));
        }
        if self.max_bad_steps == 0 {
            return Err(invalid("train.max_bad_steps", "must be at least 1"));
        }
        Ok(())
    }
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainReport {
    /// Optimizer steps taken (skipped steps not counted).
    pub steps: usize,
    /// Steps skipped because the loss or gradient norm was not finite.
    pub skipped_steps: usize,
    /// Training loss of the last step.
    pub final_loss: f64,
    /// Validation NLL per token at the end (`None` without validation windows).
    pub valid_nll: Option<f64>,
    /// Mean training tokens per second.
    pub tokens_per_second: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Mean negative log-likelihood per real target token of `model` over `windows`
/// (in nats; `exp` of it is the perplexity), in batches of `batch_size`.
pub fn evaluate(model: &Transformer, windows: &TokenWindows, batch_size: usize) -> Option<f64> {
    if windows.is_empty() {
        return None;
    }
    let device = model_device(model)?;
    let loss = TokenLoss::new(model.vocab_size()).with_padding(usize::from(windows.pad()));
    let (mut total, mut count) = (0.0f64, 0.0f64);
    let indices: Vec<usize> = (0..windows.count()).collect();
    for chunk in indices.chunks(batch_size.max(1)) {
        let (inputs, targets) = windows.batch(chunk, &device);
        let logits = model.forward(inputs, 0, None).ok()?;
        let (t, c) = loss.sums(logits, targets);
        total += f64::from(t.into_scalar::<f32>());
        count += f64::from(c.into_scalar::<f32>());
    }
    (count > 0.0).then(|| total / count)
}

fn model_device(model: &Transformer) -> Option<Device> {
    model.devices().into_iter().next()
}

/// Trains `model` (on an autodiff device) on `train`, validating on `valid`, calling
/// `on_step` after every step with its metrics. Returns the trained model and a report.
///
/// # Errors
/// [`ModelError::InvalidConfig`] for a bad config, [`ModelError::Training`] for no training
/// windows, windows longer than the model's positions, or too many diverged steps in a row.
pub fn train(
    mut model: Transformer,
    config: &TrainConfig,
    train: &TokenWindows,
    valid: &TokenWindows,
    mut on_step: impl FnMut(&StepMetrics),
) -> Result<(Transformer, TrainReport), ModelError> {
    config.validate()?;
    if train.is_empty() {
        return Err(ModelError::Training("no training windows".into()));
    }
    if train.len() > model.max_positions() {
        return Err(ModelError::Training(format!(
            "windows of {} tokens exceed the model's {} positions",
            train.len(),
            model.max_positions()
        )));
    }
    let device = model_device(&model).ok_or_else(|| ModelError::Training("no device".into()))?;
    if !device.is_autodiff() {
        return Err(ModelError::Training(
            "the model must live on an autodiff device (device.autodiff())".into(),
        ));
    }
    let mut optim = AdamWConfig::new()
        .with_weight_decay(config.weight_decay)
        .init();
    let loss_fn = TokenLoss::new(model.vocab_size())
        .with_padding(usize::from(train.pad()))
        .with_smoothing(config.label_smoothing)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..train.count()).collect();
    let mut cursor = order.len();
    let started = Instant::now();
    let (mut tokens, mut skipped, mut bad_in_a_row) = (0usize, 0usize, 0usize);
    let mut last_loss = f64::NAN;
    let mut valid_nll = None;
    let mut batch = Vec::with_capacity(config.batch_size);
    for step in 0..config.steps {
        batch.clear();
        while batch.len() < config.batch_size {
            if cursor == order.len() {
                order.shuffle(&mut rng);
                cursor = 0;
            }
            batch.push(order[cursor]);
            cursor += 1;
        }
        let step_start = Instant::now();
        let lr = learning_rate(
            step,
            config.steps,
            config.warmup_steps,
            config.learning_rate,
            config.min_learning_rate,
        );
        let (inputs, targets) = train.batch(&batch, &device);
        let logits = model.forward(inputs, 0, None)?;
        let loss = loss_fn.forward(logits, targets);
        let loss_value = f64::from(loss.clone().into_scalar::<f32>());
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let grad_norm = global_grad_norm(&model, &grads);
        if !loss_value.is_finite() || !grad_norm.is_finite() {
            skipped += 1;
            bad_in_a_row += 1;
            if bad_in_a_row >= config.max_bad_steps {
                return Err(ModelError::Training(format!(
                    "{bad_in_a_row} consecutive steps with a non-finite loss or gradient \
                     (last at step {step}); lower the learning rate"
                )));
            }
            continue;
        }
        bad_in_a_row = 0;
        if let Some(max) = config.grad_clip_norm {
            clip_global_norm(&model, &mut grads, grad_norm, max);
        }
        model = optim.step(lr, model, grads);
        last_loss = loss_value;
        let step_tokens = train.target_tokens(&batch);
        tokens += step_tokens;
        let last = step + 1 == config.steps;
        let validate = last || (config.eval_every > 0 && (step + 1) % config.eval_every == 0);
        if validate {
            valid_nll = evaluate(&model.valid(), valid, config.batch_size);
        }
        on_step(&StepMetrics {
            step: step + 1,
            loss: loss_value,
            learning_rate: lr,
            grad_norm: f64::from(grad_norm),
            tokens_per_second: step_tokens as f64 / step_start.elapsed().as_secs_f64(),
            valid_nll: if validate { valid_nll } else { None },
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok((
        model,
        TrainReport {
            steps: config.steps - skipped,
            skipped_steps: skipped,
            final_loss: last_loss,
            valid_nll,
            tokens_per_second: tokens as f64 / seconds.max(1e-9),
            seconds,
        },
    ))
}
