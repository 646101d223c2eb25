//! Caller-identification engine on the shipped GMM-UBM model and the `audio-fixtures/demo` speakers.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use quivox::audio::g711::i16_to_ulaw;
use quivox::audio::{ChannelPolicy, Waveform};
use quivox::engine::{
    CallInfo, CallOutcome, Decision, Engine, EngineError, EngineOptions, QualityProblem, SpeakerId,
    VoiceModels, VoiceShortfall, Voiceprint,
};
use quivox::recipe::read_telephone_wav;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

const ENROLLED: [&str; 4] = ["so0457", "so1027", "so2061", "so2740"];
/// The household line: three of the four enrolled speakers share it.
const HOUSEHOLD: &str = "+44 20 7946 0001";

fn demo(name: &str) -> Waveform {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("audio-fixtures/demo")
        .join(name);
    read_telephone_wav(&path, ChannelPolicy::RequireMono).unwrap()
}

fn models() -> VoiceModels {
    VoiceModels::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gmm-ubm.qvx")).unwrap()
}

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let engine = Engine::new(models(), EngineOptions::default()).unwrap();
            for spk in ENROLLED {
                engine
                    .enroll(spk.into(), &[demo(&format!("{spk}-enroll.wav"))])
                    .unwrap();
            }
            for spk in ["so1027", "so2061", "so2740"] {
                engine.link_number(HOUSEHOLD, spk.into()).unwrap();
            }
            // so1027 calls from the household line most often.
            for _ in 0..5 {
                engine.record_call(HOUSEHOLD, "so1027".into()).unwrap();
            }
            Arc::new(engine)
        })
        .clone()
}

fn call_with(engine: &Engine, number: Option<&str>, samples: &[f32], chunk: usize) -> CallOutcome {
    let mut session = engine
        .start_call(CallInfo {
            caller_number: number.map(str::to_string),
            call_id: "test".into(),
        })
        .unwrap();
    for c in samples.chunks(chunk) {
        session.push_samples(c).unwrap();
    }
    session.finish().unwrap()
}

fn call(number: Option<&str>, file: &str) -> CallOutcome {
    call_with(&engine(), number, &demo(file).samples, 160)
}

fn never_identified(outcome: &CallOutcome) {
    for ev in outcome.timeline.iter().chain([&outcome.final_decision]) {
        assert!(
            !matches!(
                ev.decision,
                Decision::Identified { .. } | Decision::Mismatch { .. }
            ),
            "voice decision on a call without a voice: {ev:?}"
        );
    }
}

#[test]
fn engine_is_send_and_sync_and_sessions_are_send() {
    fn check<T: Send + Sync>() {}
    fn check_send<T: Send>() {}
    check::<Engine>();
    check_send::<quivox::engine::Session>();
}

#[test]
fn decisions_do_not_depend_on_chunk_size_or_codec() {
    let wave = demo("so1027-call.wav");
    let engine = engine();
    let reference = call_with(&engine, Some(HOUSEHOLD), &wave.samples, wave.samples.len());
    assert!(!reference.timeline.is_empty());
    for chunk in [1, 7, 160, 333, 4096] {
        let outcome = call_with(&engine, Some(HOUSEHOLD), &wave.samples, chunk);
        assert_eq!(outcome, reference, "chunk size {chunk}");
    }
    // The fixture is μ-law: pushing its codes (any chunking) must give the same decisions.
    let codes: Vec<u8> = wave
        .samples
        .iter()
        .map(|&x| i16_to_ulaw(x as i16))
        .collect();
    for chunk in [1, 160, 1000] {
        let mut session = engine
            .start_call(CallInfo {
                caller_number: Some(HOUSEHOLD.into()),
                call_id: "ulaw".into(),
            })
            .unwrap();
        let mut polled = Vec::new();
        for c in codes.chunks(chunk) {
            session.push_ulaw(c).unwrap();
            polled.extend(std::iter::from_fn(|| session.poll()));
        }
        let outcome = session.finish().unwrap();
        assert_eq!(outcome, reference, "μ-law chunk size {chunk}");
        assert_eq!(polled[..], reference.timeline[..polled.len()]);
    }
    // PCM i16 path too.
    let pcm: Vec<i16> = wave.samples.iter().map(|&x| x as i16).collect();
    let mut session = engine
        .start_call(CallInfo {
            caller_number: Some(HOUSEHOLD.into()),
            call_id: "pcm".into(),
        })
        .unwrap();
    for c in pcm.chunks(37) {
        session.push_pcm(c).unwrap();
    }
    assert_eq!(session.finish().unwrap(), reference);
}

