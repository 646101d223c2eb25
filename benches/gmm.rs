//! GMM benches: one EM iteration of a 512-component UBM on 100 000 × 60 frames (rayon's default
//! pool and one thread), top-C scoring of a 7-s call (700 × 60 frames) against 1 and 1 000
//! speaker models on one thread, and the load time of a 512 × 60 UBM file.
//!
//! `cargo bench --bench gmm`; compare with `/work/shared/tools/gmm_em_ref.py` (numpy, one thread).

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::cpu_time_of;
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use quivox::features::FeatureMatrix;
use quivox::gmm::{
    map_update, mle_update, score_speaker, AccumDiagGmm, DiagGmm, MapDiagGmmOptions,
    MleDiagGmmOptions, SpeakerBank, DEFAULT_TOP_C,
};
use quivox::model_io::{kinds, FrontEndCheck, FrontEndFingerprint};

const DIM: usize = 60;
const COMPONENTS: usize = 512;

/// Frames from a random 64-cluster mixture (as the numpy reference does).
fn synthetic_frames(frames: usize, seed: u64) -> FeatureMatrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0_f32, 1.0).unwrap();
    let centres: Vec<f32> = (0..64 * DIM)
        .map(|_| 3.0 * normal.sample(&mut rng))
        .collect();
    let mut data = Vec::with_capacity(frames * DIM);
    for _ in 0..frames {
        let c = rng.random_range(0..64);
        for k in 0..DIM {
            data.push(centres[c * DIM + k] + normal.sample(&mut rng));
        }
    }
    FeatureMatrix::from_vec(DIM, data).unwrap()
}

/// A UBM initialised like the reference: means at random frames, global variances, uniform weights.
fn initial_ubm(frames: &FeatureMatrix, seed: u64) -> DiagGmm {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = frames.num_frames();
    let mut means = Vec::with_capacity(COMPONENTS * DIM);
    for _ in 0..COMPONENTS {
        means.extend_from_slice(frames.row(rng.random_range(0..n)));
    }
    let mut mean = vec![0.0_f64; DIM];
    let mut sq = vec![0.0_f64; DIM];
    for row in frames.rows() {
        for k in 0..DIM {
            mean[k] += row[k] as f64;
            sq[k] += (row[k] as f64).powi(2);
        }
    }
    let var: Vec<f32> = (0..DIM)
        .map(|k| (sq[k] / n as f64 - (mean[k] / n as f64).powi(2)) as f32)
        .collect();
    let vars: Vec<f32> = (0..COMPONENTS).flat_map(|_| var.iter().copied()).collect();
    DiagGmm::new(DIM, vec![1.0 / COMPONENTS as f32; COMPONENTS], means, vars).unwrap()
}

fn em_iteration(ubm: &DiagGmm, frames: &FeatureMatrix) -> DiagGmm {
    let mut acc = AccumDiagGmm::for_model(ubm);
    ubm.accumulate_stats(frames, &mut acc).unwrap();
    mle_update(ubm, &acc, &MleDiagGmmOptions::default())
        .unwrap()
        .model
}

fn bench_em(c: &mut Criterion) {
    let frames = synthetic_frames(100_000, 7);
    let ubm = initial_ubm(&frames, 8);
    let mut group = c.benchmark_group("em_iteration_512x60_100k");
    group.sample_size(10);
    group.bench_function("default_threads", |b| {
        b.iter(|| em_iteration(&ubm, &frames))
    });
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    group.bench_function("one_thread", |b| {
        b.iter(|| one.install(|| em_iteration(&ubm, &frames)))
    });
    group.bench_function("one_thread_thread_cpu_time", |b| {
        b.iter_custom(|iters| one.install(|| cpu_time_of(iters, || em_iteration(&ubm, &frames))))
    });
    group.finish();
}

