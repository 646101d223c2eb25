//! Score normalisation with cohort statistics: Z-norm (enrollment side), T-norm (test side),
//! symmetric S-norm and adaptive S-norm (top-K cohort).

use super::PldaError;

/// Mean and standard deviation of a set of cohort scores.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CohortStats {
    /// Mean cohort score.
    pub mean: f64,
    /// Standard deviation of the cohort scores (population, divisor n), > 0.
    pub std: f64,
}

impl CohortStats {
    /// Statistics of all `scores` (at least two distinct finite values).
    pub fn from_scores(scores: &[f64]) -> Result<Self, PldaError> {
        if scores.len() < 2 {
            return Err(PldaError::NotEnoughData {
                what: "cohort scores",
                expected: 2,
                got: scores.len(),
            });
        }
        if scores.iter().any(|s| !s.is_finite()) {
            return Err(PldaError::NonFinite {
                what: "cohort scores",
            });
        }
        let (mean, std) = moments(scores);
        if std <= 0.0 {
            return Err(PldaError::NotEnoughData {
                what: "distinct cohort score values",
                expected: 2,
                got: 1,
            });
        }
        Ok(Self { mean, std })
    }

    /// Statistics of the `top_k` highest `scores` (the cohort members closest to the model).
    pub fn from_top_k(scores: &[f64], top_k: usize) -> Result<Self, PldaError> {
        if top_k < 2 || top_k > scores.len() {
            return Err(PldaError::NotEnoughData {
                what: "cohort scores for the requested top K (K >= 2)",
                expected: top_k.max(2),
                got: scores.len(),
            });
        }
        let mut sorted = scores.to_vec();
        if sorted.iter().any(|s| !s.is_finite()) {
            return Err(PldaError::NonFinite {
                what: "cohort scores",
            });
        }
        sorted.select_nth_unstable_by(top_k - 1, |a, b| b.total_cmp(a));
        Self::from_scores(&sorted[..top_k])
    }

    /// Statistics of the `top_k` highest `scores` (1 ≤ `top_k` ≤ their number, all finite) with
    /// the deviation floored at `min_std` > 0, so that identical scores (a degenerate test)
    /// normalise instead of failing.
    pub fn from_top_k_floored(
        scores: &[f64],
        top_k: usize,
        min_std: f64,
    ) -> Result<Self, PldaError> {
        if top_k == 0 || top_k > scores.len() {
            return Err(PldaError::NotEnoughData {
                what: "cohort scores for the requested top K (K >= 1)",
                expected: top_k.max(1),
                got: scores.len(),
            });
        }
        if scores.iter().any(|s| !s.is_finite()) {
            return Err(PldaError::NonFinite {
                what: "cohort scores",
            });
        }
        let mut sorted = scores.to_vec();
        sorted.select_nth_unstable_by(top_k - 1, |a, b| b.total_cmp(a));
        let (mean, std) = moments(&sorted[..top_k]);
        Ok(Self {
            mean,
            std: std.max(min_std),
        })
    }

    /// (score − mean) / std.
    pub fn normalize(&self, score: f64) -> f64 {
        (score - self.mean) / self.std
    }
}

/// Mean and population standard deviation of `values` (not empty).
fn moments(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Z-norm: normalise by the enrollment model's scores against a cohort of impostor utterances.
pub fn z_norm(score: f64, enroll_cohort: &CohortStats) -> f64 {
    enroll_cohort.normalize(score)
}

/// T-norm: normalise by the test utterance's scores against a cohort of impostor models.
pub fn t_norm(score: f64, test_cohort: &CohortStats) -> f64 {
    test_cohort.normalize(score)
}

/// Symmetric S-norm: the average of Z-norm and T-norm.
pub fn s_norm(score: f64, enroll_cohort: &CohortStats, test_cohort: &CohortStats) -> f64 {
    0.5 * (enroll_cohort.normalize(score) + test_cohort.normalize(score))
}

/// Adaptive S-norm: S-norm with each side's statistics taken over its `top_k` highest cohort scores.
pub fn adaptive_s_norm(
    score: f64,
    enroll_cohort_scores: &[f64],
    test_cohort_scores: &[f64],
    top_k: usize,
) -> Result<f64, PldaError> {
    let enroll = CohortStats::from_top_k(enroll_cohort_scores, top_k)?;
    let test = CohortStats::from_top_k(test_cohort_scores, top_k)?;
    Ok(s_norm(score, &enroll, &test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cohort_stats_and_norms_match_hand_computation() {
        let c = CohortStats::from_scores(&[1.0, 3.0]).unwrap();
        assert_eq!((c.mean, c.std), (2.0, 1.0));
        assert_eq!(z_norm(4.0, &c), 2.0);
        let t = CohortStats::from_scores(&[0.0, 0.0, 6.0, 6.0]).unwrap();
        assert_eq!((t.mean, t.std), (3.0, 3.0));
        assert_eq!(t_norm(6.0, &t), 1.0);
        assert_eq!(s_norm(4.0, &c, &t), 0.5 * (2.0 + 1.0 / 3.0));
    }

    #[test]
    fn adaptive_s_norm_with_all_scores_equals_s_norm_and_top_k_picks_highest() {
        let e = [0.5, -1.0, 2.0, 0.0, 1.5, -0.5];
        let t = [1.0, 2.0, -3.0, 0.25, 0.75, 0.1];
        let full = s_norm(
            1.0,
            &CohortStats::from_scores(&e).unwrap(),
            &CohortStats::from_scores(&t).unwrap(),
        );
        assert!((adaptive_s_norm(1.0, &e, &t, 6).unwrap() - full).abs() < 1e-15);
        let top = CohortStats::from_top_k(&e, 3).unwrap();
        let brute = CohortStats::from_scores(&[2.0, 1.5, 0.5]).unwrap();
        assert!((top.mean - brute.mean).abs() < 1e-15 && (top.std - brute.std).abs() < 1e-15);
        assert!(adaptive_s_norm(1.0, &e, &t, 7).is_err());
        // Floored: the same top-3 statistics; identical scores get the floor, not an error.
        let floored = CohortStats::from_top_k_floored(&e, 3, 1e-6).unwrap();
        assert!(
            (floored.mean - brute.mean).abs() < 1e-15 && (floored.std - brute.std).abs() < 1e-15
        );
        let flat = CohortStats::from_top_k_floored(&[2.0, 2.0, 2.0, -1.0], 3, 1e-6).unwrap();
        assert_eq!((flat.mean, flat.std), (2.0, 1e-6));
        assert!(CohortStats::from_top_k_floored(&e, 0, 1e-6).is_err());
        assert!(CohortStats::from_top_k_floored(&e, 7, 1e-6).is_err());
        assert!(CohortStats::from_top_k_floored(&[1.0, f64::NAN], 1, 1e-6).is_err());
        assert!(CohortStats::from_scores(&[1.0, 1.0]).is_err());
    }
}
