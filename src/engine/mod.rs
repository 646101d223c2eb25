//! Streaming caller-identification engine: sessions, number prior, fusion, decisions.
//!
//! An [`Engine`] holds the voice models, the enrolled population (one [`Voiceprint`] per
//! [`SpeakerId`]) and the [`NumberDirectory`]; it is `Send + Sync` and meant to be shared through
//! an `Arc`. Each call gets a [`Session`] from [`Engine::start_call`]: push audio in any chunk size,
//! [`Session::poll`] for [`DecisionEvent`]s, [`Session::finish`] for the final [`CallOutcome`].
//!
//! ```
//! use quivox::audio::Waveform;
//! use quivox::engine::{CallInfo, Decision, Engine, EngineOptions, VoiceModels};
//! # use quivox::engine::voice::{GmmUbmOptions, GmmUbmSystem};
//! # use quivox::features::FrontEndOptions;
//! # use quivox::gmm::DiagGmm;
//! # let fe = FrontEndOptions::default();
//! # let d = fe.dim();
//! # let ubm = DiagGmm::new(d, vec![1.0], vec![0.0; d], vec![1.0; d]).unwrap();
//! # let system = GmmUbmSystem { ubm, options: GmmUbmOptions::default(), calibration: None, cohort: None };
//! // let models = VoiceModels::load("models/gmm-ubm.qvx".as_ref())?;
//! let models = VoiceModels::new(system, fe)?;
//! let engine = std::sync::Arc::new(Engine::new(models, EngineOptions::default())?);
//! engine.link_number("+44 20 7946 0000", "alice".into())?;
//! let mut call = engine.start_call(CallInfo {
//!     caller_number: Some("+442079460000".into()),
//!     call_id: "call-1".into(),
//! })?;
//! for chunk in [0u8; 8000].chunks(160) {
//!     call.push_ulaw(chunk)?; // 20-ms chunks of μ-law
//!     while let Some(event) = call.poll() {
//!         println!("{} ms: {:?}", event.call_audio_ms, event.decision);
//!     }
//! }
//! let outcome = call.finish()?;
//! // One second of line silence: no voice decision, never a guess.
//! assert!(!matches!(outcome.final_decision.decision, Decision::Identified { .. }));
//! # Ok::<(), quivox::engine::EngineError>(())
//! ```

pub mod bayes;
pub mod decision;
pub mod embedding_system;
#[allow(clippy::module_inception)]
pub mod engine;
pub mod fused;
pub mod gmm_cohort;
pub mod ivector_system;
pub mod number;
pub mod scoring;
pub mod session;
pub mod voice;

pub use bayes::{caller_posterior, log_sum_exp, Best, CallerPosterior};
pub use decision::{CallOutcome, Decision, DecisionEvent, VoiceSays, VoiceShortfall};
pub use engine::{
    analyze, AudioAnalysis, CallEnrollment, Engine, EngineError, EngineOptions, Population,
    QualityProblem, VoiceModels, Voiceprint, VOICEPRINT_VERSION,
};
pub use fused::{BackendPrint, BackendStats, FusedBackends};
pub use number::{CallerPrior, NumberDirectory, NumberError, PhoneNumber, PriorOptions, SpeakerId};
pub use scoring::ScoringOptions;
pub use session::{CallInfo, Session};
