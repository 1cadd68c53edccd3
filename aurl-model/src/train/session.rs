//! One call of [`Trainer::run_sampled`](super::Trainer::run_sampled): the state its loop
//! carries and the steps of that loop, each named — start, roll back, take a step (see
//! [`super::gradients`]), validate, checkpoint, finish.

use std::time::Instant;

use aurl_core::tokenize::TokenId;
use burn::optim::{GradientsParams, ModuleOptimizer, OptimizerRecord};
use burn::prelude::Device;

use super::gradients::StepGradients;
use super::objective::TrainModel;
use super::{
    LrSchedule, Resume, SampleCheck, TrainConfig, TrainReport, TrainState, Trainer,
    clip_global_norm, global_grad_norm, model_device,
};
use crate::error::ModelError;
use crate::loss::{GrammarLoss, TokenLoss};
use aurl_data::windows::{DataCursor, DataOrder, EpochWindows};

/// What a rollback returns to: the model, both optimizers' states and the loop's state.
pub(super) struct Snapshot<M> {
    model: M,
    optimizer: OptimizerRecord,
    adversary: Option<OptimizerRecord>,
    state: TrainState,
}

/// The learning rates of one step and whether the second player trains in it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rates {
    pub(super) lr: f64,
    pub(super) adversary_lr: f64,
    pub(super) adversary_step: bool,
}

/// What applying a step's gradients came to.
pub(super) enum Applied {
    /// The optimizers stepped; the gradient's global norm before clipping.
    Stepped { grad_norm: f32 },
    /// A non-finite loss or an exploding gradient: the step was skipped; `Some` when that
    /// makes too many in a row and the run must roll back.
    Skipped(Option<String>),
}

/// What the loop does after a step.
pub(super) enum Next {
    /// The next step.
    Continue,
    /// Roll back (the samples collapsed: the reason).
    RollBack(String),
    /// End the run before `train.steps`: out of time, or stopped early.
    Stop { stopped_early: bool },
}

/// What [`Session::after_step`] did and decided.
pub(super) struct AfterStep {
    /// Whether the step validated (its metrics carry the validation NLL).
    pub(super) validated: bool,
    pub(super) next: Next,
}

/// The state of one training run, between the steps of its loop. The model itself flows
/// through the loop by value (so the optimizers update weights nobody else holds, in place).
pub(super) struct Session<'t, 'a, M, C> {
    pub(super) trainer: &'t Trainer<'a, C>,
    pub(super) config: &'a TrainConfig,
    pub(super) device: Device,
    optim: ModuleOptimizer,
    pub(super) adversary_optim: Option<ModuleOptimizer>,
    pub(super) state: TrainState,
    /// The cursor the run started from (the fallback of a snapshot without one).
    cursor: DataCursor,
    pub(super) data: DataOrder<'t>,
    pub(super) pad: TokenId,
    pub(super) loss_fn: TokenLoss,
    pub(super) grammar: Option<GrammarLoss>,
    /// The state a rollback returns to: the start, then every finite validation.
    last_good: Option<Snapshot<M>>,
    /// The weights of the best validation (this call's; a resumed run knows the best value,
    /// and its weights are in the checkpoint's `best/`).
    best_model: Option<M>,
    bad_in_a_row: usize,
    first_step: usize,
    run_tokens: usize,
    started: Instant,
}

impl<'t, 'a, M: TrainModel<Config = C>, C: Clone> Session<'t, 'a, M, C> {
    /// Checks the run can start, builds its optimizers (restored from `resume`), data order
    /// and losses, and takes the first snapshot of `model`.
    pub(super) fn start(
        trainer: &'t Trainer<'a, C>,
        model: &M,
        resume: Option<Resume>,
    ) -> Result<Self, ModelError> {
        let config = trainer.config;
        config.validate()?;
        if let EpochWindows::Fixed(w) = trainer.train
            && w.is_empty()
        {
            return Err(ModelError::Training("no training windows".into()));
        }
        let device = model_device(model).ok_or_else(|| ModelError::Training("no device".into()))?;
        if !device.is_autodiff() {
            return Err(ModelError::Training(
                "the model must live on an autodiff device (device.autodiff())".into(),
            ));
        }
        let adversary = &config.discriminator;
        let mut optim = config.optimizer.init(config.weight_decay);
        let mut adversary_optim = model
            .has_adversary()
            .then(|| adversary.optimizer.init(adversary.weight_decay));
        let mut state = TrainState::new(config, model.has_adversary());
        if let Some(resume) = resume {
            (optim, adversary_optim, state) =
                resume.restore(config, optim, adversary_optim, state)?;
        }
        let cursor = state
            .data
            .unwrap_or_else(|| cursor_at_step(&trainer.train, config, state.step));
        let data = DataOrder::new(&trainer.train, config.seed, cursor)?;
        let pad = data.windows().pad();
        fits(data.windows().len(), model.max_positions())?;
        let loss_fn = TokenLoss::new(model.vocab_size())
            .with_padding(usize::from(pad))
            .with_smoothing(config.label_smoothing)?;
        let grammar = grammar_loss(trainer, model.vocab_size())?;
        let mut session = Self {
            trainer,
            config,
            device,
            optim,
            adversary_optim,
            first_step: state.step,
            state,
            cursor,
            data,
            pad,
            loss_fn,
            grammar,
            last_good: None,
            best_model: None,
            bad_in_a_row: 0,
            run_tokens: 0,
            started: Instant::now(),
        };
        session.last_good = Some(session.snapshot(model));
        Ok(session)
    }

