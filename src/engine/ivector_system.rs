//! The i-vector / PLDA system: Baum–Welch statistics against the UBM → i-vector → centring, LDA,
//! WCCN, length normalisation → two-covariance PLDA LLR → optional S-norm against a cohort of
//! background vectors → duration-aware calibration to natural-log likelihood ratios.
//!
//! The vector back end ([`VectorBackend`]) is shared with the neural-embedding system
//! ([`crate::engine::embedding_system`]).

use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::engine::voice::DurationCalibration;
use crate::features::{FeatureMatrix, FrontEndOptions};
use crate::gmm::{BaumWelchStats, BwPosteriors, DiagGmm, GmmError};
use crate::ivector::{length_normalize, IvectorError, IvectorExtractor, Lda, MeanCentering, Wccn};
use crate::model_io::{FrontEndCheck, ModelFile, ModelIoError};
use crate::plda::{CohortStats, Plda, PldaEnrollment, PldaError, PldaOptions, PldaScorer};

/// Errors of the vector back ends and the systems built on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// I-vector extraction or post-processing failed.
    #[error("i-vector: {0}")]
    Ivector(#[from] IvectorError),
    /// PLDA training or scoring failed.
    #[error("PLDA: {0}")]
    Plda(#[from] PldaError),
    /// Statistics against the UBM failed.
    #[error("UBM statistics: {0}")]
    Gmm(#[from] GmmError),
    /// Calibration training failed.
    #[error("calibration: {0}")]
    Calibration(#[from] crate::calibration::CalibrationError),
    /// An input of the wrong size or an empty input.
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Actual size.
        got: usize,
    },
    /// An option out of its documented range.
    #[error("option {name} = {value}: expected {expected}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// Options of the vector back end (post-processing, PLDA, score normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendOptions {
    /// LDA output dimension; `None` skips LDA. Default `Some(150)` (clamped to the input dimension).
    pub lda_dim: Option<usize>,
    /// PCA to at most this many dimensions after centring, dropping directions with no variance
    /// (needed for ReLU embeddings with dead dimensions); `None` skips PCA. Default `None`.
    pub pca_dim: Option<usize>,
    /// Apply WCCN after LDA. Default false (PLDA models the within-class covariance itself).
    pub wccn: bool,
    /// PLDA training options.
    pub plda: PldaOptions,
    /// Keep a cohort of background vectors for symmetric S-norm. Default false (on the dev sets
    /// S-norm against the background cohort hurt both i-vectors and embeddings).
    pub s_norm: bool,
    /// Cohort scores kept per side for adaptive S-norm (the highest K); 0 = all. Default 200.
    pub s_norm_top_k: usize,
    /// At most this many cohort vectors are kept (evenly spaced over the training set). Default 400.
    pub max_cohort: usize,
}

impl Default for BackendOptions {
    fn default() -> Self {
        Self {
            lda_dim: Some(150),
            pca_dim: None,
            wccn: false,
            plda: PldaOptions::default(),
            s_norm: false,
            s_norm_top_k: 200,
            max_cohort: 400,
        }
    }
}

/// Centring, LDA, WCCN, length normalisation and PLDA over fixed-length vectors (i-vectors or
/// neural embeddings), with an optional S-norm cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorBackend {
    /// Subtracts the training mean.
    pub centering: MeanCentering,
    /// Optional PCA projection (out × in rows of orthonormal principal directions).
    pub pca: Option<nalgebra::DMatrix<f64>>,
    /// Optional LDA projection.
    pub lda: Option<Lda>,
    /// Optional WCCN.
    pub wccn: Option<Wccn>,
    /// Mean of the LDA/WCCN outputs, removed before length normalisation.
    pub post_mean: MeanCentering,
    /// The PLDA model on length-normalised vectors (norm √dim).
    pub plda: Plda,
    /// Post-processed background vectors for S-norm (empty: no S-norm).
    pub cohort: Vec<Vec<f64>>,
    /// Adaptive S-norm K (0 = the whole cohort).
    pub s_norm_top_k: usize,
}

/// An enrolled speaker of a [`VectorBackend`]: its PLDA enrollment and, with S-norm, the
/// statistics of its scores against the cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorEnrollment {
    /// PLDA enrollment (mean of the post-processed vectors in PLDA space and their count).
    pub plda: PldaEnrollment,
    /// Cohort statistics of this enrollment (Z-norm side), when the back end has a cohort.
    pub cohort: Option<CohortStats>,
}

