//! Quality-dependent calibration of an LLR (a "quality measure function", as in the fusion of
//! NIST SRE 2012 systems): the scale and the offset of the mapping depend on measures of the
//! test's quality, here
//!
//! - the spread of its frame log energies ([`crate::features::EnergyRange`], an SNR proxy), and
//! - the log of its amount of speech (voiced 10-ms frames scored), the classic duration QMF.
//!
//! llr' = w₀·llr + Σₖ (w₂ₖ₊₁·qₖ + w₂ₖ₊₂·llr·qₖ) + b, with qₖ = clamp(measureₖ, loₖ, hiₖ) − centreₖ.
//!
//! A score from a clean line is more reliable than the same score from a noisy one: scores from
//! noise pile up in the middle, so one mapping for both is over-confident on noisy calls and
//! under-confident on clean ones. The same holds for a long test against a short one, and the
//! calibration trials mix 3-, 5- and 7-s tests (a streaming session decides on any length): one
//! mapping for all is under-confident at 7 s. Trained by the same prior-weighted logistic
//! regression as [`super::Fusion`], on trials whose tests go through clean and degraded channels
//! and have several lengths.

use serde::{Deserialize, Serialize};

use super::{CalibrationError, CalibrationOptions, Fusion};

/// What a quality calibration knows about a test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestQuality {
    /// Spread of the test's frame log energies, nats
    /// ([`crate::features::EnergyRange::spread_nats`]); NaN when unknown (the lowest quality).
    pub energy_spread_nats: f64,
    /// Voiced 10-ms frames the scores were computed on.
    pub speech_frames: usize,
}

impl TestQuality {
    /// The quality of a test with this energy spread (NaN: unknown) and amount of speech.
    pub fn new(energy_spread_nats: f64, speech_frames: usize) -> Self {
        Self {
            energy_spread_nats,
            speech_frames,
        }
    }
}

/// A measure of test quality a [`QualityCalibration`] can depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QualityMeasure {
    /// Spread of the frame log energies, nats (an SNR proxy); NaN reads as the clamp's low end.
    EnergySpread,
    /// Natural log of the seconds of voiced speech scored (ln(frames / 100)); no speech reads as
    /// one frame.
    LogSpeechSeconds,
}

impl QualityMeasure {
    /// Every measure, in the order of their names.
    pub const ALL: [QualityMeasure; 2] = [Self::EnergySpread, Self::LogSpeechSeconds];

    /// Kebab-case name (what the CLI and the fusion file's metadata use).
    pub fn name(self) -> &'static str {
        match self {
            Self::EnergySpread => "energy-spread",
            Self::LogSpeechSeconds => "log-speech-seconds",
        }
    }

    /// The measure of `quality` before clamping (NaN for an unknown energy spread).
    pub fn value(self, quality: &TestQuality) -> f64 {
        match self {
            Self::EnergySpread => quality.energy_spread_nats,
            Self::LogSpeechSeconds => (quality.speech_frames.max(1) as f64 / 100.0).ln(),
        }
    }

    /// The clamp a calibration uses unless told otherwise: for the energy spread, below 2 nats
    /// the call is noise and above 12 the spread measures digital silence (zeroed packets, gated
    /// lines) rather than the SNR; for the duration none: the training trials' own range (a test
    /// longer than any trained on is read as the longest).
    pub fn default_clamp(self) -> Option<(f64, f64)> {
        match self {
            Self::EnergySpread => Some(QualityCalibration::DEFAULT_CLAMP),
            Self::LogSpeechSeconds => None,
        }
    }
}

impl std::str::FromStr for QualityMeasure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!(
                    "quality measure {s:?}; expected one of {}",
                    Self::ALL.map(Self::name).join(", ")
                )
            })
    }
}

/// One quality measure of a [`QualityCalibration`], with its clamp and centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityTerm {
    /// What is measured.
    pub measure: QualityMeasure,
    /// The measure is clamped to [lo, hi] ...
    pub lo: f64,
    /// ... upper end of the clamp ...
    pub hi: f64,
    /// ... and centred on this value (the training trials' mean of the clamped measure).
    pub centre: f64,
}