    /// `model`, both optimizers' states and the loop's state, as they are now.
    fn snapshot(&self, model: &M) -> Snapshot<M> {
        Snapshot {
            model: model.clone(),
            optimizer: self.optim.to_record(),
            adversary: self
                .adversary_optim
                .as_ref()
                .map(ModuleOptimizer::to_record),
            state: self.state.clone(),
        }
    }

    /// Returns to the last good snapshot with the learning rate scaled down by
    /// `train.rollback_lr_factor` (the restored state becomes the next fallback); returns
    /// the snapshot's model.
    ///
    /// # Errors
    /// [`ModelError::Training`] once `train.max_rollbacks` rollbacks are spent.
    pub(super) fn roll_back(&mut self, reason: &str) -> Result<M, ModelError> {
        let config = self.config;
        if self.state.rollbacks >= config.max_rollbacks {
            tracing::error!(step = self.state.step, rollbacks = self.state.rollbacks, %reason, "training diverged");
            return Err(ModelError::Training(format!(
                "{reason} after {} rollbacks; lower the learning rate",
                self.state.rollbacks
            )));
        }
        let Some(good) = self.last_good.take() else {
            return Err(ModelError::Training("no state to roll back to".into()));
        };
        let at_step = self.state.step;
        let rollbacks = self.state.rollbacks + 1;
        let skipped = self.state.skipped;
        self.optim = self.optim.clone().load_record(good.optimizer);
        if let (Some(o), Some(record)) = (self.adversary_optim.take(), good.adversary) {
            self.adversary_optim = Some(o.load_record(record));
        }
        self.state = good.state;
        self.state.rollbacks = rollbacks;
        self.state.skipped = skipped;
        self.state.lr_scale *= config.rollback_lr_factor;
        let cursor = self.state.data.unwrap_or(self.cursor);
        self.data = DataOrder::new(&self.trainer.train, config.seed, cursor)?;
        self.bad_in_a_row = 0;
        tracing::warn!(
            at_step,
            back_to = self.state.step,
            lr_scale = self.state.lr_scale,
            rollbacks,
            %reason,
            "rolled back"
        );
        self.last_good = Some(self.snapshot(&good.model));
        Ok(good.model)
    }

    /// The learning rates of `step` for `model`, and whether its second player trains in it.
    pub(super) fn rates(&self, model: &M, step: usize) -> Rates {
        let config = self.config;
        let adversary = &config.discriminator;
        Rates {
            lr: config.lr_schedule.rate(
                step,
                config.steps,
                config.warmup_steps,
                config.learning_rate,
                config.min_learning_rate,
                self.state.lr_scale,
            ),
            adversary_lr: adversary.lr_schedule.rate(
                step,
                config.steps,
                adversary.warmup_steps,
                adversary.learning_rate,
                adversary.min_learning_rate,
                self.state.lr_scale,
            ),
            adversary_step: self.adversary_optim.is_some()
                && model.adversary_active(step)
                && adversary.trains_at(step),
        }
    }

