//! Parameter updates from [`AccumDiagGmm`] statistics: maximum likelihood (EM M-step) and MAP.

use serde::{Deserialize, Serialize};

use super::accum::AccumDiagGmm;
use super::error::GmmError;
use super::model::DiagGmm;

/// How the MLE update floors variances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum VarianceFloor {
    /// Floor every variance at this absolute value (feature units squared), > 0.
    Absolute(f64),
    /// Floor dimension d at this fraction (> 0, ≤ 1) of the global variance of dimension d,
    /// computed from the statistics (HTK's `vFloor`, default 0.01).
    FractionOfGlobal(f64),
}

/// Options of [`mle_update`] (Kaldi's `MleDiagGmmOptions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MleDiagGmmOptions {
    /// Re-estimate the weights (default true).
    pub update_weights: bool,
    /// Re-estimate the means (default true).
    pub update_means: bool,
    /// Re-estimate the variances (default true).
    pub update_variances: bool,
    /// Variance floor (default: 0.01 of the global variance).
    pub variance_floor: VarianceFloor,
    /// A component whose weight n_c / N falls below this is dead (default 1e-5, in [0, 1)).
    pub min_weight: f64,
    /// A component whose occupancy n_c (frames) falls below this is dead (default 10, ≥ 0).
    pub min_count: f64,
    /// Remove dead components (true, Kaldi's default) or keep them with their old means and
    /// variances and weight max(n_c / N, min_weight) (false).
    pub remove_low_count: bool,
}

impl Default for MleDiagGmmOptions {
    fn default() -> Self {
        Self {
            update_weights: true,
            update_means: true,
            update_variances: true,
            variance_floor: VarianceFloor::FractionOfGlobal(0.01),
            min_weight: 1e-5,
            min_count: 10.0,
            remove_low_count: true,
        }
    }
}

fn invalid(option: &'static str, value: f64, expected: &'static str) -> GmmError {
    GmmError::InvalidOption {
        option,
        value: value.to_string(),
        expected,
    }
}

impl MleDiagGmmOptions {
    /// Checks every option against its documented range.
    pub fn validate(&self) -> Result<(), GmmError> {
        match self.variance_floor {
            VarianceFloor::Absolute(v) if !(v.is_finite() && v > 0.0) => {
                return Err(invalid("variance_floor (absolute)", v, "finite and > 0"))
            }
            VarianceFloor::FractionOfGlobal(f) if !(f > 0.0 && f <= 1.0) => {
                return Err(invalid(
                    "variance_floor (fraction of global)",
                    f,
                    "in (0, 1]",
                ))
            }
            _ => {}
        }
        if !(self.min_weight >= 0.0 && self.min_weight < 1.0) {
            return Err(invalid("min_weight", self.min_weight, "in [0, 1)"));
        }
        if !(self.min_count.is_finite() && self.min_count >= 0.0) {
            return Err(invalid("min_count", self.min_count, "finite and >= 0"));
        }
        Ok(())
    }
}

/// Smallest weight given to a dead component that is kept.
const DEAD_WEIGHT_FLOOR: f64 = 1e-20;

/// Result of [`mle_update`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MleUpdate {
    /// The re-estimated model.
    pub model: DiagGmm,
    /// Indices (in the old model) of the dead components: removed, or kept unchanged when
    /// `remove_low_count` is false.
    pub dead_components: Vec<usize>,
    /// Number of variances raised to the floor.
    pub floored_variances: usize,
}

