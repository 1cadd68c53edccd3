//! Checkpoints that resume a run exactly: model weights (with config and vocabulary),
//! optimizer state and the loop's position, written into a temporary directory renamed into
//! place, then pointed to by an atomically rewritten `latest` file; older ones are pruned.
//!
//! Layout: `<dir>/step-000120/{model/, optimizer.bpk, state.json}` (plus
//! `optimizer-adversary.bpk` for a model with a second player), `<dir>/latest`
//! (holding `step-000120`) and, with `keep_best`, `<dir>/best/` (the model of the best
//! validation, loadable with [`crate::weights::load_model`]).

use std::path::{Path, PathBuf};

use aurl_core::tokenize::Vocabulary;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::prelude::*;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use super::DataCursor;
use crate::error::{ModelError, checkpoint_error, invalid, io_error};
use crate::weights::{ModelKind, load_model_as, save_model_as};
use crate::{Transformer, TransformerConfig};

/// Where checkpoints go and how often. `C` is the configuration type of the model trained
/// (a [`TransformerConfig`] unless training another [`ModelKind`]).
#[derive(Debug, Clone)]
pub struct Checkpointing<'a, C = TransformerConfig> {
    /// Directory of the checkpoints (created if missing).
    pub dir: PathBuf,
    /// Write one every this many steps (and at the end).
    pub every: usize,
    /// Keep this many most recent checkpoints (at least 1).
    pub keep_last: usize,
    /// The model's configuration, saved with the weights.
    pub config: &'a C,
    /// The vocabulary, saved with the weights.
    pub vocabulary: &'a Vocabulary,
}

/// The loop's position, enough to continue exactly where a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// Steps completed (the next step's index).
    pub step: usize,
    /// Training tokens seen.
    pub tokens: usize,
    /// Steps skipped as non-finite.
    pub skipped: usize,
    /// Loss of the last completed step.
    pub last_loss: f64,
    /// Last validation NLL.
    pub valid_nll: Option<f64>,
    /// The training config's seed (batch order and dropout derive from it and the step).
    pub seed: u64,
    /// Best validation NLL so far.
    #[serde(default)]
    pub best_valid_nll: Option<f64>,
    /// Step of the best validation.
    #[serde(default)]
    pub best_step: Option<usize>,
    /// Validations since the best one (early stopping).
    #[serde(default)]
    pub evals_since_best: usize,
    /// Where the data order stands (`None` in checkpoints written before it was recorded;
    /// the cursor then follows from the step).
    #[serde(default)]
    pub data: Option<DataCursor>,
    /// The plateau schedule's multiplier of the peak rate (1 until the first reduction).
    #[serde(default = "one")]
    pub lr_scale: f64,
    /// Validations without improvement since the last plateau reduction.
    #[serde(default)]
    pub plateau_evals: usize,
    /// Rollbacks so far.
    #[serde(default)]
    pub rollbacks: usize,
    /// The optimizer whose state the checkpoint holds (AdamW in checkpoints written before
    /// there was a choice).
    #[serde(default)]
    pub optimizer: super::OptimizerKind,
    /// The second player's optimizer (`None` for models without one).
    #[serde(default)]
    pub adversary_optimizer: Option<super::OptimizerKind>,
}

impl TrainState {
    /// The state of a run of `config` that has taken no step yet (`adversary`: whether the
    /// model has a second player with its own optimizer).
    pub(crate) fn new(config: &super::TrainConfig, adversary: bool) -> Self {
        Self {
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
            adversary_optimizer: adversary.then_some(config.discriminator.optimizer),
        }
    }
}

/// Where a resumed run picks up: the optimizers' states and the loop's position.
#[derive(Debug)]
pub struct Resume {
    /// The main optimizer's state.
    pub optimizer: OptimizerRecord,
    /// The second player's optimizer state (a VAE-GAN's discriminator).
    pub adversary: Option<OptimizerRecord>,
    /// Where the loop was.
    pub state: TrainState,
}

