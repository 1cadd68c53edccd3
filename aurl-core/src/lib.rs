//! # aurl-core — the musical domain of Aurl
//!
//! Everything here is plain Rust with no machine-learning dependency:
//!
//! * [`Score`], [`Track`] and [`Note`]: the one in-memory form of music, in integer ticks.
//!   Newtypes ([`Pitch`], [`Velocity`], [`Channel`], [`Program`], [`ControlValue`]) make
//!   invalid MIDI values unrepresentable.
//! * [`TempoMap`]: exact tick ↔ second conversion across any number of tempo changes.
//! * Score operations: resampling to another resolution, merging and splitting tracks,
//!   sorting into the canonical order that a MIDI round trip produces.
//!
//! ```
//! use aurl_core::{Note, Pitch, Score, Track, Velocity};
//!
//! let mut score = Score::new(480);
//! let mut piano = Track::new("Piano");
//! piano.notes.push(Note::new(Pitch::new(60)?, Velocity::new(90)?, 0, 480));
//! score.tracks.push(piano);
//! assert_eq!(score.note_count(), 1);
//! assert_eq!(score.duration_ticks(), 480);
//! // The default tempo is 120 BPM: one quarter note lasts half a second.
//! assert!((score.duration_seconds() - 0.5).abs() < 1e-12);
//! # Ok::<(), aurl_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
mod error;
pub mod metrics;
pub mod score;
mod tempo_map;
pub mod tokenize;

pub use error::Error;
pub use score::{
    Channel, ControlChange, ControlValue, Family, KeySignature, Note, Pitch, PitchBend, Program,
    Score, Tempo, TextEvent, TextKind, Tick, TimeSignature, Track, Velocity,
};
pub use tempo_map::TempoMap;
