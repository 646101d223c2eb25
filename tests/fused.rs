//! The fused engine (GMM-UBM + i-vector PLDA + GE2E embedding PLDA, `models/` folder): loading
//! checks, voiceprints that carry the back ends' statistics, identification through the service
//! with a restart, exact voiceprint updates, old voiceprints, and the streaming fused scores
//! against the batch systems computed independently.

use std::path::Path;

use quivox::audio::Waveform;
use quivox::calibration::TestQuality;
use quivox::engine::embedding_system::{
    embedder_fingerprint, file_sha256, EmbeddingEnrollment, EmbeddingSum,
};
use quivox::engine::fused::{EMBEDDING_FILE, ENCODER_FILE, FUSION_FILE, GMM_FILE, IVECTOR_FILE};
use quivox::engine::ivector_system::IvectorEnrollment;
use quivox::engine::{
    analyze, caller_posterior, CallInfo, Decision, DecisionEvent, Engine, EngineError,
    EngineOptions, NumberDirectory, PriorOptions, SpeakerId, VoiceModels, Voiceprint,
};
use quivox::service::{Service, ServiceOptions};
use quivox::store::{Actor, SqliteStore, StoreKey};

mod common;
use common::{enroll_request, fixture, root};

fn models() -> VoiceModels {
    VoiceModels::load(&root().join("models")).unwrap()
}

fn split(wave: &Waveform) -> [Waveform; 2] {
    let half = wave.samples.len() / 2;
    [
        Waveform {
            sample_rate_hz: wave.sample_rate_hz,
            samples: wave.samples[..half].to_vec(),
        },
        Waveform {
            sample_rate_hz: wave.sample_rate_hz,
            samples: wave.samples[half..].to_vec(),
        },
    ]
}

#[test]
fn the_models_folder_loads_fused_and_a_swapped_component_is_refused() {
    let fused = models();
    assert!(fused.is_fused());
    assert!(fused.version.starts_with("fused-"), "{}", fused.version);
    let gmm = VoiceModels::load(&root().join("models").join(GMM_FILE)).unwrap();
    assert!(!gmm.is_fused());
    assert!(gmm.version.starts_with("gmm-ubm-"));

    // A copy of the folder whose embedding back end was re-saved with another calibration: the
    // fusion was trained on the shipped file's LLRs and must refuse it.
    let dir = tempfile::tempdir().unwrap();
    for f in [
        GMM_FILE,
        IVECTOR_FILE,
        EMBEDDING_FILE,
        ENCODER_FILE,
        FUSION_FILE,
    ] {
        std::fs::copy(root().join("models").join(f), dir.path().join(f)).unwrap();
    }
    assert!(VoiceModels::load(dir.path()).unwrap().is_fused());
    let fp =
        embedder_fingerprint(&file_sha256(&dir.path().join(ENCODER_FILE)).unwrap(), true).unwrap();
    let path = dir.path().join(EMBEDDING_FILE);
    let mut system =
        quivox::engine::embedding_system::EmbeddingPldaSystem::load(&path, &fp).unwrap();
    if let Some(cal) = system.calibration.as_mut() {
        cal.fusion.offset += 1.0;
    }
    system.save(&path, &fp).unwrap();
    let err = VoiceModels::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("retrain the fusion"), "{err}");

    // Without fusion.qvx the folder gives the GMM-UBM alone.
    std::fs::remove_file(dir.path().join(FUSION_FILE)).unwrap();
    assert!(!VoiceModels::load(dir.path()).unwrap().is_fused());
}

