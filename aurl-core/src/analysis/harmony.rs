//! Chords over time and progression statistics: a chord per beat or per bar from
//! [`Chord::best_match`], consecutive repeats merged into a progression, chord counts, a
//! chord-transition matrix and the histogram of root motions (key-independent).

use std::collections::HashMap;

use serde::Serialize;

use super::chord::{Chord, ChordMatch};
use super::key::pitch_class_profile;
use crate::metrics::{bars, beats, for_each_span};
use crate::{Note, Score, Tick};

/// How finely chords are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChordStep {
    /// One chord per beat (the time signature's beat unit).
    Beat,
    /// One chord per bar.
    Bar,
}

/// A chord found over one span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChordSpan {
    /// First tick.
    pub start: Tick,
    /// First tick after.
    pub end: Tick,
    /// The chord, its inversion and fit.
    pub found: ChordMatch,
}

/// Chords of a score's pitched notes, one per beat or bar; spans without a recognizable
/// chord (silence, a single pitch class, a cluster) are left out.
#[must_use]
pub fn detect_chords(score: &Score, step: ChordStep) -> Vec<ChordSpan> {
    let mut notes: Vec<Note> = crate::metrics::pitched_notes(score).copied().collect();
    notes.sort_unstable_by_key(|n| n.start);
    let spans: Vec<(Tick, Tick)> = match step {
        ChordStep::Beat => beats(score),
        ChordStep::Bar => bars(score).iter().map(|b| (b.start, b.end)).collect(),
    };
    let mut out = Vec::new();
    for_each_span(&notes, &spans, |i, sounding| {
        let (start, end) = spans[i];
        let profile = pitch_class_profile(sounding, start, end);
        let bass = sounding.iter().map(|n| n.pitch.get()).min();
        if let Some(found) = Chord::best_match(&profile, bass) {
            out.push(ChordSpan { start, end, found });
        }
    });
    out
}

/// A chord progression with consecutive repeats merged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ChordProgression {
    /// The chords in order.
    pub chords: Vec<Chord>,
}

impl ChordProgression {
    /// The progression of some chord spans (a chord held over several spans counts once).
    #[must_use]
    pub fn from_spans(spans: &[ChordSpan]) -> Self {
        let mut chords: Vec<Chord> = spans.iter().map(|s| s.found.chord).collect();
        chords.dedup();
        Self { chords }
    }

    /// How often each chord occurs, most frequent first (ties by chord order).
    #[must_use]
    pub fn counts(&self) -> Vec<(Chord, usize)> {
        let mut map: HashMap<Chord, usize> = HashMap::new();
        for &c in &self.chords {
            *map.entry(c).or_default() += 1;
        }
        let mut v: Vec<_> = map.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// The distinct chords (sorted) and the row-normalized transition matrix between them:
    /// `matrix[i][j]` is the share of changes from chord `i` that go to chord `j`.
    #[must_use]
    pub fn transition_matrix(&self) -> (Vec<Chord>, Vec<Vec<f64>>) {
        let mut chords: Vec<Chord> = self.chords.clone();
        chords.sort();
        chords.dedup();
        let index: HashMap<Chord, usize> =
            chords.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        let mut m = vec![vec![0.0; chords.len()]; chords.len()];
        for w in self.chords.windows(2) {
            m[index[&w[0]]][index[&w[1]]] += 1.0;
        }
        for row in &mut m {
            let total: f64 = row.iter().sum();
            if total > 0.0 {
                row.iter_mut().for_each(|x| *x /= total);
            }
        }
        (chords, m)
    }

    /// Histogram of root motions in semitones upward (0–11): 5 is a fall of a fifth
    /// (V → I), 7 a rise of a fifth. Quality changes over one root count as 0.
    #[must_use]
    pub fn root_motions(&self) -> [u32; 12] {
        let mut h = [0u32; 12];
        for w in self.chords.windows(2) {
            h[usize::from((w[1].root + 12 - w[0].root) % 12)] += 1;
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::ChordQuality;
    use crate::{Pitch, Track, Velocity};

    /// tpq 4, 4/4; each bar holds a block chord (whole notes).
    fn chords_score(bars_of: &[&[u8]]) -> Score {
        let mut t = Track::new("p");
        for (b, pitches) in bars_of.iter().enumerate() {
            for &p in *pitches {
                t.notes.push(Note::new(
                    Pitch::new(p).unwrap(),
                    Velocity::new(80).unwrap(),
                    16 * b as u64,
                    16,
                ));
            }
        }
        let mut s = Score::new(4);
        s.tracks.push(t);
        s
    }

    #[test]
    fn a_ii_v_i_reads_with_inversions_and_root_motion() {
        // Dm7 (D F A C), G7 over B (B D F G), Cmaj (C E G), Cmaj again.
        let s = chords_score(&[
            &[50, 53, 57, 60],
            &[47, 50, 53, 55],
            &[48, 52, 55],
            &[48, 52, 55],
        ]);
        let spans = detect_chords(&s, ChordStep::Bar);
        let names: Vec<String> = spans.iter().map(|s| s.found.chord.to_string()).collect();
        assert_eq!(names, ["D:m7", "G:7", "C:maj", "C:maj"]);
        assert_eq!(spans[1].found.inversion, Some(1), "B in the bass of G7");
        assert_eq!(detect_chords(&s, ChordStep::Beat).len(), 16);
        let p = ChordProgression::from_spans(&spans);
        assert_eq!(p.chords.len(), 3, "the repeated C merges");
        // D → G: +5; G → C: +5.
        let mut motions = [0; 12];
        motions[5] = 2;
        assert_eq!(p.root_motions(), motions);
        let (chords, m) = p.transition_matrix();
        let c = Chord {
            root: 0,
            quality: ChordQuality::Major,
        };
        let g7 = Chord {
            root: 7,
            quality: ChordQuality::Dominant7,
        };
        let (ic, ig) = (
            chords.iter().position(|&x| x == c).unwrap(),
            chords.iter().position(|&x| x == g7).unwrap(),
        );
        assert_eq!(m[ig][ic], 1.0);
        assert_eq!(
            m[ic].iter().sum::<f64>(),
            0.0,
            "nothing follows the last chord"
        );
        assert_eq!(p.counts()[0].1, 1);
    }
}
