//! Evaluation metrics for detection scores: EER, minDCF, actual DCF, Cllr / min Cllr, DET curves.
//!
//! Scores come as two parallel slices: `scores[i]` and `is_target[i]` (true for a target trial,
//! false for a non-target trial). EER and minDCF follow exactly the definitions of the peer
//! baselines (`shared/tools/baselines/peers_common.py`): trials sorted by score with a stable sort,
//! one operating point after each trial (ties are *not* pooled, so the input order of tied trials
//! matters, as it does there), EER interpolated between the two operating points where
//! P_miss − P_fa changes sign, minDCF normalised by min(C_miss·P_target, C_fa·(1 − P_target)).
//! Cllr and min Cllr follow BOSARIS (min Cllr from the PAV / ROC-convex-hull optimal calibration).

mod det_plot;

pub use det_plot::{DetLayout, DetPlot};

/// Errors of the metric functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// `scores` and `is_target` differ in length.
    #[error("{scores} scores but {labels} target/non-target labels: expected one label per score")]
    LengthMismatch {
        /// Number of scores.
        scores: usize,
        /// Number of labels.
        labels: usize,
    },
    /// A metric needs at least one trial of each class.
    #[error("{targets} target and {nontargets} non-target trials: expected at least one of each")]
    MissingClass {
        /// Number of target trials.
        targets: usize,
        /// Number of non-target trials.
        nontargets: usize,
    },
    /// A score is NaN (or infinite where a finite score is required).
    #[error("score {index} is {value}: expected a finite number")]
    NonFiniteScore {
        /// Index of the offending score.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// Invalid detection-cost parameters.
    #[error("detection cost parameters {what} = {value}: expected {expected}")]
    InvalidCost {
        /// Which parameter.
        what: &'static str,
        /// Its value.
        value: f64,
        /// What was expected.
        expected: &'static str,
    },
    /// A plot could not be rendered (canvas allocation or image encoding failed).
    #[error("rendering the DET plot failed: {reason}")]
    PlotRendering {
        /// What went wrong.
        reason: String,
    },
}

/// Detection-cost function parameters (NIST style).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DcfParams {
    /// Prior probability of a target trial, in (0, 1). Default 0.01.
    pub p_target: f64,
    /// Cost of a miss (false rejection), > 0. Default 1.
    pub c_miss: f64,
    /// Cost of a false alarm (false acceptance), > 0. Default 1.
    pub c_fa: f64,
}

impl Default for DcfParams {
    fn default() -> Self {
        Self {
            p_target: 0.01,
            c_miss: 1.0,
            c_fa: 1.0,
        }
    }
}

impl DcfParams {
    /// Checks 0 < p_target < 1 and positive finite costs.
    pub fn validate(&self) -> Result<(), MetricsError> {
        if !(self.p_target > 0.0 && self.p_target < 1.0) {
            return Err(MetricsError::InvalidCost {
                what: "p_target",
                value: self.p_target,
                expected: "a probability strictly between 0 and 1",
            });
        }
        for (what, value) in [("c_miss", self.c_miss), ("c_fa", self.c_fa)] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(MetricsError::InvalidCost {
                    what,
                    value,
                    expected: "a positive finite cost",
                });
            }
        }
        Ok(())
    }

    /// Effective target prior P̃ = C_miss·P / (C_miss·P + C_fa·(1 − P)).
    pub fn effective_prior(&self) -> f64 {
        let a = self.c_miss * self.p_target;
        a / (a + self.c_fa * (1.0 - self.p_target))
    }

    /// Bayes decision threshold for natural-log LLR scores: ln(C_fa·(1 − P) / (C_miss·P)).
    pub fn bayes_threshold_llr(&self) -> f64 {
        (self.c_fa * (1.0 - self.p_target) / (self.c_miss * self.p_target)).ln()
    }

    /// Normaliser of the DCF: cost of the best trivial system, min(C_miss·P, C_fa·(1 − P)).
    pub fn normalizer(&self) -> f64 {
        (self.c_miss * self.p_target).min(self.c_fa * (1.0 - self.p_target))
    }
}

