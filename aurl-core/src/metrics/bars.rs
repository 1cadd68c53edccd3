//! Bars and beats of a score, read from its time signatures: the time frame that bar- and
//! beat-level metrics (empty beats, groove consistency, chords per bar, form) share.

use crate::{Note, Score, Tick};

/// One bar: its span in ticks and the meter in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    /// First tick of the bar.
    pub start: Tick,
    /// First tick after the bar (a bar cut short by a time-signature change ends there).
    pub end: Tick,
    /// Beats per bar (time-signature numerator).
    pub numerator: u8,
    /// Beat unit (time-signature denominator: 4 = quarter note, 8 = eighth note).
    pub denominator: u8,
}

impl Bar {
    /// Length of one beat in ticks: the denominator's note value (a quarter in 4/4, an
    /// eighth in 6/8 — the meter as written, not the felt pulse).
    #[must_use]
    pub fn beat_ticks(&self, ticks_per_quarter: u16) -> Tick {
        (u64::from(ticks_per_quarter) * 4 / u64::from(self.denominator.max(1))).max(1)
    }

    /// Whether a note sounding over `[start, end)` overlaps this bar.
    #[must_use]
    pub fn overlaps(&self, start: Tick, end: Tick) -> bool {
        start < self.end && end.max(start + 1) > self.start
    }
}

/// The last tick at which a note sounds (0 for a score without notes).
#[must_use]
pub fn content_end(score: &Score) -> Tick {
    score
        .tracks
        .iter()
        .flat_map(|t| t.notes.iter().map(|n| n.end().max(n.start + 1)))
        .max()
        .unwrap_or(0)
}

/// The bars covering every note of the score, from tick 0: the last bar is whole even when
/// the music stops inside it. A time-signature change that falls inside a bar ends that bar
/// early, as MIDI files do. 4/4 applies until the first time signature. Empty for a score
/// without notes.
///
/// ```
/// use aurl_core::{Note, Pitch, Score, TimeSignature, Track, Velocity};
/// use aurl_core::metrics::bars;
/// let mut score = Score::new(480);
/// score.time_signatures.push(TimeSignature::new(0, 3, 4)?);
/// let mut t = Track::new("piano");
/// t.notes.push(Note::new(Pitch::new(60)?, Velocity::new(80)?, 0, 1500));
/// score.tracks.push(t);
/// let bars = bars(&score);
/// assert_eq!(bars.len(), 2, "1,500 ticks need two bars of 1,440");
/// assert_eq!((bars[1].start, bars[1].end), (1440, 2880));
/// # Ok::<(), aurl_core::Error>(())
/// ```
#[must_use]
pub fn bars(score: &Score) -> Vec<Bar> {
    bars_until(score, content_end(score))
}

/// Most bars [`bars`] returns (≈ 55 hours of 4/4 at 120 BPM): a file with a stray event
/// billions of ticks late must not make bar-level metrics allocate without bound; music past
/// this bar is left out of them.
pub const MAX_BARS: usize = 100_000;

/// The bars covering `[0, end)` (at most [`MAX_BARS`]).
#[must_use]
pub fn bars_until(score: &Score, end: Tick) -> Vec<Bar> {
    let mut signatures: Vec<_> = score
        .time_signatures
        .iter()
        .map(|s| (s.tick, s.numerator, s.denominator))
        .collect();
    signatures.sort_by_key(|s| s.0);
    let mut out = Vec::new();
    let (mut numerator, mut denominator) = (4u8, 4u8);
    let mut next = 0usize;
    let mut tick: Tick = 0;
    while tick < end && out.len() < MAX_BARS {
        while next < signatures.len() && signatures[next].0 <= tick {
            (_, numerator, denominator) = signatures[next];
            next += 1;
        }
        let length = (u64::from(score.ticks_per_quarter) * 4 * u64::from(numerator)
            / u64::from(denominator.max(1)))
        .max(1);
        let mut bar_end = tick + length;
        if let Some(&(change, _, _)) = signatures.get(next) {
            bar_end = bar_end.min(change);
        }
        out.push(Bar {
            start: tick,
            end: bar_end,
            numerator,
            denominator,
        });
        tick = bar_end;
    }
    out
}

