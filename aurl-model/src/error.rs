//! Errors of model construction and use.

/// What went wrong building or running a model.
///
/// Errors compare equal by variant and fields; an [`ModelError::Io`] by path and error kind.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
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
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What failed (shared, so the error stays cheap to clone).
        #[source]
        source: std::sync::Arc<std::io::Error>,
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
    /// The data layer refused (e.g. an epoch of training windows is empty); the
    /// `aurl_data::Error` is kept as it is.
    #[error(transparent)]
    Data(std::sync::Arc<aurl_data::Error>),
    /// Training cannot go on (e.g. nothing to train on, or every step diverged).
    #[error("training: {0}")]
    Training(String),
}

impl PartialEq for ModelError {
    fn eq(&self, other: &Self) -> bool {
        use ModelError as E;
        match (self, other) {
            (
                E::InvalidConfig { field, reason },
                E::InvalidConfig {
                    field: f,
                    reason: r,
                },
            ) => field == f && reason == r,
            (
                E::PositionOutOfRange { position, max },
                E::PositionOutOfRange {
                    position: p,
                    max: m,
                },
            ) => position == p && max == m,
            (E::Shape(a), E::Shape(b)) | (E::Training(a), E::Training(b)) => a == b,
            (E::Io { path, source }, E::Io { path: p, source: s }) => {
                path == p && source.kind() == s.kind()
            }
            (
                E::Checkpoint { path, message },
                E::Checkpoint {
                    path: p,
                    message: m,
                },
            ) => path == p && message == m,
            (E::Vocabulary(a), E::Vocabulary(b)) => a == b,
            (E::Data(a), E::Data(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl From<aurl_data::Error> for ModelError {
    fn from(e: aurl_data::Error) -> Self {
        Self::Data(std::sync::Arc::new(e))
    }
}

/// [`ModelError::Io`] for `path`, keeping `e` as the source: an `io::Error` as it is, any
/// other error (e.g. `aurl_data::Error` from an atomic write) wrapped in one.
pub(crate) fn io_error<E>(path: &std::path::Path, e: E) -> ModelError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let boxed: Box<dyn std::error::Error + Send + Sync> = e.into();
    let source = match boxed.downcast::<std::io::Error>() {
        Ok(io) => *io,
        Err(other) => std::io::Error::other(other),
    };
    ModelError::Io {
        path: path.to_owned(),
        source: std::sync::Arc::new(source),
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
