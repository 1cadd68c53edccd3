//! A training run, set up: the resolved config, the tokenizer, the data and its windows.

use crate::burn::prelude::Device;
use crate::core::tokenize::{Tokenizer, Vocabulary};
use crate::data::windows::TokenWindows;
use crate::model::train::distributed::Collective;
use crate::model::vae::Vae;
use crate::model::{Transformer, VaeGan};

use super::budget::{BudgetPlan, plan_budget, step_seconds};
use super::{ModelMode, RunConfig, RunData, RunError};

/// A run's config, tokenizer, data and windows: everything training needs besides the
/// model, built once by [`Job::load`]. The steps of a run are its methods, in order:
/// [`Job::set_epochs`] or [`Job::plan_minutes`] (optional), [`Job::train`],
/// [`Job::generate`], [`Job::write_samples`](super::Job::write_samples) and
/// [`Job::report`].
///
/// ```no_run
/// use aurl::run::{Job, RunConfig, RunDir};
/// let config = RunConfig::from_file("configs/tiny.toml".as_ref(), &[])?;
/// let job = Job::load(config, aurl::backend::default_device())?;
/// let dir = RunDir::create(&job, "runs".as_ref(), None)?;
/// let trained = job.train(&dir, |m| eprintln!("step {}: loss {:.3}", m.step, m.loss))?;
/// let pieces = job.generate(&trained, 1)?;
/// let samples = job.write_samples(&trained.dir, &pieces, None)?;
/// job.report(&trained, &samples).write(&trained.dir)?;
/// # Ok::<(), aurl::run::RunError>(())
/// ```
pub struct Job {
    /// The run's configuration (steps as planned).
    pub config: RunConfig,
    /// The tokenizer of `config.scheme`.
    pub tokenizer: Box<dyn Tokenizer + Send + Sync>,
    /// Its vocabulary.
    pub vocab: Vocabulary,
    /// Both splits.
    pub data: RunData,
    /// Tokens per training window (the model's context).
    pub seq_len: usize,
    /// The training windows (of the first epoch; see [`Job::epoch_windows`]).
    pub train: TokenWindows,
    /// The validation windows.
    pub valid: TokenWindows,
    /// Where the model runs.
    pub device: Device,
}

impl Job {
    /// Builds the tokenizer, reads (or loads from the token cache) both splits and cuts
    /// their windows.
    ///
    /// # Errors
    /// [`RunError::NoData`] when no training file is usable; configuration and data errors.
    pub fn load(config: RunConfig, device: Device) -> Result<Self, RunError> {
        Self::load_on(config, device, None)
    }

    /// [`Job::load`] on one rank of a data-parallel run: the ranks share the tokenization
    /// through the token cache when `data.cache` is set (see [`RunData::load_on`]).
    ///
    /// # Errors
    /// As [`Job::load`].
    pub fn load_on(
        config: RunConfig,
        device: Device,
        ranks: Option<&dyn Collective>,
    ) -> Result<Self, RunError> {
        let tokenizer = config
            .scheme
            .tokenizer(&config.tokenizer)
            .map_err(|e| RunError::Data(Box::new(e)))?;
        let vocab = tokenizer.vocab().clone();
        let data = RunData::load_on(&config, tokenizer.as_ref(), ranks).map_err(RunError::Data)?;
        if data.train.count() == 0 {
            return Err(RunError::NoData {
                paths: config.data.paths.clone(),
                found: data.files,
                failed: data.failed.len(),
            });
        }
        let seq_len = config.model.resolve(&vocab)?.max_seq_len;
        let train = data.train_windows(seq_len, stride(&config, seq_len), &vocab);
        let valid = data.valid_windows(seq_len, &vocab);
        Ok(Self {
            config,
            tokenizer,
            vocab,
            data,
            seq_len,
            train,
            valid,
            device,
        })
    }

    /// Sets `train.steps` to `epochs` passes over the training windows (from the
    /// unaugmented count), and returns the steps.
    ///
    /// # Errors
    /// [`RunError::NotPositive`] unless `epochs` is a positive number.
    pub fn set_epochs(&mut self, epochs: f64) -> Result<usize, RunError> {
        if !(epochs.is_finite() && epochs > 0.0) {
            return Err(RunError::NotPositive {
                what: "--epochs",
                value: epochs,
            });
        }
        let train = &self.config.train;
        let per_step = (train.batch_size * train.grad_accumulation).max(1);
        let windows = epochs * self.train.count() as f64;
        self.config.train.steps = ((windows / per_step as f64).ceil() as usize).max(1);
        Ok(self.config.train.steps)
    }