#[test]
fn fused_voiceprints_update_exactly_and_old_formats_are_handled() {
    let engine = Engine::new(models(), EngineOptions::default()).unwrap();
    let wave = fixture("so0457", "enroll");
    let [a, b] = split(&wave);
    engine
        .enroll("once".into(), &[a.clone(), b.clone()])
        .unwrap();
    let mut opts = EngineOptions::default();
    opts.min_enroll_speech_ms = 5_000;
    let staged = Engine::new(models(), opts).unwrap();
    staged.enroll("twice".into(), &[a]).unwrap();
    let first = staged.voiceprint(&"twice".into()).unwrap();
    let (first_gmm, first_net_speech_ms) = (first.stats.clone(), first.net_speech_ms);
    let first_session = first.backend.unwrap();
    staged
        .add_audio(&"twice".into(), std::slice::from_ref(&b))
        .unwrap();
    staged.enroll("second-half".into(), &[b]).unwrap();
    let once = engine.voiceprint(&"once".into()).unwrap();
    let twice = staged.voiceprint(&"twice".into()).unwrap();
    // The recordings of one enrollment are one session, concatenated: the two halves give
    // exactly what the whole file gives.
    engine
        .enroll("whole".into(), std::slice::from_ref(&wave))
        .unwrap();
    let whole = engine.voiceprint(&"whole".into()).unwrap();
    assert_eq!(once, whole);
    // Audio added later is another session: every statistic of the voiceprint is the sum of the
    // two sessions' (each as enrolled on its own), and the models are re-derived from the sum.
    let second = staged.voiceprint(&"second-half".into()).unwrap();
    common::assert_sum_of(
        "occupancy",
        twice.stats.occupancy(),
        first_gmm.occupancy(),
        second.stats.occupancy(),
    );
    assert_eq!(
        twice.net_speech_ms,
        first_net_speech_ms + second.net_speech_ms
    );
    let (p2, p_b) = (twice.backend.unwrap(), second.backend.unwrap());
    common::assert_sum_of(
        "i-vector zeroth",
        &p2.stats.ivector.zeroth,
        &first_session.stats.ivector.zeroth,
        &p_b.stats.ivector.zeroth,
    );
    common::assert_sum_of(
        "i-vector first",
        &p2.stats.ivector.first,
        &first_session.stats.ivector.first,
        &p_b.stats.ivector.first,
    );
    let mut sessions = first_session.stats.embedding.clone();
    sessions.add(&p_b.stats.embedding);
    assert_eq!(p2.stats.embedding.partials, sessions.partials);
    assert_eq!(p2.stats.embedding.frames, sessions.frames);
    assert!(p2
        .stats
        .embedding
        .sum
        .iter()
        .zip(&sessions.sum)
        .all(|(x, y)| (x - y).abs() < 1e-5));
    assert!(
        staged
            .prepare_voiceprint(&"twice".into(), &[], None)
            .is_err(),
        "an empty session is refused"
    );

    // A voiceprint made by the GMM-UBM alone round-trips, and the fused engine refuses it with a
    // message saying what to do.
    let gmm_engine = Engine::new(
        VoiceModels::load(&root().join("models").join(GMM_FILE)).unwrap(),
        EngineOptions::default(),
    )
    .unwrap();
    gmm_engine
        .enroll("so0457".into(), std::slice::from_ref(&wave))
        .unwrap();
    let gmm_print = gmm_engine.voiceprint(&"so0457".into()).unwrap();
    assert!(gmm_print.backend.is_none());
    let bytes = gmm_print.to_bytes();
    assert_eq!(Voiceprint::from_bytes(&bytes).unwrap(), gmm_print);
    match engine.insert_voiceprint("so0457".into(), gmm_print.clone()) {
        Err(EngineError::Voiceprint(m)) => assert!(m.contains("re-enroll"), "{m}"),
        other => panic!("expected a voiceprint error, got {other:?}"),
    }
    // Format 1 (before the back ends): the same fields, version 1, still read.
    let mut v1 = b"QVVP".to_vec();
    v1.extend_from_slice(&1u16.to_le_bytes());
    v1.extend(
        postcard::to_allocvec(&(&gmm_print.stats, &gmm_print.model, gmm_print.net_speech_ms))
            .unwrap(),
    );
    // Formats 1 and 2 carry no cohort statistics: they parse without them, and an engine whose
    // GMM-UBM normalises scores refuses such a print ("re-enroll").
    assert!(
        gmm_print.gmm_norm.is_some(),
        "the shipped GMM-UBM has a cohort"
    );
    let without_norm = Voiceprint {
        gmm_norm: None,
        ..gmm_print.clone()
    };
    assert_eq!(Voiceprint::from_bytes(&v1).unwrap(), without_norm);
    let mut v2 = b"QVVP".to_vec();
    v2.extend_from_slice(&2u16.to_le_bytes());
    v2.extend(
        postcard::to_allocvec(&(
            &gmm_print.stats,
            &gmm_print.model,
            gmm_print.net_speech_ms,
            &gmm_print.backend,
        ))
        .unwrap(),
    );
    assert_eq!(Voiceprint::from_bytes(&v2).unwrap(), without_norm);
    match gmm_engine.insert_voiceprint("old".into(), without_norm) {
        Err(EngineError::Voiceprint(m)) => assert!(m.contains("re-enroll"), "{m}"),
        other => panic!("expected a voiceprint error, got {other:?}"),
    }
    let mut v9 = v1.clone();
    v9[4] = 9;
    assert!(Voiceprint::from_bytes(&v9).is_err());
}

