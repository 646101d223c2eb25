//! Bayesian back-end stages: i-vector PLDA and embedding PLDA training on the background split,
//! their calibration on held-out speakers, the three-system fusion, and dev-set scoring.
//!
//! Background utterances are short (1-s words, 2–8-s sentences), so PLDA / LDA / WCCN are trained
//! on *chunks*: consecutive utterances of one speaker pooled until they hold a call-like amount of
//! speech ([`session_chunks`]). A chunk is one session: its files are concatenated before the
//! front end and the encoder, as an enrollment list or a call is, so CMN windows and the
//! encoder's partial windows span several words.

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calibration::{
    CalibrationOptions, EnergyOnlyQualityCalibration, Fusion, QualityCalibration, QualityMeasure,
    TestQuality,
};
use crate::embedding::{EmbedderOptions, SpeakerEmbedder, SpeakerEncoder};
use crate::engine::embedding_system::{EmbeddingEnrollment, EmbeddingPldaSystem, EmbeddingSum};
use crate::engine::ivector_system::{
    BackendOptions, IvectorEnrollment, IvectorPldaSystem, IvectorSystemOptions, VectorBackend,
};
use crate::engine::voice::{DurationCalibration, GmmUbmSystem};
use crate::eval::{DevSet, ScoreMatrix};
use crate::features::FeatureMatrix;
use crate::gmm::{BaumWelchStats, DiagGmm};
use crate::ivector::{IvectorExtractor, IvectorTrainOptions, UbmParams};

use super::eval::SetFeatures;
use super::{read_telephone_wav, RecipeError};

/// Groups utterances (given by speaker label and length in frames, in corpus order) into
/// per-speaker chunks of consecutive utterances holding at least `min_frames` frames each; a
/// speaker's short remainder joins its last chunk (a speaker with less than `min_frames` in all
/// gives one chunk). Returns (utterance indices, label) per chunk.
pub fn speaker_chunks<L: Clone + Eq>(
    labels: &[L],
    frames: &[usize],
    min_frames: usize,
) -> Vec<(Vec<usize>, L)> {
    let mut order: Vec<(L, Vec<usize>)> = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        match order.iter_mut().find(|(k, _)| k == l) {
            Some((_, v)) => v.push(i),
            None => order.push((l.clone(), vec![i])),
        }
    }
    let mut out = Vec::new();
    for (label, utts) in order {
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut cur = Vec::new();
        let mut n = 0;
        for u in utts {
            cur.push(u);
            n += frames.get(u).copied().unwrap_or(0);
            if n >= min_frames {
                chunks.push(std::mem::take(&mut cur));
                n = 0;
            }
        }
        if !cur.is_empty() {
            match chunks.last_mut() {
                Some(last) => last.extend(cur),
                None => chunks.push(cur),
            }
        }
        out.extend(chunks.into_iter().map(|c| (c, label.clone())));
    }
    out
}

/// Baum–Welch statistics of many feature matrices against the UBM (parallel, in order).
pub fn stats_of(
    ubm: &DiagGmm,
    feats: &[FeatureMatrix],
    options: &IvectorSystemOptions,
) -> Result<Vec<BaumWelchStats>, RecipeError> {
    feats
        .par_iter()
        .map(|f| ubm.baum_welch_stats(f, options.posteriors))
        .collect::<Result<_, _>>()
        .map_err(|e| RecipeError::stage("baum-welch stats", e))
}

pub(super) fn summed_stats(stats: &[BaumWelchStats], idx: &[usize]) -> BaumWelchStats {
    let mut s = BaumWelchStats::zeros(stats[idx[0]].num_components(), stats[idx[0]].dim);
    for &i in idx {
        s.add(&stats[i]);
    }
    s
}

/// Options of i-vector system training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IvectorRecipeOptions {
    /// Statistics options.
    pub system: IvectorSystemOptions,
    /// Total-variability training (dimension, iterations). Default dim 200, 6 iterations.
    pub tv: IvectorTrainOptions,
    /// Back-end options. Default: LDA to 200 (square, as shipped), no WCCN, no S-norm.
    pub backend: BackendOptions,
    /// Frames per background chunk for T / LDA / PLDA training. Default 500 (5 s of speech).
    pub chunk_frames: usize,
}

impl Default for IvectorRecipeOptions {
    fn default() -> Self {
        Self {
            system: IvectorSystemOptions::default(),
            tv: IvectorTrainOptions {
                dim: 200,
                iterations: 6,
                ..Default::default()
            },
            backend: BackendOptions {
                lda_dim: Some(200),
                ..Default::default()
            },
            chunk_frames: 500,
        }
    }
}

/// UBM parameters in the extractor's f64 form.
pub fn ubm_params(ubm: &DiagGmm) -> Result<UbmParams, RecipeError> {
    UbmParams::new(
        ubm.weights().iter().map(|&w| w as f64).collect(),
        ubm.means().iter().map(|&m| m as f64).collect(),
        ubm.variances().iter().map(|&v| v as f64).collect(),
        ubm.dim(),
    )
    .map_err(|e| RecipeError::stage("ubm params", e))
}

/// Trains the i-vector PLDA system (uncalibrated) from per-utterance statistics of the training
/// speakers (`stats[i]` of speaker `labels[i]`). `progress(iteration, objective)` follows T training.
pub fn train_ivector_from_stats(
    ubm: &DiagGmm,
    stats: &[BaumWelchStats],
    labels: &[String],
    options: &IvectorRecipeOptions,
    progress: &dyn Fn(usize, f64),
) -> Result<IvectorPldaSystem, RecipeError> {
    let frames: Vec<usize> = stats
        .iter()
        .map(|s| s.total_count().round() as usize)
        .collect();
    let chunks = speaker_chunks(labels, &frames, options.chunk_frames);
    let chunk_stats: Vec<BaumWelchStats> = chunks
        .iter()
        .map(|(idx, _)| summed_stats(stats, idx))
        .collect();
    let chunk_labels: Vec<&String> = chunks.iter().map(|(_, l)| l).collect();
    let params = ubm_params(ubm)?;
    let mut extractor = IvectorExtractor::random(&params, &options.tv)
        .map_err(|e| RecipeError::stage("i-vector init", e))?;
    let refs: Vec<&BaumWelchStats> = chunk_stats
        .iter()
        .filter(|s| s.total_count() >= options.tv.min_count)
        .collect();
    for it in 0..options.tv.iterations {
        let obj = extractor
            .em_iteration(&refs, options.tv.min_divergence)
            .map_err(|e| RecipeError::stage("i-vector EM", e))?;
        progress(it, obj);
    }
    let ivectors: Vec<Vec<f64>> = chunk_stats
        .par_iter()
        .map(|s| extractor.extract(s))
        .collect::<Result<_, _>>()
        .map_err(|e| RecipeError::stage("i-vector extraction", e))?;
    let backend = VectorBackend::train(&ivectors, &chunk_labels, &options.backend)
        .map_err(|e| RecipeError::stage("i-vector back end", e))?;
    Ok(IvectorPldaSystem {
        ubm: ubm.clone(),
        options: options.system,
        extractor,
        backend,
        calibration: None,
    })
}

