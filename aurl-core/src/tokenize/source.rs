//! Token sequences read one at a time — from memory or from a memory-mapped token cache —
//! so windows over a corpus can be cut without holding the corpus.

use std::borrow::Cow;
use std::fmt::Debug;

use super::{BarStart, TokenSequence};

/// A numbered collection of token sequences, read one at a time.
///
/// Training windows (`aurl_data::windows::TokenWindows::lazy`) keep only the source and
/// where each window starts, and read a window's tokens when it is batched: with a source
/// that maps its data from disk (`aurl_data::cache::MappedSequences`), memory stays flat
/// however large the corpus.
///
/// ```
/// use aurl_core::tokenize::{SequenceSource, TokenSequence};
/// let memory = vec![TokenSequence { ids: vec![1, 2, 3], bars: vec![] }];
/// assert_eq!(memory.count(), 1);
/// assert_eq!(memory.tokens(0), 3);
/// assert_eq!(memory.sequence(0).ids, [1, 2, 3]);
/// ```
pub trait SequenceSource: Send + Sync + Debug {
    /// Number of sequences.
    fn count(&self) -> usize;

    /// Sequence `i` (`i < count()`).
    ///
    /// # Panics
    /// May panic for `i >= count()`.
    fn sequence(&self, i: usize) -> Cow<'_, TokenSequence>;

    /// Length of sequence `i` in tokens, without reading its tokens.
    fn tokens(&self, i: usize) -> usize {
        self.sequence(i).ids.len()
    }

    /// Where the bars of sequence `i` start, without reading its tokens.
    fn bars(&self, i: usize) -> Cow<'_, [BarStart]> {
        Cow::Owned(self.sequence(i).into_owned().bars)
    }

    /// Total tokens over all sequences.
    fn total_tokens(&self) -> usize {
        (0..self.count()).map(|i| self.tokens(i)).sum()
    }
}

impl SequenceSource for Vec<TokenSequence> {
    fn count(&self) -> usize {
        self.len()
    }

    fn sequence(&self, i: usize) -> Cow<'_, TokenSequence> {
        Cow::Borrowed(&self[i])
    }

    fn tokens(&self, i: usize) -> usize {
        self[i].ids.len()
    }

    fn bars(&self, i: usize) -> Cow<'_, [BarStart]> {
        Cow::Borrowed(&self[i].bars)
    }
}
