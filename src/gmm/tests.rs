//! Tests of the GMM module against independent oracles (naive f64 formulas, brute force, theory).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::*;
use crate::features::FeatureMatrix;

/// A known mixture: weights, means (C × D), standard deviations (C × D).
pub(crate) struct Truth {
    pub dim: usize,
    pub weights: Vec<f64>,
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
}

impl Truth {
    pub(crate) fn well_separated(components: usize, dim: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let raw: Vec<f64> = (0..components)
            .map(|_| rng.random_range(1.0..2.0))
            .collect();
        let sum: f64 = raw.iter().sum();
        let weights = raw.iter().map(|w| w / sum).collect();
        // Means on a grid 12 apart in the first dimension, random elsewhere; stds in [0.5, 1.5].
        let means = (0..components * dim)
            .map(|i| {
                let (c, k) = (i / dim, i % dim);
                if k == 0 {
                    12.0 * c as f64
                } else {
                    rng.random_range(-3.0..3.0)
                }
            })
            .collect();
        let stds = (0..components * dim)
            .map(|_| rng.random_range(0.5..1.5))
            .collect();
        Truth {
            dim,
            weights,
            means,
            stds,
        }
    }

    pub(crate) fn sample(&self, frames: usize, seed: u64) -> FeatureMatrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let mut m = FeatureMatrix::with_capacity(self.dim, frames);
        let mut row = vec![0.0_f32; self.dim];
        for _ in 0..frames {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut c = self.weights.len() - 1;
            for (i, w) in self.weights.iter().enumerate() {
                acc += w;
                if u < acc {
                    c = i;
                    break;
                }
            }
            for (k, r) in row.iter_mut().enumerate() {
                let i = c * self.dim + k;
                let z: f64 = normal.sample(&mut rng);
                *r = (self.means[i] + self.stds[i] * z) as f32;
            }
            m.push_row(&row);
        }
        m
    }

    pub(crate) fn model(&self) -> DiagGmm {
        DiagGmm::new(
            self.dim,
            self.weights.iter().map(|&w| w as f32).collect(),
            self.means.iter().map(|&m| m as f32).collect(),
            self.stds.iter().map(|&s| (s * s) as f32).collect(),
        )
        .unwrap()
    }
}

/// Naive f64 density: Σ_c w_c Π_d (2π σ²)^(−½) exp(−(x−μ)²/(2σ²)), then ln — no log-domain tricks
/// (fine for the low dimensions used here).
pub(crate) fn naive_log_density(gmm: &DiagGmm, x: &[f32]) -> f64 {
    let d = gmm.dim();
    let vars: Vec<f64> = gmm.inv_vars().iter().map(|&iv| 1.0 / iv as f64).collect();
    let mut p = 0.0_f64;
    for c in 0..gmm.num_components() {
        let mut dens = gmm.weights()[c] as f64;
        for k in 0..d {
            let v = vars[c * d + k];
            let diff = x[k] as f64 - gmm.means()[c * d + k] as f64;
            dens *= (-diff * diff / (2.0 * v)).exp() / (2.0 * std::f64::consts::PI * v).sqrt();
        }
        p += dens;
    }
    p.ln()
}

#[test]
fn log_likelihood_matches_naive_density() {
    let truth = Truth::well_separated(3, 4, 1);
    let gmm = truth.model();
    let feats = truth.sample(200, 2);
    let batch = gmm.frame_log_likelihoods(&feats).unwrap();
    for (t, x) in feats.rows().enumerate() {
        let want = naive_log_density(&gmm, x);
        let got = gmm.log_likelihood(x).unwrap();
        assert!(
            (got - want).abs() < 1e-9 * want.abs().max(1.0),
            "{got} vs {want}"
        );
        // The GEMM path works in f32.
        assert!(
            (batch[t] - want).abs() < 1e-4 * want.abs().max(1.0),
            "{} vs {want}",
            batch[t]
        );
    }
}

#[test]
fn gconst_matches_kaldi_definition() {
    let truth = Truth::well_separated(2, 3, 3);
    let gmm = truth.model();
    for c in 0..2 {
        let mut want = truth.weights[c].ln();
        for k in 0..3 {
            let i = c * 3 + k;
            let v = (truth.stds[i] * truth.stds[i]) as f32 as f64;
            let m = truth.means[i] as f32 as f64;
            want -= 0.5 * ((2.0 * std::f64::consts::PI).ln() + v.ln() + m * m / v);
        }
        assert!(
            (gmm.gconsts()[c] - want).abs() < 1e-5,
            "{} vs {want}",
            gmm.gconsts()[c]
        );
    }
}

