//! The sequences of one split of a cached corpus, read from the mapped shards on demand.

use std::borrow::Cow;
use std::sync::Arc;

use aurl_core::tokenize::{BarStart, SequenceSource, TokenId, TokenSequence, Vocabulary};

use super::TokenCache;

/// One split's token sequences, read from the memory-mapped cache when asked for: holding
/// it costs 16 bytes per file (its key) and a few counters, whatever the corpus size, and
/// the kernel pages tokens in and out as windows are read.
///
/// With `framed`, every sequence reads as [`TokenSequence::framed`] gives it (BOS first,
/// EOS last), the way training sees pieces.
///
/// ```
/// use aurl_core::tokenize::{Remi, SequenceSource, Tokenizer, TokenizerConfig};
/// use aurl_data::cache::{build_cache, CacheOptions};
/// use aurl_data::corpus::{Split, SplitRule};
/// let fixtures = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures"));
/// let dir = std::env::temp_dir().join(format!("aurl-mapped-doc-{}", std::process::id()));
/// let remi = Remi::new(&TokenizerConfig::default())?;
/// let corpus = build_cache(&[fixtures.to_path_buf()], &SplitRule::Hash(10), &remi, None, &CacheOptions::new(&dir), |_| {})?;
/// let in_memory = corpus.tokenized();
/// let (train, _valid) = corpus.into_sources(None);
/// assert_eq!(train.count(), in_memory.train.len());
/// assert_eq!(train.sequence(0).into_owned(), in_memory.train[0]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MappedSequences {
    cache: Arc<TokenCache>,
    keys: Vec<u128>,
    notes: usize,
    frame: Option<(TokenId, TokenId)>,
}

impl MappedSequences {
    /// The sequences cached under `keys` (keys the cache lacks are left out), framed with
    /// `vocab`'s BOS and EOS when given.
    #[must_use]
    pub fn new(cache: Arc<TokenCache>, keys: Vec<u128>, framed: Option<&Vocabulary>) -> Self {
        let keys: Vec<u128> = keys.into_iter().filter(|&k| cache.contains(k)).collect();
        let notes = keys
            .iter()
            .filter_map(|&k| cache.sizes(k))
            .map(|(_, notes)| notes)
            .sum();
        let frame = framed.map(|v| (v.bos(), v.eos()));
        Self {
            cache,
            keys,
            notes,
            frame,
        }
    }

    /// Notes in all the sequences' (preprocessed) scores.
    #[must_use]
    pub fn notes(&self) -> usize {
        self.notes
    }
}

impl SequenceSource for MappedSequences {
    fn count(&self) -> usize {
        self.keys.len()
    }

    fn sequence(&self, i: usize) -> Cow<'_, TokenSequence> {
        let (sequence, _) = self
            .cache
            .get(self.keys[i])
            .expect("keys are checked against the cache, whose shards never change");
        Cow::Owned(match self.frame {
            Some(_) => frame(sequence, self.frame),
            None => sequence,
        })
    }

    fn tokens(&self, i: usize) -> usize {
        let (tokens, _) = self.cache.sizes(self.keys[i]).unwrap_or_default();
        tokens + if self.frame.is_some() { 2 } else { 0 }
    }

    fn bars(&self, i: usize) -> Cow<'_, [BarStart]> {
        let (_, mut bars) = self.cache.bars(self.keys[i]).unwrap_or_default();
        if self.frame.is_some() {
            for b in &mut bars {
                b.token_index += 1;
            }
        }
        Cow::Owned(bars)
    }
}

/// [`TokenSequence::framed`] with the ids at hand.
fn frame(mut s: TokenSequence, frame: Option<(TokenId, TokenId)>) -> TokenSequence {
    if let Some((bos, eos)) = frame {
        s.ids.insert(0, bos);
        s.ids.push(eos);
        for b in &mut s.bars {
            b.token_index += 1;
        }
    }
    s
}