impl QualityTerm {
    /// The clamped, centred measure of a test.
    pub fn centred(&self, quality: &TestQuality) -> f64 {
        let v = self.measure.value(quality);
        let c = if v.is_nan() {
            self.lo
        } else {
            v.clamp(self.lo, self.hi)
        };
        c - self.centre
    }
}

/// Quality-dependent affine map of an LLR (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityCalibration {
    /// Weights of (llr, q₁, llr·q₁, q₂, llr·q₂, …) and the offset.
    pub fusion: Fusion,
    /// The measures, in weight order.
    pub terms: Vec<QualityTerm>,
}

/// The layout of a quality calibration written before the duration measure (energy spread
/// only): fusion files of that time store it in their `quality` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyOnlyQualityCalibration {
    /// Weights of (llr, q, llr·q) and the offset.
    pub fusion: Fusion,
    /// Clamp of the energy spread, low end ...
    pub lo: f64,
    /// ... high end ...
    pub hi: f64,
    /// ... and its centre.
    pub centre: f64,
}

impl From<EnergyOnlyQualityCalibration> for QualityCalibration {
    fn from(old: EnergyOnlyQualityCalibration) -> Self {
        Self {
            fusion: old.fusion,
            terms: vec![QualityTerm {
                measure: QualityMeasure::EnergySpread,
                lo: old.lo,
                hi: old.hi,
                centre: old.centre,
            }],
        }
    }
}

impl QualityCalibration {
    /// Default clamp of the energy spread, nats (see [`QualityMeasure::default_clamp`]).
    pub const DEFAULT_CLAMP: (f64, f64) = (2.0, 12.0);

