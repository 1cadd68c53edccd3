//! A run's data: both splits as token-sequence sources, read from the token cache when
//! the run has one, and the training windows cut from them.

use std::path::PathBuf;
use std::sync::Arc;

use crate::core::tokenize::{SequenceSource, TokenSequence, Tokenizer, Vocabulary};
use crate::data::cache::{CacheOptions, CacheReport, build_cache};
use crate::data::corpus::{ScoreCorpus, read_corpus};
use crate::data::windows::TokenWindows;
use crate::model::train::distributed::Collective;

use super::RunConfig;

/// The data of a run. Every sequence reads framed (BOS first, EOS last), as training and
/// generation expect.
///
/// With `data.cache` set and augmentation off, the splits are read from the memory-mapped
/// token cache on demand ([`crate::data::cache::MappedSequences`]) and the windows only
/// record where they start ([`TokenWindows::lazy`]): memory does not grow with the corpus.
/// Otherwise the tokens are in memory.
#[derive(Debug)]
pub struct RunData {
    /// The training split.
    pub train: Arc<dyn SequenceSource>,
    /// The validation split.
    pub valid: Arc<dyn SequenceSource>,
    /// MIDI files found.
    pub files: usize,
    /// Files that could not be used, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    /// Notes in the training pieces.
    pub train_notes: usize,
    /// Notes in the validation pieces (the denominator of bits per note).
    pub valid_notes: usize,
    /// The scores, kept when epochs are augmented (each epoch re-tokenizes an augmented
    /// copy of the training scores).
    pub scores: Option<ScoreCorpus>,
    /// What building the token cache did, when the tokens come from it (read on demand).
    pub cache_report: Option<CacheReport>,
}

impl RunData {
    /// Reads the data `config` names: through the token cache (built or refreshed first)
    /// when it names one, otherwise by reading and tokenizing the files.
    ///
    /// # Errors
    /// An invalid split rule or preprocessing config, or a cache that cannot be written.
    pub fn load(
        config: &RunConfig,
        tokenizer: &(dyn Tokenizer + Sync),
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::load_on(config, tokenizer, None)
    }

    /// [`RunData::load`] on one rank of a data-parallel run: with `data.cache` set, the
    /// ranks first fill the cache together, each tokenizing its part of the files
    /// ([`CacheOptions::part_of`]), then every rank reads the whole corpus from it
    /// (memory-mapped: ranks of one machine share the pages). The cache must be on a
    /// filesystem every rank sees; a rank that does not see another's part tokenizes it
    /// itself. Without `data.cache` every rank reads and tokenizes the whole corpus.
    ///
    /// # Errors
    /// As [`RunData::load`]; an error on any rank while filling the cache stops every rank.
    pub fn load_on(
        config: &RunConfig,
        tokenizer: &(dyn Tokenizer + Sync),
        ranks: Option<&dyn Collective>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let vocab = tokenizer.vocab();
        let rule = config.data.split_rule()?;
        let read_scores = || read_corpus(&config.data.paths, &rule, Some(&config.preprocess));
        let scores = if config.augment.is_off() {
            None
        } else {
            Some(read_scores()?)
        };
        if let Some(root) = &config.data.cache {
            if let Some(ranks) = ranks.filter(|r| r.world() > 1) {
                let options = CacheOptions::new(root).part_of(ranks.rank(), ranks.world());
                let part = build_cache(
                    &config.data.paths,
                    &rule,
                    tokenizer,
                    Some(&config.preprocess),
                    &options,
                    |_| {},
                );
                let mut failed = [f32::from(u8::from(part.is_err()))];
                ranks.all_reduce_f32(&mut failed)?;
                part?;
                if failed[0] > 0.0 {
                    return Err(format!(
                        "{} other rank(s) could not build their part of the token cache",
                        failed[0]
                    )
                    .into());
                }
            }
            let cached = build_cache(
                &config.data.paths,
                &rule,
                tokenizer,
                Some(&config.preprocess),
                &CacheOptions::new(root),
                |_| {},
            )?;
            let report = cached.report.clone();
            let (train, valid) = cached.into_sources(Some(vocab));
            return Ok(Self {
                train_notes: train.notes(),
                valid_notes: valid.notes(),
                train: Arc::new(train),
                valid: Arc::new(valid),
                files: report.files,
                failed: report.failed.clone(),
                scores,
                cache_report: Some(report),
            });
        }
        let corpus = match &scores {
            Some(scores) => scores.tokenize(tokenizer),
            None => read_scores()?.tokenize(tokenizer),
        };
        let frame = |s: Vec<TokenSequence>| -> Vec<TokenSequence> {
            s.into_iter().map(|s| s.framed(vocab)).collect()
        };
        Ok(Self {
            files: corpus.files,
            failed: corpus.failed,
            train_notes: corpus.train_notes,
            valid_notes: corpus.valid_notes,
            train: Arc::new(frame(corpus.train)),
            valid: Arc::new(frame(corpus.valid)),
            scores,
            cache_report: None,
        })
    }