    /// Counts the step and applies its gradients (clipped) to `model`, or skips it when its
    /// loss or gradient norm is not finite or the gradient explodes; returns the model.
    /// Takes the gradients out of `step`; the second player's rate and norm join its
    /// components.
    pub(super) fn apply(
        &mut self,
        model: M,
        step: &mut StepGradients,
        rates: Rates,
    ) -> (M, Applied) {
        let config = self.config;
        let mut grads = std::mem::take(&mut step.grads);
        let adversary_grads = std::mem::take(&mut step.adversary_grads);
        let (loss, tokens) = (step.loss, step.tokens);
        let grad_norm = global_grad_norm(&model, &grads);
        let adversary_norm = global_grad_norm(&model, &adversary_grads);
        let index = self.state.step;
        self.state.step += 1;
        self.state.data = Some(self.data.cursor());
        let exploding = config.skip_grad_norm.is_some_and(|max| grad_norm > max);
        let bad_adversary = !step.adversary_loss.is_finite() || !adversary_norm.is_finite();
        if !loss.is_finite() || !grad_norm.is_finite() || exploding || bad_adversary {
            tracing::warn!(step = index, loss, grad_norm, "skipped a bad step");
            self.state.skipped += 1;
            self.bad_in_a_row += 1;
            let rollback = (self.bad_in_a_row >= config.max_bad_steps).then(|| {
                format!(
                    "{} consecutive steps with a non-finite loss or an exploding gradient \
                     (last at step {index})",
                    self.bad_in_a_row
                )
            });
            return (model, Applied::Skipped(rollback));
        }
        self.bad_in_a_row = 0;
        if let Some(max) = config.grad_clip_norm {
            clip_global_norm(&model, &mut grads, grad_norm, max);
        }
        let model = self.optim.step(rates.lr, model, grads);
        let model = self.step_adversary(
            model,
            adversary_grads,
            adversary_norm,
            rates.adversary_lr,
            &mut step.components,
        );
        self.state.last_loss = loss;
        self.state.tokens += tokens;
        self.run_tokens += tokens;
        (model, Applied::Stepped { grad_norm })
    }

    /// The second player's optimizer step on `model`, when it has gradients.
    fn step_adversary(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        norm: f32,
        lr: f64,
        components: &mut std::collections::BTreeMap<&'static str, f64>,
    ) -> M {
        let Some(optim) = self.adversary_optim.as_mut() else {
            return model;
        };
        if grads.is_empty() {
            return model;
        }
        if let Some(max) = self.config.discriminator.grad_clip_norm {
            clip_global_norm(&model, &mut grads, norm, max);
        }
        components.insert("discriminator_lr", lr);
        components.insert("discriminator_grad_norm", f64::from(norm));
        optim.step(lr, model, grads).after_adversary_step()
    }

    /// After a step that updated `model`: checks its `samples` for a collapse, validates
    /// when due (every `train.eval_every` steps, and at the last), decides early stopping,
    /// writes a checkpoint when due (never of a collapsed model), and says what comes next.
    ///
    /// # Errors
    /// Writing the best weights or a checkpoint failed.
    pub(super) fn after_step(
        &mut self,
        model: &M,
        samples: Option<&SampleCheck>,
        lr: f64,
    ) -> Result<AfterStep, ModelError> {
        let config = self.config;
        let step = self.state.step;
        let collapse = samples.and_then(|c| c.collapse(config));
        if let Some(check) = samples {
            tracing::info!(
                step,
                grammar_error_rate = check.grammar_error_rate,
                note_pairing_rate = check.note_pairing_rate,
                longest_repeat = check.longest_repeat,
                "samples"
            );
        }
        let (collapse, out_of_time) = self.rank_zero_decides(collapse, self.out_of_time())?;
        let last = step == config.steps || out_of_time;
        if last
            || config
                .distributed
                .check_every
                .is_some_and(|every| step.is_multiple_of(every))
        {
            self.check_replicas(model)?;
        }
        let validated = last
            || config
                .eval_every
                .is_some_and(|every| step.is_multiple_of(every));
        if validated {
            self.validate(model, collapse.is_some(), lr)?;
        }
        let stopped_early = config
            .early_stopping
            .is_some_and(|patience| self.state.evals_since_best >= patience);
        if collapse.is_none() {
            self.checkpoint(model, last || stopped_early)?;
        }
        let next = if let Some(reason) = collapse {
            tracing::warn!(step, %reason, "collapse");
            Next::RollBack(reason)
        } else if out_of_time || stopped_early {
            tracing::info!(
                step,
                out_of_time,
                stopped_early,
                "training stopped before its last step"
            );
            Next::Stop { stopped_early }
        } else {
            Next::Continue
        };
        Ok(AfterStep { validated, next })
    }

    /// Whether the run's time budget (`train.max_seconds`) is spent.
    fn out_of_time(&self) -> bool {
        self.config
            .max_seconds
            .is_some_and(|s| self.started.elapsed().as_secs_f64() >= s)
    }

