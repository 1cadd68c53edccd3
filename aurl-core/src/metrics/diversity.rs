//! Token-level diversity: distinct-n ratios (Li et al., 2016) across a set of generated
//! sequences, and the repetition rate within one sequence — the signatures of mode collapse
//! (every piece alike) and of loops (one piece repeating itself).
//!
//! Grammar validity and note pairing come from the shared grammar
//! ([`Grammar::validate`](crate::tokenize::Grammar::validate)), NLL and perplexity from the
//! model crate.

use std::collections::HashSet;

use crate::tokenize::TokenId;

/// Distinct n-grams divided by all n-grams, over every sequence of the set (n-grams do not
/// cross sequence boundaries). 1 means no n-gram repeats anywhere; a collapsed model that
/// writes the same piece again and again tends to 0. `None` when no sequence is `n` long.
///
/// ```
/// use aurl_core::metrics::distinct_n;
/// // Bigrams 1-2, 2-1, 1-2, 2-1 and 3-4: 3 distinct of 5.
/// assert_eq!(distinct_n(&[vec![1u16, 2, 1, 2, 1], vec![3, 4]], 2), Some(0.6));
/// ```
#[must_use]
pub fn distinct_n<S: AsRef<[TokenId]>>(sequences: &[S], n: usize) -> Option<f64> {
    let n = n.max(1);
    let mut seen: HashSet<&[TokenId]> = HashSet::new();
    let mut total = 0usize;
    for s in sequences {
        for gram in s.as_ref().windows(n) {
            total += 1;
            seen.insert(gram);
        }
    }
    (total > 0).then(|| seen.len() as f64 / total as f64)
}

/// Share of a sequence's n-grams that already occurred earlier in it: 0 for a sequence that
/// never repeats an n-gram, close to 1 for a loop. Music repeats by design (a typical
/// real piece scores well above 0 for small `n`), so compare generated and reference values
/// rather than reading this alone. `None` when the sequence is shorter than `n`.
///
/// ```
/// use aurl_core::metrics::repetition_rate;
/// // Trigrams of 1 2 3 1 2 3: 123 231 312 123 → one repeat of four.
/// assert_eq!(repetition_rate(&[1u16, 2, 3, 1, 2, 3], 3), Some(0.25));
/// ```
#[must_use]
pub fn repetition_rate(tokens: &[TokenId], n: usize) -> Option<f64> {
    let n = n.max(1);
    let mut seen: HashSet<&[TokenId]> = HashSet::new();
    let (mut total, mut repeats) = (0usize, 0usize);
    for gram in tokens.windows(n) {
        total += 1;
        repeats += usize::from(!seen.insert(gram));
    }
    (total > 0).then(|| repeats as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_repeats_and_a_permutation_does_not() {
        let looped: Vec<TokenId> = [5, 6, 7, 8].repeat(10);
        // 37 four-grams, 4 distinct → 33 repeats.
        assert!((repetition_rate(&looped, 4).unwrap() - 33.0 / 37.0).abs() < 1e-12);
        assert_eq!(
            distinct_n(std::slice::from_ref(&looped), 4),
            Some(4.0 / 37.0)
        );
        let fresh: Vec<TokenId> = (0..40).collect();
        assert_eq!(repetition_rate(&fresh, 2), Some(0.0));
        assert_eq!(distinct_n(&[fresh.clone(), fresh], 1), Some(0.5));
        assert_eq!(repetition_rate(&[1, 2], 3), None);
        assert_eq!(distinct_n::<Vec<TokenId>>(&[], 2), None);
    }
}
