//! A readable, explicit training loop for the language model: AdamW, warm-up then cosine
//! learning rate, clipping by the global gradient norm, skipping of non-finite steps, and
//! validation NLL per token, and checkpoints that resume a run exactly.

mod adam;
mod adversary;
mod batch;
mod checkpoint;
mod clip;
mod dataset;
pub mod distributed;
mod gradients;
mod likelihood;
mod metrics;
mod objective;
mod ranks;
mod samples;
mod schedule;
mod session;
mod trainer;

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

pub use adam::{FusedAdam, FusedAdamW};
pub use adversary::AdversaryTraining;
/// Windows and their order are data (`aurl-data`); re-exported here, where training uses
/// them.
pub use aurl_data::windows::{DataCursor, EpochWindows, TokenWindows, header_at};
pub use batch::WindowTensors;
pub use checkpoint::{
    Checkpointing, Resume, Resumed, TrainState, latest_checkpoint, load_checkpoint,
    load_checkpoint_as,
};
pub use clip::{clip_global_norm, global_grad_norm};
pub use dataset::{WindowBatch, WindowBatcher, WindowDataset};
pub use likelihood::{NllReport, NllSum, negative_log_likelihood};
pub use metrics::{MetricsLog, StepMetrics};
pub use objective::{StepContext, TrainBatch, TrainLoss, TrainModel};
pub use samples::SampleCheck;
pub use schedule::{LrSchedule, learning_rate};
pub use trainer::{Trainer, train};

use crate::Transformer;
use crate::error::{ModelError, invalid};

/// Which optimizer updates the weights: Adam and AdamW through the fused
/// [`crate::kernels::adam`] update ([`FusedAdam`], [`FusedAdamW`]), Lion Burn's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam with decoupled weight decay (Loshchilov & Hutter, 2019).
    #[default]
    #[serde(rename = "adamw")]
    AdamW,
    /// Adam (Kingma & Ba, 2015); `weight_decay` becomes an L2 penalty on the gradient.
    Adam,
    /// Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", 2023): the sign of
    /// a momentum interpolation, decoupled weight decay; usually wants a learning rate
    /// 3–10× below AdamW's.
    Lion,
}

