//! Rhythm and texture metrics in MusPy's set: polyphony, polyphony rate, empty-beat and
//! empty-measure rates, groove consistency, and the drum-pattern rates.
//!
//! Time is measured exactly in ticks (MusPy samples a piano roll at the file's resolution;
//! the results agree for any grid the notes lie on). A zero-length note sounds for one tick.
//! MusPy 0.5's `empty_beat_rate` returns the share of *non-empty* beats; here the
//! definition is followed: the share of beats in which nothing sounds.

use super::bars::{Bar, bars, content_end};
use super::pitch::pitched_notes;
use crate::{Note, Score, Tick};

fn all_notes(score: &Score) -> impl Iterator<Item = &Note> {
    score.tracks.iter().flat_map(|t| t.notes.iter())
}

fn sounding_end(start: Tick, duration: Tick) -> Tick {
    start + duration.max(1)
}

/// Time (in ticks) during which `k` distinct pitches sound, for each `k`, over
/// `[0, content_end)`; drums ignored. Index 0 holds the silent time.
fn time_by_pitch_count(score: &Score) -> Vec<Tick> {
    let mut events: Vec<(Tick, i32, u8)> = Vec::new();
    for n in pitched_notes(score) {
        events.push((n.start, 1, n.pitch.get()));
        events.push((sounding_end(n.start, n.duration), -1, n.pitch.get()));
    }
    // Ends before starts at the same tick, so a repeated note does not count twice.
    events.sort_unstable_by_key(|e| (e.0, e.1));
    let mut per_pitch = [0i32; 128];
    let mut distinct = 0usize;
    let mut out = vec![0; 129];
    let mut last: Tick = 0;
    for (tick, delta, pitch) in events {
        out[distinct] += tick - last;
        last = tick;
        let slot = &mut per_pitch[usize::from(pitch)];
        let was = *slot > 0;
        *slot += delta;
        distinct = distinct + usize::from(*slot > 0 && !was) - usize::from(was && *slot <= 0);
    }
    out[0] += content_end(score).saturating_sub(last);
    out
}

/// Mean number of distinct pitches sounding, over the time at least one sounds.
#[must_use]
pub fn polyphony(score: &Score) -> Option<f64> {
    let t = time_by_pitch_count(score);
    let sounding: Tick = t[1..].iter().sum();
    let weighted: f64 = t
        .iter()
        .enumerate()
        .map(|(k, &d)| k as f64 * d as f64)
        .sum();
    (sounding > 0).then(|| weighted / sounding as f64)
}

/// Share of the piece's time (from 0 to the last note's end, silence included) during
/// which at least `min_pitches` distinct pitches sound; MusPy uses 2.
#[must_use]
pub fn polyphony_rate(score: &Score, min_pitches: usize) -> Option<f64> {
    let t = time_by_pitch_count(score);
    let total: Tick = t.iter().sum();
    let poly: Tick = t.iter().skip(min_pitches.max(1)).sum();
    (total > 0 && t[1..].iter().any(|&d| d > 0)).then(|| poly as f64 / total as f64)
}

/// Whether any of `notes` sounds inside each span (spans sorted and disjoint).
pub(crate) fn sounding_in<'a>(
    notes: impl IntoIterator<Item = &'a Note>,
    spans: &[(Tick, Tick)],
) -> Vec<bool> {
    let mut busy = vec![false; spans.len()];
    for n in notes {
        let end = sounding_end(n.start, n.duration);
        let first = spans.partition_point(|s| s.1 <= n.start);
        for (i, s) in spans.iter().enumerate().skip(first) {
            if s.0 >= end {
                break;
            }
            busy[i] = true;
        }
    }
    busy
}

pub(crate) fn empty_share(busy: &[bool]) -> Option<f64> {
    (!busy.is_empty()).then(|| busy.iter().filter(|b| !**b).count() as f64 / busy.len() as f64)
}

/// The beats of the score's bars, as tick spans (see [`Bar::beat_ticks`]).
#[must_use]
pub fn beats(score: &Score) -> Vec<(Tick, Tick)> {
    let mut out = Vec::new();
    for bar in bars(score) {
        let step = bar.beat_ticks(score.ticks_per_quarter);
        let mut t = bar.start;
        while t < bar.end {
            out.push((t, (t + step).min(bar.end)));
            t += step;
        }
    }
    out
}