#[test]
fn constructor_rejects_bad_parameters() {
    assert!(matches!(
        DiagGmm::new(0, vec![1.0], vec![], vec![]),
        Err(GmmError::EmptyModel { .. })
    ));
    assert!(matches!(
        DiagGmm::new(2, vec![1.0], vec![0.0], vec![1.0, 1.0]),
        Err(GmmError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        DiagGmm::new(1, vec![0.5, 0.6], vec![0.0, 1.0], vec![1.0, 1.0]),
        Err(GmmError::InvalidParameter { .. })
    ));
    assert!(matches!(
        DiagGmm::new(1, vec![1.0], vec![0.0], vec![-1.0]),
        Err(GmmError::InvalidParameter { .. })
    ));
    assert!(matches!(
        DiagGmm::new(1, vec![1.0], vec![f32::NAN], vec![1.0]),
        Err(GmmError::InvalidParameter { .. })
    ));
    let gmm = DiagGmm::new(1, vec![1.0], vec![0.0], vec![1.0]).unwrap();
    assert!(matches!(
        gmm.log_likelihood(&[0.0, 1.0]),
        Err(GmmError::DimensionMismatch {
            expected: 1,
            actual: 2
        })
    ));
    let nan = FeatureMatrix::from_vec(1, vec![0.0, f32::NAN]).unwrap();
    assert!(matches!(
        gmm.frame_log_likelihoods(&nan),
        Err(GmmError::NonFiniteFeature { frame: 1, dim: 0 })
    ));
}

#[test]
fn serde_round_trip_recomputes_caches() {
    let gmm = Truth::well_separated(3, 5, 4).model();
    let json = serde_json::to_string(&gmm).unwrap();
    let back: DiagGmm = serde_json::from_str(&json).unwrap();
    assert_eq!(back, gmm);
    // Invalid parameters are refused on load.
    let bad = json.replacen("\"weights\":[", "\"weights\":[-", 1);
    assert!(serde_json::from_str::<DiagGmm>(&bad).is_err());
}

#[test]
fn fast_accumulation_matches_f64_reference() {
    let truth = Truth::well_separated(4, 6, 5);
    let feats = truth.sample(3000, 6);
    // A model that overlaps the data, so posteriors are soft.
    let mut gmm_truth = truth.model().to_params();
    gmm_truth.inv_vars.iter_mut().for_each(|iv| *iv *= 0.05);
    let gmm = DiagGmm::try_from(gmm_truth).unwrap();
    let mut fast = AccumDiagGmm::for_model(&gmm);
    gmm.accumulate_stats(&feats, &mut fast).unwrap();
    let mut slow = AccumDiagGmm::for_model(&gmm);
    for x in feats.rows() {
        slow.accumulate_frame(&gmm, x, 1.0).unwrap();
    }
    let close = |a: &[f64], b: &[f64], tol: f64| {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol * y.abs().max(1.0), "{x} vs {y}");
        }
    };
    close(fast.occupancy(), slow.occupancy(), 1e-4);
    close(fast.mean_acc(), slow.mean_acc(), 1e-4);
    close(fast.var_acc(), slow.var_acc(), 1e-4);
    assert!(
        (fast.total_log_likelihood() - slow.total_log_likelihood()).abs()
            < 1e-5 * slow.total_log_likelihood().abs()
    );
    assert_eq!(fast.num_frames(), 3000.0);
    assert!((fast.total_count() - 3000.0).abs() < 1e-2);
}

fn ml_means_from_stats(acc: &AccumDiagGmm) -> Vec<f64> {
    let d = acc.dim();
    (0..acc.num_components() * d)
        .map(|i| acc.mean_acc()[i] / acc.occupancy()[i / d])
        .collect()
}

