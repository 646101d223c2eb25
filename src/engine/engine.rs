//! The shared engine: voice models, enrolled population (voiceprints), number directory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::decision::CallOutcome;
use super::fused::{self, BackendBank, BackendPrint, BackendStats, FusedBackends};
use super::number::{NumberDirectory, NumberError, PhoneNumber, PriorOptions, SpeakerId};
use super::scoring::ScoringOptions;
use super::session::{CallInfo, Session};
use super::voice::GmmUbmSystem;
use crate::audio::Waveform;
use crate::calibration::TestQuality;
use crate::features::{
    apply_sliding_cmn_into, compute_deltas_into, compute_vad, compute_vad_running,
    AdaptiveNoiseSuppression, CmnScope, EnergyRange, FeatureError, FeatureMatrix, FrontEndOptions,
    MfccExtractor, VadMode,
};
use crate::gmm::{map_update, AccumDiagGmm, DiagGmm, GmmError, SpeakerBank};
use crate::model_io::ModelIoError;
use crate::plda::CohortStats;

/// Errors of the engine API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// An option is out of range.
    #[error("engine option {name} = {value}: expected {expected}")]
    InvalidOption {
        /// Option name.
        name: &'static str,
        /// Value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// The front end the model was trained with cannot be run by the engine.
    #[error("front end: {0}")]
    FrontEnd(String),
    /// Feature extraction failed.
    #[error(transparent)]
    Features(#[from] FeatureError),
    /// GMM computation failed.
    #[error(transparent)]
    Gmm(#[from] GmmError),
    /// Loading a model file failed.
    #[error(transparent)]
    ModelIo(#[from] ModelIoError),
    /// A calling number is malformed.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// Audio at a sample rate the models were not trained for.
    #[error("audio at {got} Hz: expected {expected} Hz (resample first)")]
    SampleRate {
        /// Rate the models expect.
        expected: u32,
        /// Rate given.
        got: u32,
    },
    /// Enrollment audio refused by a quality check.
    #[error("enrollment of {speaker} refused: {problem}")]
    EnrollmentRefused {
        /// Who was being enrolled.
        speaker: SpeakerId,
        /// What is wrong.
        problem: QualityProblem,
    },
    /// The speaker is not enrolled.
    #[error("speaker {0} is not enrolled")]
    UnknownSpeaker(SpeakerId),
    /// The speaker is already enrolled (use `add_audio`).
    #[error("speaker {0} is already enrolled: use add_audio to update the voiceprint")]
    AlreadyEnrolled(SpeakerId),
    /// A voiceprint does not fit the loaded models, or its bytes are corrupt.
    #[error("voiceprint: {0}")]
    Voiceprint(String),
    /// Enrollment from a call whose speech was not captured.
    #[error(
        "the call's speech was not captured: call Session::capture_for_enrollment before pushing \
         audio (or start it with Engine::start_enrollment_call)"
    )]
    CallNotCaptured,
    /// Capture requested after audio was already received.
    #[error("capture requested after {samples} samples; expected it before any audio")]
    CaptureTooLate {
        /// Samples already received.
        samples: u64,
    },
    /// The i-vector or embedding back end failed.
    #[error(transparent)]
    Backend(#[from] super::ivector_system::BackendError),
    /// The neural speaker encoder failed.
    #[error(transparent)]
    Embedding(#[from] crate::embedding::EmbeddingError),
}

/// A quality check that enrollment audio failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QualityProblem {
    /// Not enough net speech.
    #[error("{got_ms} ms of net speech; expected at least {min_ms} ms")]
    TooLittleSpeech {
        /// Net speech found, ms.
        got_ms: u64,
        /// Minimum required, ms.
        min_ms: u64,
    },
    /// Too many samples at full scale.
    #[error("{percent:.2} % of samples clipped; expected at most {max_percent:.2} %")]
    Clipping {
        /// Clipped samples, percent.
        percent: f64,
        /// Maximum allowed, percent.
        max_percent: f64,
    },
    /// Speech barely above the noise floor.
    #[error("estimated SNR {snr_db:.1} dB; expected at least {min_db:.1} dB")]
    LowSnr {
        /// Estimated SNR (90th − 10th percentile of frame energies), dB.
        snr_db: f64,
        /// Minimum required, dB.
        min_db: f64,
    },
    /// No audio at all.
    #[error("no audio given")]
    NoAudio,
}

/// Options of the engine, validated by [`EngineOptions::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct EngineOptions {
    /// Posterior probability a hypothesis must reach for a voice decision, in (0, 1). Default
    /// 0.99, chosen on `dev` and `dev-read` simulated calls (`examples/engine_eval.rs`): no wrong
    /// identification and no accepted unknown caller on either set, 99.2 % of enrolled callers
    /// identified on `dev` (91.7 % on `dev-read`, the rest falling back to the number).
    pub confidence: f64,
    /// Net speech before the first voice decision is attempted, ms (≥ 10).
    pub min_net_speech_ms: u64,
    /// Net speech at which a decision is forced even below `confidence`, ms (≥ min).
    pub max_net_speech_ms: u64,
    /// Net speech between two decision points while no voice decision has been made, ms (≥ 10).
    pub decision_interval_ms: u64,
    /// Net speech between two decision points once a voice decision stands (revisions), ms
    /// (≥ decision_interval_ms); a decision point always falls at `max_net_speech_ms`. Decision
    /// points cost in proportion to speech × population, so revisions are spaced wider.
    pub revision_interval_ms: u64,
    /// Net speech kept and scored per call at most, ms (≥ max_net_speech_ms); later speech is
    /// counted but not scored (it bounds memory and decision cost).
    pub max_scored_speech_ms: u64,
    /// How the calling number shapes the prior.
    pub prior: PriorOptions,
    /// Net speech an enrollment needs, ms.
    pub min_enroll_speech_ms: u64,
    /// Largest fraction of clipped samples (|x| ≥ 32000) accepted, in [0, 1].
    pub max_clipped_fraction: f64,
    /// Minimum SNR estimate (90th − 10th percentile of frame log energies), dB, for enrollment
    /// and for a call's voice to count.
    pub min_snr_db: f64,
    /// How decision points score the population (linear pass, exact shortlist).
    pub scoring: ScoringOptions,
    /// Net speech a session captured for enrollment keeps at most, ms (240 bytes per 10 ms of
    /// speech): later speech is not enrolled. Default 120 000.
    pub max_capture_speech_ms: u64,
    /// Noise suppression of noisy recordings and calls only (see [`AdaptiveNoiseSuppression`]):
    /// on by default (25-dB gate, mild suppressor); `None` turns it off. Ignored when the models'
    /// own front end already suppresses noise. Sessions run the suppressed front end beside the
    /// plain one and score whichever the call's energy spread so far calls for.
    pub adaptive_noise_suppression: Option<AdaptiveNoiseSuppression>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            confidence: 0.99,
            min_net_speech_ms: 2000,
            max_net_speech_ms: 7000,
            decision_interval_ms: 500,
            revision_interval_ms: 2500,
            max_scored_speech_ms: 10_000,
            prior: PriorOptions::default(),
            min_enroll_speech_ms: 10_000,
            max_clipped_fraction: 0.01,
            min_snr_db: 12.0,
            scoring: ScoringOptions::default(),
            max_capture_speech_ms: 120_000,
            adaptive_noise_suppression: Some(AdaptiveNoiseSuppression::default()),
        }
    }
}