impl Resume {
    /// Loads the saved optimizer states into `optim` (and `adversary`, a model's second
    /// player's) and takes the saved loop state in place of the fresh `state` (keeping its
    /// record of the second optimizer's kind).
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] (`train.optimizer`, `train.discriminator.optimizer`)
    /// when `config` names another optimizer than the one whose state was saved.
    pub(crate) fn restore(
        self,
        config: &super::TrainConfig,
        optim: ModuleOptimizer,
        adversary: Option<ModuleOptimizer>,
        state: TrainState,
    ) -> Result<(ModuleOptimizer, Option<ModuleOptimizer>, TrainState), ModelError> {
        let saved = self.state;
        let refuse = |field: &str, saved: super::OptimizerKind, wanted: super::OptimizerKind| {
            invalid(
                field,
                format!(
                    "the checkpoint holds {saved:?} state; resuming with {wanted:?} is not \
                     possible"
                ),
            )
        };
        if saved.optimizer != config.optimizer {
            return Err(refuse("train.optimizer", saved.optimizer, config.optimizer));
        }
        let wanted = config.discriminator.optimizer;
        if let (Some(kind), Some(_)) = (saved.adversary_optimizer, &adversary)
            && kind != wanted
        {
            return Err(refuse("train.discriminator.optimizer", kind, wanted));
        }
        let adversary = match (self.adversary, adversary) {
            (Some(record), Some(o)) => Some(o.load_record(record)),
            (None, Some(o)) => {
                tracing::warn!("the checkpoint has no discriminator optimizer state: fresh");
                Some(o)
            }
            (_, None) => None,
        };
        let state = TrainState {
            adversary_optimizer: state.adversary_optimizer,
            ..saved
        };
        Ok((optim.load_record(self.optimizer), adversary, state))
    }
}

impl From<(OptimizerRecord, TrainState)> for Resume {
    fn from((optimizer, state): (OptimizerRecord, TrainState)) -> Self {
        Self {
            optimizer,
            adversary: None,
            state,
        }
    }
}

fn one() -> f64 {
    1.0
}

/// A checkpoint loaded for resuming.
#[derive(Debug)]
pub struct Resumed<M: ModelKind = Transformer> {
    /// The model, on the device it was loaded to.
    pub model: M,
    /// Its configuration.
    pub config: M::Config,
    /// Its vocabulary.
    pub vocabulary: Vocabulary,
    /// The optimizer state.
    pub optimizer: OptimizerRecord,
    /// The second player's optimizer state, when the checkpoint has one.
    pub adversary_optimizer: Option<OptimizerRecord>,
    /// Where the loop was.
    pub state: TrainState,
    /// The checkpoint directory it came from.
    pub path: PathBuf,
}

impl<M: ModelKind> Resumed<M> {
    /// The model, and where [`Trainer::run`](super::Trainer::run) resumes.
    #[must_use]
    pub fn into_resume(self) -> (M, Resume) {
        (
            self.model,
            Resume {
                optimizer: self.optimizer,
                adversary: self.adversary_optimizer,
                state: self.state,
            },
        )
    }
}

const LATEST: &str = "latest";
/// Directory of the best model (weights, config, vocabulary; see [`crate::weights`]).
const BEST: &str = "best";
const OPTIMIZER_FILE: &str = "optimizer.bpk";
const ADVERSARY_OPTIMIZER_FILE: &str = "optimizer-adversary.bpk";
const STATE_FILE: &str = "state.json";
/// Version of `state.json` (its `format` key; files without one, written before it was
/// recorded, are version 1). A newer release reads every older version or refuses it with
/// [`ModelError::Checkpoint`]; this one refuses newer versions the same way.
const STATE_FORMAT: u64 = 1;

