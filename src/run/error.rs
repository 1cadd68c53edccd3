//! What can stop a training run, by where it happened.

use std::path::PathBuf;

use crate::evaluate::plot::PlotError;
use crate::model::ModelError;
use crate::sampling::SamplingError;

use super::RunConfigError;

/// Why a [`Job`](super::Job) could not be set up, trained or written out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration (file, `--set`, or a value given on the command line).
    #[error(transparent)]
    Config(#[from] RunConfigError),
    /// Reading, caching or tokenizing the corpus.
    #[error("reading the data: {0}")]
    Data(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The corpus has no usable training file.
    #[error("no usable MIDI file under {paths:?} ({found} found, {failed} failed)")]
    NoData {
        /// The paths searched.
        paths: Vec<PathBuf>,
        /// MIDI files found.
        found: usize,
        /// Files that could not be used.
        failed: usize,
    },
    /// A value outside its domain (`--minutes`, `--epochs`).
    #[error("{what} {value}: must be a positive number")]
    NotPositive {
        /// The setting.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// `--resume` on a directory that cannot be resumed.
    #[error("{}: {reason}", run.display())]
    Resume {
        /// The run directory.
        run: PathBuf,
        /// Why not.
        reason: String,
    },
    /// Building, training, saving or loading the model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Generating or exporting the samples.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// Drawing `loss.png` or a piano roll.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// Writing a file of the run directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Maps an I/O error on `path` into [`RunError::Io`].
pub(super) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RunError {
    let path = path.into();
    move |source| RunError::Io { path, source }
}
