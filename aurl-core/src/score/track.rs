//! A track: the notes and controller data of one instrument on one channel.

use serde::{Deserialize, Serialize};

use super::events::{ControlChange, Note, PitchBend};
use super::values::{Channel, Program, Tick};

/// The notes and performance data of one instrument.
///
/// When reading MIDI, a track chunk that plays several channels or programs becomes several
/// `Track`s, one per (channel, program), so every `Track` is a single instrument.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Track {
    /// The track name as stored in the file (raw bytes; see [`Track::name_lossy`]).
    pub name: Vec<u8>,
    /// General MIDI program (instrument). Ignored by players for drum tracks.
    pub program: Program,
    /// Whether this is a percussion track (General MIDI channel 10).
    pub is_drum: bool,
    /// The MIDI channel the track was read from, or should be written to when free.
    pub channel: Channel,
    /// Notes in onset order.
    pub notes: Vec<Note>,
    /// Controller changes (sustain pedal, volume, …) in time order.
    pub controls: Vec<ControlChange>,
    /// Pitch-bend changes in time order.
    pub pitch_bends: Vec<PitchBend>,
}

impl Track {
    /// An empty piano track (program 0, channel 0) with the given name.
    #[must_use]
    pub fn new(name: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// An empty drum track on General MIDI channel 10.
    #[must_use]
    pub fn drums(name: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            is_drum: true,
            channel: Channel::DRUMS,
            ..Self::default()
        }
    }

    /// The name as UTF-8, with invalid sequences replaced by U+FFFD.
    #[must_use]
    pub fn name_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }

    /// The last tick at which anything in the track happens (note ends included).
    #[must_use]
    pub fn end_tick(&self) -> Tick {
        let notes = self.notes.iter().map(Note::end).max().unwrap_or(0);
        let controls = self.controls.iter().map(|c| c.tick).max().unwrap_or(0);
        let bends = self.pitch_bends.iter().map(|b| b.tick).max().unwrap_or(0);
        notes.max(controls).max(bends)
    }

    /// Sorts notes by onset and controller/bend events by tick. Stable: events at the same
    /// tick keep their relative order, which matters for MIDI (e.g. pedal then note).
    pub fn sort(&mut self) {
        self.notes.sort_by_key(|n| n.start);
        self.controls.sort_by_key(|c| c.tick);
        self.pitch_bends.sort_by_key(|b| b.tick);
    }

    /// Re-pairs overlapping notes of the same pitch the way a MIDI reader pairs note-ons
    /// with note-offs: first in, first out. Within one pitch, the k-th onset gets the k-th
    /// earliest end. Afterwards the track is exactly what a MIDI round trip returns.
    ///
    /// The order of `notes` is left as it is.
    pub fn pair_overlaps_fifo(&mut self) {
        // Indices of notes per pitch, in onset order; only pitches with an overlap change.
        let mut by_pitch: Vec<Vec<usize>> = vec![Vec::new(); 128];
        for (i, n) in self.notes.iter().enumerate() {
            by_pitch[usize::from(n.pitch.get())].push(i);
        }
        let mut ends: Vec<Tick> = Vec::new();
        for indices in by_pitch.iter_mut().filter(|v| v.len() > 1) {
            // Onset order (stable, so equal onsets keep their order in `notes`).
            indices.sort_by_key(|&i| self.notes[i].start);
            ends.clear();
            ends.extend(indices.iter().map(|&i| self.notes[i].end()));
            if ends.is_sorted() {
                continue;
            }
            ends.sort_unstable();
            for (&i, &end) in indices.iter().zip(&ends) {
                let note = &mut self.notes[i];
                // The k-th smallest end is never before the k-th smallest start.
                note.duration = end - note.start;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pitch, Velocity};

    fn note(pitch: u8, start: Tick, duration: Tick) -> Note {
        Note::new(
            Pitch::new(pitch).unwrap(),
            Velocity::new(64).unwrap(),
            start,
            duration,
        )
    }

    #[test]
    fn nested_same_pitch_notes_are_repaired_first_in_first_out() {
        let mut t = Track::new("t");
        t.notes = vec![note(60, 0, 20), note(60, 5, 5), note(62, 1, 100)];
        t.pair_overlaps_fifo();
        assert_eq!(
            t.notes,
            vec![note(60, 0, 10), note(60, 5, 15), note(62, 1, 100)]
        );
    }

    #[test]
    fn fifo_pairing_works_on_unsorted_notes() {
        let mut t = Track::new("t");
        t.notes = vec![note(60, 5, 5), note(60, 0, 20)];
        t.pair_overlaps_fifo();
        assert_eq!(t.notes, vec![note(60, 5, 15), note(60, 0, 10)]);
    }

    #[test]
    fn end_tick_counts_controls_and_bends() {
        let mut t = Track::new("t");
        t.notes.push(note(60, 0, 10));
        t.pitch_bends.push(PitchBend { tick: 30, value: 5 });
        assert_eq!(t.end_tick(), 30);
    }
}
