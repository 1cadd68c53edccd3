//! Timed events of a score: notes, controllers, pitch bends, and the global meta events.

use serde::{Deserialize, Serialize};

use super::values::{ControlValue, Pitch, Tick, Velocity};
use crate::Error;

/// One sounding note, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Note {
    /// MIDI note number.
    pub pitch: Pitch,
    /// Attack velocity.
    pub velocity: Velocity,
    /// Onset, in ticks from the start of the score.
    pub start: Tick,
    /// Length in ticks. Zero is allowed: real files contain note-offs on the onset's tick.
    pub duration: Tick,
}

impl Note {
    /// A note from its parts.
    #[must_use]
    pub const fn new(pitch: Pitch, velocity: Velocity, start: Tick, duration: Tick) -> Self {
        Self {
            pitch,
            velocity,
            start,
            duration,
        }
    }

    /// The tick at which the note stops sounding (`start + duration`, saturating).
    #[must_use]
    pub const fn end(&self) -> Tick {
        self.start.saturating_add(self.duration)
    }
}

/// A controller change (MIDI CC), such as sustain pedal (64) or volume (7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ControlChange {
    /// When it happens.
    pub tick: Tick,
    /// Controller number (64 = sustain pedal).
    pub controller: ControlValue,
    /// New value (for the sustain pedal, ≥ 64 means down).
    pub value: ControlValue,
}

impl ControlChange {
    /// The sustain (damper) pedal controller number.
    pub const SUSTAIN: u8 = 64;
}

/// A pitch-bend change. The value is signed and centred on zero: −8192..=8191.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PitchBend {
    /// When it happens.
    pub tick: Tick,
    /// Bend amount, −8192..=8191 (0 = no bend).
    pub value: i16,
}

impl PitchBend {
    /// Smallest bend value.
    pub const MIN: i16 = -8192;
    /// Largest bend value.
    pub const MAX: i16 = 8191;
}

/// A tempo change, as MIDI stores it: microseconds per quarter note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tempo {
    /// When it takes effect.
    pub tick: Tick,
    /// Microseconds per quarter note, 1..=16,777,215 (a 24-bit field in MIDI).
    pub micros_per_quarter: u32,
}

impl Tempo {
    /// The tempo MIDI assumes before any tempo event: 500,000 µs per quarter (120 BPM).
    pub const DEFAULT_MICROS_PER_QUARTER: u32 = 500_000;
    /// The largest tempo value a MIDI file can hold (24 bits).
    pub const MAX_MICROS_PER_QUARTER: u32 = 0xFF_FFFF;

    /// A tempo change from microseconds per quarter note.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when the value is zero or exceeds 24 bits.
    pub fn new(tick: Tick, micros_per_quarter: u32) -> Result<Self, Error> {
        if (1..=Self::MAX_MICROS_PER_QUARTER).contains(&micros_per_quarter) {
            Ok(Self {
                tick,
                micros_per_quarter,
            })
        } else {
            Err(Error::OutOfRange {
                what: "microseconds per quarter",
                value: i64::from(micros_per_quarter),
                min: 1,
                max: i64::from(Self::MAX_MICROS_PER_QUARTER),
            })
        }
    }

    /// A tempo change from beats (quarter notes) per minute, rounded to the nearest microsecond.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when the tempo does not fit MIDI's 24-bit field.
    pub fn from_bpm(tick: Tick, bpm: f64) -> Result<Self, Error> {
        let micros = (60_000_000.0 / bpm).round();
        if !micros.is_finite() || micros < 1.0 || micros > f64::from(Self::MAX_MICROS_PER_QUARTER) {
            return Err(Error::OutOfRange {
                what: "microseconds per quarter",
                value: if micros.is_finite() {
                    micros as i64
                } else {
                    i64::MAX
                },
                min: 1,
                max: i64::from(Self::MAX_MICROS_PER_QUARTER),
            });
        }
        Self::new(tick, micros as u32)
    }

    /// Quarter notes per minute.
    #[must_use]
    pub fn bpm(&self) -> f64 {
        60_000_000.0 / f64::from(self.micros_per_quarter)
    }
}

/// A time-signature change such as 3/4 or 6/8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeSignature {
    /// When it takes effect (normally at a bar line).
    pub tick: Tick,
    /// Beats per bar (the upper number), ≥ 1.
    pub numerator: u8,
    /// Beat unit (the lower number): a power of two, 1..=128.
    pub denominator: u8,
}