#[test]
fn household_member_identified_and_other_caller_flagged_as_mismatch() {
    for spk in ["so1027", "so2061", "so2740"] {
        let outcome = call(Some(HOUSEHOLD), &format!("{spk}-call.wav"));
        match &outcome.final_decision.decision {
            Decision::Identified {
                speaker, posterior, ..
            } => {
                assert_eq!(speaker, &SpeakerId::from(spk));
                assert!(*posterior >= EngineOptions::default().confidence);
            }
            other => panic!("{spk} on the household line: {other:?}"),
        }
        // Early decision: before 7 s of net speech.
        assert!(outcome.timeline[0].net_speech_ms <= 7000);
    }
    // so0457 is enrolled but not on the household line.
    let outcome = call(Some(HOUSEHOLD), "so0457-call.wav");
    match &outcome.final_decision.decision {
        Decision::Mismatch {
            number_says,
            voice_says,
            ..
        } => {
            assert_eq!(voice_says.as_ref(), Some(&SpeakerId::from("so0457")));
            assert_eq!(number_says.len(), 3);
            assert_eq!(
                number_says[0],
                SpeakerId::from("so1027"),
                "most frequent caller first"
            );
        }
        other => panic!("wrong-number caller: {other:?}"),
    }
}

#[test]
fn withheld_number_identifies_by_voice_alone() {
    for spk in ["so0457", "so1027"] {
        let outcome = call(None, &format!("{spk}-call.wav"));
        assert!(
            matches!(&outcome.final_decision.decision,
                Decision::Identified { speaker, .. } if speaker == &SpeakerId::from(spk)),
            "{spk} withheld: {:?}",
            outcome.final_decision
        );
    }
    // Weaker voices (without the number's help the prior of "unknown" is 0.5): the voice may stay
    // inconclusive, but the top speaker is right and nobody else is ever identified.
    for spk in ["so2061", "so2740"] {
        let outcome = call(None, &format!("{spk}-call.wav"));
        let top = &outcome.final_decision.top_speaker;
        assert_eq!(top.as_ref().map(|t| &t.0), Some(&SpeakerId::from(spk)));
        for ev in &outcome.timeline {
            if let Some(who) = ev.decision.voice_speaker() {
                assert_eq!(who, &SpeakerId::from(spk), "{ev:?}");
            }
        }
    }
}

#[test]
fn unknown_caller_is_unknown() {
    let outcome = call(None, "so9614-call.wav");
    assert!(
        matches!(outcome.final_decision.decision, Decision::Unknown { .. }),
        "{:?}",
        outcome.final_decision
    );
    // On a line with unrelated numbers the unknown voice must not be identified either.
    let outcome = call(Some("+1 555 0199"), "so9614-call.wav");
    never_identified(&outcome);
}