fn as_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn apply_matrix(m: &nalgebra::DMatrix<f64>, x: &[f64]) -> Vec<f64> {
    (m * nalgebra::DVector::from_column_slice(x))
        .as_slice()
        .to_vec()
}

/// Principal directions (rows) of centred vectors: at most `max_dim`, and only those with
/// variance above 1e-6 of the largest.
fn pca_basis(x: &[Vec<f64>], max_dim: usize) -> Result<nalgebra::DMatrix<f64>, BackendError> {
    let d = x[0].len();
    let mut cov = nalgebra::DMatrix::<f64>::zeros(d, d);
    for v in x {
        let c = nalgebra::DVector::from_column_slice(v);
        cov.ger(1.0, &c, &c, 1.0);
    }
    cov /= x.len() as f64;
    let eig = cov.symmetric_eigen();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let top = eig.eigenvalues[order[0]].max(0.0);
    let keep: Vec<usize> = order
        .into_iter()
        .filter(|&i| eig.eigenvalues[i] > 1e-6 * top)
        .take(max_dim)
        .collect();
    if keep.is_empty() {
        return Err(BackendError::Shape {
            what: "PCA directions with non-zero variance",
            expected: 1,
            got: 0,
        });
    }
    let mut p = nalgebra::DMatrix::<f64>::zeros(keep.len(), d);
    for (r, &i) in keep.iter().enumerate() {
        p.row_mut(r)
            .copy_from(&eig.eigenvectors.column(i).transpose());
    }
    Ok(p)
}

