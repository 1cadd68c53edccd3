//! Saving and loading a model together with its configuration and vocabulary, so a saved
//! model can never be decoded with the wrong token meanings.
//!
//! A model directory holds `model.json` (format version, the model's kind —
//! `transformer`, `vae` or `vae_gan` — its configuration and the [`Vocabulary`]) and `model.bpk` (the
//! weights, Burn's burnpack format). Both are written atomically. [`save_model`] /
//! [`load_model`] handle the [`Transformer`]; [`save_model_as`] / [`load_model_as`] any
//! [`ModelKind`], and loading a directory of another kind is a clear error.

use std::path::Path;

use aurl_core::tokenize::Vocabulary;
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, DType};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, checkpoint_error, io_error};
use crate::vae::{Vae, VaeConfig};
use crate::{Transformer, TransformerConfig, VaeGan, VaeGanConfig};

/// A model type that can be saved with its configuration and rebuilt from it.
pub trait ModelKind: Module + Sized {
    /// Its configuration, saved in `model.json`.
    type Config: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug;
    /// The name of the kind in `model.json`.
    const KIND: &'static str;
    /// The vocabulary size `config` asks for.
    fn config_vocab_size(config: &Self::Config) -> usize;
    /// A model with fresh weights shaped by `config`.
    ///
    /// # Errors
    /// [`ModelError::InvalidConfig`] naming the bad field.
    fn build(config: &Self::Config, device: &Device) -> Result<Self, ModelError>;
}

impl ModelKind for Transformer {
    type Config = TransformerConfig;
    const KIND: &'static str = "transformer";
    fn config_vocab_size(config: &TransformerConfig) -> usize {
        config.vocab_size
    }
    fn build(config: &TransformerConfig, device: &Device) -> Result<Self, ModelError> {
        config.init(device)
    }
}

impl ModelKind for Vae {
    type Config = VaeConfig;
    const KIND: &'static str = "vae";
    fn config_vocab_size(config: &VaeConfig) -> usize {
        config.decoder.vocab_size
    }
    fn build(config: &VaeConfig, device: &Device) -> Result<Self, ModelError> {
        config.init(device)
    }
}

impl ModelKind for VaeGan {
    type Config = VaeGanConfig;
    const KIND: &'static str = "vae_gan";
    fn config_vocab_size(config: &VaeGanConfig) -> usize {
        config.vae.decoder.vocab_size
    }
    fn build(config: &VaeGanConfig, device: &Device) -> Result<Self, ModelError> {
        config.init(device)
    }
}

fn transformer_kind() -> String {
    Transformer::KIND.to_owned()
}

/// File holding the configuration and vocabulary.
pub const MODEL_FILE: &str = "model.json";
/// File holding the weights (burnpack).
pub const WEIGHTS_FILE: &str = "model.bpk";
/// Version of `model.json`.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile<C> {
    format: u32,
    /// Absent in files written before other kinds existed: those hold transformers.
    #[serde(default = "transformer_kind")]
    kind: String,
    config: C,
    vocabulary: Vocabulary,
}

#[derive(Deserialize)]
struct KindOnly {
    #[serde(default = "transformer_kind")]
    kind: String,
}

/// A model loaded from disk with what it was saved with.
#[derive(Debug)]
pub struct SavedModel<M: ModelKind = Transformer> {
    /// The model, on the device it was loaded to.
    pub model: M,
    /// Its configuration.
    pub config: M::Config,
    /// The vocabulary its ids mean.
    pub vocabulary: Vocabulary,
}

/// The kind (`transformer`, `vae`, `vae_gan`) of the model saved in `dir`.
///
/// # Errors
/// [`ModelError::Io`] / [`ModelError::Checkpoint`] for a missing or unreadable
/// `model.json`.
pub fn saved_kind(dir: &Path) -> Result<String, ModelError> {
    let path = dir.join(MODEL_FILE);
    let json = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
    let kind: KindOnly = serde_json::from_slice(&json).map_err(|e| checkpoint_error(&path, e))?;
    Ok(kind.kind)
}

/// Refuses a config whose vocabulary size is not the vocabulary's.
pub(crate) fn check_vocab_size<M: ModelKind>(
    config: &M::Config,
    vocabulary: &Vocabulary,
) -> Result<(), ModelError> {
    let vocab_size = M::config_vocab_size(config);
    if vocab_size == vocabulary.len() {
        return Ok(());
    }
    Err(crate::error::invalid(
        "vocab_size",
        format!(
            "is {vocab_size} but the vocabulary has {} tokens",
            vocabulary.len()
        ),
    ))
}

/// Writes the transformer `model` with its `config` and `vocabulary` into `dir` (created if
/// missing); see [`save_model_as`].
///
/// # Errors
/// As [`save_model_as`].
pub fn save_model(
    dir: &Path,
    model: &Transformer,
    config: &TransformerConfig,
    vocabulary: &Vocabulary,
) -> Result<(), ModelError> {
    save_model_as(dir, model, config, vocabulary)
}

