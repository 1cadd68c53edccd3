//! Chord recognition by exact template matching on pitch-class sets.

use std::fmt;

/// A set of pitch classes (C = bit 0 … B = bit 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PitchClassSet(u16);

impl PitchClassSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// Adds the pitch class of a MIDI pitch.
    pub fn insert_pitch(&mut self, pitch: u8) {
        self.0 |= 1 << (pitch % 12);
    }

    /// The set of the given MIDI pitches.
    #[must_use]
    pub fn from_pitches(pitches: impl IntoIterator<Item = u8>) -> Self {
        let mut s = Self::EMPTY;
        for p in pitches {
            s.insert_pitch(p);
        }
        s
    }

    /// Number of distinct pitch classes.
    #[must_use]
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set transposed down by `semitones` (so `root` becomes C).
    #[must_use]
    pub fn rotated_down(self, semitones: u8) -> Self {
        let r = u32::from(semitones % 12);
        let bits = u32::from(self.0);
        Self((((bits >> r) | (bits << (12 - r))) & 0xFFF) as u16)
    }

    /// The raw 12-bit mask.
    #[must_use]
    pub fn bits(self) -> u16 {
        self.0
    }
}

/// Chord qualities the recognizer knows, with their intervals above the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChordQuality {
    /// Major triad (0 4 7).
    Major,
    /// Minor triad (0 3 7).
    Minor,
    /// Diminished triad (0 3 6).
    Diminished,
    /// Augmented triad (0 4 8).
    Augmented,
    /// Suspended second (0 2 7).
    Sus2,
    /// Suspended fourth (0 5 7).
    Sus4,
    /// Dominant seventh (0 4 7 10).
    Dominant7,
    /// Major seventh (0 4 7 11).
    Major7,
    /// Minor seventh (0 3 7 10).
    Minor7,
    /// Diminished seventh (0 3 6 9).
    Diminished7,
    /// Half-diminished seventh (0 3 6 10).
    HalfDiminished7,
    /// Major sixth (0 4 7 9).
    Major6,
    /// Minor sixth (0 3 7 9).
    Minor6,
}

impl ChordQuality {
    /// Every quality, in token order.
    pub const ALL: [ChordQuality; 13] = [
        Self::Major,
        Self::Minor,
        Self::Diminished,
        Self::Augmented,
        Self::Sus2,
        Self::Sus4,
        Self::Dominant7,
        Self::Major7,
        Self::Minor7,
        Self::Diminished7,
        Self::HalfDiminished7,
        Self::Major6,
        Self::Minor6,
    ];

    /// Intervals above the root, in semitones.
    #[must_use]
    pub const fn intervals(self) -> &'static [u8] {
        match self {
            Self::Major => &[0, 4, 7],
            Self::Minor => &[0, 3, 7],
            Self::Diminished => &[0, 3, 6],
            Self::Augmented => &[0, 4, 8],
            Self::Sus2 => &[0, 2, 7],
            Self::Sus4 => &[0, 5, 7],
            Self::Dominant7 => &[0, 4, 7, 10],
            Self::Major7 => &[0, 4, 7, 11],
            Self::Minor7 => &[0, 3, 7, 10],
            Self::Diminished7 => &[0, 3, 6, 9],
            Self::HalfDiminished7 => &[0, 3, 6, 10],
            Self::Major6 => &[0, 4, 7, 9],
            Self::Minor6 => &[0, 3, 7, 9],
        }
    }

    /// Short name as in chord symbols (`maj`, `m`, `dim`, `7`, `m7b5`, …).
    #[must_use]
    pub const fn symbol(self) -> &'static str {
        match self {
            Self::Major => "maj",
            Self::Minor => "m",
            Self::Diminished => "dim",
            Self::Augmented => "aug",
            Self::Sus2 => "sus2",
            Self::Sus4 => "sus4",
            Self::Dominant7 => "7",
            Self::Major7 => "maj7",
            Self::Minor7 => "m7",
            Self::Diminished7 => "dim7",
            Self::HalfDiminished7 => "m7b5",
            Self::Major6 => "6",
            Self::Minor6 => "m6",
        }
    }

    fn set(self) -> PitchClassSet {
        PitchClassSet::from_pitches(self.intervals().iter().copied())
    }
}

/// The result of [`Chord::best_match`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChordMatch {
    /// The chord.
    pub chord: Chord,
    /// Inversion given by the bass (see [`Chord::inversion_of`]); `None` without a bass or
    /// with a non-chord tone in the bass.
    pub inversion: Option<u8>,
    /// Match score (at most 1.01; higher is a cleaner fit).
    pub score: f64,
}

/// A recognized chord: root pitch class (0 = C) and quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Chord {
    /// Root pitch class, 0..=11.
    pub root: u8,
    /// Quality.
    pub quality: ChordQuality,
}

const NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// Serialized as its symbol, e.g. `"G:7"`.
impl serde::Serialize for Chord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Chord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            NAMES[usize::from(self.root % 12)],
            self.quality.symbol()
        )
    }
}

