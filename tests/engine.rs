//! Caller-identification engine on the shipped GMM-UBM model and the `audio-fixtures/demo` speakers.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use quivox::audio::g711::i16_to_ulaw;
use quivox::audio::{ChannelPolicy, Waveform};
use quivox::engine::{
    CallInfo, CallOutcome, Decision, Engine, EngineError, EngineOptions, QualityProblem, SpeakerId,
    VoiceModels, VoiceSays, VoiceShortfall, Voiceprint,
};
use quivox::recipe::read_telephone_wav;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

const ENROLLED: [&str; 4] = ["so0457", "so1027", "so2061", "so2740"];
/// The household line: three of the four enrolled speakers share it.
const HOUSEHOLD: &str = "+44 20 7946 0001";

mod common;

fn demo(name: &str) -> Waveform {
    let path = common::root().join("audio-fixtures/demo").join(name);
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
            assert_eq!(voice_says, &VoiceSays::Speaker(SpeakerId::from("so0457")));
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

    // Recordings given together are one session, concatenated: the two parts of the file give
    // exactly the whole file's voiceprint. Audio added later (`add_audio`, another call) is
    // another session: its statistics (of the part analysed on its own) are added to the
    // voiceprint's and the model is re-adapted from the sum.
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
    engine.enroll("y".into(), &[first, second.clone()]).unwrap();
    engine
        .enroll("whole".into(), std::slice::from_ref(&enroll))
        .unwrap();
    let (x, y) = (
        engine.voiceprint(&"x".into()).unwrap(),
        engine.voiceprint(&"y".into()).unwrap(),
    );
    assert_eq!(y, engine.voiceprint(&"whole".into()).unwrap());
    assert!(engine.remove(&"whole".into()).unwrap());
    let models = models();
    let alone =
        quivox::engine::analyze(&models, &second, engine.adaptive_noise_suppression()).unwrap();
    let mut added = quivox::gmm::AccumDiagGmm::for_model(&models.gmm.ubm);
    models
        .gmm
        .ubm
        .accumulate_stats(&alone.features, &mut added)
        .unwrap();
    assert_eq!(x.net_speech_ms, before.net_speech_ms + alone.net_speech_ms);
    common::assert_sum_of(
        "occupancy",
        x.stats.occupancy(),
        before.stats.occupancy(),
        added.occupancy(),
    );
    let rederived =
        quivox::gmm::map_update(&models.gmm.ubm, &x.stats, &models.gmm.options.map).unwrap();
    for (a, b) in x.model.means().iter().zip(rederived.means()) {
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
        .llrs(&batch.features, population.bank(), population.norms())
        .unwrap()[i];
    assert!(
        (oracle - llr).abs() < 1e-6 * (1.0 + oracle.abs()),
        "{oracle} vs {llr}"
    );
}

/// Brute-force GMM-UBM scoring, independent of the speaker bank: every UBM component of every
/// frame in f64, the top-C by value, then each speaker's frame log-likelihood ratio on them.
/// Returns (exact average frame LLR, linear (first-order) average frame LLR) per speaker.
fn brute_force_scores(
    ubm: &quivox::gmm::DiagGmm,
    speakers: &[quivox::gmm::DiagGmm],
    feats: &quivox::features::FeatureMatrix,
    top_c: usize,
) -> Vec<(f64, f64)> {
    let lse = |v: &[f64]| {
        let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
    };
    let mut out = vec![(0.0, 0.0); speakers.len()];
    let mut all = vec![0.0; ubm.num_components()];
    for x in feats.rows() {
        ubm.component_log_likelihoods(x, &mut all).unwrap();
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by(|&a, &b| all[b].total_cmp(&all[a]));
        let top = &order[..top_c];
        let ubm_ll: Vec<f64> = top.iter().map(|&c| all[c]).collect();
        let frame_ll = lse(&ubm_ll);
        for (s, spk) in speakers.iter().enumerate() {
            let spk_ll: Vec<f64> = top
                .iter()
                .map(|&c| spk.component_log_likelihood(c, x).unwrap())
                .collect();
            out[s].0 += lse(&spk_ll) - frame_ll;
            out[s].1 += ubm_ll
                .iter()
                .zip(&spk_ll)
                .map(|(u, v)| (u - frame_ll).exp() * (v - u))
                .sum::<f64>();
        }
    }
    let n = feats.num_frames() as f64;
    out.iter().map(|&(e, l)| (e / n, l / n)).collect()
}

/// The four enrolled demo speakers plus `extra` synthetic ones: UBM means shifted by N(0, 0.15²)
/// (seeded), same weights and variances (a mean-only MAP-like model).
fn population_with_synthetic(extra: usize) -> Vec<(SpeakerId, Voiceprint)> {
    let base = engine();
    let ubm = base.models().gmm.ubm.clone();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let normal = Normal::new(0.0f32, 0.15).unwrap();
    let mut prints: Vec<(SpeakerId, Voiceprint)> = ENROLLED
        .iter()
        .map(|&s| (SpeakerId::from(s), base.voiceprint(&s.into()).unwrap()))
        .collect();
    for i in 0..extra {
        let means: Vec<f32> = ubm
            .means()
            .iter()
            .map(|m| m + normal.sample(&mut rng))
            .collect();
        let model =
            quivox::gmm::DiagGmm::new(ubm.dim(), ubm.weights().to_vec(), means, ubm.variances())
                .unwrap();
        let gmm_norm = base.models().gmm.model_norm(&model).unwrap();
        let print = Voiceprint {
            stats: quivox::gmm::AccumDiagGmm::for_model(&ubm),
            model,
            net_speech_ms: 30_000,
            backend: None,
            gmm_norm,
        };
        prints.push((SpeakerId(format!("synthetic{i:03}")), print));
    }
    prints
}

#[test]
fn shortlist_scores_equal_brute_force_frame_scoring() {
    use quivox::features::{FrontEnd, VadMode};
    use quivox::gmm::SpeakerBank;
    let base = engine();
    let models = base.models();
    let prints = population_with_synthetic(36);
    let speakers: Vec<quivox::gmm::DiagGmm> = prints.iter().map(|p| p.1.model.clone()).collect();
    let refs: Vec<&quivox::gmm::DiagGmm> = speakers.iter().collect();
    let ubm = &models.gmm.ubm;
    let bank = SpeakerBank::new(ubm, &refs).unwrap();
    let mut fe = models.front_end.clone();
    fe.vad_mode = VadMode::Running;
    let feats = FrontEnd::new(fe)
        .unwrap()
        .compute(&demo("so2061-call.wav").samples)
        .unwrap()
        .features;
    let top_c = models.gmm.options.top_c;
    let oracle = brute_force_scores(ubm, &speakers, &feats, top_c);
    let sel = ubm.gaussian_selection(&feats, top_c).unwrap();

    // Linear scores: the first-order formula, and a lower bound of the exact score (Jensen).
    let lin = bank.linear_scores(&feats, &sel, 0.0).unwrap();
    for (s, (&l, &(exact, linear))) in lin.iter().zip(&oracle).enumerate() {
        assert!(
            (l - linear).abs() < 1e-4,
            "speaker {s}: linear {l} vs {linear}"
        );
        assert!(
            l <= exact + 1e-4,
            "speaker {s}: linear {l} above exact {exact}"
        );
    }
    // Exact subset scores equal the brute force (f32 bank arithmetic).
    let subset = [39usize, 2, 7, 2];
    let scores = bank.score_subset(&feats, &sel, &subset).unwrap();
    for (&s, &e) in subset.iter().zip(&scores) {
        assert!(
            (e - oracle[s].0).abs() < 2e-4,
            "speaker {s}: {e} vs {}",
            oracle[s].0
        );
    }
    assert!(bank.score_subset(&feats, &sel, &[40]).is_err());

    // Shortlist of 8 plus one speaker forced in (as if on the calling line).
    let mut forced = vec![false; speakers.len()];
    forced[39] = true;
    let norms: Vec<_> = prints.iter().filter_map(|p| p.1.gmm_norm).collect();
    let (llrs, exact) = models
        .shortlisted_llrs(&feats, &sel, &bank, &norms, 8, 0.05, &forced)
        .unwrap();
    assert_eq!(exact.iter().filter(|&&e| e).count(), 9);
    assert!(exact[39]);
    let n = feats.num_frames();
    // The shipped GMM-UBM normalises by adaptive S-norm: the test side from the brute-force
    // scores against every cohort model, top K by hand; the speakers' side from their prints.
    let cohort = models
        .gmm
        .cohort
        .as_ref()
        .expect("the shipped GMM-UBM has a cohort");
    assert_eq!(norms.len(), speakers.len());
    let cohort_models: Vec<_> = (0..cohort.num_models())
        .map(|i| cohort.model(ubm, i).unwrap())
        .collect();
    let mut t: Vec<f64> = brute_force_scores(ubm, &cohort_models, &feats, top_c)
        .iter()
        .map(|s| s.0)
        .collect();
    t.sort_by(|a, b| b.total_cmp(a));
    let top = &t[..cohort.top_k()];
    let t_mean = top.iter().sum::<f64>() / top.len() as f64;
    let t_std = (top.iter().map(|s| (s - t_mean).powi(2)).sum::<f64>() / top.len() as f64).sqrt();
    let calibrated: Vec<f64> = oracle
        .iter()
        .zip(&norms)
        .map(|(o, z)| {
            let s = 0.5 * ((o.0 - z.mean) / z.std + (o.0 - t_mean) / t_std);
            models.gmm.calibrate(s, n)
        })
        .collect();
    for s in (0..speakers.len()).filter(|&s| exact[s]) {
        assert!(
            (llrs[s] - calibrated[s]).abs() < 1e-3 * (1.0 + calibrated[s].abs()),
            "speaker {s}: {} vs {}",
            llrs[s],
            calibrated[s]
        );
    }
    // The caller (so2061, index 2) is shortlisted and has the best LLR by either path.
    let best = |v: &[f64]| (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
    assert!(exact[2]);
    assert_eq!(best(&llrs), 2);
    assert_eq!(best(&calibrated), 2);
    // Everybody left out scores below every shortlisted speaker by the exact score too.
    let worst_in = (0..speakers.len())
        .filter(|&s| exact[s] && !forced[s])
        .map(|s| oracle[s].0)
        .fold(f64::INFINITY, f64::min);
    for s in (0..speakers.len()).filter(|&s| !exact[s]) {
        assert!(oracle[s].0 < worst_in + 0.05, "speaker {s} left out");
    }
    // Shortlist 0 = everybody exact, equal to the batch path.
    let (all, flags) = models
        .shortlisted_llrs(&feats, &sel, &bank, &norms, 0, 0.05, &forced)
        .unwrap();
    assert!(flags.iter().all(|&f| f));
    assert_eq!(all, models.llrs(&feats, &bank, &norms).unwrap());
}

#[test]
fn shortlisted_sessions_decide_like_exact_scoring() {
    use quivox::engine::ScoringOptions;
    let prints = population_with_synthetic(36);
    let build = |scoring: ScoringOptions| {
        let mut options = EngineOptions::default();
        options.scoring = scoring;
        let engine = Engine::new(models(), options).unwrap();
        engine.insert_voiceprints(prints.iter().cloned()).unwrap();
        engine.set_directory(self::engine().directory());
        engine
    };
    let mut short = ScoringOptions::default();
    short.shortlist = 4;
    let (fast, exact) = (build(short), build(ScoringOptions::exact()));
    for file in [
        "so1027-call.wav",
        "so2061-call.wav",
        "so0457-call.wav",
        "so9614-call.wav",
    ] {
        let samples = demo(file).samples;
        for number in [None, Some(HOUSEHOLD)] {
            let a = call_with(&fast, number, &samples, 160);
            let b = call_with(&exact, number, &samples, 160);
            // A voice verdict of the shortlisted path is the exact path's, never earlier (the
            // approximated rest of the population can only lower the best posterior).
            if a.final_decision.decision.is_voice_decision() {
                assert!(
                    a.final_decision
                        .decision
                        .same_verdict(&b.final_decision.decision),
                    "{file} {number:?}: {:?} vs {:?}",
                    a.final_decision,
                    b.final_decision
                );
            }
            let first_voice = |o: &CallOutcome| {
                o.timeline
                    .iter()
                    .find(|e| e.decision.is_voice_decision())
                    .map(|e| e.net_speech_ms)
            };
            if let (Some(ta), Some(tb)) = (first_voice(&a), first_voice(&b)) {
                assert!(ta >= tb, "{file} {number:?}: {ta} ms before {tb} ms");
            }
            if let (
                Decision::Identified {
                    llr: l1,
                    posterior: p1,
                    ..
                },
                Decision::Identified {
                    llr: l2,
                    posterior: p2,
                    ..
                },
            ) = (&a.final_decision.decision, &b.final_decision.decision)
            {
                // Same exact score; the shortlist's GEMM may round differently (f32).
                assert!((l1 - l2).abs() < 1e-6 * (1.0 + l2.abs()), "{l1} vs {l2}");
                // The approximated rest of the population can only lower the posterior.
                assert!(*p1 <= p2 + 1e-9 && *p1 > p2 - 1e-2, "{p1} vs {p2}");
            }
        }
    }
}

#[test]
fn enrollment_from_a_live_call() {
    use quivox::features::{FrontEnd, VadMode};
    let engine = Engine::new(models(), EngineOptions::default()).unwrap();
    for spk in ["so0457", "so2061"] {
        engine
            .enroll(spk.into(), &[demo(&format!("{spk}-enroll.wav"))])
            .unwrap();
    }
    let wave = demo("so1027-enroll.wav");
    let mut session = engine.start_enrollment_call(CallInfo::default()).unwrap();
    assert!(session.is_captured_for_enrollment());
    for c in wave.samples.chunks(160) {
        session.push_samples(c).unwrap();
    }
    let outcome = session.finish().unwrap();
    let captured = outcome.enrollment.as_ref().expect("captured");
    // Oracle: the batch front end with the session's running-mean VAD, then the UBM statistics.
    let mut fe = engine.models().front_end.clone();
    fe.vad_mode = VadMode::Running;
    let feats = FrontEnd::new(fe)
        .unwrap()
        .compute(&wave.samples)
        .unwrap()
        .features;
    let ubm = &engine.models().gmm.ubm;
    let mut oracle = quivox::gmm::AccumDiagGmm::for_model(ubm);
    ubm.accumulate_stats(&feats, &mut oracle).unwrap();
    assert_eq!(captured.net_speech_ms, feats.num_frames() as u64 * 10);
    assert_eq!(captured.net_speech_ms, outcome.net_speech_ms);
    assert_eq!(captured.stats.num_frames(), feats.num_frames() as f64);
    for (a, b) in captured
        .stats
        .mean_acc()
        .iter()
        .zip(oracle.mean_acc())
        .chain(captured.stats.occupancy().iter().zip(oracle.occupancy()))
    {
        assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{a} vs {b}");
    }
    engine.enroll_from_call("so1027".into(), &outcome).unwrap();
    assert!(matches!(
        engine.enroll_from_call("so1027".into(), &outcome),
        Err(EngineError::AlreadyEnrolled(_))
    ));
    // The live-enrolled voice is recognised on another call.
    let call = call_with(&engine, None, &demo("so1027-call.wav").samples, 160);
    match &call.final_decision.decision {
        Decision::Identified { speaker, .. } => assert_eq!(speaker.0, "so1027"),
        other => panic!("{other:?}"),
    }
    assert!(call.enrollment.is_none());
    assert!(matches!(
        engine.enroll_from_call("x".into(), &call),
        Err(EngineError::CallNotCaptured)
    ));
    // A 7-s call is too little speech to enroll from, but can be added to an enrolled speaker.
    let mut short = engine.start_enrollment_call(CallInfo::default()).unwrap();
    short
        .push_samples(&demo("so1027-call.wav").samples)
        .unwrap();
    let short = short.finish().unwrap();
    let short_speech = short.enrollment.as_ref().unwrap().net_speech_ms;
    assert!(matches!(
        engine.enroll_from_call("y".into(), &short),
        Err(EngineError::EnrollmentRefused {
            problem: QualityProblem::TooLittleSpeech { min_ms: 10_000, .. },
            ..
        })
    ));
    let before = engine.voiceprint(&"so1027".into()).unwrap();
    engine.add_call_audio(&"so1027".into(), &short).unwrap();
    let after = engine.voiceprint(&"so1027".into()).unwrap();
    assert_eq!(after.net_speech_ms, before.net_speech_ms + short_speech);
    let expected = before.stats.total_count() + short.enrollment.unwrap().stats.total_count();
    assert!((after.stats.total_count() - expected).abs() < 1e-6);
    assert_ne!(after.model, before.model);
    // Capture must start before the audio; a line-noise call is refused for its SNR.
    let mut late = engine.start_call(CallInfo::default()).unwrap();
    late.push_samples(&[0.0; 160]).unwrap();
    assert!(matches!(
        late.capture_for_enrollment(),
        Err(EngineError::CaptureTooLate { samples: 160 })
    ));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let normal = Normal::new(0.0f32, 2000.0).unwrap();
    let noise: Vec<f32> = (0..8000 * 20).map(|_| normal.sample(&mut rng)).collect();
    let mut noisy = engine.start_enrollment_call(CallInfo::default()).unwrap();
    noisy.push_samples(&noise).unwrap();
    let noisy = noisy.finish().unwrap();
    assert!(matches!(
        engine.enroll_from_call("z".into(), &noisy),
        Err(EngineError::EnrollmentRefused {
            problem: QualityProblem::LowSnr { .. } | QualityProblem::TooLittleSpeech { .. },
            ..
        })
    ));
}

/// `so1027-call.wav` in white noise at `snr_db` (seeded), and the options of the plain and the
/// noise-suppressed batch front ends with the sessions' running-mean VAD.
fn noisy_call(
    engine: &Engine,
    snr_db: f64,
) -> (
    Vec<f32>,
    quivox::features::FrontEndOptions,
    quivox::features::FrontEndOptions,
) {
    use quivox::augment::{channel_rng, coloured_noise, mix_at_snr, NoiseColour};
    let clean = demo("so1027-call.wav").samples;
    let noise = coloured_noise(NoiseColour::White, clean.len(), &mut channel_rng(11, 0)).unwrap();
    let noisy = mix_at_snr(&clean, &noise, snr_db).unwrap();
    let mut plain = engine.models().front_end.clone();
    plain.vad_mode = quivox::features::VadMode::Running;
    let suppressed = engine
        .adaptive_noise_suppression()
        .unwrap()
        .suppressed_front_end(&plain);
    (noisy, plain, suppressed)
}

/// The session's final posterior of its most probable enrolled speaker (whatever the decision),
/// and the oracle: Bayes' rule on the LLRs of the batch features of `opts` with the prior of a
/// withheld number.
fn final_posterior_and_oracle(
    engine: &Engine,
    samples: &[f32],
    opts: &quivox::features::FrontEndOptions,
) -> (f64, f64) {
    use quivox::engine::{caller_posterior, NumberDirectory, PriorOptions};
    let outcome = call_with(engine, None, samples, 160);
    let (speaker, posterior) = outcome.final_decision.top_speaker.clone().unwrap();
    let batch = quivox::features::FrontEnd::new(opts.clone())
        .unwrap()
        .compute(samples)
        .unwrap();
    let population = engine.population();
    let i = population.ids().iter().position(|s| *s == speaker).unwrap();
    let llrs = engine
        .models()
        .llrs(&batch.features, population.bank(), population.norms())
        .unwrap();
    let prior = NumberDirectory::new().prior(None, population.ids(), &PriorOptions::default());
    (posterior, caller_posterior(&prior, &llrs).probability(i))
}

#[test]
fn noisy_calls_are_scored_through_the_noise_suppressor_and_clean_ones_are_not() {
    // Oracle: the batch front end with and without the suppressor (running-mean VAD, as the
    // session's), scored against the same population.
    use quivox::features::EnergyRange;
    let engine = engine();
    let gate = engine.adaptive_noise_suppression().unwrap().clone();
    let (noisy, plain, suppressed) = noisy_call(&engine, 10.0);
    let clean = demo("so1027-call.wav").samples;
    let spread = |x: &[f32]| EnergyRange::of_samples(&plain.mfcc, x).unwrap();
    assert!(
        gate.applies_to(&spread(&noisy)),
        "{}",
        spread(&noisy).spread_db()
    );
    assert!(
        !gate.applies_to(&spread(&clean)),
        "{}",
        spread(&clean).spread_db()
    );

    let close = |a: f64, b: f64| (a.ln() - b.ln()).abs() < 1e-6;
    let (p, oracle) = final_posterior_and_oracle(&engine, &noisy, &suppressed);
    assert!(close(p, oracle), "{oracle} vs {p}");
    let (_, without) = final_posterior_and_oracle(&engine, &noisy, &plain);
    assert!(!close(p, without), "suppression changed nothing: {p}");
    let (p, oracle) = final_posterior_and_oracle(&engine, &clean, &plain);
    assert!(close(p, oracle), "{oracle} vs {p}");

    // Chunking does not matter with two front ends either.
    let a = call_with(&engine, None, &noisy, 160);
    let b = call_with(&engine, None, &noisy, 1237);
    assert_eq!(a.final_decision, b.final_decision);
    assert_eq!(a.timeline, b.timeline);
}

/// Net speech, and with it the decision pace, is counted by the VAD of the front end the call is
/// scored with: in babble the plain energy VAD takes more frames for speech than the suppressed
/// front end's VAD does. Oracle: the batch front ends (running-mean VAD, as the session's) on the
/// same samples.
#[test]
fn a_noisy_calls_net_speech_is_what_the_suppressed_front_end_finds() {
    use quivox::augment::{babble, channel_rng, mix_at_snr};
    use quivox::features::{EnergyRange, FrontEnd, FrontEndOptions};
    let engine = engine();
    let (_, plain, suppressed) = noisy_call(&engine, 10.0);
    // so1027's call in the babble of three of four other demo recordings, 10 dB below it
    let clean = demo("so1027-call.wav").samples;
    let pool: Vec<Vec<f32>> = [
        "so2061-enroll.wav",
        "so2740-enroll.wav",
        "so0457-enroll.wav",
        "so9614-call.wav",
    ]
    .iter()
    .map(|f| demo(f).samples)
    .collect();
    let noise = babble(&pool, 3, clean.len(), &mut channel_rng(11, 0)).unwrap();
    let noisy = mix_at_snr(&clean, &noise, 10.0).unwrap();
    let gate = engine.adaptive_noise_suppression().unwrap();
    assert!(gate.applies_to(&EnergyRange::of_samples(&plain.mfcc, &noisy).unwrap()));
    let voiced = |opts: &FrontEndOptions, x: &[f32]| {
        let out = FrontEnd::new(opts.clone()).unwrap().compute(x).unwrap();
        out.voiced.iter().filter(|&&v| v).count() as u64
    };
    let frame_ms = engine.models().front_end.mfcc.frame_shift_ms as u64;
    let (by_plain, by_suppressed) = (voiced(&plain, &noisy), voiced(&suppressed, &noisy));
    assert!(
        by_suppressed < by_plain,
        "{by_suppressed} suppressed vs {by_plain} plain voiced frames"
    );
    for chunk in [160, 1237] {
        let outcome = call_with(&engine, None, &noisy, chunk);
        assert_eq!(
            outcome.net_speech_ms,
            by_suppressed * frame_ms,
            "chunk {chunk}"
        );
        for e in &outcome.timeline {
            assert!(e.net_speech_ms <= outcome.net_speech_ms, "{e:?}");
        }
    }
    // a clean call is counted by the plain front end, as before
    let clean_outcome = call_with(&engine, None, &clean, 160);
    assert_eq!(
        clean_outcome.net_speech_ms,
        voiced(&plain, &clean) * frame_ms
    );
}

#[test]
fn batch_analysis_suppresses_noisy_recordings_only() {
    use quivox::engine::analyze;
    use quivox::features::{FrontEnd, VadMode};
    let engine = engine();
    let models = engine.models();
    let gate = engine.adaptive_noise_suppression();
    let (noisy, mut plain, mut suppressed) = noisy_call(&engine, 10.0);
    plain.vad_mode = VadMode::default();
    suppressed.vad_mode = VadMode::default();
    let wave = |samples: &[f32]| Waveform {
        sample_rate_hz: 8000,
        samples: samples.to_vec(),
    };
    let features = |opts: &quivox::features::FrontEndOptions, x: &[f32]| {
        FrontEnd::new(opts.clone())
            .unwrap()
            .compute(x)
            .unwrap()
            .features
    };
    let a = analyze(models, &wave(&noisy), gate).unwrap();
    assert_eq!(a.features, features(&suppressed, &noisy));
    assert_ne!(a.features, features(&plain, &noisy));
    // the reported SNR and energies are those of the signal received
    let b = analyze(models, &wave(&noisy), None).unwrap();
    assert_eq!(b.features, features(&plain, &noisy));
    assert_eq!(
        (a.snr_db, &a.frame_log_energy),
        (b.snr_db, &b.frame_log_energy)
    );
    let clean = demo("so1027-call.wav");
    assert_eq!(
        analyze(models, &clean, gate).unwrap().features,
        features(&plain, &clean.samples)
    );
}