impl OptimizerKind {
    /// A fresh optimizer of this kind with `weight_decay`.
    #[must_use]
    pub fn init(self, weight_decay: f32) -> burn::optim::ModuleOptimizer {
        use burn::optim::LionConfig;
        match self {
            Self::AdamW => FusedAdamW::new(weight_decay).into(),
            Self::Adam => FusedAdam::new(weight_decay).into(),
            Self::Lion => LionConfig::new().with_weight_decay(weight_decay).init(),
        }
    }
}

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Windows per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step: their gradients are summed (each loss scaled by
    /// `1 / grad_accumulation`) before one step, so the effective batch is
    /// `batch_size × grad_accumulation` at the memory cost of `batch_size`.
    pub grad_accumulation: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Learning rate at the end of the cosine decay (the floor of the plateau schedule).
    pub min_learning_rate: f64,
    /// What the rate does after the warm-up.
    pub lr_schedule: LrSchedule,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Weight decay (decoupled for AdamW and Lion, an L2 penalty for Adam).
    pub weight_decay: f32,
    /// Clip the global gradient norm to this value (`None`: no clipping).
    pub grad_clip_norm: Option<f32>,
    /// Label smoothing ε of the cross entropy.
    pub label_smoothing: f32,
    /// Weight of the grammar loss (the probability mass put on tokens the grammar forbids
    /// next, see [`crate::loss::GrammarLoss`]) added to the objective; 0 = off. Needs the
    /// vocabulary ([`Trainer::with_grammar`]).
    pub grammar_loss: f32,
    /// Validate every this many steps (and after the last one); `None`: only at the end
    /// (`0` in a config file).
    #[serde(with = "crate::zero_is_none")]
    pub eval_every: Option<usize>,
    /// Seed of the batch order (weights are seeded through the device).
    pub seed: u64,
    /// After this many consecutive bad steps (non-finite loss or gradient, or a gradient
    /// norm above `skip_grad_norm`), roll back to the last good state (see
    /// `max_rollbacks`).
    pub max_bad_steps: usize,
    /// A step whose global gradient norm exceeds this is skipped as exploding (`None`: only
    /// non-finite steps are skipped).
    pub skip_grad_norm: Option<f32>,
    /// Rollbacks allowed: each restores the weights, optimizer state and loop position of
    /// the last validation that was finite (or the start) and multiplies the learning rate
    /// by `rollback_lr_factor`; one more run of bad steps stops training with an error.
    pub max_rollbacks: usize,
    /// Learning-rate multiplier applied at each rollback, in (0, 1].
    pub rollback_lr_factor: f64,
    /// Sample a few sequences every this many steps (through the sampler given to
    /// [`Trainer::run_sampled`]) and log their [`SampleCheck`]; `None`: never (`0` in a
    /// config file).
    #[serde(with = "crate::zero_is_none")]
    pub sample_every: Option<usize>,
    /// Samples whose grammar error rate exceeds this count as a collapse: the run rolls back
    /// as after `max_bad_steps` bad steps (`None`: never).
    pub collapse_error_rate: Option<f64>,
    /// Samples repeating one token this many times in a row count as a collapse
    /// (`None`: never).
    pub collapse_repeat: Option<usize>,
    /// Stop (after validating) once training has run this many seconds.
    pub max_seconds: Option<f64>,
    /// Write a checkpoint every this many steps (and at the end) when checkpointing.
    pub checkpoint_every: usize,
    /// Checkpoints kept (the most recent ones).
    pub keep_checkpoints: usize,
    /// Return the weights of the best validation instead of the last ones when the last
    /// validation is worse (and, when checkpointing, keep them in `<dir>/best/`).
    pub keep_best: bool,
    /// Stop once this many validations in a row have not improved on the best (`None`:
    /// never). With `eval_every = 100` and 5, a run stops 500 steps after its best.
    pub early_stopping: Option<usize>,
    /// The second player's optimizer, schedule and D:G ratio (VAE-GAN runs).
    pub discriminator: AdversaryTraining,
    /// Data-parallel runs (see [`Trainer::with_collective`]).
    pub distributed: DistributedTraining,
}

/// Settings of data-parallel runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributedTraining {
    /// Seconds a rank waits for the others in one collective operation before the run
    /// stops with an error (a rank died or hangs).
    pub timeout_s: f64,
    /// Every this many steps the ranks compare a checksum of their weights and stop with
    /// [`ModelError::Training`] if any replica differs from rank 0's (bit for bit) — a guard
    /// against drift (a rank on another library build, a nondeterministic kernel). It costs
    /// one pass over the weights and a broadcast. `None` (0 in a file): never.
    #[serde(with = "crate::zero_is_none")]
    pub check_every: Option<usize>,
}

