//! The deployed caller-ID service: an [`Engine`] kept in step with a [`Store`].
//!
//! Integrations (the CLI, the C ABI, the daemon) go through this one type so that the enrolled
//! population in memory and the encrypted store never disagree:
//!
//! - [`Service::open`] loads every voiceprint made with the loaded models and the number
//!   directory from the store;
//! - [`Service::enroll`] quality-checks the audio, builds the voiceprint, writes it to the store
//!   (one transaction, with consent, numbers and — only if asked — the audio) and only then makes
//!   it live in the engine; more audio for an enrolled speaker re-adapts their model;
//! - [`Service::forget`] erases the person from the store and from memory;
//! - [`Service::finish_call`] audits the call and counts it on the calling number only when the
//!   voice agreed (a mismatch, possibly a spoofed number, must not teach the prior);
//! - [`Service::verify`] answers a claimed identity with a calibrated LLR and posterior.
//!
//! `Service` is `Send + Sync`: share it through an `Arc`. Store operations are serialised by one
//! mutex; calls ([`Session`]s) run without it.
//!
//! ```
//! use quivox::engine::{CallInfo, EngineOptions, VoiceModels};
//! use quivox::service::{Service, ServiceOptions};
//! use quivox::store::{Actor, SqliteStore, StoreKey};
//! # use quivox::engine::voice::{GmmUbmOptions, GmmUbmSystem};
//! # use quivox::features::FrontEndOptions;
//! # use quivox::gmm::DiagGmm;
//! # let fe = FrontEndOptions::default();
//! # let ubm = DiagGmm::new(fe.dim(), vec![1.0], vec![0.0; fe.dim()], vec![1.0; fe.dim()]).unwrap();
//! # let system = GmmUbmSystem { ubm, options: GmmUbmOptions::default(), calibration: None, cohort: None };
//! // let models = VoiceModels::load("models/gmm-ubm.qvx".as_ref())?;
//! let models = VoiceModels::new(system, fe)?;
//! let store = SqliteStore::open_sqlite_in_memory(StoreKey::generate())?;
//! let service = Service::open(models, "test-models".into(), Box::new(store), ServiceOptions::default())?;
//! let mut call = service.start_call(CallInfo { caller_number: None, call_id: "c1".into() })?;
//! call.push_pcm(&[0i16; 1600])?;
//! let outcome = service.finish_call(&Actor::now("ivr-1"), call)?;
//! assert_eq!(outcome.call_audio_ms, 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::audio::{encode_wav_pcm16, AudioError, Waveform};
use crate::engine::{
    CallInfo, CallOutcome, Decision, Engine, EngineError, EngineOptions, NumberDirectory,
    PhoneNumber, Session, SpeakerId, VoiceModels, Voiceprint,
};
use crate::store::{
    Actor, AuditAction, Consent, Enrollment, KeptAudio, ModelBlob, Store, StoreError,
};

/// Store `kind` of GMM-UBM voiceprints.
pub const VOICEPRINT_KIND: &str = "gmm";
/// Format tag of audio kept in the store: a 16-bit PCM WAV file.
pub const KEPT_AUDIO_FORMAT: &str = "wav-pcm16";

/// Errors of the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The engine refused or failed (quality checks, bad number, models).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store failed (key, database, not found, already exists).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Audio could not be encoded for keeping.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// Reading a model file failed.
    #[error("model file {path}: {source}")]
    ModelFile {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The speaker is not enrolled (with the loaded models).
    #[error("speaker {0} is not enrolled with the loaded models")]
    UnknownSpeaker(SpeakerId),
    /// A request field is invalid.
    #[error("{field}: {problem}")]
    InvalidRequest {
        /// Field name.
        field: &'static str,
        /// What is wrong, and what was expected.
        problem: String,
    },
}

/// Options of a [`Service`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServiceOptions {
    /// Engine options (confidence, speech durations, number prior, quality limits).
    pub engine: EngineOptions,
    /// Prior probability that a claimed identity is true, for [`Service::verify`] (0..1).
    pub verify_prior: f64,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            engine: EngineOptions::default(),
            verify_prior: 0.5,
        }
    }
}

impl ServiceOptions {
    /// Checks every option.
    pub fn validate(&self) -> Result<(), ServiceError> {
        self.engine.validate()?;
        if !(self.verify_prior > 0.0 && self.verify_prior < 1.0) {
            return Err(ServiceError::InvalidRequest {
                field: "verify_prior",
                problem: format!(
                    "{}: expected a probability strictly between 0 and 1",
                    self.verify_prior
                ),
            });
        }
        Ok(())
    }
}

