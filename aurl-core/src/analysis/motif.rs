//! Motif detection: interval patterns that recur in a melody line, transposition-invariant
//! (a motif restated a third higher is the same motif).

use std::collections::HashMap;

use serde::Serialize;

use super::melody::intervals;
use crate::Note;

/// Limits of the motif search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MotifConfig {
    /// Shortest motif, in notes.
    pub min_notes: usize,
    /// Longest motif, in notes.
    pub max_notes: usize,
    /// Non-overlapping occurrences needed.
    pub min_occurrences: usize,
}

impl Default for MotifConfig {
    /// 4 to 12 notes, at least twice.
    fn default() -> Self {
        Self {
            min_notes: 4,
            max_notes: 12,
            min_occurrences: 2,
        }
    }
}

/// A recurring pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Motif {
    /// The pattern as semitone steps (one fewer than its notes).
    pub intervals: Vec<i8>,
    /// Index in the line of each occurrence's first note, non-overlapping, increasing.
    pub occurrences: Vec<usize>,
}

impl Motif {
    /// Length in notes.
    #[must_use]
    pub fn notes(&self) -> usize {
        self.intervals.len() + 1
    }
}

/// The recurring motifs of a monophonic line (e.g. [`melody`](super::melody)), longest
/// patterns first: a shorter pattern is reported only if it occurs somewhere outside the
/// occurrences of the longer ones already found. Repeated single pitches are not motifs.
/// Sorted by coverage (notes × occurrences), largest first.
///
/// ```
/// use aurl_core::{Note, Pitch, Velocity};
/// use aurl_core::analysis::{MotifConfig, find_motifs};
/// // C D E C, then the same figure on G, then filler.
/// let pitches = [60, 62, 64, 60, 67, 69, 71, 67, 50, 55];
/// let line: Vec<Note> = pitches.iter().enumerate()
///     .map(|(i, &p)| Note::new(Pitch::new(p).unwrap(), Velocity::new(80).unwrap(), i as u64, 1))
///     .collect();
/// let motifs = find_motifs(&line, MotifConfig::default());
/// assert_eq!(motifs[0].intervals, [2, 2, -4]);
/// assert_eq!(motifs[0].occurrences, [0, 4]);
/// ```
#[must_use]
pub fn find_motifs(line: &[Note], config: MotifConfig) -> Vec<Motif> {
    let iv = intervals(line);
    let min_len = config.min_notes.max(2) - 1;
    let max_len = config.max_notes.max(config.min_notes).max(2) - 1;
    let mut found: Vec<Motif> = Vec::new();
    // Interval positions already inside a reported motif, per reported length.
    let mut covered: Vec<(usize, usize)> = Vec::new();
    for len in (min_len..=max_len.min(iv.len())).rev() {
        let mut at: HashMap<&[i8], Vec<usize>> = HashMap::new();
        for (i, w) in iv.windows(len).enumerate() {
            if w.iter().any(|&x| x != 0) {
                at.entry(w).or_default().push(i);
            }
        }
        let mut batch: Vec<Motif> = Vec::new();
        for (pattern, positions) in at {
            let mut kept: Vec<usize> = Vec::new();
            for p in positions {
                if kept.last().is_none_or(|&last| p >= last + len) {
                    kept.push(p);
                }
            }
            if kept.len() < config.min_occurrences.max(2) {
                continue;
            }
            let inside = |p: usize| covered.iter().any(|&(s, l)| p >= s && p + len <= s + l);
            if kept.iter().all(|&p| inside(p)) {
                continue;
            }
            batch.push(Motif {
                intervals: pattern.to_vec(),
                occurrences: kept,
            });
        }
        for m in &batch {
            covered.extend(m.occurrences.iter().map(|&p| (p, len)));
        }
        found.extend(batch);
    }
    found.sort_by(|a, b| {
        (b.notes() * b.occurrences.len())
            .cmp(&(a.notes() * a.occurrences.len()))
            .then(a.occurrences.cmp(&b.occurrences))
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pitch, Velocity};

    fn line(pitches: &[u8]) -> Vec<Note> {
        pitches
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                Note::new(
                    Pitch::new(p).unwrap(),
                    Velocity::new(80).unwrap(),
                    i as u64,
                    1,
                )
            })
            .collect()
    }

    #[test]
    fn a_sequence_of_three_statements_is_one_motif_not_its_parts() {
        // The figure +2 +2 −4 +7 stated three times at different pitches, with links.
        let p = [
            60, 62, 64, 60, 67, 40, 65, 67, 69, 65, 72, 40, 70, 72, 74, 70, 77,
        ];
        let motifs = find_motifs(&line(&p), MotifConfig::default());
        assert_eq!(motifs[0].intervals, [2, 2, -4, 7]);
        assert_eq!(motifs[0].occurrences, [0, 6, 12]);
        assert!(
            motifs.iter().all(|m| m.intervals != [2, 2, -4]),
            "sub-patterns inside the motif are not reported again"
        );
        assert!(
            find_motifs(
                &line(&[60, 60, 60, 60, 60, 60, 60, 60]),
                MotifConfig::default()
            )
            .is_empty()
        );
    }
}