/// One operating point: miss and false-alarm probabilities (fractions in [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetPoint {
    /// Probability of a miss (target rejected).
    pub p_miss: f64,
    /// Probability of a false alarm (non-target accepted).
    pub p_fa: f64,
}

/// Counts trials per class after checking shapes and finiteness (NaN refused; ±∞ allowed when
/// `allow_infinite`).
fn check(
    scores: &[f64],
    is_target: &[bool],
    allow_infinite: bool,
) -> Result<(usize, usize), MetricsError> {
    if scores.len() != is_target.len() {
        return Err(MetricsError::LengthMismatch {
            scores: scores.len(),
            labels: is_target.len(),
        });
    }
    if let Some((index, &value)) = scores
        .iter()
        .enumerate()
        .find(|(_, s)| s.is_nan() || (!allow_infinite && s.is_infinite()))
    {
        return Err(MetricsError::NonFiniteScore { index, value });
    }
    let targets = is_target.iter().filter(|&&t| t).count();
    let nontargets = is_target.len() - targets;
    if targets == 0 || nontargets == 0 {
        return Err(MetricsError::MissingClass {
            targets,
            nontargets,
        });
    }
    Ok((targets, nontargets))
}

/// The n + 1 operating points of the peers' definition: point k puts the threshold just above the
/// k-th smallest score (stable order), so the first k trials are rejected.
fn operating_points(
    scores: &[f64],
    is_target: &[bool],
    allow_infinite: bool,
) -> Result<(Vec<f64>, Vec<f64>), MetricsError> {
    let (nt, nn) = check(scores, is_target, allow_infinite)?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Stable sort, like numpy's mergesort: ties keep their input order.
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut p_miss = Vec::with_capacity(scores.len() + 1);
    let mut p_fa = Vec::with_capacity(scores.len() + 1);
    p_miss.push(0.0);
    p_fa.push(1.0);
    let (mut cum_tar, mut cum_non) = (0usize, 0usize);
    for &i in &order {
        if is_target[i] {
            cum_tar += 1;
        } else {
            cum_non += 1;
        }
        p_miss.push(cum_tar as f64 / nt as f64);
        p_fa.push(1.0 - cum_non as f64 / nn as f64);
    }
    Ok((p_miss, p_fa))
}

fn eer_from_points(p_miss: &[f64], p_fa: &[f64]) -> f64 {
    let mut best = 0;
    for k in 1..p_miss.len() {
        if (p_miss[k] - p_fa[k]).abs() < (p_miss[best] - p_fa[best]).abs() {
            best = k;
        }
    }
    let mut eer = (p_miss[best] + p_fa[best]) / 2.0;
    for j in [best.checked_sub(1), Some(best)].into_iter().flatten() {
        if j + 1 < p_miss.len() {
            let (a0, b0, a1, b1) = (p_miss[j], p_fa[j], p_miss[j + 1], p_fa[j + 1]);
            if (a0 - b0) * (a1 - b1) <= 0.0 && (a1 - b1) != (a0 - b0) {
                let t = (b0 - a0) / ((a1 - b1) - (a0 - b0));
                eer = a0 + t * (a1 - a0);
                break;
            }
        }
    }
    eer
}

fn min_dcf_from_points(p_miss: &[f64], p_fa: &[f64], params: &DcfParams) -> f64 {
    let min = p_miss
        .iter()
        .zip(p_fa)
        .map(|(&pm, &pf)| {
            params.c_miss * pm * params.p_target + params.c_fa * pf * (1.0 - params.p_target)
        })
        .fold(f64::INFINITY, f64::min);
    min / params.normalizer()
}

/// Equal error rate (fraction in [0, 1]), the peers' interpolated definition.
pub fn eer(scores: &[f64], is_target: &[bool]) -> Result<f64, MetricsError> {
    let (p_miss, p_fa) = operating_points(scores, is_target, true)?;
    Ok(eer_from_points(&p_miss, &p_fa))
}

