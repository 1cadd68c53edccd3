use thiserror::Error;

/// Errors of the musical domain: a value outside its MIDI range or an operation asked of a
/// score that cannot honour it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A numeric value is outside the range its type allows (e.g. a pitch of 128).
    /// Accepting it would produce MIDI that no player reads the same way.
    #[error("{what} {value} is out of range ({min}..={max})")]
    OutOfRange {
        /// Which quantity (`"pitch"`, `"velocity"`, …).
        what: &'static str,
        /// The value that was given.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A track index does not exist in the score.
    #[error("track index {index} does not exist (score has {len} tracks)")]
    NoSuchTrack {
        /// The requested index.
        index: usize,
        /// Number of tracks in the score.
        len: usize,
    },
}
