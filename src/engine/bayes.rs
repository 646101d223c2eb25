//! Bayes' rule over callers: prior from the calling number, calibrated voice LLRs, posterior over
//! {each enrolled speaker, unknown}.

use super::number::CallerPrior;

/// ln Σ exp(values), stable; −∞ for an empty or all −∞ input.
pub fn log_sum_exp(values: impl IntoIterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().into_iter().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if max == f64::INFINITY {
        return f64::INFINITY;
    }
    max + values
        .into_iter()
        .map(|v| (v - max).exp())
        .sum::<f64>()
        .ln()
}

/// Posterior over callers, as natural logs.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerPosterior {
    /// ln P(caller = speaker i | voice, number), in the population's order.
    pub log_posterior: Vec<f64>,
    /// ln P(caller is nobody enrolled | voice, number).
    pub log_posterior_unknown: f64,
}

/// The most probable hypothesis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Best {
    /// Enrolled speaker at this index, with its posterior probability.
    Speaker(usize, f64),
    /// Nobody enrolled, with its posterior probability.
    Unknown(f64),
}

impl CallerPosterior {
    /// P(caller = speaker i).
    pub fn probability(&self, speaker: usize) -> f64 {
        self.log_posterior[speaker].exp()
    }

    /// P(caller is nobody enrolled).
    pub fn probability_unknown(&self) -> f64 {
        self.log_posterior_unknown.exp()
    }

    /// P(caller is one of the speakers flagged in `members`, in the population's order), e.g. the
    /// people known on the calling number.
    pub fn probability_among(&self, members: &[bool]) -> f64 {
        log_sum_exp(
            self.log_posterior
                .iter()
                .zip(members)
                .filter(|(_, &m)| m)
                .map(|(&lp, _)| lp),
        )
        .exp()
    }

    /// The maximum a posteriori hypothesis (ties go to the lower speaker index, then to speakers over unknown).
    pub fn best(&self) -> Best {
        let mut best = Best::Unknown(self.probability_unknown());
        let mut best_log = self.log_posterior_unknown;
        for (i, &lp) in self.log_posterior.iter().enumerate() {
            if lp > best_log || (lp == best_log && matches!(best, Best::Unknown(_))) {
                best_log = lp;
                best = Best::Speaker(i, lp.exp());
            }
        }
        best
    }
}

/// What the voice says against the calling number (see [`Verdict::Mismatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgainstNumber {
    /// Names an enrolled speaker (this index) not known on the number.
    Speaker(usize),
    /// Names nobody enrolled.
    NobodyEnrolled,
    /// Names nobody at the confidence, but rules out the number's people.
    NoneOfThem,
}

/// What a posterior settles at a confidence, given which speakers are known on the calling
/// number (the decision rule of a call session).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// This speaker, with its posterior ≥ the confidence, on the number (or no one is known on
    /// the number).
    Identified(usize, f64),
    /// Nobody enrolled, with its posterior ≥ the confidence; no one is known on the number.
    Unknown(f64),
    /// The probability that the caller is one of the number's people is 1 − confidence or less
    /// (which naming anyone else at the confidence implies); the posterior is that of what the
    /// voice says (for [`AgainstNumber::NoneOfThem`], of "none of the number's people").
    Mismatch(AgainstNumber, f64),
    /// Nothing reaches the confidence.
    Undecided,
}

impl CallerPosterior {
    /// The decision rule: the maximum a posteriori hypothesis when its posterior reaches
    /// `confidence`, checked against the people known on the number (`on_line`, in the
    /// population's order; all false when the number is withheld or has nobody known on it).
    pub fn verdict(&self, on_line: &[bool], confidence: f64) -> Verdict {
        let any_on_line = on_line.iter().any(|&b| b);
        let named = match self.best() {
            Best::Speaker(i, p) if p >= confidence => Some((AgainstNumber::Speaker(i), p)),
            Best::Unknown(p) if p >= confidence => Some((AgainstNumber::NobodyEnrolled, p)),
            _ => None,
        };
        match named {
            Some((AgainstNumber::Speaker(i), p)) if !any_on_line || on_line[i] => {
                Verdict::Identified(i, p)
            }
            Some((AgainstNumber::NobodyEnrolled, p)) if !any_on_line => Verdict::Unknown(p),
            Some((says, p)) => Verdict::Mismatch(says, p),
            None if any_on_line => {
                let line = self.probability_among(on_line);
                if line <= 1.0 - confidence {
                    Verdict::Mismatch(AgainstNumber::NoneOfThem, 1.0 - line)
                } else {
                    Verdict::Undecided
                }
            }
            None => Verdict::Undecided,
        }
    }
}