/// Share of beats in which no note sounds (drums count as sound).
#[must_use]
pub fn empty_beat_rate(score: &Score) -> Option<f64> {
    empty_share(&sounding_in(all_notes(score), &beats(score)))
}

/// Share of bars in which no note sounds — MuseGAN's "empty bars" (EB) for the whole score.
#[must_use]
pub fn empty_measure_rate(score: &Score) -> Option<f64> {
    let spans: Vec<_> = bars(score).iter().map(|b| (b.start, b.end)).collect();
    empty_share(&sounding_in(all_notes(score), &spans))
}

/// The onset pattern of each bar on a grid of `steps_per_quarter` positions per quarter
/// note (all tracks, drums included).
fn onset_patterns(score: &Score, bars: &[Bar], steps_per_quarter: u32) -> Vec<Vec<bool>> {
    let tpq = u64::from(score.ticks_per_quarter.max(1));
    let spq = u64::from(steps_per_quarter.max(1));
    let mut patterns: Vec<Vec<bool>> = bars
        .iter()
        .map(|b| vec![false; ((b.end - b.start) * spq).div_ceil(tpq) as usize])
        .collect();
    for n in score.tracks.iter().flat_map(|t| t.notes.iter()) {
        if let Some(i) = super::bars::bar_index(bars, n.start) {
            let pos = ((n.start - bars[i].start) * spq / tpq) as usize;
            if let Some(slot) = patterns[i].get_mut(pos) {
                *slot = true;
            }
        }
    }
    patterns
}

/// Groove consistency (Wu & Yang, 2020): one minus the mean Hamming distance between the
/// onset patterns of neighbouring bars, each divided by the bar's number of grid positions.
/// 1 means every bar has the same rhythm. `None` with fewer than two bars.
#[must_use]
pub fn groove_consistency(score: &Score, steps_per_quarter: u32) -> Option<f64> {
    let bars = bars(score);
    let patterns = onset_patterns(score, &bars, steps_per_quarter);
    if patterns.len() < 2 {
        return None;
    }
    let distances: f64 = patterns
        .windows(2)
        .map(|w| {
            let len = w[0].len().max(w[1].len()).max(1);
            let differ = (0..len)
                .filter(|&i| {
                    w[0].get(i).copied().unwrap_or(false) != w[1].get(i).copied().unwrap_or(false)
                })
                .count();
            differ as f64 / len as f64
        })
        .sum();
    Some(1.0 - distances / (patterns.len() - 1) as f64)
}

/// The grid a drum pattern is expected on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meter {
    /// Straight time: onsets on the sixteenth-note grid (MuseGAN's "8- or 16-beat patterns").
    Duple,
    /// Compound or swung time: onsets on the eighth-note-triplet grid.
    Triple,
}

/// Share of drum notes whose onset lies on the meter's grid (MuseGAN's drum-pattern rate DP
/// is the `Duple` case). `None` without drum notes.
#[must_use]
pub fn drum_in_pattern_rate(score: &Score, meter: Meter) -> Option<f64> {
    let tpq = u64::from(score.ticks_per_quarter.max(1));
    let per_quarter = match meter {
        Meter::Duple => 4,
        Meter::Triple => 3,
    };
    let (mut all, mut inside) = (0usize, 0usize);
    for n in score
        .tracks
        .iter()
        .filter(|t| t.is_drum)
        .flat_map(|t| t.notes.iter())
    {
        all += 1;
        // On the grid exactly when start · per_quarter / tpq is a whole number.
        inside += usize::from((n.start * per_quarter) % tpq == 0);
    }
    (all > 0).then(|| inside as f64 / all as f64)
}

