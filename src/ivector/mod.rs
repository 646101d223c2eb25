//! Total-variability (i-vector) extractor and post-processing (centring, LDA, WCCN, length norm).
//!
//! The model: the GMM mean supervector of an utterance is m = μ + T w with w ~ N(0, I) (the
//! i-vector, dimension R) and T a (C·D) × R total-variability matrix; the UBM's covariances are
//! kept fixed. Statistics enter centred by the UBM means and whitened by the UBM standard
//! deviations, so the extractor stores T̃ = Σ^(−1/2) T. See [`IvectorExtractor`].

mod extractor;
mod postprocess;

pub use extractor::{IvectorExtractor, IvectorTrainOptions};
pub use postprocess::{length_normalize, Lda, MeanCentering, Wccn};

/// Errors of i-vector extraction, training and post-processing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IvectorError {
    /// A shape does not match the model.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Actual size.
        got: usize,
    },
    /// A value is NaN or infinite, or a variance/weight is out of range.
    #[error("{what}: expected {expected}")]
    InvalidValue {
        /// Which input.
        what: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// Not enough data to train.
    #[error("{what}: expected at least {expected}, got {got}")]
    NotEnoughData {
        /// What is short.
        what: &'static str,
        /// Minimum needed.
        expected: usize,
        /// What arrived.
        got: usize,
    },
    /// A matrix that must be positive definite is not.
    #[error("{what} is not positive definite: expected more (or less collinear) training data")]
    NotPositiveDefinite {
        /// Which matrix.
        what: &'static str,
    },
}

impl From<crate::plda::PldaError> for IvectorError {
    fn from(e: crate::plda::PldaError) -> Self {
        use crate::plda::PldaError as P;
        match e {
            P::Dimension {
                what,
                expected,
                got,
            } => Self::Shape {
                what,
                expected,
                got,
            },
            P::NotEnoughData {
                what,
                expected,
                got,
            } => Self::NotEnoughData {
                what,
                expected,
                got,
            },
            P::NonFinite { what } => Self::InvalidValue {
                what,
                expected: "finite numbers",
            },
            P::NotPositiveDefinite { what } => Self::NotPositiveDefinite { what },
            P::InvalidOption { what, .. } => Self::InvalidValue {
                what,
                expected: "a valid option",
            },
        }
    }
}

/// Diagonal-covariance UBM parameters in f64, as the i-vector extractor needs them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UbmParams {
    dim: usize,
    weights: Vec<f64>,
    means: Vec<f64>,
    variances: Vec<f64>,
}

impl UbmParams {
    /// Checks and wraps C weights (≥ 0), C × D row-major means and C × D variances (> 0).
    pub fn new(
        weights: Vec<f64>,
        means: Vec<f64>,
        variances: Vec<f64>,
        dim: usize,
    ) -> Result<Self, IvectorError> {
        let c = weights.len();
        if c == 0 || dim == 0 {
            return Err(IvectorError::NotEnoughData {
                what: "UBM components and feature dimension",
                expected: 1,
                got: 0,
            });
        }
        for (what, v) in [
            ("UBM means (C x D)", &means),
            ("UBM variances (C x D)", &variances),
        ] {
            if v.len() != c * dim {
                return Err(IvectorError::Shape {
                    what,
                    expected: c * dim,
                    got: v.len(),
                });
            }
        }
        if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(IvectorError::InvalidValue {
                what: "UBM weights",
                expected: "finite values >= 0",
            });
        }
        if means.iter().any(|m| !m.is_finite()) {
            return Err(IvectorError::InvalidValue {
                what: "UBM means",
                expected: "finite values",
            });
        }
        if variances.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(IvectorError::InvalidValue {
                what: "UBM variances",
                expected: "finite values > 0",
            });
        }
        Ok(Self {
            dim,
            weights,
            means,
            variances,
        })
    }

    /// Number of components C.
    pub fn num_components(&self) -> usize {
        self.weights.len()
    }

    /// Feature dimension D.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Mixture weights (length C).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Means, C × D row-major.
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// Diagonal variances, C × D row-major.
    pub fn variances(&self) -> &[f64] {
        &self.variances
    }
}

#[cfg(test)]
mod tests;
