use super::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn random_matrix(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    DMatrix::from_fn(rows, cols, |_, _| StandardNormal.sample(rng))
}

fn random_spd(d: usize, floor: f64, rng: &mut ChaCha8Rng) -> DMatrix<f64> {
    let m = random_matrix(d, d, rng);
    &m * m.transpose() / d as f64 + DMatrix::identity(d, d) * floor
}

fn sample_gaussian(cov_chol: &DMatrix<f64>, rng: &mut ChaCha8Rng) -> DVector<f64> {
    let z = DVector::from_fn(cov_chol.nrows(), |_, _| StandardNormal.sample(rng));
    cov_chol * z
}

/// Vectors from a known two-covariance model: `speakers` × `per_speaker`.
fn synthetic(
    mean: &DVector<f64>,
    between: &DMatrix<f64>,
    within: &DMatrix<f64>,
    speakers: usize,
    per_speaker: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<Vec<f64>>, Vec<usize>) {
    let lb = between.clone().cholesky().unwrap().l();
    let lw = within.clone().cholesky().unwrap().l();
    let mut vectors = Vec::new();
    let mut labels = Vec::new();
    for s in 0..speakers {
        let y = sample_gaussian(&lb, rng);
        for _ in 0..per_speaker {
            let x = mean + &y + sample_gaussian(&lw, rng);
            vectors.push(x.as_slice().to_vec());
            labels.push(s);
        }
    }
    (vectors, labels)
}

/// Gaussian log density, the slow textbook way (LU inverse and determinant).
fn log_gauss(x: &DVector<f64>, mean: &DVector<f64>, cov: &DMatrix<f64>) -> f64 {
    let r = x - mean;
    let inv = cov.clone().try_inverse().unwrap();
    let det = cov.determinant();
    -0.5 * (r.len() as f64 * (2.0 * std::f64::consts::PI).ln()
        + det.ln()
        + (r.transpose() * inv * &r)[0])
}

/// Brute-force LLR: the n enrollment vectors and the test stacked into one Gaussian vector, with
/// the full joint covariance under each hypothesis.
fn brute_llr(
    mean: &[f64],
    b: &DMatrix<f64>,
    w: &DMatrix<f64>,
    enroll: &[Vec<f64>],
    test: &[f64],
) -> f64 {
    let d = mean.len();
    let n = enroll.len();
    let total = (n + 1) * d;
    let mut stacked = DVector::zeros(total);
    let mut mu = DVector::zeros(total);
    for (i, v) in enroll
        .iter()
        .chain(std::iter::once(&test.to_vec()))
        .enumerate()
    {
        stacked.rows_mut(i * d, d).copy_from_slice(v);
        mu.rows_mut(i * d, d).copy_from_slice(mean);
    }
    let joint = |same: bool| {
        let mut cov = DMatrix::zeros(total, total);
        for i in 0..=n {
            for j in 0..=n {
                let linked = i == j || (i < n && j < n) || same;
                if linked {
                    let mut block = b.clone();
                    if i == j {
                        block += w;
                    }
                    cov.view_mut((i * d, j * d), (d, d)).copy_from(&block);
                }
            }
        }
        cov
    };
    log_gauss(&stacked, &mu, &joint(true)) - log_gauss(&stacked, &mu, &joint(false))
}

fn model(d: usize, seed: u64) -> (DVector<f64>, DMatrix<f64>, DMatrix<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mean = DVector::from_fn(d, |_, _| StandardNormal.sample(&mut rng));
    let between = random_spd(d, 0.3, &mut rng) * 2.0;
    let within = random_spd(d, 0.2, &mut rng);
    (mean, between, within)
}