/// [`train_ivector_from_stats`] from voiced features (statistics computed here).
pub fn train_ivector_system(
    ubm: &DiagGmm,
    feats: &[FeatureMatrix],
    labels: &[String],
    options: &IvectorRecipeOptions,
    progress: &dyn Fn(usize, f64),
) -> Result<IvectorPldaSystem, RecipeError> {
    let stats = stats_of(ubm, feats, &options.system)?;
    train_ivector_from_stats(ubm, &stats, labels, options, progress)
}

/// Embeds each session (its files read as 8 kHz telephone audio and joined into one stream,
/// [`SpeakerEmbedder::embed_session`]) with the GE2E encoder, in parallel, in order. A session
/// with too little speech for one partial window gives an empty sum.
pub fn embed_sessions(
    sessions: &[Vec<std::path::PathBuf>],
    encoder: &Arc<SpeakerEncoder>,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<EmbeddingSum>, RecipeError> {
    sessions
        .par_iter()
        .map_init(
            || SpeakerEmbedder::new(encoder.clone(), EmbedderOptions::default()),
            |emb, paths| {
                let emb = emb
                    .as_mut()
                    .map_err(|e| RecipeError::stage("embedder", e.to_string()))?;
                let waves = paths
                    .iter()
                    .map(|p| read_telephone_wav(p, crate::audio::ChannelPolicy::RequireMono))
                    .collect::<Result<Vec<_>, _>>()?;
                let out = match emb.embed_session(&waves) {
                    Ok(u) => EmbeddingSum::from_utterance(&u),
                    Err(_) => EmbeddingSum::zeros(),
                };
                progress();
                Ok(out)
            },
        )
        .collect()
}

/// Options of embedding-system training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbeddingRecipeOptions {
    /// Back-end options. Default: PCA to 200 (GE2E ReLU outputs have dead dimensions), LDA to 128, no WCCN, no S-norm.
    pub backend: BackendOptions,
    /// Speech frames per background chunk. Default 500.
    pub chunk_frames: usize,
}

impl Default for EmbeddingRecipeOptions {
    fn default() -> Self {
        Self {
            backend: BackendOptions {
                pca_dim: Some(200),
                lda_dim: Some(128),
                ..Default::default()
            },
            chunk_frames: 500,
        }
    }
}

/// Background sessions: the files of each speaker, per folder (a speaker's clean files, and each
/// set of channel copies apart), pooled into chunks of consecutive files holding at least
/// `chunk_frames` voiced frames (`voiced_frames[i]` of `paths[i]`, speaker `labels[i]`;
/// [`speaker_chunks`]). Each chunk is one session, concatenated before the front end and the
/// encoder as an enrollment list or a call is. Returns the sessions' files and speakers.
pub fn session_chunks(
    paths: &[std::path::PathBuf],
    labels: &[String],
    voiced_frames: &[usize],
    chunk_frames: usize,
) -> (Vec<Vec<std::path::PathBuf>>, Vec<String>) {
    let keys: Vec<(&String, Option<&std::path::Path>)> = labels
        .iter()
        .zip(paths)
        .map(|(l, p)| (l, p.parent()))
        .collect();
    speaker_chunks(&keys, voiced_frames, chunk_frames)
        .into_iter()
        .map(|(idx, (label, _))| {
            (
                idx.iter().map(|&i| paths[i].clone()).collect(),
                label.clone(),
            )
        })
        .unzip()
}

/// Trains the embedding PLDA system (uncalibrated) on one embedding sum per background session
/// (chunk, [`embedding_chunks`]) of speaker `labels[i]`; empty sums are skipped.
pub fn train_embedding_system(
    sums: &[EmbeddingSum],
    labels: &[String],
    options: &EmbeddingRecipeOptions,
) -> Result<EmbeddingPldaSystem, RecipeError> {
    let (vectors, chunk_labels): (Vec<Vec<f64>>, Vec<&String>) = sums
        .iter()
        .zip(labels)
        .filter(|(s, _)| s.partials > 0)
        .map(|(s, l)| (s.embedding(), l))
        .unzip();
    let backend = VectorBackend::train(&vectors, &chunk_labels, &options.backend)
        .map_err(|e| RecipeError::stage("embedding back end", e))?;
    Ok(EmbeddingPldaSystem {
        backend,
        calibration: None,
        cosine_calibration: None,
    })
}

/// Logistic-regression fusion of calibrated LLRs of several systems (GMM-UBM, i-vector PLDA,
/// embedding PLDA, in that order by convention).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusedSystem {
    /// Names of the fused systems, in input order.
    pub systems: Vec<String>,
    /// Weights (one per system) and offset.
    pub fusion: Fusion,
    /// Recalibration of the fused LLR by the test's quality (the spread of its frame log
    /// energies, [`crate::features::EnergyRange::spread_nats`], and its amount of speech), when
    /// trained. Stored in its own section of the fusion file (files without it load with
    /// `None`).
    #[serde(skip)]
    pub quality: Option<QualityCalibration>,
}

impl FusedSystem {
    /// The fused LLR (nats) of one trial's calibrated LLRs, one per system in `systems` order,
    /// for a test of this quality (unused without a quality calibration; `None` with one: the
    /// lowest energy spread and no speech are assumed).
    pub fn apply(
        &self,
        llrs: &[f64],
        quality: Option<&TestQuality>,
    ) -> Result<f64, crate::calibration::CalibrationError> {
        let fused = self.fusion.apply(llrs)?;
        Ok(match &self.quality {
            Some(q) => q.apply(fused, quality.unwrap_or(&TestQuality::new(f64::NAN, 0))),
            None => fused,
        })
    }

    /// Fuses whole score matrices (same shape, one per system); `quality` holds each test's
    /// quality (one per column), needed when the fusion has a quality calibration.
    pub fn apply_matrices(
        &self,
        matrices: &[&ScoreMatrix],
        quality: Option<&[TestQuality]>,
    ) -> Result<ScoreMatrix, RecipeError> {
        let first = matrices
            .first()
            .ok_or_else(|| RecipeError::stage("fusion", "no score matrices"))?;
        if matrices.len() != self.fusion.weights.len()
            || matrices
                .iter()
                .any(|m| m.scores.len() != first.scores.len())
        {
            return Err(RecipeError::stage(
                "fusion",
                format!(
                    "expected {} score matrices of {} scores",
                    self.fusion.weights.len(),
                    first.scores.len()
                ),
            ));
        }
        if let Some(q) = quality {
            if q.len() != first.num_tests {
                return Err(RecipeError::stage(
                    "fusion",
                    format!(
                        "expected a quality measure per test ({}), got {}",
                        first.num_tests,
                        q.len()
                    ),
                ));
            }
        } else if self.quality.is_some() {
            return Err(RecipeError::stage(
                "fusion",
                "this fusion recalibrates by test quality: give each test's energy spread and speech",
            ));
        }
        let mut scores = Vec::with_capacity(first.scores.len());
        let mut row = vec![0.0; matrices.len()];
        for i in 0..first.scores.len() {
            for (r, m) in row.iter_mut().zip(matrices) {
                *r = m.scores[i];
            }
            let q = quality.map(|q| &q[i % first.num_tests.max(1)]);
            scores.push(
                self.apply(&row, q)
                    .map_err(|e| RecipeError::stage("fusion", e))?,
            );
        }
        Ok(ScoreMatrix {
            num_tests: first.num_tests,
            scores,
        })
    }
}

