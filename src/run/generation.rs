//! What a generation run reports (`summary.json` of the generate tool). Its keys are
//! stable (tools read them).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::WeightFormat;
use crate::sampling::{Generated, StreamStats};

use super::error::io;
use super::{RunError, SampleFiles};

/// The pieces written, the speed and the latency of one generation run.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationSummary {
    /// The model directory generated from.
    pub checkpoint: PathBuf,
    /// How the decoding copy stored its weights (`f32`, `f16`, `int8`).
    pub weights: String,
    /// Whether they were f16.
    pub half_weights: bool,
    /// The files of each piece.
    pub pieces: Vec<SampleFiles>,
    /// Tokens generated, prompts excluded.
    pub new_tokens: usize,
    /// Wall time of the generation.
    pub seconds: f64,
    /// `new_tokens / seconds`.
    pub tokens_per_second: f64,
    /// Median latency of a decoding step (streamed generation only).
    pub step_ms_median: Option<f64>,
    /// Its 95th percentile.
    pub step_ms_p95: Option<f64>,
    /// Notes reported as they were completed.
    pub streamed_notes: usize,
    /// Time to the first complete note.
    pub first_note_ms: Option<f64>,
    /// Control tokens the grammar never allowed in their bar.
    pub controls_dropped: usize,
}

impl GenerationSummary {
    /// Summarises `pieces`, written as `written`, generated in `seconds` (`stats` from a
    /// streamed generation; a beam search has none).
    #[must_use]
    pub fn new(
        checkpoint: &Path,
        weights: WeightFormat,
        pieces: &[Generated],
        written: Vec<SampleFiles>,
        seconds: f64,
        stats: &StreamStats,
    ) -> Self {
        let new_tokens = written.iter().map(|p| p.summary.new_tokens).sum();
        Self {
            checkpoint: checkpoint.to_owned(),
            weights: weights.to_string(),
            half_weights: weights == WeightFormat::F16,
            pieces: written,
            new_tokens,
            seconds,
            tokens_per_second: new_tokens as f64 / seconds.max(1e-9),
            step_ms_median: stats.step_ms_quantile(0.5),
            step_ms_p95: stats.step_ms_quantile(0.95),
            streamed_notes: stats.notes,
            first_note_ms: stats.first_note_seconds.map(|s| s * 1e3),
            controls_dropped: pieces.iter().map(|p| p.controls_dropped).sum(),
        }
    }

    /// Writes it as JSON to `path`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), RunError> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| io(path)(std::io::Error::other(e)))?;
        std::fs::write(path, json).map_err(io(path))
    }
}

impl std::fmt::Display for GenerationSummary {
    /// `4 pieces, 2048 tokens in 1.93 s (1061 tokens/s)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pieces, {} tokens in {:.2} s ({:.0} tokens/s)",
            self.pieces.len(),
            self.new_tokens,
            self.seconds,
            self.tokens_per_second
        )
    }
}
