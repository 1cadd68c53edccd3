//! Training windows over token sequences, and the seeded order a run visits them in.
//!
//! [`TokenWindows`] cuts sequences into fixed-length windows (held, or cut on demand from a
//! memory-mapped [`SequenceSource`]); [`DataOrder`] walks them epoch by epoch in a seeded
//! permutation and records where it stands in a [`DataCursor`] that checkpoints keep. Both
//! are plain data: `aurl-model` turns a batch of windows into tensors.
//!
//! ```
//! use aurl_core::tokenize::TokenSequence;
//! use aurl_data::windows::{DataCursor, DataOrder, EpochWindows, TokenWindows};
//! let pieces = vec![TokenSequence { ids: (1..=100).collect(), bars: vec![] }];
//! let windows = TokenWindows::new(&pieces, 16, 16, 0);
//! let epochs = EpochWindows::Fixed(&windows);
//! let mut order = DataOrder::new(&epochs, 42, DataCursor::default())?;
//! let mut batch = TokenWindows::default();
//! order.next_batch(4, &mut batch)?;
//! assert_eq!((batch.count(), batch.len()), (4, 16));
//! assert_eq!(order.cursor(), DataCursor { epoch: 0, next: 4 });
//! # Ok::<(), aurl_data::Error>(())
//! ```

mod order;

use std::borrow::Cow;
use std::sync::Arc;

use aurl_core::tokenize::{
    BarStart, Grammar, SequenceSource, Token, TokenId, TokenSequence, Vocabulary,
};

pub use order::{DataCursor, DataOrder, EpochWindows};

/// Fixed-length training windows of `len + 1` tokens (inputs and shifted targets), each
/// starting at a bar when the sequence has bars. The last window of a sequence is padded.
///
/// Windows are either held (the constructors over a slice of sequences) or **cut on
/// demand** from a [`SequenceSource`] ([`TokenWindows::lazy`],
/// [`TokenWindows::lazy_contiguous`]): then only the source and 8 bytes per window (its
/// sequence and start) are held, and a window's tokens are read when it is asked for —
/// over a memory-mapped token cache, memory does not grow with the corpus.
#[derive(Debug, Clone, Default)]
pub struct TokenWindows {
    store: Store,
    len: usize,
    pad: TokenId,
}

#[derive(Debug, Clone)]
enum Store {
    /// Every window's tokens.
    Held(Vec<Vec<TokenId>>),
    /// Windows cut from `source` when read: `(sequence, start)` each.
    Cut {
        source: Arc<dyn SequenceSource>,
        starts: Vec<(u32, u32)>,
        headers: Option<Arc<(Vocabulary, Grammar)>>,
    },
}

impl Default for Store {
    fn default() -> Self {
        Self::Held(Vec::new())
    }
}

impl TokenWindows {
    /// Windows over `source`, cut like [`TokenWindows::new`] — or like
    /// [`TokenWindows::with_headers`] when `headers` gives the vocabulary — but read from
    /// the source only when asked for ([`TokenWindows::get`], [`TokenWindows::inputs_and_targets`]):
    /// what is held is the source and where each window starts. The windows equal the
    /// held ones over the same sequences. With `headers`, the padding id is the
    /// vocabulary's (as in `with_headers`) and `pad` is ignored.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aurl_core::tokenize::TokenSequence;
    /// use aurl_data::windows::TokenWindows;
    /// let pieces = vec![TokenSequence { ids: (1..=40).collect(), bars: vec![] }];
    /// let held = TokenWindows::new(&pieces, 16, 8, 0);
    /// let lazy = TokenWindows::lazy(Arc::new(pieces), 16, 8, 0, None);
    /// assert_eq!(lazy.count(), held.count());
    /// assert_eq!(lazy.get(2), held.get(2));
    /// ```
    #[must_use]
    pub fn lazy(
        source: Arc<dyn SequenceSource>,
        len: usize,
        stride: usize,
        pad: TokenId,
        headers: Option<&Vocabulary>,
    ) -> Self {
        let (len, stride) = (len.max(1), stride.max(1));
        let mut starts = Vec::new();
        for i in 0..source.count() {
            let n = source.tokens(i);
            if n < 2 {
                continue;
            }
            let bars = source.bars(i);
            starts.extend(
                window_starts(n, &bars, len, stride)
                    .into_iter()
                    .map(|s| (i as u32, s as u32)),
            );
        }
        let pad = headers.map_or(pad, Vocabulary::pad);
        Self {
            store: Store::Cut {
                source,
                starts,
                headers: headers.map(|v| Arc::new((v.clone(), Grammar::new(v)))),
            },
            len,
            pad,
        }
    }

