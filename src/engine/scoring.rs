//! How sessions score the population at a decision point: a linear pass over everybody, then
//! exact scoring of a shortlist.
//!
//! The exact GMM-UBM score (frame-level log-sum-exp over the UBM's top-C components) costs
//! speech × population at every decision point: ≈ 20 ms for 7 s of speech against 1 000 speakers.
//! Here every enrolled speaker is first scored linearly from the call's top-C Baum–Welch
//! statistics (Glembek et al. 2009; [`SpeakerBank::linear_scores`]: one pass over the bank's
//! occupied components, whatever the call's length, ≈ 7× cheaper), then the best `shortlist` of
//! them and every speaker on the calling line are rescored exactly
//! ([`SpeakerBank::score_subset`]). Shortlisted speakers get exactly the calibrated LLR of the
//! batch path; the others, whose mass only enters the posterior's denominator, get their linear
//! score raised by the largest exact − linear gap seen on the shortlist (the linear score is a
//! lower bound of the exact one, by Jensen's inequality; raising it errs on the side of a lower
//! posterior for the best hypothesis, never a higher one).
//!
//! The Gaussian selection itself (all 512 UBM components of every frame, one f32 GEMM) is
//! recomputed at each decision point because CMN's mean moves with the call; it costs ≈ 2 µs per
//! frame, small next to the scoring.

use serde::{Deserialize, Serialize};

use super::engine::{EngineError, VoiceModels};
use crate::features::FeatureMatrix;
use crate::gmm::{GaussianSelection, SpeakerBank};
use crate::plda::CohortStats;

/// How sessions score the population at decision points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ScoringOptions {
    /// Speakers rescored exactly (frame-level top-C) at each decision point: the best this many
    /// by linear score, plus every speaker on the calling line. 0 scores everybody exactly (the
    /// batch path's cost: speech × population per decision point). Default 32.
    pub shortlist: usize,
    /// Components whose top-C occupancy in the call is below this many frames are left out of
    /// the linear pass (fewer bank columns to read; the shortlisted speakers are rescored on
    /// every component anyway), ≥ 0. Default 0.5.
    pub min_occupancy: f64,
    /// Between full linear passes, decision points rescore only the last shortlist (and the
    /// calling line) exactly and keep everybody else's approximate score; a new pass is made
    /// once the scored speech has grown by this factor (and at the forced decision), ≥ 1
    /// (1 = a pass at every decision point). Default 1.5.
    pub linear_pass_growth: f64,
}

impl Default for ScoringOptions {
    fn default() -> Self {
        Self {
            shortlist: 32,
            min_occupancy: 0.5,
            linear_pass_growth: 1.5,
        }
    }
}

impl ScoringOptions {
    /// Exact scoring of everybody at every decision point (the reference path; decision points
    /// cost speech × population).
    pub fn exact() -> Self {
        Self {
            shortlist: 0,
            ..Self::default()
        }
    }

    /// Checks the options.
    pub fn validate(&self) -> Result<(), EngineError> {
        let bad = |name, value: String, expected| {
            Err(EngineError::InvalidOption {
                name,
                value,
                expected,
            })
        };
        if !(self.min_occupancy >= 0.0 && self.min_occupancy.is_finite()) {
            return bad(
                "scoring.min_occupancy",
                self.min_occupancy.to_string(),
                "a finite number of frames ≥ 0",
            );
        }
        if !(self.linear_pass_growth >= 1.0 && self.linear_pass_growth.is_finite()) {
            return bad(
                "scoring.linear_pass_growth",
                self.linear_pass_growth.to_string(),
                "a finite factor ≥ 1",
            );
        }
        Ok(())
    }
}

/// The last full linear pass of a call: the frames it saw, every speaker's approximate raw score
/// (linear score raised by the shortlist's gap) and the shortlist.
#[derive(Debug, Clone)]
struct LinearPass {
    frames: usize,
    approx: Vec<f64>,
    shortlist: Vec<usize>,
}