/// The index of the bar containing `tick` (bars are sorted and contiguous).
#[must_use]
pub fn bar_index(bars: &[Bar], tick: Tick) -> Option<usize> {
    let i = bars.partition_point(|b| b.end <= tick);
    (i < bars.len()).then_some(i)
}

/// Calls `f(i, notes)` for each span `i` (sorted, disjoint) with the notes sounding in it, in
/// one sweep: `notes` must be sorted by start. Cost O(notes + spans × notes per span), not
/// O(spans × notes).
pub(crate) fn for_each_span(
    notes: &[Note],
    spans: &[(Tick, Tick)],
    mut f: impl FnMut(usize, &[Note]),
) {
    let end = |n: &Note| n.start + n.duration.max(1);
    let mut next = 0;
    let mut active: Vec<Note> = Vec::new();
    for (i, &(from, to)) in spans.iter().enumerate() {
        active.retain(|n| end(n) > from);
        while next < notes.len() && notes[next].start < to {
            if end(&notes[next]) > from {
                active.push(notes[next]);
            }
            next += 1;
        }
        f(i, &active);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pitch, TimeSignature, Track, Velocity};

    fn score_until(end: Tick, signatures: &[(Tick, u8, u8)]) -> Score {
        let mut s = Score::new(4);
        for &(tick, n, d) in signatures {
            s.time_signatures
                .push(TimeSignature::new(tick, n, d).unwrap());
        }
        let mut t = Track::new("x");
        t.notes.push(Note::new(
            Pitch::new(60).unwrap(),
            Velocity::new(64).unwrap(),
            0,
            end,
        ));
        s.tracks.push(t);
        s
    }

    #[test]
    fn a_meter_change_inside_a_bar_cuts_it_short() {
        // 4 ticks per quarter; 4/4 bars are 16 ticks. A 3/4 change at tick 20 cuts bar 2
        // (16..32) at 20; then 3/4 bars of 12 ticks: 20..32, 32..44.
        let s = score_until(40, &[(0, 4, 4), (20, 3, 4)]);
        let spans: Vec<_> = bars(&s)
            .iter()
            .map(|b| (b.start, b.end, b.numerator))
            .collect();
        assert_eq!(spans, [(0, 16, 4), (16, 20, 4), (20, 32, 3), (32, 44, 3)]);
        assert_eq!(bar_index(&bars(&s), 31), Some(2));
        assert_eq!(bar_index(&bars(&s), 44), None);
    }

    #[test]
    fn a_note_far_in_the_future_does_not_allocate_without_bound() {
        let s = score_until(1 << 40, &[]);
        assert_eq!(bars(&s).len(), MAX_BARS);
    }

    #[test]
    fn the_sweep_finds_exactly_the_overlapping_notes() {
        let n = |s, d| Note::new(Pitch::new(60).unwrap(), Velocity::new(64).unwrap(), s, d);
        // Spans 0..4, 4..8, 8..12; notes 0..6, 5..6, 7..12 (sorted by start), 20..21.
        let notes = [n(0, 6), n(5, 1), n(7, 5), n(20, 1)];
        let mut seen = Vec::new();
        for_each_span(&notes, &[(0, 4), (4, 8), (8, 12)], |i, active| {
            seen.push((i, active.iter().map(|x| x.start).collect::<Vec<_>>()));
        });
        assert_eq!(seen, [(0, vec![0]), (1, vec![0, 5, 7]), (2, vec![7])]);
    }

    #[test]
    fn six_eight_has_six_eighth_note_beats() {
        let s = score_until(24, &[(0, 6, 8)]);
        let b = bars(&s);
        assert_eq!((b[0].end, b[0].beat_ticks(4)), (12, 2));
        assert_eq!(b.len(), 2);
        assert!(bars(&Score::new(480)).is_empty());
    }
}