impl VectorBackend {
    /// Trains the back end on `vectors` labelled by speaker.
    pub fn train<L: Eq + Hash>(
        vectors: &[Vec<f64>],
        labels: &[L],
        options: &BackendOptions,
    ) -> Result<Self, BackendError> {
        if vectors.len() != labels.len() || vectors.is_empty() {
            return Err(BackendError::Shape {
                what: "training vectors (one label each, at least one)",
                expected: labels.len().max(1),
                got: vectors.len(),
            });
        }
        let centering = MeanCentering::train(vectors)?;
        let mut x: Vec<Vec<f64>> = vectors.to_vec();
        for v in &mut x {
            centering.apply(v)?;
        }
        let pca = match options.pca_dim {
            Some(d) => {
                let p = pca_basis(&x, d)?;
                x = x.iter().map(|v| apply_matrix(&p, v)).collect();
                Some(p)
            }
            None => None,
        };
        let lda = match options.lda_dim {
            Some(d) => {
                let d = d.min(x[0].len());
                let lda = Lda::train(&x, labels, d)?;
                x = x.iter().map(|v| lda.apply(v)).collect::<Result<_, _>>()?;
                Some(lda)
            }
            None => None,
        };
        let wccn = if options.wccn {
            let w = Wccn::train(&x, labels)?;
            x = x.iter().map(|v| w.apply(v)).collect::<Result<_, _>>()?;
            Some(w)
        } else {
            None
        };
        let post_mean = MeanCentering::train(&x)?;
        let target = (x[0].len() as f64).sqrt();
        for v in &mut x {
            post_mean.apply(v)?;
            length_normalize(v, target);
        }
        let plda = Plda::train(&x, labels, &options.plda)?;
        let cohort = if options.s_norm {
            let k = options.max_cohort.clamp(2, x.len().max(2));
            let step = (x.len() as f64 / k as f64).max(1.0);
            (0..k.min(x.len()))
                .map(|i| x[((i as f64 * step) as usize).min(x.len() - 1)].clone())
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            centering,
            pca,
            lda,
            wccn,
            post_mean,
            plda,
            cohort,
            s_norm_top_k: options.s_norm_top_k,
        })
    }

    /// Input vector dimension.
    pub fn in_dim(&self) -> usize {
        self.centering.mean.len()
    }

    /// Dimension of the post-processed vectors the PLDA models.
    pub fn plda_dim(&self) -> usize {
        self.post_mean.mean.len()
    }

    /// Centring, LDA, WCCN, centring and length normalisation of one vector.
    pub fn postprocess(&self, x: &[f64]) -> Result<Vec<f64>, BackendError> {
        let mut v = x.to_vec();
        self.centering.apply(&mut v)?;
        if let Some(p) = &self.pca {
            v = apply_matrix(p, &v);
        }
        if let Some(lda) = &self.lda {
            v = lda.apply(&v)?;
        }
        if let Some(w) = &self.wccn {
            v = w.apply(&v)?;
        }
        self.post_mean.apply(&mut v)?;
        let target = (v.len() as f64).sqrt();
        length_normalize(&mut v, target);
        Ok(v)
    }

    fn cohort_stats(&self, scores: &[f64]) -> Result<CohortStats, BackendError> {
        let k = if self.s_norm_top_k == 0 {
            scores.len()
        } else {
            self.s_norm_top_k.min(scores.len())
        };
        Ok(CohortStats::from_top_k(scores, k)?)
    }

    /// Enrols a speaker from one or more raw vectors (each post-processed, then averaged in PLDA
    /// space with their count).
    pub fn enroll(&self, vectors: &[Vec<f64>]) -> Result<VectorEnrollment, BackendError> {
        let pp: Vec<Vec<f64>> = vectors
            .iter()
            .map(|v| self.postprocess(v))
            .collect::<Result<_, _>>()?;
        let plda = self.plda.enroll(&pp)?;
        let cohort = if self.cohort.len() >= 2 {
            let scores: Vec<f64> = self
                .cohort
                .iter()
                .map(|c| self.plda.llr(&plda, c))
                .collect::<Result<_, _>>()?;
            Some(self.cohort_stats(&scores)?)
        } else {
            None
        };
        Ok(VectorEnrollment { plda, cohort })
    }

    /// Raw PLDA LLRs (nats, before S-norm) of one raw test vector against every enrollment.
    pub fn plda_scores(
        &self,
        test: &[f64],
        enrollments: &[VectorEnrollment],
    ) -> Result<Vec<f64>, BackendError> {
        let t = self.postprocess(test)?;
        enrollments
            .iter()
            .map(|e| Ok(self.plda.llr(&e.plda, &t)?))
            .collect()
    }

    /// Scores of one raw test vector against every enrollment: PLDA LLRs, S-normalised when the
    /// back end has a cohort (then the scores are in cohort standard deviations, not nats).
    pub fn score(
        &self,
        test: &[f64],
        enrollments: &[VectorEnrollment],
    ) -> Result<Vec<f64>, BackendError> {
        let scorer = self.scorer(enrollments)?;
        self.score_with(&scorer, enrollments, test)
    }

    /// A batched PLDA scorer over `enrollments` (build it once per population, then
    /// [`VectorBackend::score_with`] each test).
    pub fn scorer(&self, enrollments: &[VectorEnrollment]) -> Result<PldaScorer, BackendError> {
        Ok(PldaScorer::new(
            &self.plda,
            &enrollments
                .iter()
                .map(|e| e.plda.clone())
                .collect::<Vec<_>>(),
        )?)
    }

    /// [`VectorBackend::score`] with a scorer built by [`VectorBackend::scorer`] from the same
    /// `enrollments`.
    pub fn score_with(
        &self,
        scorer: &PldaScorer,
        enrollments: &[VectorEnrollment],
        test: &[f64],
    ) -> Result<Vec<f64>, BackendError> {
        if scorer.len() != enrollments.len() {
            return Err(BackendError::Shape {
                what: "enrollments behind the PLDA scorer",
                expected: scorer.len(),
                got: enrollments.len(),
            });
        }
        let t = self.postprocess(test)?;
        let mut raw = scorer.score(&self.plda, &t)?;
        if self.cohort.len() >= 2 {
            let test_enrollment = self.plda.enroll(std::slice::from_ref(&t))?;
            let scores: Vec<f64> = self
                .cohort
                .iter()
                .map(|c| self.plda.llr(&test_enrollment, c))
                .collect::<Result<_, _>>()?;
            let test_stats = self.cohort_stats(&scores)?;
            for (s, e) in raw.iter_mut().zip(enrollments) {
                *s = match &e.cohort {
                    Some(ec) => 0.5 * (ec.normalize(*s) + test_stats.normalize(*s)),
                    None => test_stats.normalize(*s),
                };
            }
        }
        Ok(raw)
    }

    /// [`VectorBackend::train`] on f32 vectors (neural embeddings).
    pub fn train_f32<L: Eq + Hash>(
        vectors: &[Vec<f32>],
        labels: &[L],
        options: &BackendOptions,
    ) -> Result<Self, BackendError> {
        let v: Vec<Vec<f64>> = vectors.iter().map(|x| as_f64(x)).collect();
        Self::train(&v, labels, options)
    }
}

