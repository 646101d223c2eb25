//! Score calibration (prior-weighted linear logistic regression) and fusion.
//!
//! BOSARIS / FoCal style: raw scores s (one or several systems per trial) are mapped to
//! natural-log likelihood ratios llr = wᵀs + b by minimising the prior-weighted cross-entropy
//!
//! J(w, b) = π/N_tar · Σ_tar ln(1 + e^−(llr + logit π)) + (1 − π)/N_non · Σ_non ln(1 + e^(llr + logit π))
//!           + λ/2 · |w|²
//!
//! where π is the effective target prior the calibration is optimised for (0.5 makes J/ln 2 the
//! training Cllr). J is convex; it is minimised by Newton's method with a backtracking line search.
//! The small ridge λ keeps the optimum finite on perfectly separable data.

use nalgebra::{DMatrix, DVector};

mod quality;
pub use quality::{
    EnergyOnlyQualityCalibration, QualityCalibration, QualityMeasure, QualityTerm, TestQuality,
};

use crate::metrics::softplus;

/// Errors of calibration training and application.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrationError {
    /// Inputs have inconsistent lengths.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// Training needs at least one target and one non-target trial.
    #[error("{targets} target and {nontargets} non-target trials: expected at least one of each")]
    MissingClass {
        /// Target trials.
        targets: usize,
        /// Non-target trials.
        nontargets: usize,
    },
    /// A training score is NaN or infinite.
    #[error("score {index} of system {system} is {value}: expected a finite number")]
    NonFiniteScore {
        /// Trial index.
        index: usize,
        /// System (column) index.
        system: usize,
        /// The value.
        value: f64,
    },
    /// An option is out of range.
    #[error("calibration option {what} = {value}: expected {expected}")]
    InvalidOption {
        /// The option.
        what: &'static str,
        /// Its value.
        value: f64,
        /// What was expected.
        expected: &'static str,
    },
}

/// Options of the logistic-regression training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibrationOptions {
    /// Effective target prior π the objective is weighted for, in (0, 1). Default 0.5.
    pub effective_prior: f64,
    /// Ridge penalty λ on the weights (not the offset), ≥ 0. Default 1e-6.
    pub l2_penalty: f64,
    /// Maximum Newton iterations. Default 100.
    pub max_iterations: usize,
    /// Stop when the Newton decrement (predicted objective decrease, nats) falls below this.
    /// Default 1e-12.
    pub tolerance: f64,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        Self {
            effective_prior: 0.5,
            l2_penalty: 1e-6,
            max_iterations: 100,
            tolerance: 1e-12,
        }
    }
}

impl CalibrationOptions {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), CalibrationError> {
        if !(self.effective_prior > 0.0 && self.effective_prior < 1.0) {
            return Err(CalibrationError::InvalidOption {
                what: "effective_prior",
                value: self.effective_prior,
                expected: "a probability strictly between 0 and 1",
            });
        }
        if !(self.l2_penalty >= 0.0 && self.l2_penalty.is_finite()) {
            return Err(CalibrationError::InvalidOption {
                what: "l2_penalty",
                value: self.l2_penalty,
                expected: "a finite value >= 0",
            });
        }
        if self.tolerance.is_nan() || self.tolerance < 0.0 {
            return Err(CalibrationError::InvalidOption {
                what: "tolerance",
                value: self.tolerance,
                expected: "a value >= 0",
            });
        }
        Ok(())
    }
}

/// Linear fusion of K systems' scores into one natural-log LLR: llr = Σ_k w_k·s_k + offset (`weights[k]` is w_k).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fusion {
    /// One weight per system (LLR nats per score unit).
    pub weights: Vec<f64>,
    /// Offset (nats).
    pub offset: f64,
}

/// Single-system calibration: llr = scale·s + offset.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// Scale (LLR nats per score unit).
    pub scale: f64,
    /// Offset (nats).
    pub offset: f64,
}