    /// Plans the run to end within `seconds_left` (none left still plans one step): times a
    /// few probe steps of a throwaway model, then sets `train.steps` (the schedule follows
    /// it), `train.max_seconds`, and turns validation during training off when it would
    /// never run. Returns the plan and the measured seconds per step.
    ///
    /// # Errors
    /// [`RunError::NotPositive`] when `seconds_left` is negative or not a number; model
    /// errors of the probe.
    pub fn plan_minutes(&mut self, seconds_left: f64) -> Result<(BudgetPlan, f64), RunError> {
        if !(seconds_left.is_finite() && seconds_left >= 0.0) {
            return Err(RunError::NotPositive {
                what: "seconds left",
                value: seconds_left,
            });
        }
        let (config, vocab, device) = (&self.config, &self.vocab, &self.device);
        let windows = (&self.train, &self.valid);
        let step = match config.model.mode {
            ModelMode::Transformer => {
                let model = config.model.resolve(vocab)?;
                step_seconds::<Transformer>(config, &model, vocab, windows, device)?
            }
            ModelMode::Vae => {
                let vae = config.model.resolve_vae(vocab)?;
                step_seconds::<Vae>(config, &vae, vocab, windows, device)?
            }
            ModelMode::VaeGan => {
                let vae_gan = config.model.resolve_vae_gan(vocab)?;
                step_seconds::<VaeGan>(config, &vae_gan, vocab, windows, device)?
            }
        };
        let plan = plan_budget(config, seconds_left, step, self.valid.count());
        let train = &mut self.config.train;
        train.steps = plan.steps;
        train.max_seconds = Some(plan.train_seconds);
        if train.eval_every.is_some_and(|every| every > plan.steps) {
            train.eval_every = None;
        }
        Ok((plan, step))
    }

    /// The training windows of `epoch`: an augmented copy of the training scores when
    /// augmentation is on, of the curriculum's length when there is one. A pure function
    /// of the seed and the epoch, so a resumed run sees the same data.
    #[must_use]
    pub fn epoch_windows(&self, epoch: u64) -> TokenWindows {
        let config = &self.config;
        let len = config
            .data
            .curriculum
            .map_or(self.seq_len, |c| c.len_at(epoch, self.seq_len));
        let stride = stride(config, len);
        let Some(scores) = self.data.scores.as_ref() else {
            return self.data.train_windows(len, stride, &self.vocab);
        };
        let sequences: Vec<_> = scores
            .augmented_train(
                self.tokenizer.as_ref(),
                &config.augment,
                config.train.seed,
                epoch,
            )
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.framed(&self.vocab))
            .collect();
        TokenWindows::with_headers(&sequences, len, stride, &self.vocab)
    }

    /// What was read: the token cache's work, files, tokens and windows per split (for a
    /// tool's output).
    #[must_use]
    pub fn describe_data(&self) -> String {
        let data = &self.data;
        let cache = data.cache_report.as_ref().map_or(String::new(), |r| {
            format!(
                "token cache {}: {} files cached, {} tokenized now\n",
                r.cache_dir.display(),
                r.cached,
                r.tokenized
            )
        });
        format!(
            "{cache}{} files: {} train ({} tokens, {} windows), {} valid ({} tokens), {} skipped",
            data.files,
            data.train.count(),
            data.train.total_tokens(),
            self.train.count(),
            data.valid.count(),
            data.valid.total_tokens(),
            data.failed.len()
        )
    }

    /// What will be trained: model, device, steps and batch, augmentation, curriculum.
    #[must_use]
    pub fn describe_training(&self) -> String {
        let config = &self.config;
        let mut text = format!(
            "{:?} model ({:?} preset) on {:?}; training {} steps of {}×{}",
            config.model.mode,
            config.model.preset,
            self.device,
            config.train.steps,
            config.train.batch_size,
            self.seq_len
        );
        if !config.augment.is_off() {
            text.push_str("\naugmenting the training files anew every epoch");
        }
        if let Some(c) = config.data.curriculum {
            text.push_str(&format!(
                "\ncurriculum: windows of {} tokens, doubled every {} epochs up to {}",
                c.start, c.every, self.seq_len
            ));
        }
        text
    }

    /// Whether the training windows change from epoch to epoch (augmentation or a
    /// curriculum).
    #[must_use]
    pub fn windows_vary(&self) -> bool {
        !self.config.augment.is_off() || self.config.data.curriculum.is_some()
    }
}

/// The windows' stride for windows of `len` tokens: `data.stride`, or half a window when 0.
fn stride(config: &RunConfig, len: usize) -> usize {
    match config.data.stride {
        0 => (len / 2).max(1),
        stride => stride.min(len),
    }
}