/// Trains the fusion on held-out trials: `llrs[k]` = calibrated LLRs of system `k` on the trials;
/// the logistic regression's objective is weighted for the effective target prior `prior`
/// (BOSARIS; 0.5 weighs targets and non-targets equally, what Cllr measures).
pub fn train_fusion(
    names: &[&str],
    llrs: &[&[f64]],
    labels: &[bool],
    prior: f64,
) -> Result<FusedSystem, RecipeError> {
    let opts = CalibrationOptions {
        effective_prior: prior,
        ..CalibrationOptions::default()
    };
    let fusion = Fusion::train(llrs, labels, &opts).map_err(|e| RecipeError::stage("fusion", e))?;
    Ok(FusedSystem {
        systems: names.iter().map(|s| s.to_string()).collect(),
        fusion,
        quality: None,
    })
}

fn to_matrix(rows: Vec<(Vec<f64>, f64)>, num_enrollments: usize) -> (ScoreMatrix, f64) {
    let num_tests = rows.len();
    let mut scores = vec![0.0; num_enrollments * num_tests];
    for (t, (row, _)) in rows.iter().enumerate() {
        for (e, &s) in row.iter().enumerate() {
            scores[e * num_tests + t] = s;
        }
    }
    let ms = rows.iter().map(|(_, ms)| ms).sum::<f64>() / num_tests.max(1) as f64;
    (ScoreMatrix { num_tests, scores }, ms)
}

/// I-vector system scores (calibrated when the system is) of every (enrollment, test) pair of a
/// set, and the mean time of one test against the gallery (statistics, extraction, scoring; ms).
pub fn score_ivector(
    system: &IvectorPldaSystem,
    feats: &SetFeatures,
) -> Result<(ScoreMatrix, f64), RecipeError> {
    let enrollments: Vec<IvectorEnrollment> = feats
        .enrollments
        .par_iter()
        .map(|f| system.enroll_features(f))
        .collect::<Result<_, _>>()
        .map_err(|e| RecipeError::stage("i-vector enrollment", e))?;
    let rows: Vec<(Vec<f64>, f64)> = feats
        .tests
        .par_iter()
        .map(|f| {
            let t0 = Instant::now();
            let s = system.score(f, &enrollments)?;
            Ok((s, t0.elapsed().as_secs_f64() * 1e3))
        })
        .collect::<Result<_, crate::engine::ivector_system::BackendError>>()
        .map_err(|e| RecipeError::stage("i-vector scoring", e))?;
    Ok(to_matrix(rows, enrollments.len()))
}

/// Embedding sums of a set: one per enrollment (its files summed) and one per test file.
#[derive(Debug, Clone)]
pub struct SetEmbeddings {
    /// Per enrollment, in `DevSet::enrollments` order.
    pub enrollments: Vec<EmbeddingSum>,
    /// Per test, in `DevSet::tests` order.
    pub tests: Vec<EmbeddingSum>,
}

/// Embeds a whole set (parallel). With `gates` (the adaptive noise suppression and the set's
/// MFCC features), an enrollment (its files together, one session) or a test whose MFCC features
/// were computed through the noise suppressor ([`SetFeatures::test_analysis`], decided by
/// [`super::eval::set_features`] on the frame-energy spread, as the engine does) is embedded
/// through the suppressor too.
pub fn set_embeddings(
    set: &DevSet,
    encoder: &Arc<SpeakerEncoder>,
    gates: Option<(&crate::features::AdaptiveNoiseSuppression, &SetFeatures)>,
) -> Result<SetEmbeddings, RecipeError> {
    let groups: Vec<Vec<std::path::PathBuf>> = set
        .enrollments
        .iter()
        .map(|e| e.wavs.clone())
        .chain(set.tests.iter().map(|t| vec![t.clone()]))
        .collect();
    let suppressed: Vec<bool> = match gates {
        Some((_, feats)) => {
            if feats.enrollment_analysis.len() != set.enrollments.len()
                || feats.test_analysis.len() != set.tests.len()
            {
                return Err(RecipeError::stage(
                    "embedding gates",
                    format!(
                        "features of {} enrollments and {} tests for a set of {} and {}",
                        feats.enrollment_analysis.len(),
                        feats.test_analysis.len(),
                        set.enrollments.len(),
                        set.tests.len()
                    ),
                ));
            }
            feats
                .enrollment_analysis
                .iter()
                .chain(&feats.test_analysis)
                .map(|a| a.suppressed)
                .collect()
        }
        None => vec![false; groups.len()],
    };
    let mut sums: Vec<EmbeddingSum> = groups
        .par_iter()
        .zip(&suppressed)
        .map_init(
            || super::trials::SessionEmbedder::new(encoder, gates.map(|(ns, _)| ns)),
            |emb, (paths, &gated)| {
                let emb = emb
                    .as_mut()
                    .map_err(|e| RecipeError::stage("embedder", e.to_string()))?;
                let waves = paths
                    .iter()
                    .map(|p| read_telephone_wav(p, crate::audio::ChannelPolicy::RequireMono))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(emb.embed(&waves, gated))
            },
        )
        .collect::<Result<_, RecipeError>>()?;
    let tests = sums.split_off(set.enrollments.len());
    Ok(SetEmbeddings {
        enrollments: sums,
        tests,
    })
}

/// Embedding system scores of a set: calibrated PLDA LLRs, or (with `cosine`) calibrated cosine
/// LLRs; scores are raw when the corresponding calibration is absent. The time (ms) covers the
/// back end only (the encoder pass is not included).
pub fn score_embedding(
    system: &EmbeddingPldaSystem,
    emb: &SetEmbeddings,
    cosine: bool,
) -> Result<(ScoreMatrix, f64), RecipeError> {
    let enrollments: Vec<EmbeddingEnrollment> = emb
        .enrollments
        .iter()
        .map(|s| system.enroll(std::slice::from_ref(s)))
        .collect::<Result<_, _>>()
        .map_err(|e| RecipeError::stage("embedding enrollment", e))?;
    let rows: Vec<(Vec<f64>, f64)> = emb
        .tests
        .par_iter()
        .map(|t| {
            let t0 = Instant::now();
            let s = if cosine {
                system.score_cosine(t, &enrollments)
            } else {
                system.score(t, &enrollments)?
            };
            Ok((s, t0.elapsed().as_secs_f64() * 1e3))
        })
        .collect::<Result<_, crate::engine::ivector_system::BackendError>>()
        .map_err(|e| RecipeError::stage("embedding scoring", e))?;
    Ok(to_matrix(rows, enrollments.len()))
}

