//! Structure from bar-level similarity: a self-similarity matrix of bars (Foote, 1999),
//! phrase boundaries from its novelty curve, and a form label such as `AABA` from comparing
//! phrases.

use std::collections::HashSet;

use serde::Serialize;

use super::key::pitch_class_profile;
use crate::metrics::{Bar, bars, for_each_span};
use crate::{Note, Score};

/// What a bar is compared by: its onsets as (grid position, pitch) pairs on a sixteenth
/// grid, and its duration-weighted pitch-class profile (unit length).
struct BarFeatures {
    onsets: HashSet<(u32, u8)>,
    profile: [f64; 12],
}

fn features(notes: &[Note], bar: &Bar, ticks_per_quarter: u16) -> BarFeatures {
    let tpq = u64::from(ticks_per_quarter.max(1));
    let onsets = notes
        .iter()
        .filter(|n| n.start >= bar.start && n.start < bar.end)
        .map(|n| (((n.start - bar.start) * 4 / tpq) as u32, n.pitch.get()))
        .collect();
    let mut profile = pitch_class_profile(notes, bar.start, bar.end);
    let norm = profile.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        profile.iter_mut().for_each(|x| *x /= norm);
    }
    BarFeatures { onsets, profile }
}

/// Similarity of two bars in 0…1: the mean of the Jaccard index of their onset sets
/// (melody and rhythm) and the cosine of their pitch-class profiles (harmony). Two silent
/// bars are identical.
fn similarity(a: &BarFeatures, b: &BarFeatures) -> f64 {
    let union = a.onsets.union(&b.onsets).count();
    let jaccard = if union == 0 {
        1.0
    } else {
        a.onsets.intersection(&b.onsets).count() as f64 / union as f64
    };
    let (sa, sb) = (
        a.profile.iter().any(|&x| x > 0.0),
        b.profile.iter().any(|&x| x > 0.0),
    );
    let cosine = match (sa, sb) {
        (false, false) => 1.0,
        (true, true) => a.profile.iter().zip(&b.profile).map(|(x, y)| x * y).sum(),
        _ => 0.0,
    };
    0.5 * (jaccard + cosine)
}

/// The bar-by-bar self-similarity matrix of a score's pitched notes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfSimilarity {
    /// `matrix[i][j]`: similarity of bars `i` and `j` (symmetric, 1 on the diagonal).
    pub matrix: Vec<Vec<f64>>,
}

impl SelfSimilarity {
    /// The matrix of `score` (cost grows with the square of its bars).
    #[must_use]
    pub fn of(score: &Score) -> Self {
        Self::of_first_bars(score, usize::MAX)
    }

    /// The matrix of the first `max_bars` bars of `score`.
    #[must_use]
    pub fn of_first_bars(score: &Score, max_bars: usize) -> Self {
        let mut notes: Vec<Note> = crate::metrics::pitched_notes(score).copied().collect();
        notes.sort_unstable_by_key(|n| n.start);
        let bars: Vec<Bar> = bars(score).into_iter().take(max_bars).collect();
        let spans: Vec<_> = bars.iter().map(|b| (b.start, b.end)).collect();
        let mut f: Vec<BarFeatures> = Vec::with_capacity(bars.len());
        for_each_span(&notes, &spans, |i, sounding| {
            f.push(features(sounding, &bars[i], score.ticks_per_quarter));
        });
        let n = f.len();
        let mut matrix = vec![vec![1.0; n]; n];
        for i in 0..n {
            for j in i + 1..n {
                let s = similarity(&f[i], &f[j]);
                matrix[i][j] = s;
                matrix[j][i] = s;
            }
        }
        Self { matrix }
    }

    /// Number of bars.
    #[must_use]
    pub fn bars(&self) -> usize {
        self.matrix.len()
    }

