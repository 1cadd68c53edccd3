//! MuseGAN's metrics (Dong et al., 2018): used pitch classes per bar (UPC), qualified-note
//! rate (QN), empty bars per track (EB) and tonal distance between tracks (TD, after Harte,
//! Sandler & Gasser, 2006). The drum-pattern rate (DP) is
//! [`drum_in_pattern_rate`](super::drum_in_pattern_rate) with [`Meter::Duple`](super::Meter).

use super::bars::{Bar, bars};
use super::rhythm::{empty_share, sounding_in};
use crate::{Note, Score, Track};

/// Duration-weighted pitch-class profile of `notes` inside `bar` (the overlap counts).
fn chroma(notes: &[Note], bar: &Bar) -> [f64; 12] {
    let mut c = [0.0; 12];
    for n in notes {
        let end = n.start + n.duration.max(1);
        let overlap = end.min(bar.end).saturating_sub(n.start.max(bar.start));
        c[usize::from(n.pitch.get() % 12)] += overlap as f64;
    }
    c
}

/// Mean number of pitch classes sounding per non-empty bar, over all pitched tracks
/// (MuseGAN counts per track; call it on a one-track score for that).
#[must_use]
pub fn used_pitch_classes_per_bar(score: &Score) -> Option<f64> {
    let pitched: Vec<Note> = super::pitch::pitched_notes(score).copied().collect();
    let counts: Vec<usize> = bars(score)
        .iter()
        .map(|b| chroma(&pitched, b).iter().filter(|&&w| w > 0.0).count())
        .filter(|&k| k > 0)
        .collect();
    (!counts.is_empty()).then(|| counts.iter().sum::<usize>() as f64 / counts.len() as f64)
}

/// Share of pitched notes lasting at least a 32nd note (MuseGAN's three time steps at 24
/// per beat): shorter notes are fragments rather than notes.
#[must_use]
pub fn qualified_note_rate(score: &Score) -> Option<f64> {
    let min = (u64::from(score.ticks_per_quarter) / 8).max(1);
    let (mut all, mut ok) = (0usize, 0usize);
    for n in super::pitch::pitched_notes(score) {
        all += 1;
        ok += usize::from(n.duration >= min);
    }
    (all > 0).then(|| ok as f64 / all as f64)
}

/// The share of empty bars for each track, over the bars of the whole score (`None` for a
/// score without notes).
#[must_use]
pub fn empty_bar_rate_per_track(score: &Score) -> Vec<Option<f64>> {
    let spans: Vec<_> = bars(score).iter().map(|b| (b.start, b.end)).collect();
    score
        .tracks
        .iter()
        .map(|t| empty_share(&sounding_in(&t.notes, &spans)))
        .collect()
}

/// The 6-D tonal centroid of a chroma vector: projections on the circles of fifths, minor
/// thirds and major thirds (radii 1, 1, 0.5), divided by the L1 norm. `None` for silence.
#[must_use]
pub fn tonal_centroid(chroma: &[f64; 12]) -> Option<[f64; 6]> {
    use std::f64::consts::PI;
    let norm: f64 = chroma.iter().map(|c| c.abs()).sum();
    if norm == 0.0 {
        return None;
    }
    let mut out = [0.0; 6];
    for (l, &c) in chroma.iter().enumerate() {
        let l = l as f64;
        let angles = [l * 7.0 * PI / 6.0, l * 3.0 * PI / 2.0, l * 2.0 * PI / 3.0];
        for (k, (&a, r)) in angles.iter().zip([1.0, 1.0, 0.5]).enumerate() {
            out[2 * k] += r * a.sin() * c / norm;
            out[2 * k + 1] += r * a.cos() * c / norm;
        }
    }
    Some(out)
}

