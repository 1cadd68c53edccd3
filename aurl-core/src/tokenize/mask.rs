//! A bitset over a vocabulary, combined with word-level operations.

/// The set of token ids allowed next, one bit per id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMask {
    words: Vec<u64>,
    len: usize,
}

impl TokenMask {
    /// An empty mask for a vocabulary of `len` tokens.
    #[must_use]
    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Number of ids covered (the vocabulary size).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mask covers no ids at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `id` is in the set.
    #[must_use]
    pub fn contains(&self, id: usize) -> bool {
        id < self.len && self.words[id / 64] >> (id % 64) & 1 == 1
    }

    /// Adds `id`.
    pub fn insert(&mut self, id: usize) {
        if id < self.len {
            self.words[id / 64] |= 1 << (id % 64);
        }
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Replaces the contents with `other` (same vocabulary size).
    pub fn copy_from(&mut self, other: &TokenMask) {
        self.words.copy_from_slice(&other.words);
    }

    /// Adds every id in `start..end` using whole-word writes.
    pub fn insert_range(&mut self, start: usize, end: usize) {
        let end = end.min(self.len);
        let mut i = start;
        while i < end {
            let bit = i % 64;
            let take = (64 - bit).min(end - i);
            let bits = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << bit
            };
            self.words[i / 64] |= bits;
            i += take;
        }
    }

    /// Number of allowed ids.
    #[must_use]
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The allowed ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + b)
            })
        })
    }

    /// Dense booleans, one per id.
    #[must_use]
    pub fn to_bools(&self) -> Vec<bool> {
        (0..self.len).map(|i| self.contains(i)).collect()
    }

    /// Writes an additive logits mask: `0.0` where allowed, `f32::NEG_INFINITY` elsewhere
    /// (`row.len()` must be the vocabulary size).
    pub fn write_additive(&self, row: &mut [f32]) {
        for (i, x) in row.iter_mut().enumerate().take(self.len) {
            *x = if self.contains(i) {
                0.0
            } else {
                f32::NEG_INFINITY
            };
        }
    }

    /// The raw 64-bit words (bit `i % 64` of word `i / 64` is id `i`).
    #[must_use]
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Bitwise OR with `other`.
    pub fn union_with(&mut self, other: &TokenMask) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cross_word_boundaries() {
        let mut m = TokenMask::new(200);
        m.insert_range(60, 131);
        assert_eq!(m.count(), 71);
        assert!(!m.contains(59) && m.contains(60) && m.contains(130) && !m.contains(131));
        m.insert_range(190, 500);
        assert_eq!(m.count(), 81, "clipped to the vocabulary");
        assert_eq!(m.iter().next(), Some(60));
        let mut row = vec![1.0; 200];
        m.write_additive(&mut row);
        assert_eq!((row[60], row[0]), (0.0, f32::NEG_INFINITY));
    }
}