/// Normalised minimum detection cost over all thresholds (1.0 = no better than a trivial system).
pub fn min_dcf(
    scores: &[f64],
    is_target: &[bool],
    params: &DcfParams,
) -> Result<f64, MetricsError> {
    params.validate()?;
    let (p_miss, p_fa) = operating_points(scores, is_target, true)?;
    Ok(min_dcf_from_points(&p_miss, &p_fa, params))
}

/// EER (fraction) and normalised minDCF in one pass (the pair `peers_common.eer_and_mindcf` returns).
pub fn eer_and_min_dcf(
    scores: &[f64],
    is_target: &[bool],
    params: &DcfParams,
) -> Result<(f64, f64), MetricsError> {
    params.validate()?;
    let (p_miss, p_fa) = operating_points(scores, is_target, true)?;
    Ok((
        eer_from_points(&p_miss, &p_fa),
        min_dcf_from_points(&p_miss, &p_fa, params),
    ))
}

/// Normalised actual DCF of natural-log LLR scores at the Bayes threshold
/// [`DcfParams::bayes_threshold_llr`] (BOSARIS: miss if llr < θ, false alarm if llr ≥ θ).
pub fn actual_dcf(
    llrs: &[f64],
    is_target: &[bool],
    params: &DcfParams,
) -> Result<f64, MetricsError> {
    params.validate()?;
    let (nt, nn) = check(llrs, is_target, true)?;
    let threshold = params.bayes_threshold_llr();
    let (mut misses, mut false_alarms) = (0usize, 0usize);
    for (&llr, &target) in llrs.iter().zip(is_target) {
        if target && llr < threshold {
            misses += 1;
        } else if !target && llr >= threshold {
            false_alarms += 1;
        }
    }
    let p_miss = misses as f64 / nt as f64;
    let p_fa = false_alarms as f64 / nn as f64;
    Ok(
        (params.c_miss * params.p_target * p_miss + params.c_fa * (1.0 - params.p_target) * p_fa)
            / params.normalizer(),
    )
}

/// ln(1 + eˣ), accurate for all x (0 at −∞, +∞ at +∞).
pub(crate) fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Log-likelihood-ratio cost in bits (BOSARIS): ½·[mean over targets of log₂(1 + e^−llr) +
/// mean over non-targets of log₂(1 + e^llr)]. 1.0 for a system that always outputs llr = 0.
pub fn cllr(llrs: &[f64], is_target: &[bool]) -> Result<f64, MetricsError> {
    let (nt, nn) = check(llrs, is_target, true)?;
    let (mut tar_cost, mut non_cost) = (0.0, 0.0);
    for (&llr, &target) in llrs.iter().zip(is_target) {
        if target {
            tar_cost += softplus(-llr);
        } else {
            non_cost += softplus(llr);
        }
    }
    Ok((tar_cost / nt as f64 + non_cost / nn as f64) / (2.0 * std::f64::consts::LN_2))
}

/// Pool-adjacent-violators fit of the 0/1 labels in score order: the trial order (ties ordered
/// pessimistically, targets first, as BOSARIS does) and the blocks (targets in block, trials in
/// block) in increasing-score order. Block boundaries are the vertices of the ROC convex hull.
struct PavFit {
    order: Vec<usize>,
    blocks: Vec<(f64, usize)>,
    targets: usize,
    nontargets: usize,
}

fn pav(scores: &[f64], is_target: &[bool]) -> Result<PavFit, MetricsError> {
    let (targets, nontargets) = check(scores, is_target, true)?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        scores[a]
            .total_cmp(&scores[b])
            .then_with(|| is_target[b].cmp(&is_target[a]))
    });
    let mut blocks: Vec<(f64, usize)> = Vec::with_capacity(order.len());
    for &i in &order {
        let mut block = (if is_target[i] { 1.0 } else { 0.0 }, 1usize);
        while let Some(&(sum, count)) = blocks.last() {
            if sum / count as f64 >= block.0 / block.1 as f64 {
                block = (block.0 + sum, block.1 + count);
                blocks.pop();
            } else {
                break;
            }
        }
        blocks.push(block);
    }
    Ok(PavFit {
        order,
        blocks,
        targets,
        nontargets,
    })
}

