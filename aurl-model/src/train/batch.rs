//! Batches of training windows as tensors: the one place where `aurl-data`'s windows meet
//! Burn.

use aurl_data::windows::TokenWindows;
use burn::prelude::*;

/// Tensors of [`TokenWindows`]: import this trait to call `windows.batch(..)`.
///
/// ```
/// use aurl_core::tokenize::TokenSequence;
/// use aurl_model::train::{TokenWindows, WindowTensors};
/// let device = burn::prelude::Device::default();
/// let pieces = vec![TokenSequence { ids: (1..=40).collect(), bars: vec![] }];
/// let windows = TokenWindows::new(&pieces, 16, 8, 0);
/// let (inputs, targets) = windows.batch(&[0, 2], &device);
/// assert_eq!(inputs.dims(), [2, 16]);
/// assert_eq!(targets.dims(), [2, 16]);
/// ```
pub trait WindowTensors {
    /// Inputs and targets `[indices.len(), len]` of the windows at `indices` (see
    /// [`TokenWindows::inputs_and_targets`]).
    ///
    /// # Panics
    /// If an index is out of range.
    fn batch(&self, indices: &[usize], device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>);
}

impl WindowTensors for TokenWindows {
    fn batch(&self, indices: &[usize], device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
        let shape = [indices.len(), self.len()];
        let (inputs, targets) = self.inputs_and_targets(indices);
        (
            Tensor::from_data(TensorData::new(inputs, shape), device),
            Tensor::from_data(TensorData::new(targets, shape), device),
        )
    }
}
