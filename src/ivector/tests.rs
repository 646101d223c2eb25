use super::*;
use crate::gmm::BaumWelchStats;
use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn random_ubm(c: usize, d: usize, rng: &mut ChaCha8Rng) -> UbmParams {
    let weights: Vec<f64> = (0..c).map(|_| rng.random_range(0.5..1.5)).collect();
    let total: f64 = weights.iter().sum();
    let weights = weights.iter().map(|w| w / total).collect();
    let means = (0..c * d).map(|_| 3.0 * normal(rng)).collect();
    let variances = (0..c * d).map(|_| rng.random_range(0.5..2.0)).collect();
    UbmParams::new(weights, means, variances, d).unwrap()
}

/// Statistics of utterances drawn from the total-variability model with hard alignments:
/// frame components from the UBM weights, frames x ~ N(μ_c + T_c w, Σ_c), w ~ N(0, I).
fn synthetic_stats(
    ubm: &UbmParams,
    t: &DMatrix<f64>,
    utterances: usize,
    frames: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<BaumWelchStats> {
    let (c, d) = (ubm.num_components(), ubm.dim());
    let rank = t.ncols();
    (0..utterances)
        .map(|_| {
            let w = DVector::from_fn(rank, |_, _| normal(rng));
            let shift = t * w;
            let mut stats = BaumWelchStats::zeros(c, d);
            for _ in 0..frames {
                let mut u: f64 = rng.random();
                let mut comp = c - 1;
                for (k, &wk) in ubm.weights().iter().enumerate() {
                    if u < wk {
                        comp = k;
                        break;
                    }
                    u -= wk;
                }
                stats.zeroth[comp] += 1.0;
                for j in 0..d {
                    let idx = comp * d + j;
                    stats.first[idx] +=
                        ubm.means()[idx] + shift[idx] + ubm.variances()[idx].sqrt() * normal(rng);
                }
            }
            stats
        })
        .collect()
}

#[test]
fn ubm_own_statistics_give_a_zero_ivector() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let ubm = random_ubm(6, 4, &mut rng);
    let t = DMatrix::from_fn(24, 5, |_, _| normal(&mut rng));
    let extractor = IvectorExtractor::from_total_variability(&ubm, &t).unwrap();
    let mut stats = BaumWelchStats::zeros(6, 4);
    for c in 0..6 {
        stats.zeroth[c] = 10.0 * (c + 1) as f64;
        for j in 0..4 {
            stats.first[c * 4 + j] = stats.zeroth[c] * ubm.means()[c * 4 + j];
        }
    }
    let w = extractor.extract(&stats).unwrap();
    assert!(w.iter().all(|x| x.abs() < 1e-9), "{w:?}");
}

#[test]
fn extraction_matches_the_dense_supervector_formula() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (c, d, r) = (5, 3, 4);
    let ubm = random_ubm(c, d, &mut rng);
    let t = DMatrix::from_fn(c * d, r, |_, _| normal(&mut rng));
    let extractor = IvectorExtractor::from_total_variability(&ubm, &t).unwrap();
    let stats = &synthetic_stats(&ubm, &t, 1, 50, &mut rng)[0];
    // Dense oracle with explicit inverses: L = I + Tᵀ Σ⁻¹ N T, w = L⁻¹ Tᵀ Σ⁻¹ (F − N μ).
    let mut sigma_inv_n = DMatrix::zeros(c * d, c * d);
    let mut sigma_inv_f = DVector::zeros(c * d);
    for k in 0..c * d {
        let comp = k / d;
        sigma_inv_n[(k, k)] = stats.zeroth[comp] / ubm.variances()[k];
        sigma_inv_f[k] =
            (stats.first[k] - stats.zeroth[comp] * ubm.means()[k]) / ubm.variances()[k];
    }
    let l = DMatrix::identity(r, r) + t.transpose() * sigma_inv_n * &t;
    let cov = l.try_inverse().unwrap();
    let want = &cov * t.transpose() * sigma_inv_f;
    let (got, got_cov) = extractor.extract_with_covariance(stats).unwrap();
    for k in 0..r {
        assert!(
            (got[k] - want[k]).abs() < 1e-5 * (1.0 + want[k].abs()),
            "{got:?} vs {want}"
        );
    }
    // The extractor keeps its derived terms in f32 (relative rounding 6e-8).
    assert!((&got_cov - &cov).norm() < 1e-5 * cov.norm());
}

