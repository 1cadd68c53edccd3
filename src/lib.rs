//! # Aurl — symbolic music generation in pure Rust
//!
//! This facade re-exports the member crates so one dependency brings the whole pipeline:
//!
//! * [`core`] (`aurl-core`): the [`Score`](core::Score) model, tempo maps, score operations,
//!   and [`tokenize`](core::tokenize) (tokenizers, vocabularies, the token grammar).
//! * [`data`] (`aurl-data`): MIDI reading (strict and lenient) and writing, corpus audits.
//!
//! Backends for the models are chosen by Cargo feature: `flex` (default, pure-Rust CPU),
//! `ndarray`, `wgpu` and `cuda`. The chosen Burn crate is re-exported as [`burn`] and
//! [`backend::default_device`] gives a device of the first backend compiled in.
//!
//! ```
//! let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/format1_gm_drums.mid"))?;
//! let (score, report) = aurl::data::read_midi(&bytes, aurl::data::Mode::Strict)?;
//! assert!(report.is_clean());
//! assert!(score.note_count() > 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use aurl_core as core;
pub use aurl_data as data;

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
