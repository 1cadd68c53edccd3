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

    /// Opens the log of a run resuming after `step`: records of later steps (logged by the
    /// run after its checkpoint, before it was killed) and a torn last line are dropped, so
    /// the resumed run's records follow on without duplicates. The trimmed log is written
    /// atomically; lines that are not JSON objects with a `step` are kept as they are.
    ///
    /// # Errors
    /// [`ModelError::Io`].
    pub fn resume(path: &Path, step: usize) -> Result<Self, ModelError> {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_error(path, e)),
        };
        let mut kept = String::with_capacity(text.len());
        // Only newline-terminated lines are complete: a kill can tear the last one.
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let later = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("step")?.as_u64())
                .is_some_and(|s| s > step as u64);
            if !later {
                kept.push_str(line);
            }
        }
        if kept.len() != text.len() {
            aurl_data::write_atomically(path, kept.as_bytes()).map_err(|e| io_error(path, e))?;
        }
        Self::append(path)
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

#[cfg(test)]
mod tests {
    use super::MetricsLog;

    #[test]
    fn resuming_drops_later_steps_and_a_torn_line() {
        let dir = std::env::temp_dir().join(format!("aurl-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metrics.jsonl");
        let log = "{\"step\":1}\n{\"step\":2}\nnote\n{\"step\":3}\n{\"step\":4}\n{\"st";
        std::fs::write(&path, log).unwrap();
        let mut m = MetricsLog::resume(&path, 2).unwrap();
        m.write(&serde_json::json!({"step": 3})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"step\":1}\n{\"step\":2}\nnote\n{\"step\":3}\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