impl Calibration {
    /// Trains on one system's `scores` with `is_target` labels.
    pub fn train(
        scores: &[f64],
        is_target: &[bool],
        options: &CalibrationOptions,
    ) -> Result<Self, CalibrationError> {
        let fusion = Fusion::train(&[scores], is_target, options)?;
        Ok(Self {
            scale: fusion.weights[0],
            offset: fusion.offset,
        })
    }

    /// Calibrated LLR (nats) of a raw score.
    pub fn apply(&self, score: f64) -> f64 {
        self.scale * score + self.offset
    }
}

impl Fusion {
    /// Trains fusion weights on `systems` (one score column per system, each of the length of
    /// `is_target`).
    pub fn train(
        systems: &[&[f64]],
        is_target: &[bool],
        options: &CalibrationOptions,
    ) -> Result<Self, CalibrationError> {
        options.validate()?;
        if systems.is_empty() {
            return Err(CalibrationError::Shape {
                what: "number of systems",
                expected: 1,
                got: 0,
            });
        }
        let n = is_target.len();
        for (system, column) in systems.iter().enumerate() {
            if column.len() != n {
                return Err(CalibrationError::Shape {
                    what: "scores per system (one per label)",
                    expected: n,
                    got: column.len(),
                });
            }
            if let Some((index, &value)) = column.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(CalibrationError::NonFiniteScore {
                    index,
                    system,
                    value,
                });
            }
        }
        let targets = is_target.iter().filter(|&&t| t).count();
        let nontargets = n - targets;
        if targets == 0 || nontargets == 0 {
            return Err(CalibrationError::MissingClass {
                targets,
                nontargets,
            });
        }
        let k = systems.len();
        let prior = options.effective_prior;
        let prior_logit = (prior / (1.0 - prior)).ln();
        let w_tar = prior / targets as f64;
        let w_non = (1.0 - prior) / nontargets as f64;

        // Parameters θ = (w_1..w_K, b). Start at zero (llr = 0 everywhere).
        let mut theta = DVector::<f64>::zeros(k + 1);
        let objective = |theta: &DVector<f64>| -> f64 {
            let mut total = 0.0;
            for (i, &target) in is_target.iter().enumerate() {
                let z = linear(systems, theta, i) + prior_logit;
                total += if target {
                    w_tar * softplus(-z)
                } else {
                    w_non * softplus(z)
                };
            }
            let ridge: f64 = theta.rows(0, k).iter().map(|w| w * w).sum();
            total + 0.5 * options.l2_penalty * ridge
        };
        let mut current = objective(&theta);
        for _ in 0..options.max_iterations {
            let mut gradient = DVector::<f64>::zeros(k + 1);
            let mut hessian = DMatrix::<f64>::zeros(k + 1, k + 1);
            let mut x = vec![1.0; k + 1];
            for (i, &target) in is_target.iter().enumerate() {
                for (j, column) in systems.iter().enumerate() {
                    x[j] = column[i];
                }
                let z = linear(systems, &theta, i) + prior_logit;
                let sigma = logistic(z);
                let (g, h) = if target {
                    (-w_tar * (1.0 - sigma), w_tar * sigma * (1.0 - sigma))
                } else {
                    (w_non * sigma, w_non * sigma * (1.0 - sigma))
                };
                for a in 0..=k {
                    gradient[a] += g * x[a];
                    for b in 0..=a {
                        hessian[(a, b)] += h * x[a] * x[b];
                    }
                }
            }
            for a in 0..=k {
                for b in 0..a {
                    hessian[(b, a)] = hessian[(a, b)];
                }
            }
            for a in 0..k {
                gradient[a] += options.l2_penalty * theta[a];
                hessian[(a, a)] += options.l2_penalty;
            }
            let step = newton_step(&hessian, &gradient);
            let decrement = gradient.dot(&step);
            if decrement.is_nan() || decrement <= options.tolerance {
                break;
            }
            // Backtracking (Armijo) line search along the descent direction −step.
            let mut t = 1.0;
            let mut accepted = false;
            while t > 1e-10 {
                let candidate = &theta - t * &step;
                let value = objective(&candidate);
                if value <= current - 0.25 * t * decrement {
                    theta = candidate;
                    current = value;
                    accepted = true;
                    break;
                }
                t *= 0.5;
            }
            if !accepted {
                break;
            }
        }
        Ok(Self {
            weights: theta.rows(0, k).iter().copied().collect(),
            offset: theta[k],
        })
    }

    /// Fused LLR (nats) of one trial's scores (one per system).
    pub fn apply(&self, scores: &[f64]) -> Result<f64, CalibrationError> {
        if scores.len() != self.weights.len() {
            return Err(CalibrationError::Shape {
                what: "scores per trial (one per fused system)",
                expected: self.weights.len(),
                got: scores.len(),
            });
        }
        Ok(self
            .weights
            .iter()
            .zip(scores)
            .map(|(w, s)| w * s)
            .sum::<f64>()
            + self.offset)
    }
}

