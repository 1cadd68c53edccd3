//! A tokenized corpus in memory with a deterministic train/valid split: what a training run
//! on a folder of MIDI files starts from. Unreadable files are reported, never fatal.
//!
//! ```
//! use aurl_core::tokenize::{Remi, TokenizerConfig};
//! use aurl_data::corpus::tokenize_corpus;
//! let fixtures = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"));
//! let remi = Remi::new(&TokenizerConfig::default())?;
//! let corpus = tokenize_corpus(&[fixtures.to_path_buf()], &remi, 10);
//! assert!(corpus.train.len() > corpus.valid.len());
//! assert!(!corpus.failed.is_empty(), "the fixtures include damaged files");
//! # Ok::<(), aurl_core::Error>(())
//! ```

use std::path::{Path, PathBuf};

use aurl_core::tokenize::{TokenSequence, Tokenizer};
use rayon::prelude::*;
use serde::Serialize;

use crate::audit::discover;
use crate::{Mode, read_midi_file};

/// Which part of the corpus a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Used for training.
    Train,
    /// Held out for validation.
    Valid,
}

/// The split of a file, from an FNV-1a hash of its path relative to the corpus root (with
/// `/` separators): stable across machines, runs and corpus growth (adding files never
/// moves an existing one). About `valid_percent` % of files go to validation.
#[must_use]
pub fn split_of(relative: &Path, valid_percent: u8) -> Split {
    let text = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    if h % 100 < u64::from(valid_percent.min(100)) {
        Split::Valid
    } else {
        Split::Train
    }
}

/// Token sequences of a corpus, split, with what could not be used.
#[derive(Debug, Clone, Default)]
pub struct TokenizedCorpus {
    /// Training sequences, in path order.
    pub train: Vec<TokenSequence>,
    /// Validation sequences, in path order.
    pub valid: Vec<TokenSequence>,
    /// MIDI files found.
    pub files: usize,
    /// Notes in the files used.
    pub notes: usize,
    /// Files (or folders) that could not be read or tokenized, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

impl TokenizedCorpus {
    /// Tokens in the training split.
    #[must_use]
    pub fn train_tokens(&self) -> usize {
        self.train.iter().map(|s| s.ids.len()).sum()
    }

    /// Tokens in the validation split.
    #[must_use]
    pub fn valid_tokens(&self) -> usize {
        self.valid.iter().map(|s| s.ids.len()).sum()
    }
}

/// A file's tokens and note count, or why it cannot be used.
type FileResult = Result<(TokenSequence, usize), String>;

/// Reads (leniently) and tokenizes every MIDI file under `roots`, on all cores, splitting
/// by [`split_of`] the path relative to its root. Files without notes are skipped.
pub fn tokenize_corpus(
    roots: &[PathBuf],
    tokenizer: &(dyn Tokenizer + Sync),
    valid_percent: u8,
) -> TokenizedCorpus {
    let found = discover(roots);
    let results: Vec<(Split, FileResult)> = found
        .files
        .par_iter()
        .map(|path| {
            let relative = roots
                .iter()
                .find_map(|r| path.strip_prefix(r).ok())
                .filter(|r| !r.as_os_str().is_empty())
                .or_else(|| path.file_name().map(Path::new))
                .unwrap_or(path);
            let split = split_of(relative, valid_percent);
            let result = read_midi_file(path, Mode::Lenient)
                .map_err(|e| e.to_string())
                .and_then(|(score, _)| {
                    let notes = score.note_count();
                    if notes == 0 {
                        return Err("no notes".to_owned());
                    }
                    tokenizer
                        .encode(&score)
                        .map(|t| (t, notes))
                        .map_err(|e| e.to_string())
                });
            (split, result)
        })
        .collect();
    let mut corpus = TokenizedCorpus {
        files: found.files.len(),
        failed: found.unreadable,
        ..TokenizedCorpus::default()
    };
    for (path, (split, result)) in found.files.iter().zip(results) {
        match result {
            Ok((tokens, notes)) => {
                corpus.notes += notes;
                match split {
                    Split::Train => corpus.train.push(tokens),
                    Split::Valid => corpus.valid.push(tokens),
                }
            }
            Err(reason) => corpus.failed.push((path.clone(), reason)),
        }
    }
    corpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_stable_and_roughly_proportional() {
        let a = split_of(Path::new("bach/bwv001.mid"), 10);
        assert_eq!(a, split_of(Path::new("bach/bwv001.mid"), 10));
        assert_eq!(split_of(Path::new("x.mid"), 0), Split::Train);
        assert_eq!(split_of(Path::new("x.mid"), 100), Split::Valid);
        let valid = (0..2000)
            .filter(|i| split_of(Path::new(&format!("dir/{i}.mid")), 10) == Split::Valid)
            .count();
        assert!((150..250).contains(&valid), "{valid}");
    }
}