/// `state` as the JSON of `state.json`, with its format version.
fn state_json(state: &TrainState) -> Result<Vec<u8>, serde_json::Error> {
    let mut value = serde_json::to_value(state)?;
    if let serde_json::Value::Object(fields) = &mut value {
        fields.insert("format".into(), STATE_FORMAT.into());
    }
    serde_json::to_vec_pretty(&value)
}

/// The loop state in the bytes of `state.json` at `path`.
///
/// # Errors
/// [`ModelError::Checkpoint`] for unreadable JSON, a format this version does not read, or
/// fields it does not know.
fn parse_state(path: &Path, json: &[u8]) -> Result<TrainState, ModelError> {
    let mut value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| checkpoint_error(path, e))?;
    let format = match &mut value {
        serde_json::Value::Object(fields) => fields.remove("format"),
        _ => None,
    };
    let format = format.map_or(Some(1), |f| f.as_u64());
    if format != Some(STATE_FORMAT) {
        let found = format.map_or_else(
            || "an unreadable format".to_owned(),
            |f| format!("format {f}"),
        );
        return Err(checkpoint_error(
            path,
            format!("{found} (this version reads {STATE_FORMAT}; a newer Aurl wrote it?)"),
        ));
    }
    serde_json::from_value(value).map_err(|e| checkpoint_error(path, e))
}

