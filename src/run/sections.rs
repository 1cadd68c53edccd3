//! The `[data]` and `[sample]` sections of a run configuration.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sampling::Strategy;

use super::{RunConfigError, invalid};

/// Where the MIDI files come from and how they are cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Files or folders of MIDI files (folders are walked recursively). Empty in the main
    /// job's config: the `train` example then uses [`bundled_chorales`](super::bundled_chorales) and their split.
    pub paths: Vec<PathBuf>,
    /// Percentage of files held out for validation (by a hash of their relative path).
    pub valid_percent: u8,
    /// A split table (TSV: relative path, `train`/`valid`) to use instead of the hash;
    /// relative to the working directory.
    pub split_file: Option<PathBuf>,
    /// Order of the Witten–Bell n-gram baseline reported next to the model's validation
    /// NLL (0 = none).
    pub ngram_baseline: usize,
    /// Tokens between the starts of consecutive training windows (snapped to bars);
    /// 0 = half the model's context.
    pub stride: usize,
    /// A token-cache root (see `examples/prepare.rs`): tokens are read from there, and
    /// files not cached yet are tokenized into it. Augmented epochs still read the scores.
    pub cache: Option<PathBuf>,
    /// Grow the window length over epochs (short windows first); off when absent.
    pub curriculum: Option<Curriculum>,
}

/// A length curriculum: windows of `start` tokens in the first epochs, doubled every
/// `every` epochs until they reach the model's `max_seq_len`.
///
/// ```
/// use aurl::run::Curriculum;
/// let c = Curriculum { start: 64, every: 2 };
/// let lens: Vec<usize> = (0..8).map(|e| c.len_at(e, 256)).collect();
/// assert_eq!(lens, [64, 64, 128, 128, 256, 256, 256, 256]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curriculum {
    /// Window length of the first epoch (≥ 1).
    pub start: usize,
    /// Epochs at each length before it doubles (≥ 1).
    pub every: u64,
}

impl Curriculum {
    /// The window length in `epoch` for a model trained on windows of `max` tokens.
    #[must_use]
    pub fn len_at(&self, epoch: u64, max: usize) -> usize {
        let doublings = (epoch / self.every.max(1)).min(63) as u32;
        self.start
            .max(1)
            .saturating_mul(1usize.checked_shl(doublings).unwrap_or(usize::MAX))
            .min(max)
    }
}

impl DataConfig {
    /// How files are split: the `split_file` table when set, else the hash rule with
    /// `valid_percent`.
    ///
    /// # Errors
    /// [`RunConfigError::Io`] if the table cannot be read, [`RunConfigError::Invalid`] if a
    /// line of it is malformed.
    pub fn split_rule(&self) -> Result<crate::data::corpus::SplitRule, RunConfigError> {
        use crate::data::corpus::SplitRule;
        let Some(path) = &self.split_file else {
            return Ok(SplitRule::Hash(self.valid_percent));
        };
        let text = std::fs::read_to_string(path).map_err(|e| RunConfigError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        SplitRule::from_tsv(&text).map_err(|e| invalid(&path.display().to_string(), e))
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            paths: vec![PathBuf::from("fixtures")],
            valid_percent: 10,
            split_file: None,
            ngram_baseline: 5,
            curriculum: None,
            stride: 0,
            cache: None,
        }
    }
}

/// The pieces generated at the end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// Number of pieces.
    pub count: usize,
    /// Tokens per piece.
    pub tokens: usize,
    /// Stop each piece at the end of this many bars, on a bar line (`tokens` still caps
    /// it); none by default.
    pub bars: Option<usize>,
    /// No EOS before this many new tokens (pieces of a guaranteed length; 0 = none).
    pub min_tokens: usize,
    /// Constrain sampling by the token grammar.
    pub constrained: bool,
    /// How tokens are chosen.
    pub strategy: Strategy,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            count: 4,
            tokens: 256,
            bars: None,
            min_tokens: 0,
            constrained: true,
            strategy: Strategy::default(),
        }
    }
}