#[test]
fn silence_and_noise_calls_fall_back_to_the_number_never_a_voice_guess() {
    let engine = engine();
    let silence = vec![0.0f32; 8000 * 10];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let normal = Normal::new(0.0f32, 1000.0).unwrap();
    let noise: Vec<f32> = (0..8000 * 10).map(|_| normal.sample(&mut rng)).collect();
    // Low-level hum plus noise: stationary too.
    let hum: Vec<f32> = (0..8000 * 10)
        .map(|i| {
            3000.0 * (2.0 * std::f32::consts::PI * 50.0 * i as f32 / 8000.0).sin()
                + normal.sample(&mut rng) * 0.2
        })
        .collect();
    for (name, audio) in [("silence", &silence), ("noise", &noise), ("hum", &hum)] {
        let outcome = call_with(&engine, Some(HOUSEHOLD), audio, 160);
        never_identified(&outcome);
        match &outcome.final_decision.decision {
            Decision::NumberOnly { candidates, reason } => {
                assert_eq!(candidates.len(), 3, "{name}");
                assert_eq!(candidates[0].0, SpeakerId::from("so1027"));
                assert_ne!(*reason, VoiceShortfall::Inconclusive, "{name}: {reason:?}");
            }
            other => panic!("{name} on the household line: {other:?}"),
        }
        let outcome = call_with(&engine, None, audio, 160);
        never_identified(&outcome);
        assert!(
            matches!(
                outcome.final_decision.decision,
                Decision::NeedMoreAudio { .. }
            ),
            "{name} withheld: {:?}",
            outcome.final_decision
        );
    }
    // A short burst of real speech is too little.
    let short = &demo("so1027-call.wav").samples[..8000];
    let outcome = call_with(&engine, Some(HOUSEHOLD), short, 160);
    assert!(
        matches!(
            outcome.final_decision.decision,
            Decision::NumberOnly {
                reason: VoiceShortfall::TooLittleSpeech | VoiceShortfall::NoSpeech,
                ..
            }
        ),
        "{:?}",
        outcome.final_decision
    );
}

#[test]
fn invalid_number_is_a_typed_error() {
    let err = engine()
        .start_call(CallInfo {
            caller_number: Some("call me maybe".into()),
            call_id: String::new(),
        })
        .unwrap_err();
    assert!(matches!(err, EngineError::Number(_)), "{err}");
}

#[test]
fn voiceprint_bytes_round_trip_and_refuse_corruption() {
    let engine = engine();
    let print = engine.voiceprint(&"so0457".into()).unwrap();
    let bytes = print.to_bytes();
    assert_eq!(Voiceprint::from_bytes(&bytes).unwrap(), print);
    let mut wrong_version = bytes.clone();
    wrong_version[4] = 99;
    assert!(matches!(
        Voiceprint::from_bytes(&wrong_version),
        Err(EngineError::Voiceprint(_))
    ));
    assert!(matches!(
        Voiceprint::from_bytes(&bytes[..3]),
        Err(EngineError::Voiceprint(_))
    ));
    assert!(matches!(
        Voiceprint::from_bytes(&bytes[..bytes.len() / 2]),
        Err(EngineError::Voiceprint(_))
    ));
    // A fresh engine with the stored voiceprints decides exactly like the original.
    let copy = Engine::new(models(), EngineOptions::default()).unwrap();
    copy.insert_voiceprints(ENROLLED.iter().map(|&s| {
        let p = engine.voiceprint(&s.into()).unwrap();
        (s.into(), Voiceprint::from_bytes(&p.to_bytes()).unwrap())
    }))
    .unwrap();
    let wave = demo("so2061-call.wav");
    assert_eq!(
        call_with(&copy, None, &wave.samples, 160),
        call_with(&engine, None, &wave.samples, 160)
    );
}