    /// Mean similarity between distinct bars: how repetitive the piece is (`None` with
    /// fewer than two bars).
    #[must_use]
    pub fn mean_off_diagonal(&self) -> Option<f64> {
        let n = self.bars();
        (n >= 2).then(|| {
            let total: f64 = (0..n)
                .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
                .map(|(i, j)| self.matrix[i][j])
                .sum();
            total / (n * (n - 1)) as f64
        })
    }

    /// Foote's novelty per bar boundary: correlation of a checkerboard kernel of
    /// `half_width` bars centred at each bar start (index 0 is the piece start, 0).
    #[must_use]
    pub fn novelty(&self, half_width: usize) -> Vec<f64> {
        let n = self.bars();
        let w = half_width.max(1) as isize;
        (0..n)
            .map(|c| {
                let c = c as isize;
                let (mut sum, mut count) = (0.0, 0usize);
                for i in -w..w {
                    for j in -w..w {
                        let (a, b) = (c + i, c + j);
                        if a < 0 || b < 0 || a >= n as isize || b >= n as isize {
                            continue;
                        }
                        // Same side of the boundary: +1; across it: −1.
                        let sign = if (i < 0) == (j < 0) { 1.0 } else { -1.0 };
                        sum += sign * self.matrix[a as usize][b as usize];
                        count += 1;
                    }
                }
                if c == 0 || count == 0 {
                    0.0
                } else {
                    sum / count as f64
                }
            })
            .collect()
    }

    /// Phrase boundaries: bars where the novelty is a local maximum (over ±`half_width`)
    /// and above `threshold` (0.1 is a reasonable start). Always starts with bar 0.
    #[must_use]
    pub fn phrase_starts(&self, half_width: usize, threshold: f64) -> Vec<usize> {
        let nov = self.novelty(half_width);
        let w = half_width.max(1);
        let mut starts = vec![0];
        for c in 1..nov.len() {
            let lo = c.saturating_sub(w);
            let hi = (c + w).min(nov.len() - 1);
            let peak = (lo..=hi).all(|k| nov[k] < nov[c] || (nov[k] == nov[c] && k >= c));
            if peak && nov[c] > threshold {
                starts.push(c);
            }
        }
        starts
    }
}

/// One phrase and its form letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Phrase {
    /// First bar.
    pub first_bar: usize,
    /// Number of bars.
    pub bars: usize,
    /// Form label (`A`, `B`, …; after `Z`, `A2`, `B2`, …).
    pub label: String,
}

/// The form of a piece: its phrases with letters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Form {
    /// Phrases in order.
    pub phrases: Vec<Phrase>,
}

impl Form {
    /// The labels joined, e.g. `AABA`.
    #[must_use]
    pub fn label(&self) -> String {
        self.phrases.iter().map(|p| p.label.as_str()).collect()
    }

    /// Labels phrases starting at `starts` (sorted bar indices, the first 0): each phrase
    /// takes the letter of the most similar earlier phrase if their mean bar-by-bar
    /// similarity reaches `threshold` (0.75 suits exact and lightly varied repeats), else
    /// a new letter.
    #[must_use]
    pub fn from_phrase_starts(ssm: &SelfSimilarity, starts: &[usize], threshold: f64) -> Form {
        let n = ssm.bars();
        let spans: Vec<(usize, usize)> = starts
            .iter()
            .enumerate()
            .filter(|(_, s)| **s < n)
            .map(|(i, &s)| (s, starts.get(i + 1).copied().unwrap_or(n).min(n) - s))
            .filter(|s| s.1 > 0)
            .collect();
        let mut phrases: Vec<Phrase> = Vec::new();
        let mut letters = 0usize;
        for &(first, len) in &spans {
            let best = phrases
                .iter()
                .map(|p| {
                    let k = p.bars.min(len);
                    let sim = (0..k)
                        .map(|t| ssm.matrix[p.first_bar + t][first + t])
                        .sum::<f64>()
                        / p.bars.max(len) as f64;
                    (sim, p)
                })
                .filter(|(sim, _)| *sim >= threshold)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let label = match best {
                Some((_, p)) => p.label.clone(),
                None => {
                    letters += 1;
                    letter(letters - 1)
                }
            };
            phrases.push(Phrase {
                first_bar: first,
                bars: len,
                label,
            });
        }
        Form { phrases }
    }