/// Cosines of the principal angles between the column spaces of `a` and `b` (ascending).
fn principal_cosines(a: &DMatrix<f64>, b: &DMatrix<f64>) -> Vec<f64> {
    let qa = a.clone().qr().q();
    let qb = b.clone().qr().q();
    let mut s: Vec<f64> = (qa.transpose() * qb)
        .singular_values()
        .iter()
        .copied()
        .collect();
    s.sort_by(f64::total_cmp);
    s
}

#[test]
fn em_increases_the_likelihood_and_recovers_the_subspace() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (c, d, r) = (8, 3, 3);
    let ubm = random_ubm(c, d, &mut rng);
    let t_true = DMatrix::from_fn(c * d, r, |_, _| 0.6 * normal(&mut rng));
    let stats = synthetic_stats(&ubm, &t_true, 400, 200, &mut rng);
    for min_divergence in [true, false] {
        let options = IvectorTrainOptions {
            dim: r,
            iterations: 12,
            min_divergence,
            ..IvectorTrainOptions::default()
        };
        let (model, history) = IvectorExtractor::train(&ubm, &stats, &options).unwrap();
        for pair in history.windows(2) {
            assert!(
                pair[1] >= pair[0] - 1e-9,
                "objective decreased: {history:?}"
            );
        }
        let final_objective = model.objective(&stats).unwrap();
        assert!(final_objective >= history[history.len() - 1] - 1e-9);
        let cosines = principal_cosines(&model.total_variability(), &t_true);
        assert!(
            cosines[0] > 0.98,
            "min-div {min_divergence}: cosines {cosines:?}"
        );
    }
    // The true model is a good fit too: the trained one is at least as likely on its data.
    let truth = IvectorExtractor::from_total_variability(&ubm, &t_true).unwrap();
    let options = IvectorTrainOptions {
        dim: r,
        iterations: 12,
        ..IvectorTrainOptions::default()
    };
    let (model, _) = IvectorExtractor::train(&ubm, &stats, &options).unwrap();
    assert!(model.objective(&stats).unwrap() >= truth.objective(&stats).unwrap() - 1e-3);
}

#[test]
fn training_does_not_depend_on_the_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let ubm = random_ubm(4, 2, &mut rng);
    let t = DMatrix::from_fn(8, 2, |_, _| normal(&mut rng));
    let stats = synthetic_stats(&ubm, &t, 150, 40, &mut rng);
    let options = IvectorTrainOptions {
        dim: 2,
        iterations: 3,
        ..IvectorTrainOptions::default()
    };
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| IvectorExtractor::train(&ubm, &stats, &options).unwrap())
    };
    let (a, ha) = run(1);
    let (b, hb) = run(3);
    assert_eq!(ha, hb);
    assert_eq!(a, b);
    // Serialisation round trip recomputes the derived terms identically.
    let bytes = postcard::to_stdvec(&a).unwrap();
    let back: IvectorExtractor = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, a);
}

#[test]
fn lda_finds_the_discriminant_direction() {
    // Two classes in 4-D with a correlated within-class covariance W; the Fisher direction is
    // W⁻¹(μ₁ − μ₀), not μ₁ − μ₀.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let m = DMatrix::from_fn(4, 4, |_, _| normal(&mut rng));
    let w_chol = &m * 0.7 + DMatrix::identity(4, 4);
    let w = &w_chol * w_chol.transpose();
    let delta = DVector::from_vec(vec![1.0, -0.5, 0.3, 0.8]);
    let mut vectors = Vec::new();
    let mut labels = Vec::new();
    for i in 0..20_000 {
        let class = i % 2;
        let noise = &w_chol * DVector::from_fn(4, |_, _| normal(&mut rng));
        let x = if class == 1 { noise + &delta } else { noise };
        vectors.push(x.as_slice().to_vec());
        labels.push(class);
    }
    let lda = Lda::train(&vectors, &labels, 1).unwrap();
    let direction = lda.transform_matrix().row(0).transpose();
    let fisher = w.try_inverse().unwrap() * &delta;
    let cosine = direction.dot(&fisher).abs() / (direction.norm() * fisher.norm());
    assert!(cosine > 0.995, "cosine {cosine}");
    assert_eq!(lda.apply(&vectors[0]).unwrap().len(), 1);
    assert!(Lda::train(&vectors, &labels, 5).is_err());
}