/// The call's quality as the engine computes it: log-energy spread over every frame (checked
/// against the order statistics of a sorted copy, within one histogram bin per quantile) and the
/// voiced frames scored.
fn call_quality(log_energy: &[f32], speech_frames: usize) -> TestQuality {
    let mut range = quivox::features::EnergyRange::new();
    range.extend(log_energy);
    let spread = range.spread_nats().unwrap();
    let mut sorted = log_energy.to_vec();
    sorted.sort_by(f32::total_cmp);
    let at = |q: f64| f64::from(sorted[((sorted.len() - 1) as f64 * q).round() as usize]);
    let exact = at(0.9) - at(0.1);
    assert!(
        (spread - exact).abs() <= quivox::features::EnergyRange::BIN_NATS + 1e-9,
        "{spread} vs {exact}"
    );
    TestQuality::new(spread, speech_frames)
}

/// The three calibrated LLRs of one recording against one voiceprint, each from its own batch
/// system (GMM-UBM on the analysed features, i-vector PLDA, embedding PLDA of the batch
/// embedder), and the recording's quality measure: what verification fuses.
fn systems_by_hand(
    models: &VoiceModels,
    print: &Voiceprint,
    wave: &Waveform,
) -> ([f64; 3], TestQuality) {
    let b = models.backends.clone().unwrap();
    let part = print.backend.clone().unwrap();
    let a = analyze(
        models,
        wave,
        EngineOptions::default().adaptive_noise_suppression.as_ref(),
    )
    .unwrap();
    let bank = quivox::gmm::SpeakerBank::new(&models.gmm.ubm, &[&print.model]).unwrap();
    let norms: Vec<_> = print.gmm_norm.into_iter().collect();
    let g = models.llrs(&a.features, &bank, &norms).unwrap()[0];
    let i = b
        .ivector
        .score(&a.features, std::slice::from_ref(&part.ivector))
        .unwrap()[0];
    let suppression = EngineOptions::default()
        .adaptive_noise_suppression
        .map(|ns| ns.suppression);
    let u = b
        .embedder(suppression.as_ref())
        .unwrap()
        .embedder(a.noise_suppressed)
        .embed(wave)
        .unwrap();
    let e = b
        .embedding
        .score(
            &EmbeddingSum::from_utterance(&u),
            std::slice::from_ref(&part.embedding),
        )
        .unwrap()[0];
    let q = call_quality(&a.frame_log_energy, a.features.num_frames());
    ([g, i, e], q)
}

