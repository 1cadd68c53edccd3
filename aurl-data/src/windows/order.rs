//! The order in which training windows are visited: a fresh seeded permutation per epoch,
//! over the epoch's windows (the same windows every epoch, or new ones per epoch when the
//! data is augmented), with a cursor that checkpoints record.

use std::borrow::Cow;

use aurl_core::rng::SeedRng;
use serde::{Deserialize, Serialize};

use super::TokenWindows;
use crate::Error;

/// Where the data order stands: the epoch, and how many of its windows have been used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DataCursor {
    /// Current epoch (from 0).
    pub epoch: u64,
    /// Windows of the epoch already used.
    pub next: usize,
}

/// The windows of each epoch: fixed, or computed per epoch (e.g. from an augmented corpus;
/// the function must be pure in the epoch so a resumed run sees the same data).
pub enum EpochWindows<'a> {
    /// The same windows every epoch.
    Fixed(&'a TokenWindows),
    /// New windows per epoch.
    PerEpoch(&'a (dyn Fn(u64) -> TokenWindows + Sync)),
}

impl std::fmt::Debug for EpochWindows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(w) => f.debug_tuple("Fixed").field(&w.count()).finish(),
            Self::PerEpoch(_) => f.write_str("PerEpoch(..)"),
        }
    }
}

/// A training loop's view of the data: the current epoch's windows and their permutation
/// (a pure function of the seed and the epoch, so a run resumed from its [`DataCursor`]
/// sees the batches it would have seen).
#[derive(Debug)]
pub struct DataOrder<'a> {
    source: &'a EpochWindows<'a>,
    seed: u64,
    cursor: DataCursor,
    windows: Cow<'a, TokenWindows>,
    order: Vec<usize>,
}

impl<'a> DataOrder<'a> {
    /// Positions the order at `cursor`, loading that epoch's windows.
    ///
    /// # Errors
    /// [`Error::NoWindows`] when that epoch has none.
    pub fn new(source: &'a EpochWindows<'a>, seed: u64, cursor: DataCursor) -> Result<Self, Error> {
        let mut order = Self {
            source,
            seed,
            cursor,
            windows: Cow::Owned(TokenWindows::default()),
            order: Vec::new(),
        };
        order.load(cursor.epoch)?;
        Ok(order)
    }

    fn load(&mut self, epoch: u64) -> Result<(), Error> {
        self.windows = match self.source {
            EpochWindows::Fixed(w) => Cow::Borrowed(*w),
            EpochWindows::PerEpoch(f) => Cow::Owned(f(epoch)),
        };
        let count = self.windows.count();
        if count == 0 {
            return Err(Error::NoWindows { epoch });
        }
        self.order = (0..count).collect();
        SeedRng::derive(self.seed, &[epoch]).shuffle(&mut self.order);
        self.cursor.epoch = epoch;
        Ok(())
    }

    /// The current epoch's windows (their length and padding id are the run's).
    #[must_use]
    pub fn windows(&self) -> &TokenWindows {
        &self.windows
    }

    /// Where the order stands (what a checkpoint records).
    #[must_use]
    pub fn cursor(&self) -> DataCursor {
        self.cursor
    }

    /// Copies the next `batch_size` windows into `rows` (cleared first), moving to the next
    /// epoch whenever one is used up, so a batch may span two epochs — except when the
    /// next epoch's windows are longer or shorter (a curriculum): then the batch ends short.
    ///
    /// # Errors
    /// [`Error::NoWindows`] when the next epoch has none; [`Error::PaddingChanged`] when it
    /// pads with another id.
    pub fn next_batch(&mut self, batch_size: usize, rows: &mut TokenWindows) -> Result<(), Error> {
        if self.cursor.next >= self.order.len() {
            self.load(self.cursor.epoch + 1)?;
            self.cursor.next = 0;
        }
        rows.reset_like(&self.windows);
        for _ in 0..batch_size {
            if self.cursor.next >= self.order.len() {
                self.load(self.cursor.epoch + 1)?;
                self.cursor.next = 0;
                if self.windows.pad() != rows.pad() {
                    return Err(Error::PaddingChanged {
                        epoch: self.cursor.epoch,
                        found: self.windows.pad(),
                        expected: rows.pad(),
                    });
                }
                // A new window length (a curriculum): this batch ends with the last epoch.
                if self.windows.len() != rows.len() {
                    break;
                }
            }
            rows.push_copy(&self.windows, self.order[self.cursor.next]);
            self.cursor.next += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aurl_core::tokenize::{BarStart, TokenSequence};

    use super::*;

    fn sequence() -> Vec<TokenSequence> {
        vec![TokenSequence {
            ids: (0..200).map(|i| 1 + (i % 7) as u16).collect(),
            bars: vec![BarStart {
                token_index: 0,
                time_signature: None,
                tempo: None,
            }],
        }]
    }

    #[test]
    fn a_batch_never_mixes_the_window_lengths_of_a_curriculum() {
        let seqs = sequence();
        // Epoch 0: windows of 16 tokens; later epochs: 32.
        let per_epoch = |e: u64| TokenWindows::new(&seqs, if e == 0 { 16 } else { 32 }, 16, 0);
        let first = per_epoch(0).count();
        let source = EpochWindows::PerEpoch(&per_epoch);
        let mut order = DataOrder::new(&source, 1, DataCursor::default()).unwrap();
        let mut rows = TokenWindows::default();
        let mut seen = Vec::new();
        for _ in 0..6 {
            order.next_batch(5, &mut rows).unwrap();
            seen.push((rows.count(), rows.len()));
        }
        let full = first / 5;
        assert!(seen[..full].iter().all(|&b| b == (5, 16)), "{seen:?}");
        if first % 5 > 0 {
            // The last batch of epoch 0 is short rather than mixed.
            assert_eq!(seen[full], (first % 5, 16));
        }
        assert_eq!(*seen.last().unwrap(), (5, 32));
    }
}
