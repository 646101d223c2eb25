//! The diagonal-covariance GMM model (`DiagGmm`), with Kaldi's cached per-component constants.

use serde::{Deserialize, Serialize};

use super::error::GmmError;
use super::math::{LogSumExp, LN_2PI};
use crate::features::FeatureMatrix;

/// Tolerance on Σ weights − 1 accepted by the constructors (the weights are then renormalised).
const WEIGHT_SUM_TOLERANCE: f64 = 1e-3;

/// The serialisable parameters of a [`DiagGmm`] (the cached constants are recomputed on load).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagGmmParams {
    /// Feature dimension D.
    pub dim: usize,
    /// Mixture weights, length C, positive, summing to 1.
    pub weights: Vec<f32>,
    /// Means, row-major C × D.
    pub means: Vec<f32>,
    /// Inverse variances (precisions) 1/σ², row-major C × D, positive.
    pub inv_vars: Vec<f32>,
}

/// A diagonal-covariance Gaussian mixture model.
///
/// Storage is f32 (weights, means, inverse variances); the per-component normalising constants
/// `gconst_c = ln w_c − ½ Σ_d (ln 2π + ln σ²_cd + μ²_cd / σ²_cd)` are cached in f64.
/// Alongside, the model caches a GEMM-ready form used by the batch paths: with a reference point
/// `r` (the weighted mean of the means), `ln w_c N(x; μ_c, σ²_c) = k_c + y·a_c + y²·b_c`
/// for `y = x − r`, `a_c = (μ_c − r)/σ²_c`, `b_c = −½/σ²_c`; centring keeps f32 products accurate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DiagGmmParams", into = "DiagGmmParams")]
pub struct DiagGmm {
    dim: usize,
    weights: Vec<f32>,
    means: Vec<f32>,
    inv_vars: Vec<f32>,
    gconsts: Vec<f64>,
    /// `ln w_c − ½ Σ_d (ln 2π + ln σ²_cd)` (gconst without the mean term).
    log_norms: Vec<f64>,
    center: Vec<f32>,
    /// Row-major 2D × C: column c is `[a_c, b_c]` (the GEMM's right operand, packed contiguously).
    packed: Vec<f32>,
    /// Length C: `k_c`.
    packed_consts: Vec<f32>,
}

impl TryFrom<DiagGmmParams> for DiagGmm {
    type Error = GmmError;
    fn try_from(p: DiagGmmParams) -> Result<Self, GmmError> {
        DiagGmm::from_inv_vars(p.dim, p.weights, p.means, p.inv_vars)
    }
}

impl From<DiagGmm> for DiagGmmParams {
    fn from(g: DiagGmm) -> Self {
        DiagGmmParams {
            dim: g.dim,
            weights: g.weights,
            means: g.means,
            inv_vars: g.inv_vars,
        }
    }
}

fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), GmmError> {
    if expected != actual {
        return Err(GmmError::ShapeMismatch {
            what,
            expected,
            actual,
        });
    }
    Ok(())
}

impl DiagGmm {
    /// Builds a model from weights (length C), means and variances σ² (row-major C × D).
    ///
    /// Weights must be positive and sum to 1 within 1e-3 (they are renormalised); variances
    /// must be positive and finite.
    pub fn new(
        dim: usize,
        weights: Vec<f32>,
        means: Vec<f32>,
        variances: Vec<f32>,
    ) -> Result<Self, GmmError> {
        for (i, &v) in variances.iter().enumerate() {
            if !(v.is_finite() && v > 0.0 && (1.0 / v).is_finite()) {
                return Err(GmmError::InvalidParameter {
                    what: "variance",
                    detail: format!("value {v} at index {i}; expected positive and finite"),
                });
            }
        }
        let inv_vars = variances.iter().map(|v| 1.0 / v).collect();
        Self::from_inv_vars(dim, weights, means, inv_vars)
    }

