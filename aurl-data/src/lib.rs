//! # aurl-data — from bytes and files to scores, and back
//!
//! This page is the guide: reading and writing MIDI, then what a training pipeline does
//! with scores — preprocessing, augmentation, corpora and splits, the token cache — and the
//! tools around them. Every module has its own examples.
//!
//! ## Reading MIDI
//!
//! [`read_midi`] turns Standard MIDI File bytes (formats 0, 1 and 2, RIFF `RMID` wrappers,
//! metrical or SMPTE timing) into an [`aurl_core::Score`] plus a [`ParseReport`]:
//!
//! * [`Mode::Strict`] rejects any violation of the specification with an
//!   [`Error::Malformed`] naming the byte offset and track chunk.
//! * [`Mode::Lenient`] repairs what it can — truncated tracks, wrong chunk lengths, missing
//!   end-of-track events, stray data bytes, running status after meta events, … — keeps every
//!   note it can recover before and after the damage, and counts each repair by kind.
//!
//! Both modes keep memory bounded by the input size and the [`ReadLimits`].
//!
//! ```
//! use aurl_data::{read_midi, Mode, RepairKind};
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/malformed_truncated_track.mid");
//! let bytes = std::fs::read(path)?;
//! assert!(read_midi(&bytes, Mode::Strict).is_err());
//! let (score, report) = read_midi(&bytes, Mode::Lenient)?;
//! assert!(score.note_count() > 0);
//! assert_eq!(report.count(RepairKind::TruncatedEvent), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Writing MIDI
//!
//! [`write_midi`] produces a format-1 file at a chosen resolution (480 ticks per quarter by
//! default) with a conductor track and one track per instrument; [`write_midi_file`] writes
//! it atomically. Reading back what was written gives the same score
//! ([`aurl_core::Score::canonicalize`] describes the one normalisation MIDI imposes).
//!
//! ## Preprocessing and augmentation
//!
//! [`preprocess`] cleans a score before tokenization — sustain pedal, track filtering and
//! merging, duplicate notes, pitch range, quantization, a polyphony limit, melody extraction,
//! velocity normalisation — each step with a config and a report of what it changed.
//! [`augment`] makes seeded variations (transposition, time stretch, velocity curves,
//! instrument substitution, swing, humanization) as a pure function of (config, seed, epoch,
//! sample): a resumed run sees exactly the data it would have seen.
//!
//! ## Corpora, splits and the token cache
//!
//! [`corpus`] reads a folder of MIDI files into scores or tokens with a deterministic
//! train/valid split ([`corpus::SplitRule`]: by hash, or from a split file) and reports
//! unreadable files instead of failing. [`cache`] stores tokenized files as compact ids in
//! sharded, checksummed, memory-mapped files keyed by content, so a second run starts in
//! seconds and an edited file is the only one tokenized again.
//!
//! ## Training windows
//!
//! [`windows`] cuts token sequences into the fixed-length windows a model trains on
//! (starting at bars, optionally re-emitting the header in force so each window stands on
//! its own, or cut on demand from the memory-mapped cache) and visits them in a seeded,
//! resumable order ([`windows::DataOrder`]); `aurl-model` makes tensors of its batches.
//!
//! ## Tools
//!
//! [`audit`] reads a folder tree of MIDI files in parallel and summarises what it found
//! (the engine behind `cargo run --example audit`); [`walk`] finds MIDI files; [`audio`]
//! renders a score to WAV through a SoundFont.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod audio;
pub mod audit;
pub mod augment;
pub mod cache;
pub mod corpus;
mod error;
pub mod midi;
pub mod preprocess;
pub mod walk;
pub mod windows;

pub use error::Error;
pub use midi::{
    Mode, ParseReport, Problem, ReadLimits, RepairKind, WriteOptions, allocate_channels, read_midi,
    read_midi_file, read_midi_with_limits, write_atomically, write_midi, write_midi_file,
};

/// The README's quick start, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
