//! The training loop.

use std::time::Instant;

use aurl_core::tokenize::Vocabulary;

use super::distributed::{Collective, GradientPacking};
use super::gradients::Batches;
use super::objective::TrainModel;
use super::session::{Applied, Next, Session};
use super::{
    Checkpointing, Resume, SampleCheck, StepMetrics, TokenWindows, TrainConfig, TrainReport,
};
use crate::error::ModelError;
use crate::{Transformer, TransformerConfig};
use aurl_data::windows::EpochWindows;

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
    pub(super) config: &'a TrainConfig,
    pub(super) train: EpochWindows<'a>,
    pub(super) valid: &'a TokenWindows,
    pub(super) checkpoints: Option<Checkpointing<'a, C>>,
    pub(super) vocabulary: Option<&'a Vocabulary>,
    pub(super) collective: Option<&'a dyn Collective>,
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
            collective: None,
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

    /// Trains as one rank of `collective` (data parallel): rank 0's initial weights are
    /// broadcast; each rank trains on its share of every global batch of
    /// `train.batch_size` rows ([`shard`](super::distributed::shard)), its loss weighted by
    /// its share of the batch's real target tokens; gradients, losses and the metrics'
    /// components are summed over the ranks in one buffer each step, so every replica
    /// applies the same update and logs the same global loss as one process training on
    /// the whole batch (up to summation order). Rank 0 decides what ends or changes the run
    /// (time budget, sample collapse) and alone writes checkpoints. Each rank validates its
    /// shard of `valid` and the NLL sums are all-reduced; every
    /// `train.distributed.check_every` steps the replicas compare weight checksums. A
    /// checkpoint resumes on any number of ranks (its data cursor counts global batches).
    ///
    /// `train.batch_size` must divide by the number of ranks, and a model with a second
    /// player trains it once per step (`train.discriminator.steps = 1`).
    #[must_use]
    pub fn with_collective(mut self, collective: &'a dyn Collective) -> Self {
        self.collective = Some(collective);
        self
    }

    /// The collective when there is more than one rank.
    pub(super) fn ranks(&self) -> Option<&'a dyn Collective> {
        self.collective.filter(|c| c.world() > 1)
    }

    /// The seed of this process's own noise (dropout masks, a VAE's latent draws): the
    /// run's seed, mixed with the rank when there are several — otherwise every rank would
    /// draw the same noise for its rows. (So a run with noise matches a one-process run in
    /// distribution, not bit for bit; without dropout and latent noise, up to summation
    /// order.)
    pub(super) fn noise_seed(&self) -> u64 {
        match self.ranks() {
            None => self.config.seed,
            Some(r) => aurl_core::rng::SeedRng::derive(
                self.config.seed,
                &[r.rank() as u64, r.world() as u64],
            )
            .next_u64(),
        }
    }

    /// Whether this process writes files (rank 0, or training alone).
    pub(super) fn writes(&self) -> bool {
        self.ranks().is_none_or(|c| c.rank() == 0)
    }

    /// `model` with rank 0's weights on every rank.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] when `train.batch_size` does not divide by the ranks;
    /// [`ModelError::Training`] when the broadcast fails.
    fn replicate<M: TrainModel<Config = C>>(&self, model: M) -> Result<M, ModelError> {
        let Some(ranks) = self.ranks() else {
            return Ok(model);
        };
        if !self.config.batch_size.is_multiple_of(ranks.world()) {
            return Err(crate::error::invalid(
                "train.batch_size",
                format!("must divide by the {} ranks", ranks.world()),
            ));
        }
        if model.has_adversary() && self.config.discriminator.steps > 1 {
            // Its extra rounds step the second player on one rank's gradients alone.
            return Err(crate::error::invalid(
                "train.discriminator.steps",
                "must be 1 when training on several ranks",
            ));
        }
        let packing = GradientPacking::of(&model);
        let mut weights = packing.weights(&model);
        ranks
            .broadcast_f32(&mut weights, 0)
            .map_err(|e| ModelError::Training(format!("initial weights: {e}")))?;
        Ok(packing.load_weights(model, &weights))
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
        model = self.replicate(model)?;
        let mut session = Session::start(self, &model, resume)?;
        let mut batches = Batches::default();
        // Set by a run of bad steps or a collapse of the samples: the next iteration rolls
        // back (or stops, once the rollbacks are spent).
        let mut pending_rollback: Option<String> = None;
        loop {
            if let Some(reason) = pending_rollback.take() {
                model = session.roll_back(&reason)?;
            }
            if session.state.step >= config.steps {
                return Ok(session.finish(model, false));
            }
            // Dropout masks depend only on the seed, the step (and the rank).
            let step = session.state.step;
            session
                .device
                .seed(self.noise_seed().wrapping_add(step as u64));
            let step_start = Instant::now();
            let rates = session.rates(&model, step);
            let (next, mut gradients) = session.gradients(model, rates, &mut batches)?;
            let (next, applied) = session.apply(next, &mut gradients, rates);
            model = next;
            let grad_norm = match applied {
                Applied::Stepped { grad_norm } => grad_norm,
                Applied::Skipped(rollback) => {
                    pending_rollback = rollback;
                    continue;
                }
            };
            let step_seconds = step_start.elapsed().as_secs_f64();
            // Rank 0 samples; what it decides reaches the others in `after_step`.
            let due = config
                .sample_every
                .is_some_and(|every| session.state.step.is_multiple_of(every));
            let samples = (due && self.writes())
                .then(|| sample(&model.valid()))
                .flatten();
            let outcome = session.after_step(&model, samples.as_ref(), rates.lr)?;
            on_step(&StepMetrics {
                step: session.state.step,
                loss: gradients.loss,
                learning_rate: rates.lr,
                grad_norm: f64::from(grad_norm),
                tokens_per_second: gradients.tokens as f64 / step_seconds.max(1e-9),
                valid_nll: if outcome.validated {
                    session.state.valid_nll
                } else {
                    None
                },
                components: gradients.components,
                samples,
            });
            match outcome.next {
                Next::Continue => {}
                Next::RollBack(reason) => pending_rollback = Some(reason),
                Next::Stop { stopped_early } => return Ok(session.finish(model, stopped_early)),
            }
        }
    }
}
