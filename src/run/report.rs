//! A run's `report.json`: the corpus, the training, the validation figures in bits per
//! note, the n-gram baseline and the samples. Its keys are stable (tools read them).

use std::path::Path;

use serde_json::{Value, json};

use crate::core::metrics::{self, NgramModel};

use super::error::io;
use super::samples::SampleFiles;
use super::{Job, ModelMode, RunData, RunError, Trained};

/// The n-gram baseline's validation figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NgramBaseline {
    /// Its order.
    pub order: usize,
    /// Validation NLL in nats per predicted token.
    pub valid_nll: f64,
    /// Validation bits per note (when the validation split has notes).
    pub valid_bits_per_note: Option<f64>,
}

impl std::fmt::Display for NgramBaseline {
    /// `5-gram baseline: valid NLL 1.234 nats/token, 7.10 bits/note`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-gram baseline: valid NLL {:.3} nats/token, {} bits/note",
            self.order,
            self.valid_nll,
            bits(self.valid_bits_per_note)
        )
    }
}

fn bits(value: Option<f64>) -> String {
    value.map_or("n/a".to_owned(), |v| format!("{v:.2}"))
}

/// What a run reports (see [`Job::report`]).
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The model's validation bits per note (language models only: a VAE's validation
    /// figure is a reconstruction NLL given the piece's own code, not a likelihood).
    pub valid_bits_per_note: Option<f64>,
    /// The n-gram baseline, when `data.ngram_baseline` asks for one.
    pub ngram: Option<NgramBaseline>,
    /// `report.json`'s content.
    pub json: Value,
}

impl RunReport {
    /// One line on how training went: time, parameters, losses, bits per note, speed and
    /// where the run is.
    #[must_use]
    pub fn describe(&self, trained: &Trained) -> String {
        let r = &trained.report;
        format!(
            "done in {:.1} s: {} parameters, final loss {:.3}, valid NLL {} ({} bits/note), \
             {:.0} train tok/s → {}",
            r.seconds,
            trained.parameters,
            r.final_loss,
            r.valid_nll.map_or("n/a".to_owned(), |v| format!("{v:.3}")),
            bits(self.valid_bits_per_note),
            r.tokens_per_second,
            trained.dir.display()
        )
    }

    /// Writes `report.json` into `dir`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(), RunError> {
        let path = dir.join("report.json");
        let text = serde_json::to_vec_pretty(&self.json)
            .map_err(|e| io(&path)(std::io::Error::other(e)))?;
        std::fs::write(&path, text).map_err(io(&path))
    }
}

impl Job {
    /// The run's report: bits per note (total validation NLL in bits over the notes of the
    /// validation files, tokenization-independent, so schemes and tools compare), the
    /// n-gram baseline (counted here) and everything `report.json` records.
    #[must_use]
    pub fn report(&self, trained: &Trained, samples: &[SampleFiles]) -> RunReport {
        let data = &self.data;
        let valid_indices: Vec<usize> = (0..self.valid.count()).collect();
        let predicted = self.valid.target_tokens(&valid_indices);
        let is_lm = self.config.model.mode == ModelMode::Transformer;
        let valid_bits_per_note = trained
            .report
            .valid_nll
            .filter(|_| is_lm)
            .and_then(|nll| metrics::bits_per_note(nll * predicted as f64, data.valid_notes));
        let ngram = self.ngram_baseline();
        let json = json!({
            "corpus": {
                "files": data.files,
                "failed": data.failed.iter()
                    .map(|(p, r)| json!({"path": p, "reason": r}))
                    .collect::<Vec<_>>(),
                "train_files": data.train.count(),
                "valid_files": data.valid.count(),
                "train_tokens": data.train.total_tokens(),
                "valid_tokens": data.valid.total_tokens(),
                "train_windows": self.train.count(),
                "valid_windows": self.valid.count(),
            },
            "parameters": trained.parameters,
            "training": trained.report,
            "valid_figure": if is_lm { "nll" } else { "reconstruction_nll" },
            "valid_predicted_tokens": predicted,
            "valid_notes": data.valid_notes,
            "valid_bits_per_note": valid_bits_per_note,
            "ngram_baseline": ngram.map(|n| json!({
                "order": n.baseline.order,
                "valid_nll": n.baseline.valid_nll,
                "valid_predicted_tokens": n.predicted,
                "valid_bits_per_note": n.baseline.valid_bits_per_note,
            })),
            "samples": samples,
        });
        RunReport {
            valid_bits_per_note,
            ngram: ngram.map(|n| n.baseline),
            json,
        }
    }

    /// The n-gram baseline of `data.ngram_baseline` (it holds the corpus's ids while it
    /// is counted), when asked for and there is a validation split.
    fn ngram_baseline(&self) -> Option<Counted> {
        let order = self.config.data.ngram_baseline;
        let data = &self.data;
        if order == 0 || data.valid.count() == 0 {
            return None;
        }
        let model = NgramModel::train(&RunData::ids(data.train.as_ref()), order, self.vocab.len());
        let score = model.score(&RunData::ids(data.valid.as_ref()));
        Some(Counted {
            baseline: NgramBaseline {
                order,
                valid_nll: score.nll_per_token(),
                valid_bits_per_note: metrics::bits_per_note(score.nll, data.valid_notes),
            },
            predicted: score.tokens,
        })
    }
}

/// A baseline and the tokens it predicted.
#[derive(Clone, Copy)]
struct Counted {
    baseline: NgramBaseline,
    predicted: usize,
}
