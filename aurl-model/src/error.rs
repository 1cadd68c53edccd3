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
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidConfig {
        field: field.into(),
        reason: reason.into(),
    }
}