#[test]
fn map_with_infinite_relevance_returns_ubm_and_zero_relevance_the_ml_means() {
    let truth = Truth::well_separated(3, 4, 7);
    let ubm = truth.model();
    // Speaker data: shifted means.
    let mut spk = Truth::well_separated(3, 4, 7);
    spk.means.iter_mut().for_each(|m| *m += 0.7);
    let feats = spk.sample(2000, 8);
    let mut acc = AccumDiagGmm::for_model(&ubm);
    for x in feats.rows() {
        acc.accumulate_frame(&ubm, x, 1.0).unwrap();
    }
    let all = MapDiagGmmOptions {
        update_weights: true,
        update_variances: true,
        ..MapDiagGmmOptions::default()
    };
    let huge = MapDiagGmmOptions {
        mean_tau: 1e12,
        weight_tau: 1e12,
        variance_tau: 1e12,
        ..all.clone()
    };
    let adapted = map_update(&ubm, &acc, &huge).unwrap();
    for (a, b) in adapted.means().iter().zip(ubm.means()) {
        assert!((a - b).abs() < 1e-5);
    }
    for (a, b) in adapted.inv_vars().iter().zip(ubm.inv_vars()) {
        assert!((a - b).abs() < 1e-5 * b);
    }
    for (a, b) in adapted.weights().iter().zip(ubm.weights()) {
        assert!((a - b).abs() < 1e-6);
    }
    let zero = MapDiagGmmOptions {
        mean_tau: 0.0,
        ..MapDiagGmmOptions::default()
    };
    let ml = map_update(&ubm, &acc, &zero).unwrap();
    for (a, b) in ml.means().iter().zip(ml_means_from_stats(&acc)) {
        assert!(
            (*a as f64 - b).abs() < 1e-4 * b.abs().max(1.0),
            "{a} vs {b}"
        );
    }
    // Mean-only MAP keeps weights and variances bit for bit.
    let default = map_update(&ubm, &acc, &MapDiagGmmOptions::default()).unwrap();
    assert_eq!(default.inv_vars(), ubm.inv_vars());
    assert_eq!(default.weights(), ubm.weights());
    // Relevance MAP interpolates: α = n / (n + τ).
    let d = 4;
    for c in 0..3 {
        let n = acc.occupancy()[c];
        let alpha = n / (n + 16.0);
        for k in 0..d {
            let want = alpha * acc.mean_acc()[c * d + k] / n
                + (1.0 - alpha) * ubm.means()[c * d + k] as f64;
            assert!((default.means()[c * d + k] as f64 - want).abs() < 1e-4);
        }
    }
}

#[test]
fn options_are_validated() {
    let bad_map = MapDiagGmmOptions {
        mean_tau: -1.0,
        ..MapDiagGmmOptions::default()
    };
    assert!(matches!(
        bad_map.validate(),
        Err(GmmError::InvalidOption {
            option: "mean_tau",
            ..
        })
    ));
    let bad_floor = MleDiagGmmOptions {
        variance_floor: VarianceFloor::FractionOfGlobal(0.0),
        ..MleDiagGmmOptions::default()
    };
    assert!(bad_floor.validate().is_err());
    let bad_weight = MleDiagGmmOptions {
        min_weight: f64::NAN,
        ..MleDiagGmmOptions::default()
    };
    assert!(bad_weight.validate().is_err());
    assert!(MleDiagGmmOptions::default().validate().is_ok());
    assert!(MapDiagGmmOptions::default().validate().is_ok());
}

/// Matches estimated components to true ones by their first-dimension mean (the grid).
fn match_components(est: &DiagGmm, truth: &Truth) -> Vec<usize> {
    (0..truth.weights.len())
        .map(|t| {
            let target = truth.means[t * truth.dim];
            (0..est.num_components())
                .min_by(|&a, &b| {
                    let da = (est.mean(a)[0] as f64 - target).abs();
                    let db = (est.mean(b)[0] as f64 - target).abs();
                    da.total_cmp(&db)
                })
                .unwrap()
        })
        .collect()
}