/// Tonal distance between two tracks: the Euclidean distance of their bars' tonal
/// centroids, averaged over the bars where both sound. Small means harmonically close.
/// `None` when no bar has both.
#[must_use]
pub fn tonal_distance(score: &Score, a: &Track, b: &Track) -> Option<f64> {
    let distances: Vec<f64> = bars(score)
        .iter()
        .filter_map(|bar| {
            let x = tonal_centroid(&chroma(&a.notes, bar))?;
            let y = tonal_centroid(&chroma(&b.notes, bar))?;
            Some(
                x.iter()
                    .zip(&y)
                    .map(|(p, q)| (p - q).powi(2))
                    .sum::<f64>()
                    .sqrt(),
            )
        })
        .collect();
    (!distances.is_empty()).then(|| distances.iter().sum::<f64>() / distances.len() as f64)
}

/// Mean tonal distance over all pairs of pitched tracks (`None` with fewer than two that
/// share a bar).
#[must_use]
pub fn mean_tonal_distance(score: &Score) -> Option<f64> {
    let tracks: Vec<&Track> = score
        .tracks
        .iter()
        .filter(|t| !t.is_drum && !t.notes.is_empty())
        .collect();
    let mut values = Vec::new();
    for (i, a) in tracks.iter().enumerate() {
        for b in &tracks[i + 1..] {
            values.extend(tonal_distance(score, a, b));
        }
    }
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pitch, Velocity};

    fn track(notes: &[(u8, u64, u64)]) -> Track {
        let mut t = Track::new("t");
        for &(p, s, d) in notes {
            t.notes.push(Note::new(
                Pitch::new(p).unwrap(),
                Velocity::new(64).unwrap(),
                s,
                d,
            ));
        }
        t
    }

    #[test]
    fn tonal_distance_of_a_fifth_matches_the_hand_value() {
        // C alone: angles 0 → (0, 1, 0, 1, 0, 0.5).
        // G (l = 7): 49π/6 ≡ π/6 → (1/2, √3/2); 21π/2 ≡ π/2 → (1, 0);
        // 14π/3 ≡ 2π/3 → 0.5·(√3/2, −1/2) = (√3/4, −1/4).
        // Squared differences: 1/4 + (1 − √3/2)² + 1 + 1 + 3/16 + 9/16 → √ ≈ 1.73723.
        let mut s = Score::new(4);
        let (c, g) = (track(&[(60, 0, 16)]), track(&[(67, 0, 16)]));
        s.tracks.push(c.clone());
        s.tracks.push(g.clone());
        let expected = (0.25 + (1.0 - 3f64.sqrt() / 2.0).powi(2) + 2.0 + 0.75).sqrt();
        assert!((tonal_distance(&s, &c, &g).unwrap() - expected).abs() < 1e-12);
        assert!(tonal_distance(&s, &c, &c).unwrap().abs() < 1e-12);
        assert!((mean_tonal_distance(&s).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn upc_qn_and_empty_bars_by_hand() {
        // tpq 4 (a 32nd note is under one tick: min length 1, so everything qualifies), then
        // tpq 16 (32nd = 2 ticks).
        // Bar 0: C E G → 3 classes; bar 1: empty; bar 2: C and C an octave up → 1 class.
        let mut s = Score::new(4);
        s.tracks.push(track(&[
            (60, 0, 4),
            (64, 4, 4),
            (67, 8, 4),
            (60, 32, 2),
            (72, 34, 2),
        ]));
        s.tracks.push(track(&[]));
        assert_eq!(used_pitch_classes_per_bar(&s), Some(2.0));
        assert_eq!(qualified_note_rate(&s), Some(1.0));
        assert_eq!(empty_bar_rate_per_track(&s), [Some(1.0 / 3.0), Some(1.0)]);
        s.ticks_per_quarter = 16;
        // Now bars are 64 ticks: all notes in bar 0; the two 2-tick notes are exactly 32nds.
        s.tracks[0].notes[3].duration = 1;
        assert_eq!(qualified_note_rate(&s), Some(0.8));
    }
}