/// An enrollment (new speaker) or an update (more audio for an enrolled one).
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    /// The operator's id for the speaker.
    pub speaker: SpeakerId,
    /// Name shown to agents (ignored on update when empty).
    pub display_name: String,
    /// Customer id in the operator's CRM, if different.
    pub external_id: Option<String>,
    /// Calling numbers the speaker is known on (any common format; parsed).
    pub numbers: Vec<String>,
    /// The consent under which this audio is enrolled.
    pub consent: Consent,
    /// Recordings at the models' sample rate (8 kHz), one session: concatenated in this order
    /// ([`Engine::enroll`]); a later request for the same speaker adds another session.
    pub recordings: Vec<Waveform>,
    /// Keep the recordings, encrypted, in the store (default: no raw audio is kept).
    pub keep_audio: bool,
}

/// What an enrollment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollReport {
    /// Who.
    pub speaker: SpeakerId,
    /// True for a new speaker, false when audio was added to an enrolled one.
    pub new_speaker: bool,
    /// Net speech in this request's recordings, ms.
    pub added_speech_ms: u64,
    /// Net speech behind the voiceprint now, ms.
    pub total_speech_ms: u64,
    /// Revision of the stored voiceprint (1 for a new speaker).
    pub model_revision: u32,
    /// Numbers newly linked by this request.
    pub numbers_linked: Vec<PhoneNumber>,
    /// Recordings kept in the store.
    pub audio_kept: usize,
}

/// What a voiceprint migration did ([`Service::migrate_voiceprints`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationReport {
    /// Model version the voiceprints were read under.
    pub from_version: String,
    /// Model version they are stored under now (the loaded models').
    pub to_version: String,
    /// Speakers whose voiceprint was re-derived and stored, sorted.
    pub migrated: Vec<SpeakerId>,
    /// Speakers whose voiceprint could not be re-derived (e.g. less speech than the loaded
    /// engine's `min_enroll_speech_ms`): their voiceprint of the older models is left as it was;
    /// re-enroll them. Sorted.
    pub not_migrated: Vec<MigrationFailure>,
}

/// A voiceprint [`Service::migrate_voiceprints`] left where it was, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationFailure {
    /// Whose.
    pub speaker: SpeakerId,
    /// What the engine said.
    pub problem: String,
}

/// The answer to a claimed identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// The claimed speaker.
    pub speaker: SpeakerId,
    /// Calibrated log-likelihood ratio (natural log) of "it is them" vs "someone else".
    pub llr: f64,
    /// Posterior probability that it is them, with [`ServiceOptions::verify_prior`].
    pub posterior: f64,
    /// Whether the posterior reaches the engine's confidence.
    pub accepted: bool,
    /// Net speech the decision rests on, ms.
    pub net_speech_ms: u64,
}

/// The engine and the store, kept in step. See the module documentation.
pub struct Service {
    engine: Arc<Engine>,
    store: Mutex<Box<dyn Store>>,
    model_version: String,
    options: ServiceOptions,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("model_version", &self.model_version)
            .field("enrolled", &self.engine.population().len())
            .finish_non_exhaustive()
    }
}

/// The model version recorded with voiceprints made with a GMM-UBM model file: `gmm-ubm-` and
/// the first 16 hex digits of the file's SHA-256 (voiceprints are only valid with the UBM they
/// came from). A models folder with the fused back ends has its own version
/// ([`crate::engine::FusedBackends::version`]).
pub fn model_version_of(bytes: &[u8]) -> String {
    crate::engine::engine::gmm_model_version(bytes)
}

impl Service {
    /// Opens the service: loads every voiceprint of `model_version` and the number directory
    /// from the store.
    pub fn open(
        models: VoiceModels,
        model_version: String,
        store: Box<dyn Store>,
        options: ServiceOptions,
    ) -> Result<Self, ServiceError> {
        options.validate()?;
        if model_version.is_empty() {
            return Err(ServiceError::InvalidRequest {
                field: "model_version",
                problem: "empty: expected the version tag of the models".into(),
            });
        }
        let engine = Arc::new(Engine::new(models, options.engine.clone())?);
        let service = Self {
            engine,
            store: Mutex::new(store),
            model_version,
            options,
        };
        service.reload()?;
        Ok(service)
    }

    /// Opens the service with the models at `path` ([`VoiceModels::load`]: a models folder gives
    /// the fused system, a GMM-UBM file the GMM-UBM alone); voiceprints are tagged with the
    /// models' content version ([`VoiceModels::version`]), so a store is never scored with
    /// voiceprints made by other models.
    pub fn open_model_file(
        path: &Path,
        store: Box<dyn Store>,
        options: ServiceOptions,
    ) -> Result<Self, ServiceError> {
        if !path.exists() {
            return Err(ServiceError::ModelFile {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            });
        }
        let models = VoiceModels::load(path)?;
        let version = models.version.clone();
        Self::open(models, version, store, options)
    }