/// Optimal (PAV, ROC-convex-hull) monotone calibration of `scores` to natural-log LLRs, as in
/// BOSARIS `opt_loglr`: ties are ordered pessimistically (targets below non-targets) and pooled by
/// PAV. Returned LLRs are in input order and may be ±∞.
pub fn optimal_llrs(scores: &[f64], is_target: &[bool]) -> Result<Vec<f64>, MetricsError> {
    let fit = pav(scores, is_target)?;
    let prior_log_odds = (fit.targets as f64 / fit.nontargets as f64).ln();
    let mut llrs = vec![0.0; scores.len()];
    let mut pos = 0;
    for &(sum, count) in &fit.blocks {
        let posterior_log_odds = if sum == 0.0 {
            f64::NEG_INFINITY
        } else if sum == count as f64 {
            f64::INFINITY
        } else {
            (sum / (count as f64 - sum)).ln()
        };
        for &i in &fit.order[pos..pos + count] {
            llrs[i] = posterior_log_odds - prior_log_odds;
        }
        pos += count;
    }
    Ok(llrs)
}

/// EER of the ROC convex hull (BOSARIS `rocch2eer`): the EER of the best system obtainable by
/// monotone calibration with randomised decisions between hull vertices. Never above [`eer`],
/// and at most 0.5.
pub fn rocch_eer(scores: &[f64], is_target: &[bool]) -> Result<f64, MetricsError> {
    let fit = pav(scores, is_target)?;
    let mut p_miss = Vec::with_capacity(fit.blocks.len() + 1);
    let mut p_fa = Vec::with_capacity(fit.blocks.len() + 1);
    p_miss.push(0.0);
    p_fa.push(1.0);
    let (mut cum_tar, mut cum_non) = (0.0, 0.0);
    for &(sum, count) in &fit.blocks {
        cum_tar += sum;
        cum_non += count as f64 - sum;
        p_miss.push(cum_tar / fit.targets as f64);
        p_fa.push(1.0 - cum_non / fit.nontargets as f64);
    }
    Ok(eer_from_points(&p_miss, &p_fa))
}

/// Minimum Cllr (bits): Cllr after the optimal monotone calibration [`optimal_llrs`].
pub fn min_cllr(scores: &[f64], is_target: &[bool]) -> Result<f64, MetricsError> {
    let llrs = optimal_llrs(scores, is_target)?;
    cllr(&llrs, is_target)
}

/// DET-curve operating points (one per trial plus the all-accept point), in increasing-threshold
/// order: P_miss rises from 0, P_fa falls from 1.
pub fn det_curve(scores: &[f64], is_target: &[bool]) -> Result<Vec<DetPoint>, MetricsError> {
    let (p_miss, p_fa) = operating_points(scores, is_target, true)?;
    Ok(p_miss
        .into_iter()
        .zip(p_fa)
        .map(|(p_miss, p_fa)| DetPoint { p_miss, p_fa })
        .collect())
}

/// All detection metrics of one system on one trial list.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetectionSummary {
    /// Number of target trials.
    pub targets: usize,
    /// Number of non-target trials.
    pub nontargets: usize,
    /// EER (fraction), peers' definition ([`eer`]).
    pub eer: f64,
    /// ROC-convex-hull EER (fraction, [`rocch_eer`]).
    pub rocch_eer: f64,
    /// Normalised minDCF at the given [`DcfParams`].
    pub min_dcf: f64,
    /// Normalised actual DCF at the Bayes threshold, treating scores as natural-log LLRs.
    pub actual_dcf: f64,
    /// Cllr (bits), treating scores as natural-log LLRs.
    pub cllr: f64,
    /// Minimum Cllr (bits).
    pub min_cllr: f64,
}

impl DetectionSummary {
    /// Computes every metric (actual DCF and Cllr are only meaningful for calibrated LLRs).
    pub fn compute(
        scores: &[f64],
        is_target: &[bool],
        params: &DcfParams,
    ) -> Result<Self, MetricsError> {
        let (targets, nontargets) = check(scores, is_target, true)?;
        let (eer, min_dcf) = eer_and_min_dcf(scores, is_target, params)?;
        Ok(Self {
            targets,
            nontargets,
            eer,
            rocch_eer: rocch_eer(scores, is_target)?,
            min_dcf,
            actual_dcf: actual_dcf(scores, is_target, params)?,
            cllr: cllr(scores, is_target)?,
            min_cllr: min_cllr(scores, is_target)?,
        })
    }
}