/// Writes `model` of any [`ModelKind`] with its `config` and `vocabulary` into `dir`
/// (created if missing).
///
/// # Errors
/// [`ModelError::InvalidConfig`] if the config's vocabulary size differs from the
/// vocabulary, or (field `weights`) if the parameters mix precisions, as a decoding copy
/// from [`Transformer::with_half_weights`] does (its f32 original is the one to save);
/// [`ModelError::Io`] / [`ModelError::Checkpoint`] on write failures. Nothing is written
/// on a refusal.
pub fn save_model_as<M: ModelKind>(
    dir: &Path,
    model: &M,
    config: &M::Config,
    vocabulary: &Vocabulary,
) -> Result<(), ModelError> {
    check_vocab_size::<M>(config, vocabulary)?;
    let mut precisions = Precisions::default();
    model.visit(&mut precisions);
    if precisions.0.len() > 1 {
        return Err(ModelError::InvalidConfig {
            field: "weights".into(),
            reason: format!(
                "parameters in several precisions ({:?}): a model from \
                 `with_half_weights` is for decoding only, save its f32 original",
                precisions.0
            ),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let weights = dir.join(WEIGHTS_FILE);
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| checkpoint_error(&weights, e))?;
    aurl_data::write_atomically(&weights, &bytes).map_err(|e| io_error(&weights, e))?;
    let file = ModelFile {
        format: FORMAT,
        kind: M::KIND.to_owned(),
        config: config.clone(),
        vocabulary: vocabulary.clone(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| checkpoint_error(dir, e))?;
    let path = dir.join(MODEL_FILE);
    aurl_data::write_atomically(&path, &json).map_err(|e| io_error(&path, e))
}

/// The distinct float precisions of a module's parameters.
#[derive(Debug, Default)]
struct Precisions(Vec<DType>);

impl ModuleVisitor for Precisions {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let dtype = param.val().dtype();
        if !self.0.contains(&dtype) {
            self.0.push(dtype);
        }
    }
}

/// Loads a transformer saved by [`save_model`] onto `device`; see [`load_model_as`].
///
/// # Errors
/// As [`load_model_as`].
pub fn load_model(dir: &Path, device: &Device) -> Result<SavedModel, ModelError> {
    load_model_as::<Transformer>(dir, device)
}

/// Loads a model of kind `M` saved by [`save_model_as`] onto `device`.
///
/// # Errors
/// [`ModelError::Io`] for missing files, [`ModelError::Checkpoint`] for a corrupt or
/// mismatched file (another kind of model, or config and vocabulary disagreeing),
/// [`ModelError::InvalidConfig`] for a config that no longer validates.
pub fn load_model_as<M: ModelKind>(
    dir: &Path,
    device: &Device,
) -> Result<SavedModel<M>, ModelError> {
    let path = dir.join(MODEL_FILE);
    let kind = saved_kind(dir)?;
    if kind != M::KIND {
        return Err(checkpoint_error(
            &path,
            format!("holds a {kind} model, not a {}", M::KIND),
        ));
    }
    let json = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
    let file: ModelFile<M::Config> =
        serde_json::from_slice(&json).map_err(|e| checkpoint_error(&path, e))?;
    if file.format != FORMAT {
        return Err(checkpoint_error(
            &path,
            format!("format {} (this version reads {FORMAT})", file.format),
        ));
    }
    if M::config_vocab_size(&file.config) != file.vocabulary.len() {
        return Err(checkpoint_error(
            &path,
            "config and vocabulary disagree on the vocabulary size",
        ));
    }
    let model = M::build(&file.config, device)?;
    let weights = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&weights).map_err(|e| io_error(&weights, e))?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| checkpoint_error(&weights, e))?;
    let model = model
        .try_load_record(record)
        .map_err(|e| checkpoint_error(&weights, e))?;
    Ok(SavedModel {
        model,
        config: file.config,
        vocabulary: file.vocabulary,
    })
}

/// The model directory of `path`: its `model/` folder when `path` is a training run's
/// directory (as `examples/train.rs` writes), else `path` itself.
#[must_use]
pub fn model_dir(path: &Path) -> std::path::PathBuf {
    let inner = path.join("model");
    if inner.join(MODEL_FILE).is_file() {
        inner
    } else {
        path.to_path_buf()
    }
}

/// Loads a model and checks it uses exactly `expected` (same tokens, same ids).
///
/// # Errors
/// As [`load_model`], and [`ModelError::Vocabulary`] when the vocabularies differ.
pub fn load_model_for(
    dir: &Path,
    device: &Device,
    expected: &Vocabulary,
) -> Result<SavedModel, ModelError> {
    let saved = load_model(dir, device)?;
    saved.vocabulary.ensure_same(expected)?;
    Ok(saved)
}
