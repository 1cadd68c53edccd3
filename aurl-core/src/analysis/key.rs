//! Key estimation with the Krumhansl–Schmuckler algorithm (Krumhansl, 1990): correlate a
//! piece's duration-weighted pitch-class profile with the Krumhansl–Kessler probe-tone
//! profiles of the 24 major and minor keys; the best correlation names the key. Over a
//! sliding window of bars it follows modulations.

use std::fmt;

use serde::Serialize;

use crate::metrics::{Bar, Mode, bars};
use crate::{Note, Score, Tick};

/// Krumhansl–Kessler major-key profile, tonic first.
const MAJOR: [f64; 12] = [
    6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88,
];
/// Krumhansl–Kessler minor-key profile, tonic first.
const MINOR: [f64; 12] = [
    6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17,
];

const NAMES: [&str; 12] = [
    "C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
];

/// A major or minor key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Key {
    /// Tonic pitch class, 0 = C.
    pub tonic: u8,
    /// Major or minor.
    pub mode: Mode,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Major => "major",
            Mode::Minor => "minor",
        };
        write!(f, "{} {mode}", NAMES[usize::from(self.tonic % 12)])
    }
}

/// A key with the correlation that chose it (−1…1; higher is more certain).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KeyEstimate {
    /// The best-correlating key.
    pub key: Key,
    /// Pearson correlation of the profile with that key's template.
    pub correlation: f64,
}

fn pearson(x: &[f64; 12], y: &[f64; 12]) -> f64 {
    let (mx, my) = (x.iter().sum::<f64>() / 12.0, y.iter().sum::<f64>() / 12.0);
    let (mut num, mut vx, mut vy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        num += (a - mx) * (b - my);
        vx += (a - mx).powi(2);
        vy += (b - my).powi(2);
    }
    if vx == 0.0 || vy == 0.0 {
        0.0
    } else {
        num / (vx * vy).sqrt()
    }
}

/// The key whose profile best matches a pitch-class profile (`None` when the profile is
/// flat: silence or all twelve classes equally).
///
/// ```
/// use aurl_core::analysis::estimate_key_from_profile;
/// // The notes of a G major scale, tonic weighted most.
/// let mut profile = [0.0; 12];
/// for (pc, w) in [(7, 3.0), (9, 1.0), (11, 1.5), (0, 1.0), (2, 2.0), (4, 1.0), (6, 1.0)] {
///     profile[pc] = w;
/// }
/// assert_eq!(estimate_key_from_profile(&profile).unwrap().key.to_string(), "G major");
/// ```
#[must_use]
pub fn estimate_key_from_profile(profile: &[f64; 12]) -> Option<KeyEstimate> {
    let mut best: Option<KeyEstimate> = None;
    for (mode, template) in [(Mode::Major, &MAJOR), (Mode::Minor, &MINOR)] {
        for tonic in 0..12u8 {
            let rotated: [f64; 12] =
                std::array::from_fn(|pc| template[(pc + 12 - usize::from(tonic)) % 12]);
            let correlation = pearson(profile, &rotated);
            if best.is_none_or(|b| correlation > b.correlation) {
                best = Some(KeyEstimate {
                    key: Key { tonic, mode },
                    correlation,
                });
            }
        }
    }
    best.filter(|b| b.correlation > 0.0)
}

/// Duration-weighted pitch-class profile of the pitched notes overlapping `[from, to)`.
#[must_use]
pub fn pitch_class_profile(notes: &[Note], from: Tick, to: Tick) -> [f64; 12] {
    let mut p = [0.0; 12];
    for n in notes {
        let end = n.start + n.duration.max(1);
        let overlap = end.min(to).saturating_sub(n.start.max(from));
        p[usize::from(n.pitch.get() % 12)] += overlap as f64;
    }
    p
}