#[test]
fn em_from_perturbed_start_recovers_parameters_and_never_decreases_likelihood() {
    let truth = Truth::well_separated(3, 3, 9);
    let feats = truth.sample(20_000, 10);
    let mut p = truth.model().to_params();
    // Perturb: means off by up to 2, unit variances, uniform weights.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    p.means
        .iter_mut()
        .for_each(|m| *m += rng.random_range(-2.0..2.0));
    p.inv_vars.iter_mut().for_each(|iv| *iv = 1.0);
    p.weights.iter_mut().for_each(|w| *w = 1.0 / 3.0);
    let mut gmm = DiagGmm::try_from(p).unwrap();
    let mut last = f64::NEG_INFINITY;
    for _ in 0..15 {
        let mut acc = AccumDiagGmm::for_model(&gmm);
        gmm.accumulate_stats(&feats, &mut acc).unwrap();
        let ll = acc.average_log_likelihood();
        assert!(
            ll >= last - 1e-6 * last.abs().max(1.0),
            "likelihood decreased: {last} -> {ll}"
        );
        last = ll;
        // The default floor (1 % of the global variance, ~1 here: the grid spreads dimension 0)
        // would bind; this test is about EM itself.
        let opts = MleDiagGmmOptions {
            variance_floor: VarianceFloor::Absolute(1e-3),
            ..MleDiagGmmOptions::default()
        };
        gmm = mle_update(&gmm, &acc, &opts).unwrap().model;
    }
    let order = match_components(&gmm, &truth);
    let d = truth.dim;
    for (t, &c) in order.iter().enumerate() {
        assert!((gmm.weights()[c] as f64 - truth.weights[t]).abs() < 0.02);
        for k in 0..d {
            let i = t * d + k;
            assert!(
                (gmm.mean(c)[k] as f64 - truth.means[i]).abs() < 0.06,
                "mean {c},{k}"
            );
            let var = 1.0 / gmm.inv_var(c)[k] as f64;
            let want = truth.stds[i] * truth.stds[i];
            assert!(
                (var / want - 1.0).abs() < 0.08,
                "var {c},{k}: {var} vs {want}"
            );
        }
    }
}

#[test]
fn mle_removes_dead_components_or_keeps_them() {
    let truth = Truth::well_separated(2, 2, 12);
    let feats = truth.sample(500, 13);
    // A third component far from all data.
    let mut p = truth.model().to_params();
    p.weights = vec![0.45, 0.45, 0.1];
    p.means.extend_from_slice(&[1000.0, 1000.0]);
    p.inv_vars.extend_from_slice(&[1.0, 1.0]);
    let gmm = DiagGmm::try_from(p).unwrap();
    let mut acc = AccumDiagGmm::for_model(&gmm);
    gmm.accumulate_stats(&feats, &mut acc).unwrap();
    let removed = mle_update(&gmm, &acc, &MleDiagGmmOptions::default()).unwrap();
    assert_eq!(removed.dead_components, vec![2]);
    assert_eq!(removed.model.num_components(), 2);
    let kept = mle_update(
        &gmm,
        &acc,
        &MleDiagGmmOptions {
            remove_low_count: false,
            ..MleDiagGmmOptions::default()
        },
    )
    .unwrap();
    assert_eq!(kept.model.num_components(), 3);
    assert_eq!(kept.model.mean(2), &[1000.0, 1000.0]);
    // Even with min_weight = 0 the kept component gets a positive weight.
    let no_floor = MleDiagGmmOptions {
        remove_low_count: false,
        min_weight: 0.0,
        ..MleDiagGmmOptions::default()
    };
    let kept = mle_update(&gmm, &acc, &no_floor).unwrap();
    assert!(kept.model.weights()[2] > 0.0);
}

fn small_train_opts(components: usize, init: UbmInit) -> UbmTrainOptions {
    UbmTrainOptions {
        num_components: components,
        num_iters: 12,
        init,
        max_init_frames: 4000,
        chunk_frames: 256,
        mle: MleDiagGmmOptions {
            variance_floor: VarianceFloor::Absolute(1e-3),
            remove_low_count: false,
            ..MleDiagGmmOptions::default()
        },
        ..UbmTrainOptions::default()
    }
}

