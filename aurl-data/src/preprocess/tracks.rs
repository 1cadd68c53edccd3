//! Track-level cleaning: filtering and merging tracks, removing duplicate notes, clamping
//! pitches into a range.

use aurl_core::{Family, Pitch, Score, Track};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Which tracks [`filter_tracks`] keeps, and whether tracks of one program are merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackFilter {
    /// Pitched tracks whose program is in one of these General MIDI families are kept; an
    /// empty list keeps every family.
    pub families: Vec<Family>,
    /// Whether drum tracks are kept.
    pub drums: bool,
    /// Tracks with fewer notes are removed (0 keeps empty tracks too).
    pub min_notes: usize,
    /// Merge the pitched tracks that share a program (and the drum tracks) into one track
    /// each, the way a one-stream tokenizer sees them.
    pub merge_same_program: bool,
}

impl Default for TrackFilter {
    fn default() -> Self {
        Self {
            families: Vec::new(),
            drums: true,
            min_notes: 1,
            merge_same_program: false,
        }
    }
}

/// Applies `filter` to `score`; returns how many tracks were removed (merged tracks count
/// as removed).
///
/// ```
/// use aurl_core::{Family, Note, Pitch, Program, Score, Track, Velocity};
/// use aurl_data::preprocess::{filter_tracks, TrackFilter};
/// let mut score = Score::new(480);
/// let note = Note::new(Pitch::MIDDLE_C, Velocity::saturating(64), 0, 480);
/// let mut strings = Track::new("violin");
/// strings.program = Program::new(40)?;
/// strings.notes.push(note);
/// let mut drums = Track::drums("kit");
/// drums.notes.push(note);
/// score.tracks = vec![strings, drums, Track::new("empty")];
/// let filter = TrackFilter { families: vec![Family::Strings], drums: false, ..TrackFilter::default() };
/// assert_eq!(filter_tracks(&mut score, &filter), 2);
/// assert_eq!(score.tracks[0].name_lossy(), "violin");
/// # Ok::<(), aurl_core::Error>(())
/// ```
pub fn filter_tracks(score: &mut Score, filter: &TrackFilter) -> usize {
    let before = score.tracks.len();
    score.tracks.retain(|t| {
        let family_ok = t.is_drum
            || filter.families.is_empty()
            || filter.families.contains(&t.program.family());
        let drums_ok = filter.drums || !t.is_drum;
        family_ok && drums_ok && t.notes.len() >= filter.min_notes
    });
    if filter.merge_same_program {
        merge_same_program(score);
    }
    before - score.tracks.len()
}

/// Merges tracks with the same (drum flag, program) into the first of them.
fn merge_same_program(score: &mut Score) {
    let mut i = 0;
    while i < score.tracks.len() {
        let key = (score.tracks[i].is_drum, score.tracks[i].program);
        let group: Vec<usize> = (i..score.tracks.len())
            .filter(|&k| (score.tracks[k].is_drum, score.tracks[k].program) == key)
            .collect();
        if group.len() > 1 {
            // Indices are valid by construction; merging cannot fail.
            let _ = score.merge_tracks(&group);
        }
        i += 1;
    }
}

/// Removes notes that repeat another note of the same track with the same pitch and onset,
/// keeping the longest (then loudest) of each such group. Returns how many were removed.
pub fn dedup_notes(track: &mut Track) -> usize {
    let before = track.notes.len();
    track.notes.sort_by(|a, b| {
        (a.start, a.pitch, b.duration, b.velocity).cmp(&(b.start, b.pitch, a.duration, a.velocity))
    });
    track
        .notes
        .dedup_by(|later, first| later.start == first.start && later.pitch == first.pitch);
    before - track.notes.len()
}

/// What [`clamp_pitches`] does with a note outside the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfRange {
    /// Remove it.
    Drop,
    /// Move it by whole octaves into the range (dropped if the range spans less than an
    /// octave and no octave fits).
    #[default]
    Fold,
}

/// A pitch range for pitched (non-drum) tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PitchRange {
    /// Lowest allowed pitch.
    pub low: u8,
    /// Highest allowed pitch.
    pub high: u8,
    /// What happens to notes outside.
    pub out_of_range: OutOfRange,
}

impl Default for PitchRange {
    /// The piano's 88 keys (A0–C8), the tokenizers' default range.
    fn default() -> Self {
        Self {
            low: 21,
            high: 108,
            out_of_range: OutOfRange::Fold,
        }
    }
}

impl PitchRange {
    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field (under `pitch_range.`).
    pub fn validate(&self) -> Result<(), Error> {
        if self.low > self.high || self.high > 127 {
            return Err(Error::InvalidConfig {
                field: "pitch_range.high".into(),
                reason: format!(
                    "must be in low..=127 (low = {}), got {}",
                    self.low, self.high
                ),
            });
        }
        Ok(())
    }
}

