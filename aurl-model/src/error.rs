//! Errors of model construction and use.

/// What went wrong building or running a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is out of range or inconsistent; `field` names it.
    #[error("invalid model config `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field (dotted path).
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A forward pass would reach a position the positional encoding cannot represent.
    #[error("position {position} is beyond the model's {max} positions")]
    PositionOutOfRange {
        /// First position that does not fit.
        position: usize,
        /// Number of positions the encoding covers.
        max: usize,
    },
    /// A tensor or cache has the wrong shape for this model.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        message: String,
    },
    /// A saved model or checkpoint is unreadable or does not match what it is loaded into.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The vocabulary of a saved model differs from the one expected.
    #[error(transparent)]
    Vocabulary(#[from] aurl_core::Error),
    /// Training cannot go on (e.g. nothing to train on, or every step diverged).
    #[error("training: {0}")]
    Training(String),
}

pub(crate) fn io_error(path: &std::path::Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

pub(crate) fn checkpoint_error(path: &std::path::Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Checkpoint {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidConfig {
        field: field.into(),
        reason: reason.into(),
    }
}