/// Closed-set identification result: how many tests had their true model ranked first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identification {
    /// Tests whose highest-scoring model is the true one.
    pub correct: usize,
    /// Tests counted (those whose true model is enrolled).
    pub tests: usize,
}

impl Identification {
    /// Top-1 accuracy as a fraction (NaN when no test was counted, as the peers report it).
    pub fn accuracy(&self) -> f64 {
        if self.tests == 0 {
            f64::NAN
        } else {
            self.correct as f64 / self.tests as f64
        }
    }
}

/// Closed-set top-1 identification (peers' definition): `scores_per_test[j][m]` is test j's
/// score against model m; a test counts when `true_model[j]` is `Some`, and is correct when its
/// first highest-scoring model (numpy `argmax`) is the true one.
pub fn top1_identification<S: AsRef<[f64]>>(
    scores_per_test: &[S],
    true_model: &[Option<usize>],
) -> Result<Identification, MetricsError> {
    if scores_per_test.len() != true_model.len() {
        return Err(MetricsError::LengthMismatch {
            scores: scores_per_test.len(),
            labels: true_model.len(),
        });
    }
    let mut result = Identification {
        correct: 0,
        tests: 0,
    };
    for (row, truth) in scores_per_test.iter().zip(true_model) {
        let Some(truth) = *truth else { continue };
        let row = row.as_ref();
        if let Some((index, &value)) = row.iter().enumerate().find(|(_, s)| s.is_nan()) {
            return Err(MetricsError::NonFiniteScore { index, value });
        }
        let mut best = 0;
        for (m, &score) in row.iter().enumerate() {
            if score > row[best] {
                best = m;
            }
        }
        result.tests += 1;
        if !row.is_empty() && best == truth {
            result.correct += 1;
        }
    }
    Ok(result)
}