/// Per-call state of shortlist scoring: between full linear passes (made when the scored speech
/// has grown by `linear_pass_growth`, and at forced decisions), decision points rescore the last
/// shortlist exactly and keep the others' approximate scores from the last pass.
#[derive(Debug)]
pub(crate) struct ShortlistState {
    options: ScoringOptions,
    last: Option<LinearPass>,
    /// The call's cohort statistics (GMM-UBM adaptive S-norm, T side) and the frames they were
    /// measured on: remeasured on the same schedule as the linear passes (the cohort is scored
    /// exactly, as large as a population of several hundred).
    test_norm: Option<(usize, CohortStats)>,
}

impl ShortlistState {
    pub(crate) fn new(options: ScoringOptions) -> Self {
        Self {
            options,
            last: None,
            test_norm: None,
        }
    }

    /// Calibrated LLRs of the call so far; `full` forces a new linear pass. `norms`: the
    /// speakers' cohort statistics (empty without a cohort).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn llrs(
        &mut self,
        models: &VoiceModels,
        feats: &FeatureMatrix,
        sel: &GaussianSelection,
        bank: &SpeakerBank,
        norms: &[CohortStats],
        always_exact: &[bool],
        full: bool,
    ) -> Result<Vec<f64>, EngineError> {
        let n = feats.num_frames();
        let test = match self.test_norm {
            Some((frames, stats))
                if !full && (n as f64) < frames as f64 * self.options.linear_pass_growth =>
            {
                Some(stats)
            }
            _ => {
                let stats = models.gmm.test_norm(feats, sel)?;
                self.test_norm = stats.map(|s| (n, s));
                stats
            }
        };
        let calibrate = |mut raw: Vec<f64>| -> Result<Vec<f64>, EngineError> {
            models.gmm.normalize(&mut raw, norms, test.as_ref())?;
            Ok(raw
                .into_iter()
                .map(|s| models.gmm.calibrate(s, n))
                .collect())
        };
        let options = &self.options;
        let s_count = bank.num_speakers();
        let reusable = self.last.as_ref().filter(|last| {
            !full
                && last.approx.len() == s_count
                && (n as f64) < last.frames as f64 * options.linear_pass_growth
        });
        let Some(last) = reusable else {
            let scored = models.shortlist_scores(
                feats,
                sel,
                bank,
                options.shortlist,
                options.min_occupancy,
                always_exact,
            )?;
            self.last = scored.approx.map(|approx| LinearPass {
                frames: n,
                approx,
                shortlist: scored.shortlist,
            });
            return calibrate(scored.raw);
        };
        let (raw, _) = rescore(feats, sel, bank, &last.shortlist, always_exact, |_| {
            Ok(last.approx.clone())
        })?;
        calibrate(raw)
    }
}

/// Scores `shortlist` and the speakers flagged in `always_exact` exactly; the others get the
/// approximate scores `approximate` makes from the exact ones ((speaker, score) pairs). Returns
/// the raw scores and which are exact.
fn rescore(
    feats: &FeatureMatrix,
    sel: &GaussianSelection,
    bank: &SpeakerBank,
    shortlist: &[usize],
    always_exact: &[bool],
    approximate: impl FnOnce(&[(usize, f64)]) -> Result<Vec<f64>, EngineError>,
) -> Result<(Vec<f64>, Vec<bool>), EngineError> {
    let mut exact = vec![false; bank.num_speakers()];
    for &s in shortlist {
        exact[s] = true;
    }
    for (e, &f) in exact.iter_mut().zip(always_exact) {
        *e |= f;
    }
    let chosen: Vec<usize> = (0..exact.len()).filter(|&s| exact[s]).collect();
    let scores = bank.score_subset(feats, sel, &chosen)?;
    let pairs: Vec<(usize, f64)> = chosen.into_iter().zip(scores).collect();
    let mut raw = approximate(&pairs)?;
    for &(s, e) in &pairs {
        raw[s] = e;
    }
    Ok((raw, exact))
}