impl EngineOptions {
    /// Checks every option.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |name, value: String, expected| {
            Err(EngineError::InvalidOption {
                name,
                value,
                expected,
            })
        };
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return bad(
                "confidence",
                self.confidence.to_string(),
                "a probability strictly between 0 and 1",
            );
        }
        if self.min_net_speech_ms < 10 {
            return bad(
                "min_net_speech_ms",
                self.min_net_speech_ms.to_string(),
                "at least 10 ms (one frame)",
            );
        }
        if self.max_net_speech_ms < self.min_net_speech_ms {
            return bad(
                "max_net_speech_ms",
                self.max_net_speech_ms.to_string(),
                "at least min_net_speech_ms",
            );
        }
        if self.decision_interval_ms < 10 {
            return bad(
                "decision_interval_ms",
                self.decision_interval_ms.to_string(),
                "at least 10 ms",
            );
        }
        if self.revision_interval_ms < self.decision_interval_ms {
            return bad(
                "revision_interval_ms",
                self.revision_interval_ms.to_string(),
                "at least decision_interval_ms",
            );
        }
        if self.max_scored_speech_ms < self.max_net_speech_ms {
            return bad(
                "max_scored_speech_ms",
                self.max_scored_speech_ms.to_string(),
                "at least max_net_speech_ms",
            );
        }
        if !(0.0..=1.0).contains(&self.max_clipped_fraction) {
            return bad(
                "max_clipped_fraction",
                self.max_clipped_fraction.to_string(),
                "a fraction in [0, 1]",
            );
        }
        if !self.min_snr_db.is_finite() {
            return bad(
                "min_snr_db",
                self.min_snr_db.to_string(),
                "a finite dB value",
            );
        }
        if let Some(ns) = &self.adaptive_noise_suppression {
            ns.validate().map_err(|e| EngineError::InvalidOption {
                name: "adaptive_noise_suppression",
                value: e.to_string(),
                expected: "valid adaptive noise suppression options",
            })?;
        }
        self.scoring.validate()?;
        self.prior
            .validate()
            .map_err(|e| EngineError::InvalidOption {
                name: "prior",
                value: e.to_string(),
                expected: "valid prior options",
            })
    }
}

/// The voice scoring systems and the front end their features come from: the GMM-UBM system,
/// and optionally the i-vector and embedding back ends whose calibrated LLRs are fused with it
/// ([`FusedBackends`]) before Bayes' rule.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VoiceModels {
    /// The GMM-UBM system (UBM, MAP options, top-C, calibration).
    pub gmm: GmmUbmSystem,
    /// Front-end options the models were trained with.
    pub front_end: FrontEndOptions,
    /// The fused back ends, when loaded (the default from a models folder).
    pub backends: Option<Arc<FusedBackends>>,
    /// Content version of the loaded model files (what stored voiceprints are tagged with).
    pub version: String,
}

impl VoiceModels {
    /// Wraps a system and its front end (the front end must use [`CmnScope::VoicedFrames`] and
    /// produce the UBM's dimension).
    pub fn new(gmm: GmmUbmSystem, front_end: FrontEndOptions) -> Result<Self, EngineError> {
        front_end.validate()?;
        if front_end.cmn_scope != CmnScope::VoicedFrames {
            return Err(EngineError::FrontEnd(format!(
                "CMN scope {:?}: the engine supports voiced-frame CMN only",
                front_end.cmn_scope
            )));
        }
        if front_end.vad_mode == VadMode::NoiseFloor {
            // Sessions run the streaming energy VAD; a model trained with another detector
            // would see different frames in calls than in training and enrollment.
            return Err(EngineError::FrontEnd(
                "VAD mode NoiseFloor has no streaming implementation yet: the engine runs \
                 the energy VAD (Utterance or Running)"
                    .into(),
            ));
        }
        if front_end.dim() != gmm.ubm.dim() {
            return Err(EngineError::FrontEnd(format!(
                "front end gives {} dims; the UBM has {}",
                front_end.dim(),
                gmm.ubm.dim()
            )));
        }
        Ok(Self {
            gmm,
            front_end,
            backends: None,
            version: String::new(),
        })
    }

    /// Adds the fused back ends (trained with this front end).
    pub fn with_backends(mut self, backends: FusedBackends) -> Self {
        self.version = backends.version.clone();
        self.backends = Some(Arc::new(backends));
        self
    }