#[test]
fn wccn_whitens_the_within_class_covariance_and_centring_removes_the_mean() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mix = DMatrix::from_fn(3, 3, |_, _| normal(&mut rng)) + DMatrix::identity(3, 3) * 2.0;
    let mut vectors = Vec::new();
    let mut labels = Vec::new();
    for s in 0..50 {
        let centre = DVector::from_fn(3, |_, _| 5.0 * normal(&mut rng));
        for _ in 0..20 {
            vectors.push(
                (&centre + &mix * DVector::from_fn(3, |_, _| normal(&mut rng)))
                    .as_slice()
                    .to_vec(),
            );
            labels.push(s);
        }
    }
    let wccn = Wccn::train(&vectors, &labels).unwrap();
    let out: Vec<Vec<f64>> = vectors.iter().map(|v| wccn.apply(v).unwrap()).collect();
    // Average per-class covariance after WCCN, computed directly.
    let mut within = DMatrix::<f64>::zeros(3, 3);
    for s in 0..50 {
        let class: Vec<&Vec<f64>> = out[s * 20..(s + 1) * 20].iter().collect();
        let mean = class
            .iter()
            .fold(DVector::zeros(3), |a, v| a + DVector::from_column_slice(v))
            / 20.0;
        for v in &class {
            let r = DVector::from_column_slice(v) - &mean;
            within += &r * r.transpose() / 20.0;
        }
    }
    within /= 50.0;
    assert!((within - DMatrix::identity(3, 3)).norm() < 1e-9);

    let centring = MeanCentering::train(&vectors).unwrap();
    let mut sum = [0.0; 3];
    for v in &vectors {
        let mut x = v.clone();
        centring.apply(&mut x).unwrap();
        for k in 0..3 {
            sum[k] += x[k];
        }
    }
    assert!(sum.iter().all(|s| s.abs() < 1e-9));
}

#[test]
fn length_normalisation_sets_the_norm() {
    let mut x = vec![3.0, 4.0];
    length_normalize(&mut x, 1.0);
    assert!((x[0] - 0.6).abs() < 1e-15 && (x[1] - 0.8).abs() < 1e-15);
    let mut zero = vec![0.0; 3];
    length_normalize(&mut zero, 2.0);
    assert_eq!(zero, vec![0.0; 3]);
}

#[test]
fn bad_inputs_are_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let ubm = random_ubm(3, 2, &mut rng);
    assert!(UbmParams::new(vec![1.0], vec![0.0; 2], vec![0.0, 1.0], 2).is_err());
    assert!(UbmParams::new(vec![1.0], vec![0.0; 3], vec![1.0; 2], 2).is_err());
    assert!(IvectorExtractor::from_total_variability(&ubm, &DMatrix::zeros(5, 2)).is_err());
    let extractor = IvectorExtractor::from_total_variability(&ubm, &DMatrix::zeros(6, 2)).unwrap();
    assert!(matches!(
        extractor.extract(&BaumWelchStats::zeros(4, 2)),
        Err(IvectorError::Shape { .. })
    ));
    let mut bad = BaumWelchStats::zeros(3, 2);
    bad.first[0] = f64::NAN;
    assert!(extractor.extract(&bad).is_err());
    let options = IvectorTrainOptions {
        dim: 0,
        ..IvectorTrainOptions::default()
    };
    assert!(IvectorExtractor::train(&ubm, &[BaumWelchStats::zeros(3, 2)], &options).is_err());
    assert!(matches!(
        IvectorExtractor::train(
            &ubm,
            &[BaumWelchStats::zeros(3, 2)],
            &IvectorTrainOptions::default()
        ),
        Err(IvectorError::NotEnoughData { .. })
    ));
}