/// Options of i-vector extraction in the system.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IvectorSystemOptions {
    /// Posteriors used for the Baum–Welch statistics. Default top-20 components per frame.
    pub posteriors: BwPosteriors,
}

impl Default for IvectorSystemOptions {
    fn default() -> Self {
        Self {
            posteriors: BwPosteriors::TopC(20),
        }
    }
}

/// An enrolled speaker of the i-vector system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IvectorEnrollment {
    /// The back-end enrollment.
    pub vector: VectorEnrollment,
    /// Voiced frames behind the enrollment.
    pub frames: usize,
}

/// The i-vector PLDA speaker verification system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IvectorPldaSystem {
    /// The UBM the statistics are collected against.
    pub ubm: DiagGmm,
    /// Extraction options.
    pub options: IvectorSystemOptions,
    /// Total-variability extractor.
    pub extractor: IvectorExtractor,
    /// Post-processing and PLDA.
    pub backend: VectorBackend,
    /// Calibration of (S-normalised) PLDA scores given the test's voiced frames, if trained.
    pub calibration: Option<DurationCalibration>,
}

impl IvectorPldaSystem {
    /// Baum–Welch statistics of voiced features against the UBM.
    pub fn stats(&self, feats: &FeatureMatrix) -> Result<BaumWelchStats, BackendError> {
        Ok(self.ubm.baum_welch_stats(feats, self.options.posteriors)?)
    }

    /// The raw i-vector of some statistics.
    pub fn ivector(&self, stats: &BaumWelchStats) -> Result<Vec<f64>, BackendError> {
        Ok(self.extractor.extract(stats)?)
    }

    /// Enrols a speaker from one or more segments' statistics (one i-vector each).
    pub fn enroll(&self, stats: &[BaumWelchStats]) -> Result<IvectorEnrollment, BackendError> {
        if stats.is_empty() {
            return Err(BackendError::Shape {
                what: "enrollment segments",
                expected: 1,
                got: 0,
            });
        }
        let vectors: Vec<Vec<f64>> = stats
            .iter()
            .map(|s| self.ivector(s))
            .collect::<Result<_, _>>()?;
        let frames = stats.iter().map(|s| s.total_count().round() as usize).sum();
        Ok(IvectorEnrollment {
            vector: self.backend.enroll(&vectors)?,
            frames,
        })
    }

    /// Enrols a speaker from voiced features (all frames pooled into one i-vector).
    pub fn enroll_features(
        &self,
        feats: &FeatureMatrix,
    ) -> Result<IvectorEnrollment, BackendError> {
        self.enroll(&[self.stats(feats)?])
    }

    /// Raw (S-normalised when the back end has a cohort) scores of a test's statistics against
    /// every enrollment.
    pub fn raw_scores(
        &self,
        stats: &BaumWelchStats,
        enrollments: &[IvectorEnrollment],
    ) -> Result<Vec<f64>, BackendError> {
        let v = self.ivector(stats)?;
        let e: Vec<VectorEnrollment> = enrollments.iter().map(|e| e.vector.clone()).collect();
        self.backend.score(&v, &e)
    }

    /// Calibrated LLR of a raw score on a test of `frames` voiced frames (the raw score when no
    /// calibration is loaded).
    pub fn calibrate(&self, raw: f64, frames: usize) -> f64 {
        self.calibration
            .as_ref()
            .map_or(raw, |c| c.apply(raw, frames))
    }

