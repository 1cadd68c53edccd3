//! The training loop.

use std::collections::BTreeMap;
use std::time::Instant;

use aurl_core::tokenize::{TokenId, Vocabulary};
use burn::optim::{GradientsAccumulator, ModuleOptimizer};

use super::adversary::adversary_round;
use super::objective::{StepContext, TrainBatch, TrainModel};
use super::order::{DataCursor, DataOrder, EpochWindows};
use super::{
    Checkpointing, LrSchedule, Resume, SampleCheck, StepMetrics, TokenWindows, TrainConfig,
    TrainReport, TrainState, clip_global_norm, global_grad_norm, model_device,
};
use crate::error::ModelError;
use crate::loss::{GrammarLoss, TokenLoss};
use crate::{Transformer, TransformerConfig};

/// A training run: data, config and where checkpoints go. `C` is the configuration type of
/// the model trained (see [`TrainModel`]), saved in its checkpoints.
///
/// Everything random derives from the config's seed and the step (the batch order from the
/// seed and the epoch, dropout from the seed and the step; per-epoch windows, e.g. augmented
/// ones, from the epoch), and checkpoints record the data cursor, so a run resumed from a
/// checkpoint computes exactly what the uninterrupted run would have on the same backend.
/// (Dropout draws from the backend's device RNG, which Burn shares per process: exactness
/// holds when nothing else draws from it concurrently.)
#[derive(Debug)]
pub struct Trainer<'a, C = TransformerConfig> {
    config: &'a TrainConfig,
    train: EpochWindows<'a>,
    valid: &'a TokenWindows,
    checkpoints: Option<Checkpointing<'a, C>>,
    vocabulary: Option<&'a Vocabulary>,
}

/// Trains `model` (on an autodiff device) without checkpoints; see [`Trainer::run`].
///
/// # Errors
/// As [`Trainer::run`].
pub fn train(
    model: Transformer,
    config: &TrainConfig,
    train: &TokenWindows,
    valid: &TokenWindows,
    on_step: impl FnMut(&StepMetrics),
) -> Result<(Transformer, TrainReport), ModelError> {
    Trainer::new(config, train, valid).run(model, None, on_step)
}

impl<'a, C: Clone> Trainer<'a, C> {
    /// A run over `train`, validating on `valid`.
    #[must_use]
    pub fn new(config: &'a TrainConfig, train: &'a TokenWindows, valid: &'a TokenWindows) -> Self {
        Self {
            config,
            train: EpochWindows::Fixed(train),
            valid,
            checkpoints: None,
            vocabulary: None,
        }
    }

    /// The vocabulary of the windows' ids, for the grammar loss (`train.grammar_loss`).
    #[must_use]
    pub fn with_grammar(mut self, vocabulary: &'a Vocabulary) -> Self {
        self.vocabulary = Some(vocabulary);
        self
    }

    /// Trains on `windows(epoch)` in each epoch instead of the same windows every epoch —
    /// how augmentation reaches training (see `aurl_data::corpus::ScoreCorpus::augmented_train`).
    /// `windows` must be a pure function of the epoch with the same padding id every
    /// epoch; the window length may change between epochs (a length curriculum): a batch
    /// never mixes lengths, so the last batch of an epoch before a change may be smaller.
    #[must_use]
    pub fn with_epoch_windows(mut self, windows: &'a (dyn Fn(u64) -> TokenWindows + Sync)) -> Self {
        self.train = EpochWindows::PerEpoch(windows);
        self
    }

    /// Writes checkpoints as `policy` says.
    #[must_use]
    pub fn with_checkpoints(mut self, policy: Checkpointing<'a, C>) -> Self {
        self.checkpoints = Some(policy);
        self
    }

    /// Trains `model` (on an autodiff device), calling `on_step` after every step. With
    /// `resume` (its optimizers' states and loop position, e.g. from
    /// [`Resumed::into_resume`](super::Resumed::into_resume); the model passed is its model),
    /// the run continues from that step.
    ///
    /// A model with a second player ([`TrainModel::has_adversary`], the VAE-GAN) gets a second
    /// optimizer with its own schedule (`train.discriminator`): each step's backward pass
    /// yields both players' gradients, each applied by its own optimizer.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] for a bad config; [`ModelError::Training`] for no
    /// training windows, windows longer than the model's positions, a model not on an
    /// autodiff device, or too many diverged steps in a row; checkpoint write failures.
    pub fn run<M: TrainModel<Config = C>>(
        &self,
        model: M,
        resume: Option<Resume>,
        on_step: impl FnMut(&StepMetrics),
    ) -> Result<(M, TrainReport), ModelError> {
        self.run_sampled(model, resume, on_step, |_: &M| None)
    }