/// The fused models, an engine (default options) with the four demo speakers enrolled, and
/// their i-vector and embedding enrollments in population order.
fn four_enrolled() -> (
    VoiceModels,
    Engine,
    Vec<IvectorEnrollment>,
    Vec<EmbeddingEnrollment>,
) {
    let models = models();
    let engine = Engine::new(models.clone(), EngineOptions::default()).unwrap();
    for s in ["so0457", "so1027", "so2061", "so2740"] {
        engine.enroll(s.into(), &[fixture(s, "enroll")]).unwrap();
    }
    let (ivec, emb) = engine
        .population()
        .ids()
        .iter()
        .map(|id| {
            let p = engine.voiceprint(id).unwrap().backend.unwrap();
            (p.ivector, p.embedding)
        })
        .unzip();
    (models, engine, ivec, emb)
}

#[test]
fn streaming_fused_llrs_match_the_batch_systems() {
    // Independent path: the batch front end, i-vector system, batch embedder and the fusion
    // weights applied by hand; the session computes the same three systems in streaming.
    let (models, engine, ivec, emb) = four_enrolled();
    let (b, pop) = (models.backends.clone().unwrap(), engine.population());
    let suppression = engine
        .adaptive_noise_suppression()
        .map(|ns| &ns.suppression);
    let mut embedder = b.embedder(suppression).unwrap();
    for caller in ["so1027", "so0457"] {
        let wave = fixture(caller, "call");
        let a = analyze(&models, &wave, engine.adaptive_noise_suppression()).unwrap();
        let g = models.llrs(&a.features, pop.bank(), pop.norms()).unwrap();
        let i = b.ivector.score(&a.features, &ivec).unwrap();
        let u = embedder.embedder(a.noise_suppressed).embed(&wave).unwrap();
        let e = b
            .embedding
            .score(&EmbeddingSum::from_utterance(&u), &emb)
            .unwrap();
        let q = call_quality(&a.frame_log_energy, a.features.num_frames());
        let batch: Vec<f64> = (0..pop.len())
            .map(|k| b.fuse(g[k], i[k], e[k], &q))
            .collect();
        let truth = pop.ids().iter().position(|id| id.0 == caller).unwrap();
        let best = (0..pop.len())
            .max_by(|&x, &y| batch[x].total_cmp(&batch[y]))
            .unwrap();
        assert_eq!(best, truth, "batch fusion picks the caller");

        let mut session = engine.start_call(CallInfo::default()).unwrap();
        for chunk in wave.to_i16().unwrap().chunks(160) {
            session.push_pcm(chunk).unwrap();
        }
        let outcome = session.finish().unwrap();
        let (speaker, llr) = match &outcome.final_decision.decision {
            Decision::Identified { speaker, llr, .. } => (speaker.clone(), *llr),
            other => panic!("{caller}: expected an identification, got {other:?}"),
        };
        assert_eq!(speaker, SpeakerId::from(caller));
        // Streaming differs from batch by the running-mean VAD (a few frames), the encoder's
        // gain measured over the first 2 s instead of the whole call, and its trimming: the
        // fused LLRs agree to a few nats, not exactly.
        assert!(
            (llr - batch[truth]).abs() < 0.25 * batch[truth].abs().max(4.0),
            "{caller}: streaming fused LLR {llr:.2}, batch {:.2}",
            batch[truth]
        );
    }
}

fn open(path: &Path, key: &StoreKey, models: &Path) -> Service {
    let store = SqliteStore::open_sqlite(path, key.clone()).unwrap();
    Service::open_model_file(models, Box::new(store), ServiceOptions::default()).unwrap()
}

