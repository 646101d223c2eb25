//! Errors of the GMM module.

use thiserror::Error;

/// Errors returned by GMM construction, training, adaptation and scoring.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum GmmError {
    /// A model needs at least one component and a feature dimension of at least one.
    #[error(
        "empty model: {components} components of dimension {dim}; expected at least 1 of each"
    )]
    EmptyModel {
        /// Number of components given.
        components: usize,
        /// Feature dimension given.
        dim: usize,
    },
    /// A parameter array has the wrong length.
    #[error("{what} has {actual} values; expected {expected}")]
    ShapeMismatch {
        /// Which array.
        what: &'static str,
        /// Expected number of values.
        expected: usize,
        /// Number of values received.
        actual: usize,
    },
    /// Features (or statistics) of one dimension were given to a model of another.
    #[error("feature dimension {actual}; the model expects {expected}")]
    DimensionMismatch {
        /// Dimension of the model.
        expected: usize,
        /// Dimension received.
        actual: usize,
    },
    /// Two models (e.g. a UBM and a speaker model) do not have the same number of components.
    #[error("model has {actual} components; expected {expected} (the UBM's)")]
    ComponentCountMismatch {
        /// Components of the reference model.
        expected: usize,
        /// Components of the other model.
        actual: usize,
    },
    /// A parameter value is out of range (NaN, infinite, negative variance, weights not summing to 1, ...).
    #[error("invalid {what}: {detail}")]
    InvalidParameter {
        /// Which parameter.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// An options struct holds a value out of its documented range.
    #[error("invalid option {option} = {value}: expected {expected}")]
    InvalidOption {
        /// Option name.
        option: &'static str,
        /// Value received, formatted.
        value: String,
        /// Allowed range.
        expected: &'static str,
    },
    /// Not enough data for the requested operation.
    #[error("not enough data: {detail}")]
    NotEnoughData {
        /// What was needed and what arrived.
        detail: String,
    },
    /// A feature value is NaN or infinite.
    #[error("non-finite feature value at frame {frame}, dimension {dim}")]
    NonFiniteFeature {
        /// Frame index.
        frame: usize,
        /// Dimension index.
        dim: usize,
    },
    /// A Gaussian selection was computed for other features or another UBM.
    #[error("Gaussian selection does not match: {detail}")]
    SelectionMismatch {
        /// What differs.
        detail: String,
    },
    /// Every component was removed by the update (all counts below the minimum).
    #[error("update removed all {components} components (counts below min_count / weights below min_weight)")]
    AllComponentsRemoved {
        /// Number of components before the update.
        components: usize,
    },
}