/// Model-file kind of a saved [`FusedSystem`].
pub const FUSION_KIND: &str = "fusion";

/// Section of a fusion file holding its quality recalibration (one or more measures).
const QUALITY_SECTION: &str = "quality-measures";

/// Section of the fusion files written before the duration measure: an energy-spread-only
/// recalibration ([`EnergyOnlyQualityCalibration`]), still read.
const ENERGY_ONLY_QUALITY_SECTION: &str = "quality";

/// A model file a fusion was trained on: its role and the SHA-256 of the file, so that a fusion is
/// never applied to LLRs of other calibrations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FusionComponent {
    /// System name (as in [`FusedSystem::systems`]).
    pub system: String,
    /// SHA-256 (hex) of the component's model file.
    pub sha256: String,
}

impl FusionComponent {
    /// Checks a fusion's component list against the model files it will be applied to:
    /// `path_of(system)` names the file of each system (`None`: a system this caller cannot
    /// provide). Returns the files' SHA-256 in component order; an error names the file that
    /// differs and says to retrain the fusion.
    pub fn verify_all(
        fusion: &std::path::Path,
        components: &[FusionComponent],
        path_of: impl Fn(&str) -> Option<std::path::PathBuf>,
    ) -> Result<Vec<String>, crate::model_io::ModelIoError> {
        let invalid = |message: String| crate::model_io::ModelIoError::InvalidModel {
            kind: FUSION_KIND.to_owned(),
            message,
        };
        components
            .iter()
            .map(|c| {
                let path = path_of(&c.system).ok_or_else(|| {
                    invalid(format!(
                        "{}: unknown fused system {:?}",
                        fusion.display(),
                        c.system
                    ))
                })?;
                let sha = crate::engine::embedding_system::file_sha256(&path)?;
                if sha != c.sha256 {
                    return Err(invalid(format!(
                        "{} was trained on a {} file with SHA-256 {}, but {} has {sha}: retrain \
                         the fusion (quivox train-backend)",
                        fusion.display(),
                        c.system,
                        c.sha256,
                        path.display()
                    )));
                }
                Ok(sha)
            })
            .collect()
    }
}

impl FusedSystem {
    /// Saves the fusion (postcard) with the MFCC front end of its GMM-UBM / i-vector inputs and
    /// the checksums of the component model files.
    pub fn save(
        &self,
        path: &std::path::Path,
        front_end: &crate::features::FrontEndOptions,
        components: &[FusionComponent],
    ) -> Result<(), crate::model_io::ModelIoError> {
        let mut w = crate::model_io::ModelWriter::new(FUSION_KIND);
        w.set_front_end(Some(crate::engine::voice::front_end_fingerprint(
            front_end,
        )?));
        w.add_postcard("fusion", self)?;
        w.add_postcard("components", components)?;
        if let Some(q) = &self.quality {
            w.add_postcard(QUALITY_SECTION, q)?;
        }
        let mut metadata = serde_json::json!({
            "systems": self.systems,
            "weights": self.fusion.weights,
            "offset": self.fusion.offset,
        });
        if let (Some(q), Some(map)) = (&self.quality, metadata.as_object_mut()) {
            map.insert(
                "quality".into(),
                serde_json::to_value(q).unwrap_or_default(),
            );
        }
        w.set_metadata(metadata);
        w.save(path)
    }

    /// Loads a fusion saved by [`FusedSystem::save`], refusing it unless it was trained with
    /// `front_end`; returns it with the component checksums it expects.
    pub fn load(
        path: &std::path::Path,
        front_end: &crate::features::FrontEndOptions,
    ) -> Result<(Self, Vec<FusionComponent>), crate::model_io::ModelIoError> {
        let fp = crate::engine::voice::front_end_fingerprint(front_end)?;
        let file = crate::model_io::ModelFile::load(
            path,
            FUSION_KIND,
            crate::model_io::FrontEndCheck::Require(&fp),
        )?;
        let mut fused: FusedSystem = file.postcard("fusion")?;
        let components: Vec<FusionComponent> = file.postcard("components")?;
        let quality = if file.section(QUALITY_SECTION).is_ok() {
            Some(file.postcard::<QualityCalibration>(QUALITY_SECTION)?)
        } else if file.section(ENERGY_ONLY_QUALITY_SECTION).is_ok() {
            let old: EnergyOnlyQualityCalibration = file.postcard(ENERGY_ONLY_QUALITY_SECTION)?;
            Some(old.into())
        } else {
            None
        };
        if let Some(q) = quality {
            if !q.is_consistent() {
                return Err(crate::model_io::ModelIoError::InvalidModel {
                    kind: FUSION_KIND.to_owned(),
                    message: format!(
                        "quality calibration with {} weights for {} measures; expected 1 + 2 per measure",
                        q.fusion.weights.len(),
                        q.terms.len()
                    ),
                });
            }
            fused.quality = Some(q);
        }
        if fused.systems.len() != fused.fusion.weights.len() {
            return Err(crate::model_io::ModelIoError::InvalidModel {
                kind: FUSION_KIND.to_owned(),
                message: format!(
                    "{} systems but {} weights",
                    fused.systems.len(),
                    fused.fusion.weights.len()
                ),
            });
        }
        Ok((fused, components))
    }
}

/// Options of the whole back-end recipe ([`train_backend`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendRecipeOptions {
    /// MFCC front end (must be the GMM-UBM system's).
    pub front_end: crate::features::FrontEndOptions,
    /// I-vector system options (T dimension, iterations, seed, LDA).
    pub ivector: IvectorRecipeOptions,
    /// Embedding back-end options.
    pub embedding: EmbeddingRecipeOptions,
    /// Hold out every n-th eligible speaker (must match the UBM's recipe so that the held-out
    /// speakers are unseen by every model). Default 5.
    pub holdout_every: usize,
    /// Speakers need this many files to be eligible for hold-out. Default 15.
    pub holdout_min_utterances: usize,
    /// Held-out trial design.
    pub held_out: super::trials::HeldOutDesignOptions,
    /// Weight (repetitions) of isolated-word speakers' trials in the back ends' calibrations and
    /// the fusion. Default 1 (the GMM-UBM recipe's own calibration keeps 4): with the S-normalised
    /// GMM-UBM and the augmented back ends, 1 beat 2 and 4 on dev, dev-read and the degraded sets
    /// (README, Accuracy).
    pub word_trial_repeats: usize,
    /// When the background holds channel-augmented copies (`aug/`, from `quivox augment-set`),
    /// also test every held-out trial on the copies of its files (enrollment clean), so that
    /// calibration and fusion are trained under channel mismatch. Default true; without copies
    /// it changes nothing.
    pub channel_trials: bool,
    /// Recalibrate the fused LLR by these measures of the test's quality ([`QualityCalibration`]:
    /// energy spread, amount of speech), trained on the same held-out trials as the fusion.
    /// Default none (the shipped fusion is trained with them: models/README.md).
    pub quality_measures: Vec<QualityMeasure>,
    /// Score the held-out tests as the engine does with its adaptive noise suppression
    /// ([`crate::features::AdaptiveNoiseSuppression`]): a test whose energy spread is under the
    /// gate through the suppressor, so that calibration and fusion learn the scores the engine
    /// will give. `None`: every test through the models' front end.
    pub adaptive_noise_suppression: Option<crate::features::AdaptiveNoiseSuppression>,
    /// Effective target prior the fusion's logistic regression is weighted for. Default 0.5.
    pub fusion_prior: f64,
}

