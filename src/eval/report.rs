//! Turning a system's scores on a [`DevSet`] into the figures we report: EER, minDCF, actual DCF,
//! Cllr / min Cllr, closed-set top-1, open-set false accepts.

use serde::Serialize;

use super::corpus::DevSet;
use crate::engine::bayes::{caller_posterior, Best};
use crate::engine::number::CallerPrior;
use crate::metrics::{self, DcfParams, MetricsError};

/// Scores of one system on one set: a calibrated (or raw) score for every (enrollment, test) pair.
#[derive(Debug, Clone)]
pub struct ScoreMatrix {
    /// Number of tests (columns).
    pub num_tests: usize,
    /// Row-major `enrollments × tests` scores.
    pub scores: Vec<f64>,
}

impl ScoreMatrix {
    /// Score of enrollment `e` against test `t`.
    pub fn get(&self, enrollment: usize, test: usize) -> f64 {
        self.scores[enrollment * self.num_tests + test]
    }
}

/// Open-set decision rule: Bayes posterior with a flat prior over the gallery. The default is
/// the engine's decision on a call from a withheld number: P(unknown) =
/// [`PriorOptions::p_unknown_without_line`](crate::engine::PriorOptions), a speaker named at
/// [`EngineOptions::confidence`](crate::engine::EngineOptions) (0.5 and 0.99).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OpenSetRule {
    /// Prior probability that the caller is not in the gallery.
    pub p_unknown: f64,
    /// Posterior needed to name a speaker.
    pub min_posterior: f64,
}

impl Default for OpenSetRule {
    fn default() -> Self {
        Self {
            p_unknown: crate::engine::PriorOptions::default().p_unknown_without_line,
            min_posterior: crate::engine::EngineOptions::default().confidence,
        }
    }
}

/// The figures for one system on one set (percentages in %).
#[derive(Debug, Clone, Serialize)]
pub struct SystemReport {
    /// System name.
    pub system: String,
    /// Set name.
    pub set: String,
    /// Verification trials.
    pub trials: usize,
    /// Target trials among them.
    pub targets: usize,
    /// Equal error rate, %.
    pub eer_pct: f64,
    /// Normalised minDCF at P_target 0.01.
    pub min_dcf: f64,
    /// Normalised actual DCF at the Bayes threshold (meaningful for calibrated scores).
    pub act_dcf: Option<f64>,
    /// Cllr in bits (calibrated scores only).
    pub cllr: Option<f64>,
    /// min Cllr in bits.
    pub min_cllr: f64,
    /// Closed-set identification top-1 accuracy, %.
    pub top1_closed_pct: Option<f64>,
    /// Posterior a speaker needed to be named in the open-set test ([`OpenSetRule::min_posterior`]).
    pub open_min_posterior: f64,
    /// Open set: share of unknown callers accepted as someone, %.
    pub open_false_accept_pct: Option<f64>,
    /// Open set: share of known callers correctly named, %.
    pub open_correct_pct: Option<f64>,
    /// The same two shares when a speaker is named at posterior 0.5 (the lax operating point).
    pub open_false_accept_at_half_pct: Option<f64>,
    /// ... known callers correctly named at posterior 0.5, %.
    pub open_correct_at_half_pct: Option<f64>,
    /// Mean scoring time per verification (one test vs one model), ms.
    pub verify_ms_per_call: Option<f64>,
    /// Mean scoring time per identification (one test vs the whole gallery), ms.
    pub identify_ms_per_call: Option<f64>,
}

