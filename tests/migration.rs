//! Moving stored voiceprints to new models without the callers' audio: a voiceprint keeps the
//! sufficient statistics of its enrollment, so when new models change only what is computed from
//! them (MAP options, total-variability matrix, LDA, PLDA, calibrations, fusion), the voiceprint
//! of the new models is re-derived from those statistics. The oracle is enrolling the same audio
//! with the new models directly: the re-derived voiceprint must be the same bytes.

use std::path::Path;
use std::sync::Arc;

use quivox::engine::fused::{FusedBackends, GMM_FILE};
use quivox::engine::{CallInfo, Decision, Engine, EngineOptions, SpeakerId, VoiceModels};
use quivox::service::{Service, ServiceError, ServiceOptions};
use quivox::store::{Actor, AuditAction, SqliteStore, StoreKey};

mod common;
use common::{enroll_request, fixture, root};

fn shipped() -> VoiceModels {
    VoiceModels::load(&root().join("models")).unwrap()
}

/// The shipped models with another i-vector back end on the same statistics, as retraining T,
/// LDA or PLDA gives (here the centring mean is moved), under their own version tag.
fn retrained() -> VoiceModels {
    let mut models = shipped();
    let mut backends = FusedBackends::load_dir(&root().join("models"), &models.front_end).unwrap();
    for (k, m) in backends
        .ivector
        .backend
        .centering
        .mean
        .iter_mut()
        .enumerate()
    {
        *m += 0.05 * ((k % 7) as f64 - 3.0);
    }
    backends.version = "fused-test-retrained".into();
    models.version = backends.version.clone();
    models.backends = Some(Arc::new(backends));
    models
}

#[test]
fn a_rederived_voiceprint_is_the_one_enrolling_the_audio_gives() {
    let speaker = SpeakerId::from("so0457");
    let wave = fixture("so0457", "enroll");
    let old = Engine::new(shipped(), EngineOptions::default()).unwrap();
    let new = Engine::new(retrained(), EngineOptions::default()).unwrap();
    old.enroll(speaker.clone(), std::slice::from_ref(&wave))
        .unwrap();
    new.enroll(speaker.clone(), std::slice::from_ref(&wave))
        .unwrap();
    let old_print = old.voiceprint(&speaker).unwrap();
    let new_print = new.voiceprint(&speaker).unwrap();
    // The change matters: the i-vector enrollments differ.
    assert_ne!(
        old_print.backend.as_ref().unwrap().ivector,
        new_print.backend.as_ref().unwrap().ivector
    );
    new.models()
        .check_statistics_compatible(old.models())
        .unwrap();
    let moved = new.rederive_voiceprint(&speaker, &old_print).unwrap();
    assert_eq!(moved.to_bytes(), new_print.to_bytes());
    // With the same models it is the identity.
    let same = old.rederive_voiceprint(&speaker, &old_print).unwrap();
    assert_eq!(same.to_bytes(), old_print.to_bytes());
}

#[test]
fn incompatible_statistics_are_refused_with_what_differs() {
    let new = retrained();
    // Voiceprints of the GMM-UBM alone have no i-vector or embedding statistics.
    let gmm_alone = VoiceModels::load(&root().join("models").join(GMM_FILE)).unwrap();
    let err = new.check_statistics_compatible(&gmm_alone).unwrap_err();
    assert!(err.to_string().contains("GMM-UBM alone"), "{err}");
    // Other encoder weights give other embedding sums.
    let mut other_encoder = shipped();
    let mut backends =
        FusedBackends::load_dir(&root().join("models"), &other_encoder.front_end).unwrap();
    backends.encoder_sha256 = "0".repeat(64);
    other_encoder.backends = Some(Arc::new(backends));
    let err = new.check_statistics_compatible(&other_encoder).unwrap_err();
    assert!(err.to_string().contains("encoder weights differ"), "{err}");
    // Another front end gives other features, hence other statistics.
    let mut other_front_end = shipped();
    other_front_end.front_end.mfcc.num_ceps -= 1;
    let err = new
        .check_statistics_compatible(&other_front_end)
        .unwrap_err();
    assert!(err.to_string().contains("front end differs"), "{err}");
    // A voiceprint whose statistics have another shape is refused, not mis-read.
    let engine = Engine::new(shipped(), EngineOptions::default()).unwrap();
    let speaker = SpeakerId::from("so1027");
    engine
        .enroll(speaker.clone(), &[fixture("so1027", "enroll")])
        .unwrap();
    let mut print = engine.voiceprint(&speaker).unwrap();
    print.backend.as_mut().unwrap().stats.ivector.dim -= 1;
    let err = engine.rederive_voiceprint(&speaker, &print).unwrap_err();
    assert!(
        err.to_string()
            .contains("Baum-Welch statistics feature dimension: expected 60, got 59"),
        "{err}"
    );
}