    /// Trains on `llrs` with the quality of each trial's test and the labels, depending on
    /// `measures` (each with its clamp; `None`: [`QualityMeasure::default_clamp`], and without
    /// one the training values' range).
    pub fn train(
        llrs: &[f64],
        quality: &[TestQuality],
        is_target: &[bool],
        measures: &[(QualityMeasure, Option<(f64, f64)>)],
        options: &CalibrationOptions,
    ) -> Result<Self, CalibrationError> {
        if quality.len() != llrs.len() {
            return Err(CalibrationError::Shape {
                what: "quality measures",
                expected: llrs.len(),
                got: quality.len(),
            });
        }
        if measures.is_empty() {
            return Err(CalibrationError::Shape {
                what: "quality measures per trial",
                expected: 1,
                got: 0,
            });
        }
        let mut columns: Vec<Vec<f64>> = vec![llrs.to_vec()];
        let mut terms = Vec::with_capacity(measures.len());
        for &(measure, clamp) in measures {
            let (lo, hi) = match clamp.or(measure.default_clamp()) {
                Some(c) => c,
                // the training trials' own range
                None => quality
                    .iter()
                    .map(|q| measure.value(q))
                    .filter(|v| v.is_finite())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                        (a.min(v), b.max(v))
                    }),
            };
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(CalibrationError::InvalidOption {
                    what: "quality clamp",
                    value: lo,
                    expected: "finite lo ≤ hi",
                });
            }
            let mut term = QualityTerm {
                measure,
                lo,
                hi,
                centre: 0.0,
            };
            let clamped: Vec<f64> = quality.iter().map(|q| term.centred(q)).collect();
            term.centre = clamped.iter().sum::<f64>() / clamped.len().max(1) as f64;
            let q: Vec<f64> = clamped.iter().map(|&c| c - term.centre).collect();
            let cross: Vec<f64> = llrs.iter().zip(&q).map(|(&s, &q)| s * q).collect();
            columns.push(q);
            columns.push(cross);
            terms.push(term);
        }
        let refs: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        let fusion = Fusion::train(&refs, is_target, options)?;
        Ok(Self { fusion, terms })
    }

    /// The recalibrated LLR (nats) of `llr` for a test of this quality.
    pub fn apply(&self, llr: f64, quality: &TestQuality) -> f64 {
        let w = &self.fusion.weights;
        let mut out = w[0] * llr + self.fusion.offset;
        for (k, term) in self.terms.iter().enumerate() {
            let q = term.centred(quality);
            out += w[1 + 2 * k] * q + w[2 + 2 * k] * llr * q;
        }
        out
    }

    /// Whether the weights match the terms (1 + 2 per measure); what loading checks.
    pub fn is_consistent(&self) -> bool {
        !self.terms.is_empty() && self.fusion.weights.len() == 1 + 2 * self.terms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    const ENERGY: [(QualityMeasure, Option<(f64, f64)>); 1] =
        [(QualityMeasure::EnergySpread, Some((2.0, 12.0)))];

    fn spread(q: f64) -> TestQuality {
        TestQuality::new(q, 500)
    }

    /// Cllr (bits) of `llr(i)` against the labels, by its definition.
    fn cllr(y: &[bool], llr: &dyn Fn(usize) -> f64) -> f64 {
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
    }

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
            q.push(spread(if clean { 10.0 } else { 4.0 }));
            y.push(target);
        }
        let opts = CalibrationOptions::default();
        let cal = QualityCalibration::train(&s, &q, &y, &ENERGY, &opts).unwrap();
        assert!((cal.terms[0].centre - 7.0).abs() < 1e-9);
        assert!(cal.is_consistent());
        // slope per unit score at q = 10 and q = 4
        let slope =
            |quality: f64| cal.apply(1.0, &spread(quality)) - cal.apply(0.0, &spread(quality));
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
        assert!(
            cal.apply(0.0, &spread(10.0)).abs() < 0.1 && cal.apply(0.0, &spread(4.0)).abs() < 0.1
        );
        let affine = crate::calibration::Calibration::train(&s, &y, &opts).unwrap();
        let with_quality = cllr(&y, &|i| cal.apply(s[i], &q[i]));
        let without = cllr(&y, &|i| affine.apply(s[i]));
        assert!(with_quality < without - 0.02, "{with_quality} vs {without}");
    }

    /// Two measures at once, each with its own effect: the score's separation grows with the
    /// duration (m = 0.5 at 3 s, 1.5 at 7 s of speech) and, independently, the non-target mean
    /// moves with the energy spread (a noisy line lifts every score by 1). The true LLR is
    /// 2m·(s − c) with c the midpoint of the two means; the two-measure calibration must come
    /// near that ideal's Cllr, and beat the energy-only and duration-only calibrations.
    #[test]
    fn two_measures_learn_duration_and_channel_effects_together() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let unit = Normal::new(0.0, 1.0).unwrap();
        let (mut s, mut q, mut y, mut ideal) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..60_000 {
            let long = i % 2 == 0;
            let noisy = (i / 2) % 2 == 0;
            let target = rng.random_bool(0.5);
            let m: f64 = if long { 1.5 } else { 0.5 };
            let shift = if noisy { 1.0 } else { 0.0 };
            let x = shift + if target { m } else { -m } + unit.sample(&mut rng);
            s.push(x);
            ideal.push(2.0 * m * (x - shift));
            q.push(TestQuality::new(
                if noisy { 4.0 } else { 10.0 },
                if long { 700 } else { 300 },
            ));
            y.push(target);
        }
        let opts = CalibrationOptions::default();
        let both = QualityCalibration::train(
            &s,
            &q,
            &y,
            &[
                (QualityMeasure::EnergySpread, None),
                (QualityMeasure::LogSpeechSeconds, None),
            ],
            &opts,
        )
        .unwrap();
        // the duration's clamp is the training range: 3 to 7 s
        assert!((both.terms[1].lo - 3f64.ln()).abs() < 1e-12);
        assert!((both.terms[1].hi - 7f64.ln()).abs() < 1e-12);
        let energy = QualityCalibration::train(&s, &q, &y, &ENERGY, &opts).unwrap();
        let duration = QualityCalibration::train(
            &s,
            &q,
            &y,
            &[(QualityMeasure::LogSpeechSeconds, None)],
            &opts,
        )
        .unwrap();
        let c_both = cllr(&y, &|i| both.apply(s[i], &q[i]));
        let c_energy = cllr(&y, &|i| energy.apply(s[i], &q[i]));
        let c_duration = cllr(&y, &|i| duration.apply(s[i], &q[i]));
        let c_ideal = cllr(&y, &|i| ideal[i]);
        // The model's form (bilinear in llr and each centred measure) cannot express the exact
        // product 2m·(s − shift) for all four cells, so "near" is a few hundredths of a bit.
        assert!(c_both < c_ideal + 0.03, "both {c_both} vs ideal {c_ideal}");
        assert!(
            c_both < c_energy - 0.02,
            "both {c_both} vs energy {c_energy}"
        );
        assert!(
            c_both < c_duration - 0.02,
            "both {c_both} vs duration {c_duration}"
        );
        // a test longer than any trained on reads as the longest
        let long = TestQuality::new(10.0, 700);
        let longer = TestQuality::new(10.0, 6000);
        assert_eq!(both.apply(2.0, &long), both.apply(2.0, &longer));
    }

    #[test]
    fn clamps_the_measure_and_checks_its_inputs() {
        let s = [1.0, -1.0, 2.0, -2.0];
        let y = [true, false, true, false];
        let opts = CalibrationOptions::default();
        let q4 = [5.0, 6.0, 7.0, 30.0].map(spread);
        assert!(QualityCalibration::train(&s, &q4[..3], &y, &ENERGY, &opts).is_err());
        assert!(QualityCalibration::train(&s, &q4, &y, &[], &opts).is_err());
        let backwards = [(QualityMeasure::EnergySpread, Some((12.0, 2.0)))];
        assert!(QualityCalibration::train(&s, &q4, &y, &backwards, &opts).is_err());
        let cal = QualityCalibration::train(&s, &q4, &y, &ENERGY, &opts).unwrap();
        assert!((cal.terms[0].centre - 7.5).abs() < 1e-12);
        assert_eq!(cal.apply(1.5, &spread(40.0)), cal.apply(1.5, &spread(12.0)));
        assert_eq!(cal.apply(1.5, &spread(-3.0)), cal.apply(1.5, &spread(2.0)));
        assert_eq!(
            cal.apply(1.5, &spread(f64::NAN)),
            cal.apply(1.5, &spread(2.0))
        );
        // the energy-only calibration ignores the amount of speech
        assert_eq!(
            cal.apply(1.5, &TestQuality::new(8.0, 10)),
            cal.apply(1.5, &TestQuality::new(8.0, 10_000))
        );
    }

    #[test]
    fn measures_parse_by_name_and_files_of_the_energy_only_layout_convert() {
        for m in QualityMeasure::ALL {
            assert_eq!(m.name().parse::<QualityMeasure>(), Ok(m));
        }
        let err = "snr".parse::<QualityMeasure>().unwrap_err();
        assert!(err.contains("energy-spread, log-speech-seconds"), "{err}");
        // ln(frames / 100): 1 s of speech is 0, no speech reads as one frame
        let q = TestQuality::new(f64::NAN, 100);
        assert_eq!(QualityMeasure::LogSpeechSeconds.value(&q), 0.0);
        let q = TestQuality::new(f64::NAN, 0);
        assert_eq!(QualityMeasure::LogSpeechSeconds.value(&q), (0.01f64).ln());
        let old = EnergyOnlyQualityCalibration {
            fusion: Fusion {
                weights: vec![1.2, -0.4, 0.08],
                offset: -0.4,
            },
            lo: 2.0,
            hi: 12.0,
            centre: 9.0,
        };
        let new = QualityCalibration::from(old.clone());
        assert!(new.is_consistent());
        for (llr, sp) in [(3.0, 5.0), (-2.0, 11.0), (0.5, f64::NAN)] {
            let qc = sp.clamp(2.0, 12.0);
            let qc = if sp.is_nan() { 2.0 } else { qc } - 9.0;
            let expect = 1.2 * llr - 0.4 * qc + 0.08 * llr * qc - 0.4;
            assert!((new.apply(llr, &spread(sp)) - expect).abs() < 1e-12);
        }
    }
}