    /// Training windows of `len` tokens advancing by about `stride`, each opening with the
    /// header state in force (see [`TokenWindows::with_headers`]), cut on demand.
    #[must_use]
    pub fn train_windows(&self, len: usize, stride: usize, vocab: &Vocabulary) -> TokenWindows {
        TokenWindows::lazy(Arc::clone(&self.train), len, stride, 0, Some(vocab))
    }

    /// Validation windows: every token predicted once (see [`TokenWindows::contiguous`]).
    #[must_use]
    pub fn valid_windows(&self, len: usize, vocab: &Vocabulary) -> TokenWindows {
        let pad = vocab.pad();
        TokenWindows::lazy_contiguous(Arc::clone(&self.valid), len, pad)
    }

    /// The ids of every sequence of a split (for the n-gram baseline, which holds them).
    #[must_use]
    pub fn ids(source: &dyn SequenceSource) -> Vec<Vec<u16>> {
        (0..source.count())
            .map(|i| source.sequence(i).into_owned().ids)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures_config(cache: Option<PathBuf>) -> RunConfig {
        let mut config = RunConfig::default();
        config.data.paths = vec![PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures"
        ))];
        config.data.cache = cache;
        config
    }

    /// Through the cache (read on demand) or in memory, a run sees the same pieces and
    /// windows.
    #[test]
    fn cached_and_in_memory_data_are_the_same() {
        let dir = std::env::temp_dir().join(format!("aurl-run-data-{}", std::process::id()));
        let tokenizer = crate::core::tokenize::Remi::new(&Default::default()).unwrap();
        let vocab = tokenizer.vocab();
        let memory = RunData::load(&fixtures_config(None), &tokenizer).unwrap();
        let mapped = RunData::load(&fixtures_config(Some(dir.clone())), &tokenizer).unwrap();
        assert!(mapped.cache_report.is_some() && memory.cache_report.is_none());
        assert!(memory.train.count() > 0);
        assert_eq!(mapped.train.count(), memory.train.count());
        assert_eq!(mapped.valid.count(), memory.valid.count());
        assert_eq!(
            (mapped.files, mapped.train_notes, mapped.valid_notes),
            (memory.files, memory.train_notes, memory.valid_notes)
        );
        for i in 0..memory.train.count() {
            assert_eq!(mapped.train.sequence(i), memory.train.sequence(i));
        }
        assert_eq!(memory.train.sequence(0).ids.first(), Some(&vocab.bos()));
        let (a, b) = (
            mapped.train_windows(32, 16, vocab),
            memory.train_windows(32, 16, vocab),
        );
        assert_eq!(a.count(), b.count());
        for i in 0..a.count() {
            assert_eq!(a.get(i), b.get(i));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