fn open_with(path: &Path, key: &StoreKey, models: VoiceModels, options: ServiceOptions) -> Service {
    let store = SqliteStore::open_sqlite(path, key.clone()).unwrap();
    let version = models.version.clone();
    Service::open(models, version, Box::new(store), options).unwrap()
}

fn open(path: &Path, key: &StoreKey, models: VoiceModels) -> Service {
    open_with(path, key, models, ServiceOptions::default())
}

#[test]
fn a_store_moves_to_new_models_without_re_enrollment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let key = StoreKey::generate();
    let number = "+44 20 7946 0001";
    let mut speech_ms = Vec::new();
    {
        let service = open(&path, &key, shipped());
        let actor = Actor::new("agent", 1_700_000_000);
        for id in ["so0457", "so1027"] {
            let report = service.enroll(&actor, &enroll_request(id, number)).unwrap();
            speech_ms.push((report.total_speech_ms, SpeakerId::from(id)));
        }
    }
    speech_ms.sort();
    let [(less_ms, less), (more_ms, more)] = <[_; 2]>::try_from(speech_ms).unwrap();
    assert!(
        less_ms < more_ms,
        "the fixtures' enrollments have different net speech"
    );
    // First with an engine that asks for more speech than one of the two voiceprints has: that
    // one stays where it was, the other moves.
    let mut strict = ServiceOptions::default();
    strict.engine.min_enroll_speech_ms = more_ms;
    let service = open_with(&path, &key, retrained(), strict);
    // Before: the voiceprints are of the older models, so nobody is scored.
    assert_eq!(service.engine().population().len(), 0);
    assert_eq!(service.speakers_without_voiceprint().unwrap().len(), 2);
    let err = service
        .migrate_voiceprints(&Actor::new("ops", 1_700_000_100), &retrained())
        .unwrap_err();
    assert!(matches!(err, ServiceError::InvalidRequest { .. }), "{err}");
    let report = service
        .migrate_voiceprints(&Actor::new("ops", 1_700_000_100), &shipped())
        .unwrap();
    assert_eq!(report.migrated, vec![more.clone()]);
    assert_eq!(report.not_migrated.len(), 1, "{report:?}");
    assert_eq!(report.not_migrated[0].speaker, less);
    assert!(
        report.not_migrated[0].problem.contains("speech"),
        "{report:?}"
    );
    assert_eq!(service.speakers_without_voiceprint().unwrap(), vec![less]);
    drop(service);
    // The default engine takes the rest.
    let service = open(&path, &key, retrained());
    let report = service
        .migrate_voiceprints(&Actor::new("ops", 1_700_000_150), &shipped())
        .unwrap();
    assert_eq!(report.migrated.len(), 1);
    assert!(report.not_migrated.is_empty());
    assert_eq!(report.to_version, "fused-test-retrained");
    assert_eq!(service.engine().population().len(), 2);
    assert!(service.speakers_without_voiceprint().unwrap().is_empty());
    // Each move is an audited model update under the new version.
    let log = service.store().audit_log(None).unwrap();
    let updates = log
        .iter()
        .filter(|e| e.action == AuditAction::Update && e.detail.contains("fused-test-retrained"))
        .count();
    assert_eq!(updates, 2, "{log:?}");
    // Nothing is left to move.
    let again = service
        .migrate_voiceprints(&Actor::new("ops", 1_700_000_200), &shipped())
        .unwrap();
    assert!(again.migrated.is_empty());
    drop(service);
    // After a restart the new models identify the caller from the moved voiceprints.
    let service = open(&path, &key, retrained());
    assert_eq!(service.engine().population().len(), 2);
    let wave = fixture("so1027", "call");
    let mut session = service
        .start_call(CallInfo {
            caller_number: Some(number.into()),
            call_id: "moved".into(),
        })
        .unwrap();
    for chunk in wave.to_i16().unwrap().chunks(160) {
        session.push_pcm(chunk).unwrap();
    }
    let outcome = service
        .finish_call(&Actor::new("ivr", 1_700_000_300), session)
        .unwrap();
    match outcome.final_decision.decision {
        Decision::Identified { speaker, .. } => assert_eq!(speaker, SpeakerId::from("so1027")),
        other => panic!("expected so1027 identified, got {other:?}"),
    }
}
