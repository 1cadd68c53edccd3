//! Decoding for Aurl models: sampling strategies, batched KV-cached generation constrained
//! by the token grammar, and export of the results as scores and MIDI files.
//!
//! ```
//! use aurl_core::tokenize::{Remi, Tokenizer, TokenizerConfig};
//! use aurl_model::TransformerConfig;
//! use aurl_sampling::{GenerationConfig, Generator, Request};
//! use burn::prelude::*;
//!
//! let remi = Remi::new(&TokenizerConfig::default())?;
//! let device = Device::flex();
//! let model = TransformerConfig::tiny(remi.vocab().len()).init(&device)?;
//! let generator = Generator::new(&model, remi.vocab(), GenerationConfig::default())?;
//! let pieces = generator.generate(&[Request { prompt: vec![], max_new_tokens: 40, seed: 1, ..Request::default() }])?;
//! // Even an untrained model writes grammar-valid token sequences under the constraint.
//! assert_eq!(pieces[0].grammar.error_count(), 0);
//! let (score, report) = remi.decode(&pieces[0].tokens);
//! assert_eq!(report.skipped(), 0);
//! # let _ = score;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod beam;
mod clock;
mod conditioned;
mod config;
mod controls;
mod export;
mod generate;
mod notes;
mod schedule;
mod strategy;

pub use beam::BeamConfig;
pub use conditioned::{interpolation_from_midi, interpolation_from_midi_bytes};
pub use config::GenerationConfig;
pub use controls::BarControl;
pub use export::{PieceSummary, piece_midi, prompt_from_midi, prompt_from_midi_bytes, write_piece};
pub use generate::{
    CancelToken, Continuous, Generated, Generator, Request, RowToken, Step, TokenEvent,
};
pub use notes::{StreamNote, StreamStats};
pub use strategy::{Scratch, Strategy};

/// An [`aurl_data::Error`] kept as the source of a [`SamplingError`], shared by its clones
/// and compared by message (I/O errors have no equality of their own).
#[derive(Debug, Clone)]
pub struct DataError(pub std::sync::Arc<aurl_data::Error>);

impl From<aurl_data::Error> for DataError {
    fn from(e: aurl_data::Error) -> Self {
        Self(std::sync::Arc::new(e))
    }
}

impl PartialEq for DataError {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Transparent: its source is the data error's own.
impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What can go wrong while generating.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplingError {
    /// A configuration value is invalid; `field` names it.
    #[error("invalid generation config `{field}`: {reason}")]
    InvalidConfig {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// A prompt cannot be used.
    #[error("invalid prompt (token {index}): {reason}")]
    InvalidPrompt {
        /// Index of the offending token.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The model failed (its error kept as the source).
    #[error("model: {0}")]
    Model(#[from] aurl_model::ModelError),
    /// The model's output is not what sampling reads (logits of another element type).
    #[error("model output: {0}")]
    Output(String),
    /// Beam search ended without a single hypothesis.
    #[error("beam search: no hypothesis survived")]
    NoHypothesis,
    /// Writing the result failed.
    #[error("export: {0}")]
    Export(#[source] DataError),
    /// MIDI bytes (an upload) could not be read or tokenized; `what` names them.
    #[error("{what}: {reason}")]
    InvalidMidi {
        /// Which input (`prompt`, `interpolate.a`, …).
        what: String,
        /// Why (the reader's or the tokenizer's message).
        reason: String,
    },
    /// A prompt file could not be read or tokenized.
    #[error("prompt {}: {reason}", path.display())]
    PromptFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why (the reader's or the tokenizer's message).
        reason: String,
    },
}

/// The README's quick start, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