impl Default for BackendRecipeOptions {
    fn default() -> Self {
        let gmm = super::gmm::GmmRecipeOptions::default();
        Self {
            front_end: gmm.front_end,
            ivector: IvectorRecipeOptions::default(),
            embedding: EmbeddingRecipeOptions::default(),
            holdout_every: gmm.holdout_every,
            holdout_min_utterances: gmm.holdout_min_utterances,
            held_out: gmm.held_out,
            word_trial_repeats: 1,
            channel_trials: true,
            quality_measures: Vec::new(),
            adaptive_noise_suppression: None,
            fusion_prior: 0.5,
        }
    }
}

/// Progress events of [`train_backend`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum BackendProgress {
    /// A stage starts.
    Stage(&'static str),
    /// One more training file is done in the current stage (features or embeddings) of `total`.
    File {
        /// Files in the stage.
        total: usize,
    },
    /// One total-variability EM iteration finished.
    TvIteration {
        /// Iteration index.
        iter: usize,
        /// EM objective (per frame).
        objective: f64,
    },
}

/// The trained back-end models.
#[derive(Debug, Clone)]
pub struct BackendModels {
    /// Calibrated i-vector PLDA system.
    pub ivector: IvectorPldaSystem,
    /// Calibrated embedding PLDA system (PLDA and cosine calibrations).
    pub embedding: EmbeddingPldaSystem,
    /// Fusion of the calibrated GMM-UBM, i-vector and embedding LLRs.
    pub fusion: FusedSystem,
}

/// What [`train_backend`] did, for logs and the models README.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendReport {
    /// Training files and speakers.
    pub train_files: usize,
    /// Channel-augmented copies among the training files (`aug/` of the background).
    pub augmented_train_files: usize,
    /// Held-out tests cut from channel-augmented copies (enrolled clean); 0 without copies or
    /// with `channel_trials` off.
    pub channel_tests: usize,
    /// Distinct training speakers.
    pub train_speakers: usize,
    /// Held-out speakers.
    pub held_out_speakers: usize,
    /// Held-out (target, non-target) trials, and target trials of isolated-word speakers.
    pub trials: (usize, usize, usize),
    /// Total-variability EM objective per iteration.
    pub tv_objectives: Vec<f64>,
    /// Fusion weights (GMM-UBM, i-vector, embedding) and offset.
    pub fusion: crate::calibration::Fusion,
    /// The quality recalibration of the fused LLR, when trained.
    pub quality: Option<QualityCalibration>,
    /// Every held-out trial the calibrations and the fusion were trained on (word trials once,
    /// whatever `word_trial_repeats`), for analysis (`quivox train-backend --trial-scores`).
    #[serde(skip)]
    pub held_out_trials: Vec<HeldOutTrialRow>,
}

/// One held-out trial of [`BackendReport::held_out_trials`]: the three systems' calibrated LLRs
/// and the test's quality measures.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOutTrialRow {
    /// Target trial (the test's own enrollment).
    pub target: bool,
    /// Test index in the held-out design.
    pub test: usize,
    /// Enrollment index in the held-out design.
    pub enrollment: usize,
    /// The test comes from an isolated-word speaker.
    pub word: bool,
    /// The test went through a phone channel (enrollment clean).
    pub channel: bool,
    /// Calibrated LLRs (nats): GMM-UBM, i-vector PLDA, embedding PLDA.
    pub llrs: [f64; 3],
    /// Fused LLR (nats), after the quality recalibration when there is one.
    pub fused: f64,
    /// Spread of the test's frame log energies (nats) and its voiced frames.
    pub quality: TestQuality,
    /// Length of the test (10-ms frames of audio, voiced or not).
    pub test_frames: usize,
}

/// One row per labelled trial of the design ([`super::trials::HeldOutDesign::labels`]), from
/// full test-major (test × enrollment) columns of the three systems' calibrated LLRs and of the
/// tests' quality, fused by `fusion`.
pub fn held_out_rows(
    design: &super::trials::HeldOutDesign,
    llrs: [&[f64]; 3],
    quality: &[TestQuality],
    fusion: &FusedSystem,
) -> Result<Vec<HeldOutTrialRow>, RecipeError> {
    let labels = design.labels();
    let ne = design.enrollments.len().max(1);
    if llrs.iter().any(|c| c.len() != labels.len()) || quality.len() != labels.len() {
        return Err(RecipeError::stage(
            "held-out trial rows",
            format!(
                "columns of {} / {} / {} LLRs and {} qualities for {} (test, enrollment) pairs",
                llrs[0].len(),
                llrs[1].len(),
                llrs[2].len(),
                quality.len(),
                labels.len()
            ),
        ));
    }
    let mut rows = Vec::new();
    for (k, label) in labels.iter().enumerate() {
        let Some(target) = *label else { continue };
        let (t, e) = (k / ne, k % ne);
        let scores = [llrs[0][k], llrs[1][k], llrs[2][k]];
        rows.push(HeldOutTrialRow {
            target,
            test: t,
            enrollment: e,
            word: design.word_test[t],
            channel: design.channel_test[t],
            llrs: scores,
            fused: fusion
                .apply(&scores, Some(&quality[k]))
                .map_err(|e| RecipeError::stage("fusion", e))?,
            quality: quality[k],
            test_frames: design.items[design.tests[t].1].samples.len() / 80,
        });
    }
    Ok(rows)
}

/// The held-out trial file of `rows`: [`HeldOutTrialRow::TSV_HEADER`], then one
/// [`HeldOutTrialRow::tsv`] line per row (what `quivox train-backend --trial-scores` writes).
pub fn held_out_trials_tsv(rows: &[HeldOutTrialRow]) -> String {
    let mut out = format!("{}\n", HeldOutTrialRow::TSV_HEADER);
    for row in rows {
        out.push_str(&row.tsv());
        out.push('\n');
    }
    out
}

/// Reads a file written by [`held_out_trials_tsv`].
pub fn read_held_out_trials(path: &std::path::Path) -> Result<Vec<HeldOutTrialRow>, RecipeError> {
    use crate::eval::CorpusError;
    crate::eval::score_files::read_rows(path, HeldOutTrialRow::TSV_HEADER, |line, f| {
        let bad = || CorpusError::BadLine {
            path: path.to_path_buf(),
            line,
            expected: "0/1 flags, indices, LLRs, an energy spread and frame counts",
            found: f.join("\t"),
        };
        let int = |i: usize| f[i].parse::<usize>().map_err(|_| bad());
        let real = |i: usize| f[i].parse::<f64>().map_err(|_| bad());
        let flag = |i: usize| match f[i] {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(bad()),
        };
        Ok(HeldOutTrialRow {
            target: flag(0)?,
            test: int(1)?,
            enrollment: int(2)?,
            word: flag(3)?,
            channel: flag(4)?,
            llrs: [real(5)?, real(6)?, real(7)?],
            fused: real(8)?,
            quality: TestQuality::new(real(9)?, int(10)?),
            test_frames: int(11)?,
        })
    })
    .map_err(|e| RecipeError::stage("held-out trial file", e))
}

