//! An interpolated Witten–Bell n-gram model over token ids (Witten & Bell, 1991; as in
//! SRILM's `-wbdiscount -interpolate`): the baseline every neural model should beat.
//!
//! `P(w | h) = (c(h, w) + T(h) · P(w | h')) / (c(h) + T(h))`, where `c` counts, `T(h)` is the
//! number of distinct tokens seen after `h`, and `h'` drops the oldest token of `h`; an
//! unseen history falls back to `h'`, and the recursion ends at a unigram interpolated with
//! the uniform distribution over the vocabulary, so every id has a probability above 0.

use std::collections::HashMap;

use crate::tokenize::TokenId;

/// Largest order: histories of up to 4 tokens pack into a `u64` key (each order has its own
/// table, so the length needs no bits).
const MAX_ORDER: usize = 5;

/// Counts of one order: per history, its total and distinct followers; per (history, token),
/// its count.
#[derive(Debug, Default, Clone)]
struct Order {
    histories: HashMap<u64, (u32, u32)>,
    grams: HashMap<(u64, TokenId), u32>,
}

/// A trained n-gram model.
///
/// ```
/// use aurl_core::metrics::NgramModel;
/// let train = vec![vec![1u16, 2, 3, 1, 2, 3, 1, 2, 3]];
/// let model = NgramModel::train(&train, 3, 10);
/// let score = model.score(&[vec![1, 2, 3, 1, 2, 3]]);
/// assert!(score.nll_per_token() < 0.5, "a repeated pattern is nearly certain");
/// ```
#[derive(Debug, Clone)]
pub struct NgramModel {
    order: usize,
    vocab_size: usize,
    orders: Vec<Order>,
}

/// The summed negative log-likelihood of some sequences.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NgramScore {
    /// Total NLL in nats.
    pub nll: f64,
    /// Tokens predicted (every token but each sequence's first).
    pub tokens: usize,
}

impl NgramScore {
    /// Mean NLL per predicted token, in nats (0 when nothing was predicted).
    #[must_use]
    pub fn nll_per_token(&self) -> f64 {
        if self.tokens == 0 {
            0.0
        } else {
            self.nll / self.tokens as f64
        }
    }
}

fn key(history: &[TokenId]) -> u64 {
    let mut k = 0u64;
    for &t in history {
        k = (k << 16) | u64::from(t);
    }
    k
}

impl NgramModel {
    /// Counts every n-gram of order 1..=`order` (clamped to 1..=5) in `sequences`; ids are
    /// below `vocab_size`.
    #[must_use]
    pub fn train(sequences: &[Vec<TokenId>], order: usize, vocab_size: usize) -> Self {
        let order = order.clamp(1, MAX_ORDER);
        let mut orders = vec![Order::default(); order];
        for s in sequences {
            for (i, &w) in s.iter().enumerate() {
                for (n, counts) in orders.iter_mut().enumerate() {
                    // Order n + 1: a history of n tokens.
                    if i < n {
                        break;
                    }
                    let h = key(&s[i - n..i]);
                    let c = counts.grams.entry((h, w)).or_insert(0);
                    *c += 1;
                    let entry = counts.histories.entry(h).or_insert((0, 0));
                    entry.0 += 1;
                    if *c == 1 {
                        entry.1 += 1;
                    }
                }
            }
        }
        Self {
            order,
            vocab_size: vocab_size.max(1),
            orders,
        }
    }

    /// `P(w | history)`, using at most the last `order − 1` tokens of `history`.
    #[must_use]
    pub fn probability(&self, history: &[TokenId], w: TokenId) -> f64 {
        let n = history.len().min(self.order - 1);
        let mut p = 1.0 / self.vocab_size as f64;
        for k in 0..=n {
            let h = key(&history[history.len() - k..]);
            let counts = &self.orders[k];
            if let Some(&(total, distinct)) = counts.histories.get(&h) {
                let c = counts.grams.get(&(h, w)).copied().unwrap_or(0);
                p = (f64::from(c) + f64::from(distinct) * p) / f64::from(total + distinct);
            }
        }
        p
    }

    /// The NLL of every token but each sequence's first, given the tokens before it.
    #[must_use]
    pub fn score(&self, sequences: &[Vec<TokenId>]) -> NgramScore {
        let mut out = NgramScore::default();
        for s in sequences {
            for i in 1..s.len() {
                out.nll -= self.probability(&s[..i], s[i]).ln();
                out.tokens += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_sum_to_one_for_seen_and_unseen_histories() {
        let m = NgramModel::train(&[vec![1, 2, 3, 2, 1, 2, 4], vec![3, 3, 1]], 3, 6);
        for h in [vec![], vec![1], vec![1, 2], vec![5, 5], vec![2, 3]] {
            let total: f64 = (0..6).map(|w| m.probability(&h, w)).sum();
            assert!((total - 1.0).abs() < 1e-12, "{h:?}: {total}");
        }
    }

    #[test]
    fn matches_the_witten_bell_formula_by_hand() {
        // Unigram over V = 4 from [1, 1, 2]: c(1) = 2, N = 3, T = 2:
        // P(1) = (2 + 2 · 1/4) / (3 + 2) = 0.5.
        let m = NgramModel::train(&[vec![1, 1, 2]], 2, 4);
        assert!((m.probability(&[], 1) - 0.5).abs() < 1e-12);
        // After 1: followers {1: 1, 2: 1}, c(h) = 2, T = 2; P(2 | 1) = (1 + 2 · P(2)) / 4 with
        // P(2) = (1 + 2/4) / 5 = 0.3 → 0.4.
        assert!((m.probability(&[1], 2) - 0.4).abs() < 1e-12);
        // An unseen history backs off to the unigram.
        assert!((m.probability(&[3], 2) - 0.3).abs() < 1e-12);
    }
}