    /// [`TokenWindows::contiguous`] over `source`, cut on demand.
    #[must_use]
    pub fn lazy_contiguous(source: Arc<dyn SequenceSource>, len: usize, pad: TokenId) -> Self {
        let len = len.max(1);
        let mut starts = Vec::new();
        for i in 0..source.count() {
            let n = source.tokens(i);
            starts.extend(
                (0..n.saturating_sub(1))
                    .step_by(len)
                    .map(|s| (i as u32, s as u32)),
            );
        }
        Self {
            store: Store::Cut {
                source,
                starts,
                headers: None,
            },
            len,
            pad,
        }
    }

    /// Whether windows are cut on demand from a source.
    #[must_use]
    pub fn is_lazy(&self) -> bool {
        matches!(self.store, Store::Cut { .. })
    }

    /// Cuts every sequence into windows of `len + 1` tokens advancing by about `stride`
    /// tokens (snapped back to the closest bar start after the previous window's start).
    /// Sequences of fewer than two tokens give nothing.
    #[must_use]
    pub fn new(sequences: &[TokenSequence], len: usize, stride: usize, pad: TokenId) -> Self {
        let len = len.max(1);
        let stride = stride.max(1);
        let mut windows = Vec::new();
        for s in sequences {
            let ids = &s.ids;
            if ids.len() < 2 {
                continue;
            }
            for start in window_starts(s.ids.len(), &s.bars, len, stride) {
                let end = (start + len + 1).min(ids.len());
                let mut w = ids[start..end].to_vec();
                w.resize(len + 1, pad);
                windows.push(w);
            }
        }
        Self {
            store: Store::Held(windows),
            len,
            pad,
        }
    }

    /// Like [`TokenWindows::new`], but every window is a sequence that stands on its own:
    /// a window starting inside a piece re-emits the header state in force there (REMI:
    /// `Bar TimeSig Position_0 Tempo`; TSD and event: `TimeSig Tempo`) in place of the
    /// bar's own opening, and [`Grammar::repair`] then drops what the cut made invalid (a
    /// note-off whose note-on is before the window, a note cut at the end) — so every window
    /// validates with no grammar error and decodes with nothing skipped, and a model trained
    /// on them learns that pieces open with their header.
    #[must_use]
    pub fn with_headers(
        sequences: &[TokenSequence],
        len: usize,
        stride: usize,
        vocab: &Vocabulary,
    ) -> Self {
        let pad = vocab.pad();
        let len = len.max(1);
        let grammar = Grammar::new(vocab);
        let mut windows = Vec::new();
        for s in sequences.iter().filter(|s| s.ids.len() >= 2) {
            for start in window_starts(s.ids.len(), &s.bars, len, stride.max(1)) {
                windows.push(self_contained(s, start, len + 1, vocab, &grammar, pad));
            }
        }
        Self {
            store: Store::Held(windows),
            len,
            pad,
        }
    }

    /// Windows for evaluation: starts at multiples of `len`, so every token but each
    /// sequence's first is predicted exactly once (an exact total NLL).
    #[must_use]
    pub fn contiguous(sequences: &[TokenSequence], len: usize, pad: TokenId) -> Self {
        let len = len.max(1);
        let mut windows = Vec::new();
        for s in sequences.iter().filter(|s| s.ids.len() >= 2) {
            let mut start = 0;
            while start + 1 < s.ids.len() {
                let end = (start + len + 1).min(s.ids.len());
                let mut w = s.ids[start..end].to_vec();
                w.resize(len + 1, pad);
                windows.push(w);
                start += len;
            }
        }
        Self {
            store: Store::Held(windows),
            len,
            pad,
        }
    }

    /// How many windows [`TokenWindows::new`] (or `with_headers`) cuts from a sequence of
    /// `tokens` ids with these bar starts, without building them (for corpus reports).
    #[must_use]
    pub fn count_for(tokens: usize, bars: &[BarStart], len: usize, stride: usize) -> usize {
        if tokens < 2 {
            0
        } else {
            window_starts(tokens, bars, len.max(1), stride.max(1)).len()
        }
    }

