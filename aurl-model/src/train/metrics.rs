//! Per-step training metrics and their JSON-lines log.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::{ModelError, io_error};

/// What one optimizer step measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepMetrics {
    /// 1-based step number.
    pub step: usize,
    /// Training loss (mean NLL per target token, with label smoothing if configured).
    pub loss: f64,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Training tokens per second of this step.
    pub tokens_per_second: f64,
    /// Validation NLL per token, on steps that validated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_nll: Option<f64>,
    /// The loss's named parts and values (a VAE's reconstruction, KL and β), averaged over
    /// the step's micro-batches; empty for a plain language model.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub components: std::collections::BTreeMap<&'static str, f64>,
    /// What the sequences sampled at this step showed (every `train.sample_every` steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<super::SampleCheck>,
}

/// Appends one JSON object per line to `metrics.jsonl`, flushed after every line so a killed
/// run keeps everything it logged.
#[derive(Debug)]
pub struct MetricsLog {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl MetricsLog {
    /// Creates (or truncates) the log at `path`.
    ///
    /// # Errors
    /// [`ModelError::Io`].
    pub fn create(path: &Path) -> Result<Self, ModelError> {
        let file = std::fs::File::create(path).map_err(|e| io_error(path, e))?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// Opens the log at `path` for appending (a resumed run), creating it if missing.
    ///
    /// # Errors
    /// [`ModelError::Io`].
    pub fn append(path: &Path) -> Result<Self, ModelError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// Writes one record as a line.
    ///
    /// # Errors
    /// [`ModelError::Io`].
    pub fn write(&mut self, record: &impl Serialize) -> Result<(), ModelError> {
        let mut line = serde_json::to_vec(record).map_err(|e| io_error(&self.path, e))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .map_err(|e| io_error(&self.path, e))
    }
}
