//! The service keeps engine and store in step: enrollments survive a restart, refusals leave no
//! trace, erasure removes the person from memory and disk, calls are audited and counted only
//! when the voice agrees with the number. Uses the shipped GMM-UBM and the demo fixtures.

use std::path::Path;
use std::sync::Arc;

use quivox::audio::Waveform;
use quivox::engine::{CallInfo, Decision, EngineError, QualityProblem, SpeakerId};
use quivox::service::{EnrollRequest, Service, ServiceError, ServiceOptions, VOICEPRINT_KIND};
use quivox::store::{Actor, AuditAction, Consent, SqliteStore, StoreError, StoreKey};

mod common;
use common::{fixture, root};

fn consent() -> Consent {
    Consent {
        given_at: 1_700_000_000,
        method: "recorded-ivr".into(),
        operator: "test".into(),
        reference: "tests/service.rs".into(),
    }
}

fn request(speaker: &str, number: &str, recordings: Vec<Waveform>) -> EnrollRequest {
    EnrollRequest {
        speaker: SpeakerId::from(speaker),
        display_name: format!("Customer {speaker}"),
        external_id: None,
        numbers: vec![number.into()],
        consent: consent(),
        recordings,
        keep_audio: false,
    }
}

fn open(path: &Path, key: &StoreKey) -> Service {
    open_with(path, key, ServiceOptions::default())
}

fn open_with(path: &Path, key: &StoreKey, options: ServiceOptions) -> Service {
    let store = SqliteStore::open_sqlite(path, key.clone()).unwrap();
    Service::open_model_file(&root().join("models/gmm-ubm.qvx"), Box::new(store), options).unwrap()
}

fn call(service: &Service, speaker: &str, number: Option<&str>) -> Decision {
    let pcm = fixture(speaker, "call").to_i16().unwrap();
    let mut session = service
        .start_call(CallInfo {
            caller_number: number.map(str::to_string),
            call_id: format!("test-{speaker}"),
        })
        .unwrap();
    for chunk in pcm.chunks(160) {
        session.push_pcm(chunk).unwrap();
    }
    service
        .finish_call(&Actor::new("ivr", 1_700_000_100), session)
        .unwrap()
        .final_decision
        .decision
}

#[test]
fn enrollment_survives_restart_and_forget_erases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let key = StoreKey::generate();
    let actor = Actor::new("agent", 1_700_000_000);
    {
        let service = open(&path, &key);
        for (id, number) in [
            ("so0457", "+44 20 7946 0001"),
            ("so2061", "+33 1 23 45 67 89"),
        ] {
            let report = service
                .enroll(&actor, &request(id, number, vec![fixture(id, "enroll")]))
                .unwrap();
            assert!(report.new_speaker);
            assert_eq!(report.model_revision, 1);
            assert_eq!(report.added_speech_ms, report.total_speech_ms);
            assert_eq!(report.numbers_linked.len(), 1);
            assert_eq!(report.audio_kept, 0);
        }
        assert_eq!(service.engine().population().len(), 2);
        // No raw audio kept unless asked.
        assert!(service
            .store()
            .kept_audio(&SpeakerId::from("so0457"))
            .unwrap()
            .is_empty());
    }
    // A gateway restarting: everything comes back from the encrypted store.
    let service = open(&path, &key);
    assert_eq!(service.engine().population().len(), 2);
    assert!(service.speakers_without_voiceprint().unwrap().is_empty());
    match call(&service, "so0457", Some("+44 20 7946 0001")) {
        Decision::Identified { speaker, .. } => assert_eq!(speaker, SpeakerId::from("so0457")),
        other => panic!("expected so0457 identified, got {other:?}"),
    }
    // The agreeing call was counted on the number (it was linked at enrollment: count 0 → 1).
    let links = service.store().load_number_links().unwrap();
    let count = links
        .iter()
        .find(|(_, s, _)| s == &SpeakerId::from("so0457"))
        .unwrap()
        .2;
    assert_eq!(count, 1);
    let audit = service.store().audit_log(None).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == AuditAction::Identify && e.detail.contains("identified so0457")));

    service.forget(&actor, &SpeakerId::from("so0457")).unwrap();
    assert_eq!(service.engine().population().len(), 1);
    assert!(service
        .engine()
        .directory()
        .links()
        .all(|(_, s, _)| s.0 != "so0457"));
    // The erased caller is no longer identified, even on their old number.
    let after = call(&service, "so0457", Some("+44 20 7946 0001"));
    assert!(
        !matches!(&after, Decision::Identified { speaker, .. } if speaker.0 == "so0457"),
        "{after:?}"
    );
    drop(service);
    let service = open(&path, &key);
    assert_eq!(
        service.engine().population().ids(),
        &[SpeakerId::from("so2061")]
    );
    assert!(matches!(
        service.store().show(&SpeakerId::from("so0457")),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn refused_enrollment_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(&dir.path().join("s.sqlite"), &StoreKey::generate());
    let actor = Actor::new("agent", 1_700_000_000);
    // Half a second of a recording: far below the minimum net speech.
    let mut short = fixture("so1027", "enroll");
    short.samples.truncate(4000);
    let err = service
        .enroll(&actor, &request("so1027", "+44 20 7946 0001", vec![short]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Engine(EngineError::EnrollmentRefused {
                problem: QualityProblem::TooLittleSpeech { .. } | QualityProblem::LowSnr { .. },
                ..
            })
        ),
        "{err:?}"
    );
    assert!(service.engine().population().is_empty());
    assert!(service.store().list_speakers().unwrap().is_empty());
    assert!(service.store().load_number_links().unwrap().is_empty());
    // A malformed number is refused before anything is computed or stored.
    let err = service
        .enroll(
            &actor,
            &request("so1027", "call me maybe", vec![fixture("so1027", "enroll")]),
        )
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Engine(EngineError::Number(_))),
        "{err:?}"
    );
    assert!(service.store().list_speakers().unwrap().is_empty());
}

