//! The order in which training windows are visited: a fresh seeded permutation per epoch,
//! over the epoch's windows (the same windows every epoch, or new ones per epoch when the
//! data is augmented), with a cursor that checkpoints record.

use std::borrow::Cow;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::TokenWindows;
use crate::error::ModelError;

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

/// The loop's view of the data: the current epoch's windows and permutation.
pub(crate) struct DataOrder<'a> {
    source: &'a EpochWindows<'a>,
    seed: u64,
    cursor: DataCursor,
    windows: Cow<'a, TokenWindows>,
    order: Vec<usize>,
}

impl<'a> DataOrder<'a> {
    /// Positions the order at `cursor`, loading that epoch's windows.
    pub(crate) fn new(
        source: &'a EpochWindows<'a>,
        seed: u64,
        cursor: DataCursor,
    ) -> Result<Self, ModelError> {
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

    fn load(&mut self, epoch: u64) -> Result<(), ModelError> {
        self.windows = match self.source {
            EpochWindows::Fixed(w) => Cow::Borrowed(*w),
            EpochWindows::PerEpoch(f) => Cow::Owned(f(epoch)),
        };
        let count = self.windows.count();
        if count == 0 {
            return Err(ModelError::Training(format!(
                "no training windows in epoch {epoch}"
            )));
        }
        self.order = (0..count).collect();
        let mut rng = StdRng::seed_from_u64(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.order.shuffle(&mut rng);
        self.cursor.epoch = epoch;
        Ok(())
    }

    /// The current epoch's windows (their length and padding id are the run's).
    pub(crate) fn windows(&self) -> &TokenWindows {
        &self.windows
    }

    /// Where the order stands (what a checkpoint records).
    pub(crate) fn cursor(&self) -> DataCursor {
        self.cursor
    }

    /// Copies the next `batch_size` windows into `rows` (cleared first), moving to the next
    /// epoch whenever one is used up, so a batch may span two epochs.
    pub(crate) fn next_batch(
        &mut self,
        batch_size: usize,
        rows: &mut TokenWindows,
    ) -> Result<(), ModelError> {
        rows.reset_like(&self.windows);
        for _ in 0..batch_size {
            if self.cursor.next >= self.order.len() {
                self.load(self.cursor.epoch + 1)?;
                self.cursor.next = 0;
                if self.windows.len() != rows.len() || self.windows.pad() != rows.pad() {
                    return Err(ModelError::Training(format!(
                        "epoch {} has windows of {} tokens, the run {}",
                        self.cursor.epoch,
                        self.windows.len(),
                        rows.len()
                    )));
                }
            }
            rows.push_copy(&self.windows, self.order[self.cursor.next]);
            self.cursor.next += 1;
        }
        Ok(())
    }
}
