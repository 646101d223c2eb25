//! The Bayesian back ends the engine fuses with the GMM-UBM.
//!
//! A fused engine scores every decision point three ways and combines the calibrated LLRs with
//! the logistic-regression fusion trained by `quivox train-backend`
//! ([`crate::recipe::backend::FusedSystem`]):
//!
//! - **GMM-UBM**: the MAP-adapted models (see [`super::scoring`]);
//! - **i-vector PLDA**: Baum–Welch statistics of the call's normalised voiced features against
//!   the i-vector system's UBM → i-vector → LDA, length norm, PLDA → duration-aware calibration;
//! - **GE2E embedding PLDA**: the call's audio through the streaming neural encoder
//!   ([`crate::embedding::StreamingEmbedder`]) → PCA, LDA, length norm, PLDA → calibration.
//!
//! A voiceprint of a fused engine carries, besides the GMM statistics, the sufficient quantities
//! of the two back ends ([`BackendStats`]: i-vector Baum–Welch statistics and the sum of the
//! embedding's partial windows, both additive over recordings, so adding audio later gives the
//! same voiceprint as enrolling everything at once) and their enrollments ([`BackendPrint`]).

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::embedding_system::{
    embedder_fingerprint, file_sha256, EmbeddingEnrollment, EmbeddingPldaSystem, EmbeddingSum,
};
use super::engine::EngineError;
use super::ivector_system::{IvectorEnrollment, IvectorPldaSystem, VectorEnrollment};
use crate::audio::Waveform;
use crate::calibration::{Fusion, QualityCalibration, TestQuality};
use crate::embedding::{
    EmbedderOptions, EmbeddingError, GatedEmbedder, SpeakerEmbedder, SpeakerEncoder,
    StreamingEmbedder, UtteranceEmbedding,
};
use crate::features::{FeatureMatrix, FrontEndOptions, NoiseSuppressionOptions};
use crate::gmm::BaumWelchStats;
use crate::plda::PldaScorer;
use crate::recipe::backend::{FusedSystem, FusionComponent};

/// File name of the GMM-UBM system in a models folder.
pub const GMM_FILE: &str = "gmm-ubm.qvx";
/// File name of the i-vector PLDA system in a models folder.
pub const IVECTOR_FILE: &str = "ivector-plda.qvx";
/// File name of the embedding PLDA back end in a models folder.
pub const EMBEDDING_FILE: &str = "embedding-plda.qvx";
/// File name of the GE2E encoder weights in a models folder.
pub const ENCODER_FILE: &str = "speaker-encoder-ge2e.safetensors";
/// File name of the fusion in a models folder.
pub const FUSION_FILE: &str = "fusion.qvx";
/// The systems a fusion file must combine, in this order.
pub const FUSED_SYSTEMS: [&str; 3] = ["gmm", "ivector", "embedding"];

/// The i-vector and embedding systems and the fusion of all three calibrated LLRs.
#[derive(Debug)]
#[non_exhaustive]
pub struct FusedBackends {
    /// Calibrated i-vector PLDA system.
    pub ivector: IvectorPldaSystem,
    /// Calibrated embedding PLDA back end.
    pub embedding: EmbeddingPldaSystem,
    /// The GE2E encoder the embedding back end was trained on.
    pub encoder: Arc<SpeakerEncoder>,
    /// Embedder options (preprocessing as in training).
    pub embedder: EmbedderOptions,
    /// Fusion weights (GMM-UBM, i-vector, embedding) and offset.
    pub fusion: Fusion,
    /// Recalibration of the fused LLR by the call's signal quality (log-energy spread), when the
    /// fusion file has one.
    pub quality: Option<QualityCalibration>,
    /// Content version of the five model files: `"fused-"` + 16 hex digits of SHA-256 over their
    /// checksums.
    pub version: String,
    /// SHA-256 (hex) of the encoder weights file.
    pub encoder_sha256: String,
}

/// Sufficient quantities of enrollment speech for the two back ends (additive over recordings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStats {
    /// Baum–Welch statistics of the normalised voiced features against the i-vector UBM.
    pub ivector: BaumWelchStats,
    /// Sum of the GE2E partial-window embeddings.
    pub embedding: EmbeddingSum,
}