#[test]
fn fused_service_identifies_after_a_restart_and_keeps_model_versions_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let key = StoreKey::generate();
    let actor = Actor::new("agent", 1_700_000_000);
    let folder = root().join("models");
    {
        let service = open(&path, &key, &folder);
        assert!(service.model_version().starts_with("fused-"));
        for (id, number) in [
            ("so0457", "+44 20 7946 0001"),
            ("so1027", "+44 20 7946 0001"),
        ] {
            service.enroll(&actor, &enroll_request(id, number)).unwrap();
        }
    }
    let service = open(&path, &key, &folder);
    assert_eq!(service.engine().population().len(), 2);
    let wave = fixture("so1027", "call");
    let mut session = service
        .start_call(CallInfo {
            caller_number: Some("+44 20 7946 0001".into()),
            call_id: "fused".into(),
        })
        .unwrap();
    let codes: Vec<u8> = wave
        .to_i16()
        .unwrap()
        .iter()
        .map(|&s| quivox::audio::g711::i16_to_ulaw(s))
        .collect();
    for chunk in codes.chunks(160) {
        session.push_ulaw(chunk).unwrap();
    }
    let outcome = service
        .finish_call(&Actor::new("ivr", 1_700_000_100), session)
        .unwrap();
    match outcome.final_decision.decision {
        Decision::Identified { speaker, .. } => assert_eq!(speaker, SpeakerId::from("so1027")),
        other => panic!("expected so1027 identified, got {other:?}"),
    }
    // Verification with the fused LLR: the caller against their own voiceprint and another's.
    let ivr = Actor::new("ivr", 1_700_000_200);
    let own = service
        .verify(
            &ivr,
            &SpeakerId::from("so1027"),
            std::slice::from_ref(&wave),
        )
        .unwrap();
    let other = service
        .verify(
            &ivr,
            &SpeakerId::from("so0457"),
            std::slice::from_ref(&wave),
        )
        .unwrap();
    assert!(own.accepted && own.llr > 0.0, "{own:?}");
    assert!(!other.accepted && other.llr < 0.0, "{other:?}");
    // The same LLR from the three systems computed here and fused by hand.
    let models = service.engine().models();
    let b = models.backends.clone().unwrap();
    let print = service
        .engine()
        .voiceprint(&SpeakerId::from("so1027"))
        .unwrap();
    let ([g, i, e], q) = systems_by_hand(models, &print, &wave);
    assert!((own.llr - b.fuse(g, i, e, &q)).abs() < 1e-9, "{own:?}");
    drop(service);
    // The same store opened with the GMM-UBM file alone: the fused voiceprints are of another
    // model version, so nobody is scored with them; the speakers are listed for re-enrollment.
    let gmm = open(&path, &key, &folder.join(GMM_FILE));
    assert_eq!(gmm.engine().population().len(), 0);
    assert_eq!(gmm.speakers_without_voiceprint().unwrap().len(), 2);
}

#[test]
fn fused_decisions_do_not_depend_on_chunk_sizes() {
    let engine = Engine::new(models(), EngineOptions::default()).unwrap();
    for s in ["so0457", "so1027"] {
        engine.enroll(s.into(), &[fixture(s, "enroll")]).unwrap();
    }
    let pcm = fixture("so1027", "call").to_i16().unwrap();
    let run = |chunk: usize| {
        let mut session = engine.start_call(CallInfo::default()).unwrap();
        for c in pcm.chunks(chunk) {
            session.push_pcm(c).unwrap();
        }
        session.finish().unwrap()
    };
    let reference = run(160);
    for chunk in [37, 1000, 4096] {
        let other = run(chunk);
        assert_eq!(other.timeline, reference.timeline, "chunks of {chunk}");
    }
    assert!(matches!(
        reference.final_decision.decision,
        Decision::Identified { .. }
    ));
}