impl HeldOutTrialRow {
    /// Tab-separated header of [`Self::tsv`].
    pub const TSV_HEADER: &'static str = "target\ttest\tenrollment\tword\tchannel\tgmm\tivector\tembedding\tfused\tenergy_spread\tspeech_frames\ttest_frames";

    /// The row as tab-separated values (see [`Self::TSV_HEADER`]).
    pub fn tsv(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{:.6}\t{:.6}\t{:.6}\t{:.6}\t{:.6}\t{}\t{}",
            u8::from(self.target),
            self.test,
            self.enrollment,
            u8::from(self.word),
            u8::from(self.channel),
            self.llrs[0],
            self.llrs[1],
            self.llrs[2],
            self.fused,
            self.quality.energy_spread_nats,
            self.quality.speech_frames,
            self.test_frames
        )
    }
}

/// The back-end recipe on a `background/` folder: the same speaker split as the GMM-UBM recipe;
/// the i-vector extractor, LDA / PLDA on the training speakers' features (statistics against the
/// given GMM-UBM system's UBM); the embedding back end on their GE2E embeddings; every system
/// calibrated on dev-like trials of the held-out speakers ([`super::trials`]), and the three
/// calibrated systems fused on the same trials. Deterministic for given options (seed in
/// `options.ivector.tv.seed`).
///
/// A background with channel-augmented copies under `aug/` is split on its clean files
/// ([`super::gmm::split_background_with_copies`]: the same held-out speakers as the clean
/// background, none of their copies in training); the training speakers' copies join T / LDA /
/// PLDA training as more sessions of the same speaker, and with `options.channel_trials` the
/// held-out trials are also tested on the copies ([`super::trials::held_out_design_with_copies`]).
pub fn train_backend(
    bg: &crate::eval::Background,
    gmm: &GmmUbmSystem,
    encoder: &Arc<SpeakerEncoder>,
    options: &BackendRecipeOptions,
    progress: &(dyn Fn(BackendProgress) + Sync),
) -> Result<(BackendModels, BackendReport), RecipeError> {
    train_backend_with(bg, gmm, encoder, options, None, progress)
}