/// Computes the report. `calibrated` says whether scores are natural-log LLRs (enables Cllr,
/// actual DCF and the open-set Bayes rule; otherwise open set is not reported).
pub fn report(
    system: &str,
    set_name: &str,
    set: &DevSet,
    scores: &ScoreMatrix,
    calibrated: bool,
    open_rule: &OpenSetRule,
) -> Result<SystemReport, MetricsError> {
    let trial_scores: Vec<f64> = set
        .trials
        .iter()
        .map(|t| scores.get(t.enrollment, t.test))
        .collect();
    let labels: Vec<bool> = set.trials.iter().map(|t| t.target).collect();
    let dcf = DcfParams::default();
    let (eer, min_dcf) = metrics::eer_and_min_dcf(&trial_scores, &labels, &dcf)?;
    let min_cllr = metrics::min_cllr(&trial_scores, &labels)?;
    let (cllr, act_dcf) = if calibrated {
        (
            Some(metrics::cllr(&trial_scores, &labels)?),
            Some(metrics::actual_dcf(&trial_scores, &labels, &dcf)?),
        )
    } else {
        (None, None)
    };

    let top1_closed_pct = (!set.ident_closed.is_empty()).then(|| {
        let correct = set
            .ident_closed
            .iter()
            .filter(|it| {
                let best = argmax(set.closed_gallery.iter().map(|&e| scores.get(e, it.test)));
                it.speaker.as_deref()
                    == best.map(|b| set.enrollments[set.closed_gallery[b]].speaker.as_str())
            })
            .count();
        100.0 * correct as f64 / set.ident_closed.len() as f64
    });

    // the open-set test needs calibrated scores (posteriors)
    let open = |rule: &OpenSetRule| {
        if calibrated {
            open_set(set, scores, rule)
        } else {
            (None, None)
        }
    };
    let (open_false_accept_pct, open_correct_pct) = open(open_rule);
    let (open_false_accept_at_half_pct, open_correct_at_half_pct) = open(&OpenSetRule {
        min_posterior: 0.5,
        ..*open_rule
    });

    Ok(SystemReport {
        system: system.to_string(),
        set: set_name.to_string(),
        trials: labels.len(),
        targets: labels.iter().filter(|&&t| t).count(),
        eer_pct: 100.0 * eer,
        min_dcf,
        act_dcf,
        cllr,
        min_cllr,
        top1_closed_pct,
        open_min_posterior: open_rule.min_posterior,
        open_false_accept_pct,
        open_correct_pct,
        open_false_accept_at_half_pct,
        open_correct_at_half_pct,
        verify_ms_per_call: None,
        identify_ms_per_call: None,
    })
}

/// Open-set identification by Bayes' rule with `rule`: (share of unknown callers named as someone,
/// share of known callers named correctly), %; `None` where the set has no such tests.
fn open_set(set: &DevSet, scores: &ScoreMatrix, rule: &OpenSetRule) -> (Option<f64>, Option<f64>) {
    if set.ident_open.is_empty() {
        return (None, None);
    }
    let g = set.open_gallery.len();
    let prior = CallerPrior {
        log_prior: vec![((1.0 - rule.p_unknown) / g as f64).ln(); g],
        log_prior_unknown: rule.p_unknown.ln(),
        on_line: vec![false; g],
    };
    let (mut unknown, mut false_accepts, mut known, mut correct) = (0usize, 0usize, 0usize, 0usize);
    for it in &set.ident_open {
        let llrs: Vec<f64> = set
            .open_gallery
            .iter()
            .map(|&e| scores.get(e, it.test))
            .collect();
        let named = match caller_posterior(&prior, &llrs).best() {
            Best::Speaker(i, p) if p >= rule.min_posterior => {
                Some(set.enrollments[set.open_gallery[i]].speaker.as_str())
            }
            _ => None,
        };
        match &it.speaker {
            None => {
                unknown += 1;
                false_accepts += usize::from(named.is_some());
            }
            Some(truth) => {
                known += 1;
                correct += usize::from(named == Some(truth.as_str()));
            }
        }
    }
    (
        (unknown > 0).then(|| 100.0 * false_accepts as f64 / unknown as f64),
        (known > 0).then(|| 100.0 * correct as f64 / known as f64),
    )
}

fn argmax(values: impl Iterator<Item = f64>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in values.enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.decimals$}"))
}