    /// Number of windows.
    #[must_use]
    pub fn count(&self) -> usize {
        match &self.store {
            Store::Held(w) => w.len(),
            Store::Cut { starts, .. } => starts.len(),
        }
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Input length of every window (`len`; windows hold `len + 1` tokens).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The padding id.
    #[must_use]
    pub fn pad(&self) -> TokenId {
        self.pad
    }

    /// Window `i` (`len + 1` ids), read from the source if the windows are lazy.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<Cow<'_, [TokenId]>> {
        match &self.store {
            Store::Held(w) => w.get(i).map(|w| Cow::Borrowed(w.as_slice())),
            Store::Cut {
                source,
                starts,
                headers,
            } => {
                let &(seq, start) = starts.get(i)?;
                let s = source.sequence(seq as usize);
                let start = start as usize;
                let size = self.len + 1;
                Some(Cow::Owned(match headers.as_deref() {
                    Some((vocab, grammar)) => {
                        self_contained(&s, start, size, vocab, grammar, self.pad)
                    }
                    None => {
                        let end = (start + size).min(s.ids.len());
                        let mut w = s.ids[start..end].to_vec();
                        w.resize(size, self.pad);
                        w
                    }
                }))
            }
        }
    }

    /// Inputs and targets of the windows at `indices`, row after row (`indices.len() × len`
    /// ids each): a window's first `len` ids, and its last `len`. `aurl-model` makes tensors
    /// of them (`aurl_model::train::WindowTensors::batch`).
    ///
    /// ```
    /// use aurl_core::tokenize::TokenSequence;
    /// use aurl_data::windows::TokenWindows;
    /// let w = TokenWindows::new(&[TokenSequence { ids: vec![1, 2, 3, 4], bars: vec![] }], 3, 3, 0);
    /// assert_eq!(w.inputs_and_targets(&[0]), (vec![1, 2, 3], vec![2, 3, 4]));
    /// ```
    ///
    /// # Panics
    /// If an index is out of range.
    #[must_use]
    pub fn inputs_and_targets(&self, indices: &[usize]) -> (Vec<i64>, Vec<i64>) {
        let t = self.len;
        let b = indices.len();
        let mut inputs = Vec::with_capacity(b * t);
        let mut targets = Vec::with_capacity(b * t);
        for &i in indices {
            let w = self.get(i).expect("a window index in range");
            inputs.extend(w[..t].iter().map(|&x| i64::from(x)));
            targets.extend(w[1..].iter().map(|&x| i64::from(x)));
        }
        (inputs, targets)
    }

    /// Empties `self` (holding its windows from now on) and gives it `other`'s length and
    /// padding id.
    pub(crate) fn reset_like(&mut self, other: &TokenWindows) {
        self.store = Store::Held(Vec::new());
        self.len = other.len;
        self.pad = other.pad;
    }

    /// Appends a copy of `other`'s window `i` (`self` holds its windows: see
    /// [`TokenWindows::reset_like`]).
    pub(crate) fn push_copy(&mut self, other: &TokenWindows, i: usize) {
        let window = other.get(i).expect("a window index in range").into_owned();
        if let Store::Cut { .. } = self.store {
            let held = (0..self.count())
                .filter_map(|j| self.get(j).map(Cow::into_owned))
                .collect();
            self.store = Store::Held(held);
        }
        if let Store::Held(w) = &mut self.store {
            w.push(window);
        }
    }

    /// Real (non-padding) target tokens in the windows at `indices`.
    #[must_use]
    pub fn target_tokens(&self, indices: &[usize]) -> usize {
        indices
            .iter()
            .filter_map(|&i| self.get(i))
            .map(|w| w[1..].iter().filter(|&&x| x != self.pad).count())
            .sum()
    }
}

/// Where the windows of a sequence of `n` tokens start: 0, then about every `stride` tokens, snapped back to the
/// latest bar start after the previous start, until a window reaches the end.
fn window_starts(n: usize, bars: &[BarStart], len: usize, stride: usize) -> Vec<usize> {
    let mut starts = vec![0];
    let mut start = 0usize;
    while start + len + 1 < n {
        let target = start + stride;
        start = bars
            .iter()
            .map(|b| b.token_index)
            .filter(|&i| i > start && i <= target)
            .max()
            .unwrap_or(target);
        if start + 1 >= n {
            break;
        }
        starts.push(start);
    }
    starts
}