#[test]
fn llr_matches_brute_force_joint_gaussian_and_is_symmetric() {
    let (mean, b, w) = model(4, 1);
    let plda = Plda::from_parameters(mean.as_slice(), &b, &w).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (vectors, _) = synthetic(&mean, &b, &w, 3, 3, &mut rng);
    for n in 1..=3 {
        let enroll = &vectors[..n];
        let test = &vectors[5];
        let got = plda.llr(&plda.enroll(enroll).unwrap(), test).unwrap();
        let want = brute_llr(mean.as_slice(), &b, &w, enroll, test);
        assert!(
            (got - want).abs() < 1e-9 * (1.0 + want.abs()),
            "n={n}: {got} vs {want}"
        );
    }
    for i in 0..vectors.len() {
        for j in 0..vectors.len() {
            let ab = plda
                .llr(&plda.enroll(&vectors[i..=i]).unwrap(), &vectors[j])
                .unwrap();
            let ba = plda
                .llr(&plda.enroll(&vectors[j..=j]).unwrap(), &vectors[i])
                .unwrap();
            assert!((ab - ba).abs() < 1e-10 * (1.0 + ab.abs()), "{ab} vs {ba}");
        }
    }
}

#[test]
fn batched_scorer_equals_pairwise_llr_with_mixed_enrollment_counts() {
    let (mean, b, w) = model(6, 3);
    let plda = Plda::from_parameters(mean.as_slice(), &b, &w).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (vectors, _) = synthetic(&mean, &b, &w, 12, 4, &mut rng);
    let enrollments: Vec<PldaEnrollment> = (0..12)
        .map(|s| plda.enroll(&vectors[s * 4..s * 4 + 1 + s % 4]).unwrap())
        .collect();
    let scorer = PldaScorer::new(&plda, &enrollments).unwrap();
    assert_eq!(scorer.len(), 12);
    // Enrolling from the averaged vectors gives the same enrollment.
    let average: Vec<f64> = (0..6)
        .map(|k| vectors[8..11].iter().map(|v| v[k]).sum::<f64>() / 3.0)
        .collect();
    let from_mean = plda.enroll_from_mean(&average, 3).unwrap();
    for (a, b) in from_mean.mean.iter().zip(&enrollments[2].mean) {
        assert!((a - b).abs() < 1e-12);
    }
    assert_eq!(from_mean.count, enrollments[2].count);
    let test = &vectors[7];
    let batch = scorer.score(&plda, test).unwrap();
    for (e, got) in enrollments.iter().zip(&batch) {
        let want = plda.llr(e, test).unwrap();
        assert!(
            (got - want).abs() < 1e-10 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }
    let mut short = vec![0.0; 3];
    assert!(scorer
        .score_transformed_into(&plda.transform(test).unwrap(), &mut short)
        .is_err());
}

#[test]
fn em_recovers_a_known_model_and_its_llrs() {
    let d = 4;
    let (mean, b, w) = model(d, 5);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let (vectors, labels) = synthetic(&mean, &b, &w, 3000, 4, &mut rng);
    let options = PldaOptions {
        iterations: 30,
        ..PldaOptions::default()
    };
    let trained = Plda::train(&vectors, &labels, &options).unwrap();
    let rel = |a: &DMatrix<f64>, t: &DMatrix<f64>| (a - t).norm() / t.norm();
    assert!(
        rel(trained.between_covariance(), &b) < 0.06,
        "B error {}",
        rel(trained.between_covariance(), &b)
    );
    assert!(
        rel(trained.within_covariance(), &w) < 0.03,
        "W error {}",
        rel(trained.within_covariance(), &w)
    );
    // LLRs of fresh trials: the trained model's LLR approaches the optimal (true-model) LLR.
    let truth = Plda::from_parameters(mean.as_slice(), &b, &w).unwrap();
    let (fresh, _) = synthetic(&mean, &b, &w, 200, 3, &mut rng);
    let mut diffs = Vec::new();
    let mut spread = Vec::new();
    for s in 0..200 {
        let enroll_true = truth.enroll(&fresh[s * 3..s * 3 + 2]).unwrap();
        let enroll_trained = trained.enroll(&fresh[s * 3..s * 3 + 2]).unwrap();
        for test in [&fresh[s * 3 + 2], &fresh[((s + 1) % 200) * 3 + 2]] {
            let t = truth.llr(&enroll_true, test).unwrap();
            let e = trained.llr(&enroll_trained, test).unwrap();
            diffs.push((t - e).abs());
            spread.push(t);
        }
    }
    let mean_llr = spread.iter().sum::<f64>() / spread.len() as f64;
    let std_llr =
        (spread.iter().map(|x| (x - mean_llr).powi(2)).sum::<f64>() / spread.len() as f64).sqrt();
    let mean_diff = diffs.iter().sum::<f64>() / diffs.len() as f64;
    assert!(
        mean_diff < 0.05 * std_llr,
        "mean |ΔLLR| {mean_diff}, LLR std {std_llr}"
    );
}

#[test]
fn em_log_likelihood_never_decreases() {
    let (mean, b, w) = model(3, 7);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (vectors, labels) = synthetic(&mean, &b, &w, 60, 3, &mut rng);
    for speaker_rank in [None, Some(2), Some(1)] {
        let mut last = f64::NEG_INFINITY;
        for iterations in 1..=6 {
            let plda = Plda::train(
                &vectors,
                &labels,
                &PldaOptions {
                    iterations,
                    speaker_rank,
                },
            )
            .unwrap();
            let ll = plda.log_likelihood(&vectors, &labels).unwrap();
            assert!(
                ll >= last - 1e-8 * last.abs(),
                "rank {speaker_rank:?}, iteration {iterations}: {ll} < {last}"
            );
            last = ll;
        }
    }
    // The trained model explains its data better than the true one (ML on a finite sample) ...
    let truth = Plda::from_parameters(mean.as_slice(), &b, &w).unwrap();
    let long = Plda::train(
        &vectors,
        &labels,
        &PldaOptions {
            iterations: 50,
            speaker_rank: None,
        },
    )
    .unwrap();
    assert!(
        long.log_likelihood(&vectors, &labels).unwrap()
            > truth.log_likelihood(&vectors, &labels).unwrap()
    );
}

#[test]
fn log_likelihood_matches_brute_force_joint_density() {
    let (mean, b, w) = model(3, 9);
    let plda = Plda::from_parameters(mean.as_slice(), &b, &w).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let (vectors, labels) = synthetic(&mean, &b, &w, 2, 3, &mut rng);
    let mut want = 0.0;
    for s in 0..2 {
        let d = 3;
        let mut stacked = DVector::zeros(9);
        let mut mu = DVector::zeros(9);
        let mut cov = DMatrix::zeros(9, 9);
        for i in 0..3 {
            stacked
                .rows_mut(i * d, d)
                .copy_from_slice(&vectors[s * 3 + i]);
            mu.rows_mut(i * d, d).copy_from(&mean);
            for j in 0..3 {
                let block = if i == j { &b + &w } else { b.clone() };
                cov.view_mut((i * d, j * d), (d, d)).copy_from(&block);
            }
        }
        want += log_gauss(&stacked, &mu, &cov);
    }
    let got = plda.log_likelihood(&vectors, &labels).unwrap();
    assert!((got - want).abs() < 1e-9 * want.abs(), "{got} vs {want}");
}

#[test]
fn speaker_rank_limits_the_between_class_rank() {
    let d = 5;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let phi = random_matrix(d, 2, &mut rng);
    let b = &phi * phi.transpose();
    let w = random_spd(d, 0.3, &mut rng);
    // Sample with a rank-2 speaker factor.
    let lw = w.clone().cholesky().unwrap().l();
    let mut vectors = Vec::new();
    let mut labels = Vec::new();
    for s in 0..1500 {
        let y = &phi * DVector::from_fn(2, |_, _| StandardNormal.sample(&mut rng));
        for _ in 0..4 {
            vectors.push((&y + sample_gaussian(&lw, &mut rng)).as_slice().to_vec());
            labels.push(s);
        }
    }
    let plda = Plda::train(
        &vectors,
        &labels,
        &PldaOptions {
            iterations: 30,
            speaker_rank: Some(2),
        },
    )
    .unwrap();
    let psi = plda.between_diagonal();
    assert!(psi[2..].iter().all(|&p| p == 0.0));
    assert!(psi[1] > 0.1);
    let rel = (plda.between_covariance() - &b).norm() / b.norm();
    assert!(rel < 0.1, "B error {rel}");
}

#[test]
fn bad_inputs_are_errors() {
    let v = vec![vec![0.0, 1.0], vec![1.0, 0.0], vec![2.0]];
    assert!(matches!(
        Plda::train(&v, &[0, 0, 1], &PldaOptions::default()),
        Err(PldaError::Dimension { .. })
    ));
    let v = vec![vec![0.0, 1.0], vec![1.0, 0.5]];
    assert!(matches!(
        Plda::train(&v, &[0, 0], &PldaOptions::default()),
        Err(PldaError::NotEnoughData { .. })
    ));
    let (mean, b, w) = model(2, 1);
    let plda = Plda::from_parameters(mean.as_slice(), &b, &w).unwrap();
    assert!(plda.enroll::<Vec<f64>>(&[]).is_err());
    assert!(plda.transform(&[1.0]).is_err());
    assert!(plda.transform(&[1.0, f64::NAN]).is_err());
    let bytes = postcard::to_stdvec(&plda).unwrap();
    let back: Plda = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, plda);
}

