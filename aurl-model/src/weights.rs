//! Saving and loading a model together with its configuration and vocabulary, so a saved
//! model can never be decoded with the wrong token meanings.
//!
//! A model directory holds `model.json` (format version, [`TransformerConfig`],
//! [`Vocabulary`]) and `model.bpk` (the weights, Burn's burnpack format). Both are written
//! atomically.

use std::path::Path;

use aurl_core::tokenize::Vocabulary;
use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, checkpoint_error, io_error};
use crate::{Transformer, TransformerConfig};

/// File holding the configuration and vocabulary.
pub const MODEL_FILE: &str = "model.json";
/// File holding the weights (burnpack).
pub const WEIGHTS_FILE: &str = "model.bpk";
/// Version of `model.json`.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: u32,
    config: TransformerConfig,
    vocabulary: Vocabulary,
}

/// A model loaded from disk with what it was saved with.
#[derive(Debug)]
pub struct SavedModel {
    /// The model, on the device it was loaded to.
    pub model: Transformer,
    /// Its configuration.
    pub config: TransformerConfig,
    /// The vocabulary its ids mean.
    pub vocabulary: Vocabulary,
}

/// Writes `model` with its `config` and `vocabulary` into `dir` (created if missing).
///
/// # Errors
/// [`ModelError::InvalidConfig`] if the config's vocabulary size differs from the
/// vocabulary; [`ModelError::Io`] / [`ModelError::Checkpoint`] on write failures.
pub fn save_model(
    dir: &Path,
    model: &Transformer,
    config: &TransformerConfig,
    vocabulary: &Vocabulary,
) -> Result<(), ModelError> {
    if config.vocab_size != vocabulary.len() {
        return Err(crate::error::invalid(
            "vocab_size",
            format!(
                "is {} but the vocabulary has {} tokens",
                config.vocab_size,
                vocabulary.len()
            ),
        ));
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
        config: config.clone(),
        vocabulary: vocabulary.clone(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| checkpoint_error(dir, e))?;
    let path = dir.join(MODEL_FILE);
    aurl_data::write_atomically(&path, &json).map_err(|e| io_error(&path, e))
}

/// Loads a model saved by [`save_model`] onto `device`.
///
/// # Errors
/// [`ModelError::Io`] for missing files, [`ModelError::Checkpoint`] for a corrupt or
/// mismatched file (the vocabulary's hash is checked), [`ModelError::InvalidConfig`] for a
/// config that no longer validates.
pub fn load_model(dir: &Path, device: &Device) -> Result<SavedModel, ModelError> {
    let path = dir.join(MODEL_FILE);
    let json = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
    let file: ModelFile = serde_json::from_slice(&json).map_err(|e| checkpoint_error(&path, e))?;
    if file.format != FORMAT {
        return Err(checkpoint_error(
            &path,
            format!("format {} (this version reads {FORMAT})", file.format),
        ));
    }
    if file.config.vocab_size != file.vocabulary.len() {
        return Err(checkpoint_error(
            &path,
            "config and vocabulary disagree on the vocabulary size",
        ));
    }
    let model = file.config.init(device)?;
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
