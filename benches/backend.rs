//! Back-end speed: i-vector extraction of one 7 s call (512 × 60 UBM, ~700 frames of stats) and
//! PLDA scoring of one call against 10 000 enrolled speakers.
//!
//! `cargo bench --bench backend` (one core: `RAYON_NUM_THREADS=1`; neither path uses rayon).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use nalgebra::DMatrix;
use quivox::gmm::BaumWelchStats;
use quivox::ivector::{IvectorExtractor, UbmParams};
use quivox::plda::{Plda, PldaScorer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

const COMPONENTS: usize = 512;
const FEAT_DIM: usize = 60;
const FRAMES: usize = 700;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn ubm(rng: &mut ChaCha8Rng) -> UbmParams {
    let weights = vec![1.0 / COMPONENTS as f64; COMPONENTS];
    let means = (0..COMPONENTS * FEAT_DIM).map(|_| normal(rng)).collect();
    let variances = (0..COMPONENTS * FEAT_DIM)
        .map(|_| rng.random_range(0.5..2.0))
        .collect();
    UbmParams::new(weights, means, variances, FEAT_DIM).unwrap()
}

/// Stats of a 7 s call: each frame's posterior spread over a few components, as top-C GMM
/// alignment produces.
fn call_stats(rng: &mut ChaCha8Rng) -> BaumWelchStats {
    let mut stats = BaumWelchStats::zeros(COMPONENTS, FEAT_DIM);
    for _ in 0..FRAMES {
        let frame: Vec<f64> = (0..FEAT_DIM).map(|_| normal(rng)).collect();
        for (k, share) in [0.7, 0.2, 0.1].into_iter().enumerate() {
            let c = (rng.random_range(0..COMPONENTS) + k) % COMPONENTS;
            stats.zeroth[c] += share;
            for (f, x) in stats.first[c * FEAT_DIM..(c + 1) * FEAT_DIM]
                .iter_mut()
                .zip(&frame)
            {
                *f += share * x;
            }
        }
    }
    stats
}

fn ivector_extraction(crit: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let ubm = ubm(&mut rng);
    let stats = call_stats(&mut rng);
    let mut group = crit.benchmark_group("ivector_extract_7s_call");
    group.sample_size(20);
    for rank in [100usize, 200] {
        let t = DMatrix::from_fn(COMPONENTS * FEAT_DIM, rank, |_, _| 0.05 * normal(&mut rng));
        let extractor = IvectorExtractor::from_total_variability(&ubm, &t).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(rank), &rank, |b, _| {
            b.iter(|| extractor.extract(black_box(&stats)).unwrap())
        });
    }
    group.finish();
}

/// One EM iteration of T training (R = 100) on 64 calls' statistics, including the f64
/// per-component terms it rebuilds; uses rayon (all cores unless `RAYON_NUM_THREADS` is set).
fn ivector_em_iteration(crit: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let ubm = ubm(&mut rng);
    let stats: Vec<BaumWelchStats> = (0..64).map(|_| call_stats(&mut rng)).collect();
    let refs: Vec<&BaumWelchStats> = stats.iter().collect();
    let t = DMatrix::from_fn(COMPONENTS * FEAT_DIM, 100, |_, _| 0.05 * normal(&mut rng));
    let extractor = IvectorExtractor::from_total_variability(&ubm, &t).unwrap();
    let mut group = crit.benchmark_group("ivector_em_iteration_64_calls");
    group.sample_size(10);
    group.bench_function("100", |b| {
        b.iter_batched(
            || extractor.clone(),
            |mut model| model.em_iteration(black_box(&refs), true).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn plda_scoring(crit: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut group = crit.benchmark_group("plda_score_vs_10000_speakers");
    group.sample_size(30);
    for dim in [100usize, 200] {
        let m = DMatrix::from_fn(dim, dim, |_, _| normal(&mut rng) / (dim as f64).sqrt());
        let within = &m * m.transpose() + DMatrix::identity(dim, dim);
        let between = DMatrix::identity(dim, dim) * 2.0;
        let plda = Plda::from_parameters(&vec![0.0; dim], &between, &within).unwrap();
        let enrollments: Vec<_> = (0..10_000)
            .map(|s| {
                let vectors: Vec<Vec<f64>> = (0..1 + s % 3)
                    .map(|_| (0..dim).map(|_| normal(&mut rng)).collect())
                    .collect();
                plda.enroll(&vectors).unwrap()
            })
            .collect();
        let scorer = PldaScorer::new(&plda, &enrollments).unwrap();
        let test: Vec<f64> = (0..dim).map(|_| normal(&mut rng)).collect();
        let mut scores = vec![0.0; scorer.len()];
        let mut u = vec![0.0; dim];
        group.bench_with_input(BenchmarkId::from_parameter(dim), &dim, |b, _| {
            b.iter(|| {
                plda.transform_into(black_box(&test), &mut u).unwrap();
                scorer.score_transformed_into(&u, &mut scores).unwrap();
                black_box(scores[0])
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    ivector_extraction,
    ivector_em_iteration,
    plda_scoring
);
criterion_main!(benches);