#[test]
fn adding_audio_updates_the_model_and_keeps_audio_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    // Halves of the enrollment recording: allow 4 s of speech per enrollment.
    let mut options = ServiceOptions::default();
    options.engine.min_enroll_speech_ms = 4000;
    let service = open_with(
        &dir.path().join("s.sqlite"),
        &StoreKey::generate(),
        options.clone(),
    );
    let actor = Actor::new("agent", 1_700_000_000);
    let enroll = fixture("so2740", "enroll");
    let half = enroll.samples.len() / 2;
    let first = Waveform {
        sample_rate_hz: enroll.sample_rate_hz,
        samples: enroll.samples[..half].to_vec(),
    };
    let second = Waveform {
        sample_rate_hz: enroll.sample_rate_hz,
        samples: enroll.samples[half..].to_vec(),
    };
    let a = service
        .enroll(
            &actor,
            &request("so2740", "+1 555 0100", vec![first.clone()]),
        )
        .unwrap();
    let p_first = service
        .engine()
        .voiceprint(&SpeakerId::from("so2740"))
        .unwrap();
    let mut more = request("so2740", "+1 555 0199", vec![second.clone()]);
    more.keep_audio = true;
    let b = service.enroll(&actor, &more).unwrap();
    assert!(!b.new_speaker);
    assert_eq!(b.model_revision, 2);
    assert_eq!(b.total_speech_ms, a.total_speech_ms + b.added_speech_ms);
    assert_eq!(b.numbers_linked.len(), 1);
    assert_eq!(b.audio_kept, 1);
    let kept = service
        .store()
        .kept_audio(&SpeakerId::from("so2740"))
        .unwrap();
    assert_eq!(kept.len(), 1);
    // The kept audio is the recording itself (16-bit WAV).
    let back = quivox::audio::read_wav_bytes(&kept[0].bytes, &Default::default()).unwrap();
    assert_eq!(back.samples, second.samples);

    // The recordings of one request are one session: the two halves in one request give
    // exactly the voiceprint of the whole recording.
    let whole = open_with(
        &dir.path().join("w.sqlite"),
        &StoreKey::generate(),
        options.clone(),
    );
    whole
        .enroll(
            &actor,
            &request("so2740", "+1 555 0100", vec![first, second.clone()]),
        )
        .unwrap();
    whole
        .enroll(&actor, &request("whole", "+1 555 0101", vec![enroll]))
        .unwrap();
    let print = |s: &Service, id: &str| s.engine().voiceprint(&SpeakerId::from(id)).unwrap();
    assert_eq!(print(&whole, "so2740"), print(&whole, "whole"));
    // Two requests are two sessions: the second adds its statistics (as enrolled on its own) to
    // the first's, and the model is re-adapted on the sum.
    let parts = open_with(&dir.path().join("p.sqlite"), &StoreKey::generate(), options);
    parts
        .enroll(&actor, &request("second", "+1 555 0102", vec![second]))
        .unwrap();
    let (p1, p_second) = (print(&service, "so2740"), print(&parts, "second"));
    assert_eq!(p1.net_speech_ms, a.total_speech_ms + p_second.net_speech_ms);
    common::assert_sum_of(
        "occupancy",
        p1.stats.occupancy(),
        p_first.stats.occupancy(),
        p_second.stats.occupancy(),
    );
    assert_ne!(p1.model, p_first.model);
    let stored = service
        .store()
        .model(&SpeakerId::from("so2740"), VOICEPRINT_KIND)
        .unwrap();
    assert_eq!(stored.info.revision, 2);
}

#[test]
fn verify_accepts_the_speaker_and_rejects_another() {
    let dir = tempfile::tempdir().unwrap();
    let service = Arc::new(open(&dir.path().join("s.sqlite"), &StoreKey::generate()));
    let actor = Actor::new("agent", 1_700_000_000);
    service
        .enroll(
            &actor,
            &request(
                "so2061",
                "+33 1 23 45 67 89",
                vec![fixture("so2061", "enroll")],
            ),
        )
        .unwrap();
    let own = service
        .verify(
            &actor,
            &SpeakerId::from("so2061"),
            &[fixture("so2061", "call")],
        )
        .unwrap();
    assert!(own.accepted && own.llr > 0.0, "{own:?}");
    let other = service
        .verify(
            &actor,
            &SpeakerId::from("so2061"),
            &[fixture("so9614", "call")],
        )
        .unwrap();
    assert!(!other.accepted && other.llr < 0.0, "{other:?}");
    assert!(own.net_speech_ms > 0);
    assert!(matches!(
        service.verify(
            &actor,
            &SpeakerId::from("nobody"),
            &[fixture("so2061", "call")]
        ),
        Err(ServiceError::UnknownSpeaker(_))
    ));
    let verifies = service
        .store()
        .audit_log(Some(&SpeakerId::from("so2061")))
        .unwrap()
        .into_iter()
        .filter(|e| e.action == AuditAction::Verify)
        .count();
    assert_eq!(verifies, 2);
}