/// The header state in force at token `start` of `s` (REMI: `Bar TimeSig Position_0
/// Tempo`; TSD and event: `TimeSig Tempo`; nothing at 0) and where the body continues: a
/// window starting at a bar re-emits the header in place of the bar's own opening. This is
/// how training windows begin, so a generator that slides its context starts the new
/// context the same way.
#[must_use]
pub fn header_at(s: &TokenSequence, start: usize, vocab: &Vocabulary) -> (Vec<TokenId>, usize) {
    let ids = &s.ids;
    let mut header = Vec::new();
    let mut body = start;
    if start > 0 && start < ids.len() {
        // The header state in force: the last bar starting at or before the window.
        let bar: Option<&BarStart> = s.bars.iter().take_while(|b| b.token_index <= start).last();
        let (ts, tempo) = bar.map_or((None, None), |b| (b.time_signature, b.tempo));
        if vocab.scheme().has_bars() {
            header.extend(vocab.id(Token::Bar));
            header.extend(ts);
            header.extend(vocab.id(Token::Position(0)));
            header.extend(tempo);
            // The header replaces the bar's own opening.
            let bar_id = vocab.id(Token::Bar);
            if Some(ids[body]) == bar_id {
                body += 1;
                if body < ids.len() && Some(ids[body]) == ts {
                    body += 1;
                }
            }
        } else {
            header.extend(ts);
            header.extend(tempo);
        }
    }
    (header, body)
}

/// The window of `size` tokens of `s` at `start`, made to stand on its own (see
/// [`TokenWindows::with_headers`]), padded to `size`.
fn self_contained(
    s: &TokenSequence,
    start: usize,
    size: usize,
    vocab: &Vocabulary,
    grammar: &Grammar,
    pad: TokenId,
) -> Vec<TokenId> {
    let ids = &s.ids;
    let (header, body) = header_at(s, start, vocab);
    let mut take = size.saturating_sub(header.len());
    loop {
        let end = (body + take).min(ids.len());
        let mut candidate = header.clone();
        candidate.extend_from_slice(&ids[body..end]);
        let (mut repaired, _) = grammar.repair(&candidate);
        if repaired.len() <= size || take == 0 {
            repaired.truncate(size);
            repaired.resize(size, pad);
            return repaired;
        }
        take = take.saturating_sub(repaired.len() - size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurl_core::tokenize::BarStart;

    fn seq(n: usize, bars: &[usize]) -> TokenSequence {
        TokenSequence {
            ids: (1..=n as TokenId).collect(),
            bars: bars
                .iter()
                .map(|&token_index| BarStart {
                    token_index,
                    time_signature: None,
                    tempo: None,
                })
                .collect(),
        }
    }

    #[test]
    fn windows_start_at_bars_cover_everything_and_pad_the_end() {
        let w = TokenWindows::new(&[seq(20, &[0, 3, 7, 12, 17])], 8, 6, 0);
        let starts: Vec<TokenId> = (0..w.count()).map(|i| w.get(i).unwrap()[0]).collect();
        // Starts at token 0, then the last bar within 6 tokens: 3 → 7 (≤ 9) → 12 (≤ 13).
        assert_eq!(starts, [1, 4, 8, 13]);
        let last = w.get(w.count() - 1).unwrap();
        assert_eq!(*last, [13, 14, 15, 16, 17, 18, 19, 20, 0]);
        assert_eq!(w.target_tokens(&[3]), 7);
    }

    #[test]
    fn contiguous_windows_predict_every_token_once() {
        let w = TokenWindows::contiguous(&[seq(20, &[0, 3])], 8, 0);
        assert_eq!(w.count(), 3);
        assert_eq!(w.target_tokens(&[0, 1, 2]), 19);
        assert_eq!(*w.get(2).unwrap(), [17, 18, 19, 20, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn short_sequences_give_one_padded_window_or_nothing() {
        let w = TokenWindows::new(&[seq(1, &[]), seq(3, &[])], 4, 4, 0);
        assert_eq!(w.count(), 1);
        assert_eq!(*w.get(0).unwrap(), [1, 2, 3, 0, 0]);
    }
}