    /// The engine (share it; sessions can also be started on it directly).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The version tag voiceprints are stored under.
    pub fn model_version(&self) -> &str {
        &self.model_version
    }

    /// The options.
    pub fn options(&self) -> &ServiceOptions {
        &self.options
    }

    /// The store, locked (list, show, export, rotate-key, retention, integrity). Do not change
    /// voiceprints or numbers through it without calling [`Service::reload`] afterwards.
    pub fn store(&self) -> MutexGuard<'_, Box<dyn Store>> {
        // A poisoned lock means a panic mid-operation; every store operation is a transaction,
        // so the store itself is consistent.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads the voiceprints and the number directory from the store (gateways sharing one
    /// PostgreSQL store call this when another gateway enrolled someone).
    pub fn reload(&self) -> Result<(), ServiceError> {
        let mut store = self.store();
        let mut prints = Vec::new();
        for (speaker, bytes) in store.load_models(VOICEPRINT_KIND, &self.model_version)? {
            prints.push((speaker, Voiceprint::from_bytes(&bytes)?));
        }
        let directory = directory_of(&mut **store)?;
        self.engine.set_voiceprints(prints)?;
        self.engine.set_directory(directory);
        Ok(())
    }

    /// Speakers in the store with no voiceprint for the loaded models (enrolled with other
    /// models: they must be re-enrolled, or the old models loaded).
    pub fn speakers_without_voiceprint(&self) -> Result<Vec<SpeakerId>, ServiceError> {
        let speakers = self.store().list_speakers()?;
        let population = self.engine.population();
        let live: std::collections::HashSet<&SpeakerId> = population.ids().iter().collect();
        Ok(speakers
            .into_iter()
            .map(|s| s.id)
            .filter(|id| !live.contains(id))
            .collect())
    }

    /// Moves the voiceprints enrolled with `older` models to the loaded ones without the callers'
    /// audio: each voiceprint's stored statistics are re-derived into a voiceprint of these
    /// models ([`Engine::rederive_voiceprint`]) and replace it in the store (an audited model
    /// update per speaker, so the older models no longer see it), and the engine scores them at
    /// once. Refused, with nothing changed, when the statistics are not compatible
    /// ([`VoiceModels::check_statistics_compatible`]) or when `older` are the loaded models.
    /// A voiceprint that cannot be re-derived is reported in
    /// [`MigrationReport::not_migrated`] and left as it was; the others move. A store error
    /// stops the migration after the voiceprints stored so far (which the engine then scores);
    /// running it again, or twice, migrates what is left.
    pub fn migrate_voiceprints(
        &self,
        actor: &Actor,
        older: &VoiceModels,
    ) -> Result<MigrationReport, ServiceError> {
        if older.version == self.model_version {
            return Err(ServiceError::InvalidRequest {
                field: "older models",
                problem: format!(
                    "version {} is the loaded models' own: expected the models the voiceprints \
                     were enrolled with",
                    older.version
                ),
            });
        }
        self.engine.models().check_statistics_compatible(older)?;
        let mut store = self.store();
        let mut prints = Vec::new();
        let mut not_migrated = Vec::new();
        for (speaker, bytes) in store.load_models(VOICEPRINT_KIND, &older.version)? {
            match Voiceprint::from_bytes(&bytes)
                .and_then(|print| self.engine.rederive_voiceprint(&speaker, &print))
            {
                Ok(print) => prints.push((speaker, print)),
                Err(e) => not_migrated.push(MigrationFailure {
                    speaker,
                    problem: e.to_string(),
                }),
            }
        }
        let mut stored = Vec::with_capacity(prints.len());
        let mut store_error = None;
        for (speaker, print) in prints {
            let blob = ModelBlob {
                kind: VOICEPRINT_KIND.into(),
                model_version: self.model_version.clone(),
                bytes: print.to_bytes(),
            };
            match store.update_model(actor, &speaker, &blob) {
                Ok(_) => stored.push((speaker, print)),
                Err(e) => {
                    store_error = Some(e);
                    break;
                }
            }
        }
        let migrated: Vec<SpeakerId> = stored.iter().map(|(s, _)| s.clone()).collect();
        self.engine.insert_voiceprints(stored)?;
        if let Some(e) = store_error {
            return Err(e.into());
        }
        Ok(MigrationReport {
            from_version: older.version.clone(),
            to_version: self.model_version.clone(),
            migrated,
            not_migrated,
        })
    }