/// The larger of the duple and triple drum-in-pattern rates.
#[must_use]
pub fn drum_pattern_consistency(score: &Score) -> Option<f64> {
    let d = drum_in_pattern_rate(score, Meter::Duple)?;
    let t = drum_in_pattern_rate(score, Meter::Triple)?;
    Some(d.max(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pitch, Track, Velocity};

    fn note(p: u8, start: Tick, duration: Tick) -> Note {
        Note::new(
            Pitch::new(p).unwrap(),
            Velocity::new(64).unwrap(),
            start,
            duration,
        )
    }

    fn score(notes: &[Note], drums: &[Note]) -> Score {
        let mut s = Score::new(4);
        let mut t = Track::new("p");
        t.notes.extend_from_slice(notes);
        s.tracks.push(t);
        let mut d = Track::drums("d");
        d.notes.extend_from_slice(drums);
        s.tracks.push(d);
        s
    }

    #[test]
    fn polyphony_weighs_time_by_sounding_pitches() {
        // tpq 4. C sounds 0..8; E 4..8; silence 8..12; G 12..16.
        // Time with 1 pitch: 4 + 4 = 8 ticks, 2 pitches: 4 ticks, silent: 4 ticks.
        // polyphony = (1·8 + 2·4) / 12 = 4/3; rate(≥2) = 4 / 16 = 0.25.
        let s = score(&[note(60, 0, 8), note(64, 4, 4), note(67, 12, 4)], &[]);
        assert!((polyphony(&s).unwrap() - 4.0 / 3.0).abs() < 1e-12);
        assert!((polyphony_rate(&s, 2).unwrap() - 0.25).abs() < 1e-12);
        // Unison doubling across tracks is one pitch, and a drum hit is not a pitch.
        let s = score(&[note(60, 0, 4), note(60, 0, 4)], &[note(36, 0, 4)]);
        assert_eq!(polyphony(&s), Some(1.0));
        assert_eq!(polyphony(&score(&[], &[note(36, 0, 4)])), None);
    }

    #[test]
    fn empty_beats_and_bars_count_silence_not_onsets() {
        // tpq 4, 4/4: bars of 16 ticks, beats of 4. A note over 0..6 fills beats 0 and 1;
        // a drum hit at 40 (bar 2, beat 10) fills beat 10. Content ends at 41 → 3 bars,
        // 12 beats; 3 sounding → 9/12 empty. Bars: 0 and 2 sound, 1 is empty → 1/3.
        let s = score(&[note(60, 0, 6)], &[note(36, 40, 1)]);
        assert_eq!(beats(&s).len(), 12);
        assert!((empty_beat_rate(&s).unwrap() - 0.75).abs() < 1e-12);
        assert!((empty_measure_rate(&s).unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn groove_consistency_is_one_minus_mean_hamming() {
        // Grid of 1 step per quarter → 4 positions per 4/4 bar.
        // Bar 0 onsets at 0 and 2; bar 1 at 0 and 2 (same); bar 2 at 1 only.
        // Distances: 0/4, then {0,1,2} differ → 3/4. GC = 1 - (0 + 0.75)/2 = 0.625.
        let q = 4;
        let s = score(
            &[
                note(60, 0, 1),
                note(60, 2 * q, 1),
                note(60, 16, 1),
                note(60, 16 + 2 * q, 1),
                note(60, 32 + q, 1),
            ],
            &[],
        );
        assert!((groove_consistency(&s, 1).unwrap() - 0.625).abs() < 1e-12);
        assert_eq!(groove_consistency(&score(&[note(60, 0, 1)], &[]), 1), None);
    }

    #[test]
    fn drum_patterns_check_the_grid() {
        // tpq 4: sixteenths at every tick; a 12-tick-per-quarter file is needed for
        // triplets. With tpq 12: hits at 0 (both grids), 3 (16th), 4 (triplet), 5 (neither).
        let mut s = score(
            &[],
            &[
                note(36, 0, 1),
                note(38, 3, 1),
                note(42, 4, 1),
                note(42, 5, 1),
            ],
        );
        s.ticks_per_quarter = 12;
        assert_eq!(drum_in_pattern_rate(&s, Meter::Duple), Some(0.5));
        assert_eq!(drum_in_pattern_rate(&s, Meter::Triple), Some(0.5));
        assert_eq!(drum_pattern_consistency(&s), Some(0.5));
        assert_eq!(
            drum_in_pattern_rate(&score(&[note(60, 0, 1)], &[]), Meter::Duple),
            None
        );
    }
}