impl TimeSignature {
    /// A time signature, checking that the numerator is positive and the denominator a power
    /// of two that MIDI can store (1..=128).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] otherwise.
    pub fn new(tick: Tick, numerator: u8, denominator: u8) -> Result<Self, Error> {
        if numerator == 0 {
            return Err(Error::OutOfRange {
                what: "time-signature numerator",
                value: 0,
                min: 1,
                max: 255,
            });
        }
        if !denominator.is_power_of_two() {
            return Err(Error::OutOfRange {
                what: "time-signature denominator (a power of two)",
                value: i64::from(denominator),
                min: 1,
                max: 128,
            });
        }
        Ok(Self {
            tick,
            numerator,
            denominator,
        })
    }

    /// Length of one bar in ticks at the given resolution.
    #[must_use]
    pub fn bar_ticks(&self, ticks_per_quarter: u16) -> Tick {
        u64::from(ticks_per_quarter) * 4 * u64::from(self.numerator) / u64::from(self.denominator)
    }
}

/// A key-signature change: number of sharps (positive) or flats (negative), and the mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeySignature {
    /// When it takes effect.
    pub tick: Tick,
    /// −7 (seven flats) ..= 7 (seven sharps).
    pub sharps: i8,
    /// Minor mode when true, major when false.
    pub minor: bool,
}

impl KeySignature {
    /// A key signature, clamping `sharps` into −7..=7 (real files contain out-of-range values;
    /// the reader reports when it clamps).
    #[must_use]
    pub fn clamped(tick: Tick, sharps: i8, minor: bool) -> Self {
        Self {
            tick,
            sharps: sharps.clamp(-7, 7),
            minor,
        }
    }
}

/// Which kind of MIDI text meta event a [`TextEvent`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextKind {
    /// Free text (meta 0x01).
    Text,
    /// Copyright notice (meta 0x02).
    Copyright,
    /// Instrument name (meta 0x04).
    InstrumentName,
    /// A syllable of lyrics (meta 0x05).
    Lyric,
    /// A rehearsal mark or section name (meta 0x06).
    Marker,
    /// A cue point (meta 0x07).
    CuePoint,
}

impl TextKind {
    /// The MIDI meta-event type byte.
    #[must_use]
    pub const fn meta_type(self) -> u8 {
        match self {
            Self::Text => 0x01,
            Self::Copyright => 0x02,
            Self::InstrumentName => 0x04,
            Self::Lyric => 0x05,
            Self::Marker => 0x06,
            Self::CuePoint => 0x07,
        }
    }

    /// The kind for a meta-event type byte, if it is a text kind kept by the score
    /// (track names, 0x03, are kept on the track instead).
    #[must_use]
    pub const fn from_meta_type(byte: u8) -> Option<Self> {
        Some(match byte {
            0x01 => Self::Text,
            0x02 => Self::Copyright,
            0x04 => Self::InstrumentName,
            0x05 => Self::Lyric,
            0x06 => Self::Marker,
            0x07 => Self::CuePoint,
            _ => return None,
        })
    }
}

/// Text attached to a moment of the score (lyrics, markers, copyright…).
///
/// The bytes are kept exactly as in the file (MIDI does not fix an encoding; many files use
/// Latin-1 or Shift-JIS). [`TextEvent::text_lossy`] decodes for display.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TextEvent {
    /// When it happens.
    pub tick: Tick,
    /// What kind of text it is.
    pub kind: TextKind,
    /// The raw bytes.
    pub bytes: Vec<u8>,
}

impl TextEvent {
    /// The text as UTF-8, with invalid sequences replaced by U+FFFD.
    #[must_use]
    pub fn text_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempo_from_bpm_round_trips_common_tempi() {
        let t = Tempo::from_bpm(0, 120.0).unwrap();
        assert_eq!(t.micros_per_quarter, 500_000);
        assert!((t.bpm() - 120.0).abs() < 1e-9);
        assert!(Tempo::from_bpm(0, 0.0).is_err());
        assert!(
            Tempo::from_bpm(0, 1.0).is_err(),
            "60 s per quarter exceeds 24 bits"
        );
        assert!(Tempo::new(0, 0).is_err());
    }

    #[test]
    fn time_signature_rejects_non_power_of_two_denominators() {
        assert!(TimeSignature::new(0, 3, 4).is_ok());
        assert!(TimeSignature::new(0, 3, 3).is_err());
        assert!(TimeSignature::new(0, 0, 4).is_err());
        assert_eq!(TimeSignature::new(0, 6, 8).unwrap().bar_ticks(480), 1440);
    }

    #[test]
    fn key_signature_clamps_out_of_range_sharps() {
        assert_eq!(KeySignature::clamped(0, 9, false).sharps, 7);
        assert_eq!(KeySignature::clamped(0, -100, true).sharps, -7);
    }
}
