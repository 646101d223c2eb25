//! Engine benches: a whole 7-s call pushed in 20-ms chunks (front end + every decision point)
//! against 1 000 and 10 000 enrolled speakers, and one decision on 7 s of speech (700 voiced
//! frames) against 1 000 and 10 000 speakers, with the shipped 512-component UBM and synthetic
//! MAP models; default scoring (linear pass + exact shortlist of 32) and the exact reference
//! (everybody scored frame by frame at every decision point) in the same run.
//!
//! The fused system (the `models/` folder: GMM-UBM + i-vector PLDA + streaming GE2E embedding
//! PLDA) is measured on the same call against the same 1 000 speakers.
//!
//! `cargo bench --bench engine`
//!
//! Measured figures are in the README's speed table (they depend heavily on the machine's load).

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use quivox::audio::ChannelPolicy;
use quivox::engine::{
    caller_posterior, CallInfo, Engine, EngineOptions, NumberDirectory, PriorOptions,
    ScoringOptions, SpeakerId, VoiceModels, Voiceprint,
};
use quivox::features::FeatureMatrix;
use quivox::gmm::{AccumDiagGmm, DiagGmm, SpeakerBank};
use quivox::recipe::read_telephone_wav;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A mean-only MAP-like model: UBM means shifted by N(0, 0.3²) in every dimension.
fn synthetic_speaker(ubm: &DiagGmm, rng: &mut ChaCha8Rng) -> DiagGmm {
    let normal = Normal::new(0.0_f32, 0.3).unwrap();
    let means: Vec<f32> = ubm.means().iter().map(|m| m + normal.sample(rng)).collect();
    DiagGmm::new(ubm.dim(), ubm.weights().to_vec(), means, ubm.variances()).unwrap()
}

