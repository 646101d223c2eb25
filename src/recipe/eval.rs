//! Scoring a development set with the trained systems.

use rayon::prelude::*;

use crate::engine::voice::GmmUbmSystem;
use crate::eval::{DevSet, ScoreMatrix};
use crate::features::{FeatureMatrix, FrontEndOptions};
use crate::gmm::{DiagGmm, SpeakerBank};

use super::{features_of_groups, RecipeError};

/// Front-end features of a development set: one matrix per enrollment (its files joined) and one
/// per test file.
#[derive(Debug, Clone)]
pub struct SetFeatures {
    /// Voiced features per enrollment, in `DevSet::enrollments` order.
    pub enrollments: Vec<FeatureMatrix>,
    /// Voiced features per test, in `DevSet::tests` order.
    pub tests: Vec<FeatureMatrix>,
}

/// Extracts the features of a whole set (parallel).
pub fn set_features(set: &DevSet, opts: &FrontEndOptions) -> Result<SetFeatures, RecipeError> {
    let groups: Vec<_> = set.enrollments.iter().map(|e| e.wavs.clone()).collect();
    let enrollments = features_of_groups(&groups, opts, &|| {})?;
    let groups: Vec<_> = set.tests.iter().map(|t| vec![t.clone()]).collect();
    let tests = features_of_groups(&groups, opts, &|| {})?;
    Ok(SetFeatures { enrollments, tests })
}

/// GMM-UBM scores of every (enrollment, test) pair: calibrated LLRs when the system has a
/// calibration, raw average frame LLRs otherwise. Also returns the mean scoring time of one test
/// against the whole gallery (ms, one thread per test).
pub fn score_gmm(
    system: &GmmUbmSystem,
    feats: &SetFeatures,
) -> Result<(ScoreMatrix, f64), RecipeError> {
    let models: Vec<DiagGmm> = feats
        .enrollments
        .par_iter()
        .map(|f| system.enroll(f))
        .collect::<Result<_, _>>()
        .map_err(|e| RecipeError::stage("enrollment", e))?;
    let refs: Vec<&DiagGmm> = models.iter().collect();
    let bank =
        SpeakerBank::new(&system.ubm, &refs).map_err(|e| RecipeError::stage("speaker bank", e))?;
    let timed: Vec<(Vec<f64>, f64)> = feats
        .tests
        .par_iter()
        .map(|f| {
            let t0 = std::time::Instant::now();
            let raw = system.raw_scores(f, &bank)?;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            Ok((
                raw.iter()
                    .map(|&s| system.calibrate(s, f.num_frames()))
                    .collect(),
                ms,
            ))
        })
        .collect::<Result<_, crate::gmm::GmmError>>()
        .map_err(|e| RecipeError::stage("scoring", e))?;
    let num_tests = feats.tests.len();
    let mut scores = vec![0.0; models.len() * num_tests];
    for (t, (row, _)) in timed.iter().enumerate() {
        for (e, &s) in row.iter().enumerate() {
            scores[e * num_tests + t] = s;
        }
    }
    let ms = timed.iter().map(|(_, ms)| ms).sum::<f64>() / num_tests.max(1) as f64;
    Ok((ScoreMatrix { num_tests, scores }, ms))
}
