//! A corpus in memory — scores ([`read_corpus`], preprocessed) or tokens
//! ([`tokenize_corpus`]) — with a deterministic train/valid split: what a training run on a
//! folder of MIDI files starts from. Unreadable files are reported, never fatal;
//! [`ScoreCorpus::augmented_train`] re-tokenizes an augmented training split per epoch.
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

use aurl_core::Score;
use aurl_core::tokenize::{TokenSequence, Tokenizer};
use rayon::prelude::*;
use serde::Serialize;

use crate::audit::discover;
use crate::augment::{Augmentation, augment};
use crate::preprocess::{Preprocessing, preprocess};
use crate::{Error, Mode, read_midi_file};

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
    let text = slash_path(relative);
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

/// How files are assigned to the training or validation split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitRule {
    /// By [`split_of`] with this validation percentage.
    Hash(u8),
    /// By a table of relative paths (see [`SplitRule::from_tsv`]); unlisted files are
    /// skipped and reported.
    Table(std::collections::HashMap<String, Split>),
}

impl SplitRule {
    /// Reads a split table: one file per line, tab-separated, its path relative to the
    /// corpus root first and `train` or `valid` second (further columns and a header line
    /// are ignored).
    ///
    /// # Errors
    /// A message naming the line when a split is neither `train` nor `valid`.
    pub fn from_tsv(text: &str) -> Result<Self, String> {
        let mut table = std::collections::HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let mut cols = line.split('\t');
            let (Some(path), Some(split)) = (cols.next(), cols.next()) else {
                continue;
            };
            let split = match split.trim() {
                "train" => Split::Train,
                "valid" | "validation" => Split::Valid,
                _ if i == 0 => continue, // header
                other => {
                    return Err(format!(
                        "line {}: split `{other}` is not train or valid",
                        i + 1
                    ));
                }
            };
            table.insert(path.trim().replace('\\', "/"), split);
        }
        Ok(Self::Table(table))
    }

    /// The split of a file at `relative` (its path under the corpus root), or `None` when a
    /// split table does not list it.
    #[must_use]
    pub fn split(&self, relative: &Path) -> Option<Split> {
        match self {
            Self::Hash(percent) => Some(split_of(relative, *percent)),
            Self::Table(t) => t.get(&slash_path(relative)).copied(),
        }
    }
}

/// `path` relative to the first of `roots` containing it (a root that is the file itself
/// gives its file name): what splits are decided on.
pub(crate) fn relative_path<'a>(roots: &[PathBuf], path: &'a Path) -> &'a Path {
    roots
        .iter()
        .find_map(|r| path.strip_prefix(r).ok())
        .filter(|r| !r.as_os_str().is_empty())
        .or_else(|| path.file_name().map(Path::new))
        .unwrap_or(path)
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
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
    /// Notes in the training files.
    pub train_notes: usize,
    /// Notes in the validation files (the denominator of bits per note).
    pub valid_notes: usize,
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

/// One usable file of a [`ScoreCorpus`].
#[derive(Debug, Clone)]
pub struct CorpusFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The score, preprocessed.
    pub score: Score,
}

/// The scores of a corpus, split and preprocessed: what tokenization and per-epoch
/// augmentation start from.
#[derive(Debug, Clone, Default)]
pub struct ScoreCorpus {
    /// Training files, in path order.
    pub train: Vec<CorpusFile>,
    /// Validation files, in path order.
    pub valid: Vec<CorpusFile>,
    /// MIDI files found.
    pub files: usize,
    /// Files (or folders) that could not be read, with the reason.
    pub failed: Vec<(PathBuf, String)>,
}

/// Reads (leniently) every MIDI file under `roots` on all cores, assigns it to a split by
/// `rule` (the path relative to its root) and applies `preprocessing`. Unreadable files,
/// files without notes (after preprocessing) and files the split table does not list go to
/// `failed` with the reason; nothing aborts the scan.
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid preprocessing config (before reading anything).
pub fn read_corpus(
    roots: &[PathBuf],
    rule: &SplitRule,
    preprocessing: Option<&Preprocessing>,
) -> Result<ScoreCorpus, Error> {
    if let Some(p) = preprocessing {
        p.validate()?;
    }
    let found = discover(roots);
    let results: Vec<(Option<Split>, Result<Score, String>)> = found
        .files
        .par_iter()
        .map(|path| {
            let split = rule.split(relative_path(roots, path));
            let result = read_midi_file(path, Mode::Lenient)
                .map_err(|e| e.to_string())
                .and_then(|(mut score, _)| {
                    if let Some(p) = preprocessing {
                        preprocess(&mut score, p).map_err(|e| e.to_string())?;
                    }
                    if score.note_count() == 0 {
                        return Err("no notes".to_owned());
                    }
                    Ok(score)
                });
            (split, result)
        })
        .collect();
    let mut corpus = ScoreCorpus {
        files: found.files.len(),
        failed: found.unreadable,
        ..ScoreCorpus::default()
    };
    for (path, (split, result)) in found.files.iter().zip(results) {
        let file = |score| CorpusFile {
            path: path.clone(),
            score,
        };
        match (split, result) {
            (None, _) => corpus
                .failed
                .push((path.clone(), "not listed in the split table".to_owned())),
            (Some(Split::Train), Ok(score)) => corpus.train.push(file(score)),
            (Some(Split::Valid), Ok(score)) => corpus.valid.push(file(score)),
            (Some(_), Err(reason)) => corpus.failed.push((path.clone(), reason)),
        }
    }
    Ok(corpus)
}