/// Maximum-likelihood re-estimation (EM M-step) of `model` from `acc`
/// (gathered with `model`): w = n_c/N, μ = F_c/n_c, σ² = S_c/n_c − μ², floored.
pub fn mle_update(
    model: &DiagGmm,
    acc: &AccumDiagGmm,
    opts: &MleDiagGmmOptions,
) -> Result<MleUpdate, GmmError> {
    opts.validate()?;
    check_shapes(model, acc)?;
    let (c_count, d) = (model.num_components(), model.dim());
    let total = acc.total_count();
    if total.is_nan() || total <= 0.0 {
        return Err(GmmError::NotEnoughData {
            detail: format!("total occupancy {total}; expected > 0"),
        });
    }
    let floor: Vec<f64> = match opts.variance_floor {
        VarianceFloor::Absolute(v) => vec![v; d],
        VarianceFloor::FractionOfGlobal(f) => (0..d)
            .map(|k| {
                let (mut s1, mut s2) = (0.0, 0.0);
                for c in 0..c_count {
                    s1 += acc.mean_acc()[c * d + k];
                    s2 += acc.var_acc()[c * d + k];
                }
                let mean = s1 / total;
                // Guard against a constant dimension: the floor must stay positive.
                f * (s2 / total - mean * mean).max(1e-10)
            })
            .collect(),
    };
    let old_vars = model.variances();
    let mut weights = Vec::with_capacity(c_count);
    let mut means = Vec::with_capacity(c_count * d);
    let mut vars = Vec::with_capacity(c_count * d);
    let mut dead_components = Vec::new();
    let mut floored_variances = 0;
    for c in 0..c_count {
        let n = acc.occupancy()[c];
        let old_mean = model.mean(c);
        let old_var = &old_vars[c * d..(c + 1) * d];
        let dead = n < opts.min_count || n / total < opts.min_weight || n <= 0.0;
        if dead {
            dead_components.push(c);
            if opts.remove_low_count {
                continue;
            }
            weights.push(if opts.update_weights {
                // Stays representable (and positive) in f32 even with min_weight = 0.
                (n / total).max(opts.min_weight).max(DEAD_WEIGHT_FLOOR)
            } else {
                model.weights()[c] as f64
            });
            means.extend_from_slice(old_mean);
            vars.extend_from_slice(old_var);
            continue;
        }
        weights.push(if opts.update_weights {
            n / total
        } else {
            model.weights()[c] as f64
        });
        let first = &acc.mean_acc()[c * d..(c + 1) * d];
        let second = &acc.var_acc()[c * d..(c + 1) * d];
        for k in 0..d {
            let mean = if opts.update_means {
                first[k] / n
            } else {
                old_mean[k] as f64
            };
            means.push(mean as f32);
            if opts.update_variances {
                // E[(x − μ)²] for the (possibly old) mean μ.
                let mut var = second[k] / n - 2.0 * mean * first[k] / n + mean * mean;
                if var.is_nan() || var < floor[k] {
                    var = floor[k];
                    floored_variances += 1;
                }
                vars.push(var as f32);
            } else {
                vars.push(old_var[k]);
            }
        }
    }
    if weights.is_empty() {
        return Err(GmmError::AllComponentsRemoved {
            components: c_count,
        });
    }
    let sum: f64 = weights.iter().sum();
    let weights: Vec<f32> = weights.iter().map(|w| (w / sum) as f32).collect();
    let model = DiagGmm::new(d, weights, means, vars)?;
    Ok(MleUpdate {
        model,
        dead_components,
        floored_variances,
    })
}

fn check_shapes(model: &DiagGmm, acc: &AccumDiagGmm) -> Result<(), GmmError> {
    model.check_dim(acc.dim())?;
    if acc.num_components() != model.num_components() {
        return Err(GmmError::ComponentCountMismatch {
            expected: model.num_components(),
            actual: acc.num_components(),
        });
    }
    Ok(())
}

/// Options of [`map_update`] (Kaldi's `MapDiagGmmOptions`; Reynolds' relevance MAP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MapDiagGmmOptions {
    /// Relevance factor τ for the means, in frames (default 16, Reynolds et al. 2000); ≥ 0.
    pub mean_tau: f64,
    /// Relevance factor for the weights, in frames (default 10); ≥ 0.
    pub weight_tau: f64,
    /// Relevance factor for the variances, in frames (default 50); ≥ 0.
    pub variance_tau: f64,
    /// Adapt the means (default true).
    pub update_means: bool,
    /// Adapt the weights (default false).
    pub update_weights: bool,
    /// Adapt the variances (default false).
    pub update_variances: bool,
}

