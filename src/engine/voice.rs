//! Voice scoring systems behind the engine: GMM-UBM (MAP-adapted speaker models, top-C
//! scoring) with a duration-aware calibration to natural-log likelihood ratios.

use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::calibration::{CalibrationError, CalibrationOptions, Fusion};
use crate::features::{FeatureMatrix, FrontEndOptions};
use crate::gmm::{
    map_update, AccumDiagGmm, DiagGmm, GaussianSelection, GmmError, MapDiagGmmOptions, SpeakerBank,
};
use crate::plda::CohortStats;

pub use super::gmm_cohort::{GmmCohort, GmmCohortOptions};
use crate::model_io::{FrontEndCheck, FrontEndFingerprint, ModelFile, ModelIoError};

/// Model-file kind of a saved [`GmmUbmSystem`].
pub const GMM_UBM_SYSTEM_KIND: &str = "gmm-ubm-system";
/// Name under which front-end options are fingerprinted in model files.
pub const FRONT_END_NAME: &str = "quivox-mfcc-frontend";

/// The fingerprint model files carry for `opts`.
pub fn front_end_fingerprint(opts: &FrontEndOptions) -> Result<FrontEndFingerprint, ModelIoError> {
    FrontEndFingerprint::new(FRONT_END_NAME, opts)
}