impl BackendStats {
    /// Adds another recording's (or call's) quantities, checking the shapes agree.
    pub fn add(&mut self, other: &BackendStats) -> Result<(), EngineError> {
        if other.ivector.zeroth.len() != self.ivector.zeroth.len()
            || other.ivector.dim != self.ivector.dim
            || other.embedding.sum.len() != self.embedding.sum.len()
        {
            return Err(EngineError::Voiceprint(format!(
                "back-end statistics {}×{} / embedding {}; expected {}×{} / {} (components × dim)",
                other.ivector.zeroth.len(),
                other.ivector.dim,
                other.embedding.sum.len(),
                self.ivector.zeroth.len(),
                self.ivector.dim,
                self.embedding.sum.len()
            )));
        }
        self.ivector.add(&other.ivector);
        self.embedding.add(&other.embedding);
        Ok(())
    }
}

/// The back-end part of a voiceprint: its statistics and the enrollments derived from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendPrint {
    /// What the enrollments were computed from.
    pub stats: BackendStats,
    /// I-vector PLDA enrollment.
    pub ivector: IvectorEnrollment,
    /// Embedding PLDA enrollment.
    pub embedding: EmbeddingEnrollment,
}

/// The embedding sum of an embedder's result: empty (no evidence) when the encoder's own
/// silence trimming found no speech.
pub(crate) fn speech_embedding(
    result: Result<UtteranceEmbedding, EmbeddingError>,
) -> Result<EmbeddingSum, EngineError> {
    match result {
        Ok(u) => Ok(EmbeddingSum::from_utterance(&u)),
        Err(EmbeddingError::NoSpeech(_)) => Ok(EmbeddingSum::zeros()),
        Err(e) => Err(e.into()),
    }
}

/// The back ends' batched scorers over an enrolled population.
#[derive(Debug)]
pub(crate) struct BackendBank {
    ivector: Vec<VectorEnrollment>,
    ivector_scorer: PldaScorer,
    embedding: Vec<VectorEnrollment>,
    embedding_scorer: PldaScorer,
}