/// What [`clamp_pitches`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ClampReport {
    /// Notes moved up by octaves.
    pub raised: usize,
    /// Notes moved down by octaves.
    pub lowered: usize,
    /// Notes removed.
    pub dropped: usize,
}

/// Brings the notes of pitched tracks into `range` (drum notes name instruments, not
/// pitches, and are left alone).
///
/// # Errors
/// [`Error::InvalidConfig`] for an invalid range (the score is unchanged).
pub fn clamp_pitches(score: &mut Score, range: &PitchRange) -> Result<ClampReport, Error> {
    range.validate()?;
    let mut report = ClampReport::default();
    let (low, high) = (range.low, range.high);
    for track in score.tracks.iter_mut().filter(|t| !t.is_drum) {
        track.notes.retain_mut(|n| {
            let p = n.pitch.get();
            if (low..=high).contains(&p) {
                return true;
            }
            if range.out_of_range == OutOfRange::Fold {
                let mut q = i32::from(p);
                while q < i32::from(low) {
                    q += 12;
                }
                while q > i32::from(high) {
                    q -= 12;
                }
                if (i32::from(low)..=i32::from(high)).contains(&q) {
                    if q > i32::from(p) {
                        report.raised += 1;
                    } else {
                        report.lowered += 1;
                    }
                    n.pitch = Pitch::saturating(q as u8);
                    return true;
                }
            }
            report.dropped += 1;
            false
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use aurl_core::Program;

    use super::*;
    use crate::preprocess::test_note as note;

    #[test]
    fn duplicates_keep_the_longest_then_loudest() {
        let mut t = Track::new("t");
        t.notes = vec![
            note(60, 50, 0, 100),
            note(60, 90, 0, 100),
            note(60, 10, 0, 300),
            note(62, 10, 0, 50),
        ];
        assert_eq!(dedup_notes(&mut t), 2);
        let kept: Vec<(u8, u8, u64)> = t
            .notes
            .iter()
            .map(|n| (n.pitch.get(), n.velocity.get(), n.duration))
            .collect();
        assert_eq!(kept, vec![(60, 10, 300), (62, 10, 50)]);
    }

    #[test]
    fn folding_moves_by_octaves_and_drums_are_untouched() {
        let mut s = Score::new(480);
        let mut t = Track::new("t");
        // 10 → 22 (raised), 115 → 103 (lowered), 60 stays.
        t.notes = vec![note(10, 64, 0, 1), note(115, 64, 0, 1), note(60, 64, 0, 1)];
        let mut d = Track::drums("d");
        d.notes = vec![note(10, 64, 0, 1)];
        s.tracks = vec![t, d];
        let r = clamp_pitches(&mut s, &PitchRange::default()).unwrap();
        assert_eq!((r.raised, r.lowered, r.dropped), (1, 1, 0));
        let p: Vec<u8> = s.tracks[0].notes.iter().map(|n| n.pitch.get()).collect();
        assert_eq!(p, [22, 103, 60]);
        assert_eq!(s.tracks[1].notes[0].pitch.get(), 10);
        // A five-semitone range C4..=E4: 50 folds to 62; 45 (A) has no octave inside.
        let narrow = PitchRange {
            low: 60,
            high: 64,
            out_of_range: OutOfRange::Fold,
        };
        s.tracks[0].notes = vec![note(50, 64, 0, 1), note(45, 64, 0, 1)];
        let r = clamp_pitches(&mut s, &narrow).unwrap();
        // 50 → 62 fits; 45 → 57 → 69: no octave of A lies in C4..E4, so it is dropped.
        assert_eq!((r.raised, r.dropped), (1, 1));
        let drop = PitchRange {
            out_of_range: OutOfRange::Drop,
            ..PitchRange::default()
        };
        s.tracks[0].notes = vec![note(5, 64, 0, 1)];
        assert_eq!(clamp_pitches(&mut s, &drop).unwrap().dropped, 1);
    }

    #[test]
    fn same_program_tracks_merge_and_short_tracks_go() {
        let mut s = Score::new(480);
        let mut a = Track::new("a");
        a.notes = vec![note(60, 64, 0, 1)];
        let mut b = Track::new("b");
        b.notes = vec![note(62, 64, 5, 1), note(64, 64, 9, 1)];
        let mut c = Track::new("c");
        c.program = Program::saturating(33);
        c.notes = vec![note(40, 64, 0, 1), note(41, 64, 1, 1)];
        s.tracks = vec![a, c, b];
        let filter = TrackFilter {
            min_notes: 1,
            merge_same_program: true,
            ..TrackFilter::default()
        };
        assert_eq!(filter_tracks(&mut s, &filter), 1);
        assert_eq!(s.tracks.len(), 2);
        assert_eq!(s.tracks[0].notes.len(), 3);
        let filter = TrackFilter {
            min_notes: 3,
            ..TrackFilter::default()
        };
        assert_eq!(filter_tracks(&mut s, &filter), 1);
        assert_eq!(s.tracks[0].name_lossy(), "a");
    }
}
