//! Training a run's model: its directory (new or resumed), the loop, the saved model.

use std::path::{Path, PathBuf};

use crate::burn::module::Module;
use crate::model::train::distributed::Collective;
use crate::model::train::{
    Checkpointing, MetricsLog, Resume, SampleCheck, StepMetrics, TrainModel, TrainReport, Trainer,
    latest_checkpoint, load_checkpoint_as,
};
use crate::model::vae::Vae;
use crate::model::weights::save_model_as;
use crate::model::{Transformer, VaeGan};
use crate::sampling::{Generated, Generator};

use super::error::io;
use super::samples::{Sampling, from_prior};
use super::{Job, ModelMode, RunError};

/// A run directory: a fresh one (with `config.toml` and `vocab.json` written) or one
/// being resumed from its latest checkpoint.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub path: PathBuf,
    /// The checkpoint to continue from, when resuming.
    pub resume_from: Option<PathBuf>,
}

impl RunDir {
    /// Creates `<out>/<name>` (see [`RunConfig::create_run_dir`](super::RunConfig::create_run_dir):
    /// an existing run is never overwritten) and writes the job's config and vocabulary
    /// into it.
    ///
    /// # Errors
    /// When the directory or its files cannot be written.
    pub fn create(job: &Job, out: &Path, name: Option<&str>) -> Result<Self, RunError> {
        let path = job.config.create_run_dir(out, name).map_err(io(out))?;
        let config = path.join("config.toml");
        std::fs::write(&config, job.config.to_toml()?).map_err(io(&config))?;
        let vocab = path.join("vocab.json");
        let json = serde_json::to_vec_pretty(&job.vocab)
            .map_err(|e| io(&vocab)(std::io::Error::other(e)))?;
        std::fs::write(&vocab, json).map_err(io(&vocab))?;
        Ok(Self {
            path,
            resume_from: None,
        })
    }

    /// The run at `path`, to continue from its latest checkpoint.
    ///
    /// # Errors
    /// [`RunError::Resume`] when it has no checkpoint.
    pub fn resume(path: &Path) -> Result<Self, RunError> {
        let Some(latest) = latest_checkpoint(&path.join("checkpoints"))? else {
            return Err(RunError::Resume {
                run: path.to_owned(),
                reason: "no checkpoint to resume from".to_owned(),
            });
        };
        Ok(Self {
            path: path.to_owned(),
            resume_from: Some(latest),
        })
    }
}

/// A trained model, ready to generate: the language model, or the VAE (of a VAE-GAN, its
/// VAE: the discriminator only shaped training).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per run
pub enum TrainedModel {
    /// A transformer language model.
    Transformer(Transformer),
    /// A transformer VAE.
    Vae(Vae),
}

/// What [`Job::train`] produced.
#[derive(Debug)]
pub struct Trained {
    /// The run directory (`model/`, `metrics.jsonl`, `loss.png`, `checkpoints/`).
    pub dir: PathBuf,
    /// The model (the best validated one when validation ran).
    pub model: TrainedModel,
    /// The training loop's report.
    pub report: TrainReport,
    /// Trainable parameters (a VAE-GAN's discriminator included).
    pub parameters: usize,
}

impl Job {
    /// Trains the model the config describes in `dir` (from its checkpoint when resuming),
    /// calling `on_step` after every step, then draws `loss.png` and saves the model in
    /// `model/`.
    ///
    /// # Errors
    /// Model errors; [`RunError::Resume`] when the checkpoint's model config differs from
    /// the job's.
    pub fn train(
        &self,
        dir: &RunDir,
        on_step: impl FnMut(&StepMetrics),
    ) -> Result<Trained, RunError> {
        self.train_on(dir, None, on_step)
    }

    /// [`Job::train`] as one rank of a data-parallel run (see
    /// [`Trainer::with_collective`]): rank 0 writes the run directory (metrics, checkpoints,
    /// `loss.png`, `model/`); the other ranks train the same replica and write nothing.
    ///
    /// # Errors
    /// As [`Job::train`].
    pub fn train_on(
        &self,
        dir: &RunDir,
        ranks: Option<&dyn Collective>,
        on_step: impl FnMut(&StepMetrics),
    ) -> Result<Trained, RunError> {
        let sampling = Sampling::new(self, 1);
        let (config, vocab) = (&self.config, &self.vocab);
        Ok(match config.model.mode {
            ModelMode::Transformer => {
                let model_config = config.model.resolve(vocab)?;
                let check = |m: &Transformer| sampling.check_lm(m, self);
                let (model, report) = self.fit(dir, ranks, &model_config, on_step, check)?;
                Trained {
                    parameters: model.num_params(),
                    model: TrainedModel::Transformer(model),
                    report,
                    dir: dir.path.clone(),
                }
            }
            ModelMode::Vae => {
                let model_config = config.model.resolve_vae(vocab)?;
                let check = |m: &Vae| sampling.check_vae(m, self);
                let (model, report) = self.fit(dir, ranks, &model_config, on_step, check)?;
                Trained {
                    parameters: model.num_params(),
                    model: TrainedModel::Vae(model),
                    report,
                    dir: dir.path.clone(),
                }
            }
            ModelMode::VaeGan => {
                let model_config = config.model.resolve_vae_gan(vocab)?;
                let check = |m: &VaeGan| sampling.check_vae(m.vae(), self);
                let (model, report): (VaeGan, _) =
                    self.fit(dir, ranks, &model_config, on_step, check)?;
                Trained {
                    parameters: model.num_params(),
                    model: TrainedModel::Vae(model.into_parts().0),
                    report,
                    dir: dir.path.clone(),
                }
            }
        })
    }