/// [`train_backend`], with the held-out channel tests rendered as whole calls when `whole_call`
/// is given (the background's copies still train T, LDA and PLDA).
pub fn train_backend_with(
    bg: &crate::eval::Background,
    gmm: &GmmUbmSystem,
    encoder: &Arc<SpeakerEncoder>,
    options: &BackendRecipeOptions,
    whole_call: Option<&super::trials::WholeCallChannels<'_>>,
    progress: &(dyn Fn(BackendProgress) + Sync),
) -> Result<(BackendModels, BackendReport), RecipeError> {
    use super::trials;
    let aug = super::gmm::split_background_with_copies(
        bg,
        options.holdout_every,
        options.holdout_min_utterances,
    );
    let split = &aug.split;
    let paths: Vec<std::path::PathBuf> = split.train.iter().map(|(p, _)| p.clone()).collect();
    let labels: Vec<String> = split.train.iter().map(|(_, s)| s.clone()).collect();
    let total = paths.len();
    progress(BackendProgress::Stage("features"));
    let groups: Vec<Vec<std::path::PathBuf>> = paths.iter().map(|p| vec![p.clone()]).collect();
    let voiced_frames: Vec<usize> =
        super::features_of_groups(&groups, &options.front_end, &|| {
            progress(BackendProgress::File { total })
        })?
        .iter()
        .map(FeatureMatrix::num_frames)
        .collect();
    progress(BackendProgress::Stage("session features"));
    let (sessions, session_labels) = session_chunks(
        &paths,
        &labels,
        &voiced_frames,
        options.ivector.chunk_frames,
    );
    // A clean session is one recording: its files go through the front end concatenated. A
    // channel copy's files each had a channel of their own (`augment-set` draws one per file), so
    // each goes through the front end alone (its CMN removes its own channel) and the
    // session's statistics are summed.
    let mut groups: Vec<Vec<std::path::PathBuf>> = Vec::new();
    let mut of_session: Vec<Vec<usize>> = Vec::new();
    for files in &sessions {
        let start = groups.len();
        if files
            .first()
            .is_some_and(|f| super::gmm::is_augmented_copy(&bg.root, f))
        {
            groups.extend(files.iter().map(|f| vec![f.clone()]));
        } else {
            groups.push(files.clone());
        }
        of_session.push((start..groups.len()).collect());
    }
    let groups_total = groups.len();
    let feats = super::features_of_groups(&groups, &options.front_end, &|| {
        progress(BackendProgress::File {
            total: groups_total,
        })
    })?;
    progress(BackendProgress::Stage("i-vector statistics"));
    let group_stats = stats_of(&gmm.ubm, &feats, &options.ivector.system)?;
    drop(feats);
    let stats: Vec<BaumWelchStats> = of_session
        .iter()
        .map(|idx| summed_stats(&group_stats, idx))
        .collect();
    drop(group_stats);
    progress(BackendProgress::Stage("total variability"));
    let objectives = std::sync::Mutex::new(Vec::new());
    let mut ivector = train_ivector_from_stats(
        &gmm.ubm,
        &stats,
        &session_labels,
        &options.ivector,
        &|iter, obj| {
            if let Ok(mut o) = objectives.lock() {
                o.push(obj);
            }
            progress(BackendProgress::TvIteration {
                iter,
                objective: obj,
            });
        },
    )?;
    drop(stats);
    progress(BackendProgress::Stage("embeddings"));
    let (sessions, session_labels) = session_chunks(
        &paths,
        &labels,
        &voiced_frames,
        options.embedding.chunk_frames,
    );
    let sessions_total = sessions.len();
    let sums = embed_sessions(&sessions, encoder, &|| {
        progress(BackendProgress::File {
            total: sessions_total,
        })
    })?;
    let mut embedding = train_embedding_system(&sums, &session_labels, &options.embedding)?;
    drop(sums);

    progress(BackendProgress::Stage("held-out trials"));
    let design = match whole_call {
        None => trials::held_out_design_of_split(&aug, options.channel_trials, &options.held_out)?,
        Some(w) => {
            let mut design = trials::held_out_design_of_split(&aug, false, &options.held_out)?;
            let read: Vec<&std::path::PathBuf> = split
                .train
                .iter()
                .filter(|(p, s)| s.starts_with("so") && !super::gmm::is_augmented_copy(&bg.root, p))
                .map(|(p, _)| p)
                .collect();
            let babble_pool: Vec<Vec<f32>> =
                crate::augment::babble_pool_choice(&read, w.babble_pool)
                    .map(|p| {
                        super::read_telephone_wav(p, crate::audio::ChannelPolicy::RequireMono)
                            .map(|w| w.samples)
                    })
                    .collect::<Result<_, _>>()?;
            trials::add_whole_call_channel_tests(&mut design, w, &babble_pool)?;
            design
        }
    };
    let (item_feats, item_analysis) = trials::analysed_items(
        &design.items,
        &options.front_end,
        options.adaptive_noise_suppression.as_ref(),
    )?;
    let item_sums = trials::item_embeddings(
        &design.items,
        encoder,
        options
            .adaptive_noise_suppression
            .as_ref()
            .map(|ns| (ns, item_analysis.as_slice())),
    )?;
    let reps = options.word_trial_repeats;
    // GMM-UBM: its own (shipped) calibration.
    let (graw, gframes) = trials::gmm_design_scores(gmm, &design, &item_feats)?;
    let gllr: Vec<f64> = graw
        .iter()
        .zip(&gframes)
        .map(|(&s, &n)| gmm.calibrate(s, n))
        .collect();
    // I-vector PLDA and embedding PLDA / cosine (an enrollment is one item: its files joined).
    let item_stats = stats_of(&gmm.ubm, &item_feats, &ivector.options)?;
    let iraw = trials::ivector_design_scores(&ivector, &design, &item_stats)?;
    let trials::EmbeddingDesignScores {
        plda: eraw,
        cosine: craw,
        frames: eframes,
    } = trials::embedding_design_scores(&embedding, &design, &item_sums)?;
    progress(BackendProgress::Stage("calibration and fusion"));
    let cal = |raw: &[f64], frames: &[usize]| -> Result<DurationCalibration, RecipeError> {
        let (s, f, l) = trials::select_trials(&design, raw, frames, reps);
        DurationCalibration::train(&s, &f, &l, &CalibrationOptions::default())
            .map_err(|e| RecipeError::stage("calibration", e))
    };
    let ical = cal(&iraw, &gframes)?;
    let ecal = cal(&eraw, &eframes)?;
    let ccal = cal(&craw, &eframes)?;
    let illr: Vec<f64> = iraw
        .iter()
        .zip(&gframes)
        .map(|(&s, &n)| ical.apply(s, n))
        .collect();
    let ellr: Vec<f64> = eraw
        .iter()
        .zip(&eframes)
        .map(|(&s, &n)| ecal.apply(s, n))
        .collect();
    ivector.calibration = Some(ical);
    embedding.calibration = Some(ecal);
    embedding.cosine_calibration = Some(ccal);
    let (g, _, l) = trials::select_trials(&design, &gllr, &gframes, reps);
    let (i, _, _) = trials::select_trials(&design, &illr, &gframes, reps);
    let (e, _, _) = trials::select_trials(&design, &ellr, &eframes, reps);
    let mut fusion = train_fusion(
        &["gmm", "ivector", "embedding"],
        &[&g, &i, &e],
        &l,
        options.fusion_prior,
    )?;
    let ne = design.enrollments.len().max(1);
    let trial_quality: Vec<TestQuality> = (0..design.tests.len() * ne)
        .map(|k| {
            let item = design.tests[k / ne].1;
            TestQuality::new(item_analysis[item].energy_spread_nats, gframes[k])
        })
        .collect();
    if !options.quality_measures.is_empty() {
        progress(BackendProgress::Stage("quality calibration"));
        let (_, q, _) = trials::select_trials(&design, &gllr, &trial_quality, reps);
        let fused: Vec<f64> = (0..l.len())
            .map(|k| fusion.fusion.apply(&[g[k], i[k], e[k]]))
            .collect::<Result<_, _>>()
            .map_err(|e| RecipeError::stage("quality calibration", e))?;
        let measures: Vec<_> = options
            .quality_measures
            .iter()
            .map(|&m| (m, None))
            .collect();
        fusion.quality = Some(
            QualityCalibration::train(&fused, &q, &l, &measures, &CalibrationOptions::default())
                .map_err(|e| RecipeError::stage("quality calibration", e))?,
        );
    }
    let held_out_trials = held_out_rows(&design, [&gllr, &illr, &ellr], &trial_quality, &fusion)?;
    let mut speakers: Vec<&String> = labels.iter().collect();
    speakers.sort();
    speakers.dedup();
    let report = BackendReport {
        train_files: total,
        augmented_train_files: aug.augmented_train_files,
        channel_tests: design.num_channel_tests(),
        train_speakers: speakers.len(),
        held_out_speakers: split.calibration.len(),
        trials: design.counts(),
        tv_objectives: objectives.into_inner().unwrap_or_default(),
        fusion: fusion.fusion.clone(),
        quality: fusion.quality.clone(),
        held_out_trials,
    };
    Ok((
        BackendModels {
            ivector,
            embedding,
            fusion,
        },
        report,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_pool_consecutive_utterances_per_speaker() {
        let labels = ["a", "a", "b", "a", "a", "b", "c"];
        let frames = [100, 150, 400, 300, 50, 100, 10];
        let chunks = speaker_chunks(&labels, &frames, 200);
        let got: Vec<(Vec<usize>, &str)> = chunks.into_iter().collect();
        assert_eq!(
            got,
            vec![
                (vec![0, 1], "a"),
                (vec![3, 4], "a"),
                (vec![2, 5], "b"),
                (vec![6], "c"),
            ]
        );
    }

    #[test]
    fn fusion_of_matrices_applies_weights_per_trial() {
        let mut f = FusedSystem {
            systems: vec!["a".into(), "b".into()],
            fusion: Fusion {
                weights: vec![2.0, -1.0],
                offset: 0.5,
            },
            quality: None,
        };
        let a = ScoreMatrix {
            num_tests: 2,
            scores: vec![1.0, 2.0],
        };
        let b = ScoreMatrix {
            num_tests: 2,
            scores: vec![3.0, 0.0],
        };
        let m = f.apply_matrices(&[&a, &b], None).unwrap();
        assert_eq!(m.scores, vec![2.0 - 3.0 + 0.5, 4.0 + 0.5]);
        assert!(f.apply_matrices(&[&a], None).is_err());
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<FusedSystem>(&json).unwrap(), f);
        // With a quality calibration llr' = 2·llr + 0.5·q + 0·llr·q − 1, q = clamp(spread) − 5:
        // each test's (column's) quality applies to every enrollment's score of that test.
        f.quality = Some(QualityCalibration {
            fusion: Fusion {
                weights: vec![2.0, 0.5, 0.0],
                offset: -1.0,
            },
            terms: vec![crate::calibration::QualityTerm {
                measure: QualityMeasure::EnergySpread,
                lo: 2.0,
                hi: 12.0,
                centre: 5.0,
            }],
        });
        let q = |spread| TestQuality::new(spread, 300);
        assert!(f.apply_matrices(&[&a, &b], None).is_err());
        assert!(f.apply_matrices(&[&a, &b], Some(&[q(9.0)])).is_err());
        let m = f
            .apply_matrices(&[&a, &b], Some(&[q(9.0), q(20.0)]))
            .unwrap();
        let expect = [
            2.0 * (2.0 - 3.0 + 0.5) + 0.5 * 4.0 - 1.0,
            2.0 * (4.0 + 0.5) + 0.5 * 7.0 - 1.0,
        ];
        assert_eq!(m.scores, expect);
    }

    #[test]
    fn held_out_rows_are_the_labelled_trials_with_their_fused_llrs() {
        use crate::audio::Waveform;
        use crate::recipe::trials::{held_out_design, HeldOutDesignOptions};
        let wave = |seconds: f64, value: f32| Waveform {
            sample_rate_hz: 8000,
            samples: vec![value; (seconds * 8000.0) as usize],
        };
        // three read speakers of ten 4-s files: a 32-s enrollment and two tests (3 s, 5 s) each
        let speakers: Vec<Vec<Waveform>> = (0..3)
            .map(|k| (0..10).map(|i| wave(4.0, (10 * k + i) as f32)).collect())
            .collect();
        let design = held_out_design(&speakers, &HeldOutDesignOptions::default());
        let ne = design.enrollments.len();
        let pairs = design.tests.len() * ne;
        let g: Vec<f64> = (0..pairs).map(|k| k as f64).collect();
        let i: Vec<f64> = (0..pairs).map(|k| 2.0 * k as f64).collect();
        let e: Vec<f64> = (0..pairs).map(|k| -(k as f64)).collect();
        let quality: Vec<TestQuality> = (0..pairs)
            .map(|k| TestQuality::new(5.0 + (k / ne) as f64, 100 + k))
            .collect();
        let fusion = FusedSystem {
            systems: vec!["gmm".into(), "ivector".into(), "embedding".into()],
            fusion: Fusion {
                weights: vec![1.0, 0.5, 0.25],
                offset: 0.1,
            },
            quality: None,
        };
        let rows = held_out_rows(&design, [&g, &i, &e], &quality, &fusion).unwrap();
        let labels = design.labels();
        assert_eq!(rows.len(), labels.iter().filter(|l| l.is_some()).count());
        assert_eq!(rows.iter().filter(|r| r.target).count(), design.tests.len());
        for row in &rows {
            let k = row.test * ne + row.enrollment;
            assert_eq!(labels[k], Some(row.target));
            assert_eq!(row.target, design.tests[row.test].0 == row.enrollment);
            assert_eq!(row.llrs, [g[k], i[k], e[k]]);
            assert_eq!(row.fused, g[k] + 0.5 * i[k] + 0.25 * e[k] + 0.1);
            assert_eq!(row.quality, quality[k]);
            let item = design.tests[row.test].1;
            assert_eq!(row.test_frames, design.items[item].samples.len() / 80);
            assert!([300, 500].contains(&row.test_frames));
            assert!(!row.word && !row.channel);
            let tsv = row.tsv();
            assert_eq!(
                tsv.split('\t').count(),
                HeldOutTrialRow::TSV_HEADER.split('\t').count()
            );
            assert!(tsv.starts_with(if row.target { "1\t" } else { "0\t" }));
        }
        // a column of the wrong length is refused
        assert!(held_out_rows(&design, [&g[1..], &i, &e], &quality, &fusion).is_err());
        // the file round trips (values with at most 6 decimals, as written)
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trials.tsv");
        let text = held_out_trials_tsv(&rows);
        assert_eq!(text.lines().count(), rows.len() + 1);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_held_out_trials(&path).unwrap(), rows);
        std::fs::write(&path, text.replacen("\t0\t", "\tx\t", 1)).unwrap();
        assert!(read_held_out_trials(&path).is_err());
    }

    #[test]
    fn fusion_file_round_trips_and_refuses_other_front_ends_or_kinds() {
        let mut f = FusedSystem {
            systems: vec!["gmm".into(), "ivector".into(), "embedding".into()],
            fusion: Fusion {
                weights: vec![0.6, 0.1, 0.7],
                offset: -0.2,
            },
            quality: None,
        };
        let comps = vec![FusionComponent {
            system: "gmm".into(),
            sha256: "00ff".into(),
        }];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fusion.qvx");
        let fe = crate::features::FrontEndOptions::default();
        f.save(&path, &fe, &comps).unwrap();
        let (g, c) = FusedSystem::load(&path, &fe).unwrap();
        assert_eq!((g, c), (f.clone(), comps.clone()));
        // with a quality calibration (its own section)
        let plain = f.clone();
        let energy_only = EnergyOnlyQualityCalibration {
            fusion: Fusion {
                weights: vec![1.2, -0.5, 0.1],
                offset: 0.3,
            },
            lo: 2.0,
            hi: 12.0,
            centre: 8.5,
        };
        let mut two = QualityCalibration::from(energy_only.clone());
        two.fusion.weights.extend([0.2, 0.05]);
        two.terms.push(crate::calibration::QualityTerm {
            measure: QualityMeasure::LogSpeechSeconds,
            lo: 0.9,
            hi: 1.9,
            centre: 1.5,
        });
        f.quality = Some(two);
        let qpath = dir.path().join("fusion-q.qvx");
        f.save(&qpath, &fe, &comps).unwrap();
        assert_eq!(FusedSystem::load(&qpath, &fe).unwrap().0, f);
        // a file of the energy-only layout (section "quality") still loads, as one measure
        let mut w = crate::model_io::ModelWriter::new(FUSION_KIND);
        w.set_front_end(Some(
            crate::engine::voice::front_end_fingerprint(&fe).unwrap(),
        ));
        w.add_postcard("fusion", &plain).unwrap();
        w.add_postcard("components", &comps).unwrap();
        w.add_postcard(ENERGY_ONLY_QUALITY_SECTION, &energy_only)
            .unwrap();
        let old_path = dir.path().join("fusion-old.qvx");
        w.save(&old_path).unwrap();
        let (old, _) = FusedSystem::load(&old_path, &fe).unwrap();
        assert_eq!(old.quality, Some(energy_only.into()));
        // weights that do not match the measures are refused
        let mut bad = f.clone();
        if let Some(q) = bad.quality.as_mut() {
            q.fusion.weights.pop();
        }
        let bad_path = dir.path().join("fusion-bad.qvx");
        bad.save(&bad_path, &fe, &comps).unwrap();
        assert!(matches!(
            FusedSystem::load(&bad_path, &fe),
            Err(crate::model_io::ModelIoError::InvalidModel { .. })
        ));
        let f = plain;
        let mut other = fe.clone();
        other.mfcc.num_ceps = 13;
        assert!(matches!(
            FusedSystem::load(&path, &other),
            Err(crate::model_io::ModelIoError::FrontEndMismatch { .. })
        ));
        let mut w = crate::model_io::ModelWriter::new("calibration");
        w.set_front_end(Some(
            crate::engine::voice::front_end_fingerprint(&fe).unwrap(),
        ));
        w.add_postcard("fusion", &f).unwrap();
        w.save(&path).unwrap();
        assert!(matches!(
            FusedSystem::load(&path, &fe),
            Err(crate::model_io::ModelIoError::WrongKind { .. })
        ));
    }
}
