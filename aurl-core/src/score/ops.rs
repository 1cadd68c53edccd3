//! Whole-score operations: ordering, canonical form, resolution change, track merge/split.

use super::{Note, Score, Tick, Track};
use crate::{Error, Pitch};

/// `tick * to / from`, rounded half up, computed without overflow.
fn rescale(tick: Tick, from: u16, to: u16) -> Tick {
    let num = u128::from(tick) * u128::from(to) * 2 + u128::from(from);
    let q = num / (u128::from(from) * 2);
    Tick::try_from(q).unwrap_or(Tick::MAX)
}

impl Score {
    /// Sorts every event list by tick (stable, so same-tick events keep their order).
    pub fn sort(&mut self) {
        self.tempos.sort_by_key(|e| e.tick);
        self.time_signatures.sort_by_key(|e| e.tick);
        self.key_signatures.sort_by_key(|e| e.tick);
        self.texts.sort_by_key(|e| e.tick);
        for t in &mut self.tracks {
            t.sort();
        }
    }

    /// Puts the score in the canonical form a MIDI round trip yields: everything sorted, and
    /// overlapping notes of the same pitch paired first in, first out
    /// (see [`Track::pair_overlaps_fifo`]). For a canonical score, writing MIDI and reading
    /// it back gives the same score.
    pub fn canonicalize(&mut self) {
        self.sort();
        for t in &mut self.tracks {
            t.pair_overlaps_fifo();
        }
    }

    /// The same music at another resolution. Every tick is rescaled and rounded to the
    /// nearest new tick; a note that had a length keeps at least one tick, so no note
    /// vanishes when the resolution drops.
    #[must_use]
    pub fn resampled(&self, ticks_per_quarter: u16) -> Score {
        let to = ticks_per_quarter.clamp(1, Self::MAX_TICKS_PER_QUARTER);
        let from = self.ticks_per_quarter;
        if to == from {
            return self.clone();
        }
        let r = |t: Tick| rescale(t, from, to);
        let mut out = self.clone();
        out.ticks_per_quarter = to;
        out.tempos.iter_mut().for_each(|e| e.tick = r(e.tick));
        out.time_signatures
            .iter_mut()
            .for_each(|e| e.tick = r(e.tick));
        out.key_signatures
            .iter_mut()
            .for_each(|e| e.tick = r(e.tick));
        out.texts.iter_mut().for_each(|e| e.tick = r(e.tick));
        for t in &mut out.tracks {
            for n in &mut t.notes {
                let start = r(n.start);
                let end = r(n.end());
                n.duration = if n.duration > 0 {
                    (end - start).max(1)
                } else {
                    0
                };
                n.start = start;
            }
            t.controls.iter_mut().for_each(|e| e.tick = r(e.tick));
            t.pitch_bends.iter_mut().for_each(|e| e.tick = r(e.tick));
        }
        out
    }

    /// Merges the tracks at `indices` into the first of them (its name, program and channel
    /// are kept); the others are removed. Events are re-sorted by time.
    ///
    /// # Errors
    /// [`Error::NoSuchTrack`] if an index is out of bounds (the score is left unchanged).
    pub fn merge_tracks(&mut self, indices: &[usize]) -> Result<(), Error> {
        let len = self.tracks.len();
        if let Some(&index) = indices.iter().find(|&&i| i >= len) {
            return Err(Error::NoSuchTrack { index, len });
        }
        let mut sorted: Vec<usize> = indices.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let Some((&first, rest)) = indices.first().map(|f| (f, &sorted)) else {
            return Ok(());
        };
        let mut taken: Vec<Track> = Vec::new();
        for &i in rest.iter().rev().filter(|&&i| i != first) {
            taken.push(self.tracks.remove(i));
        }
        let target_index = first - rest.iter().filter(|&&i| i < first).count();
        let target = &mut self.tracks[target_index];
        for t in taken.into_iter().rev() {
            target.notes.extend(t.notes);
            target.controls.extend(t.controls);
            target.pitch_bends.extend(t.pitch_bends);
        }
        target.sort();
        Ok(())
    }

