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
    /// A tokenizer configuration value is invalid; `field` names it as in the TOML file.
    #[error("invalid tokenizer config: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field, e.g. `beat_res[1].positions_per_beat`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A vocabulary (e.g. from a checkpoint) gives ids another meaning than the one expected:
    /// decoding with it would produce wrong music.
    #[error("vocabulary mismatch: expected {expected}, found {found}")]
    VocabularyMismatch {
        /// What was expected (hash or format version).
        expected: String,
        /// What was found.
        found: String,
    },
    /// A score spans more bars than a token sequence may (usually a file whose ticks span
    /// centuries); encoding it would exhaust memory.
    #[error("the score spans about {bars} bars; at most {limit} can be encoded")]
    SequenceTooLong {
        /// Bars the score would need (approximate).
        bars: u64,
        /// The limit.
        limit: u64,
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