#[test]
fn train_ubm_recovers_known_mixtures_with_monotone_likelihood() {
    for (components, seed, init) in [
        (2, 20, UbmInit::KMeansPlusPlus),
        (3, 21, UbmInit::BinarySplit),
        (4, 22, UbmInit::KMeansPlusPlus),
    ] {
        let truth = Truth::well_separated(components, 5, seed);
        let feats = truth.sample(12_000, seed + 100);
        let lls = std::cell::RefCell::new(Vec::new());
        let gmm = train_ubm(&feats, &small_train_opts(components, init), &|_, ll| {
            lls.borrow_mut().push(ll)
        })
        .unwrap();
        let lls = lls.into_inner();
        assert_eq!(lls.len(), 12);
        for w in lls.windows(2) {
            assert!(
                w[1] >= w[0] - 1e-6 * w[0].abs(),
                "EM decreased the likelihood: {lls:?}"
            );
        }
        let order = match_components(&gmm, &truth);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            components,
            "components not matched one to one"
        );
        for (t, &c) in order.iter().enumerate() {
            assert!((gmm.weights()[c] as f64 - truth.weights[t]).abs() < 0.02);
            for k in 0..truth.dim {
                let i = t * truth.dim + k;
                assert!((gmm.mean(c)[k] as f64 - truth.means[i]).abs() < 0.08);
                let var = 1.0 / gmm.inv_var(c)[k] as f64;
                assert!((var / (truth.stds[i] * truth.stds[i]) - 1.0).abs() < 0.1);
            }
        }
    }
}

#[test]
fn train_ubm_is_identical_on_one_and_two_threads() {
    let truth = Truth::well_separated(4, 6, 30);
    let feats = truth.sample(6000, 31);
    for init in [UbmInit::KMeansPlusPlus, UbmInit::BinarySplit] {
        let opts = UbmTrainOptions {
            num_iters: 3,
            ..small_train_opts(8, init)
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| train_ubm(&feats, &opts, &|_, _| {}).unwrap())
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one.to_params(), two.to_params());
    }
}

#[test]
fn train_ubm_rejects_bad_input() {
    let feats = Truth::well_separated(2, 2, 40).sample(10, 41);
    let opts = small_train_opts(16, UbmInit::KMeansPlusPlus);
    assert!(matches!(
        train_ubm(&feats, &opts, &|_, _| {}),
        Err(GmmError::NotEnoughData { .. })
    ));
    let zero = UbmTrainOptions {
        num_components: 0,
        ..UbmTrainOptions::default()
    };
    assert!(matches!(
        train_ubm(&feats, &zero, &|_, _| {}),
        Err(GmmError::InvalidOption { .. })
    ));
}

#[test]
fn dense_f32_statistics_give_accurate_variances() {
    // 8 overlapping components in 6 dimensions: the dense f32 GEMM path.
    let truth = Truth::well_separated(8, 6, 50);
    let feats = truth.sample(4000, 51);
    let mut p = truth.model().to_params();
    p.inv_vars.iter_mut().for_each(|iv| *iv *= 0.01);
    let gmm = DiagGmm::try_from(p).unwrap();
    let mut fast = AccumDiagGmm::for_model(&gmm);
    gmm.accumulate_stats(&feats, &mut fast).unwrap();
    let mut slow = AccumDiagGmm::for_model(&gmm);
    for x in feats.rows() {
        slow.accumulate_frame(&gmm, x, 1.0).unwrap();
    }
    let d = 6;
    for c in 0..8 {
        let (nf, ns) = (fast.occupancy()[c], slow.occupancy()[c]);
        assert!((nf - ns).abs() < 1e-4 * ns.max(1.0));
        for k in 0..d {
            let i = c * d + k;
            let var = |a: &AccumDiagGmm, n: f64| a.var_acc()[i] / n - (a.mean_acc()[i] / n).powi(2);
            let (vf, vs) = (var(&fast, nf), var(&slow, ns));
            assert!(
                (vf - vs).abs() < 1e-4 * vs,
                "component {c} dim {k}: {vf} vs {vs}"
            );
            let (mf, ms) = (fast.mean_acc()[i] / nf, slow.mean_acc()[i] / ns);
            assert!((mf - ms).abs() < 1e-4 * vs.sqrt());
        }
    }
}

/// A UBM with overlapping components and `count` MAP-adapted speakers.
fn ubm_and_speakers(
    count: usize,
    opts: &MapDiagGmmOptions,
    seed: u64,
) -> (DiagGmm, Vec<DiagGmm>, Truth) {
    let truth = Truth::well_separated(8, 7, seed);
    let mut p = truth.model().to_params();
    p.inv_vars.iter_mut().for_each(|iv| *iv *= 0.05);
    let ubm = DiagGmm::try_from(p).unwrap();
    let speakers = (0..count)
        .map(|s| {
            let mut spk = Truth::well_separated(8, 7, seed);
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 1000 + s as u64);
            spk.means
                .iter_mut()
                .for_each(|m| *m += rng.random_range(-1.0..1.0));
            let feats = spk.sample(300, seed * 1000 + 500 + s as u64);
            let mut acc = AccumDiagGmm::for_model(&ubm);
            ubm.accumulate_stats(&feats, &mut acc).unwrap();
            map_update(&ubm, &acc, opts).unwrap()
        })
        .collect();
    (ubm, speakers, truth)
}