    /// [`Trainer::run`], calling `sample` with the model (in evaluation mode) every
    /// `train.sample_every` steps: it samples a few sequences (above this crate, e.g. with
    /// `aurl_sampling`, unconstrained) and returns their [`SampleCheck`], which goes into
    /// the step's metrics; a collapse (`train.collapse_error_rate`, `train.collapse_repeat`)
    /// rolls the run back like a run of bad steps.
    ///
    /// # Errors
    /// As [`Trainer::run`], and [`ModelError::Training`] when the samples still collapse
    /// after `max_rollbacks` rollbacks.
    pub fn run_sampled<M: TrainModel<Config = C>>(
        &self,
        mut model: M,
        resume: Option<Resume>,
        mut on_step: impl FnMut(&StepMetrics),
        mut sample: impl FnMut(&M) -> Option<SampleCheck>,
    ) -> Result<(M, TrainReport), ModelError> {
        let config = self.config;
        config.validate()?;
        if let EpochWindows::Fixed(w) = self.train
            && w.is_empty()
        {
            return Err(ModelError::Training("no training windows".into()));
        }
        let device =
            model_device(&model).ok_or_else(|| ModelError::Training("no device".into()))?;
        if !device.is_autodiff() {
            return Err(ModelError::Training(
                "the model must live on an autodiff device (device.autodiff())".into(),
            ));
        }
        let mut optim = config.optimizer.init(config.weight_decay);
        let adversary_config = &config.discriminator;
        let mut adversary_optim: Option<ModuleOptimizer> = model.has_adversary().then(|| {
            adversary_config
                .optimizer
                .init(adversary_config.weight_decay)
        });
        let mut state = TrainState {
            step: 0,
            tokens: 0,
            skipped: 0,
            last_loss: f64::NAN,
            valid_nll: None,
            seed: config.seed,
            best_valid_nll: None,
            best_step: None,
            evals_since_best: 0,
            data: None,
            lr_scale: 1.0,
            plateau_evals: 0,
            rollbacks: 0,
            optimizer: config.optimizer,
            adversary_optimizer: model.has_adversary().then_some(adversary_config.optimizer),
        };
        if let Some(resume) = resume {
            (optim, adversary_optim, state) =
                resume.restore(config, optim, adversary_optim, state)?;
        }
        let first_step = state.step;
        // Checkpoints from before the cursor was recorded: fixed windows, so the cursor
        // follows from the step.
        let cursor = state.data.unwrap_or_else(|| {
            let count = match self.train {
                EpochWindows::Fixed(w) => w.count().max(1),
                EpochWindows::PerEpoch(_) => usize::MAX,
            };
            let position = state.step * config.batch_size * config.grad_accumulation;
            DataCursor {
                epoch: (position / count) as u64,
                next: position % count,
            }
        });
        let mut data = DataOrder::new(&self.train, config.seed, cursor)?;
        let pad = data.windows().pad();
        let max_positions = model.max_positions();
        let too_long = |len: usize| {
            (len > max_positions).then(|| {
                ModelError::Training(format!(
                    "windows of {len} tokens exceed the model's {max_positions} positions"
                ))
            })
        };
        if let Some(e) = too_long(data.windows().len()) {
            return Err(e);
        }
        let loss_fn = TokenLoss::new(model.vocab_size())
            .with_padding(usize::from(pad))
            .with_smoothing(config.label_smoothing)?;
        let grammar = match (config.grammar_loss > 0.0, self.vocabulary) {
            (false, _) => None,
            (true, Some(vocab)) if vocab.len() == model.vocab_size() => {
                Some(GrammarLoss::new(vocab))
            }
            (true, _) => {
                return Err(crate::error::invalid(
                    "train.grammar_loss",
                    "needs the model's vocabulary (Trainer::with_grammar)",
                ));
            }
        };
        let mut input_rows: Vec<Vec<TokenId>> = Vec::new();
        let started = Instant::now();
        let mut run_tokens = 0usize;
        let mut bad_in_a_row = 0usize;
        // The state a rollback returns to: the start, then every finite validation.
        let mut last_good = Some((
            model.clone(),
            optim.to_record(),
            adversary_optim.as_ref().map(ModuleOptimizer::to_record),
            state.clone(),
        ));
        let mut rows = TokenWindows::default();
        let mut all_rows: Vec<usize> = Vec::with_capacity(config.batch_size);
        // The weights of the best validation (this call's; a resumed run knows the best
        // value, and its weights are in the checkpoint's `best/`).
        let mut best_model: Option<M> = None;
        let mut stopped_early = false;
        // Set by a run of bad steps or a collapse of the samples: the next iteration rolls
        // back (or stops, once the rollbacks are spent).
        let mut pending_rollback: Option<String> = None;
        loop {
            if let Some(reason) = pending_rollback.take() {
                if state.rollbacks >= config.max_rollbacks {
                    tracing::error!(step = state.step, rollbacks = state.rollbacks, %reason, "training diverged");
                    return Err(ModelError::Training(format!(
                        "{reason} after {} rollbacks; lower the learning rate",
                        state.rollbacks
                    )));
                }
                let Some((good_model, good_record, good_adversary, good_state)) = last_good.take()
                else {
                    return Err(ModelError::Training("no state to roll back to".into()));
                };
                let at_step = state.step;
                let rollbacks = state.rollbacks + 1;
                let skipped = state.skipped;
                model = good_model;
                optim = optim.load_record(good_record);
                if let (Some(o), Some(record)) = (adversary_optim.take(), good_adversary) {
                    adversary_optim = Some(o.load_record(record));
                }
                state = good_state;
                state.rollbacks = rollbacks;
                state.skipped = skipped;
                state.lr_scale *= config.rollback_lr_factor;
                data = DataOrder::new(&self.train, config.seed, state.data.unwrap_or(cursor))?;
                bad_in_a_row = 0;
                tracing::warn!(
                    at_step,
                    back_to = state.step,
                    lr_scale = state.lr_scale,
                    rollbacks,
                    %reason,
                    "rolled back"
                );
                // The restored state (lower rate included) is the new fallback.
                last_good = Some((
                    model.clone(),
                    optim.to_record(),
                    adversary_optim.as_ref().map(ModuleOptimizer::to_record),
                    state.clone(),
                ));
            }
            if state.step >= config.steps {
                break;
            }
            let step = state.step;
            // Dropout masks depend only on the seed and the step.
            device.seed(config.seed.wrapping_add(step as u64));
            let step_start = Instant::now();
            let lr = config.lr_schedule.rate(
                step,
                config.steps,
                config.warmup_steps,
                config.learning_rate,
                config.min_learning_rate,
                state.lr_scale,
            );
            let adversary_step = adversary_optim.is_some()
                && model.adversary_active(step)
                && adversary_config.trains_at(step);
            let adversary_lr = adversary_config.lr_schedule.rate(
                step,
                config.steps,
                adversary_config.warmup_steps,
                adversary_config.learning_rate,
                adversary_config.min_learning_rate,
                state.lr_scale,
            );
            // One micro-batch, or the sum of `grad_accumulation` of them with each loss
            // scaled by 1/k (so the loss reported is their mean).
            let micro = config.grad_accumulation;
            let (mut loss_value, mut step_tokens) = (0.0, 0usize);
            let mut accumulated = GradientsAccumulator::<M>::new();
            let mut adversary_accumulated = GradientsAccumulator::<M>::new();
            let mut adversary_single = None;
            let mut adversary_value = 0.0;
            let mut single = None;
            let mut components = BTreeMap::new();
            let context = StepContext {
                step,
                seed: config.seed,
                keep_logits: grammar.is_some(),
                adversary: adversary_step,
            };
            for round in 0..micro {
                data.next_batch(config.batch_size, &mut rows)?;
                // Fewer rows when an epoch of shorter windows ends a curriculum stage.
                all_rows.clear();
                all_rows.extend(0..rows.count());
                if let Some(e) = too_long(rows.len()) {
                    return Err(e);
                }
                let window_len = rows.len();
                let (inputs, targets) = rows.batch(&all_rows, &device);
                let batch = TrainBatch {
                    inputs,
                    targets,
                    pad: i64::from(pad),
                };
                if adversary_step && round == 0 {
                    // The discriminator's rounds of its own before the shared one.
                    for extra in 1..adversary_config.steps {
                        let context = StepContext {
                            seed: config.seed ^ (extra as u64).wrapping_mul(0xA24B_AED4_963E_E407),
                            ..context
                        };
                        if let Some(o) = adversary_optim.as_mut() {
                            model = adversary_round(
                                model,
                                o,
                                batch.clone(),
                                context,
                                adversary_lr,
                                adversary_config.grad_clip_norm,
                            )?;
                        }
                    }
                }
                let step_loss = model.train_loss(batch, &loss_fn, context)?;
                let mut loss = step_loss.total;
                if let (Some(grammar), Some(logits)) = (&grammar, step_loss.logits) {
                    input_rows.clear();
                    input_rows.extend(
                        all_rows
                            .iter()
                            .filter_map(|&i| rows.get(i))
                            .map(|w| w[..window_len].to_vec()),
                    );
                    let mass = grammar.forward(logits, grammar.masks(&input_rows, &device));
                    *components.entry("grammar").or_insert(0.0) +=
                        f64::from(mass.clone().into_scalar::<f32>()) / micro as f64;
                    loss = loss + mass.mul_scalar(config.grammar_loss);
                }
                if micro > 1 {
                    loss = loss.div_scalar(micro as f64);
                }
                loss_value += f64::from(loss.clone().into_scalar::<f32>());
                for (name, part) in step_loss.parts {
                    *components.entry(name).or_insert(0.0) +=
                        f64::from(part.into_scalar::<f32>()) / micro as f64;
                }
                for (name, value) in step_loss.values {
                    *components.entry(name).or_insert(0.0) += value / micro as f64;
                }
                step_tokens += rows.target_tokens(&all_rows);
                let objective = match step_loss.adversary {
                    Some(adversary) => {
                        let adversary = if micro > 1 {
                            adversary.div_scalar(micro as f64)
                        } else {
                            adversary
                        };
                        adversary_value += f64::from(adversary.clone().into_scalar::<f32>());
                        loss + adversary
                    }
                    None => loss,
                };
                let mut raw = objective.backward();
                let grads = model.generator_grads(&mut raw);
                let adversary_grads = model.adversary_grads(&mut raw);
                if micro == 1 {
                    single = Some(grads);
                    adversary_single = Some(adversary_grads);
                } else {
                    accumulated.accumulate(&model, grads);
                    adversary_accumulated.accumulate(&model, adversary_grads);
                }
            }
            let mut grads = single.unwrap_or_else(|| accumulated.grads());
            let mut adversary_grads =
                adversary_single.unwrap_or_else(|| adversary_accumulated.grads());
            let grad_norm = global_grad_norm(&model, &grads);
            let adversary_norm = global_grad_norm(&model, &adversary_grads);
            state.step += 1;
            state.data = Some(data.cursor());
            let exploding = config.skip_grad_norm.is_some_and(|max| grad_norm > max);
            let bad_adversary = !adversary_value.is_finite() || !adversary_norm.is_finite();
            if !loss_value.is_finite() || !grad_norm.is_finite() || exploding || bad_adversary {
                tracing::warn!(step, loss = loss_value, grad_norm, "skipped a bad step");
                state.skipped += 1;
                bad_in_a_row += 1;
                if bad_in_a_row >= config.max_bad_steps {
                    pending_rollback = Some(format!(
                        "{bad_in_a_row} consecutive steps with a non-finite loss or an \
                         exploding gradient (last at step {step})"
                    ));
                }
                continue;
            }
            bad_in_a_row = 0;
            if let Some(max) = config.grad_clip_norm {
                clip_global_norm(&model, &mut grads, grad_norm, max);
            }
            model = optim.step(lr, model, grads);
            if let Some(o) = adversary_optim.as_mut()
                && !adversary_grads.is_empty()
            {
                if let Some(max) = adversary_config.grad_clip_norm {
                    clip_global_norm(&model, &mut adversary_grads, adversary_norm, max);
                }
                model = o
                    .step(adversary_lr, model, adversary_grads)
                    .after_adversary_step();
                components.insert("discriminator_lr", adversary_lr);
                components.insert("discriminator_grad_norm", f64::from(adversary_norm));
            }
            state.last_loss = loss_value;
            let step_seconds = step_start.elapsed().as_secs_f64();
            state.tokens += step_tokens;
            run_tokens += step_tokens;
            let samples = (config.sample_every > 0
                && state.step.is_multiple_of(config.sample_every))
            .then(|| sample(&model.valid()))
            .flatten();
            let collapse = samples.as_ref().and_then(|c| c.collapse(config));
            if let Some(check) = &samples {
                tracing::info!(
                    step = state.step,
                    grammar_error_rate = check.grammar_error_rate,
                    note_pairing_rate = check.note_pairing_rate,
                    longest_repeat = check.longest_repeat,
                    "samples"
                );
            }
            let out_of_time = config
                .max_seconds
                .is_some_and(|s| started.elapsed().as_secs_f64() >= s);
            let last = state.step == config.steps || out_of_time;
            let validate =
                last || (config.eval_every > 0 && state.step.is_multiple_of(config.eval_every));
            if validate {
                state.valid_nll = model.valid().valid_nll(self.valid, config.batch_size);
                tracing::info!(
                    step = state.step,
                    valid_nll = state.valid_nll,
                    previous_best = state.best_valid_nll,
                    lr,
                    "validation"
                );
                // A collapsed model is never a state to come back to, nor a best one.
                if let Some(nll) = state
                    .valid_nll
                    .filter(|v| v.is_finite() && collapse.is_none())
                {
                    last_good = Some((
                        model.clone(),
                        optim.to_record(),
                        adversary_optim.as_ref().map(ModuleOptimizer::to_record),
                        state.clone(),
                    ));
                    if state.best_valid_nll.is_none_or(|best| nll < best) {
                        state.best_valid_nll = Some(nll);
                        state.best_step = Some(state.step);
                        state.evals_since_best = 0;
                        state.plateau_evals = 0;
                        if config.keep_best {
                            best_model = Some(model.clone());
                            if let Some(c) = &self.checkpoints {
                                c.write_best(&model)?;
                            }
                        }
                    } else {
                        state.evals_since_best += 1;
                        state.plateau_evals += 1;
                        if let LrSchedule::Plateau { factor, patience } = config.lr_schedule
                            && state.plateau_evals >= patience
                        {
                            state.lr_scale *= factor;
                            state.plateau_evals = 0;
                            tracing::info!(
                                step = state.step,
                                lr_scale = state.lr_scale,
                                "plateau: learning rate reduced"
                            );
                        }
                    }
                }
            }
            stopped_early = config
                .early_stopping
                .is_some_and(|patience| state.evals_since_best >= patience);
            if let Some(c) = &self.checkpoints
                && collapse.is_none()
                && (last || stopped_early || (c.every > 0 && state.step.is_multiple_of(c.every)))
            {
                let path = c.write(&model, &optim, adversary_optim.as_ref(), &state)?;
                tracing::info!(step = state.step, path = %path.display(), "checkpoint written");
            }
            on_step(&StepMetrics {
                step: state.step,
                loss: loss_value,
                learning_rate: lr,
                grad_norm: f64::from(grad_norm),
                tokens_per_second: step_tokens as f64 / step_seconds.max(1e-9),
                valid_nll: if validate { state.valid_nll } else { None },
                components,
                samples,
            });
            if let Some(reason) = collapse {
                tracing::warn!(step = state.step, %reason, "collapse");
                pending_rollback = Some(reason);
                continue;
            }
            if out_of_time || stopped_early {
                tracing::info!(
                    step = state.step,
                    out_of_time,
                    stopped_early,
                    "training stopped before its last step"
                );
                break;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let restored_best = best_model.is_some() && state.best_step != Some(state.step);
        let model = match best_model {
            Some(best) if restored_best => best,
            _ => model,
        };
        Ok((
            model,
            TrainReport {
                first_step,
                steps: state.step - first_step,
                skipped_steps: state.skipped,
                rollbacks: state.rollbacks,
                final_loss: state.last_loss,
                valid_nll: state.valid_nll,
                best_valid_nll: state.best_valid_nll,
                best_step: state.best_step,
                restored_best,
                stopped_early,
                tokens_per_second: run_tokens as f64 / seconds.max(1e-9),
                seconds,
            },
        ))
    }
}