    /// Validates `model`, and when the result is finite and the samples did not `collapse`:
    /// takes a snapshot, keeps (and writes) the best weights, or counts a validation without
    /// improvement (early stopping, the plateau schedule).
    ///
    /// # Errors
    /// Writing the best weights failed.
    fn validate(&mut self, model: &M, collapse: bool, lr: f64) -> Result<(), ModelError> {
        let config = self.config;
        self.state.valid_nll = self.valid_nll(&model.valid())?;
        tracing::info!(
            step = self.state.step,
            valid_nll = self.state.valid_nll,
            previous_best = self.state.best_valid_nll,
            lr,
            "validation"
        );
        // A collapsed model is never a state to come back to, nor a best one.
        let Some(nll) = self.state.valid_nll.filter(|v| v.is_finite() && !collapse) else {
            return Ok(());
        };
        self.last_good = Some(self.snapshot(model));
        if self.state.best_valid_nll.is_none_or(|best| nll < best) {
            self.state.best_valid_nll = Some(nll);
            self.state.best_step = Some(self.state.step);
            self.state.evals_since_best = 0;
            self.state.plateau_evals = 0;
            if config.keep_best {
                self.best_model = Some(model.clone());
                if let Some(c) = self
                    .trainer
                    .checkpoints
                    .as_ref()
                    .filter(|_| self.trainer.writes())
                {
                    c.write_best(model)?;
                }
            }
            return Ok(());
        }
        self.state.evals_since_best += 1;
        self.state.plateau_evals += 1;
        if let LrSchedule::Plateau { factor, patience } = config.lr_schedule
            && self.state.plateau_evals >= patience
        {
            self.state.lr_scale *= factor;
            self.state.plateau_evals = 0;
            tracing::info!(
                step = self.state.step,
                lr_scale = self.state.lr_scale,
                "plateau: learning rate reduced"
            );
        }
        Ok(())
    }

    /// Writes a checkpoint of `model`, both optimizers and the loop's state, when the
    /// checkpoint policy asks for one at this step (or `due` says the run ends).
    ///
    /// # Errors
    /// Writing the checkpoint failed.
    fn checkpoint(&self, model: &M, due: bool) -> Result<(), ModelError> {
        let Some(c) = self
            .trainer
            .checkpoints
            .as_ref()
            .filter(|_| self.trainer.writes())
        else {
            return Ok(());
        };
        if due || (c.every > 0 && self.state.step.is_multiple_of(c.every)) {
            let path = c.write(
                model,
                &self.optim,
                self.adversary_optim.as_ref(),
                &self.state,
            )?;
            tracing::info!(step = self.state.step, path = %path.display(), "checkpoint written");
        }
        Ok(())
    }

    /// The trained model (the best validation's weights when `train.keep_best` kept
    /// better ones than the last `model`) and the run's report.
    pub(super) fn finish(self, model: M, stopped_early: bool) -> (M, TrainReport) {
        let seconds = self.started.elapsed().as_secs_f64();
        let state = self.state;
        let restored_best = self.best_model.is_some() && state.best_step != Some(state.step);
        let model = match self.best_model {
            Some(best) if restored_best => best,
            _ => model,
        };
        let report = TrainReport {
            first_step: self.first_step,
            steps: state.step - self.first_step,
            skipped_steps: state.skipped,
            rollbacks: state.rollbacks,
            final_loss: state.last_loss,
            valid_nll: state.valid_nll,
            best_valid_nll: state.best_valid_nll,
            best_step: state.best_step,
            restored_best,
            stopped_early,
            tokens_per_second: self.run_tokens as f64 / seconds.max(1e-9),
            seconds,
        };
        (model, report)
    }
}

/// Where the data order stands after `step` steps, for checkpoints from before the cursor
/// was recorded (fixed windows, so the cursor follows from the step).
fn cursor_at_step(train: &EpochWindows<'_>, config: &TrainConfig, step: usize) -> DataCursor {
    let count = match train {
        EpochWindows::Fixed(w) => w.count().max(1),
        EpochWindows::PerEpoch(_) => usize::MAX,
    };
    let position = step * config.batch_size * config.grad_accumulation;
    DataCursor {
        epoch: (position / count) as u64,
        next: position % count,
    }
}

/// Refuses windows of `len` tokens when the model has only `max_positions`.
///
/// # Errors
/// [`ModelError::Training`] naming both lengths.
pub(super) fn fits(len: usize, max_positions: usize) -> Result<(), ModelError> {
    if len > max_positions {
        return Err(ModelError::Training(format!(
            "windows of {len} tokens exceed the model's {max_positions} positions"
        )));
    }
    Ok(())
}

/// The grammar loss `train.grammar_loss` asks for, over the trainer's vocabulary.
///
/// # Errors
/// [`ModelError::InvalidConfig`] when it is asked for without the model's vocabulary.
fn grammar_loss<C>(
    trainer: &Trainer<'_, C>,
    vocab_size: usize,
) -> Result<Option<GrammarLoss>, ModelError> {
    match (trainer.config.grammar_loss > 0.0, trainer.vocabulary) {
        (false, _) => Ok(None),
        (true, Some(vocab)) if vocab.len() == vocab_size => Ok(Some(GrammarLoss::new(vocab))),
        (true, _) => Err(crate::error::invalid(
            "train.grammar_loss",
            "needs the model's vocabulary (Trainer::with_grammar)",
        )),
    }
}