/// A fusion with a quality recalibration by energy spread and amount of speech: verification
/// gives the fused LLR of the three systems recalibrated with the call's energy spread and voiced
/// frames (computed here from the batch analysis, the formula written out by hand), and the same
/// call with its quiet frames made louder (a noisier-looking line, smaller spread) gets the
/// recalibration of its own spread.
#[test]
fn quality_recalibration_uses_the_calls_energy_spread_and_speech() {
    use quivox::calibration::{QualityMeasure, QualityTerm};
    let mut models = models();
    let quality = quivox::calibration::QualityCalibration {
        fusion: quivox::calibration::Fusion {
            weights: vec![1.5, -0.4, 0.1, 0.2, 0.05],
            offset: -0.7,
        },
        terms: vec![
            QualityTerm {
                measure: QualityMeasure::EnergySpread,
                lo: 2.0,
                hi: 12.0,
                centre: 9.0,
            },
            QualityTerm {
                measure: QualityMeasure::LogSpeechSeconds,
                lo: 2f64.ln(),
                hi: 8f64.ln(),
                centre: 5f64.ln(),
            },
        ],
    };
    std::sync::Arc::get_mut(models.backends.as_mut().unwrap())
        .expect("a fresh load is not shared")
        .quality = Some(quality.clone());
    let b = models.backends.clone().unwrap();
    let engine = Engine::new(models.clone(), EngineOptions::default()).unwrap();
    engine
        .enroll("so1027".into(), &[fixture("so1027", "enroll")])
        .unwrap();
    let print = engine.voiceprint(&SpeakerId::from("so1027")).unwrap();
    let clean = fixture("so1027", "call");
    // The same call with a steady hiss added: the pauses rise, the spread falls.
    let mut state = 1u32;
    let hissy = Waveform {
        sample_rate_hz: clean.sample_rate_hz,
        samples: clean
            .samples
            .iter()
            .map(|&x| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                x + ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 600.0
            })
            .collect(),
    };
    let mut spreads = Vec::new();
    for wave in [&clean, &hissy] {
        let (llr, _) = engine
            .verify_llr(&SpeakerId::from("so1027"), std::slice::from_ref(wave))
            .unwrap();
        let ([g, i, e], q) = systems_by_hand(&models, &print, wave);
        let w = &b.fusion.weights;
        let fused = w[0] * g + w[1] * i + w[2] * e + b.fusion.offset;
        let qc = q.energy_spread_nats.clamp(2.0, 12.0) - 9.0;
        let seconds = q.speech_frames as f64 / 100.0;
        assert!((2.0..8.0).contains(&seconds), "{seconds} s of speech");
        let dc = (seconds / 5.0).ln();
        let expect = 1.5 * fused - 0.4 * qc + 0.1 * fused * qc + 0.2 * dc + 0.05 * fused * dc - 0.7;
        assert!((llr - expect).abs() < 1e-9, "llr {llr}, expected {expect}");
        spreads.push(q.energy_spread_nats);
    }
    assert!(spreads[1] < spreads[0] - 0.5, "spreads {spreads:?}");
}

/// A session gives the quality recalibration the speech it scored: two engines whose fusions
/// differ only by a duration term, llr' = llr (A) and llr' = llr + ln(n / 100) (B), n the voiced
/// frames scored, make their one decision point (min = max net speech = 3 s) on the same audio, so
/// B's top LLR exceeds A's by exactly ln of the net speech in seconds at that point.
#[test]
fn sessions_give_the_quality_recalibration_their_scored_speech() {
    use quivox::calibration::{Fusion, QualityCalibration, QualityMeasure, QualityTerm};
    let wide = |measure| QualityTerm {
        measure,
        lo: -10.0,
        hi: 40.0,
        centre: 0.0,
    };
    let with_duration_weight = |w: f64| {
        let mut models = models();
        std::sync::Arc::get_mut(models.backends.as_mut().unwrap())
            .expect("a fresh load is not shared")
            .quality = Some(QualityCalibration {
            fusion: Fusion {
                weights: vec![1.0, 0.0, 0.0, w, 0.0],
                offset: 0.0,
            },
            terms: vec![
                wide(QualityMeasure::EnergySpread),
                wide(QualityMeasure::LogSpeechSeconds),
            ],
        });
        let mut opts = EngineOptions::default();
        opts.min_net_speech_ms = 3000;
        opts.max_net_speech_ms = 3000;
        opts.confidence = 0.5; // both name the caller, with the LLR in the decision
        let engine = Engine::new(models, opts).unwrap();
        for s in ["so0457", "so1027", "so2740"] {
            engine.enroll(s.into(), &[fixture(s, "enroll")]).unwrap();
        }
        let mut session = engine.start_call(CallInfo::default()).unwrap();
        for chunk in fixture("so1027", "call").to_i16().unwrap().chunks(160) {
            session.push_pcm(chunk).unwrap();
        }
        let first = session.timeline()[0].clone();
        session.finish().unwrap();
        first
    };
    let (a, b) = (with_duration_weight(0.0), with_duration_weight(1.0));
    assert_eq!(a.net_speech_ms, 3000, "{a:?}");
    assert_eq!(b.net_speech_ms, 3000, "{b:?}");
    let llr = |e: &DecisionEvent| match &e.decision {
        Decision::Identified { speaker, llr, .. } => {
            assert_eq!(speaker, &SpeakerId::from("so1027"));
            *llr
        }
        other => panic!("expected so1027 identified, got {other:?}"),
    };
    let (la, lb) = (llr(&a), llr(&b));
    assert!((lb - la - 3f64.ln()).abs() < 1e-9, "A {la}, B {lb}");
}