/// Raw scores of a shortlisted scoring.
struct ShortlistScores {
    /// Exact for the shortlisted, approximate for the others (nats per frame).
    raw: Vec<f64>,
    /// Whether each raw score is exact.
    exact: Vec<bool>,
    /// Every speaker's approximate score (None when everybody was scored exactly).
    approx: Option<Vec<f64>>,
    /// The best by linear score (without the forced ones).
    shortlist: Vec<usize>,
}

impl VoiceModels {
    /// Calibrated LLRs of normalised voiced `feats` (with their top-C `sel`) against every speaker
    /// of `bank`, shortlisted: when the bank holds more than `shortlist` speakers, everybody is
    /// scored linearly ([`SpeakerBank::linear_scores`]), the best `shortlist` and those flagged in
    /// `always_exact` are rescored exactly, and the others get their linear score raised by the
    /// largest exact − linear gap of the shortlist. `shortlist` = 0 scores everybody exactly.
    /// `norms`: the speakers' cohort statistics ([`super::Population::norms`]; empty without a
    /// cohort). Returns the LLRs and, per speaker, whether its LLR is exact.
    #[allow(clippy::too_many_arguments)]
    pub fn shortlisted_llrs(
        &self,
        feats: &FeatureMatrix,
        sel: &GaussianSelection,
        bank: &SpeakerBank,
        norms: &[CohortStats],
        shortlist: usize,
        min_occupancy: f64,
        always_exact: &[bool],
    ) -> Result<(Vec<f64>, Vec<bool>), EngineError> {
        let n = feats.num_frames();
        let mut scored =
            self.shortlist_scores(feats, sel, bank, shortlist, min_occupancy, always_exact)?;
        let test = self.gmm.test_norm(feats, sel)?;
        self.gmm.normalize(&mut scored.raw, norms, test.as_ref())?;
        let llrs = scored
            .raw
            .into_iter()
            .map(|s| self.gmm.calibrate(s, n))
            .collect();
        Ok((llrs, scored.exact))
    }

    fn shortlist_scores(
        &self,
        feats: &FeatureMatrix,
        sel: &GaussianSelection,
        bank: &SpeakerBank,
        shortlist: usize,
        min_occupancy: f64,
        always_exact: &[bool],
    ) -> Result<ShortlistScores, EngineError> {
        let s_count = bank.num_speakers();
        if s_count == 0 || feats.is_empty() {
            return Ok(ShortlistScores {
                raw: Vec::new(),
                exact: Vec::new(),
                approx: None,
                shortlist: Vec::new(),
            });
        }
        let forced = always_exact.iter().filter(|&&f| f).count();
        if shortlist == 0 || shortlist + forced >= s_count {
            return Ok(ShortlistScores {
                raw: bank.score(feats, sel)?,
                exact: vec![true; s_count],
                approx: None,
                shortlist: Vec::new(),
            });
        }
        let lin = bank.linear_scores(feats, sel, min_occupancy)?;
        let mut order: Vec<usize> = (0..s_count).collect();
        order.select_nth_unstable_by(shortlist - 1, |&a, &b| {
            lin[b].total_cmp(&lin[a]).then(a.cmp(&b))
        });
        let mut best: Vec<usize> = order[..shortlist].to_vec();
        best.sort_unstable();
        let mut approx = Vec::new();
        let (raw, exact) = rescore(feats, sel, bank, &best, always_exact, |exact_scores| {
            let gap = exact_scores
                .iter()
                .map(|&(s, e)| e - lin[s])
                .fold(0.0_f64, f64::max);
            approx = lin.iter().map(|l| l + gap).collect();
            Ok(approx.clone())
        })?;
        Ok(ShortlistScores {
            raw,
            exact,
            approx: Some(approx),
            shortlist: best,
        })
    }
}