#[test]
fn top_c_score_with_all_components_equals_brute_force() {
    let full_map = MapDiagGmmOptions {
        update_weights: true,
        update_variances: true,
        ..MapDiagGmmOptions::default()
    };
    for opts in [MapDiagGmmOptions::default(), full_map] {
        let (ubm, speakers, truth) = ubm_and_speakers(3, &opts, 60);
        let feats = truth.sample(150, 61);
        let sel = ubm
            .gaussian_selection(&feats, ubm.num_components())
            .unwrap();
        let refs: Vec<&DiagGmm> = speakers.iter().collect();
        let bank = score_many(&ubm, &refs, &feats, &sel).unwrap();
        for (s, spk) in speakers.iter().enumerate() {
            let brute: f64 = feats
                .rows()
                .map(|x| naive_log_density(spk, x) - naive_log_density(&ubm, x))
                .sum::<f64>()
                / feats.num_frames() as f64;
            let fast = score_speaker(&ubm, spk, &feats, &sel).unwrap();
            assert!(
                (fast - brute).abs() < 1e-9 * brute.abs().max(1.0),
                "{fast} vs {brute}"
            );
            assert!(
                (bank[s] - brute).abs() < 1e-4 * brute.abs().max(1.0),
                "{} vs {brute}",
                bank[s]
            );
        }
    }
}

#[test]
fn speaker_bank_matches_score_speaker_with_top_5() {
    let full_map = MapDiagGmmOptions {
        update_weights: true,
        update_variances: true,
        ..MapDiagGmmOptions::default()
    };
    for (opts, mean_only) in [(MapDiagGmmOptions::default(), true), (full_map, false)] {
        // More speakers than one scoring block (256), to cover the blocked layout.
        let (ubm, speakers, truth) = ubm_and_speakers(if mean_only { 300 } else { 20 }, &opts, 70);
        let feats = truth.sample(400, 71);
        let sel = ubm.gaussian_selection(&feats, 5).unwrap();
        let refs: Vec<&DiagGmm> = speakers.iter().collect();
        let bank = SpeakerBank::new(&ubm, &refs).unwrap();
        assert_eq!(bank.is_mean_only(), mean_only);
        let scores = bank.score(&feats, &sel).unwrap();
        for (s, spk) in speakers.iter().enumerate() {
            let want = score_speaker(&ubm, spk, &feats, &sel).unwrap();
            assert!(
                (scores[s] - want).abs() < 1e-4 * want.abs().max(1.0),
                "{} vs {want}",
                scores[s]
            );
        }
        let scorer = TopCScorer::new(ubm.clone(), &refs, 5).unwrap();
        assert_eq!(scorer.score(&feats).unwrap(), scores);
        // The UBM scored as a speaker gives LLR 0.
        let zero = SpeakerBank::new(&ubm, &[&ubm])
            .unwrap()
            .score(&feats, &sel)
            .unwrap();
        assert!(zero[0].abs() < 1e-6);
    }
}

#[test]
fn gaussian_selection_picks_the_best_components() {
    let (ubm, _, truth) = ubm_and_speakers(0, &MapDiagGmmOptions::default(), 80);
    let feats = truth.sample(200, 81);
    let sel = ubm.gaussian_selection(&feats, 3).unwrap();
    let mut lls = vec![0.0; ubm.num_components()];
    for (t, x) in feats.rows().enumerate() {
        ubm.component_log_likelihoods(x, &mut lls).unwrap();
        let mut order: Vec<usize> = (0..lls.len()).collect();
        order.sort_by(|&a, &b| lls[b].total_cmp(&lls[a]));
        let got: Vec<usize> = sel.indices(t).iter().map(|&c| c as usize).collect();
        // Ties within f32 rounding may swap; compare the log-likelihood values.
        for (slot, &c) in got.iter().enumerate() {
            assert!(
                (lls[c] - lls[order[slot]]).abs() < 1e-3,
                "frame {t} slot {slot}"
            );
            assert!((sel.component_log_likelihoods(t)[slot] - lls[c]).abs() < 1e-12);
        }
    }
    assert!(matches!(
        ubm.gaussian_selection(&feats, 0),
        Err(GmmError::InvalidOption { .. })
    ));
    assert!(matches!(
        ubm.gaussian_selection(&feats, 9),
        Err(GmmError::InvalidOption { .. })
    ));
    let other = truth.sample(10, 82);
    assert!(matches!(
        score_speaker(&ubm, &ubm, &other, &sel),
        Err(GmmError::SelectionMismatch { .. })
    ));
}