/// End to end on synthetic calls: statistics → T training → i-vectors → centring, LDA → PLDA → calibration → metrics. The latent vector of a session is w = y + z, with the
/// speaker part y in a 6-dimensional subspace of the 10 and session noise z in all 10; the
/// pipeline (which must discover the subspace with LDA) should come close to the EER of the
/// oracle PLDA applied to the true w, and calibration should come close to min Cllr.
#[test]
fn synthetic_pipeline_approaches_the_oracle() {
    use crate::calibration::{Calibration, CalibrationOptions};
    use crate::gmm::BaumWelchStats;
    use crate::ivector::{IvectorExtractor, IvectorTrainOptions, Lda, MeanCentering, UbmParams};
    use crate::metrics::{cllr, eer, min_cllr};
    use rand::Rng;

    fn gauss(rng: &mut ChaCha8Rng) -> f64 {
        StandardNormal.sample(rng)
    }
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (c, d, r, speaker_rank) = (16, 4, 10, 6);
    let session_std = 0.8;
    let ubm = UbmParams::new(
        vec![1.0 / c as f64; c],
        (0..c * d).map(|_| 3.0 * gauss(&mut rng)).collect(),
        vec![1.0; c * d],
        d,
    )
    .unwrap();
    let t_true = random_matrix(c * d, r, &mut rng) * 0.5;
    let session = |speaker: &DVector<f64>, rng: &mut ChaCha8Rng| {
        let w = speaker + DVector::from_fn(r, |_, _| session_std * gauss(rng));
        let shift = &t_true * &w;
        let mut stats = BaumWelchStats::zeros(c, d);
        for _ in 0..150 {
            let comp = rng.random_range(0..c);
            stats.zeroth[comp] += 1.0;
            for j in 0..d {
                let idx = comp * d + j;
                stats.first[idx] += ubm.means()[idx] + shift[idx] + gauss(rng);
            }
        }
        (stats, w.as_slice().to_vec())
    };
    let corpus = |speakers: usize, sessions: usize, rng: &mut ChaCha8Rng| {
        let mut out = Vec::new();
        for s in 0..speakers {
            let speaker =
                DVector::from_fn(r, |k, _| if k < speaker_rank { gauss(rng) } else { 0.0 });
            for _ in 0..sessions {
                let (stats, w) = session(&speaker, rng);
                out.push((s, stats, w));
            }
        }
        out
    };
    let train = corpus(400, 4, &mut rng);
    let eval = corpus(300, 3, &mut rng);
    let train_stats: Vec<BaumWelchStats> = train.iter().map(|(_, st, _)| st.clone()).collect();
    let options = IvectorTrainOptions {
        dim: r,
        iterations: 6,
        ..IvectorTrainOptions::default()
    };
    let (extractor, _) = IvectorExtractor::train(&ubm, &train_stats, &options).unwrap();
    let train_iv: Vec<Vec<f64>> = train_stats
        .iter()
        .map(|st| extractor.extract(st).unwrap())
        .collect();
    let labels: Vec<usize> = train.iter().map(|(s, _, _)| *s).collect();
    let centring = MeanCentering::train(&train_iv).unwrap();
    let lda = Lda::train(&train_iv, &labels, speaker_rank).unwrap();
    let post = |iv: &[f64]| {
        let mut x = iv.to_vec();
        centring.apply(&mut x).unwrap();
        // No length normalisation: it helps heavy-tailed real i-vectors, but on these exactly
        // Gaussian ones it discards information (the norm), moving the pipeline off the oracle.
        lda.apply(&x).unwrap()
    };
    let train_post: Vec<Vec<f64>> = train_iv.iter().map(|v| post(v)).collect();
    let plda = Plda::train(&train_post, &labels, &PldaOptions::default()).unwrap();
    let eval_post: Vec<Vec<f64>> = eval
        .iter()
        .map(|(_, st, _)| post(&extractor.extract(st).unwrap()))
        .collect();
    let eval_true: Vec<Vec<f64>> = eval.iter().map(|(_, _, w)| w.clone()).collect();
    let mut between = DMatrix::zeros(r, r);
    for k in 0..speaker_rank {
        between[(k, k)] = 1.0;
    }
    let oracle = Plda::from_parameters(
        &vec![0.0; r],
        &between,
        &(DMatrix::identity(r, r) * session_std * session_std),
    )
    .unwrap();
    // Enrol sessions 0 and 1 of each speaker; test every speaker's session 2 against all.
    let trials = |model: &Plda, vectors: &[Vec<f64>]| {
        let enrollments: Vec<PldaEnrollment> = (0..300)
            .map(|s| model.enroll(&vectors[s * 3..s * 3 + 2]).unwrap())
            .collect();
        let scorer = PldaScorer::new(model, &enrollments).unwrap();
        let mut scores = Vec::new();
        let mut is_target = Vec::new();
        for t in 0..300 {
            let row = scorer.score(model, &vectors[t * 3 + 2]).unwrap();
            for (s, score) in row.into_iter().enumerate() {
                scores.push(score);
                is_target.push(s == t);
            }
        }
        (scores, is_target)
    };
    let (scores, is_target) = trials(&plda, &eval_post);
    let (oracle_scores, _) = trials(&oracle, &eval_true);
    let e = eer(&scores, &is_target).unwrap();
    let e_oracle = eer(&oracle_scores, &is_target).unwrap();
    let cal = Calibration::train(&scores, &is_target, &CalibrationOptions::default()).unwrap();
    let llrs: Vec<f64> = scores.iter().map(|&s| cal.apply(s)).collect();
    let c_act = cllr(&llrs, &is_target).unwrap();
    let c_min = min_cllr(&scores, &is_target).unwrap();
    let c_oracle = cllr(&oracle_scores, &is_target).unwrap();
    assert!(e <= e_oracle + 0.02, "pipeline EER {e}, oracle {e_oracle}");
    assert!(
        c_act <= c_oracle + 0.05,
        "pipeline Cllr {c_act}, oracle {c_oracle}"
    );
    assert!(
        c_act >= c_min && c_act - c_min < 0.05,
        "Cllr {c_act}, min Cllr {c_min}"
    );
}