/// A call noisy enough for the adaptive noise suppression: the session embeds it through the
/// suppressor as well (its MFCC features are already suppressed). Oracle: the batch systems by
/// hand, with the embedding of the suppressed and of the plain batch embedder.
#[test]
fn noisy_calls_are_embedded_through_the_noise_suppressor() {
    use quivox::augment::{channel_rng, coloured_noise, mix_at_snr, NoiseColour};
    let (models, engine, ivec, emb) = four_enrolled();
    let (b, pop) = (models.backends.clone().unwrap(), engine.population());
    let clean = fixture("so1027", "call");
    let noise = coloured_noise(
        NoiseColour::White,
        clean.samples.len(),
        &mut channel_rng(5, 0),
    )
    .unwrap();
    let wave = Waveform {
        samples: mix_at_snr(&clean.samples, &noise, 15.0).unwrap(),
        ..clean.clone()
    };
    let a = analyze(&models, &wave, engine.adaptive_noise_suppression()).unwrap();
    assert!(a.noise_suppressed, "the 15-dB call is under the gate");
    let clean_analysis = analyze(&models, &clean, engine.adaptive_noise_suppression()).unwrap();
    assert!(!clean_analysis.noise_suppressed);

    let suppression = engine
        .adaptive_noise_suppression()
        .map(|ns| &ns.suppression);
    let mut embedder = b.embedder(suppression).unwrap();
    let g = models.llrs(&a.features, pop.bank(), pop.norms()).unwrap();
    let i = b.ivector.score(&a.features, &ivec).unwrap();
    let q = call_quality(&a.frame_log_energy, a.features.num_frames());
    let truth = pop.ids().iter().position(|id| id.0 == "so1027").unwrap();
    let prior = NumberDirectory::new().prior(None, pop.ids(), &PriorOptions::default());
    let mut posteriors = [0.0; 2];
    for (k, gated) in [true, false].into_iter().enumerate() {
        let u = embedder.embedder(gated).embed(&wave).unwrap();
        let e = b
            .embedding
            .score(&EmbeddingSum::from_utterance(&u), &emb)
            .unwrap();
        let fused: Vec<f64> = (0..pop.len())
            .map(|s| b.fuse(g[s], i[s], e[s], &q))
            .collect();
        posteriors[k] = caller_posterior(&prior, &fused).probability(truth);
    }
    let [suppressed, plain] = posteriors;

    let mut session = engine.start_call(CallInfo::default()).unwrap();
    for chunk in wave.samples.chunks(160) {
        session.push_samples(chunk).unwrap();
    }
    let outcome = session.finish().unwrap();
    let (speaker, posterior) = outcome.final_decision.top_speaker.clone().unwrap();
    assert_eq!(speaker.0, "so1027");
    eprintln!(
        "posterior of so1027: streaming {posterior:.4}, batch suppressed {suppressed:.4}, batch plain {plain:.4}"
    );
    let logit = |p: f64| (p / (1.0 - p)).ln();
    assert!(
        (logit(posterior) - logit(suppressed)).abs() < (logit(posterior) - logit(plain)).abs(),
        "streaming {posterior:.4} is closer to the plain embedding's {plain:.4} than to the suppressed one's {suppressed:.4}"
    );
}