fn linear(systems: &[&[f64]], theta: &DVector<f64>, i: usize) -> f64 {
    let k = systems.len();
    systems
        .iter()
        .enumerate()
        .map(|(j, column)| theta[j] * column[i])
        .sum::<f64>()
        + theta[k]
}

fn logistic(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// H⁻¹g by Cholesky; on a (numerically) singular Hessian, add a growing ridge.
fn newton_step(hessian: &DMatrix<f64>, gradient: &DVector<f64>) -> DVector<f64> {
    let mut ridge = 0.0;
    let scale = hessian.diagonal().amax().max(1e-300);
    loop {
        let mut h = hessian.clone();
        for a in 0..h.nrows() {
            h[(a, a)] += ridge;
        }
        if let Some(chol) = h.cholesky() {
            return chol.solve(gradient);
        }
        ridge = if ridge == 0.0 {
            scale * 1e-12
        } else {
            ridge * 10.0
        };
        if ridge > scale * 1e6 {
            return gradient / scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{cllr, min_cllr};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    fn trials(
        n_tar: usize,
        n_non: usize,
        seed: u64,
        f: impl Fn(bool, f64) -> f64,
    ) -> (Vec<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let labels: Vec<bool> = (0..n_tar + n_non).map(|i| i < n_tar).collect();
        let scores = labels
            .iter()
            .map(|&t| f(t, normal.sample(&mut rng)))
            .collect();
        (scores, labels)
    }

    #[test]
    fn gaussian_scores_recover_the_true_llr_and_approach_min_cllr() {
        // Targets N(4, 2²), non-targets N(1, 2²): true LLR = (μt − μn)/σ²·s − (μt² − μn²)/(2σ²)
        // = 0.75 s − 1.875.
        let (scores, labels) = trials(4000, 16000, 1, |t, z| {
            if t {
                4.0 + 2.0 * z
            } else {
                1.0 + 2.0 * z
            }
        });
        let cal = Calibration::train(&scores, &labels, &CalibrationOptions::default()).unwrap();
        assert!((cal.scale - 0.75).abs() < 0.05, "scale {}", cal.scale);
        assert!((cal.offset + 1.875).abs() < 0.15, "offset {}", cal.offset);
        let llrs: Vec<f64> = scores.iter().map(|&s| cal.apply(s)).collect();
        let c = cllr(&llrs, &labels).unwrap();
        let m = min_cllr(&scores, &labels).unwrap();
        assert!(c >= m - 1e-12 && c - m < 0.02, "cllr {c} min {m}");
    }

    #[test]
    fn random_scores_get_zero_weight_and_unit_cllr() {
        let (scores, labels) = trials(3000, 3000, 2, |_, z| z);
        let cal = Calibration::train(&scores, &labels, &CalibrationOptions::default()).unwrap();
        assert!(cal.scale.abs() < 0.08, "scale {}", cal.scale);
        assert!(cal.offset.abs() < 0.08, "offset {}", cal.offset);
        let llrs: Vec<f64> = scores.iter().map(|&s| cal.apply(s)).collect();
        let c = cllr(&llrs, &labels).unwrap();
        assert!((c - 1.0).abs() < 0.005, "cllr {c}");
    }

    #[test]
    fn separable_scores_get_large_weight_and_near_zero_cllr() {
        let (scores, labels) = trials(
            500,
            500,
            3,
            |t, z| if t { 5.0 + z.abs() } else { -5.0 - z.abs() },
        );
        let cal = Calibration::train(&scores, &labels, &CalibrationOptions::default()).unwrap();
        assert!(cal.scale > 1.0, "scale {}", cal.scale);
        let llrs: Vec<f64> = scores.iter().map(|&s| cal.apply(s)).collect();
        assert!(cllr(&llrs, &labels).unwrap() < 0.01);
    }

    #[test]
    fn optimum_has_zero_gradient_by_finite_differences() {
        let (scores, labels) = trials(300, 900, 4, |t, z| if t { 1.0 + z } else { z });
        let options = CalibrationOptions {
            effective_prior: 0.1,
            ..CalibrationOptions::default()
        };
        let cal = Calibration::train(&scores, &labels, &options).unwrap();
        let p = options.effective_prior;
        let logit = (p / (1.0 - p)).ln();
        let nt = 300.0;
        let nn = 900.0;
        let j = |a: f64, b: f64| {
            scores
                .iter()
                .zip(&labels)
                .map(|(&s, &t)| {
                    let z = a * s + b + logit;
                    if t {
                        p / nt * (1.0 + (-z).exp()).ln()
                    } else {
                        (1.0 - p) / nn * (1.0 + z.exp()).ln()
                    }
                })
                .sum::<f64>()
                + 0.5 * options.l2_penalty * a * a
        };
        let h = 1e-5;
        let ga = (j(cal.scale + h, cal.offset) - j(cal.scale - h, cal.offset)) / (2.0 * h);
        let gb = (j(cal.scale, cal.offset + h) - j(cal.scale, cal.offset - h)) / (2.0 * h);
        assert!(ga.abs() < 1e-7 && gb.abs() < 1e-7, "{ga} {gb}");
        // And it is a minimum: perturbations increase J.
        let j0 = j(cal.scale, cal.offset);
        for (da, db) in [(0.01, 0.0), (-0.01, 0.0), (0.0, 0.01), (0.0, -0.01)] {
            assert!(j(cal.scale + da, cal.offset + db) > j0);
        }
    }

    #[test]
    fn fusion_weights_independent_systems_by_their_information() {
        // Two conditionally independent Gaussian systems with separations 2 and 1 (unit variance):
        // the optimal fused LLR is 2·s1 + 1·s2 + const.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let labels: Vec<bool> = (0..20_000).map(|i| i % 4 == 0).collect();
        let s1: Vec<f64> = labels
            .iter()
            .map(|&t| normal.sample(&mut rng) + if t { 2.0 } else { 0.0 })
            .collect();
        let s2: Vec<f64> = labels
            .iter()
            .map(|&t| normal.sample(&mut rng) + if t { 1.0 } else { 0.0 })
            .collect();
        let fusion = Fusion::train(&[&s1, &s2], &labels, &CalibrationOptions::default()).unwrap();
        assert!(
            (fusion.weights[0] - 2.0).abs() < 0.1,
            "{:?}",
            fusion.weights
        );
        assert!(
            (fusion.weights[1] - 1.0).abs() < 0.1,
            "{:?}",
            fusion.weights
        );
        assert!((fusion.offset + 2.5).abs() < 0.15, "{}", fusion.offset);
        assert!(fusion.apply(&[1.0]).is_err());
        let json = serde_json::to_string(&fusion).unwrap();
        let back: Fusion = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fusion);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let opts = CalibrationOptions::default();
        assert!(Calibration::train(&[1.0, 2.0], &[true, true], &opts).is_err());
        assert!(Calibration::train(&[1.0], &[true, false], &opts).is_err());
        assert!(Calibration::train(&[f64::NAN, 1.0], &[true, false], &opts).is_err());
        let bad = CalibrationOptions {
            effective_prior: 0.0,
            ..opts
        };
        assert!(Calibration::train(&[1.0, 2.0], &[true, false], &bad).is_err());
    }
}
