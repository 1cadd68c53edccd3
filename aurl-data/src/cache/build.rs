//! Building (or refreshing) the token cache of a corpus, and reading a tokenized corpus
//! back from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use aurl_core::tokenize::{Tokenizer, Vocabulary};
use rayon::prelude::*;
use serde::Serialize;

use super::{CacheEntry, MappedSequences, TokenCache, config_key, file_key};
use crate::corpus::{Split, SplitRule, TokenizedCorpus, relative_path};
use crate::preprocess::{Preprocessing, preprocess};
use crate::walk::walk;
use crate::{Error, Mode, read_midi};

/// Where the cache lives and how it is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// The cache root; each (tokenizer, preprocessing) pair gets a folder inside it.
    pub root: PathBuf,
    /// Files per shard (and per unit of parallel work); memory while building grows with
    /// this, not with the corpus.
    pub shard_files: usize,
    /// `Some((k, n))`: this build takes part `k` of `n` — every `n`-th file of the walk
    /// from the `k`-th on — and leaves the others alone, so `n` processes (the ranks of a
    /// data-parallel run) fill one cache together, each file tokenized once; a whole build
    /// afterwards finds every file cached. `None`: all files.
    pub part: Option<(usize, usize)>,
}

impl CacheOptions {
    /// Options with 1,024 files per shard, for all files.
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            shard_files: 1024,
            part: None,
        }
    }

    /// These options for part `k` of `n` (see [`CacheOptions::part`]); `n` of 0 or 1 is
    /// the whole corpus.
    ///
    /// ```
    /// # use aurl_data::cache::CacheOptions;
    /// assert_eq!(CacheOptions::new("cache").part_of(1, 4).part, Some((1, 4)));
    /// assert_eq!(CacheOptions::new("cache").part_of(0, 1).part, None);
    /// ```
    #[must_use]
    pub fn part_of(mut self, k: usize, n: usize) -> Self {
        self.part = (n > 1).then_some((k % n, n));
        self
    }

    /// Whether the `i`-th file of the walk belongs to this build.
    fn takes(&self, i: usize) -> bool {
        self.part.is_none_or(|(k, n)| i % n == k)
    }
}

/// What a cache build found and did (the corpus report of `examples/prepare.rs`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheReport {
    /// The cache folder used.
    pub cache_dir: PathBuf,
    /// MIDI files found.
    pub files: usize,
    /// Files already cached.
    pub cached: usize,
    /// Files tokenized by this build.
    pub tokenized: usize,
    /// Files that could not be used, with the reason (not cached; tried again next time).
    pub failed: Vec<(PathBuf, String)>,
    /// Damaged shards found, deleted and rebuilt, with the reason.
    pub damaged_shards: Vec<(PathBuf, String)>,
    /// Shards written by this build.
    pub shards_written: usize,
    /// Shards in the cache folder afterwards.
    pub shards: usize,
    /// Usable files in the training split.
    pub train_files: usize,
    /// Usable files in the validation split.
    pub valid_files: usize,
    /// Notes in usable files (after preprocessing).
    pub notes: usize,
    /// Tokens in usable files.
    pub tokens: usize,
    /// Wall time of the build.
    pub seconds: f64,
}

impl CacheReport {
    /// Tokens per note over the usable files.
    #[must_use]
    pub fn tokens_per_note(&self) -> f64 {
        if self.notes == 0 {
            0.0
        } else {
            self.tokens as f64 / self.notes as f64
        }
    }
}

/// One file of a cached corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFile {
    /// Its path.
    pub path: PathBuf,
    /// Its split (`None`: not listed in the split table).
    pub split: Option<Split>,
    /// Its cache key (`None`: it could not be used).
    pub key: Option<u128>,
}

/// A corpus whose tokens are in the cache: the cache, its files and the build report.
#[derive(Debug)]
pub struct CachedCorpus {
    /// The opened cache.
    pub cache: TokenCache,
    /// Every file found, in path order.
    pub files: Vec<CachedFile>,
    /// What the build did.
    pub report: CacheReport,
}

impl CachedCorpus {
    /// The token sequences of both splits, copied out of the cache in path order (the
    /// same content [`crate::corpus::ScoreCorpus::tokenize`] gives).
    #[must_use]
    pub fn tokenized(&self) -> TokenizedCorpus {
        let mut corpus = TokenizedCorpus {
            files: self.report.files,
            failed: self.report.failed.clone(),
            ..TokenizedCorpus::default()
        };
        for f in &self.files {
            let (Some(split), Some(key)) = (f.split, f.key) else {
                continue;
            };
            let Some((sequence, notes)) = self.cache.get(key) else {
                continue;
            };
            match split {
                Split::Train => {
                    corpus.train_notes += notes;
                    corpus.train.push(sequence);
                }
                Split::Valid => {
                    corpus.valid_notes += notes;
                    corpus.valid.push(sequence);
                }
            }
        }
        corpus
    }

    /// The keys of one split's usable files, in path order.
    fn keys(&self, split: Split) -> Vec<u128> {
        self.files
            .iter()
            .filter(|f| f.split == Some(split))
            .filter_map(|f| f.key)
            .collect()
    }