    /// Generates the run's samples (`[sample]`) from the trained model on `workers`
    /// threads; a VAE decodes codes drawn from its prior.
    ///
    /// # Errors
    /// Sampling errors.
    pub fn generate(&self, trained: &Trained, workers: usize) -> Result<Vec<Generated>, RunError> {
        let sampling = Sampling::new(self, workers);
        Ok(match &trained.model {
            TrainedModel::Transformer(model) => {
                Generator::new(model, &self.vocab, sampling.config)?.generate(&sampling.requests)?
            }
            TrainedModel::Vae(model) => {
                let requests = from_prior(model, &sampling.requests, self);
                Generator::conditioned(model, &self.vocab, sampling.config)?.generate(&requests)?
            }
        })
    }

    /// Trains a model of kind `M` configured by `model_config` in `dir`, draws `loss.png`
    /// and saves the model (without its autodiff graph) in `model/`.
    fn fit<M: TrainModel>(
        &self,
        dir: &RunDir,
        ranks: Option<&dyn Collective>,
        model_config: &M::Config,
        mut on_step: impl FnMut(&StepMetrics),
        sample: impl FnMut(&M) -> Option<SampleCheck>,
    ) -> Result<(M, TrainReport), RunError> {
        let (config, vocab) = (&self.config, &self.vocab);
        let writes = ranks.is_none_or(|r| r.rank() == 0);
        let (model, resume, mut metrics) = self.start::<M>(dir, model_config, writes)?;
        let mut trainer = Trainer::new(&config.train, &self.train, &self.valid).with_grammar(vocab);
        if let Some(ranks) = ranks {
            trainer = trainer.with_collective(ranks);
        }
        let per_epoch = |epoch| self.epoch_windows(epoch);
        if self.windows_vary() {
            trainer = trainer.with_epoch_windows(&per_epoch);
        }
        let trainer = trainer.with_checkpoints(Checkpointing {
            dir: dir.path.join("checkpoints"),
            every: config.train.checkpoint_every,
            keep_last: config.train.keep_checkpoints,
            config: model_config,
            vocabulary: vocab,
        });
        let mut log_error = None;
        let step = |m: &StepMetrics| {
            if let Some(Err(e)) = metrics.as_mut().map(|log| log.write(m)) {
                log_error.get_or_insert(e);
            }
            on_step(m);
        };
        let (model, report) = trainer.run_sampled(model, resume, step, sample)?;
        if let Some(e) = log_error {
            return Err(e.into());
        }
        let model = model.valid();
        if writes {
            super::plots::write_loss_png(&dir.path)?;
            save_model_as(&dir.path.join("model"), &model, model_config, vocab)?;
        }
        Ok((model, report))
    }

    /// The model to train and the metrics log: fresh (seeded from the config), or loaded
    /// from the checkpoint being resumed (whose model config must be the job's), with the
    /// records the killed run logged after that checkpoint dropped.
    fn start<M: TrainModel>(
        &self,
        dir: &RunDir,
        model_config: &M::Config,
        writes: bool,
    ) -> Result<(M, Option<Resume>, Option<MetricsLog>), RunError> {
        let device = self.device.clone().autodiff();
        let log = dir.path.join("metrics.jsonl");
        let Some(latest) = &dir.resume_from else {
            device.seed(self.config.train.seed);
            let model = M::build(model_config, &device)?;
            let metrics = writes.then(|| MetricsLog::create(&log)).transpose()?;
            return Ok((model, None, metrics));
        };
        let r = load_checkpoint_as::<M>(latest, &device)?;
        r.vocabulary
            .ensure_same(&self.vocab)
            .map_err(|e| RunError::Resume {
                run: dir.path.clone(),
                reason: e.to_string(),
            })?;
        if &r.config != model_config {
            return Err(RunError::Resume {
                run: dir.path.clone(),
                reason: format!(
                    "{}: the checkpoint's model config differs from config.toml's",
                    latest.display()
                ),
            });
        }
        tracing::info!("resuming from {} (step {})", latest.display(), r.state.step);
        let metrics = writes
            .then(|| MetricsLog::resume(&log, r.state.step))
            .transpose()?;
        let (model, resume) = r.into_resume();
        Ok((model, Some(resume), metrics))
    }
}