/// The key of a whole score (drums ignored).
#[must_use]
pub fn estimate_key(score: &Score) -> Option<KeyEstimate> {
    let notes: Vec<Note> = crate::metrics::pitched_notes(score).copied().collect();
    estimate_key_from_profile(&pitch_class_profile(&notes, 0, Tick::MAX))
}

/// The key estimated over one window of bars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KeySpan {
    /// First bar of the window.
    pub first_bar: usize,
    /// Bars in the window.
    pub bars: usize,
    /// The window's key.
    pub estimate: KeyEstimate,
}

/// Local keys over windows of `window_bars` bars, moving by `hop_bars` (a common choice:
/// 8 and 4). Windows without pitched notes are skipped.
#[must_use]
pub fn local_keys(score: &Score, window_bars: usize, hop_bars: usize) -> Vec<KeySpan> {
    let notes: Vec<Note> = crate::metrics::pitched_notes(score).copied().collect();
    let bars: Vec<Bar> = bars(score);
    let (window, hop) = (window_bars.max(1), hop_bars.max(1));
    let mut out = Vec::new();
    let mut first = 0;
    while first < bars.len() {
        let last = (first + window).min(bars.len()) - 1;
        let profile = pitch_class_profile(&notes, bars[first].start, bars[last].end);
        if let Some(estimate) = estimate_key_from_profile(&profile) {
            out.push(KeySpan {
                first_bar: first,
                bars: last + 1 - first,
                estimate,
            });
        }
        if last + 1 == bars.len() {
            break;
        }
        first += hop;
    }
    out
}

/// Points where the local key changes: `(first bar of the new window, from, to)`.
#[must_use]
pub fn modulations(spans: &[KeySpan]) -> Vec<(usize, Key, Key)> {
    spans
        .windows(2)
        .filter(|w| w[0].estimate.key != w[1].estimate.key)
        .map(|w| (w[1].first_bar, w[0].estimate.key, w[1].estimate.key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pitch, Track, Velocity};

    fn score_of(bars_of_pitches: &[&[u8]]) -> Score {
        // tpq 4, 4/4: each bar holds its pitches as equal notes.
        let mut t = Track::new("m");
        for (b, pitches) in bars_of_pitches.iter().enumerate() {
            let d = 16 / pitches.len() as u64;
            for (i, &p) in pitches.iter().enumerate() {
                t.notes.push(Note::new(
                    Pitch::new(p).unwrap(),
                    Velocity::new(80).unwrap(),
                    16 * b as u64 + d * i as u64,
                    d,
                ));
            }
        }
        let mut s = Score::new(4);
        s.tracks.push(t);
        s
    }

    #[test]
    fn scales_and_cadences_name_their_keys() {
        let c_major: &[u8] = &[60, 62, 64, 65, 67, 69, 71, 72];
        assert_eq!(
            estimate_key(&score_of(&[c_major])).unwrap().key.to_string(),
            "C major"
        );
        // A harmonic minor with the tonic triad: A C E G# ...
        let a_minor: &[u8] = &[57, 60, 64, 57, 59, 60, 62, 64, 65, 68, 69, 57];
        assert_eq!(
            estimate_key(&score_of(&[a_minor])).unwrap().key.to_string(),
            "A minor"
        );
        assert!(estimate_key(&Score::new(4)).is_none());
    }

    #[test]
    fn a_move_to_the_dominant_is_one_modulation() {
        // Four bars of C major (C E G triads and scale), then four of D major (with F#, C#).
        let c: &[u8] = &[60, 64, 67, 72, 65, 69, 71, 60];
        let d: &[u8] = &[62, 66, 69, 74, 61, 64, 67, 62];
        let s = score_of(&[c, c, c, c, d, d, d, d]);
        let spans = local_keys(&s, 4, 4);
        assert_eq!(spans.len(), 2);
        let m = modulations(&spans);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].0, m[0].1.to_string(), m[0].2.to_string()),
            (4, "C major".into(), "D major".into())
        );
    }
}
