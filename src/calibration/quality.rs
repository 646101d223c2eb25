//! Quality-dependent calibration of an LLR (a "quality measure function", as in the fusion of
//! NIST SRE 2012 systems): the scale and the offset of the mapping depend on a measure of the
//! test signal's quality, here the spread of its frame log energies
//! ([`crate::features::EnergyRange`], an SNR proxy).
//!
//! llr' = w₀·llr + w₁·q + w₂·llr·q + b, with q = clamp(spread, lo, hi) − centre.
//!
//! A score from a clean line is more reliable than the same score from a noisy one: scores from
//! noise pile up in the middle, so one mapping for both is over-confident on noisy calls and
//! under-confident on clean ones. Trained by the same prior-weighted logistic regression as
//! [`super::Fusion`], on trials whose tests go through clean and degraded channels.

use serde::{Deserialize, Serialize};

use super::{CalibrationError, CalibrationOptions, Fusion};

/// Quality-dependent affine map of an LLR (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityCalibration {
    /// Weights of (llr, q, llr·q) and the offset.
    pub fusion: Fusion,
    /// The quality measure is clamped to [lo, hi] (nats of log-energy spread) ...
    pub lo: f64,
    /// ... upper end of the clamp.
    pub hi: f64,
    /// ... and centred on this value (the training trials' mean of the clamped measure).
    pub centre: f64,
}

impl QualityCalibration {
    /// Default clamp of the energy spread, nats: below 2 the call is noise, above 12 the spread
    /// measures digital silence (zeroed packets, gated lines) rather than the SNR.
    pub const DEFAULT_CLAMP: (f64, f64) = (2.0, 12.0);

    /// Trains on `llrs` with the quality measure of each trial's test and the labels.
    pub fn train(
        llrs: &[f64],
        quality: &[f64],
        is_target: &[bool],
        clamp: (f64, f64),
        options: &CalibrationOptions,
    ) -> Result<Self, CalibrationError> {
        if quality.len() != llrs.len() {
            return Err(CalibrationError::Shape {
                what: "quality measures",
                expected: llrs.len(),
                got: quality.len(),
            });
        }
        let (lo, hi) = clamp;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(CalibrationError::InvalidOption {
                what: "quality clamp",
                value: lo,
                expected: "finite lo < hi",
            });
        }
        let clamped: Vec<f64> = quality
            .iter()
            .map(|&q| if q.is_nan() { lo } else { q.clamp(lo, hi) })
            .collect();
        let centre = clamped.iter().sum::<f64>() / clamped.len().max(1) as f64;
        let q: Vec<f64> = clamped.iter().map(|&c| c - centre).collect();
        let cross: Vec<f64> = llrs.iter().zip(&q).map(|(&s, &q)| s * q).collect();
        let fusion = Fusion::train(&[llrs, &q, &cross], is_target, options)?;
        Ok(Self {
            fusion,
            lo,
            hi,
            centre,
        })
    }

    /// The recalibrated LLR (nats) of `llr` for a test of quality `quality` (nats of spread; NaN
    /// is treated as the lowest quality).
    pub fn apply(&self, llr: f64, quality: f64) -> f64 {
        let q = if quality.is_nan() {
            self.lo
        } else {
            quality.clamp(self.lo, self.hi)
        } - self.centre;
        let w = &self.fusion.weights;
        w[0] * llr + w[1] * q + w[2] * llr * q + self.fusion.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    /// Scores whose separation depends on the quality: on clean tests (q = 10) target and
    /// non-target scores are N(±2, 1), on noisy ones (q = 4) N(±0.5, 1). For equal-variance
    /// Gaussians N(±m, 1) the true LLR is 2m·s, so the ideal map has scale 4 on clean tests and 1 on
    /// noisy ones, which llr' = w₀·s + w₂·s·q (+ w₁q + b ≈ 0) can express exactly. The trained
    /// calibration must find it, and beat any single affine calibration in Cllr.
    #[test]
    fn learns_a_scale_that_grows_with_quality() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let unit = Normal::new(0.0, 1.0).unwrap();
        let (mut s, mut q, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..40_000 {
            let clean = i % 2 == 0;
            let target = rng.random_bool(0.5);
            let m = if clean { 2.0 } else { 0.5 };
            s.push(if target { m } else { -m } + unit.sample(&mut rng));
            q.push(if clean { 10.0 } else { 4.0 });
            y.push(target);
        }
        let opts = CalibrationOptions::default();
        let cal = QualityCalibration::train(&s, &q, &y, (2.0, 12.0), &opts).unwrap();
        assert!((cal.centre - 7.0).abs() < 1e-9);
        // slope per unit score at q = 10 and q = 4
        let slope = |quality: f64| cal.apply(1.0, quality) - cal.apply(0.0, quality);
        assert!(
            (slope(10.0) - 4.0).abs() < 0.15,
            "clean slope {}",
            slope(10.0)
        );
        assert!(
            (slope(4.0) - 1.0).abs() < 0.05,
            "noisy slope {}",
            slope(4.0)
        );
        assert!(cal.apply(0.0, 10.0).abs() < 0.1 && cal.apply(0.0, 4.0).abs() < 0.1);
        // Cllr against the best single affine map
        let cllr = |llr: &dyn Fn(usize) -> f64| {
            let (mut ct, mut nt, mut cn, mut nn) = (0.0, 0, 0.0, 0);
            for (i, &target) in y.iter().enumerate() {
                let l = llr(i);
                if target {
                    ct += (1.0 + (-l).exp()).ln();
                    nt += 1;
                } else {
                    cn += (1.0 + l.exp()).ln();
                    nn += 1;
                }
            }
            0.5 * (ct / nt as f64 + cn / nn as f64) / std::f64::consts::LN_2
        };
        let affine = crate::calibration::Calibration::train(&s, &y, &opts).unwrap();
        let with_quality = cllr(&|i| cal.apply(s[i], q[i]));
        let without = cllr(&|i| affine.apply(s[i]));
        assert!(with_quality < without - 0.02, "{with_quality} vs {without}");
    }

    #[test]
    fn clamps_the_measure_and_checks_its_inputs() {
        let s = [1.0, -1.0, 2.0, -2.0];
        let y = [true, false, true, false];
        let opts = CalibrationOptions::default();
        assert!(QualityCalibration::train(&s, &[1.0; 3], &y, (2.0, 12.0), &opts).is_err());
        assert!(QualityCalibration::train(&s, &[1.0; 4], &y, (12.0, 2.0), &opts).is_err());
        let cal =
            QualityCalibration::train(&s, &[5.0, 6.0, 7.0, 30.0], &y, (2.0, 12.0), &opts).unwrap();
        assert!((cal.centre - 7.5).abs() < 1e-12);
        assert_eq!(cal.apply(1.5, 40.0), cal.apply(1.5, 12.0));
        assert_eq!(cal.apply(1.5, -3.0), cal.apply(1.5, 2.0));
        assert_eq!(cal.apply(1.5, f64::NAN), cal.apply(1.5, 2.0));
    }
}