    /// Both splits as [`MappedSequences`] (train, valid) read from the mapped cache on
    /// demand instead of copied out of it like [`CachedCorpus::tokenized`]: the way to
    /// train on a corpus larger than memory. With `framed`, every sequence opens with BOS
    /// and closes with EOS. The same sequences, in the same order, as `tokenized`.
    #[must_use]
    pub fn into_sources(self, framed: Option<&Vocabulary>) -> (MappedSequences, MappedSequences) {
        let (train, valid) = (self.keys(Split::Train), self.keys(Split::Valid));
        let cache = Arc::new(self.cache);
        (
            MappedSequences::new(Arc::clone(&cache), train, framed),
            MappedSequences::new(cache, valid, framed),
        )
    }
}

/// What happened to one file in a build.
enum Outcome {
    Cached(u128),
    New(CacheEntry),
    Failed(String),
}

/// Builds or refreshes the token cache for the MIDI files under `roots`: files already
/// cached (same bytes, same tokenizer and preprocessing) are skipped, the others are read
/// leniently, preprocessed and tokenized on all cores, `options.shard_files` at a time,
/// each batch written as one shard. `progress` is called with the number of files done
/// after each batch. Unusable files go to the report; nothing aborts the build.
///
/// Memory stays bounded by one batch of files plus an index entry per cached file, whatever
/// the corpus size. With [`CacheOptions::part`] only that part's files are built and
/// listed (the report counts them alone).
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid preprocessing config; [`Error::Io`] if the
/// cache folder or a shard cannot be written.
pub fn build_cache(
    roots: &[PathBuf],
    rule: &SplitRule,
    tokenizer: &(dyn Tokenizer + Sync),
    preprocessing: Option<&Preprocessing>,
    options: &CacheOptions,
    progress: impl Fn(usize),
) -> Result<CachedCorpus, Error> {
    if let Some(p) = preprocessing {
        p.validate()?;
    }
    let started = Instant::now();
    let dir = options
        .root
        .join(config_key(tokenizer.vocab(), preprocessing));
    let mut cache = TokenCache::open(&dir)?;
    let mut report = CacheReport {
        cache_dir: dir,
        damaged_shards: cache.damaged().to_vec(),
        ..CacheReport::default()
    };
    let mut files = Vec::new();
    let mut done = 0;
    // The folders are walked as the build goes: it starts at once, and only one shard's
    // worth of paths is pending.
    let mut found = walk(roots)
        .enumerate()
        .filter(|(i, _)| options.takes(*i))
        .map(|(_, item)| item);
    let mut chunk: Vec<PathBuf> = Vec::with_capacity(options.shard_files.max(1));
    loop {
        chunk.clear();
        for item in found.by_ref() {
            match item {
                Ok(path) => chunk.push(path),
                Err(unreadable) => report.failed.push(unreadable),
            }
            if chunk.len() == options.shard_files.max(1) {
                break;
            }
        }
        if chunk.is_empty() {
            break;
        }
        report.files += chunk.len();
        let outcomes: Vec<Outcome> = chunk
            .par_iter()
            .map(|path| process(path, &cache, tokenizer, preprocessing))
            .collect();
        let mut new = Vec::new();
        for (path, outcome) in chunk.iter().zip(outcomes) {
            let split = rule.split(relative_path(roots, path));
            let key = match outcome {
                Outcome::Cached(key) => {
                    report.cached += 1;
                    Some(key)
                }
                Outcome::New(entry) => {
                    report.tokenized += 1;
                    let key = entry.key;
                    new.push(entry);
                    Some(key)
                }
                Outcome::Failed(reason) => {
                    report.failed.push((path.clone(), reason));
                    None
                }
            };
            files.push(CachedFile {
                path: path.clone(),
                split,
                key,
            });
        }
        // Two files with the same bytes share one entry.
        new.sort_by_key(|e| e.key);
        new.dedup_by_key(|e| e.key);
        if let Some(path) = cache.insert(&new)? {
            report.shards_written += 1;
            tracing::debug!(path = %path.display(), files = new.len(), "shard written");
        }
        done += chunk.len();
        progress(done);
    }
    for f in &files {
        let (Some(key), Some(split)) = (f.key, f.split) else {
            if f.key.is_some() {
                report
                    .failed
                    .push((f.path.clone(), "not listed in the split table".to_owned()));
            }
            continue;
        };
        if let Some((tokens, notes)) = cache.sizes(key) {
            report.tokens += tokens;
            report.notes += notes;
            match split {
                Split::Train => report.train_files += 1,
                Split::Valid => report.valid_files += 1,
            }
        }
    }
    report.shards = cache.shard_count();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(CachedCorpus {
        cache,
        files,
        report,
    })
}

fn process(
    path: &Path,
    cache: &TokenCache,
    tokenizer: &(dyn Tokenizer + Sync),
    preprocessing: Option<&Preprocessing>,
) -> Outcome {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let key = file_key(&bytes);
    if cache.contains(key) {
        return Outcome::Cached(key);
    }
    let result = read_midi(&bytes, Mode::Lenient)
        .map_err(|e| e.to_string())
        .and_then(|(mut score, _)| {
            if let Some(p) = preprocessing {
                preprocess(&mut score, p).map_err(|e| e.to_string())?;
            }
            let notes = score.note_count();
            if notes == 0 {
                return Err("no notes".to_owned());
            }
            let sequence = tokenizer.encode(&score).map_err(|e| e.to_string())?;
            Ok(CacheEntry {
                key,
                sequence,
                notes,
            })
        });
    match result {
        Ok(entry) => Outcome::New(entry),
        Err(reason) => Outcome::Failed(reason),
    }
}
