use std::path::PathBuf;

use thiserror::Error;

use crate::midi::Problem;

/// Errors of the data layer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a Standard MIDI File (no `MThd` header where one must be, nor a
    /// RIFF `RMID` wrapper around one). Nothing was read.
    #[error("not a MIDI file: expected `MThd` or `RIFF` at byte 0, found \"{}\"", found.escape_ascii())]
    NotMidi {
        /// The first bytes of the input (up to four).
        found: Vec<u8>,
    },
    /// Strict mode met a violation of the file-format specification. Reading in lenient mode
    /// repairs it; ignoring it silently could misplace or lose notes.
    #[error("malformed MIDI: {0}")]
    Malformed(Problem),
    /// The input exceeds one of the [`ReadLimits`](crate::ReadLimits); reading stopped before
    /// using more memory or time than the limits allow.
    #[error(
        "{what} exceeds the limit: {value} > {limit} (raise `ReadLimits::{field}` to allow it)"
    )]
    LimitExceeded {
        /// Which quantity.
        what: &'static str,
        /// The name of the limit's field.
        field: &'static str,
        /// The value met (or a lower bound of it).
        value: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The score cannot be written as MIDI (for instance a silence longer than a MIDI delta
    /// time can express, or more tracks than a header can count).
    #[error("cannot write MIDI: {0}")]
    Unwritable(String),
    /// A preprocessing or augmentation setting is invalid; `field` names it as in the TOML
    /// file (e.g. `quantize.strength`).
    #[error("invalid config: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An epoch of training windows has none (see [`crate::windows::DataOrder`]).
    #[error("no training windows in epoch {epoch}")]
    NoWindows {
        /// The epoch (from 0).
        epoch: u64,
    },
    /// An epoch of training windows pads with another id than the run's.
    #[error("epoch {epoch} pads with id {found}, the run with {expected}")]
    PaddingChanged {
        /// The epoch (from 0).
        epoch: u64,
        /// The epoch's padding id.
        found: aurl_core::tokenize::TokenId,
        /// The run's padding id.
        expected: aurl_core::tokenize::TokenId,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