/// Inverse of the standard normal CDF (probit), |relative error| < 1.2e-9 on (0, 1)
/// (Acklam's rational approximation), plenty for plotting. ±∞ at 0 and 1.
pub fn probit(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    fn gaussian_trials(n_tar: usize, n_non: usize, shift: f64, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n_tar + n_non {
            let target = i < n_tar;
            let s: f64 = normal.sample(&mut rng);
            scores.push(if target { s + shift } else { s });
            labels.push(target);
        }
        (scores, labels)
    }

    /// Error rates at one threshold, counted directly (miss: target ≤ threshold).
    fn brute_rates(scores: &[f64], labels: &[bool], threshold: f64) -> (f64, f64) {
        let nt = labels.iter().filter(|&&t| t).count() as f64;
        let nn = labels.len() as f64 - nt;
        let miss = scores
            .iter()
            .zip(labels)
            .filter(|(&s, &t)| t && s <= threshold)
            .count() as f64;
        let fa = scores
            .iter()
            .zip(labels)
            .filter(|(&s, &t)| !t && s > threshold)
            .count() as f64;
        (miss / nt, fa / nn)
    }

    #[test]
    fn separable_scores_have_zero_eer_and_min_dcf() {
        let scores = [0.1, 0.2, 0.3, 1.0, 1.1, 1.2];
        let labels = [false, false, false, true, true, true];
        let (e, d) = eer_and_min_dcf(&scores, &labels, &DcfParams::default()).unwrap();
        assert_eq!(e, 0.0);
        assert_eq!(d, 0.0);
        // Reversed: every threshold errs.
        let rev: Vec<bool> = labels.iter().map(|t| !t).collect();
        assert_eq!(eer(&scores, &rev).unwrap(), 1.0);
    }

    #[test]
    fn identical_distributions_give_half_eer() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let scores: Vec<f64> = (0..20_000).map(|_| normal.sample(&mut rng)).collect();
        let labels: Vec<bool> = (0..20_000).map(|i| i % 2 == 0).collect();
        let e = eer(&scores, &labels).unwrap();
        assert!((e - 0.5).abs() < 0.02, "eer {e}");
    }

    #[test]
    fn eer_matches_gaussian_theory_and_brute_force() {
        // Targets N(2,1), non-targets N(0,1): EER = Φ(−1) = 0.158655.
        let (scores, labels) = gaussian_trials(20_000, 20_000, 2.0, 3);
        let e = eer(&scores, &labels).unwrap();
        assert!((e - 0.158_655).abs() < 0.01, "eer {e}");
        // Brute force over all thresholds: the EER lies between the two error rates at the
        // threshold where they cross.
        let mut sorted = scores.clone();
        sorted.sort_by(f64::total_cmp);
        let mut best = (f64::INFINITY, 0.0);
        for &t in &sorted {
            let (m, f) = brute_rates(&scores, &labels, t);
            if (m - f).abs() < best.0 {
                best = ((m - f).abs(), (m + f) / 2.0);
            }
        }
        assert!((e - best.1).abs() < 1e-3, "eer {e} brute {}", best.1);
    }

    #[test]
    fn min_dcf_equals_brute_force_minimum() {
        let (scores, labels) = gaussian_trials(300, 3000, 2.5, 11);
        let params = DcfParams::default();
        let got = min_dcf(&scores, &labels, &params).unwrap();
        let mut thresholds = scores.clone();
        thresholds.push(f64::NEG_INFINITY);
        let mut best = f64::INFINITY;
        for &t in &thresholds {
            let (m, f) = brute_rates(&scores, &labels, t);
            best = best.min((0.01 * m + 0.99 * f) / 0.01);
        }
        assert!((got - best).abs() < 1e-12, "{got} vs {best}");
        assert!(got > 0.0 && got <= 1.0);
    }

    /// Values printed by `peers_common.eer_and_mindcf` (numpy) on these exact inputs, ties included:
    /// `python -c "import peers_common as p; print(p.eer_and_mindcf(s, l, p_target=...))"`.
    #[test]
    fn matches_peers_common_reference_values() {
        let scores = [
            0.5, 1.5, -0.3, 0.5, 2.0, 0.1, 0.5, -1.0, 1.2, 0.7, 0.7, -0.2, 3.0, 0.0,
        ];
        let labels = [
            true, true, false, false, true, false, true, false, false, true, false, false, true,
            false,
        ];
        let (e, d) = eer_and_min_dcf(&scores, &labels, &DcfParams::default()).unwrap();
        assert!((e - 0.25).abs() < 1e-12, "eer {e}");
        assert!((d - 0.5).abs() < 1e-12, "mindcf {d}");
        // numpy default_rng(1): 40 scores rounded to 0.1 (many ties), labels random < 0.3.
        let scores = [
            0.3, 0.8, 0.3, -1.3, 0.9, 0.4, -0.5, 0.6, 0.4, 0.3, 0.0, 0.5, -0.7, -0.2, -0.5, 0.6,
            0.0, -0.3, -0.8, -0.3, 0.0, -0.3, 1.3, 1.0, -2.7, -1.9, -0.2, -0.4, 0.2, 0.2, 2.1,
            -1.1, -0.4, 2.0, 0.6, 0.7, -0.5, -1.6, 0.2, 0.1,
        ];
        let targets = [2, 7, 11, 13, 14, 19, 20, 24, 25, 29, 34];
        let labels: Vec<bool> = (0..40).map(|i| targets.contains(&i)).collect();
        let params = DcfParams {
            p_target: 0.1,
            ..DcfParams::default()
        };
        let (e, d) = eer_and_min_dcf(&scores, &labels, &params).unwrap();
        assert!((e - 0.517_241_379_310_344_8).abs() < 1e-12, "eer {e}");
        assert!((d - 1.0).abs() < 1e-12, "mindcf {d}");
    }

    #[test]
    fn cllr_of_zero_llrs_is_one_and_perfect_is_zero() {
        let labels = [true, false, true, false, false];
        assert!((cllr(&[0.0; 5], &labels).unwrap() - 1.0).abs() < 1e-15);
        let llrs = [50.0, -50.0, 60.0, -70.0, -55.0];
        assert!(cllr(&llrs, &labels).unwrap() < 1e-20);
        assert!(cllr(&[f64::INFINITY, f64::NEG_INFINITY], &[true, false]).unwrap() == 0.0);
    }

    #[test]
    fn min_cllr_is_invariant_to_monotone_maps_and_bounded() {
        let (scores, labels) = gaussian_trials(500, 2000, 1.5, 5);
        let m = min_cllr(&scores, &labels).unwrap();
        let warped: Vec<f64> = scores.iter().map(|s| (3.0 * s).exp()).collect();
        let m2 = min_cllr(&warped, &labels).unwrap();
        assert!((m - m2).abs() < 1e-12);
        assert!(m > 0.0 && m < 1.0);
        // No calibration beats the optimal one on the same data, e.g. the true LLR
        // of N(1.5,1) vs N(0,1): 1.5 s − 1.125.
        let true_llr: Vec<f64> = scores.iter().map(|s| 1.5 * s - 1.125).collect();
        assert!(m <= cllr(&true_llr, &labels).unwrap() + 1e-12);
        // Separable → 0, random identical → ≈ 0 gain but ≤ 1.
        assert_eq!(min_cllr(&[0.0, 1.0], &[false, true]).unwrap(), 0.0);
        assert!(min_cllr(&[1.0, 1.0], &[false, true]).unwrap() - 1.0 < 1e-12);
    }

    #[test]
    fn rocch_eer_bounds_and_theory() {
        let (scores, labels) = gaussian_trials(5000, 5000, 2.0, 21);
        let hull = rocch_eer(&scores, &labels).unwrap();
        let plain = eer(&scores, &labels).unwrap();
        assert!(hull <= plain + 1e-12, "{hull} > {plain}");
        assert!((hull - 0.158_655).abs() < 0.01, "{hull}");
        assert_eq!(rocch_eer(&[0.0, 1.0], &[false, true]).unwrap(), 0.0);
        // A worse-than-chance system's hull is the chance diagonal.
        assert!(
            (rocch_eer(&[0.0, 1.0, 2.0, 3.0], &[true, true, false, false]).unwrap() - 0.5).abs()
                < 1e-12
        );
    }

    #[test]
    fn summary_agrees_with_the_individual_metrics() {
        let (scores, labels) = gaussian_trials(100, 900, 2.0, 31);
        let llrs: Vec<f64> = scores.iter().map(|s| 2.0 * s - 2.0).collect();
        let p = DcfParams::default();
        let sum = DetectionSummary::compute(&llrs, &labels, &p).unwrap();
        assert_eq!((sum.targets, sum.nontargets), (100, 900));
        assert_eq!(sum.eer, eer(&llrs, &labels).unwrap());
        assert_eq!(sum.min_dcf, min_dcf(&llrs, &labels, &p).unwrap());
        assert_eq!(sum.cllr, cllr(&llrs, &labels).unwrap());
        assert!(sum.min_cllr <= sum.cllr && sum.rocch_eer <= sum.eer);
        let mut plot = DetPlot::new("x");
        plot.min_probability = f64::NAN;
        plot.add_system("a", det_curve(&llrs, &labels).unwrap());
        assert!(plot.to_svg().contains("<path"));
    }

    #[test]
    fn min_cllr_of_a_hand_worked_example() {
        // Scores 1..4 labelled n, t, n, t: PAV pools {2, 3} (posterior ½), so the optimal LLRs are
        // −∞, 0, 0, +∞ and min Cllr = ½·(½·1 + ½·1) = 0.5 bits.
        let scores = [1.0, 2.0, 3.0, 4.0];
        let labels = [false, true, false, true];
        let llrs = optimal_llrs(&scores, &labels).unwrap();
        assert_eq!(llrs, vec![f64::NEG_INFINITY, 0.0, 0.0, f64::INFINITY]);
        assert!((min_cllr(&scores, &labels).unwrap() - 0.5).abs() < 1e-15);
        // Its hull: (P_miss, P_fa) = (0, 1), (0, ½), (½, 0), (1, 0) → EER ¼.
        assert!((rocch_eer(&scores, &labels).unwrap() - 0.25).abs() < 1e-15);
    }

    #[test]
    fn top1_counts_first_argmax_and_skips_unenrolled_tests() {
        let rows = vec![
            vec![0.1, 0.9, 0.3],
            vec![0.5, 0.5, 0.2], // tie: first maximum (model 0) wins, as numpy argmax
            vec![0.0, 0.0, 1.0],
            vec![9.0, 0.0, 0.0],
        ];
        let truth = [Some(1), Some(1), Some(0), None];
        let id = top1_identification(&rows, &truth).unwrap();
        assert_eq!(
            id,
            Identification {
                correct: 1,
                tests: 3
            }
        );
        assert!((id.accuracy() - 1.0 / 3.0).abs() < 1e-15);
        assert!(top1_identification(&rows, &truth[..2]).is_err());
        assert!(Identification {
            correct: 0,
            tests: 0
        }
        .accuracy()
        .is_nan());
    }

    #[test]
    fn pav_llrs_are_monotone_in_score() {
        let (scores, labels) = gaussian_trials(200, 800, 1.0, 9);
        let llrs = optimal_llrs(&scores, &labels).unwrap();
        let mut pairs: Vec<(f64, f64)> = scores.iter().copied().zip(llrs).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(pairs.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn actual_dcf_counts_decisions_at_bayes_threshold() {
        let params = DcfParams::default();
        let theta = params.bayes_threshold_llr();
        assert!((theta - 99f64.ln()).abs() < 1e-12);
        // One target missed out of 2, one false alarm out of 4.
        let llrs = [theta + 1.0, theta - 1.0, theta, theta - 5.0, -10.0, -20.0];
        let labels = [true, true, false, false, false, false];
        let got = actual_dcf(&llrs, &labels, &params).unwrap();
        let want = (0.01 * 0.5 + 0.99 * 0.25) / 0.01;
        assert!((got - want).abs() < 1e-12);
        // Actual DCF is never below minDCF.
        let (scores, labels) = gaussian_trials(300, 3000, 2.0, 1);
        let llrs: Vec<f64> = scores.iter().map(|s| 2.0 * s - 2.0).collect();
        assert!(
            actual_dcf(&llrs, &labels, &params).unwrap()
                >= min_dcf(&llrs, &labels, &params).unwrap() - 1e-12
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(matches!(
            eer(&[1.0], &[true, false]),
            Err(MetricsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            eer(&[1.0, 2.0], &[true, true]),
            Err(MetricsError::MissingClass { .. })
        ));
        assert!(matches!(
            cllr(&[f64::NAN, 2.0], &[true, false]),
            Err(MetricsError::NonFiniteScore { index: 0, .. })
        ));
        let bad = DcfParams {
            p_target: 1.0,
            ..DcfParams::default()
        };
        assert!(min_dcf(&[1.0, 2.0], &[true, false], &bad).is_err());
    }

    #[test]
    fn probit_inverts_known_quantiles() {
        assert!((probit(0.5)).abs() < 1e-12);
        assert!((probit(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((probit(0.001) + 3.090_232_306_167_813).abs() < 1e-8);
        assert!((probit(1e-6) + 4.753_424_308_822_899).abs() < 1e-7);
        assert!((probit(0.9) - 1.281_551_565_544_601).abs() < 1e-8);
        assert_eq!(probit(0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn det_svg_has_one_path_per_system_and_escaped_legend() {
        let (scores, labels) = gaussian_trials(200, 2000, 2.0, 2);
        let mut plot = DetPlot::new("dev <set>");
        plot.add_system("A & B", det_curve(&scores, &labels).unwrap());
        let shifted: Vec<f64> = scores.iter().map(|s| s * 0.5).collect();
        plot.add_system("C", det_curve(&shifted, &labels).unwrap());
        let svg = plot.to_svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains("A &amp; B") && svg.contains("dev &lt;set&gt;"));
    }
}