#[test]
fn enrollment_quality_refusals_and_updates() {
    let engine = Engine::new(models(), EngineOptions::default()).unwrap();
    let enroll = demo("so1027-enroll.wav");
    let refusal = |r: Result<(), EngineError>| match r {
        Err(EngineError::EnrollmentRefused { problem, .. }) => problem,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // 4 s of speech is too little.
    let short = Waveform {
        sample_rate_hz: 8000,
        samples: enroll.samples[..8000 * 4].to_vec(),
    };
    assert!(matches!(
        refusal(engine.enroll("a".into(), std::slice::from_ref(&short))),
        QualityProblem::TooLittleSpeech { min_ms: 10_000, .. }
    ));
    // Amplified ×8 and clipped to 16 bits.
    let clipped = Waveform {
        sample_rate_hz: 8000,
        samples: enroll
            .samples
            .iter()
            .map(|x| (x * 8.0).clamp(-32768.0, 32767.0))
            .collect(),
    };
    assert!(matches!(
        refusal(engine.enroll("b".into(), &[clipped])),
        QualityProblem::Clipping { .. }
    ));
    // Stationary noise.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let normal = Normal::new(0.0f32, 2000.0).unwrap();
    let noise = Waveform {
        sample_rate_hz: 8000,
        samples: (0..8000 * 30).map(|_| normal.sample(&mut rng)).collect(),
    };
    assert!(matches!(
        refusal(engine.enroll("c".into(), &[noise])),
        QualityProblem::LowSnr { .. }
    ));
    assert!(matches!(
        refusal(engine.enroll("d".into(), &[])),
        QualityProblem::NoAudio
    ));
    // Wrong sample rate.
    let wide = Waveform {
        sample_rate_hz: 16000,
        samples: enroll.samples.clone(),
    };
    assert!(matches!(
        engine.enroll("e".into(), &[wide]),
        Err(EngineError::SampleRate {
            expected: 8000,
            got: 16000
        })
    ));
    assert!(engine.population().is_empty());

    // Enrolling in two parts (enroll + add_audio) equals enrolling everything at once.
    let n = enroll.samples.len();
    let first = Waveform {
        sample_rate_hz: 8000,
        samples: enroll.samples[..n * 2 / 3].to_vec(),
    };
    let second = Waveform {
        sample_rate_hz: 8000,
        samples: enroll.samples[n * 2 / 3..].to_vec(),
    };
    engine
        .enroll("x".into(), std::slice::from_ref(&first))
        .unwrap();
    let before = engine.voiceprint(&"x".into()).unwrap();
    assert!(matches!(
        engine.enroll("x".into(), std::slice::from_ref(&first)),
        Err(EngineError::AlreadyEnrolled(_))
    ));
    engine
        .add_audio(&"x".into(), std::slice::from_ref(&second))
        .unwrap();
    engine.enroll("y".into(), &[first, second]).unwrap();
    let (x, y) = (
        engine.voiceprint(&"x".into()).unwrap(),
        engine.voiceprint(&"y".into()).unwrap(),
    );
    assert_eq!(x.net_speech_ms, y.net_speech_ms);
    assert!(x.net_speech_ms > before.net_speech_ms);
    for (a, b) in x.model.means().iter().zip(y.model.means()) {
        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
    assert_ne!(before.model, x.model);
    assert!(matches!(
        engine.add_audio(&"nobody".into(), &[short]),
        Err(EngineError::UnknownSpeaker(_))
    ));
    // Removal.
    engine.link_number("+1 555 0100", "x".into()).unwrap();
    assert!(engine.remove(&"x".into()).unwrap());
    assert!(!engine.remove(&"x".into()).unwrap());
    assert_eq!(engine.population().ids(), &[SpeakerId::from("y")]);
    assert_eq!(engine.directory().links().count(), 0);
}

#[test]
fn options_are_validated() {
    let mut o = EngineOptions::default();
    o.confidence = 1.0;
    assert!(Engine::new(models(), o).is_err());
    let mut o = EngineOptions::default();
    o.max_net_speech_ms = 1000;
    assert!(matches!(
        Engine::new(models(), o),
        Err(EngineError::InvalidOption {
            name: "max_net_speech_ms",
            ..
        })
    ));
}

#[test]
fn session_features_equal_the_batch_front_end_with_the_running_vad() {
    // Oracle: the batch front end (MFCC → Δ → running-mean VAD → CMN over the voiced frames of
    // the whole call) scored against the same population gives the session's final LLR.
    use quivox::features::{FrontEnd, VadMode};
    let engine = engine();
    let wave = demo("so1027-call.wav");
    let outcome = call_with(&engine, None, &wave.samples, 160);
    let Decision::Identified { speaker, llr, .. } = &outcome.final_decision.decision else {
        panic!("{:?}", outcome.final_decision);
    };
    assert_eq!(outcome.final_decision.net_speech_ms, outcome.net_speech_ms);
    let mut fe_opts = engine.models().front_end.clone();
    fe_opts.vad_mode = VadMode::Running;
    let batch = FrontEnd::new(fe_opts)
        .unwrap()
        .compute(&wave.samples)
        .unwrap();
    assert_eq!(
        batch.features.num_frames() as u64 * 10,
        outcome.net_speech_ms
    );
    let population = engine.population();
    let i = population.ids().iter().position(|s| s == speaker).unwrap();
    let oracle = engine
        .models()
        .llrs(&batch.features, population.bank())
        .unwrap()[i];
    assert!(
        (oracle - llr).abs() < 1e-6 * (1.0 + oracle.abs()),
        "{oracle} vs {llr}"
    );
}
