//! Pitch metrics in MusPy's set (Dong et al., 2020): range, pitches and pitch classes used,
//! entropies, in-scale rate and scale consistency. Drum tracks are ignored throughout, and
//! every metric is `None` for a score without pitched notes (where MusPy returns NaN or 0).

use crate::{Note, Score};

/// The notes of all non-drum tracks.
pub(crate) fn pitched_notes(score: &Score) -> impl Iterator<Item = &Note> {
    score
        .tracks
        .iter()
        .filter(|t| !t.is_drum)
        .flat_map(|t| t.notes.iter())
}

fn pitch_histogram(score: &Score) -> Option<[u32; 128]> {
    let mut h = [0u32; 128];
    for n in pitched_notes(score) {
        h[usize::from(n.pitch.get())] += 1;
    }
    h.iter().any(|&c| c > 0).then_some(h)
}

fn class_histogram(score: &Score) -> Option<[u32; 12]> {
    let h = pitch_histogram(score)?;
    let mut c = [0u32; 12];
    for (p, &n) in h.iter().enumerate() {
        c[p % 12] += n;
    }
    Some(c)
}

/// Shannon entropy in bits of a histogram.
pub(crate) fn entropy_bits(counts: &[u32]) -> f64 {
    let total: f64 = counts.iter().map(|&c| f64::from(c)).sum();
    if total == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum()
}

/// Highest minus lowest pitch, in semitones.
#[must_use]
pub fn pitch_range(score: &Score) -> Option<u8> {
    let (lo, hi) = pitched_notes(score).fold((u8::MAX, 0u8), |(lo, hi), n| {
        (lo.min(n.pitch.get()), hi.max(n.pitch.get()))
    });
    (lo <= hi).then(|| hi - lo)
}

/// Number of distinct pitches.
#[must_use]
pub fn pitches_used(score: &Score) -> Option<usize> {
    pitch_histogram(score).map(|h| h.iter().filter(|&&c| c > 0).count())
}

/// Number of distinct pitch classes (0–12).
#[must_use]
pub fn pitch_classes_used(score: &Score) -> Option<usize> {
    class_histogram(score).map(|h| h.iter().filter(|&&c| c > 0).count())
}

/// Shannon entropy (bits) of the note-count histogram over the 128 pitches.
#[must_use]
pub fn pitch_entropy(score: &Score) -> Option<f64> {
    pitch_histogram(score).map(|h| entropy_bits(&h))
}

/// Shannon entropy (bits) of the note-count histogram over the 12 pitch classes (at most
/// log2 12 ≈ 3.585 for a perfectly chromatic piece).
#[must_use]
pub fn pitch_class_entropy(score: &Score) -> Option<f64> {
    class_histogram(score).map(|h| entropy_bits(&h))
}

/// Major or (natural) minor mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Ionian: 0 2 4 5 7 9 11.
    Major,
    /// Aeolian: 0 2 3 5 7 8 10.
    Minor,
}

impl Mode {
    /// Semitones of the scale above its root.
    #[must_use]
    pub const fn steps(self) -> [u8; 7] {
        match self {
            Self::Major => [0, 2, 4, 5, 7, 9, 11],
            Self::Minor => [0, 2, 3, 5, 7, 8, 10],
        }
    }

    /// Whether pitch class `pc` belongs to the scale on `root`.
    #[must_use]
    pub fn contains(self, root: u8, pc: u8) -> bool {
        self.steps().contains(&((pc + 12 - root % 12) % 12))
    }
}

fn in_scale_share(h: &[u32; 12], root: u8, mode: Mode) -> f64 {
    let total: u32 = h.iter().sum();
    let inside: u32 = (0..12u8)
        .filter(|&pc| mode.contains(root, pc))
        .map(|pc| h[usize::from(pc)])
        .sum();
    f64::from(inside) / f64::from(total.max(1))
}

/// Share of notes whose pitch class is in the scale of `root` (0 = C) and `mode`.
#[must_use]
pub fn in_scale_rate(score: &Score, root: u8, mode: Mode) -> Option<f64> {
    class_histogram(score).map(|h| in_scale_share(&h, root, mode))
}

/// The largest in-scale rate over the 24 major and minor scales.
#[must_use]
pub fn scale_consistency(score: &Score) -> Option<f64> {
    let h = class_histogram(score)?;
    let best = [Mode::Major, Mode::Minor]
        .into_iter()
        .flat_map(|m| (0..12).map(move |r| (r, m)))
        .map(|(r, m)| in_scale_share(&h, r, m))
        .fold(0.0, f64::max);
    Some(best)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Pitch, Track, Velocity};

    /// A one-track score of quarter notes (tpq 4) with the given pitches, one after another.
    pub(crate) fn melody(pitches: &[u8]) -> Score {
        let mut s = Score::new(4);
        let mut t = Track::new("melody");
        for (i, &p) in pitches.iter().enumerate() {
            t.notes.push(Note::new(
                Pitch::new(p).unwrap(),
                Velocity::new(64).unwrap(),
                4 * i as u64,
                4,
            ));
        }
        s.tracks.push(t);
        s
    }

    #[test]
    fn counts_and_range_ignore_drums() {
        // C4 E4 G4 C5: range 72 - 60 = 12; 4 pitches; 3 classes (C, E, G).
        let mut s = melody(&[60, 64, 67, 72]);
        let mut drums = Track::drums("kit");
        drums.notes.push(Note::new(
            Pitch::new(36).unwrap(),
            Velocity::new(90).unwrap(),
            0,
            1,
        ));
        s.tracks.push(drums);
        assert_eq!(pitch_range(&s), Some(12));
        assert_eq!(pitches_used(&s), Some(4));
        assert_eq!(pitch_classes_used(&s), Some(3));
        assert_eq!(pitch_range(&Score::new(4)), None);
    }

    #[test]
    fn entropies_match_hand_computed_values() {
        // Pitches 60 60 64 67: p = 1/2, 1/4, 1/4 → H = 0.5·1 + 2·0.25·2 = 1.5 bits.
        let s = melody(&[60, 60, 64, 67]);
        assert!((pitch_entropy(&s).unwrap() - 1.5).abs() < 1e-12);
        // 60 72 64 64: classes C:2, E:2 → 1 bit; pitches 1/4, 1/4, 1/2 → 1.5 bits.
        let s = melody(&[60, 72, 64, 64]);
        assert!((pitch_class_entropy(&s).unwrap() - 1.0).abs() < 1e-12);
        assert!((pitch_entropy(&s).unwrap() - 1.5).abs() < 1e-12);
        // All 12 classes once: log2(12).
        let s = melody(&(60..72).collect::<Vec<_>>());
        assert!((pitch_class_entropy(&s).unwrap() - 12f64.log2()).abs() < 1e-12);
    }

    #[test]
    fn scale_rates_match_hand_counts() {
        // C D E F# G: F# is outside C major → 4/5; G major holds all five → consistency 1.
        let s = melody(&[60, 62, 64, 66, 67]);
        assert!((in_scale_rate(&s, 0, Mode::Major).unwrap() - 0.8).abs() < 1e-12);
        assert!((in_scale_rate(&s, 7, Mode::Major).unwrap() - 1.0).abs() < 1e-12);
        // A minor = C major's notes: C D E in, F# out.
        assert!((in_scale_rate(&s, 9, Mode::Minor).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(scale_consistency(&s), Some(1.0));
        // The chromatic scale: any scale holds 7 of 12.
        let s = melody(&(60..72).collect::<Vec<_>>());
        assert!((scale_consistency(&s).unwrap() - 7.0 / 12.0).abs() < 1e-12);
    }
}
