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
pub use config::GenerationConfig;
pub use controls::BarControl;
pub use export::{PieceSummary, write_piece};
pub use generate::{Generated, Generator, Request, TokenEvent};
pub use notes::StreamNote;
pub use strategy::{Scratch, Strategy};

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
    Export(String),
}

/// The README's quick start, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