    /// Enrolls a new speaker, or adds audio to an enrolled one. Nothing is stored and nothing
    /// changes in memory unless every check passes and the store transaction commits.
    pub fn enroll(
        &self,
        actor: &Actor,
        request: &EnrollRequest,
    ) -> Result<EnrollReport, ServiceError> {
        if request.speaker.0.trim().is_empty() {
            return Err(ServiceError::InvalidRequest {
                field: "speaker",
                problem: "empty: expected the operator's id for the speaker".into(),
            });
        }
        let numbers = request
            .numbers
            .iter()
            .map(|n| PhoneNumber::parse(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(EngineError::from)?;
        let kept = if request.keep_audio {
            request
                .recordings
                .iter()
                .map(|w| {
                    Ok(KeptAudio {
                        recorded_at: actor.now,
                        format: KEPT_AUDIO_FORMAT.into(),
                        bytes: encode_wav_pcm16(w)?,
                    })
                })
                .collect::<Result<Vec<_>, AudioError>>()?
        } else {
            Vec::new()
        };

        // One enrollment at a time: read-modify-write of a voiceprint must not interleave.
        let mut store = self.store();
        let previous = self.engine.voiceprint(&request.speaker);
        let print = self.engine.prepare_voiceprint(
            &request.speaker,
            &request.recordings,
            previous.as_ref(),
        )?;
        let added_speech_ms =
            print.net_speech_ms - previous.as_ref().map_or(0, |p| p.net_speech_ms);
        let blob = ModelBlob {
            kind: VOICEPRINT_KIND.into(),
            model_version: self.model_version.clone(),
            bytes: print.to_bytes(),
        };
        let in_store = match store.show(&request.speaker) {
            Ok(_) => true,
            Err(StoreError::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        let (new_speaker, model_revision, numbers_linked) = if previous.is_none() && !in_store {
            store.enroll(
                actor,
                &Enrollment {
                    speaker: request.speaker.clone(),
                    display_name: request.display_name.clone(),
                    external_id: request.external_id.clone(),
                    models: vec![blob],
                    numbers: numbers.clone(),
                    consent: request.consent.clone(),
                    keep_audio: kept.clone(),
                },
            )?;
            let mut unique = numbers.clone();
            unique.sort();
            unique.dedup();
            (true, 1, unique)
        } else {
            // Enrolled already (possibly with other models only: this adds the voiceprint for
            // the loaded ones). Each step is its own transaction; the model goes last so that a
            // failure before it leaves the old voiceprint in force.
            store.add_consent(actor, &request.speaker, &request.consent)?;
            let mut linked = Vec::new();
            for n in &numbers {
                if store.link_number(actor, n, &request.speaker)? {
                    linked.push(n.clone());
                }
            }
            for k in &kept {
                store.keep_audio(actor, &request.speaker, k)?;
            }
            let revision = store.update_model(actor, &request.speaker, &blob)?;
            (false, revision, linked)
        };
        let total_speech_ms = print.net_speech_ms;
        self.engine
            .insert_voiceprint(request.speaker.clone(), print)?;
        for n in &numbers {
            self.engine
                .link_number(&n.to_string(), request.speaker.clone())?;
        }
        Ok(EnrollReport {
            speaker: request.speaker.clone(),
            new_speaker,
            added_speech_ms,
            total_speech_ms,
            model_revision,
            numbers_linked,
            audio_kept: kept.len(),
        })
    }

    /// Erases a person everywhere (store and memory); the audit log keeps the erasure.
    pub fn forget(&self, actor: &Actor, speaker: &SpeakerId) -> Result<(), ServiceError> {
        let mut store = self.store();
        store.forget(actor, speaker)?;
        self.engine.remove(speaker)?;
        Ok(())
    }

    /// Links a calling number to an enrolled speaker; `false` if it was linked already.
    pub fn link_number(
        &self,
        actor: &Actor,
        number: &str,
        speaker: &SpeakerId,
    ) -> Result<bool, ServiceError> {
        let parsed = PhoneNumber::parse(number).map_err(EngineError::from)?;
        let mut store = self.store();
        let linked = store.link_number(actor, &parsed, speaker)?;
        if linked {
            self.engine.link_number(number, speaker.clone())?;
        }
        Ok(linked)
    }

    /// Removes a number link.
    pub fn unlink_number(
        &self,
        actor: &Actor,
        number: &str,
        speaker: &SpeakerId,
    ) -> Result<(), ServiceError> {
        let parsed = PhoneNumber::parse(number).map_err(EngineError::from)?;
        let mut store = self.store();
        store.unlink_number(actor, &parsed, speaker)?;
        self.engine.set_directory(directory_of(&mut **store)?);
        Ok(())
    }

    /// Starts a call (see [`Engine::start_call`]).
    pub fn start_call(&self, info: CallInfo) -> Result<Session, ServiceError> {
        Ok(self.engine.start_call(info)?)
    }

    /// Finishes a call: the final decision, an audit line, and one more call on the calling
    /// number's count for the identified speaker when the voice agreed with the number.
    pub fn finish_call(
        &self,
        actor: &Actor,
        session: Session,
    ) -> Result<CallOutcome, ServiceError> {
        let info = session.info().clone();
        let outcome = session.finish()?;
        let decision = &outcome.final_decision.decision;
        let mut store = self.store();
        if let (Some(number), Decision::Identified { speaker, .. }) =
            (info.caller_number.as_deref(), decision)
        {
            let parsed = PhoneNumber::parse(number).map_err(EngineError::from)?;
            // The speaker may have been forgotten during the call: then there is nothing to count.
            match store.record_call(actor, &parsed, speaker) {
                Ok(_) => self.engine.record_call(number, speaker.clone())?,
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let detail = format!(
            "call {:?}: {} after {} ms of speech",
            info.call_id,
            decision_summary(decision),
            outcome.final_decision.net_speech_ms
        );
        let audited = match store.log_event(
            actor,
            AuditAction::Identify,
            decision.voice_speaker(),
            &detail,
        ) {
            // A speaker forgotten mid-call cannot be referenced any more.
            Err(StoreError::NotFound { .. }) => {
                store.log_event(actor, AuditAction::Identify, None, &detail)
            }
            other => other,
        };
        audited?;
        Ok(outcome)
    }

    /// Verifies a claimed identity on recordings: calibrated LLR of the claimed speaker,
    /// posterior with [`ServiceOptions::verify_prior`], accepted at the engine's confidence.
    pub fn verify(
        &self,
        actor: &Actor,
        speaker: &SpeakerId,
        recordings: &[Waveform],
    ) -> Result<Verification, ServiceError> {
        if self.engine.voiceprint(speaker).is_none() {
            return Err(ServiceError::UnknownSpeaker(speaker.clone()));
        }
        let (llr, speech_ms) = self.engine.verify_llr(speaker, recordings)?;
        let prior_log_odds = (self.options.verify_prior / (1.0 - self.options.verify_prior)).ln();
        let posterior = 1.0 / (1.0 + (-(llr + prior_log_odds)).exp());
        let accepted = posterior >= self.options.engine.confidence;
        let verification = Verification {
            speaker: speaker.clone(),
            llr,
            posterior,
            accepted,
            net_speech_ms: speech_ms,
        };
        self.store().log_event(
            actor,
            AuditAction::Verify,
            Some(speaker),
            &format!(
                "{} (LLR {llr:.2}, posterior {posterior:.4}, {speech_ms} ms of speech)",
                if accepted { "accepted" } else { "rejected" }
            ),
        )?;
        Ok(verification)
    }
}

/// The number directory as the store holds it (links with their call counts).
fn directory_of(store: &mut dyn Store) -> Result<NumberDirectory, StoreError> {
    let mut directory = NumberDirectory::new();
    for (number, speaker, calls) in store.load_number_links()? {
        directory.set_call_count(number, speaker, calls);
    }
    Ok(directory)
}

/// A one-line summary of a decision for the audit log (no probabilities beyond the verdict).
fn decision_summary(decision: &Decision) -> String {
    match decision {
        Decision::Identified { speaker, .. } => format!("identified {speaker}"),
        Decision::Unknown { .. } => "unknown caller".into(),
        Decision::NumberOnly { reason, .. } => format!("number only ({reason:?})"),
        Decision::Mismatch { voice_says, .. } => format!("mismatch: voice says {voice_says}"),
        Decision::NeedMoreAudio { reason } => format!("no decision ({reason:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_version_is_content_derived() {
        assert_eq!(model_version_of(b"abc"), "gmm-ubm-ba7816bf8f01cfea");
        assert_ne!(model_version_of(b"abc"), model_version_of(b"abd"));
    }

    #[test]
    fn verify_prior_is_validated() {
        let mut o = ServiceOptions::default();
        assert!(o.validate().is_ok());
        for bad in [0.0, 1.0, -0.1, f64::NAN] {
            o.verify_prior = bad;
            assert!(matches!(
                o.validate(),
                Err(ServiceError::InvalidRequest {
                    field: "verify_prior",
                    ..
                })
            ));
        }
    }
}