impl Default for DistributedTraining {
    fn default() -> Self {
        Self {
            timeout_s: 300.0,
            check_every: Some(100),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            optimizer: OptimizerKind::AdamW,
            batch_size: 16,
            grad_accumulation: 1,
            learning_rate: 1e-3,
            min_learning_rate: 1e-4,
            lr_schedule: LrSchedule::Cosine,
            warmup_steps: 100,
            weight_decay: 0.01,
            grad_clip_norm: Some(1.0),
            label_smoothing: 0.0,
            grammar_loss: 0.0,
            eval_every: Some(100),
            seed: 42,
            max_bad_steps: 20,
            skip_grad_norm: None,
            max_rollbacks: 3,
            rollback_lr_factor: 0.5,
            sample_every: Some(250),
            collapse_error_rate: None,
            collapse_repeat: None,
            max_seconds: None,
            checkpoint_every: 500,
            keep_checkpoints: 3,
            keep_best: true,
            early_stopping: None,
            discriminator: AdversaryTraining::default(),
            distributed: DistributedTraining::default(),
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
        for (field, every) in [
            ("train.eval_every", self.eval_every),
            ("train.sample_every", self.sample_every),
            (
                "train.distributed.check_every",
                self.distributed.check_every,
            ),
        ] {
            if every == Some(0) {
                return Err(invalid(
                    field,
                    "must be at least 1 (None, or 0 in a file: off)",
                ));
            }
        }
        if self.grad_accumulation == 0 {
            return Err(invalid("train.grad_accumulation", "must be at least 1"));
        }
        if let LrSchedule::Plateau { factor, patience } = self.lr_schedule {
            if !(factor > 0.0 && factor < 1.0) {
                return Err(invalid(
                    "train.lr_schedule.plateau.factor",
                    "must be in (0, 1)",
                ));
            }
            if patience == 0 {
                return Err(invalid(
                    "train.lr_schedule.plateau.patience",
                    "must be at least 1",
                ));
            }
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
        if !self.grammar_loss.is_finite() || self.grammar_loss < 0.0 {
            return Err(invalid("train.grammar_loss", "must be finite and >= 0"));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(invalid("train.label_smoothing", "must be in [0, 1)"));
        }
        if let Some(s) = self.max_seconds
            && !(s.is_finite() && s > 0.0)
        {
            return Err(invalid("train.max_seconds", "must be finite and > 0"));
        }
        if self.max_bad_steps == 0 {
            return Err(invalid("train.max_bad_steps", "must be at least 1"));
        }
        if let Some(g) = self.skip_grad_norm
            && !(g.is_finite() && g > 0.0)
        {
            return Err(invalid("train.skip_grad_norm", "must be finite and > 0"));
        }
        if !(self.rollback_lr_factor > 0.0 && self.rollback_lr_factor <= 1.0) {
            return Err(invalid("train.rollback_lr_factor", "must be in (0, 1]"));
        }
        if let Some(r) = self.collapse_error_rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err(invalid("train.collapse_error_rate", "must be in [0, 1]"));
        }
        if self.collapse_repeat.is_some_and(|r| r < 2) {
            return Err(invalid("train.collapse_repeat", "must be at least 2"));
        }
        if self.early_stopping == Some(0) {
            return Err(invalid(
                "train.early_stopping",
                "must be at least 1 validation",
            ));
        }
        let timeout = self.distributed.timeout_s;
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(invalid(
                "train.distributed.timeout_s",
                "must be finite and > 0",
            ));
        }
        self.discriminator.validate()
    }
}

/// What a finished run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainReport {
    /// Step the run (or the resumed part of it) started from.
    pub first_step: usize,
    /// Steps run by this call, skipped ones included (fewer than configured when
    /// `max_seconds` stopped the run or it resumed part-way).
    pub steps: usize,
    /// Steps skipped because the loss or gradient norm was not finite (or the norm was
    /// above `skip_grad_norm`).
    pub skipped_steps: usize,
    /// Rollbacks to the last good state (each after `max_bad_steps` bad steps in a row).
    pub rollbacks: usize,
    /// Training loss of the last step.
    pub final_loss: f64,
    /// Validation NLL per token at the end (`None` without validation windows).
    pub valid_nll: Option<f64>,
    /// The best validation NLL of the run and the step it was measured after.
    pub best_valid_nll: Option<f64>,
    /// Step of `best_valid_nll`.
    pub best_step: Option<usize>,
    /// Whether the returned model is the best one rather than the last (`keep_best`).
    pub restored_best: bool,
    /// Whether `early_stopping` ended the run.
    pub stopped_early: bool,
    /// Training tokens per second over the whole run (validation included).
    pub tokens_per_second: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Mean negative log-likelihood per real target token of `model` over `windows`
/// (in nats; `exp` of it is the perplexity), in batches of `batch_size`.
/// `None` without windows or when the model cannot take them.
#[must_use]
pub fn evaluate(model: &Transformer, windows: &TokenWindows, batch_size: usize) -> Option<f64> {
    model.valid_nll(windows, batch_size)
}

pub(crate) fn model_device<M: Module>(model: &M) -> Option<Device> {
    model.devices().into_iter().next()
}
