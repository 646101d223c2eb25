//! Voice scoring systems behind the engine: GMM-UBM (MAP-adapted speaker models, top-C
//! scoring) with a duration-aware calibration to natural-log likelihood ratios.

use serde::{Deserialize, Serialize};

use crate::calibration::{CalibrationError, CalibrationOptions, Fusion};
use crate::features::FeatureMatrix;
use crate::gmm::{map_update, AccumDiagGmm, DiagGmm, GmmError, MapDiagGmmOptions, SpeakerBank};

/// Calibration of a score whose reliability grows with the amount of speech behind it:
/// `llr = w₀·s + w₁·s·ln(n/100) + w₂·ln(n/100) + b`, with n the number of voiced 10-ms frames
/// scored (so the scale and the offset both vary with log-duration; n = 100 is 1 s of speech).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DurationCalibration {
    /// Weights of (s, s·ln(n/100), ln(n/100)) and the offset.
    pub fusion: Fusion,
}

impl DurationCalibration {
    fn columns(score: f64, frames: usize) -> [f64; 3] {
        let l = (frames.max(1) as f64 / 100.0).ln();
        [score, score * l, l]
    }

    /// Trains on raw scores, the voiced-frame counts they were computed on, and labels.
    pub fn train(
        scores: &[f64],
        frames: &[usize],
        is_target: &[bool],
        options: &CalibrationOptions,
    ) -> Result<Self, CalibrationError> {
        if frames.len() != scores.len() {
            return Err(CalibrationError::Shape {
                what: "frame counts",
                expected: scores.len(),
                got: frames.len(),
            });
        }
        let cols: Vec<[f64; 3]> = scores
            .iter()
            .zip(frames)
            .map(|(&s, &n)| Self::columns(s, n))
            .collect();
        let c: Vec<Vec<f64>> = (0..3)
            .map(|k| cols.iter().map(|row| row[k]).collect())
            .collect();
        let refs: Vec<&[f64]> = c.iter().map(Vec::as_slice).collect();
        Ok(Self {
            fusion: Fusion::train(&refs, is_target, options)?,
        })
    }

    /// Calibrated LLR (nats) of a raw score computed on `frames` voiced frames.
    pub fn apply(&self, score: f64, frames: usize) -> f64 {
        let c = Self::columns(score, frames);
        self.fusion
            .weights
            .iter()
            .zip(c)
            .map(|(w, x)| w * x)
            .sum::<f64>()
            + self.fusion.offset
    }
}

/// Options of the GMM-UBM system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GmmUbmOptions {
    /// MAP adaptation of enrollment models (default: means only, relevance factor 16).
    pub map: MapDiagGmmOptions,
    /// UBM components kept per frame for scoring (default 5).
    pub top_c: usize,
}

impl Default for GmmUbmOptions {
    fn default() -> Self {
        Self {
            map: MapDiagGmmOptions::default(),
            top_c: 5,
        }
    }
}

/// The classic GMM-UBM speaker verification system (Reynolds et al. 2000).
#[derive(Debug, Clone, PartialEq)]
pub struct GmmUbmSystem {
    /// The universal background model.
    pub ubm: DiagGmm,
    /// Enrollment and scoring options.
    pub options: GmmUbmOptions,
    /// Calibration of average frame LLRs to natural-log LRs, if trained.
    pub calibration: Option<DurationCalibration>,
}

impl GmmUbmSystem {
    /// MAP-adapts the UBM to a speaker's voiced enrollment features.
    pub fn enroll(&self, feats: &FeatureMatrix) -> Result<DiagGmm, GmmError> {
        let mut acc = AccumDiagGmm::for_model(&self.ubm);
        self.ubm.accumulate_stats(feats, &mut acc)?;
        map_update(&self.ubm, &acc, &self.options.map)
    }

    /// Raw scores (average frame LLR, nats) of `feats` against every speaker in `bank`.
    pub fn raw_scores(
        &self,
        feats: &FeatureMatrix,
        bank: &SpeakerBank,
    ) -> Result<Vec<f64>, GmmError> {
        let sel = self.ubm.gaussian_selection(feats, self.options.top_c)?;
        bank.score(feats, &sel)
    }

    /// Calibrated LLR of a raw score computed on `frames` voiced frames (the raw score itself when
    /// no calibration is loaded).
    pub fn calibrate(&self, raw: f64, frames: usize) -> f64 {
        self.calibration
            .as_ref()
            .map_or(raw, |c| c.apply(raw, frames))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_calibration_learns_a_duration_dependent_scale() {
        // Synthetic raw scores whose separation grows with duration: target mean +0.2, non-target
        // −0.2, noise σ = 1/sqrt(n/50). The ideal LLR scale grows linearly with n, so the fitted
        // calibration must give a larger |llr| for the same raw score at longer durations.
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (mut s, mut n, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for &frames in &[100usize, 300, 700] {
            let sd = (50.0 / frames as f64).sqrt();
            for i in 0..4000 {
                let target = i % 4 == 0;
                let mean = if target { 0.2 } else { -0.2 };
                s.push(Normal::new(mean, sd).unwrap().sample(&mut rng));
                n.push(frames);
                y.push(target);
            }
        }
        let cal = DurationCalibration::train(&s, &n, &y, &CalibrationOptions::default()).unwrap();
        let short = cal.apply(0.3, 100) - cal.apply(0.0, 100);
        let long = cal.apply(0.3, 700) - cal.apply(0.0, 700);
        assert!(
            long > 3.0 * short,
            "slope at 7 s ({long}) should be far above slope at 1 s ({short})"
        );
        // Theory: llr(s) = 2·0.2·s/σ² = 0.4·s·n/50 → slope per unit score 0.8 at n=100, 5.6 at n=700.
        assert!(
            (short / 0.3 - 0.8).abs() < 0.35,
            "slope at 1 s: {}",
            short / 0.3
        );
        assert!(
            (long / 0.3 - 5.6).abs() < 1.5,
            "slope at 7 s: {}",
            long / 0.3
        );
    }
}
