//! The score model: the one in-memory form of music in Aurl.

mod events;
mod family;
mod ops;
mod pedal;
mod track;
mod values;

use serde::{Deserialize, Serialize};

pub use events::{
    ControlChange, KeySignature, Note, PitchBend, Tempo, TextEvent, TextKind, TimeSignature,
};
pub use family::Family;
pub use track::Track;
pub use values::{Channel, ControlValue, Pitch, Program, Tick, Velocity};

use crate::TempoMap;

/// A piece of music: global tempo/meter/key maps plus one [`Track`] per instrument, all in
/// integer ticks at `ticks_per_quarter` resolution.
///
/// Global event lists are kept in time order; events at the same tick keep file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// Resolution: ticks per quarter note (MIDI "division"), 1..=32767.
    pub ticks_per_quarter: u16,
    /// The score's title (the name of the first track chunk when it carries no notes).
    pub title: Vec<u8>,
    /// Tempo changes. Empty means 120 BPM throughout.
    pub tempos: Vec<Tempo>,
    /// Time-signature changes. Empty means 4/4 throughout.
    pub time_signatures: Vec<TimeSignature>,
    /// Key-signature changes.
    pub key_signatures: Vec<KeySignature>,
    /// Lyrics, markers, copyright and other text, from any track.
    pub texts: Vec<TextEvent>,
    /// The instruments.
    pub tracks: Vec<Track>,
}

impl Default for Score {
    fn default() -> Self {
        Self::new(480)
    }
}

impl Score {
    /// The largest resolution a MIDI header can state (15 bits).
    pub const MAX_TICKS_PER_QUARTER: u16 = 0x7FFF;

    /// An empty score at the given resolution (clamped to 1..=32767).
    #[must_use]
    pub fn new(ticks_per_quarter: u16) -> Self {
        Self {
            ticks_per_quarter: ticks_per_quarter.clamp(1, Self::MAX_TICKS_PER_QUARTER),
            title: Vec::new(),
            tempos: Vec::new(),
            time_signatures: Vec::new(),
            key_signatures: Vec::new(),
            texts: Vec::new(),
            tracks: Vec::new(),
        }
    }

    /// Total number of notes over all tracks.
    #[must_use]
    pub fn note_count(&self) -> usize {
        self.tracks.iter().map(|t| t.notes.len()).sum()
    }

    /// The last tick at which anything happens (note ends, controllers, meta events).
    #[must_use]
    pub fn duration_ticks(&self) -> Tick {
        let tracks = self.tracks.iter().map(Track::end_tick).max().unwrap_or(0);
        let tempos = self.tempos.iter().map(|t| t.tick).max().unwrap_or(0);
        let sigs = self
            .time_signatures
            .iter()
            .map(|t| t.tick)
            .max()
            .unwrap_or(0);
        let keys = self
            .key_signatures
            .iter()
            .map(|k| k.tick)
            .max()
            .unwrap_or(0);
        let texts = self.texts.iter().map(|t| t.tick).max().unwrap_or(0);
        tracks.max(tempos).max(sigs).max(keys).max(texts)
    }

    /// The tick ↔ seconds map of this score.
    #[must_use]
    pub fn tempo_map(&self) -> TempoMap {
        TempoMap::new(self.ticks_per_quarter, &self.tempos)
    }

    /// Duration in seconds, following the tempo changes.
    #[must_use]
    pub fn duration_seconds(&self) -> f64 {
        self.tempo_map().seconds(self.duration_ticks())
    }

    /// The title as UTF-8, with invalid sequences replaced by U+FFFD.
    #[must_use]
    pub fn title_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.title)
    }
}