#[test]
fn baum_welch_stats_match_f64_posteriors() {
    let (ubm, _, truth) = ubm_and_speakers(0, &MapDiagGmmOptions::default(), 90);
    let feats = truth.sample(500, 91);
    let mut reference = AccumDiagGmm::for_model(&ubm);
    for x in feats.rows() {
        reference.accumulate_frame(&ubm, x, 1.0).unwrap();
    }
    let full = ubm.baum_welch_stats(&feats, BwPosteriors::Full).unwrap();
    let all = ubm.baum_welch_stats(&feats, BwPosteriors::TopC(8)).unwrap();
    // The full path takes posteriors from f32 log-likelihoods; with this UBM's spread (means up
    // to ~9 σ from the centre) their absolute error is ~1e-4 nats, hence 1e-3 here.
    for stats in [&full, &all] {
        assert_eq!(stats.dim, 7);
        for (a, b) in stats.zeroth.iter().zip(reference.occupancy()) {
            assert!((a - b).abs() < 1e-4 * b.max(1.0));
        }
        for (a, b) in stats.first.iter().zip(reference.mean_acc()) {
            assert!((a - b).abs() < 1e-3 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
    let top2 = ubm.baum_welch_stats(&feats, BwPosteriors::TopC(2)).unwrap();
    assert!((top2.total_count() - 500.0).abs() < 1e-9);
}

#[test]
fn gmm_model_file_round_trip_and_front_end_check() {
    use crate::model_io::{kinds, FrontEndCheck, FrontEndFingerprint, ModelFile, ModelIoError};
    let gmm = Truth::well_separated(5, 4, 100).model();
    let fp = FrontEndFingerprint::new("mfcc", &serde_json::json!({"num_ceps": 20})).unwrap();
    let bytes = gmm
        .to_model_writer(kinds::UBM, Some(fp.clone()))
        .unwrap()
        .to_bytes()
        .unwrap();
    let file = ModelFile::from_bytes(&bytes, kinds::UBM, FrontEndCheck::Require(&fp)).unwrap();
    assert_eq!(DiagGmm::from_model_file(&file).unwrap(), gmm);
    let other = FrontEndFingerprint::new("mfcc", &serde_json::json!({"num_ceps": 13})).unwrap();
    assert!(matches!(
        ModelFile::from_bytes(&bytes, kinds::UBM, FrontEndCheck::Require(&other)),
        Err(ModelIoError::FrontEndMismatch { .. })
    ));
    assert!(matches!(
        ModelFile::from_bytes(&bytes, kinds::SPEAKER_GMM, FrontEndCheck::Ignore),
        Err(ModelIoError::WrongKind { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ubm.qvxm");
    gmm.save(&path, kinds::UBM, Some(fp.clone())).unwrap();
    assert_eq!(
        DiagGmm::load(&path, kinds::UBM, FrontEndCheck::Require(&fp)).unwrap(),
        gmm
    );
    // Valid container, invalid model: negative weight.
    let mut w = crate::model_io::ModelWriter::new(kinds::UBM);
    w.add_f32("weights", &[1], &[-1.0]).unwrap();
    w.add_f32("means", &[1, 1], &[0.0]).unwrap();
    w.add_f32("inv_vars", &[1, 1], &[1.0]).unwrap();
    let bad =
        ModelFile::from_bytes(&w.to_bytes().unwrap(), kinds::UBM, FrontEndCheck::Ignore).unwrap();
    assert!(matches!(
        DiagGmm::from_model_file(&bad),
        Err(ModelIoError::InvalidModel { .. })
    ));
}
