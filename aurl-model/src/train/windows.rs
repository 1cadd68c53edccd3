//! Training windows over token sequences, and batches of them as tensors.

use aurl_core::tokenize::{TokenId, TokenSequence};
use burn::prelude::*;

/// Fixed-length training windows of `len + 1` tokens (inputs and shifted targets), each
/// starting at a bar when the sequence has bars. The last window of a sequence is padded.
#[derive(Debug, Clone, Default)]
pub struct TokenWindows {
    windows: Vec<Vec<TokenId>>,
    len: usize,
    pad: TokenId,
}

impl TokenWindows {
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
            let mut start = 0usize;
            loop {
                let end = (start + len + 1).min(ids.len());
                let mut w = ids[start..end].to_vec();
                w.resize(len + 1, pad);
                windows.push(w);
                if end == ids.len() {
                    break;
                }
                let target = start + stride;
                // The latest bar start in (start, target], else `target` itself.
                let bar = s
                    .bars
                    .iter()
                    .map(|b| b.token_index)
                    .filter(|&i| i > start && i <= target)
                    .max();
                start = bar.unwrap_or(target);
                if start + 1 >= ids.len() {
                    break;
                }
            }
        }
        Self { windows, len, pad }
    }

    /// Number of windows.
    #[must_use]
    pub fn count(&self) -> usize {
        self.windows.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
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

    /// Window `i`.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&[TokenId]> {
        self.windows.get(i).map(Vec::as_slice)
    }

    /// Inputs and targets `[indices.len(), len]` of the windows at `indices`.
    #[must_use]
    pub fn batch(&self, indices: &[usize], device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
        let t = self.len;
        let b = indices.len();
        let mut inputs = Vec::with_capacity(b * t);
        let mut targets = Vec::with_capacity(b * t);
        for &i in indices {
            let w = &self.windows[i];
            inputs.extend(w[..t].iter().map(|&x| i64::from(x)));
            targets.extend(w[1..].iter().map(|&x| i64::from(x)));
        }
        (
            Tensor::from_data(TensorData::new(inputs, [b, t]), device),
            Tensor::from_data(TensorData::new(targets, [b, t]), device),
        )
    }

    /// Real (non-padding) target tokens in the windows at `indices`.
    #[must_use]
    pub fn target_tokens(&self, indices: &[usize]) -> usize {
        indices
            .iter()
            .map(|&i| {
                self.windows[i][1..]
                    .iter()
                    .filter(|&&x| x != self.pad)
                    .count()
            })
            .sum()
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
        assert_eq!(last, [13, 14, 15, 16, 17, 18, 19, 20, 0]);
        assert_eq!(w.target_tokens(&[3]), 7);
    }

    #[test]
    fn short_sequences_give_one_padded_window_or_nothing() {
        let w = TokenWindows::new(&[seq(1, &[]), seq(3, &[])], 4, 4, 0);
        assert_eq!(w.count(), 1);
        assert_eq!(w.get(0).unwrap(), [1, 2, 3, 0, 0]);
    }
}