/// The front-end options a model file was trained with (its fingerprint, decoded).
pub fn front_end_of(file: &ModelFile) -> Result<FrontEndOptions, ModelIoError> {
    let invalid = |message: String| ModelIoError::InvalidModel {
        kind: file.header().kind.clone(),
        message,
    };
    let fp = file
        .header()
        .front_end
        .as_ref()
        .ok_or_else(|| invalid("no front-end fingerprint".into()))?;
    if fp.name != FRONT_END_NAME {
        return Err(invalid(format!(
            "front end {:?}; expected {FRONT_END_NAME:?}",
            fp.name
        )));
    }
    let opts: FrontEndOptions = serde_json::from_str(&fp.options_json)
        .map_err(|e| invalid(format!("front-end options: {e}")))?;
    opts.validate()
        .map_err(|e| invalid(format!("front-end options: {e}")))?;
    Ok(opts)
}

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
    /// Calibration of (normalised) scores to natural-log LRs, if trained.
    pub calibration: Option<DurationCalibration>,
    /// Cohort for adaptive S-norm of raw scores ([`GmmCohort`]); `None`: raw scores are
    /// calibrated directly.
    pub cohort: Option<GmmCohort>,
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

    /// Z-norm side statistics of an enrolled `model` (None when the system has no cohort).
    pub fn model_norm(&self, model: &DiagGmm) -> Result<Option<CohortStats>, GmmError> {
        self.cohort
            .as_ref()
            .map(|c| c.model_stats(&self.ubm, self.options.top_c, model))
            .transpose()
    }

    /// T-norm side statistics of a test (`feats` with its top-C selection `sel`; None when the
    /// system has no cohort or the test no frames).
    pub fn test_norm(
        &self,
        feats: &FeatureMatrix,
        sel: &GaussianSelection,
    ) -> Result<Option<CohortStats>, GmmError> {
        match &self.cohort {
            Some(c) if !feats.is_empty() => c.test_stats(feats, sel).map(Some),
            _ => Ok(None),
        }
    }

    /// Normalises `raw` scores in place (adaptive S-norm) with each speaker's Z-side statistics
    /// `models` and the test's `test`; raw scores stay as they are without a cohort.
    pub fn normalize(
        &self,
        raw: &mut [f64],
        models: &[CohortStats],
        test: Option<&CohortStats>,
    ) -> Result<(), GmmError> {
        let (Some(_), Some(test)) = (&self.cohort, test) else {
            return Ok(());
        };
        if models.len() != raw.len() {
            return Err(GmmError::ShapeMismatch {
                what: "speakers' cohort statistics",
                expected: raw.len(),
                actual: models.len(),
            });
        }
        for (s, m) in raw.iter_mut().zip(models) {
            *s = crate::plda::s_norm(*s, m, test);
        }
        Ok(())
    }

    /// Scores before calibration of `feats` against every speaker of `bank`: raw average frame
    /// LLRs, adaptive-S-normalised with the speakers' statistics `models` when the system has a
    /// cohort.
    pub fn scores(
        &self,
        feats: &FeatureMatrix,
        bank: &SpeakerBank,
        models: &[CohortStats],
    ) -> Result<Vec<f64>, GmmError> {
        let sel = self.ubm.gaussian_selection(feats, self.options.top_c)?;
        let mut raw = bank.score(feats, &sel)?;
        let test = self.test_norm(feats, &sel)?;
        self.normalize(&mut raw, models, test.as_ref())?;
        Ok(raw)
    }

    /// Calibrated LLR of a (normalised) score computed on `frames` voiced frames (the score
    /// itself when no calibration is loaded).
    pub fn calibrate(&self, raw: f64, frames: usize) -> f64 {
        self.calibration
            .as_ref()
            .map_or(raw, |c| c.apply(raw, frames))
    }

    /// Saves the system (UBM as raw f32 sections, options and calibration as postcard) with the
    /// front end it was trained with.
    pub fn save(&self, path: &Path, front_end: &FrontEndOptions) -> Result<(), ModelIoError> {
        let mut w = self
            .ubm
            .to_model_writer(GMM_UBM_SYSTEM_KIND, Some(front_end_fingerprint(front_end)?))?;
        w.add_postcard("options", &self.options)?;
        w.add_postcard("calibration", &self.calibration)?;
        if let Some(cohort) = &self.cohort {
            cohort.write_sections(&mut w)?;
        }
        w.set_metadata(serde_json::json!({
            "components": self.ubm.num_components(),
            "dim": self.ubm.dim(),
            "top_c": self.options.top_c,
            "calibrated": self.calibration.is_some(),
            "cohort_models": self.cohort.as_ref().map(GmmCohort::num_models),
            "cohort_utterances": self.cohort.as_ref().map(GmmCohort::num_utterances),
        }));
        w.save(path)
    }

    /// Loads a system saved by [`GmmUbmSystem::save`], verifying checksum and version; returns it
    /// with the front-end options its features must be computed with.
    pub fn load(path: &Path) -> Result<(Self, FrontEndOptions), ModelIoError> {
        let file = ModelFile::load(path, GMM_UBM_SYSTEM_KIND, FrontEndCheck::Ignore)?;
        let front_end = front_end_of(&file)?;
        let ubm = DiagGmm::from_model_file(&file)?;
        let cohort = GmmCohort::from_model_file(&file, &ubm)?;
        let system = GmmUbmSystem {
            ubm,
            options: file.postcard("options")?,
            calibration: file.postcard("calibration")?,
            cohort,
        };
        Ok((system, front_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_file_round_trips_with_its_front_end() {
        let ubm = DiagGmm::new(
            2,
            vec![0.5, 0.5],
            vec![0.0, 0.0, 1.0, 1.0],
            vec![1.0, 2.0, 1.0, 0.5],
        )
        .unwrap();
        let fusion = Fusion {
            weights: vec![1.0, 0.5, -0.1],
            offset: 0.2,
        };
        let system = GmmUbmSystem {
            ubm,
            options: GmmUbmOptions {
                top_c: 2,
                ..Default::default()
            },
            calibration: Some(DurationCalibration { fusion }),
            cohort: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gmm.qvx");
        let mut fe = FrontEndOptions::default();
        fe.mfcc.num_ceps = 13;
        system.save(&path, &fe).unwrap();
        let (loaded, fe_loaded) = GmmUbmSystem::load(&path).unwrap();
        assert_eq!(loaded, system);
        assert_eq!(fe_loaded, fe);
        // A corrupted byte is caught by the checksum.
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            GmmUbmSystem::load(&path),
            Err(ModelIoError::ChecksumMismatch { .. })
        ));
    }

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