/// A markdown table of reports (one row each).
pub fn markdown_table(reports: &[SystemReport]) -> String {
    let at = reports
        .first()
        .map_or(OpenSetRule::default().min_posterior, |r| {
            r.open_min_posterior
        });
    let mut out = format!(
        "| set | system | EER % | minDCF | actDCF | Cllr | min Cllr | top-1 % | open FA % (P ≥ {at} / 0.5) | open correct % (P ≥ {at} / 0.5) | identify ms/call |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let pair = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (None, None) => "–".to_string(),
        _ => format!("{} / {}", opt(a, 1), opt(b, 1)),
    };
    for r in reports {
        out.push_str(&format!(
            "| {} | {} | {:.2} | {:.3} | {} | {} | {:.3} | {} | {} | {} | {} |\n",
            r.set,
            r.system,
            r.eer_pct,
            r.min_dcf,
            opt(r.act_dcf, 3),
            opt(r.cllr, 3),
            r.min_cllr,
            opt(r.top1_closed_pct, 1),
            pair(r.open_false_accept_pct, r.open_false_accept_at_half_pct),
            pair(r.open_correct_pct, r.open_correct_at_half_pct),
            opt(r.identify_ms_per_call, 2),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::corpus::{Enrollment, IdentTest, Trial};
    use std::path::PathBuf;

    fn toy_set() -> DevSet {
        let enrollments = ["a", "b", "c"]
            .iter()
            .map(|s| Enrollment {
                speaker: s.to_string(),
                wavs: vec![PathBuf::from(format!("{s}.wav"))],
            })
            .collect();
        // Tests 0, 1, 2 are spoken by a, b, c; test 3 by an outsider.
        let mut trials = Vec::new();
        for e in 0..3 {
            for t in 0..4 {
                trials.push(Trial {
                    enrollment: e,
                    test: t,
                    target: e == t,
                });
            }
        }
        DevSet {
            root: PathBuf::new(),
            enrollments,
            tests: (0..4).map(|t| PathBuf::from(format!("t{t}.wav"))).collect(),
            trials,
            ident_closed: (0..3)
                .map(|t| IdentTest {
                    test: t,
                    speaker: Some(["a", "b", "c"][t].into()),
                })
                .collect(),
            closed_gallery: vec![0, 1, 2],
            ident_open: vec![
                IdentTest {
                    test: 0,
                    speaker: Some("a".into()),
                },
                IdentTest {
                    test: 2,
                    speaker: None,
                },
                IdentTest {
                    test: 3,
                    speaker: None,
                },
            ],
            open_gallery: vec![0, 1],
        }
    }

    /// Scores of the toy set's 3 enrollments × 4 tests: `target` where enrollment e meets test e,
    /// `nontarget` elsewhere.
    fn diagonal_scores(target: f64, nontarget: f64) -> ScoreMatrix {
        ScoreMatrix {
            num_tests: 4,
            scores: (0..3)
                .flat_map(|e| (0..4).map(move |t| if e == t { target } else { nontarget }))
                .collect(),
        }
    }

    #[test]
    fn perfect_llrs_give_perfect_figures() {
        let set = toy_set();
        let m = diagonal_scores(12.0, -12.0);
        let r = report("toy", "toy", &set, &m, true, &OpenSetRule::default()).unwrap();
        assert_eq!(r.trials, 12);
        assert_eq!(r.targets, 3);
        assert_eq!(r.eer_pct, 0.0);
        assert_eq!(r.top1_closed_pct, Some(100.0));
        assert_eq!(r.open_false_accept_pct, Some(0.0));
        assert_eq!(r.open_correct_pct, Some(100.0));
        assert!(r.cllr.unwrap() < 1e-3);
    }

    #[test]
    fn uninformative_scores_accept_no_one_and_cost_one_bit() {
        let set = toy_set();
        let m = ScoreMatrix {
            num_tests: 4,
            scores: vec![0.0; 12],
        };
        let r = report("zero", "toy", &set, &m, true, &OpenSetRule::default()).unwrap();
        assert!((r.cllr.unwrap() - 1.0).abs() < 1e-12);
        // Flat prior 0.5 unknown over 2 speakers: each speaker has posterior 0.25 < 0.5.
        assert_eq!(r.open_false_accept_pct, Some(0.0));
        assert_eq!(r.open_correct_pct, Some(0.0));
        assert!(markdown_table(&[r]).contains("| toy | zero |"));
    }

    /// The default rule names a speaker only at the engine's confidence: LLR 3 for the right
    /// speaker (−12 for the other) gives, with priors 0.25 / 0.25 / 0.5 (unknown), the posterior
    /// 0.25·e³ / (0.25·e³ + 0.25·e⁻¹² + 0.5) = 0.909 (Bayes' rule by hand), named at 0.5, not at 0.99.
    #[test]
    fn the_default_open_set_rule_is_the_engines_confidence() {
        let set = toy_set();
        let m = diagonal_scores(3.0, -12.0);
        let p = 0.25 * 3f64.exp() / (0.25 * 3f64.exp() + 0.25 * (-12f64).exp() + 0.5);
        assert!((0.9..0.99).contains(&p), "{p}");
        let rule = OpenSetRule::default();
        assert_eq!(
            rule.min_posterior,
            crate::engine::EngineOptions::default().confidence
        );
        let strict = report("s", "toy", &set, &m, true, &rule).unwrap();
        assert_eq!(strict.open_correct_pct, Some(0.0));
        // the report also gives the lax operating point, and the table shows both
        assert_eq!(strict.open_correct_at_half_pct, Some(100.0));
        assert!(markdown_table(&[strict]).contains("| 0.0 / 100.0 |"));
        let lax = OpenSetRule {
            min_posterior: 0.5,
            ..rule
        };
        let lax = report("l", "toy", &set, &m, true, &lax).unwrap();
        assert_eq!(lax.open_correct_pct, Some(100.0));
        assert_eq!(lax.open_false_accept_pct, Some(0.0));
    }
}