    /// Calibrated LLRs (nats) of voiced test features against every enrollment.
    pub fn score(
        &self,
        feats: &FeatureMatrix,
        enrollments: &[IvectorEnrollment],
    ) -> Result<Vec<f64>, BackendError> {
        let stats = self.stats(feats)?;
        let n = feats.num_frames();
        Ok(self
            .raw_scores(&stats, enrollments)?
            .into_iter()
            .map(|s| self.calibrate(s, n))
            .collect())
    }
}

/// Model-file kind of a saved [`IvectorPldaSystem`].
pub const IVECTOR_PLDA_SYSTEM_KIND: &str = "ivector-plda-system";

fn ubm_params_of(ubm: &DiagGmm) -> Result<crate::ivector::UbmParams, IvectorError> {
    crate::ivector::UbmParams::new(
        ubm.weights().iter().map(|&w| w as f64).collect(),
        ubm.means().iter().map(|&m| m as f64).collect(),
        ubm.variances().iter().map(|&v| v as f64).collect(),
        ubm.dim(),
    )
}

impl IvectorPldaSystem {
    /// Saves the system in a quivox model container (kind [`IVECTOR_PLDA_SYSTEM_KIND`]) with the
    /// fingerprint of the front end it was trained with: the UBM and the total-variability matrix
    /// T (C·D × R, un-whitened) as raw f32 sections (T is rounded to f32, which keeps the file at
    /// 4·C·D·R bytes), the options, back end and calibration as postcard sections.
    pub fn save(
        &self,
        path: &std::path::Path,
        front_end: &FrontEndOptions,
    ) -> Result<(), ModelIoError> {
        let mut w = self.ubm.to_model_writer(
            IVECTOR_PLDA_SYSTEM_KIND,
            Some(crate::engine::voice::front_end_fingerprint(front_end)?),
        )?;
        let t = self.extractor.total_variability();
        // nalgebra is column-major; the section is row-major (one row per C·D supervector entry).
        let rows: Vec<f32> = t.transpose().iter().map(|&x| x as f32).collect();
        w.add_f32("total_variability", &[t.nrows(), t.ncols()], &rows)?;
        w.add_postcard("options", &self.options)?;
        w.add_postcard("backend", &self.backend)?;
        w.add_postcard("calibration", &self.calibration)?;
        w.set_metadata(serde_json::json!({
            "components": self.ubm.num_components(),
            "feature_dim": self.ubm.dim(),
            "ivector_dim": self.extractor.ivector_dim(),
            "lda_dim": self.backend.lda.as_ref().map(|_| self.backend.plda_dim()),
            "calibrated": self.calibration.is_some(),
        }));
        w.save(path)
    }

    /// Loads a system saved by [`IvectorPldaSystem::save`] (checksum, version and kind verified);
    /// returns it with the front-end options its features must be computed with.
    pub fn load(path: &std::path::Path) -> Result<(Self, FrontEndOptions), ModelIoError> {
        let file = ModelFile::load(path, IVECTOR_PLDA_SYSTEM_KIND, FrontEndCheck::Ignore)?;
        Self::from_model_file(&file)
    }

    /// Loads a system and refuses it unless it was trained with exactly `front_end`.
    pub fn load_for(
        path: &std::path::Path,
        front_end: &FrontEndOptions,
    ) -> Result<Self, ModelIoError> {
        let fp = crate::engine::voice::front_end_fingerprint(front_end)?;
        let file = ModelFile::load(path, IVECTOR_PLDA_SYSTEM_KIND, FrontEndCheck::Require(&fp))?;
        Ok(Self::from_model_file(&file)?.0)
    }

