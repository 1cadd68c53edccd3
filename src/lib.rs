//! # Aurl — symbolic music generation in pure Rust
//!
//! This facade re-exports the member crates so one dependency brings the whole pipeline:
//!
//! * [`core`] (`aurl-core`): the [`Score`](core::Score) model, tempo maps, score operations,
//!   and [`tokenize`](core::tokenize) (tokenizers, vocabularies, the token grammar).
//! * [`data`] (`aurl-data`): MIDI reading (strict and lenient) and writing, corpus audits.
//! * [`model`] (`aurl-model`): backend-neutral Burn modules — the transformer LM with full or
//!   sliding-window attention, sinusoidal/learned/rotary positions, a true KV cache, and the
//!   token losses, weights saving, and the training loop.
//! * [`sampling`] (`aurl-sampling`): sampling strategies, grammar-constrained KV-cached
//!   generation, MIDI export.
//! * [`evaluate`]: generated MIDI folders against reference folders (metrics, overlap,
//!   diversity, plagiarism check, a checkpoint's NLL).
//! * [`run`]: a training run as a library: its TOML configuration, a [`run::Job`] whose
//!   methods are the run's steps (load the data, plan a time budget, train in a
//!   [`run::RunDir`] — new or resumed —, generate, write the samples and `report.json`), and
//!   the files a generation writes. `examples/train.rs` and `examples/generate.rs` are
//!   argument parsing over it.
//!
//! Backends for the models are chosen by Cargo feature: `flex` (default, pure-Rust CPU),
//! `ndarray`, `wgpu` and `cuda`. The chosen Burn crate is re-exported as [`burn`] and
//! [`backend::default_device`] gives a device of the first backend compiled in.
//!
//! ```
//! use aurl::core::tokenize::{Grammar, Remi, Tokenizer, TokenizerConfig};
//! use aurl::data::{read_midi, write_midi, Mode, WriteOptions};
//!
//! let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/format1_gm_drums.mid"))?;
//! let (score, report) = read_midi(&bytes, Mode::Strict)?;
//! assert!(report.is_clean());
//!
//! let remi = Remi::new(&TokenizerConfig::default())?;
//! let tokens = remi.encode(&score)?;
//! assert_eq!(Grammar::new(remi.vocab()).validate(&tokens.ids).error_count(), 0);
//! let (decoded, _) = remi.decode(&tokens.ids);
//! assert_eq!(decoded, remi.quantize(&score));
//! let midi = write_midi(&decoded, &WriteOptions::default())?;
//! assert!(read_midi(&midi, Mode::Strict)?.0.note_count() == score.note_count());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use aurl_core as core;
pub use aurl_data as data;
pub use aurl_model as model;
pub use aurl_sampling as sampling;

pub mod evaluate;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod run;

#[cfg(any(
    feature = "flex",
    feature = "ndarray",
    feature = "wgpu",
    feature = "cuda"
))]
pub use burn;

#[cfg(any(
    feature = "flex",
    feature = "ndarray",
    feature = "wgpu",
    feature = "cuda"
))]
pub mod backend;