impl Default for MapDiagGmmOptions {
    fn default() -> Self {
        Self {
            mean_tau: 16.0,
            weight_tau: 10.0,
            variance_tau: 50.0,
            update_means: true,
            update_weights: false,
            update_variances: false,
        }
    }
}

impl MapDiagGmmOptions {
    /// Checks every option against its documented range.
    pub fn validate(&self) -> Result<(), GmmError> {
        for (name, v) in [
            ("mean_tau", self.mean_tau),
            ("weight_tau", self.weight_tau),
            ("variance_tau", self.variance_tau),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(name, v, "finite and >= 0"));
            }
        }
        Ok(())
    }
}

/// Smallest adapted variance, as a fraction of the UBM's variance.
const MAP_VARIANCE_FLOOR_FRACTION: f64 = 1e-3;

/// MAP adaptation of `ubm` to the statistics `acc` (gathered with the UBM):
/// μ' = (τ μ + F_c) / (τ + n_c); w' = (n_c + τ_w w_c) / (N + τ_w);
/// σ'² = (τ_v (σ² + μ²) + S_c) / (τ_v + n_c) − μ'² (floored at 1e-3 σ²).
/// Parameters not updated are copied bit for bit, which the fast scorer exploits.
pub fn map_update(
    ubm: &DiagGmm,
    acc: &AccumDiagGmm,
    opts: &MapDiagGmmOptions,
) -> Result<DiagGmm, GmmError> {
    opts.validate()?;
    check_shapes(ubm, acc)?;
    let (c_count, d) = (ubm.num_components(), ubm.dim());
    let mut means = ubm.means().to_vec();
    if opts.update_means {
        for c in 0..c_count {
            let n = acc.occupancy()[c];
            let denom = opts.mean_tau + n;
            if denom <= 0.0 {
                continue;
            }
            for k in 0..d {
                let prior = ubm.means()[c * d + k] as f64;
                means[c * d + k] =
                    ((opts.mean_tau * prior + acc.mean_acc()[c * d + k]) / denom) as f32;
            }
        }
    }
    let mut inv_vars = ubm.inv_vars().to_vec();
    if opts.update_variances {
        for c in 0..c_count {
            let n = acc.occupancy()[c];
            let denom = opts.variance_tau + n;
            if denom <= 0.0 {
                continue;
            }
            for k in 0..d {
                let i = c * d + k;
                let (mu, var) = (ubm.means()[i] as f64, 1.0 / ubm.inv_vars()[i] as f64);
                let new_mu = means[i] as f64;
                let second = (opts.variance_tau * (var + mu * mu) + acc.var_acc()[i]) / denom;
                let new_var = (second - new_mu * new_mu).max(MAP_VARIANCE_FLOOR_FRACTION * var);
                inv_vars[i] = (1.0 / new_var) as f32;
            }
        }
    }
    let weights = if opts.update_weights {
        let total = acc.total_count();
        let denom = total + opts.weight_tau;
        if denom <= 0.0 {
            ubm.weights().to_vec()
        } else {
            let raw: Vec<f64> = (0..c_count)
                .map(|c| (acc.occupancy()[c] + opts.weight_tau * ubm.weights()[c] as f64) / denom)
                .collect();
            if raw.iter().any(|&w| w.is_nan() || w <= 0.0) {
                return Err(GmmError::NotEnoughData {
                    detail:
                        "MAP weight update with weight_tau = 0 left a component with zero count"
                            .into(),
                });
            }
            let sum: f64 = raw.iter().sum();
            raw.iter().map(|w| (w / sum) as f32).collect()
        }
    } else {
        ubm.weights().to_vec()
    };
    DiagGmm::from_inv_vars(d, weights, means, inv_vars)
}