/// Combines a prior and per-speaker calibrated voice LLRs by Bayes' rule.
///
/// `llrs[i]` = ln p(voice | speaker i) / p(voice | someone else); under "unknown" the voice's
/// likelihood is the background's, so its LLR is 0 by definition.
pub fn caller_posterior(prior: &CallerPrior, llrs: &[f64]) -> CallerPosterior {
    assert_eq!(
        prior.log_prior.len(),
        llrs.len(),
        "one LLR per enrolled speaker"
    );
    let joint: Vec<f64> = prior
        .log_prior
        .iter()
        .zip(llrs)
        .map(|(p, l)| p + l)
        .collect();
    let evidence = log_sum_exp(
        joint
            .iter()
            .copied()
            .chain(std::iter::once(prior.log_prior_unknown)),
    );
    CallerPosterior {
        log_posterior: joint.iter().map(|j| j - evidence).collect(),
        log_posterior_unknown: prior.log_prior_unknown - evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn log_sum_exp_matches_direct_sum_and_survives_extremes() {
        let v = [0.1, -2.0, 3.5];
        let direct: f64 = v.iter().map(|x: &f64| x.exp()).sum::<f64>().ln();
        assert!((log_sum_exp(v) - direct).abs() < 1e-12);
        assert!((log_sum_exp([1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-9);
        assert_eq!(log_sum_exp(Vec::<f64>::new()), f64::NEG_INFINITY);
        assert_eq!(log_sum_exp([f64::NEG_INFINITY, 0.0]), 0.0);
    }

    #[test]
    fn posterior_equals_direct_bayes_rule() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..100 {
            let n = rng.random_range(1..8);
            let mut p: Vec<f64> = (0..=n).map(|_| rng.random_range(0.01..1.0)).collect();
            let total: f64 = p.iter().sum();
            p.iter_mut().for_each(|x| *x /= total);
            let llrs: Vec<f64> = (0..n).map(|_| rng.random_range(-10.0..10.0)).collect();
            let prior = CallerPrior {
                log_prior: p[..n].iter().map(|x| x.ln()).collect(),
                log_prior_unknown: p[n].ln(),
                on_line: vec![false; n],
            };
            let post = caller_posterior(&prior, &llrs);
            // Direct: P(i|X) = π_i e^{ℓ_i} / (Σ_j π_j e^{ℓ_j} + π_u).
            let num: Vec<f64> = (0..n).map(|i| p[i] * llrs[i].exp()).collect();
            let den: f64 = num.iter().sum::<f64>() + p[n];
            for (i, num_i) in num.iter().enumerate() {
                assert!((post.probability(i) - num_i / den).abs() < 1e-12);
            }
            assert!((post.probability_unknown() - p[n] / den).abs() < 1e-12);
        }
    }

    #[test]
    fn best_prefers_strong_voice_evidence_over_the_prior() {
        let prior = CallerPrior {
            log_prior: vec![0.8f64.ln(), 0.1f64.ln()],
            log_prior_unknown: 0.1f64.ln(),
            on_line: vec![true, false],
        };
        let post = caller_posterior(&prior, &[-5.0, 8.0]);
        match post.best() {
            Best::Speaker(1, p) => assert!(p > 0.99),
            other => panic!("expected speaker 1, got {other:?}"),
        }
        let post = caller_posterior(&prior, &[-9.0, -9.0]);
        assert!(matches!(post.best(), Best::Unknown(p) if p > 0.99));
    }

    /// The decision rule against the brute-force posterior: speakers 0 and 1 on the number,
    /// speaker 2 off it, at confidence 0.99.
    #[test]
    fn verdict_flags_a_voice_that_rules_out_the_numbers_people() {
        let prior = CallerPrior {
            log_prior: vec![0.45f64.ln(), 0.45f64.ln(), 0.05f64.ln()],
            log_prior_unknown: 0.05f64.ln(),
            on_line: vec![true, true, false],
        };
        let line = [true, true, false];
        let direct = |llrs: [f64; 3]| {
            let num = [
                0.45 * llrs[0].exp(),
                0.45 * llrs[1].exp(),
                0.05 * llrs[2].exp(),
                0.05,
            ];
            let den: f64 = num.iter().sum();
            num.map(|x| x / den)
        };
        // the line's first member, sure
        let post = caller_posterior(&prior, &[9.0, 0.0, 0.0]);
        assert!(matches!(post.verdict(&line, 0.99), Verdict::Identified(0, p) if p > 0.99));
        // the off-number speaker, sure: a mismatch naming it
        let post = caller_posterior(&prior, &[-9.0, -9.0, 9.0]);
        let p = direct([-9.0, -9.0, 9.0]);
        assert_eq!(
            post.verdict(&line, 0.99),
            Verdict::Mismatch(AgainstNumber::Speaker(2), post.probability(2))
        );
        assert!((post.probability(2) - p[2]).abs() < 1e-12);
        // the line's people ruled out, the rest split between speaker 2 and nobody enrolled: a
        // mismatch that names nobody, with P(none of the number's people) = 1 − P(line)
        let llrs = [-8.0, -9.0, 0.0];
        let p = direct(llrs);
        assert!(p[2] < 0.99 && p[3] < 0.99 && p[0] + p[1] < 0.01, "{p:?}");
        let post = caller_posterior(&prior, &llrs);
        match post.verdict(&line, 0.99) {
            Verdict::Mismatch(AgainstNumber::NoneOfThem, q) => {
                assert!((q - (1.0 - p[0] - p[1])).abs() < 1e-12)
            }
            other => panic!("{other:?}"),
        }
        assert!((post.probability_among(&line) - (p[0] + p[1])).abs() < 1e-12);
        // the voice leans away from the line, but not far enough
        let llrs = [-3.0, -3.0, 0.0];
        let p = direct(llrs);
        assert!(p[0] + p[1] > 0.01, "{p:?}");
        assert_eq!(
            caller_posterior(&prior, &llrs).verdict(&line, 0.99),
            Verdict::Undecided
        );
        // nobody enrolled, sure, on the number: a mismatch; withheld: unknown
        let llrs = [-12.0, -12.0, -12.0];
        let post = caller_posterior(&prior, &llrs);
        assert!(matches!(
            post.verdict(&line, 0.99),
            Verdict::Mismatch(AgainstNumber::NobodyEnrolled, p) if p > 0.99
        ));
        assert!(matches!(
            post.verdict(&[false; 3], 0.99),
            Verdict::Unknown(p) if p > 0.99
        ));
        // withheld, an enrolled speaker sure: identified whoever it is
        let post = caller_posterior(&prior, &[-9.0, -9.0, 12.0]);
        assert!(matches!(
            post.verdict(&[false; 3], 0.99),
            Verdict::Identified(2, _)
        ));
    }
}