    /// Loads the models: a folder (e.g. `models/`) gives the fused system, the GMM-UBM
    /// ([`fused::GMM_FILE`]) with the i-vector and embedding back ends and their fusion when
    /// [`fused::FUSION_FILE`] is there (the GMM-UBM alone otherwise); a file gives the GMM-UBM
    /// system alone (e.g. `models/gmm-ubm.qvx`).
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        if path.is_dir() {
            let gmm_path = path.join(fused::GMM_FILE);
            let bytes = read_model_bytes(&gmm_path)?;
            let (gmm, front_end) = GmmUbmSystem::load(&gmm_path)?;
            let mut models = Self::new(gmm, front_end)?;
            models.version = gmm_model_version(&bytes);
            if path.join(fused::FUSION_FILE).exists() {
                let backends = FusedBackends::load_dir(path, &models.front_end)?;
                models = models.with_backends(backends);
            }
            return Ok(models);
        }
        let bytes = read_model_bytes(path)?;
        let (gmm, front_end) = GmmUbmSystem::load(path)?;
        let mut models = Self::new(gmm, front_end)?;
        models.version = gmm_model_version(&bytes);
        Ok(models)
    }

    /// Whether the back ends are fused in.
    pub fn is_fused(&self) -> bool {
        self.backends.is_some()
    }

    /// Sample rate the front end expects, Hz.
    pub fn sample_rate_hz(&self) -> u32 {
        self.front_end.mfcc.sample_rate_hz
    }

    /// Calibrated LLRs (natural log) of normalised voiced `feats` against every speaker of `bank`;
    /// `norms`: the speakers' cohort statistics ([`Population::norms`]; empty without a cohort).
    pub fn llrs(
        &self,
        feats: &FeatureMatrix,
        bank: &SpeakerBank,
        norms: &[CohortStats],
    ) -> Result<Vec<f64>, EngineError> {
        if bank.num_speakers() == 0 || feats.is_empty() {
            return Ok(Vec::new());
        }
        let raw = self.gmm.scores(feats, bank, norms)?;
        let n = feats.num_frames();
        Ok(raw.into_iter().map(|s| self.gmm.calibrate(s, n)).collect())
    }

    /// Checks that voiceprints enrolled with `older` can be re-derived for these models from
    /// the statistics they carry ([`Engine::rederive_voiceprint`]), without the audio: the
    /// statistics depend only on the front end, the GMM-UBM's UBM, the i-vector system's UBM
    /// and posterior options, and the encoder and embedder, so a new MAP relevance, cohort,
    /// calibration, total-variability matrix, LDA, PLDA or fusion carries over. The error says
    /// what differs.
    pub fn check_statistics_compatible(&self, older: &VoiceModels) -> Result<(), EngineError> {
        let difference = if self.front_end != older.front_end {
            Some("the front end differs".to_string())
        } else if self.gmm.ubm != older.gmm.ubm {
            Some("the GMM-UBM's UBM differs".to_string())
        } else {
            match (self.backends.as_deref(), older.backends.as_deref()) {
                (Some(new), Some(old)) => new.statistics_difference(old),
                (Some(_), None) => Some(
                    "the older models are a GMM-UBM alone: their voiceprints have no i-vector or \
                     embedding statistics"
                        .to_string(),
                ),
                (None, _) => None,
            }
        };
        match difference {
            None => Ok(()),
            Some(what) => Err(EngineError::Voiceprint(format!(
                "voiceprints of {} cannot be re-derived for {}: {what}; re-enroll the speakers",
                older.version, self.version
            ))),
        }
    }
}

fn read_model_bytes(path: &Path) -> Result<Vec<u8>, EngineError> {
    std::fs::read(path).map_err(|source| {
        ModelIoError::Io {
            path: path.to_owned(),
            source,
        }
        .into()
    })
}

/// Content version of a GMM-UBM system file: `"gmm-ubm-"` + 16 hex digits of its SHA-256.
pub fn gmm_model_version(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("gmm-ubm-{hex}")
}

/// Speech analysis of one recording (batch path, same front end as enrollment).
#[derive(Debug, Clone, PartialEq)]
pub struct AudioAnalysis {
    /// Normalised voiced features.
    pub features: FeatureMatrix,
    /// Net speech, ms (voiced frames × frame shift).
    pub net_speech_ms: u64,
    /// Fraction of samples at |x| ≥ 32000.
    pub clipped_fraction: f64,
    /// SNR estimate (90th − 10th percentile of frame log energies), dB.
    pub snr_db: f64,
    /// Natural-log energy of every frame (voiced or not).
    pub frame_log_energy: Vec<f32>,
    /// Whether the adaptive noise suppression analysed the recording (its energy spread was
    /// under the gate): the features are then the suppressed ones, and the neural embedding of
    /// the recording is to be taken through the suppressor as well.
    pub noise_suppressed: bool,
}

/// What a session captured for enrollment ([`super::Session::capture_for_enrollment`]): the
/// sufficient statistics of its voiced speech against the UBM and the quality measures the
/// enrollment checks need. No audio or features are kept.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallEnrollment {
    /// Statistics (occupancy, first and second order) of the call's voiced frames, normalised
    /// with the front end's CMN over the captured speech, against the UBM: what
    /// [`Engine::enroll`] computes from a recording, with the session's running-mean VAD.
    pub stats: AccumDiagGmm,
    /// Net speech behind `stats`, ms.
    pub net_speech_ms: u64,
    /// Fraction of the call's samples at |x| ≥ 32000.
    pub clipped_fraction: f64,
    /// SNR estimate of the whole call (90th − 10th percentile of frame log energies), dB.
    pub snr_db: f64,
    /// The back ends' statistics of the call (i-vector statistics of the same normalised voiced
    /// frames, the embedding of the call's audio), for fused models.
    pub backend: Option<BackendStats>,
}

/// Full-scale threshold for clipping (16-bit scale; μ-law's largest value is 32124).
pub(crate) const CLIP_LEVEL: f32 = 32000.0;

/// The options' adaptive noise suppression, unless the models' front end suppresses noise itself.
pub(crate) fn adaptive_noise_suppression<'a>(
    options: &'a EngineOptions,
    models: &VoiceModels,
) -> Option<&'a AdaptiveNoiseSuppression> {
    AdaptiveNoiseSuppression::in_force(
        options.adaptive_noise_suppression.as_ref(),
        &models.front_end.mfcc,
    )
}

/// 90th − 10th percentile of frame log energies, dB (0 for fewer than 2 frames).
pub(crate) fn snr_estimate_db(log_energy: &[f32]) -> f64 {
    EnergyRange::of_log_energy(log_energy).spread_db()
}

