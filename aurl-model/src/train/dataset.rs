//! Training windows through Burn's data API: a [`Dataset`] of windows and a [`Batcher`]
//! that makes `{ inputs, targets, padding mask }` tensors, for users who drive training with
//! Burn's `DataLoaderBuilder` (worker threads, shuffling) or their own loop.
//!
//! ```
//! use std::sync::Arc;
//! use aurl_model::train::{TokenWindows, WindowBatcher, WindowDataset};
//! use aurl_core::tokenize::TokenSequence;
//! use burn::data::dataloader::DataLoaderBuilder;
//! use burn::prelude::*;
//! let sequence = TokenSequence { ids: (1..=40).collect(), bars: vec![] };
//! let windows = TokenWindows::new(&[sequence], 16, 16, 0);
//! let loader = DataLoaderBuilder::new(WindowBatcher::new(0))
//!     .batch_size(2)
//!     .shuffle(7)
//!     .set_device(Device::flex())
//!     .build(WindowDataset::new(windows));
//! let batch = loader.iter().next().expect("two windows")?; // loader items are Results
//! assert_eq!(batch.inputs.dims(), [2, 16]);
//! # Ok::<(), burn::data::dataset::DatasetError>(())
//! ```

use aurl_core::tokenize::TokenId;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::prelude::*;

use super::TokenWindows;

/// The windows of a [`TokenWindows`] as a Burn [`Dataset`]: item `i` is window `i`
/// (`len + 1` ids, padded at the end).
#[derive(Debug, Clone)]
pub struct WindowDataset {
    windows: TokenWindows,
}

impl WindowDataset {
    /// Wraps `windows`.
    #[must_use]
    pub fn new(windows: TokenWindows) -> Self {
        Self { windows }
    }

    /// The windows back.
    #[must_use]
    pub fn into_inner(self) -> TokenWindows {
        self.windows
    }
}

impl Dataset<Vec<TokenId>> for WindowDataset {
    /// Window `index`; an index past the end is an error, not a panic.
    fn get(&self, index: usize) -> Result<Vec<TokenId>, DatasetError> {
        self.windows
            .get(index)
            .map(std::borrow::Cow::into_owned)
            .ok_or_else(|| {
                DatasetError::new(std::io::Error::other(format!(
                    "window {index} requested, the dataset has {}",
                    self.windows.count()
                )))
            })
    }

    fn len(&self) -> usize {
        self.windows.count()
    }
}

/// A batch of windows: inputs and targets `[batch, len]` (targets are the inputs shifted by
/// one) and the padding mask `[batch, len]` (`true` where the input is padding: the loss
/// ignores those targets and attention ignores those keys).
#[derive(Debug, Clone)]
pub struct WindowBatch {
    /// Token ids fed to the model.
    pub inputs: Tensor<2, Int>,
    /// The ids to predict.
    pub targets: Tensor<2, Int>,
    /// Padding positions of `inputs`.
    pub padding_mask: Tensor<2, Bool>,
}

/// Makes [`WindowBatch`]es; windows of different lengths are padded to the longest.
#[derive(Debug, Clone, Copy)]
pub struct WindowBatcher {
    pad: TokenId,
}

impl WindowBatcher {
    /// A batcher padding with `pad` (the vocabulary's padding id).
    #[must_use]
    pub fn new(pad: TokenId) -> Self {
        Self { pad }
    }
}

impl Batcher<Vec<TokenId>, WindowBatch> for WindowBatcher {
    fn batch(&self, items: Vec<Vec<TokenId>>, device: &Device) -> WindowBatch {
        let t = items
            .iter()
            .map(|w| w.len().saturating_sub(1))
            .max()
            .unwrap_or(0)
            .max(1);
        let b = items.len();
        let mut inputs = Vec::with_capacity(b * t);
        let mut targets = Vec::with_capacity(b * t);
        let mut padding = Vec::with_capacity(b * t);
        for w in &items {
            let at = |i: usize| w.get(i).copied().unwrap_or(self.pad);
            for i in 0..t {
                let input = at(i);
                inputs.push(i64::from(input));
                targets.push(i64::from(at(i + 1)));
                padding.push(input == self.pad);
            }
        }
        WindowBatch {
            inputs: Tensor::from_data(TensorData::new(inputs, [b, t]), device),
            targets: Tensor::from_data(TensorData::new(targets, [b, t]), device),
            padding_mask: Tensor::from_data(TensorData::new(padding, [b, t]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use aurl_core::tokenize::TokenSequence;

    use super::*;

    #[test]
    fn batches_shift_targets_and_mark_padding() {
        let s = TokenSequence {
            ids: vec![5, 6, 7, 8, 9],
            bars: vec![],
        };
        let windows = TokenWindows::new(&[s], 3, 3, 0);
        let data = WindowDataset::new(windows);
        assert_eq!(data.len(), 2);
        assert_eq!(data.get(0).unwrap(), vec![5, 6, 7, 8]);
        assert!(data.get(2).is_err());
        let device = Device::flex();
        let batch = WindowBatcher::new(0).batch(
            vec![data.get(0).unwrap(), data.get(1).unwrap(), vec![4, 3]],
            &device,
        );
        let ints = |t: Tensor<2, Int>| t.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        // Window 1 starts at 3: [8, 9, pad, pad]; the short item [4, 3] is padded too.
        assert_eq!(ints(batch.inputs), vec![5, 6, 7, 8, 9, 0, 4, 3, 0]);
        assert_eq!(ints(batch.targets), vec![6, 7, 8, 9, 0, 0, 3, 0, 0]);
        let mask = batch.padding_mask.into_data().try_to_vec::<bool>().unwrap();
        assert_eq!(
            mask,
            vec![false, false, false, false, false, true, false, false, true]
        );
    }
}
