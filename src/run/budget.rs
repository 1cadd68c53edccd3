//! Training within a time budget (`train --minutes N`): time a few optimizer steps on a
//! throwaway model, then plan how many steps fit, keeping time for validation, samples and
//! their audio. The learning-rate schedule stays planned in steps; `train.max_seconds`
//! is the backstop when the machine slows down.

use crate::burn::prelude::Device;
use crate::core::tokenize::Vocabulary;
use crate::model::ModelError;
use crate::model::train::{TokenWindows, TrainConfig, TrainModel, Trainer};
use crate::model::weights::ModelKind;
use crate::run::RunConfig;

/// Optimizer steps [`step_seconds`] runs (the first, which warms caches and allocators, and
/// the last, which validates, are not counted).
pub const PROBE_STEPS: usize = 5;

/// Seconds per optimizer step of a model of kind `M` built from `model_config`, trained as
/// `config` says on `train` (with `vocab`'s grammar), measured on a throwaway model: the run
/// then builds its model afresh from the seed, so probing changes nothing it computes.
///
/// # Errors
/// The model cannot be built or a probe step failed; [`ModelError::Training`] when the
/// probe stopped before its timed steps.
pub fn step_seconds<M: TrainModel>(
    config: &RunConfig,
    model_config: &M::Config,
    vocab: &Vocabulary,
    (train, valid): (&TokenWindows, &TokenWindows),
    device: &Device,
) -> Result<f64, ModelError> {
    let device = device.clone().autodiff();
    device.seed(config.train.seed);
    let model = <M as ModelKind>::build(model_config, &device)?;
    let probe = TrainConfig {
        steps: PROBE_STEPS,
        eval_every: None,
        sample_every: None,
        max_seconds: None,
        ..config.train.clone()
    };
    let started = std::time::Instant::now();
    let mut at = Vec::with_capacity(PROBE_STEPS);
    Trainer::new(&probe, train, valid)
        .with_grammar(vocab)
        .run_sampled(model, None, |_| at.push(started.elapsed()), |_| None)?;
    // Steps 1..PROBE_STEPS-1 are timed: between the end of the first and of the last but one.
    let (Some(first), Some(last)) = (at.first(), at.get(PROBE_STEPS - 2)) else {
        return Err(ModelError::Training(
            "the probe steps stopped early (skipped steps?)".into(),
        ));
    };
    let timed = (PROBE_STEPS - 2) as f64;
    Ok((last.saturating_sub(*first).as_secs_f64() / timed).max(1e-3))
}

/// Steps and training seconds that fit a budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetPlan {
    /// Optimizer steps to plan the schedule for (at least 1).
    pub steps: usize,
    /// Seconds the training loop may take (`train.max_seconds`).
    pub train_seconds: f64,
}

/// Plans the steps that fit in `seconds_left` at `step` seconds each, keeping time for the
/// validation passes over `valid_windows` (every `train.eval_every` steps and at the end;
/// forward only, about a third of a training window's cost each) and for the samples and
/// their audio.
///
/// ```
/// use aurl::run::RunConfig;
/// use aurl::run::budget::plan_budget;
///
/// let mut config = RunConfig::default();
/// config.train.eval_every = None;
/// let plan = plan_budget(&config, 300.0, 0.5, 0);
/// assert!(plan.steps > 400 && plan.steps < 600, "{plan:?}");
/// assert!(plan.train_seconds < 300.0);
/// ```
#[must_use]
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
pub fn plan_budget(
    config: &RunConfig,
    seconds_left: f64,
    step: f64,
    valid_windows: usize,
) -> BudgetPlan {
    let windows_per_step = (config.train.batch_size * config.train.grad_accumulation).max(1);
    let valid_pass = valid_windows as f64 / windows_per_step as f64 * step / 3.0;
    // Samples: their tokens at a few hundred per second per piece, decoded as one batch.
    let samples = config.sample.tokens.min(2048) as f64 / 300.0 + 5.0;
    let fixed = valid_pass + samples;
    let per_step = match config.train.eval_every {
        None => step,
        Some(every) => step + valid_pass / every as f64,
    };
    let train_seconds = ((seconds_left - fixed) * 0.97).max(step);
    BudgetPlan {
        steps: ((train_seconds / per_step).floor() as usize).max(1),
        train_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::plan_budget;
    use crate::run::RunConfig;

    #[test]
    fn validation_and_samples_take_their_share_and_a_tiny_budget_still_trains() {
        let mut config = RunConfig::default();
        config.train.batch_size = 16;
        config.train.eval_every = None;
        let quiet = plan_budget(&config, 600.0, 1.0, 160);
        config.train.eval_every = Some(50);
        let validating = plan_budget(&config, 600.0, 1.0, 160);
        // Validating every 50 steps (10 steps' worth of windows at a third of the cost)
        // costs about 1/15 of the steps.
        assert!(
            validating.steps < quiet.steps,
            "{validating:?} vs {quiet:?}"
        );
        let share = validating.steps as f64 / quiet.steps as f64;
        assert!((share - 50.0 / 53.33).abs() < 0.02, "{share}");
        // Training time never exceeds what is left, and is never planned below one step.
        assert!(quiet.train_seconds < 600.0);
        let none = plan_budget(&config, 1.0, 2.0, 160);
        assert_eq!(none.steps, 1);
        assert!((none.train_seconds - 2.0).abs() < 1e-9);
    }
}