    fn from_model_file(file: &ModelFile) -> Result<(Self, FrontEndOptions), ModelIoError> {
        let front_end = crate::engine::voice::front_end_of(file)?;
        let invalid = |message: String| ModelIoError::InvalidModel {
            kind: IVECTOR_PLDA_SYSTEM_KIND.to_owned(),
            message,
        };
        let ubm = DiagGmm::from_model_file(file)?;
        let (shape, t) = file.f32_section("total_variability")?;
        let cd = ubm.num_components() * ubm.dim();
        if shape.len() != 2 || shape[0] != cd || shape[1] == 0 {
            return Err(invalid(format!(
                "total_variability shape {shape:?}; expected [{cd}, R >= 1] for the UBM's {} x {}",
                ubm.num_components(),
                ubm.dim()
            )));
        }
        let t =
            nalgebra::DMatrix::from_row_iterator(shape[0], shape[1], t.iter().map(|&x| x as f64));
        let params = ubm_params_of(&ubm).map_err(|e| invalid(e.to_string()))?;
        let extractor = IvectorExtractor::from_total_variability(&params, &t)
            .map_err(|e| invalid(e.to_string()))?;
        let backend: VectorBackend = file.postcard("backend")?;
        if backend.in_dim() != extractor.ivector_dim() {
            return Err(invalid(format!(
                "back end takes {}-dimensional vectors; the extractor gives {}",
                backend.in_dim(),
                extractor.ivector_dim()
            )));
        }
        let system = Self {
            ubm,
            options: file.postcard("options")?,
            extractor,
            backend,
            calibration: file.postcard("calibration")?,
        };
        Ok((system, front_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calibration::CalibrationOptions;
    use crate::ivector::IvectorTrainOptions;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    /// Synthetic speakers in a 4-component, 3-dimensional UBM world: each speaker shifts every
    /// component mean by its own offset; utterances are frames drawn from the shifted mixture.
    fn world() -> (DiagGmm, Vec<Vec<f64>>) {
        let c = 4;
        let d = 3;
        let means: Vec<f32> = (0..c * d).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let ubm = DiagGmm::new(d, vec![0.25; c], means, vec![1.0; c * d]).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let n = Normal::new(0.0, 0.8).unwrap();
        let speakers = (0..30)
            .map(|_| (0..c * d).map(|_| n.sample(&mut rng)).collect())
            .collect();
        (ubm, speakers)
    }

    fn utterance(ubm: &DiagGmm, shift: &[f64], frames: usize, seed: u64) -> FeatureMatrix {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n = Normal::new(0.0, 1.0).unwrap();
        let d = ubm.dim();
        let mut m = FeatureMatrix::new(d);
        let mut row = vec![0.0f32; d];
        for t in 0..frames {
            let c = (t * 3 + seed as usize) % ubm.num_components();
            for (k, r) in row.iter_mut().enumerate() {
                *r = ubm.mean(c)[k] + shift[c * d + k] as f32 + n.sample(&mut rng) as f32;
            }
            m.push_row(&row);
        }
        m
    }

    /// How many synthetic training utterances [`train_extractor`] draws: the first `speakers`
    /// of the world, `utterances` each of `frames` frames, utterance `u` of speaker `s` seeded
    /// `s · seed_stride + u`.
    struct Corpus {
        speakers: usize,
        utterances: usize,
        frames: usize,
        seed_stride: usize,
    }

    /// An i-vector extractor of dimension `dim` (`iterations` EM steps) trained on full-posterior
    /// statistics of `corpus`, the training i-vectors and their speaker labels.
    fn train_extractor(
        ubm: &DiagGmm,
        speakers: &[Vec<f64>],
        corpus: Corpus,
        dim: usize,
        iterations: usize,
    ) -> (IvectorExtractor, Vec<Vec<f64>>, Vec<usize>) {
        let params = ubm_params_of(ubm).unwrap();
        let (mut stats, mut labels) = (Vec::new(), Vec::new());
        for (s, shift) in speakers.iter().enumerate().take(corpus.speakers) {
            for u in 0..corpus.utterances {
                let seed = (s * corpus.seed_stride + u) as u64;
                let f = utterance(ubm, shift, corpus.frames, seed);
                stats.push(ubm.baum_welch_stats(&f, BwPosteriors::Full).unwrap());
                labels.push(s);
            }
        }
        let topts = IvectorTrainOptions {
            dim,
            iterations,
            ..Default::default()
        };
        let (extractor, _) = IvectorExtractor::train(&params, &stats, &topts).unwrap();
        let ivecs = stats
            .iter()
            .map(|s| extractor.extract(s).unwrap())
            .collect();
        (extractor, ivecs, labels)
    }

    #[test]
    fn synthetic_system_separates_targets_and_round_trips() {
        let (ubm, speakers) = world();
        let posteriors = BwPosteriors::Full;
        let (extractor, ivecs, labels) = train_extractor(
            &ubm,
            &speakers,
            Corpus {
                speakers: 24,
                utterances: 6,
                frames: 200,
                seed_stride: 100,
            },
            8,
            5,
        );
        let bopts = BackendOptions {
            lda_dim: Some(6),
            wccn: true,
            s_norm: true,
            s_norm_top_k: 0,
            ..Default::default()
        };
        let backend = VectorBackend::train(&ivecs, &labels, &bopts).unwrap();
        let mut system = IvectorPldaSystem {
            ubm: ubm.clone(),
            options: IvectorSystemOptions { posteriors },
            extractor,
            backend,
            calibration: None,
        };
        // Held-out speakers 24..30: one enrollment each, two tests each.
        let held = &speakers[24..];
        let enrollments: Vec<IvectorEnrollment> = held
            .iter()
            .enumerate()
            .map(|(i, sh)| {
                system
                    .enroll_features(&utterance(&ubm, sh, 600, 9000 + i as u64))
                    .unwrap()
            })
            .collect();
        let (mut scores, mut frames, mut is_target) = (Vec::new(), Vec::new(), Vec::new());
        for (i, sh) in held.iter().enumerate() {
            for k in 0..2 {
                let f = utterance(&ubm, sh, 200, 7000 + (i * 10 + k) as u64);
                let row = system
                    .raw_scores(&system.stats(&f).unwrap(), &enrollments)
                    .unwrap();
                for (e, &s) in row.iter().enumerate() {
                    scores.push(s);
                    frames.push(200);
                    is_target.push(e == i);
                }
            }
        }
        // Every target score beats the mean non-target score, and the average target beats
        // every non-target by a margin (ideal separation of well-separated synthetic speakers).
        let t: Vec<f64> = scores
            .iter()
            .zip(&is_target)
            .filter(|(_, &y)| y)
            .map(|(s, _)| *s)
            .collect();
        let n: Vec<f64> = scores
            .iter()
            .zip(&is_target)
            .filter(|(_, &y)| !y)
            .map(|(s, _)| *s)
            .collect();
        let mean_t = t.iter().sum::<f64>() / t.len() as f64;
        let mean_n = n.iter().sum::<f64>() / n.len() as f64;
        assert!(
            mean_t > mean_n + 2.0,
            "targets {mean_t} vs non-targets {mean_n}"
        );
        let max_n = n.iter().cloned().fold(f64::MIN, f64::max);
        let below = t.iter().filter(|&&s| s <= max_n).count();
        assert!(
            below <= 2,
            "{below} of {} targets below the best non-target",
            t.len()
        );
        system.calibration = Some(
            DurationCalibration::train(
                &scores,
                &frames,
                &is_target,
                &CalibrationOptions::default(),
            )
            .unwrap(),
        );
        let json = serde_json::to_string(&system).unwrap();
        let back: IvectorPldaSystem = serde_json::from_str(&json).unwrap();
        let f = utterance(&ubm, &held[0], 300, 1);
        let a = system.score(&f, &enrollments).unwrap();
        let b = back.score(&f, &enrollments).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-4 * (1.0 + x.abs()), "{x} vs {y}");
        }
        assert!(a[0] > 0.0 && a[1..].iter().all(|&s| s < a[0]));
    }

    #[test]
    fn s_norm_cohort_matches_hand_computed_statistics() {
        // Without a cohort the score is the PLDA LLR; with one, it is the mean of the two
        // normalised scores (checked against CohortStats on brute-force cohort LLRs).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = Normal::new(0.0, 1.0).unwrap();
        let (mut v, mut l) = (Vec::new(), Vec::new());
        for s in 0..20 {
            let c: Vec<f64> = (0..4).map(|_| 2.0 * n.sample(&mut rng)).collect();
            for _ in 0..5 {
                v.push(
                    c.iter()
                        .map(|x| x + n.sample(&mut rng))
                        .collect::<Vec<f64>>(),
                );
                l.push(s);
            }
        }
        let opts = BackendOptions {
            lda_dim: None,
            s_norm: true,
            s_norm_top_k: 0,
            max_cohort: 30,
            ..Default::default()
        };
        let b = VectorBackend::train(&v, &l, &opts).unwrap();
        assert_eq!(b.cohort.len(), 30);
        let e = b.enroll(&v[0..2]).unwrap();
        let raw = b.plda_scores(&v[3], std::slice::from_ref(&e)).unwrap()[0];
        let t = b.postprocess(&v[3]).unwrap();
        let te = b.plda.enroll(&[t]).unwrap();
        let ts: Vec<f64> = b
            .cohort
            .iter()
            .map(|c| b.plda.llr(&te, c).unwrap())
            .collect();
        let es: Vec<f64> = b
            .cohort
            .iter()
            .map(|c| b.plda.llr(&e.plda, c).unwrap())
            .collect();
        let expect = 0.5
            * (CohortStats::from_scores(&es).unwrap().normalize(raw)
                + CohortStats::from_scores(&ts).unwrap().normalize(raw));
        let got = b.score(&v[3], &[e]).unwrap()[0];
        assert!((got - expect).abs() < 1e-9, "{got} vs {expect}");
    }

    #[test]
    fn model_file_round_trips_and_refuses_other_front_ends_or_kinds() {
        let (ubm, speakers) = world();
        let (extractor, ivecs, labels) = train_extractor(
            &ubm,
            &speakers,
            Corpus {
                speakers: 12,
                utterances: 4,
                frames: 150,
                seed_stride: 10,
            },
            5,
            2,
        );
        let bopts = BackendOptions {
            lda_dim: Some(4),
            ..Default::default()
        };
        let system = IvectorPldaSystem {
            ubm: ubm.clone(),
            options: IvectorSystemOptions {
                posteriors: BwPosteriors::Full,
            },
            extractor,
            backend: VectorBackend::train(&ivecs, &labels, &bopts).unwrap(),
            calibration: Some(DurationCalibration {
                fusion: crate::calibration::Fusion {
                    weights: vec![0.8, 0.05, 0.1],
                    offset: -0.4,
                },
            }),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("iv.qvx");
        let mut fe = FrontEndOptions::default();
        fe.mfcc.num_ceps = 13;
        system.save(&path, &fe).unwrap();
        let (loaded, fe_loaded) = IvectorPldaSystem::load(&path).unwrap();
        assert_eq!(fe_loaded, fe);
        assert_eq!(loaded.ubm, system.ubm);
        assert_eq!(loaded.backend, system.backend);
        assert_eq!(loaded.calibration, system.calibration);
        // T is stored in f32: i-vectors agree to f32 precision.
        let t0 = system.extractor.total_variability();
        let t1 = loaded.extractor.total_variability();
        for (a, b) in t0.iter().zip(t1.iter()) {
            assert!((a - b).abs() <= 1e-6 * (1.0 + a.abs()), "{a} vs {b}");
        }
        let f = utterance(&ubm, &speakers[20], 300, 77);
        let e = system.enroll_features(&f).unwrap();
        let a = system.score(&f, std::slice::from_ref(&e)).unwrap()[0];
        let b = loaded.score(&f, &[e]).unwrap()[0];
        assert!((a - b).abs() < 1e-3 * (1.0 + a.abs()), "{a} vs {b}");
        // The right front end loads; another is refused.
        assert!(IvectorPldaSystem::load_for(&path, &fe).is_ok());
        assert!(matches!(
            IvectorPldaSystem::load_for(&path, &FrontEndOptions::default()),
            Err(ModelIoError::FrontEndMismatch { .. })
        ));
        // A GMM-UBM system file is not an i-vector system.
        let gmm = crate::engine::voice::GmmUbmSystem {
            ubm,
            options: Default::default(),
            calibration: None,
            cohort: None,
        };
        gmm.save(&path, &fe).unwrap();
        assert!(matches!(
            IvectorPldaSystem::load(&path),
            Err(ModelIoError::WrongKind { .. })
        ));
    }
}