    /// Splits a track by pitch: notes below `split` move to a new track inserted right after
    /// it (named `"<name> (low)"`, same program and channel, no controllers), the rest stay.
    /// The usual way to separate a piano's hands.
    ///
    /// # Errors
    /// [`Error::NoSuchTrack`] if `index` is out of bounds.
    pub fn split_track_at_pitch(&mut self, index: usize, split: Pitch) -> Result<(), Error> {
        let len = self.tracks.len();
        let track = self
            .tracks
            .get_mut(index)
            .ok_or(Error::NoSuchTrack { index, len })?;
        let (low, high): (Vec<Note>, Vec<Note>) = track.notes.iter().partition(|n| n.pitch < split);
        track.notes = high;
        let mut name = track.name.clone();
        name.extend_from_slice(b" (low)");
        let low_track = Track {
            name,
            notes: low,
            controls: Vec::new(),
            pitch_bends: Vec::new(),
            ..track.clone()
        };
        self.tracks.insert(index + 1, low_track);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ControlChange, ControlValue, Tempo, Velocity};

    fn note(pitch: u8, start: Tick, duration: Tick) -> Note {
        Note::new(
            Pitch::new(pitch).unwrap(),
            Velocity::new(80).unwrap(),
            start,
            duration,
        )
    }

    #[test]
    fn resampling_halves_ticks_and_keeps_short_notes_alive() {
        let mut s = Score::new(960);
        let mut t = Track::new("a");
        t.notes = vec![note(60, 960, 480), note(62, 1921, 1), note(64, 10, 0)];
        s.tracks.push(t);
        s.tempos.push(Tempo::new(1920, 400_000).unwrap());
        let r = s.resampled(480);
        assert_eq!(r.ticks_per_quarter, 480);
        assert_eq!(
            r.tracks[0].notes,
            vec![note(60, 480, 240), note(62, 961, 1), note(64, 5, 0)]
        );
        assert_eq!(r.tempos[0].tick, 960);
        assert!((r.duration_seconds() - s.duration_seconds()).abs() < 0.002);
    }

    #[test]
    fn rescale_rounds_half_up_without_overflow() {
        assert_eq!(rescale(3, 2, 1), 2);
        assert_eq!(rescale(1, 4, 1), 0);
        assert_eq!(rescale(u64::MAX, 1, 1), u64::MAX);
        assert_eq!(rescale(u64::MAX, 1, 2), u64::MAX, "saturates");
    }

    #[test]
    fn merging_tracks_interleaves_their_events_in_time() {
        let mut s = Score::new(480);
        let mut a = Track::new("a");
        a.notes = vec![note(60, 0, 10), note(60, 20, 10)];
        let mut b = Track::new("b");
        b.notes = vec![note(40, 10, 10)];
        b.controls.push(ControlChange {
            tick: 5,
            controller: ControlValue::new(64).unwrap(),
            value: ControlValue::new(127).unwrap(),
        });
        let c = Track::new("c");
        s.tracks = vec![c, a, b];
        s.merge_tracks(&[1, 2]).unwrap();
        assert_eq!(s.tracks.len(), 2);
        assert_eq!(s.tracks[1].name, b"a");
        let starts: Vec<Tick> = s.tracks[1].notes.iter().map(|n| n.start).collect();
        assert_eq!(starts, vec![0, 10, 20]);
        assert_eq!(s.tracks[1].controls.len(), 1);
        assert_eq!(
            s.merge_tracks(&[0, 7]),
            Err(Error::NoSuchTrack { index: 7, len: 2 })
        );
    }

    #[test]
    fn merging_into_a_later_index_keeps_that_track_as_target() {
        let mut s = Score::new(480);
        s.tracks = vec![Track::new("x"), Track::new("y"), Track::new("z")];
        s.tracks[0].notes.push(note(50, 0, 1));
        s.merge_tracks(&[2, 0]).unwrap();
        assert_eq!(s.tracks.len(), 2);
        assert_eq!(s.tracks[1].name, b"z");
        assert_eq!(s.tracks[1].notes.len(), 1);
    }

    #[test]
    fn splitting_at_middle_c_separates_the_hands() {
        let mut s = Score::new(480);
        let mut t = Track::new("piano");
        t.notes = vec![note(48, 0, 10), note(72, 0, 10), note(60, 5, 1)];
        s.tracks.push(t);
        s.split_track_at_pitch(0, Pitch::MIDDLE_C).unwrap();
        assert_eq!(s.tracks[0].notes.len(), 2);
        assert_eq!(s.tracks[1].notes, vec![note(48, 0, 10)]);
        assert_eq!(s.tracks[1].name_lossy(), "piano (low)");
        assert!(s.split_track_at_pitch(5, Pitch::MIDDLE_C).is_err());
    }
}