/// Batch analysis with the models' front end: MFCC → Δ → VAD (the front end's mode) → CMN over
/// the voiced frames. Same features as [`crate::features::FrontEnd::compute`]. With `adaptive`
/// (and models whose front end does not suppress noise itself), a recording whose energy spread
/// is under the gate is analysed again with the suppressor (its VAD then runs on the suppressed
/// energies); `snr_db` and `frame_log_energy` are always those of the signal as received.
pub fn analyze(
    models: &VoiceModels,
    wave: &Waveform,
    adaptive: Option<&AdaptiveNoiseSuppression>,
) -> Result<AudioAnalysis, EngineError> {
    let fe = &models.front_end;
    if wave.sample_rate_hz != models.sample_rate_hz() {
        return Err(EngineError::SampleRate {
            expected: models.sample_rate_hz(),
            got: wave.sample_rate_hz,
        });
    }
    let mut mfcc = MfccExtractor::new(fe.mfcc.clone())?;
    let (mut ceps, log_energy) = mfcc.compute_with_energy(&wave.samples)?;
    let mut vad_energy = None;
    if let Some(ns) = AdaptiveNoiseSuppression::in_force(adaptive, &fe.mfcc) {
        if ns.applies_to(&EnergyRange::of_log_energy(&log_energy)) {
            let (c, e) = MfccExtractor::new(ns.suppressed_mfcc(&fe.mfcc))?
                .compute_with_energy(&wave.samples)?;
            ceps = c;
            vad_energy = Some(e);
        }
    }
    let noise_suppressed = vad_energy.is_some();
    let vad_energy = vad_energy.as_deref().unwrap_or(&log_energy);
    let mut deltas = FeatureMatrix::new(fe.dim());
    compute_deltas_into(&ceps, &fe.deltas, &mut deltas)?;
    let voiced = match fe.vad_mode {
        VadMode::Running => compute_vad_running(vad_energy, &fe.vad)?,
        _ => compute_vad(vad_energy, &fe.vad)?,
    };
    let mut pre = FeatureMatrix::new(fe.dim());
    for (row, &v) in deltas.rows().zip(&voiced) {
        if v {
            pre.push_row(row);
        }
    }
    let mut features = FeatureMatrix::new(fe.dim());
    if !pre.is_empty() {
        apply_sliding_cmn_into(&pre, &fe.sliding_cmn, &mut features)?;
    }
    let clipped = wave
        .samples
        .iter()
        .filter(|x| x.abs() >= CLIP_LEVEL)
        .count();
    Ok(AudioAnalysis {
        net_speech_ms: features.num_frames() as u64 * fe.mfcc.frame_shift_ms as u64,
        features,
        clipped_fraction: if wave.samples.is_empty() {
            0.0
        } else {
            clipped as f64 / wave.samples.len() as f64
        },
        snr_db: snr_estimate_db(&log_energy),
        frame_log_energy: log_energy,
        noise_suppressed,
    })
}

/// Magic bytes of a serialised [`Voiceprint`].
const VOICEPRINT_MAGIC: &[u8; 4] = b"QVVP";
/// Current voiceprint format version (1: GMM only; 2: GMM and optional back-end part; 3: and
/// the GMM's cohort statistics).
pub const VOICEPRINT_VERSION: u16 = 3;

/// An enrolled speaker's voice: the MAP-adapted GMM and the sufficient statistics it was adapted
/// from (so adding audio updates it exactly as if all audio had been enrolled at once), and, for
/// a fused engine, the i-vector / embedding statistics and enrollments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voiceprint {
    /// Sufficient statistics of all enrollment audio against the UBM.
    pub stats: AccumDiagGmm,
    /// MAP-adapted model.
    pub model: DiagGmm,
    /// Net speech behind it, ms.
    pub net_speech_ms: u64,
    /// The back ends' part (fused engines only).
    pub backend: Option<BackendPrint>,
    /// The MAP model's scores against the GMM-UBM system's cohort utterances (Z side of its
    /// adaptive S-norm), when the system has a cohort.
    pub gmm_norm: Option<CohortStats>,
}

/// Format 2 (no cohort statistics), still readable.
#[derive(Deserialize)]
struct VoiceprintV2 {
    stats: AccumDiagGmm,
    model: DiagGmm,
    net_speech_ms: u64,
    backend: Option<BackendPrint>,
}

/// Format 1 (GMM only), still readable.
#[derive(Deserialize)]
struct VoiceprintV1 {
    stats: AccumDiagGmm,
    model: DiagGmm,
    net_speech_ms: u64,
}

/// Statistics of enrollment speech for every system of the models.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnrollStats {
    pub(crate) gmm: AccumDiagGmm,
    pub(crate) backend: Option<BackendStats>,
    pub(crate) speech_ms: u64,
}

impl EnrollStats {
    fn add(&mut self, other: &EnrollStats) -> Result<(), EngineError> {
        self.gmm.add(&other.gmm)?;
        match (&mut self.backend, &other.backend) {
            (Some(a), Some(b)) => a.add(b)?,
            (None, None) => {}
            _ => {
                return Err(EngineError::Voiceprint(
                    "one voiceprint has a back-end part and the other not: re-enroll with the \
                     loaded models"
                        .into(),
                ))
            }
        }
        self.speech_ms += other.speech_ms;
        Ok(())
    }
}

impl Voiceprint {
    /// Builds a voiceprint from statistics (MAP adaptation of the system's UBM, and the model's
    /// cohort statistics when the system has a cohort).
    pub fn from_stats(
        system: &GmmUbmSystem,
        stats: AccumDiagGmm,
        net_speech_ms: u64,
    ) -> Result<Self, EngineError> {
        let model = map_update(&system.ubm, &stats, &system.options.map)?;
        let gmm_norm = system.model_norm(&model)?;
        Ok(Self {
            stats,
            model,
            net_speech_ms,
            backend: None,
            gmm_norm,
        })
    }

    fn enroll_stats(&self) -> EnrollStats {
        EnrollStats {
            gmm: self.stats.clone(),
            backend: self.backend.as_ref().map(|b| b.stats.clone()),
            speech_ms: self.net_speech_ms,
        }
    }