    /// The form with phrases of a fixed length (4 or 8 bars suit most songs).
    #[must_use]
    pub fn with_phrase_bars(score: &Score, phrase_bars: usize, threshold: f64) -> Form {
        let ssm = SelfSimilarity::of(score);
        let starts: Vec<usize> = (0..ssm.bars()).step_by(phrase_bars.max(1)).collect();
        Self::from_phrase_starts(&ssm, &starts, threshold)
    }
}

fn letter(i: usize) -> String {
    let c = char::from(b'A' + (i % 26) as u8);
    if i < 26 {
        c.to_string()
    } else {
        format!("{c}{}", i / 26 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pitch, Track, Velocity};

    /// tpq 4, 4/4: each bar is four quarter notes.
    fn piece(bars_of: &[[u8; 4]]) -> Score {
        let mut t = Track::new("m");
        for (b, bar) in bars_of.iter().enumerate() {
            for (i, &p) in bar.iter().enumerate() {
                t.notes.push(Note::new(
                    Pitch::new(p).unwrap(),
                    Velocity::new(80).unwrap(),
                    16 * b as u64 + 4 * i as u64,
                    4,
                ));
            }
        }
        let mut s = Score::new(4);
        s.tracks.push(t);
        s
    }

    const A: [[u8; 4]; 4] = [
        [60, 62, 64, 65],
        [67, 65, 64, 62],
        [60, 64, 67, 72],
        [71, 67, 62, 60],
    ];
    const B: [[u8; 4]; 4] = [
        [57, 61, 64, 69],
        [68, 66, 63, 61],
        [58, 62, 65, 70],
        [66, 63, 59, 56],
    ];

    #[test]
    fn aaba_is_labelled_aaba() {
        let bars: Vec<[u8; 4]> = [A, A, B, A].concat();
        let form = Form::with_phrase_bars(&piece(&bars), 4, 0.75);
        assert_eq!(form.label(), "AABA");
        assert_eq!(form.phrases[2].first_bar, 8);
        let ssm = SelfSimilarity::of(&piece(&bars));
        assert_eq!(ssm.matrix[0][4], 1.0, "a literal repeat");
        // Bar 0 (C D E F) vs its B counterpart (A C# E A): onsets share E4 at position 8
        // of 7 distinct → Jaccard 1/7; profiles (C D E F, 1/2 each) · (A 2/√6, C# 1/√6,
        // E 1/√6) = 1/(2√6). Similarity = (1/7 + 1/(2√6)) / 2.
        let expected = 0.5 * (1.0 / 7.0 + 0.5 / 6f64.sqrt());
        assert!((ssm.matrix[0][8] - expected).abs() < 1e-12);
    }

    #[test]
    fn novelty_finds_section_changes() {
        // Homogeneous sections: 4 × bar x, 4 × bar y, 4 × bar x.
        let (x, y) = ([60, 64, 67, 64], [62, 65, 69, 65]);
        let bars: Vec<[u8; 4]> = [vec![x; 4], vec![y; 4], vec![x; 4]].concat();
        let ssm = SelfSimilarity::of(&piece(&bars));
        assert_eq!(ssm.phrase_starts(2, 0.1), [0, 4, 8]);
        let form = Form::from_phrase_starts(&ssm, &ssm.phrase_starts(2, 0.1), 0.75);
        assert_eq!(form.label(), "ABA");
        assert!(ssm.mean_off_diagonal().unwrap() < 1.0);
        assert_eq!(letter(27), "B2");
    }
}