fn bench_engine(c: &mut Criterion) {
    let models = VoiceModels::load(&root().join("models/gmm-ubm.qvx")).unwrap();
    let ubm = models.gmm.ubm.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(1);

    // A 7-s call pushed in 20-ms chunks against 1 000 enrolled speakers.
    let engine = Engine::new(models.clone(), EngineOptions::default()).unwrap();
    let stats = AccumDiagGmm::for_model(&ubm);
    // Cohort statistics (the Z side of the GMM-UBM's adaptive S-norm) of a few synthetic
    // speakers, reused in turn: measuring them costs ≈ 0.1 s per speaker, and only their
    // presence matters to the scoring cost benched here.
    let norms: Vec<_> = (0..8)
        .map(|_| {
            models
                .gmm
                .model_norm(&synthetic_speaker(&ubm, &mut rng))
                .unwrap()
        })
        .collect();
    engine
        .insert_voiceprints((0..1000).map(|i| {
            let print = Voiceprint {
                stats: stats.clone(),
                model: synthetic_speaker(&ubm, &mut rng),
                net_speech_ms: 30_000,
                backend: None,
                gmm_norm: norms[i % norms.len()],
            };
            (SpeakerId(format!("spk{i:05}")), print)
        }))
        .unwrap();
    let call = read_telephone_wav(
        &root().join("audio-fixtures/demo/so1027-call.wav"),
        ChannelPolicy::RequireMono,
    )
    .unwrap();
    let pcm: Vec<i16> = call.samples.iter().map(|&x| x as i16).collect();
    let chunks = pcm.chunks(160).count() as u64;
    let mut group = c.benchmark_group("engine_call");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(chunks));
    let run_call = |engine: &Engine| {
        let mut session = engine
            .start_call(CallInfo {
                caller_number: None,
                call_id: String::new(),
            })
            .unwrap();
        for chunk in pcm.chunks(160) {
            session.push_pcm(chunk).unwrap();
            while session.poll().is_some() {}
        }
        session.finish().unwrap()
    };
    group.bench_function("7s_call_20ms_chunks_1000_speakers", |b| {
        b.iter(|| run_call(&engine))
    });
    // The reference path: batch Gaussian selection and exact scoring of everybody at every
    // decision point.
    let mut exact_options = EngineOptions::default();
    exact_options.scoring = ScoringOptions::exact();
    let exact = Engine::new(models.clone(), exact_options).unwrap();
    exact
        .insert_voiceprints(
            engine
                .population()
                .ids()
                .iter()
                .map(|id| (id.clone(), engine.voiceprint(id).unwrap())),
        )
        .unwrap();
    group.bench_function("7s_call_20ms_chunks_1000_speakers_exact", |b| {
        b.iter(|| run_call(&exact))
    });
    drop(exact);
    // The fused system of `models/` (GMM-UBM + i-vector PLDA + GE2E embedding PLDA, streaming
    // encoder): the same 1 000 synthetic GMMs, each with the back-end part of a real enrollment
    // whose PLDA means are shifted by N(0, 0.3²).
    let fused_models = VoiceModels::load(&root().join("models")).unwrap();
    let enroll_wave = read_telephone_wav(
        &root().join("audio-fixtures/demo/so0457-enroll.wav"),
        ChannelPolicy::RequireMono,
    )
    .unwrap();
    let make_fused = |options: EngineOptions, rng: &mut ChaCha8Rng| {
        let fused = Engine::new(fused_models.clone(), options).unwrap();
        fused
            .enroll("seed".into(), std::slice::from_ref(&enroll_wave))
            .unwrap();
        let seed = fused.voiceprint(&"seed".into()).unwrap();
        let shift = Normal::new(0.0_f64, 0.3).unwrap();
        fused
            .insert_voiceprints(engine.population().ids().iter().map(|id| {
                let mut print = engine.voiceprint(id).unwrap();
                let mut part = seed.backend.clone().unwrap();
                for m in part
                    .ivector
                    .vector
                    .plda
                    .mean
                    .iter_mut()
                    .chain(part.embedding.vector.plda.mean.iter_mut())
                {
                    *m += shift.sample(rng);
                }
                print.backend = Some(part);
                (id.clone(), print)
            }))
            .unwrap();
        fused.remove(&"seed".into()).unwrap();
        fused
    };
    let fused = make_fused(EngineOptions::default(), &mut rng);
    group.bench_function("7s_call_20ms_chunks_1000_speakers_fused", |b| {
        b.iter(|| run_call(&fused))
    });
    drop(fused);
    // The reference in the same run: without the adaptive noise suppression, i.e. without the
    // suppressed front end and the second streaming embedder beside the plain ones.
    let mut no_ns = EngineOptions::default();
    no_ns.adaptive_noise_suppression = None;
    let fused = make_fused(no_ns, &mut rng);
    group.bench_function(
        "7s_call_20ms_chunks_1000_speakers_fused_no_noise_suppression",
        |b| b.iter(|| run_call(&fused)),
    );
    drop(fused);
    // The front end alone (no speaker enrolled: decision points only run the VAD bookkeeping).
    let empty = Engine::new(models.clone(), EngineOptions::default()).unwrap();
    group.bench_function("7s_call_20ms_chunks_front_end_only", |b| {
        b.iter(|| {
            let mut session = empty.start_call(CallInfo::default()).unwrap();
            for chunk in pcm.chunks(160) {
                session.push_pcm(chunk).unwrap();
            }
            session.finish().unwrap()
        })
    });
    // The same without the adaptive noise suppression's second front end (the reference for
    // what running the suppressed front end beside the plain one costs).
    let mut plain_opts = EngineOptions::default();
    plain_opts.adaptive_noise_suppression = None;
    let plain = Engine::new(models.clone(), plain_opts).unwrap();
    group.bench_function(
        "7s_call_20ms_chunks_front_end_only_no_noise_suppression",
        |b| {
            b.iter(|| {
                let mut session = plain.start_call(CallInfo::default()).unwrap();
                for chunk in pcm.chunks(160) {
                    session.push_pcm(chunk).unwrap();
                }
                session.finish().unwrap()
            })
        },
    );
    drop(engine);
    // The same call against 10 000 speakers (default scoring only: the exact path takes seconds
    // per call). Voiceprints carry empty statistics here (only the models are scored) to keep the
    // population at ≈ 6 GB.
    let large = Engine::new(models.clone(), EngineOptions::default()).unwrap();
    large
        .insert_voiceprints((0..10_000).map(|i| {
            let print = Voiceprint {
                stats: AccumDiagGmm::new(0, 0),
                model: synthetic_speaker(&ubm, &mut rng),
                net_speech_ms: 30_000,
                backend: None,
                gmm_norm: norms[i % norms.len()],
            };
            (SpeakerId(format!("spk{i:05}")), print)
        }))
        .unwrap();
    group.bench_function("7s_call_20ms_chunks_10000_speakers", |b| {
        b.iter(|| run_call(&large))
    });
    drop(large);
    group.finish();

    // One decision on 700 voiced frames: CMN, Gaussian selection, bank scoring, calibration, Bayes.
    let normal = Normal::new(0.0_f32, 1.0).unwrap();
    let frames = FeatureMatrix::from_vec(
        ubm.dim(),
        (0..700 * ubm.dim())
            .map(|_| normal.sample(&mut rng))
            .collect(),
    )
    .unwrap();
    let mut group = c.benchmark_group("engine_decision_7s");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for speakers in [1000usize, 10_000] {
        let bank = {
            let spk: Vec<DiagGmm> = (0..speakers)
                .map(|_| synthetic_speaker(&ubm, &mut rng))
                .collect();
            let refs: Vec<&DiagGmm> = spk.iter().collect();
            SpeakerBank::new(&ubm, &refs).unwrap()
        };
        let bank_norms: Vec<_> = (0..speakers)
            .filter_map(|i| norms[i % norms.len()])
            .collect();
        let ids: Vec<SpeakerId> = (0..speakers)
            .map(|i| SpeakerId(format!("spk{i:05}")))
            .collect();
        let prior = NumberDirectory::new().prior(None, &ids, &PriorOptions::default());
        group.bench_function(format!("{speakers}_speakers_exact"), |b| {
            b.iter(|| {
                let mut normalised = FeatureMatrix::new(frames.dim());
                quivox::features::apply_sliding_cmn_into(
                    &frames,
                    &models.front_end.sliding_cmn,
                    &mut normalised,
                )
                .unwrap();
                let llrs = models.llrs(&normalised, &bank, &bank_norms).unwrap();
                caller_posterior(&prior, &llrs).best()
            })
        });
        // The session's default path: linear pass over everybody, exact rescoring of a
        // 32-speaker shortlist.
        let scoring = ScoringOptions::default();
        let on_line = vec![false; speakers];
        group.bench_function(format!("{speakers}_speakers_shortlist"), |b| {
            b.iter(|| {
                let mut normalised = FeatureMatrix::new(frames.dim());
                quivox::features::apply_sliding_cmn_into(
                    &frames,
                    &models.front_end.sliding_cmn,
                    &mut normalised,
                )
                .unwrap();
                let sel = ubm
                    .gaussian_selection(&normalised, models.gmm.options.top_c)
                    .unwrap();
                let (llrs, _) = models
                    .shortlisted_llrs(
                        &normalised,
                        &sel,
                        &bank,
                        &bank_norms,
                        scoring.shortlist,
                        scoring.min_occupancy,
                        &on_line,
                    )
                    .unwrap();
                caller_posterior(&prior, &llrs).best()
            })
        });
    }
    group.finish();
}

/// The cohort (Z-norm) side of one enrollment: the enrolled model against the 524 cohort
/// utterances. The first enrollment computes and keeps the utterances' UBM Gaussian selections;
/// `cold` loads the system afresh before each (untimed; no kept selections), `warm` is every
/// later enrollment.
fn bench_enrollment_norm(c: &mut Criterion) {
    let models = VoiceModels::load(&root().join("models/gmm-ubm.qvx")).unwrap();
    let system = &models.gmm;
    let model = system.ubm.clone();
    let mut group = c.benchmark_group("enrollment");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("cohort_norm_cold", |b| {
        b.iter_batched(
            || VoiceModels::load(&root().join("models/gmm-ubm.qvx")).unwrap(),
            |fresh| fresh.gmm.model_norm(&model).unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });
    system.model_norm(&model).unwrap();
    group.bench_function("cohort_norm_warm", |b| {
        b.iter(|| system.model_norm(&model).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_engine, bench_enrollment_norm);
criterion_main!(benches);
