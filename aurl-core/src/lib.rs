//! # aurl-core — the musical domain of Aurl
//!
//! Plain Rust with no machine-learning dependency. This page is the guide: what each part
//! is for and where to start; every module has its own examples.
//!
//! ## Scores
//!
//! * [`Score`], [`Track`] and [`Note`]: the one in-memory form of music, in integer ticks.
//!   Newtypes ([`Pitch`], [`Velocity`], [`Channel`], [`Program`], [`ControlValue`]) make
//!   invalid MIDI values unrepresentable.
//! * [`TempoMap`]: exact tick ↔ second conversion across any number of tempo changes.
//! * Score operations ([`score`]): resampling to another resolution, merging and splitting
//!   tracks, sorting into the canonical order that a MIDI round trip produces.
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
//!
//! ## Tokenizers
//!
//! [`tokenize`] turns scores into token ids and back. A [`tokenize::Scheme`] — REMI (bars and
//! positions), TSD (time shifts and durations) or MIDI-like events — and one
//! [`tokenize::TokenizerConfig`] (the time grid, velocity bins, tempo and time-signature
//! tokens, chords, rests, programs, `voices` to keep the parts of one instrument apart)
//! define a [`tokenize::Vocabulary`] with stable ids, saved as versioned JSON. Every scheme
//! has one normal form: `decode(encode(score)) == quantize(score)`, and decoding is total (any
//! id sequence decodes; what had to be skipped is counted). [`tokenize::Tokenizer::encode_streams`]
//! gives one sequence per instrument instead.
//!
//! ## The grammar
//!
//! [`tokenize::Grammar`] is the automaton of a vocabulary's valid sequences: for any prefix it
//! knows which ids may come next ([`tokenize::Grammar::allowed`], a [`tokenize::TokenMask`]). One
//! implementation serves training (the grammar loss in `aurl-model`), sampling (constraint
//! masks in `aurl-sampling`) and evaluation ([`tokenize::Grammar::validate`]: error and
//! note-pairing rates; [`tokenize::Grammar::repair`] makes any sequence valid).
//!
//! ```
//! use aurl_core::tokenize::{Grammar, Scheme, TokenizerConfig};
//! use aurl_core::{Note, Pitch, Score, Track, Velocity};
//!
//! let mut score = Score::new(480);
//! let mut piano = Track::new("piano");
//! piano.notes.push(Note::new(Pitch::new(60)?, Velocity::new(80)?, 0, 480));
//! score.tracks.push(piano);
//! let remi = Scheme::Remi.tokenizer(&TokenizerConfig::default())?;
//! let tokens = remi.encode(&score)?.framed(remi.vocab());
//! let grammar = Grammar::new(remi.vocab());
//! assert_eq!(grammar.validate(&tokens.ids).error_rate, 0.0);
//! // A sequence cut mid-note is invalid; repair closes it.
//! let cut = &tokens.ids[..tokens.ids.len() - 2];
//! let (repaired, _) = grammar.repair(cut);
//! assert_eq!(grammar.validate(&repaired).error_rate, 0.0);
//! # Ok::<(), aurl_core::Error>(())
//! ```
//!
//! ## Judging music
//!
//! * [`metrics`]: MusPy's and MuseGAN's metrics on scores, token-level diversity and
//!   repetition, the n-gram baseline ([`metrics::NgramModel`]) that bits per note are
//!   compared with, and plagiarism checks against a corpus ([`metrics::MelodyIndex`]).
//! * [`analysis`]: chords with inversions, key estimation with modulations, melody lines,
//!   motifs and form.
//!
//! ## Seeds
//!
//! [`rng::SeedRng`] is the one seeded generator of the workspace (SplitMix64): augmentation,
//! the order of training windows, the VAE's noise and sampling all draw from it, so a seed
//! means the same draws in every release.
//!
//! Errors are one [`Error`] type; nothing here panics on bad input.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
mod error;
pub mod metrics;
pub mod rng;
pub mod score;
mod tempo_map;
pub mod tokenize;

pub use error::Error;
pub use score::{
    Channel, ControlChange, ControlValue, Family, KeySignature, Note, Pitch, PitchBend, Program,
    Score, Tempo, TextEvent, TextKind, Tick, TimeSignature, Track, Velocity,
};
pub use tempo_map::TempoMap;

/// The README's quick start, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
