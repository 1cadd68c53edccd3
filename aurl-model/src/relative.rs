//! Relative-position attention in the Music Transformer style (Shaw et al., "Self-Attention
//! with Relative Position Representations", 2018; Huang et al., "Music Transformer", 2018).
//!
//! Every head of a layer learns one vector `E[d]` per backward distance `d = q − k`; the score
//! of query `q` for key `k` gains `Q[q] · E[q − k]`, so what the model learns about "the note
//! a bar ago" holds wherever the bar is. Distances past `max_distance − 1` share the last
//! vector (Shaw et al.'s clipping).
//!
//! Shaw et al. gather a `[L, L, d_head]` tensor of embeddings, one per pair: O(L²·D) memory.
//! Huang et al.'s *skewing* computes `Q · Eᵀ` once (`[L, L]` per head, O(L·D) intermediate
//! memory besides the scores themselves) and shifts row `i` left by `L − 1 − i` with a pad,
//! a reshape and a slice: [`skew`]. It generalises to `t` queries that are the last `t` of
//! `n` keys (a KV-cached step), which is what [`RelativePositions::skewed`] uses. Keys in a
//! sliding window's ring buffer are not in position order; [`RelativePositions::gathered`]
//! indexes `Q · Eᵀ` by each pair's distance instead.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;
use burn::tensor::ops::PadMode;

/// One attention layer's learned relative-position embeddings, `[heads, max_distance, d_head]`:
/// row `d` serves keys `d` positions before the query.
///
/// ```
/// use aurl_model::RelativePositions;
/// use burn::prelude::*;
///
/// let device = Device::flex();
/// let relative = RelativePositions::new(2, 4, 16, &device);
/// let queries = Tensor::<4>::ones([1, 2, 5, 4], &device);
/// // Relative logits of 5 queries over the same 5 positions as keys.
/// assert_eq!(relative.skewed(queries, 5).dims(), [1, 2, 5, 5]);
/// ```
#[derive(Module, Debug)]
pub struct RelativePositions {
    embeddings: Param<Tensor<3>>,
    max_distance: usize,
}

impl RelativePositions {
    /// Embeddings for `n_heads` heads of width `d_head` covering distances
    /// `0..max_distance` (at least 1), initialised `N(0, 1/d_head)` like the queries' scale.
    #[must_use]
    pub fn new(n_heads: usize, d_head: usize, max_distance: usize, device: &Device) -> Self {
        let max_distance = max_distance.max(1);
        let std = (d_head.max(1) as f64).sqrt().recip();
        Self {
            embeddings: Initializer::Normal { mean: 0.0, std }
                .init([n_heads, max_distance, d_head], device),
            max_distance,
        }
    }

    /// Distances with their own embedding; farther keys share the last one.
    #[must_use]
    pub fn max_distance(&self) -> usize {
        self.max_distance
    }

    fn row(&self, distance: usize) -> i64 {
        distance.min(self.max_distance - 1) as i64
    }

    /// Relative logits `[b, h, t, n]` for queries `[b, h, t, d_head]` that are the last `t`
    /// of `n` keys at consecutive positions (a training window, or a full-attention cache):
    /// entry `[i, j]` is `Q[i] · E[n − t + i − j]` for every key at or before the query
    /// (entries for later keys are meaningless; the causal mask removes them).
    ///
    /// # Panics
    /// If `t > n`.
    #[must_use]
    pub fn skewed(&self, queries: Tensor<4>, n: usize) -> Tensor<4> {
        let device = queries.device();
        // Column c of Q·Eᵀ stands for distance n − 1 − c.
        let rows: Vec<i64> = (0..n).map(|c| self.row(n - 1 - c)).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &device);
        let embeddings = self.embeddings.val().select(1, rows);
        skew(queries.matmul(embeddings.swap_dims(1, 2).unsqueeze_dim::<4>(0)))
    }

    /// Relative logits `[b, h, t, keys.len()]` for queries `[b, h, t, d_head]` at positions
    /// `first_query..first_query + t` over keys at the given absolute positions, in any
    /// order (a sliding window's ring buffer). Keys after a query get distance 0; the causal
    /// mask removes them.
    #[must_use]
    pub fn gathered(&self, queries: Tensor<4>, first_query: usize, keys: &[usize]) -> Tensor<4> {
        let [b, h, t, _] = queries.dims();
        let device = queries.device();
        let last = first_query + t - 1;
        let nearest = keys.iter().copied().min().unwrap_or(last).min(last);
        let width = (last - nearest + 1).min(self.max_distance);
        let by_distance = queries.matmul(
            self.embeddings
                .val()
                .narrow(1, 0, width)
                .swap_dims(1, 2)
                .unsqueeze_dim::<4>(0),
        );
        let mut index = Vec::with_capacity(t * keys.len());
        for q in first_query..first_query + t {
            index.extend(
                keys.iter()
                    .map(|&k| q.saturating_sub(k).min(width - 1) as i64),
            );
        }
        let index = Tensor::<1, Int>::from_data(TensorData::new(index, [t * keys.len()]), &device)
            .reshape([1, 1, t, keys.len()])
            .expand([b, h, t, keys.len()]);
        by_distance.gather(3, index)
    }
}