    /// Builds a model from weights, means and inverse variances 1/σ² (row-major C × D).
    pub fn from_inv_vars(
        dim: usize,
        mut weights: Vec<f32>,
        means: Vec<f32>,
        inv_vars: Vec<f32>,
    ) -> Result<Self, GmmError> {
        let components = weights.len();
        if components == 0 || dim == 0 {
            return Err(GmmError::EmptyModel { components, dim });
        }
        check_len("means", components * dim, means.len())?;
        check_len("inv_vars", components * dim, inv_vars.len())?;
        let mut sum = 0.0_f64;
        for (i, &w) in weights.iter().enumerate() {
            if !(w.is_finite() && w > 0.0) {
                return Err(GmmError::InvalidParameter {
                    what: "weight",
                    detail: format!("value {w} of component {i}; expected positive and finite"),
                });
            }
            sum += w as f64;
        }
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return Err(GmmError::InvalidParameter {
                what: "weights",
                detail: format!("sum {sum}; expected 1 (within {WEIGHT_SUM_TOLERANCE})"),
            });
        }
        weights
            .iter_mut()
            .for_each(|w| *w = (*w as f64 / sum) as f32);
        if let Some(i) = means.iter().position(|m| !m.is_finite()) {
            return Err(GmmError::InvalidParameter {
                what: "mean",
                detail: format!("non-finite value at index {i}"),
            });
        }
        for (i, &iv) in inv_vars.iter().enumerate() {
            if !(iv.is_finite() && iv > 0.0 && (1.0 / iv).is_finite()) {
                return Err(GmmError::InvalidParameter {
                    what: "inverse variance",
                    detail: format!("value {iv} at index {i}; expected positive and finite"),
                });
            }
        }
        let mut gmm = DiagGmm {
            dim,
            weights,
            means,
            inv_vars,
            gconsts: Vec::new(),
            log_norms: Vec::new(),
            center: Vec::new(),
            packed: Vec::new(),
            packed_consts: Vec::new(),
        };
        gmm.compute_caches()?;
        Ok(gmm)
    }

    /// The parameters as a plain serialisable struct.
    pub fn to_params(&self) -> DiagGmmParams {
        self.clone().into()
    }

    fn compute_caches(&mut self) -> Result<(), GmmError> {
        let (c_count, dim) = (self.num_components(), self.dim);
        let mut center = vec![0.0_f64; dim];
        for (c, &w) in self.weights.iter().enumerate() {
            for (r, &m) in center.iter_mut().zip(self.mean(c)) {
                *r += w as f64 * m as f64;
            }
        }
        self.center = center.iter().map(|&r| r as f32).collect();
        self.gconsts = Vec::with_capacity(c_count);
        self.log_norms = Vec::with_capacity(c_count);
        self.packed = vec![0.0; c_count * 2 * dim];
        self.packed_consts = Vec::with_capacity(c_count);
        for c in 0..c_count {
            let mut log_norm = (self.weights[c] as f64).ln();
            let mut gconst = log_norm;
            let mut packed_const = gconst;
            let means = &self.means[c * dim..(c + 1) * dim];
            let ivs = &self.inv_vars[c * dim..(c + 1) * dim];
            for d in 0..dim {
                let (m, iv) = (means[d] as f64, ivs[d] as f64);
                let shifted = m - self.center[d] as f64;
                let norm = LN_2PI - iv.ln();
                log_norm -= 0.5 * norm;
                gconst -= 0.5 * (norm + m * m * iv);
                packed_const -= 0.5 * (norm + shifted * shifted * iv);
                self.packed[d * c_count + c] = (shifted * iv) as f32;
                self.packed[(dim + d) * c_count + c] = (-0.5 * iv) as f32;
            }
            if !gconst.is_finite() || !(packed_const as f32).is_finite() {
                return Err(GmmError::InvalidParameter {
                    what: "component constant",
                    detail: format!("component {c} has non-finite gconst {gconst}"),
                });
            }
            self.gconsts.push(gconst);
            self.log_norms.push(log_norm);
            self.packed_consts.push(packed_const as f32);
        }
        Ok(())
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
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// All means, row-major C × D.
    pub fn means(&self) -> &[f32] {
        &self.means
    }

    /// Mean of component `c` (length D); panics if `c >= C`.
    pub fn mean(&self, c: usize) -> &[f32] {
        &self.means[c * self.dim..(c + 1) * self.dim]
    }

    /// All inverse variances 1/σ², row-major C × D.
    pub fn inv_vars(&self) -> &[f32] {
        &self.inv_vars
    }

    /// Inverse variances of component `c`; panics if `c >= C`.
    pub fn inv_var(&self, c: usize) -> &[f32] {
        &self.inv_vars[c * self.dim..(c + 1) * self.dim]
    }

    /// Variances σ² (row-major C × D), computed from the stored inverse variances.
    pub fn variances(&self) -> Vec<f32> {
        self.inv_vars.iter().map(|iv| 1.0 / iv).collect()
    }

    /// Cached `gconst_c` (natural log, includes ln w_c), length C.
    pub fn gconsts(&self) -> &[f64] {
        &self.gconsts
    }

    pub(crate) fn center(&self) -> &[f32] {
        &self.center
    }

    pub(crate) fn packed(&self) -> &[f32] {
        &self.packed
    }

    pub(crate) fn packed_consts(&self) -> &[f32] {
        &self.packed_consts
    }

    /// Checks that `frame` has the model's dimension.
    pub(crate) fn check_dim(&self, actual: usize) -> Result<(), GmmError> {
        if actual != self.dim {
            return Err(GmmError::DimensionMismatch {
                expected: self.dim,
                actual,
            });
        }
        Ok(())
    }

    /// Checks dimension and finiteness of a feature matrix.
    pub(crate) fn check_features(&self, feats: &FeatureMatrix) -> Result<(), GmmError> {
        self.check_dim(feats.dim())?;
        if let Some(i) = feats.as_slice().iter().position(|v| !v.is_finite()) {
            return Err(GmmError::NonFiniteFeature {
                frame: i / self.dim,
                dim: i % self.dim,
            });
        }
        Ok(())
    }

    /// `ln (w_c N(x; μ_c, σ²_c))` of one component, computed in f64 (no dimension check;
    /// `frame.len()` must be D).
    #[inline]
    pub(crate) fn component_log_likelihood_unchecked(&self, c: usize, frame: &[f32]) -> f64 {
        let d = self.dim;
        let means = &self.means[c * d..(c + 1) * d];
        let ivs = &self.inv_vars[c * d..(c + 1) * d];
        let mut quad = 0.0_f64;
        for ((&x, &m), &iv) in frame.iter().zip(means).zip(ivs) {
            let diff = x as f64 - m as f64;
            quad += diff * diff * iv as f64;
        }
        // The centred form (x − μ)² is more accurate than gconst + x·μ/σ² − ½x²/σ².
        self.log_norms[c] - 0.5 * quad
    }

    /// `ln (w_c N(x; μ_c, σ²_c))` of component `c` for one frame (natural log, f64).
    pub fn component_log_likelihood(&self, c: usize, frame: &[f32]) -> Result<f64, GmmError> {
        self.check_dim(frame.len())?;
        if c >= self.num_components() {
            return Err(GmmError::InvalidParameter {
                what: "component index",
                detail: format!("{c}; the model has {} components", self.num_components()),
            });
        }
        Ok(self.component_log_likelihood_unchecked(c, frame))
    }

    /// Fills `out` (length C) with `ln (w_c N(x; μ_c, σ²_c))` for every component (f64).
    pub fn component_log_likelihoods(
        &self,
        frame: &[f32],
        out: &mut [f64],
    ) -> Result<(), GmmError> {
        self.check_dim(frame.len())?;
        if out.len() != self.num_components() {
            return Err(GmmError::ShapeMismatch {
                what: "output buffer",
                expected: self.num_components(),
                actual: out.len(),
            });
        }
        for (c, o) in out.iter_mut().enumerate() {
            *o = self.component_log_likelihood_unchecked(c, frame);
        }
        Ok(())
    }

    /// `ln p(x)` of one frame: log-sum-exp over all components, f64, no allocation.
    pub fn log_likelihood(&self, frame: &[f32]) -> Result<f64, GmmError> {
        self.check_dim(frame.len())?;
        let mut lse = LogSumExp::new();
        for c in 0..self.num_components() {
            lse.push(self.component_log_likelihood_unchecked(c, frame));
        }
        Ok(lse.value())
    }
}