    /// Serialises as `"QVVP"`, a little-endian u16 version, then postcard.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(VOICEPRINT_MAGIC);
        out.extend_from_slice(&VOICEPRINT_VERSION.to_le_bytes());
        // Serialising plain vectors and numbers cannot fail.
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Parses bytes written by [`Voiceprint::to_bytes`] (checking magic and version).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        if bytes.len() < 6 || &bytes[..4] != VOICEPRINT_MAGIC {
            return Err(EngineError::Voiceprint(format!(
                "{} bytes not starting with {:?}: expected a serialised voiceprint",
                bytes.len(),
                std::str::from_utf8(VOICEPRINT_MAGIC).unwrap_or("QVVP")
            )));
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        let corrupt = |e: postcard::Error| EngineError::Voiceprint(format!("corrupt payload: {e}"));
        match version {
            1 => {
                let v1: VoiceprintV1 = postcard::from_bytes(&bytes[6..]).map_err(corrupt)?;
                Ok(Self {
                    stats: v1.stats,
                    model: v1.model,
                    net_speech_ms: v1.net_speech_ms,
                    backend: None,
                    gmm_norm: None,
                })
            }
            2 => {
                let v2: VoiceprintV2 = postcard::from_bytes(&bytes[6..]).map_err(corrupt)?;
                Ok(Self {
                    stats: v2.stats,
                    model: v2.model,
                    net_speech_ms: v2.net_speech_ms,
                    backend: v2.backend,
                    gmm_norm: None,
                })
            }
            VOICEPRINT_VERSION => postcard::from_bytes(&bytes[6..]).map_err(corrupt),
            _ => Err(EngineError::Voiceprint(format!(
                "format version {version}; expected 1 to {VOICEPRINT_VERSION}"
            ))),
        }
    }
}

/// The enrolled population as scored by sessions (an immutable snapshot; sessions keep the one
/// they started with).
#[derive(Debug)]
pub struct Population {
    ids: Vec<SpeakerId>,
    prints: Vec<Voiceprint>,
    index: HashMap<SpeakerId, usize>,
    bank: SpeakerBank,
    /// Per speaker, the GMM-UBM cohort statistics (empty when the models have no cohort).
    norms: Vec<CohortStats>,
    backend: Option<BackendBank>,
}