fn sha16(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl FusedBackends {
    /// Loads the back ends of a models folder ([`IVECTOR_FILE`], [`EMBEDDING_FILE`],
    /// [`ENCODER_FILE`], [`FUSION_FILE`]) for the GMM-UBM system in the same folder
    /// ([`GMM_FILE`], trained with `front_end`). Refuses files trained with another front end or
    /// encoder, uncalibrated systems, and a fusion trained on other files (checksums).
    pub fn load_dir(dir: &Path, front_end: &FrontEndOptions) -> Result<Self, EngineError> {
        let gmm_path = dir.join(GMM_FILE);
        let ivector_path = dir.join(IVECTOR_FILE);
        let embedding_path = dir.join(EMBEDDING_FILE);
        let encoder_path = dir.join(ENCODER_FILE);
        let fusion_path = dir.join(FUSION_FILE);
        let ivector = IvectorPldaSystem::load_for(&ivector_path, front_end)?;
        let encoder_sha = file_sha256(&encoder_path)?;
        let embedding =
            EmbeddingPldaSystem::load(&embedding_path, &embedder_fingerprint(&encoder_sha, true)?)?;
        let encoder = SpeakerEncoder::from_file(&encoder_path)?;
        let (fused, components) = FusedSystem::load(&fusion_path, front_end)?;
        if fused.systems != FUSED_SYSTEMS {
            return Err(EngineError::FrontEnd(format!(
                "{} fuses {:?}; expected {FUSED_SYSTEMS:?}",
                fusion_path.display(),
                fused.systems
            )));
        }
        let mut shas =
            FusionComponent::verify_all(&fusion_path, &components, |system| match system {
                "gmm" => Some(gmm_path.clone()),
                "ivector" => Some(ivector_path.clone()),
                "embedding" => Some(embedding_path.clone()),
                _ => None,
            })?;
        if components.len() != FUSED_SYSTEMS.len() {
            return Err(EngineError::FrontEnd(format!(
                "{} names {} component files; expected {}",
                fusion_path.display(),
                components.len(),
                FUSED_SYSTEMS.len()
            )));
        }
        if ivector.calibration.is_none() || embedding.calibration.is_none() {
            return Err(EngineError::FrontEnd(
                "the fusion combines calibrated LLRs: the i-vector and embedding systems must \
                 carry their calibrations (quivox train-backend writes them)"
                    .into(),
            ));
        }
        shas.push(encoder_sha.clone());
        shas.push(file_sha256(&fusion_path)?);
        let refs: Vec<&str> = shas.iter().map(String::as_str).collect();
        Ok(Self {
            ivector,
            embedding,
            encoder: Arc::new(encoder),
            embedder: EmbedderOptions::default(),
            fusion: fused.fusion,
            quality: fused.quality,
            version: format!("fused-{}", sha16(&refs)),
            encoder_sha256: encoder_sha,
        })
    }

    /// What makes the back-end statistics of voiceprints enrolled with `older` unusable here,
    /// if anything: the statistics ([`BackendStats`]) are the i-vector system's Baum–Welch
    /// statistics over its UBM (with its posterior options) and the sums of the encoder's
    /// partial embeddings, so they carry over when those are the same, whatever T, LDA, PLDA,
    /// calibration or fusion changed.
    pub fn statistics_difference(&self, older: &FusedBackends) -> Option<String> {
        if self.ivector.ubm != older.ivector.ubm {
            Some("the i-vector system's UBM differs".into())
        } else if self.ivector.options != older.ivector.options {
            Some(format!(
                "the i-vector statistics options differ ({:?} against {:?})",
                self.ivector.options, older.ivector.options
            ))
        } else if self.encoder_sha256 != older.encoder_sha256 {
            Some(format!(
                "the encoder weights differ (SHA-256 {} against {})",
                self.encoder_sha256, older.encoder_sha256
            ))
        } else if self.embedder != older.embedder {
            Some("the embedder options differ".into())
        } else {
            None
        }
    }

    /// An embedder for batch (enrollment) audio: recordings analysed with the noise suppressor
    /// ([`super::AudioAnalysis::noise_suppressed`]) are embedded through `suppression` too.
    pub fn embedder(
        &self,
        suppression: Option<&NoiseSuppressionOptions>,
    ) -> Result<GatedEmbedder, EngineError> {
        Ok(GatedEmbedder::new(
            Arc::clone(&self.encoder),
            self.embedder.clone(),
            suppression,
        )?)
    }

    /// A streaming embedder for a call, through `suppression` if given.
    pub fn streaming_embedder(
        &self,
        suppression: Option<&NoiseSuppressionOptions>,
    ) -> Result<StreamingEmbedder, EngineError> {
        Ok(StreamingEmbedder::new(
            Arc::clone(&self.encoder),
            self.embedder
                .clone()
                .with_noise_suppression(suppression.cloned()),
        )?)
    }

    /// Empty statistics (no speech).
    pub fn empty_stats(&self) -> BackendStats {
        BackendStats {
            ivector: BaumWelchStats::zeros(
                self.ivector.ubm.num_components(),
                self.ivector.ubm.dim(),
            ),
            embedding: EmbeddingSum::zeros(),
        }
    }

    /// I-vector statistics of normalised voiced features.
    pub fn ivector_stats(&self, feats: &FeatureMatrix) -> Result<BaumWelchStats, EngineError> {
        if feats.is_empty() {
            return Ok(BaumWelchStats::zeros(
                self.ivector.ubm.num_components(),
                self.ivector.ubm.dim(),
            ));
        }
        Ok(self.ivector.stats(feats)?)
    }

    /// The back-end quantities of one recording (a session's recordings are concatenated into
    /// one first): i-vector statistics of its normalised voiced features (`analysis`) and the
    /// embedding of its audio, through `suppression` when the analysis was suppressed
    /// ([`super::AudioAnalysis::noise_suppressed`]; nothing when the embedder finds no speech).
    pub fn recording_stats(
        &self,
        analysis: &super::AudioAnalysis,
        wave: &Waveform,
        suppression: Option<&NoiseSuppressionOptions>,
    ) -> Result<BackendStats, EngineError> {
        let gate = suppression.filter(|_| analysis.noise_suppressed).cloned();
        let mut embedder = SpeakerEmbedder::new(
            Arc::clone(&self.encoder),
            self.embedder.clone().with_noise_suppression(gate),
        )?;
        Ok(BackendStats {
            ivector: self.ivector_stats(&analysis.features)?,
            embedding: speech_embedding(embedder.embed(wave))?,
        })
    }

    /// The enrollments of some statistics. Refuses statistics without embedding windows.
    pub fn print(&self, stats: BackendStats) -> Result<BackendPrint, EngineError> {
        if stats.embedding.partials == 0 || stats.ivector.total_count() <= 0.0 {
            return Err(EngineError::Voiceprint(
                "no speech reached the i-vector or embedding back end".into(),
            ));
        }
        let ivector = self.ivector.enroll(std::slice::from_ref(&stats.ivector))?;
        let embedding = self
            .embedding
            .enroll(std::slice::from_ref(&stats.embedding))?;
        Ok(BackendPrint {
            stats,
            ivector,
            embedding,
        })
    }

    /// Checks that a voiceprint's back-end part has the shapes of these systems.
    pub fn check_fits(&self, print: &BackendPrint) -> Result<(), EngineError> {
        let ubm = &self.ivector.ubm;
        let iv = &print.stats.ivector;
        if iv.zeroth.len() != ubm.num_components()
            || iv.dim != ubm.dim()
            || print.stats.embedding.sum.len() != self.empty_stats().embedding.sum.len()
            || print.ivector.vector.plda.mean.len() != self.ivector.backend.plda_dim()
            || print.embedding.vector.plda.mean.len() != self.embedding.backend.plda_dim()
        {
            return Err(EngineError::Voiceprint(format!(
                "back-end part {}×{} (i-vector PLDA {}, embedding PLDA {}); expected {}×{} ({}, {})",
                iv.zeroth.len(),
                iv.dim,
                print.ivector.vector.plda.mean.len(),
                print.embedding.vector.plda.mean.len(),
                ubm.num_components(),
                ubm.dim(),
                self.ivector.backend.plda_dim(),
                self.embedding.backend.plda_dim()
            )));
        }
        Ok(())
    }

    /// Batched scorers over the population's back-end prints.
    pub(crate) fn bank(&self, prints: &[&BackendPrint]) -> Result<BackendBank, EngineError> {
        let ivector: Vec<VectorEnrollment> =
            prints.iter().map(|p| p.ivector.vector.clone()).collect();
        let embedding: Vec<VectorEnrollment> =
            prints.iter().map(|p| p.embedding.vector.clone()).collect();
        Ok(BackendBank {
            ivector_scorer: self.ivector.backend.scorer(&ivector)?,
            embedding_scorer: self.embedding.backend.scorer(&embedding)?,
            ivector,
            embedding,
        })
    }

    /// Calibrated i-vector LLRs of a test's statistics (`frames` voiced frames) against the bank.
    pub(crate) fn ivector_llrs(
        &self,
        bank: &BackendBank,
        stats: &BaumWelchStats,
        frames: usize,
        out: &mut Vec<f64>,
    ) -> Result<(), EngineError> {
        out.clear();
        if bank.ivector.is_empty() {
            return Ok(());
        }
        let v = self.ivector.ivector(stats)?;
        let raw = self
            .ivector
            .backend
            .score_with(&bank.ivector_scorer, &bank.ivector, &v)?;
        out.extend(raw.into_iter().map(|s| self.ivector.calibrate(s, frames)));
        Ok(())
    }

    /// Calibrated embedding LLRs of a test embedding against the bank; all zero (no evidence)
    /// when the test has no embedding window.
    pub(crate) fn embedding_llrs(
        &self,
        bank: &BackendBank,
        sum: &EmbeddingSum,
        out: &mut Vec<f64>,
    ) -> Result<(), EngineError> {
        out.clear();
        if sum.partials == 0 {
            out.resize(bank.embedding.len(), 0.0);
            return Ok(());
        }
        if bank.embedding.is_empty() {
            return Ok(());
        }
        let raw = self.embedding.backend.score_with(
            &bank.embedding_scorer,
            &bank.embedding,
            &sum.embedding(),
        )?;
        let cal = self.embedding.calibration.as_ref();
        out.extend(
            raw.into_iter()
                .map(|s| cal.map_or(s, |c| c.apply(s, sum.frames))),
        );
        Ok(())
    }

    /// Fused LLR of one speaker's three calibrated LLRs, for a call of this quality (its frame
    /// log energies' spread and its voiced frames; used when the fusion has a quality
    /// recalibration).
    pub fn fuse(&self, gmm: f64, ivector: f64, embedding: f64, quality: &TestQuality) -> f64 {
        let w = &self.fusion.weights;
        let fused = w[0] * gmm + w[1] * ivector + w[2] * embedding + self.fusion.offset;
        match &self.quality {
            Some(q) => q.apply(fused, quality),
            None => fused,
        }
    }
}