impl<C: Clone> Checkpointing<'_, C> {
    /// Writes a checkpoint of `model`, `optimizer` (and the second player's `adversary`
    /// optimizer, if any) and `state`, makes it the latest and
    /// prunes the oldest beyond `keep_last`. Returns its directory.
    ///
    /// # Errors
    /// [`ModelError::Io`] / [`ModelError::Checkpoint`]; the previous latest checkpoint stays
    /// intact whatever fails.
    pub fn write<M: ModelKind<Config = C>>(
        &self,
        model: &M,
        optimizer: &ModuleOptimizer,
        adversary: Option<&ModuleOptimizer>,
        state: &TrainState,
    ) -> Result<PathBuf, ModelError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        let name = format!("step-{:06}", state.step);
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let result = (|| {
            save_model_as(&tmp.join("model"), model, self.config, self.vocabulary)?;
            let optim = optimizer
                .to_record()
                .into_bytes()
                .map_err(|e| checkpoint_error(&tmp, e))?;
            write(&tmp.join(OPTIMIZER_FILE), &optim)?;
            if let Some(adversary) = adversary {
                let bytes = adversary
                    .to_record()
                    .into_bytes()
                    .map_err(|e| checkpoint_error(&tmp, e))?;
                write(&tmp.join(ADVERSARY_OPTIMIZER_FILE), &bytes)?;
            }
            let json = state_json(state).map_err(|e| checkpoint_error(&tmp, e))?;
            write(&tmp.join(STATE_FILE), &json)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let target = self.dir.join(&name);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&tmp, &target).map_err(|e| io_error(&target, e))?;
        write(&self.dir.join(LATEST), name.as_bytes())?;
        self.prune()?;
        Ok(target)
    }

    /// Writes `model` (weights, config, vocabulary) as `<dir>/best/`, replacing the previous
    /// best only once the new one is complete.
    ///
    /// # Errors
    /// [`ModelError::Io`] / [`ModelError::Checkpoint`]; the previous best stays intact.
    pub fn write_best<M: ModelKind<Config = C>>(&self, model: &M) -> Result<PathBuf, ModelError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        let tmp = self.dir.join(format!(".best.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        if let Err(e) = save_model_as(&tmp, model, self.config, self.vocabulary) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let target = self.dir.join(BEST);
        let old = self.dir.join(format!(".best.{}.old", std::process::id()));
        let _ = std::fs::remove_dir_all(&old);
        // Move the old best aside first: a crash in between leaves `.best.*.old` intact.
        if target.exists() {
            std::fs::rename(&target, &old).map_err(|e| io_error(&target, e))?;
        }
        std::fs::rename(&tmp, &target).map_err(|e| io_error(&target, e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(target)
    }

    /// Removes all but the `keep_last` most recent checkpoints (never the latest).
    fn prune(&self) -> Result<(), ModelError> {
        let mut steps: Vec<(u64, String)> = std::fs::read_dir(&self.dir)
            .map_err(|e| io_error(&self.dir, e))?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| Some((n.strip_prefix("step-")?.parse().ok()?, n)))
            .collect();
        steps.sort();
        let keep = self.keep_last.max(1);
        for (_, old) in &steps[..steps.len().saturating_sub(keep)] {
            let _ = std::fs::remove_dir_all(self.dir.join(old));
        }
        Ok(())
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    aurl_data::write_atomically(path, bytes).map_err(|e| io_error(path, e))
}

/// The latest checkpoint under `dir`, if any.
///
/// # Errors
/// [`ModelError::Io`] if `latest` exists but cannot be read.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>, ModelError> {
    let pointer = dir.join(LATEST);
    match std::fs::read_to_string(&pointer) {
        Ok(name) => Ok(Some(dir.join(name.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&pointer, e)),
    }
}

/// Loads the transformer checkpoint at `path` onto `device` (an autodiff device to keep
/// training).
///
/// # Errors
/// [`ModelError::Io`] / [`ModelError::Checkpoint`] for missing or damaged files.
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<Resumed, ModelError> {
    load_checkpoint_as::<Transformer>(path, device)
}

/// Loads the checkpoint at `path` of a model of kind `M` onto `device`.
///
/// # Errors
/// [`ModelError::Io`] / [`ModelError::Checkpoint`] for missing or damaged files, or a
/// checkpoint of another kind of model.
pub fn load_checkpoint_as<M: ModelKind>(
    path: &Path,
    device: &Device,
) -> Result<Resumed<M>, ModelError> {
    let saved = load_model_as::<M>(&path.join("model"), device)?;
    let optimizer = read_record(&path.join(OPTIMIZER_FILE))?;
    let adversary_path = path.join(ADVERSARY_OPTIMIZER_FILE);
    let adversary_optimizer = if adversary_path.exists() {
        Some(read_record(&adversary_path)?)
    } else {
        None
    };
    let state_path = path.join(STATE_FILE);
    let json = std::fs::read(&state_path).map_err(|e| io_error(&state_path, e))?;
    let state = parse_state(&state_path, &json)?;
    Ok(Resumed {
        model: saved.model,
        config: saved.config,
        vocabulary: saved.vocabulary,
        optimizer,
        adversary_optimizer,
        state,
        path: path.to_owned(),
    })
}

fn read_record(path: &Path) -> Result<OptimizerRecord, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    OptimizerRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| checkpoint_error(path, e))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{TrainState, parse_state, state_json};
    use crate::error::ModelError;
    use crate::train::TrainConfig;

    #[test]
    fn state_files_carry_their_format_and_older_ones_still_read() {
        let path = Path::new("state.json");
        let mut state = TrainState::new(&TrainConfig::default(), false);
        state.step = 12;
        state.last_loss = 2.5;
        let json = state_json(&state).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["format"], 1);
        assert_eq!(parse_state(path, &json).unwrap(), state);

        // Written before the format was recorded: version 1.
        let older = serde_json::to_vec(&state).unwrap();
        assert_eq!(parse_state(path, &older).unwrap(), state);

        // From a newer release: refused, saying which format.
        let mut newer = value.clone();
        newer["format"] = 2.into();
        let err = parse_state(path, &serde_json::to_vec(&newer).unwrap()).unwrap_err();
        assert!(
            matches!(&err, ModelError::Checkpoint { message, .. } if message.contains("format 2")),
            "{err}"
        );
        newer["format"] = "two".into();
        assert!(parse_state(path, &serde_json::to_vec(&newer).unwrap()).is_err());
        assert!(parse_state(path, b"{not json").is_err());
    }
}
