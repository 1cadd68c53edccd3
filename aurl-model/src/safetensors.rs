//! Weights as a [safetensors](https://huggingface.co/docs/safetensors) file, readable from
//! PyTorch (`safetensors.torch.load_file`) and most other stacks. Behind the `store`
//! feature.
//!
//! The file's header metadata embeds what [`crate::weights`] keeps in `model.json`:
//! `aurl.kind` (`transformer`, `vae`), `aurl.config` and `aurl.vocabulary` (JSON), so a file
//! loads back into the right model with the right token meanings. Tensor names are the
//! module paths (`blocks.0.attention.query.weight`, …); Burn's `Linear` weights are stored
//! `[d_input, d_output]`, the transpose of PyTorch's `nn.Linear`.

use std::path::Path;

use aurl_core::tokenize::Vocabulary;
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};

use crate::error::{ModelError, checkpoint_error, io_error};
use crate::weights::{ModelKind, SavedModel, check_vocab_size};

/// Header metadata keys.
const KIND: &str = "aurl.kind";
const CONFIG: &str = "aurl.config";
const VOCABULARY: &str = "aurl.vocabulary";

/// Writes `model`'s weights to the safetensors file `path` (atomically), with its kind,
/// `config` and `vocabulary` in the header.
///
/// # Errors
/// [`ModelError::InvalidConfig`] if the config's vocabulary size differs from the
/// vocabulary; [`ModelError::Checkpoint`] if the file cannot be written.
pub fn save_safetensors<M: ModelKind>(
    path: &Path,
    model: &M,
    config: &M::Config,
    vocabulary: &Vocabulary,
) -> Result<(), ModelError> {
    check_vocab_size::<M>(config, vocabulary)?;
    let json = |v: &dyn erased::Json| v.to_json().map_err(|e| checkpoint_error(path, e));
    let mut store = SafetensorsStore::from_file(path)
        .overwrite(true)
        .metadata(KIND, M::KIND)
        .metadata(CONFIG, json(config)?)
        .metadata(VOCABULARY, json(vocabulary)?);
    model
        .save_into(&mut store)
        .map_err(|e| checkpoint_error(path, e))
}

/// Loads a model of kind `M` written by [`save_safetensors`] onto `device`.
///
/// # Errors
/// [`ModelError::Io`] for a missing file; [`ModelError::Checkpoint`] for a file that is not
/// safetensors, lacks Aurl's metadata, holds another kind of model, or whose tensors do not
/// match the config (missing, unused or misshapen ones);
/// [`ModelError::InvalidConfig`] for a config that no longer validates.
pub fn load_safetensors<M: ModelKind>(
    path: &Path,
    device: &Device,
) -> Result<SavedModel<M>, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| checkpoint_error(path, format!("not a safetensors file: {e:?}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let field = |key: &str| {
        metadata.get(key).ok_or_else(|| {
            checkpoint_error(
                path,
                format!("no `{key}` in the header: not written by Aurl"),
            )
        })
    };
    let kind = field(KIND)?;
    if kind != M::KIND {
        return Err(checkpoint_error(
            path,
            format!("holds a {kind} model, not a {}", M::KIND),
        ));
    }
    let config: M::Config =
        serde_json::from_str(field(CONFIG)?).map_err(|e| checkpoint_error(path, e))?;
    let vocabulary: Vocabulary =
        serde_json::from_str(field(VOCABULARY)?).map_err(|e| checkpoint_error(path, e))?;
    if M::config_vocab_size(&config) != vocabulary.len() {
        return Err(checkpoint_error(
            path,
            "config and vocabulary disagree on the vocabulary size",
        ));
    }
    let mut model = M::build(&config, device)?;
    let mut store = SafetensorsStore::from_file(path);
    let result = model
        .load_from(&mut store)
        .map_err(|e| checkpoint_error(path, e))?;
    if !result.missing.is_empty() || !result.unused.is_empty() || !result.errors.is_empty() {
        return Err(checkpoint_error(
            path,
            format!(
                "tensors do not match the config: {} missing, {} unused, {} errors ({:?})",
                result.missing.len(),
                result.unused.len(),
                result.errors.len(),
                result
                    .missing
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .chain(result.unused.iter().map(String::as_str))
                    .take(3)
                    .collect::<Vec<_>>()
            ),
        ));
    }
    Ok(SavedModel {
        model,
        config,
        vocabulary,
    })
}

/// JSON of the two serialisable things the header holds, behind one object-safe trait.
mod erased {
    pub(super) trait Json {
        fn to_json(&self) -> Result<String, serde_json::Error>;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String, serde_json::Error> {
            serde_json::to_string(self)
        }
    }
}