/// Huang et al.'s skewing, generalised to `t ≤ n` queries that are the last `t` of `n` keys:
/// from `x[i, c]` (column `c` = distance `n − 1 − c`) to `out[i, j] = x[i, j + t − 1 − i]`,
/// the entry for query `i` and key `j`. Pad one zero column on the left (`[t, n + 1]`),
/// flatten, drop the first `t` entries and read the rest as `[t, n]`: entry `i·n + j` of what
/// remains is entry `t + i·n + j = i·(n + 1) + (j + t − i)` of the padded rows, column
/// `j + t − 1 − i` of `x`. Entries with `j > n − t + i` (later keys) wrap into the next row
/// and must be masked.
pub(crate) fn skew(x: Tensor<4>) -> Tensor<4> {
    let [b, h, t, n] = x.dims();
    x.pad([(1, 0)], PadMode::Constant(0.0))
        .reshape([b, h, t * (n + 1)])
        .slice([0..b, 0..h, t..t + t * n])
        .reshape([b, h, t, n])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Shaw et al.'s direct form: one embedding per (query, key) pair.
    fn naive(rel: &RelativePositions, q: &Tensor<4>, first: usize, keys: &[usize]) -> Vec<f32> {
        let [b, h, t, d] = q.dims();
        let qv = values(q.clone());
        let e = rel
            .embeddings
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let r = rel.max_distance;
        let mut out = Vec::new();
        for bi in 0..b {
            for hi in 0..h {
                for i in 0..t {
                    for &k in keys {
                        let dist = (first + i).saturating_sub(k).min(r - 1);
                        let qo = ((bi * h + hi) * t + i) * d;
                        let eo = (hi * r + dist) * d;
                        out.push((0..d).map(|x| qv[qo + x] * e[eo + x]).sum());
                    }
                }
            }
        }
        out
    }

    fn queries(b: usize, h: usize, t: usize, d: usize) -> Tensor<4> {
        let data: Vec<f32> = (0..b * h * t * d)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        Tensor::<1>::from_data(TensorData::new(data, [b * h * t * d]), &device())
            .reshape([b, h, t, d])
    }

    fn assert_causal_close(fast: &[f32], slow: &[f32], t: usize, first: usize, keys: &[usize]) {
        let n = keys.len();
        for (at, (a, e)) in fast.iter().zip(slow).enumerate() {
            let (i, j) = ((at / n) % t, at % n);
            if keys[j] <= first + i {
                assert!((a - e).abs() < 1e-5, "[{i}, {j}]: {a} vs {e}");
            }
        }
    }

    #[test]
    fn skewing_equals_the_naive_relative_logits() {
        let device = device();
        device.seed(3);
        // Clipped (max distance 4 < 7 positions) and unclipped.
        for max_distance in [4, 16] {
            let rel = RelativePositions::new(2, 3, max_distance, &device);
            // A whole window (t = n), a cached chunk (t < n) and one cached step (t = 1).
            for (t, n) in [(7, 7), (3, 7), (1, 7), (1, 1)] {
                let q = queries(2, 2, t, 3);
                let keys: Vec<usize> = (0..n).collect();
                let first = n - t;
                let fast = values(rel.skewed(q.clone(), n));
                let slow = naive(&rel, &q, first, &keys);
                assert_eq!(fast.len(), slow.len());
                assert_causal_close(&fast, &slow, t, first, &keys);
            }
        }
    }

    #[test]
    fn gathering_equals_the_naive_relative_logits_for_ring_order() {
        let device = device();
        device.seed(4);
        let rel = RelativePositions::new(2, 3, 5, &device);
        // A ring of 4 slots after 10 positions holds 8, 9, 6, 7; then 3 new queries 10..13.
        let keys = [8, 9, 6, 7, 10, 11, 12];
        let q = queries(1, 2, 3, 3);
        let fast = values(rel.gathered(q.clone(), 10, &keys));
        let slow = naive(&rel, &q, 10, &keys);
        assert_causal_close(&fast, &slow, 3, 10, &keys);
    }

    #[test]
    fn skew_shifts_each_row_by_its_distance() {
        // x[i, c] = 10·i + c for t = 2 queries over n = 3 keys: query 0 is key 1, query 1 key 2.
        let x = Tensor::<1>::from_data(
            TensorData::new(vec![0.0f32, 1.0, 2.0, 10.0, 11.0, 12.0], [6]),
            &device(),
        )
        .reshape([1, 1, 2, 3]);
        let out = values(skew(x));
        // out[i, j] = x[i, j + 1 − i]: row 0 = x[0, 1..=2] then garbage; row 1 = x[1, 0..=2].
        assert_eq!(&out[0..2], &[1.0, 2.0]);
        assert_eq!(&out[3..6], &[10.0, 11.0, 12.0]);
    }
}