impl Population {
    fn build(
        models: &VoiceModels,
        entries: Vec<(SpeakerId, Voiceprint)>,
    ) -> Result<Self, EngineError> {
        let (ids, prints): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
        let gmms: Vec<&DiagGmm> = prints.iter().map(|p: &Voiceprint| &p.model).collect();
        let bank = SpeakerBank::new(&models.gmm.ubm, &gmms)?;
        let norms = if models.gmm.cohort.is_some() {
            prints
                .iter()
                .zip(&ids)
                .map(|(p, id)| {
                    p.gmm_norm.ok_or_else(|| {
                        EngineError::Voiceprint(format!(
                            "{id}'s voiceprint has no cohort statistics, which these models' \
                             score normalisation needs: re-enroll"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let backend = match &models.backends {
            Some(b) => {
                let parts: Vec<&BackendPrint> = prints
                    .iter()
                    .zip(&ids)
                    .map(|(p, id)| {
                        p.backend.as_ref().ok_or_else(|| {
                            EngineError::Voiceprint(format!(
                                "{id}'s voiceprint has no i-vector / embedding part, which the \
                                 fused models need: re-enroll (or load the GMM-UBM file alone)"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Some(b.bank(&parts)?)
            }
            None => None,
        };
        let index = ids
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, s)| (s, i))
            .collect();
        Ok(Self {
            ids,
            prints,
            index,
            bank,
            norms,
            backend,
        })
    }

    pub(crate) fn backend_bank(&self) -> Option<&BackendBank> {
        self.backend.as_ref()
    }

    /// Enrolled speakers, in scoring order.
    pub fn ids(&self) -> &[SpeakerId] {
        &self.ids
    }

    /// Number of enrolled speakers.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when nobody is enrolled.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The packed speaker models.
    pub fn bank(&self) -> &SpeakerBank {
        &self.bank
    }

    /// Per speaker (scoring order), the GMM-UBM cohort statistics of its voiceprint; empty when
    /// the models have no cohort.
    pub fn norms(&self) -> &[CohortStats] {
        &self.norms
    }

    fn entries(&self) -> Vec<(SpeakerId, Voiceprint)> {
        self.ids
            .iter()
            .cloned()
            .zip(self.prints.iter().cloned())
            .collect()
    }
}

/// The caller-identification engine: shared (`Arc<Engine>`), thread-safe; sessions snapshot the
/// population and the number prior when the call starts.
#[derive(Debug)]
pub struct Engine {
    models: Arc<VoiceModels>,
    options: EngineOptions,
    population: RwLock<Arc<Population>>,
    directory: RwLock<NumberDirectory>,
}

impl Engine {
    /// An engine with nobody enrolled.
    pub fn new(models: VoiceModels, options: EngineOptions) -> Result<Self, EngineError> {
        options.validate()?;
        let population = Population::build(&models, Vec::new())?;
        Ok(Self {
            models: Arc::new(models),
            options,
            population: RwLock::new(Arc::new(population)),
            directory: RwLock::new(NumberDirectory::new()),
        })
    }

    /// The voice models.
    pub fn models(&self) -> &VoiceModels {
        &self.models
    }

    /// The options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The adaptive noise suppression in force: the options' unless the models' front end
    /// suppresses noise itself.
    pub fn adaptive_noise_suppression(&self) -> Option<&AdaptiveNoiseSuppression> {
        adaptive_noise_suppression(&self.options, &self.models)
    }

    /// The current population snapshot.
    pub fn population(&self) -> Arc<Population> {
        // A poisoned lock only means a writer panicked; the Arc inside is still consistent.
        match self.population.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// A copy of the number directory.
    pub fn directory(&self) -> NumberDirectory {
        match self.directory.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn write_population(
        &self,
        f: impl FnOnce(&mut Vec<(SpeakerId, Voiceprint)>) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let mut guard = self.population.write().unwrap_or_else(|p| p.into_inner());
        let mut entries = guard.entries();
        f(&mut entries)?;
        *guard = Arc::new(Population::build(&self.models, entries)?);
        Ok(())
    }

    fn with_directory<T>(&self, f: impl FnOnce(&mut NumberDirectory) -> T) -> T {
        let mut guard = self.directory.write().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Analyses and quality-checks enrollment recordings; returns their statistics (for every
    /// system of the models) and net speech. The recordings are one session: concatenated, they
    /// go through the front end and the encoder as one recording (VAD, CMN windows and the
    /// encoder's partial windows span their boundaries, as they span the words of a call), the way
    /// the development sets' enrollment lists are enrolled. Audio from another call is another
    /// session: [`Engine::add_audio`].
    fn enrollment_stats(
        &self,
        speaker: &SpeakerId,
        recordings: &[Waveform],
    ) -> Result<EnrollStats, EngineError> {
        let refuse = |problem| EngineError::EnrollmentRefused {
            speaker: speaker.clone(),
            problem,
        };
        let wave = self.session_of(recordings)?;
        if wave.samples.is_empty() {
            return Err(refuse(QualityProblem::NoAudio));
        }
        let backends = self.models.backends.as_deref();
        let adaptive = self.adaptive_noise_suppression();
        let a = analyze(&self.models, &wave, adaptive)?;
        // Over the whole session: short clips trimmed to the word have no noise floor of their own.
        self.check_signal(a.clipped_fraction, a.snr_db)
            .map_err(refuse)?;
        let mut acc = AccumDiagGmm::for_model(&self.models.gmm.ubm);
        let mut backend = backends.map(FusedBackends::empty_stats);
        if !a.features.is_empty() {
            self.models
                .gmm
                .ubm
                .accumulate_stats(&a.features, &mut acc)?;
            if let (Some(b), Some(total)) = (backends, &mut backend) {
                *total = b.recording_stats(&a, &wave, adaptive.map(|ns| &ns.suppression))?;
            }
        }
        Ok(EnrollStats {
            gmm: acc,
            backend,
            speech_ms: a.net_speech_ms,
        })
    }

    /// The clipping and SNR checks of enrollment audio.
    fn check_signal(&self, clipped_fraction: f64, snr_db: f64) -> Result<(), QualityProblem> {
        if clipped_fraction > self.options.max_clipped_fraction {
            return Err(QualityProblem::Clipping {
                percent: 100.0 * clipped_fraction,
                max_percent: 100.0 * self.options.max_clipped_fraction,
            });
        }
        if snr_db < self.options.min_snr_db {
            return Err(QualityProblem::LowSnr {
                snr_db,
                min_db: self.options.min_snr_db,
            });
        }
        Ok(())
    }

    /// The recordings of one session concatenated (each at the models' sample rate).
    fn session_of(&self, recordings: &[Waveform]) -> Result<Waveform, EngineError> {
        let expected = self.models.sample_rate_hz();
        if let Some(w) = recordings.iter().find(|w| w.sample_rate_hz != expected) {
            return Err(EngineError::SampleRate {
                expected,
                got: w.sample_rate_hz,
            });
        }
        Ok(Waveform::concatenate(recordings).unwrap_or(Waveform {
            sample_rate_hz: expected,
            samples: Vec::new(),
        }))
    }

    /// Builds (without enrolling) the voiceprint `recordings` give for `speaker`, after the same
    /// quality checks as [`Engine::enroll`]; with `previous`, the statistics are added to it (as
    /// [`Engine::add_audio`] does, and then the minimum-speech check applies to the total). Lets
    /// a caller persist the voiceprint first and insert it with [`Engine::insert_voiceprint`]
    /// only once it is stored.
    pub fn prepare_voiceprint(
        &self,
        speaker: &SpeakerId,
        recordings: &[Waveform],
        previous: Option<&Voiceprint>,
    ) -> Result<Voiceprint, EngineError> {
        let mut stats = self.enrollment_stats(speaker, recordings)?;
        if let Some(prev) = previous {
            self.check_fits(prev)?;
            let mut total = prev.enroll_stats();
            total.add(&stats)?;
            stats = total;
        }
        self.voiceprint_from(speaker, stats)
    }

    /// The voiceprint of quality-checked statistics, if there is enough speech.
    fn voiceprint_from(
        &self,
        speaker: &SpeakerId,
        stats: EnrollStats,
    ) -> Result<Voiceprint, EngineError> {
        let refuse = |got_ms| EngineError::EnrollmentRefused {
            speaker: speaker.clone(),
            problem: QualityProblem::TooLittleSpeech {
                got_ms,
                min_ms: self.options.min_enroll_speech_ms,
            },
        };
        if stats.speech_ms < self.options.min_enroll_speech_ms {
            return Err(refuse(stats.speech_ms));
        }
        let mut print = Voiceprint::from_stats(&self.models.gmm, stats.gmm, stats.speech_ms)?;
        if let (Some(b), Some(backend)) = (self.models.backends.as_deref(), stats.backend) {
            if backend.embedding.partials == 0 {
                // the encoder's own trimming found no speech where the VAD did
                return Err(refuse(0));
            }
            print.backend = Some(b.print(backend)?);
        }
        Ok(print)
    }

    /// Replaces the whole enrolled population (e.g. re-read from a shared store).
    pub fn set_voiceprints(
        &self,
        prints: impl IntoIterator<Item = (SpeakerId, Voiceprint)>,
    ) -> Result<(), EngineError> {
        let mut seen = std::collections::HashSet::new();
        let mut new = Vec::new();
        for (id, print) in prints {
            self.check_fits(&print)?;
            if seen.insert(id.clone()) {
                new.push((id, print));
            }
        }
        self.write_population(|entries| {
            *entries = new;
            Ok(())
        })
    }

    /// Enrolls a new speaker from one or more recordings (at the models' sample rate) of one
    /// session, concatenated (an enrollment list of clips, a call cut into files), after the
    /// quality checks: net speech ≥ `min_enroll_speech_ms`, clipping, SNR.
    pub fn enroll(&self, speaker: SpeakerId, recordings: &[Waveform]) -> Result<(), EngineError> {
        if self.population().index.contains_key(&speaker) {
            return Err(EngineError::AlreadyEnrolled(speaker));
        }
        let stats = self.enrollment_stats(&speaker, recordings)?;
        let print = self.voiceprint_from(&speaker, stats)?;
        self.insert_voiceprint(speaker, print)
    }

    /// Adds a session of recordings (concatenated, as [`Engine::enroll`] takes them; e.g. a later
    /// call) to an enrolled speaker: its statistics are added to the voiceprint's and the models
    /// re-derived from the sum. The session passes the clipping/SNR checks.
    pub fn add_audio(
        &self,
        speaker: &SpeakerId,
        recordings: &[Waveform],
    ) -> Result<(), EngineError> {
        let stats = self.enrollment_stats(speaker, recordings)?;
        self.add_stats(speaker, &stats)
    }

    /// Starts a call whose speech is captured for enrollment ([`Engine::enroll_from_call`]):
    /// [`Engine::start_call`] then [`Session::capture_for_enrollment`].
    pub fn start_enrollment_call(&self, info: CallInfo) -> Result<Session, EngineError> {
        let mut session = self.start_call(info)?;
        session.capture_for_enrollment()?;
        Ok(session)
    }

    /// Quality checks of captured calls (clipping and SNR per call); their summed statistics
    /// and net speech.
    fn call_stats(
        &self,
        speaker: &SpeakerId,
        calls: &[&CallOutcome],
    ) -> Result<EnrollStats, EngineError> {
        let refuse = |problem| EngineError::EnrollmentRefused {
            speaker: speaker.clone(),
            problem,
        };
        if calls.is_empty() {
            return Err(refuse(QualityProblem::NoAudio));
        }
        let mut total = EnrollStats {
            gmm: AccumDiagGmm::for_model(&self.models.gmm.ubm),
            backend: self
                .models
                .backends
                .as_deref()
                .map(FusedBackends::empty_stats),
            speech_ms: 0,
        };
        for outcome in calls {
            let captured = outcome
                .enrollment
                .as_ref()
                .ok_or(EngineError::CallNotCaptured)?;
            self.check_signal(captured.clipped_fraction, captured.snr_db)
                .map_err(refuse)?;
            if captured.stats.num_components() != total.gmm.num_components()
                || captured.stats.dim() != total.gmm.dim()
            {
                return Err(EngineError::Voiceprint(format!(
                    "call statistics {}×{}; expected the UBM's {}×{} (components × dim)",
                    captured.stats.num_components(),
                    captured.stats.dim(),
                    total.gmm.num_components(),
                    total.gmm.dim()
                )));
            }
            total.add(&EnrollStats {
                gmm: captured.stats.clone(),
                backend: captured.backend.clone(),
                speech_ms: captured.net_speech_ms,
            })?;
        }
        Ok(total)
    }

    /// Enrolls a new speaker from a finished call captured for enrollment
    /// ([`Engine::start_enrollment_call`]), after the same quality checks as [`Engine::enroll`]:
    /// net speech ≥ `min_enroll_speech_ms`, clipping, SNR.
    pub fn enroll_from_call(
        &self,
        speaker: SpeakerId,
        outcome: &CallOutcome,
    ) -> Result<(), EngineError> {
        self.enroll_from_calls(speaker, &[outcome])
    }

    /// Enrolls a new speaker from several captured calls (their speech pooled; each call passes
    /// the clipping and SNR checks, the total the net-speech minimum).
    pub fn enroll_from_calls(
        &self,
        speaker: SpeakerId,
        calls: &[&CallOutcome],
    ) -> Result<(), EngineError> {
        if self.population().index.contains_key(&speaker) {
            return Err(EngineError::AlreadyEnrolled(speaker));
        }
        let stats = self.call_stats(&speaker, calls)?;
        let print = self.voiceprint_from(&speaker, stats)?;
        self.insert_voiceprint(speaker, print)
    }

    /// Adds a captured call's speech to an enrolled speaker (statistics summed, model
    /// re-adapted), after the clipping and SNR checks.
    pub fn add_call_audio(
        &self,
        speaker: &SpeakerId,
        outcome: &CallOutcome,
    ) -> Result<(), EngineError> {
        let stats = self.call_stats(speaker, &[outcome])?;
        self.add_stats(speaker, &stats)
    }

    fn add_stats(&self, speaker: &SpeakerId, stats: &EnrollStats) -> Result<(), EngineError> {
        self.write_population(|entries| {
            let entry = entries
                .iter_mut()
                .find(|(id, _)| id == speaker)
                .ok_or_else(|| EngineError::UnknownSpeaker(speaker.clone()))?;
            let mut total = entry.1.enroll_stats();
            total.add(stats)?;
            entry.1 = self.voiceprint_from(speaker, total)?;
            Ok(())
        })
    }

    /// Enrolls (or replaces) a speaker from a stored voiceprint, checking it fits the UBM.
    pub fn insert_voiceprint(
        &self,
        speaker: SpeakerId,
        print: Voiceprint,
    ) -> Result<(), EngineError> {
        self.check_fits(&print)?;
        self.write_population(|entries| {
            match entries.iter_mut().find(|(id, _)| *id == speaker) {
                Some(entry) => entry.1 = print,
                None => entries.push((speaker, print)),
            }
            Ok(())
        })
    }

    /// Checks that a voiceprint was made with the loaded UBM's shape (and, for fused models,
    /// carries a back-end part of the back ends' shapes).
    fn check_fits(&self, print: &Voiceprint) -> Result<(), EngineError> {
        let ubm = &self.models.gmm.ubm;
        if print.model.num_components() != ubm.num_components()
            || print.model.dim() != ubm.dim()
            || print.stats.num_components() != ubm.num_components()
            || print.stats.dim() != ubm.dim()
        {
            return Err(EngineError::Voiceprint(format!(
                "model {}×{} / stats {}×{}; expected the UBM's {}×{} (components × dim)",
                print.model.num_components(),
                print.model.dim(),
                print.stats.num_components(),
                print.stats.dim(),
                ubm.num_components(),
                ubm.dim()
            )));
        }
        match (self.models.backends.as_deref(), &print.backend) {
            (Some(b), Some(part)) => b.check_fits(part),
            (Some(_), None) => Err(EngineError::Voiceprint(
                "no i-vector / embedding part, which the fused models need: re-enroll (or load \
                 the GMM-UBM file alone)"
                    .into(),
            )),
            (None, _) => Ok(()),
        }
    }

    /// Enrolls many voiceprints at once (one rebuild of the speaker bank).
    pub fn insert_voiceprints(
        &self,
        prints: impl IntoIterator<Item = (SpeakerId, Voiceprint)>,
    ) -> Result<(), EngineError> {
        let new: Vec<_> = prints.into_iter().collect();
        self.write_population(|entries| {
            let mut at: HashMap<SpeakerId, usize> = entries
                .iter()
                .enumerate()
                .map(|(i, (s, _))| (s.clone(), i))
                .collect();
            for (id, print) in new {
                match at.get(&id) {
                    Some(&i) => entries[i].1 = print,
                    None => {
                        at.insert(id.clone(), entries.len());
                        entries.push((id, print));
                    }
                }
            }
            Ok(())
        })
    }

    /// The voiceprint these models give from the statistics stored in `print`, a voiceprint
    /// enrolled with older models whose statistics are compatible
    /// ([`VoiceModels::check_statistics_compatible`], which the caller checks): the MAP model,
    /// the GMM-UBM cohort statistics and the back ends' enrollments are computed anew, exactly as
    /// enrolling the same audio with these models would give them. Not inserted.
    pub fn rederive_voiceprint(
        &self,
        speaker: &SpeakerId,
        print: &Voiceprint,
    ) -> Result<Voiceprint, EngineError> {
        // Statistics of another shape are refused where they are used: by the MAP update
        // (against the UBM) and by the i-vector extractor.
        if self.models.backends.is_some() && print.backend.is_none() {
            return Err(EngineError::Voiceprint(
                "no i-vector / embedding statistics, which the fused models need: re-enroll".into(),
            ));
        }
        self.voiceprint_from(speaker, print.enroll_stats())
    }

    /// The voiceprint of an enrolled speaker.
    pub fn voiceprint(&self, speaker: &SpeakerId) -> Option<Voiceprint> {
        let pop = self.population();
        pop.index.get(speaker).map(|&i| pop.prints[i].clone())
    }

    /// Verification score of recordings against one enrolled speaker (batch path): the
    /// calibrated LLR (fused when the models carry the back ends) of the recordings as one
    /// session (concatenated, as [`Engine::enroll`] takes them) and the net speech scored, ms.
    pub fn verify_llr(
        &self,
        speaker: &SpeakerId,
        recordings: &[Waveform],
    ) -> Result<(f64, u64), EngineError> {
        let print = self
            .voiceprint(speaker)
            .ok_or_else(|| EngineError::UnknownSpeaker(speaker.clone()))?;
        let models = &self.models;
        let wave = self.session_of(recordings)?;
        let adaptive = self.adaptive_noise_suppression();
        let a = analyze(models, &wave, adaptive)?;
        let (feats, speech_ms) = (&a.features, a.net_speech_ms);
        if feats.is_empty() {
            return Ok((0.0, 0));
        }
        let energy = EnergyRange::of_log_energy(&a.frame_log_energy);
        let backends = models.backends.as_deref();
        let backend_stats = backends
            .map(|b| b.recording_stats(&a, &wave, adaptive.map(|ns| &ns.suppression)))
            .transpose()?;
        let bank = SpeakerBank::new(&models.gmm.ubm, &[&print.model])?;
        let norms: Vec<CohortStats> = print.gmm_norm.into_iter().collect();
        let gmm = models
            .llrs(feats, &bank, &norms)?
            .first()
            .copied()
            .unwrap_or(0.0);
        let (Some(b), Some(part), Some(stats)) = (backends, &print.backend, backend_stats) else {
            return Ok((gmm, speech_ms));
        };
        // the same scorers as a session's, over a population of one
        let bank = b.bank(&[part])?;
        let (mut ivector, mut embedding) = (Vec::new(), Vec::new());
        b.ivector_llrs(&bank, &stats.ivector, feats.num_frames(), &mut ivector)?;
        b.embedding_llrs(&bank, &stats.embedding, &mut embedding)?;
        let quality =
            TestQuality::new(energy.spread_nats().unwrap_or(f64::NAN), feats.num_frames());
        Ok((b.fuse(gmm, ivector[0], embedding[0], &quality), speech_ms))
    }

    /// Removes a speaker (voiceprint and number links); returns whether they were enrolled.
    pub fn remove(&self, speaker: &SpeakerId) -> Result<bool, EngineError> {
        let mut found = false;
        self.write_population(|entries| {
            let before = entries.len();
            entries.retain(|(id, _)| id != speaker);
            found = entries.len() != before;
            Ok(())
        })?;
        self.with_directory(|d| d.remove_speaker(speaker));
        Ok(found)
    }

    /// Records that `speaker` is known on `number`.
    pub fn link_number(&self, number: &str, speaker: SpeakerId) -> Result<(), EngineError> {
        let number = PhoneNumber::parse(number)?;
        self.with_directory(|d| d.link(number, speaker));
        Ok(())
    }

    /// Records a (confirmed) call by `speaker` from `number` (raises their share of its prior).
    pub fn record_call(&self, number: &str, speaker: SpeakerId) -> Result<(), EngineError> {
        let number = PhoneNumber::parse(number)?;
        self.with_directory(|d| d.record_call(number, speaker));
        Ok(())
    }

    /// Replaces the number directory (e.g. loaded from the store).
    pub fn set_directory(&self, directory: NumberDirectory) {
        self.with_directory(|d| *d = directory);
    }

    /// Starts a call: snapshots the population and the number prior. A malformed number is an
    /// error; a withheld one is `caller_number: None`.
    pub fn start_call(&self, info: CallInfo) -> Result<Session, EngineError> {
        let number = info
            .caller_number
            .as_deref()
            .map(PhoneNumber::parse)
            .transpose()?;
        let population = self.population();
        let prior = match self.directory.read() {
            Ok(d) => d.prior(number.as_ref(), population.ids(), &self.options.prior),
            Err(p) => p
                .into_inner()
                .prior(number.as_ref(), population.ids(), &self.options.prior),
        };
        Session::new(
            Arc::clone(&self.models),
            self.options.clone(),
            population,
            prior,
            info,
        )
    }
}