impl Chord {
    /// Recognizes the chord whose pitch classes are exactly `set` (three or more classes).
    /// Symmetric chords (augmented, diminished seventh) and sixth/seventh ambiguities
    /// (C6 = Am7) are resolved in favour of the root `bass` (the lowest sounding pitch
    /// class), then by the quality order of [`ChordQuality::ALL`].
    ///
    /// ```
    /// use aurl_core::analysis::{Chord, ChordQuality, PitchClassSet};
    /// let c_major = PitchClassSet::from_pitches([60, 64, 67, 72]);
    /// assert_eq!(Chord::recognize(c_major, 0), Some(Chord { root: 0, quality: ChordQuality::Major }));
    /// // A C6 chord with A in the bass is read as A minor seventh.
    /// let am7 = PitchClassSet::from_pitches([57, 60, 64, 67]);
    /// assert_eq!(Chord::recognize(am7, 9).unwrap().to_string(), "A:m7");
    /// ```
    #[must_use]
    pub fn recognize(set: PitchClassSet, bass: u8) -> Option<Chord> {
        if set.len() < 3 {
            return None;
        }
        let mut found: Option<Chord> = None;
        for offset in 0..12u8 {
            let root = (bass + offset) % 12;
            let rotated = set.rotated_down(root);
            if let Some(&quality) = ChordQuality::ALL.iter().find(|q| q.set() == rotated) {
                found = Some(Chord { root, quality });
                break;
            }
        }
        found
    }

    /// The chord that best explains a weighted pitch-class profile (e.g. durations inside
    /// a beat), allowing passing tones and a missing fifth: each template scores the weight
    /// of its tones minus the weight outside it, less 0.1 per absent tone and 0.02 per
    /// tone beyond a triad, plus 0.01 when its root is the `bass`. The root must sound and
    /// the chord tones must carry at least half of the weight. `None` for fewer than two
    /// pitch classes.
    ///
    /// ```
    /// use aurl_core::analysis::{Chord, ChordQuality};
    /// // G B D with a passing A, B in the bass: G major in first inversion.
    /// let mut profile = [0.0; 12];
    /// for (pc, w) in [(7, 2.0), (11, 2.0), (2, 2.0), (9, 0.5)] {
    ///     profile[pc] = w;
    /// }
    /// let m = Chord::best_match(&profile, Some(11)).unwrap();
    /// assert_eq!((m.chord.to_string(), m.inversion), ("G:maj".to_string(), Some(1)));
    /// ```
    #[must_use]
    pub fn best_match(profile: &[f64; 12], bass: Option<u8>) -> Option<ChordMatch> {
        let total: f64 = profile.iter().filter(|w| **w > 0.0).sum();
        if total <= 0.0 || profile.iter().filter(|w| **w > 0.0).count() < 2 {
            return None;
        }
        let mut best: Option<(f64, Chord)> = None;
        for quality in ChordQuality::ALL {
            for root in 0..12u8 {
                let tones: Vec<usize> = quality
                    .intervals()
                    .iter()
                    .map(|i| usize::from((root + i) % 12))
                    .collect();
                if profile[usize::from(root)] <= 0.0 {
                    continue;
                }
                let inside: f64 = tones.iter().map(|&pc| profile[pc].max(0.0)).sum::<f64>() / total;
                if inside < 0.5 {
                    continue;
                }
                let missing = tones.iter().filter(|&&pc| profile[pc] <= 0.0).count() as f64;
                let score =
                    inside - (1.0 - inside) - 0.1 * missing - 0.02 * (tones.len() as f64 - 3.0)
                        + if bass.map(|b| b % 12) == Some(root) {
                            0.01
                        } else {
                            0.0
                        };
                if best.is_none_or(|b| score > b.0 + 1e-12) {
                    best = Some((score, Chord { root, quality }));
                }
            }
        }
        let (score, chord) = best?;
        Some(ChordMatch {
            chord,
            inversion: bass.and_then(|b| chord.inversion_of(b)),
            score,
        })
    }

    /// Which inversion a bass pitch class makes: 0 root position, 1 first (third in the
    /// bass), 2 second, 3 third; `None` when the bass is not a chord tone.
    #[must_use]
    pub fn inversion_of(self, bass: u8) -> Option<u8> {
        let above = (bass % 12 + 12 - self.root) % 12;
        self.quality
            .intervals()
            .iter()
            .position(|&i| i == above)
            .map(|i| i as u8)
    }

    /// Index of this chord among all 12 × 13 chord tokens.
    #[must_use]
    pub fn index(self) -> usize {
        let q = ChordQuality::ALL
            .iter()
            .position(|&x| x == self.quality)
            .unwrap_or(0);
        q * 12 + usize::from(self.root % 12)
    }

    /// The chord at token index `i` (inverse of [`Chord::index`]).
    #[must_use]
    pub fn from_index(i: usize) -> Option<Chord> {
        let quality = *ChordQuality::ALL.get(i / 12)?;
        Some(Chord {
            root: (i % 12) as u8,
            quality,
        })
    }

    /// Number of distinct chords (token count).
    pub const COUNT: usize = 12 * ChordQuality::ALL.len();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triads_and_sevenths_in_any_inversion() {
        let r = |pitches: &[u8], bass| {
            Chord::recognize(PitchClassSet::from_pitches(pitches.iter().copied()), bass)
        };
        // G major in first inversion: B D G.
        assert_eq!(r(&[59, 62, 67], 11).unwrap().to_string(), "G:maj");
        assert_eq!(r(&[62, 65, 69], 2).unwrap().to_string(), "D:m");
        assert_eq!(r(&[67, 71, 74, 77], 7).unwrap().to_string(), "G:7");
        assert_eq!(r(&[59, 62, 65, 69], 11).unwrap().to_string(), "B:m7b5");
        assert_eq!(r(&[60, 64], 0), None, "two pitch classes are not a chord");
        assert_eq!(r(&[60, 61, 62], 0), None, "a cluster matches no template");
        // Augmented triads are symmetric: the bass names the root.
        assert_eq!(r(&[64, 68, 72], 4).unwrap().to_string(), "E:aug");
    }

    #[test]
    fn index_round_trips_over_all_chords() {
        for i in 0..Chord::COUNT {
            assert_eq!(Chord::from_index(i).unwrap().index(), i);
        }
        assert_eq!(Chord::from_index(Chord::COUNT), None);
    }
}