/// A trained-looking UBM (a few EM iterations on synthetic data) and `count` MAP speakers.
fn ubm_and_speakers(count: usize) -> (DiagGmm, Vec<DiagGmm>) {
    let frames = synthetic_frames(30_000, 11);
    let mut ubm = initial_ubm(&frames, 12);
    for _ in 0..3 {
        ubm = em_iteration(&ubm, &frames);
    }
    let speakers = (0..count)
        .map(|s| {
            // ~30 s of enrollment each, drawn from the same kind of mixture.
            let enroll = synthetic_frames(3000, 1000 + s as u64);
            let mut acc = AccumDiagGmm::for_model(&ubm);
            ubm.accumulate_stats(&enroll, &mut acc).unwrap();
            map_update(&ubm, &acc, &MapDiagGmmOptions::default()).unwrap()
        })
        .collect();
    (ubm, speakers)
}

fn bench_scoring(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (ubm, speakers) = one.install(|| ubm_and_speakers(1000));
    let call = synthetic_frames(700, 99);
    let refs: Vec<&DiagGmm> = speakers.iter().collect();
    let bank_1000 = SpeakerBank::new(&ubm, &refs).unwrap();
    let bank_1 = SpeakerBank::new(&ubm, &refs[..1]).unwrap();
    let mut group = c.benchmark_group("top5_score_7s_call_one_thread");
    group.bench_function("gaussian_selection_only", |b| {
        b.iter(|| one.install(|| ubm.gaussian_selection(&call, DEFAULT_TOP_C).unwrap()))
    });
    group.bench_function("1_speaker", |b| {
        b.iter(|| {
            one.install(|| {
                let sel = ubm.gaussian_selection(&call, DEFAULT_TOP_C).unwrap();
                score_speaker(&ubm, &speakers[0], &call, &sel).unwrap()
            })
        })
    });
    group.bench_function("1_speaker_bank", |b| {
        b.iter(|| {
            one.install(|| {
                let sel = ubm.gaussian_selection(&call, DEFAULT_TOP_C).unwrap();
                bank_1.score(&call, &sel).unwrap()
            })
        })
    });
    group.bench_function("1000_speakers_bank", |b| {
        b.iter(|| {
            one.install(|| {
                let sel = ubm.gaussian_selection(&call, DEFAULT_TOP_C).unwrap();
                bank_1000.score(&call, &sel).unwrap()
            })
        })
    });
    // The same on thread CPU time (the pool has one thread; `install` runs the closure on it).
    group.bench_function("1000_speakers_bank_thread_cpu_time", |b| {
        b.iter_custom(|iters| {
            one.install(|| {
                cpu_time_of(iters, || {
                    let sel = ubm.gaussian_selection(&call, DEFAULT_TOP_C).unwrap();
                    bank_1000.score(&call, &sel).unwrap()
                })
            })
        })
    });
    group.bench_function("1_speaker_thread_cpu_time", |b| {
        b.iter_custom(|iters| {
            one.install(|| {
                cpu_time_of(iters, || {
                    let sel = ubm.gaussian_selection(&call, DEFAULT_TOP_C).unwrap();
                    score_speaker(&ubm, &speakers[0], &call, &sel).unwrap()
                })
            })
        })
    });
    group.finish();
}

fn bench_load(c: &mut Criterion) {
    let frames = synthetic_frames(5_000, 21);
    let ubm = initial_ubm(&frames, 22);
    let fp = FrontEndFingerprint::new("mfcc", &serde_json::json!({"num_ceps": 20, "deltas": 2}))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ubm.qvxm");
    ubm.save(&path, kinds::UBM, Some(fp.clone())).unwrap();
    c.bench_function("load_ubm_512x60_from_file", |b| {
        b.iter(|| DiagGmm::load(&path, kinds::UBM, FrontEndCheck::Require(&fp)).unwrap())
    });
}

criterion_group!(benches, bench_em, bench_scoring, bench_load);
criterion_main!(benches);