impl ScoreCorpus {
    /// Tokenizes both splits on all cores; files the tokenizer refuses go to `failed`.
    #[must_use]
    pub fn tokenize(&self, tokenizer: &(dyn Tokenizer + Sync)) -> TokenizedCorpus {
        let encode = |files: &[CorpusFile]| -> Vec<Result<TokenSequence, String>> {
            files
                .par_iter()
                .map(|f| tokenizer.encode(&f.score).map_err(|e| e.to_string()))
                .collect()
        };
        let mut corpus = TokenizedCorpus {
            files: self.files,
            failed: self.failed.clone(),
            ..TokenizedCorpus::default()
        };
        for (f, r) in self.train.iter().zip(encode(&self.train)) {
            match r {
                Ok(t) => {
                    corpus.train_notes += f.score.note_count();
                    corpus.train.push(t);
                }
                Err(reason) => corpus.failed.push((f.path.clone(), reason)),
            }
        }
        for (f, r) in self.valid.iter().zip(encode(&self.valid)) {
            match r {
                Ok(t) => {
                    corpus.valid_notes += f.score.note_count();
                    corpus.valid.push(t);
                }
                Err(reason) => corpus.failed.push((f.path.clone(), reason)),
            }
        }
        corpus
    }

    /// The training split for `epoch` of a run seeded with `seed`: every training score
    /// augmented by [`augment`] (sample index = its position in `train`) and tokenized, on
    /// all cores. A pure function of its arguments, so a resumed run rebuilds the same
    /// epoch. A variation the tokenizer refuses falls back to the file as it is; a file the
    /// tokenizer refuses either way is left out (as [`ScoreCorpus::tokenize`] leaves it).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid augmentation config.
    pub fn augmented_train(
        &self,
        tokenizer: &(dyn Tokenizer + Sync),
        augmentation: &Augmentation,
        seed: u64,
        epoch: u64,
    ) -> Result<Vec<TokenSequence>, Error> {
        augmentation.validate()?;
        let sequences: Vec<Option<TokenSequence>> = self
            .train
            .par_iter()
            .enumerate()
            .map(|(i, f)| {
                let varied = augment(&f.score, augmentation, seed, epoch, i as u64)
                    .ok()
                    .and_then(|(score, _)| tokenizer.encode(&score).ok());
                varied.or_else(|| tokenizer.encode(&f.score).ok())
            })
            .collect();
        Ok(sequences.into_iter().flatten().collect())
    }
}

/// Reads (leniently) and tokenizes every MIDI file under `roots`, on all cores, splitting
/// by [`split_of`] the path relative to its root. Files without notes are skipped.
pub fn tokenize_corpus(
    roots: &[PathBuf],
    tokenizer: &(dyn Tokenizer + Sync),
    valid_percent: u8,
) -> TokenizedCorpus {
    tokenize_corpus_with(roots, tokenizer, &SplitRule::Hash(valid_percent))
}

/// [`tokenize_corpus`] with any [`SplitRule`] (no preprocessing: see [`read_corpus`]).
pub fn tokenize_corpus_with(
    roots: &[PathBuf],
    tokenizer: &(dyn Tokenizer + Sync),
    rule: &SplitRule,
) -> TokenizedCorpus {
    // Without preprocessing there is no config to be invalid.
    read_corpus(roots, rule, None)
        .unwrap_or_default()
        .tokenize(tokenizer)
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

    #[test]
    fn a_split_table_assigns_listed_files_and_rejects_unknown_splits() {
        let rule = SplitRule::from_tsv("file\tsplit\na/x.mid\ttrain\t3\nb/y.mid\tvalid\n").unwrap();
        assert_eq!(rule.split(Path::new("a/x.mid")), Some(Split::Train));
        assert_eq!(rule.split(Path::new("b/y.mid")), Some(Split::Valid));
        assert_eq!(rule.split(Path::new("c.mid")), None);
        let err = SplitRule::from_tsv("a.mid\ttrain\nb.mid\ttest\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }
}
