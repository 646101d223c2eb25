//! Scoring a development set with the trained systems.

use crate::calibration::TestQuality;
use crate::engine::voice::GmmUbmSystem;
use crate::eval::{DevSet, ScoreMatrix};
use crate::features::{AdaptiveNoiseSuppression, FeatureMatrix, FrontEndOptions};

use super::gmm::score_tests_against_enrollments;
use super::{analysed_sessions, RecipeError, RecordingAnalysis};

/// Front-end features of a development set: one matrix per enrollment (its files joined) and one
/// per test file.
#[derive(Debug, Clone)]
pub struct SetFeatures {
    /// Voiced features per enrollment, in `DevSet::enrollments` order.
    pub enrollments: Vec<FeatureMatrix>,
    /// Voiced features per test, in `DevSet::tests` order.
    pub tests: Vec<FeatureMatrix>,
    /// Energy spread and noise-suppression gate of each enrollment (its files as one session).
    pub enrollment_analysis: Vec<RecordingAnalysis>,
    /// Energy spread and noise-suppression gate of each test.
    pub test_analysis: Vec<RecordingAnalysis>,
}

impl SetFeatures {
    /// What a fusion's quality recalibration knows of each test, in `DevSet::tests` order: the
    /// spread of its frame log energies and its voiced frames
    /// ([`super::backend::FusedSystem::apply_matrices`]).
    pub fn test_quality(&self) -> Vec<TestQuality> {
        self.tests
            .iter()
            .zip(&self.test_analysis)
            .map(|(f, a)| TestQuality::new(a.energy_spread_nats, f.num_frames()))
            .collect()
    }
}

/// Extracts the features of a whole set (parallel). With `adaptive`, an enrollment (its files
/// as one session) or a test whose energy spread is under the gate is computed with the noise
/// suppressor, as the engine does ([`super::features_of_session`]).
pub fn set_features(
    set: &DevSet,
    opts: &FrontEndOptions,
    adaptive: Option<&AdaptiveNoiseSuppression>,
) -> Result<SetFeatures, RecipeError> {
    let groups: Vec<_> = set.enrollments.iter().map(|e| e.wavs.clone()).collect();
    let (enrollments, enrollment_analysis) = analysed_sessions(&groups, opts, adaptive, &|| {})?;
    let groups: Vec<_> = set.tests.iter().map(|t| vec![t.clone()]).collect();
    let (tests, test_analysis) = analysed_sessions(&groups, opts, adaptive, &|| {})?;
    Ok(SetFeatures {
        enrollments,
        tests,
        enrollment_analysis,
        test_analysis,
    })
}

/// GMM-UBM scores of every (enrollment, test) pair: calibrated LLRs when the system has a
/// calibration, raw average frame LLRs otherwise. Also returns the mean scoring time of one test
/// against the whole gallery (ms, one thread per test).
pub fn score_gmm(
    system: &GmmUbmSystem,
    feats: &SetFeatures,
) -> Result<(ScoreMatrix, f64), RecipeError> {
    let tests: Vec<&FeatureMatrix> = feats.tests.iter().collect();
    let scored = score_tests_against_enrollments(system, &feats.enrollments, &tests, "scoring")?;
    let num_tests = feats.tests.len();
    let mut scores = vec![0.0; feats.enrollments.len() * num_tests];
    for (t, (test, f)) in scored.iter().zip(&feats.tests).enumerate() {
        for (e, &s) in test.raw.iter().enumerate() {
            scores[e * num_tests + t] = system.calibrate(s, f.num_frames());
        }
    }
    let ms = scored.iter().map(|t| t.ms).sum::<f64>() / num_tests.max(1) as f64;
    Ok((ScoreMatrix { num_tests, scores }, ms))
}
