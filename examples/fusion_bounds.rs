//! What any linear fusion of given systems can reach on one set: the bound behind "the fusion
//! must beat every single system".
//!
//! ```text
//! quivox eval --scores-dir /tmp/scores            # per-trial calibrated LLRs of every system
//! cargo run --release --example fusion_bounds -- [--step 0.02] \
//!     /tmp/scores/scores-dev-GMM-UBM-512-top-5.tsv \
//!     /tmp/scores/scores-dev-i-vector-100-PLDA.tsv \
//!     /tmp/scores/scores-dev-GE2E-embedding-PLDA.tsv
//! ```
//!
//! The files must hold the same trials (enrollment, test, kind, score; any order). The example
//! prints each system's EER and minDCF (P_target 0.01), then
//! - **a scan of every non-negative weighting** (the simplex of weights summing to 1, in steps of
//!   `--step`; an offset changes neither EER nor minDCF): how many weightings beat the best single
//!   system in EER, in minDCF, and in both; the lowest EER and the lowest minDCF found;
//! - **the oracle logistic-regression fusion**, fitted on these very trials (in-sample: what no
//!   fusion trained elsewhere can be expected to beat).
//!
//! Measuring on the set one fits on is what the shipped fusion must never do; this example does
//! it on purpose, to tell whether a goal is out of reach of *any* fusion weights (then only better
//! single systems can meet it) or only of the ones the background trials give.

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use quivox::calibration::{CalibrationOptions, Fusion};
use quivox::eval::score_files::read_trial_scores;
use quivox::metrics::{eer_and_min_dcf, DcfParams};

type Trials = HashMap<(String, String), (bool, f64)>;

fn read_scores(path: &Path) -> Result<Trials, Box<dyn Error>> {
    Ok(read_trial_scores(path)?
        .into_iter()
        .map(|t| ((t.enrollment, t.test), (t.target, t.score)))
        .collect())
}

/// Every weight vector of `k` non-negative entries summing to 1 in steps of 1/`n`.
fn simplex(k: usize, n: usize, prefix: &mut Vec<usize>, out: &mut Vec<Vec<f64>>) {
    let used: usize = prefix.iter().sum();
    if prefix.len() + 1 == k {
        let mut w: Vec<f64> = prefix.iter().map(|&c| c as f64 / n as f64).collect();
        w.push((n - used) as f64 / n as f64);
        out.push(w);
        return;
    }
    for c in 0..=(n - used) {
        prefix.push(c);
        simplex(k, n, prefix, out);
        prefix.pop();
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut step: f64 = 0.02;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--step" {
            step = args.next().ok_or("--step needs a value")?.parse()?;
        } else {
            files.push(PathBuf::from(a));
        }
    }
    if files.len() < 2 || !(step > 0.0 && step <= 0.5) {
        return Err("usage: fusion_bounds [--step S in (0, 0.5]] SCORES.tsv SCORES.tsv ...".into());
    }
    let systems: Vec<Trials> = files
        .iter()
        .map(|f| read_scores(f))
        .collect::<Result<_, _>>()?;
    let mut keys: Vec<&(String, String)> = systems[0].keys().collect();
    keys.sort();
    let labels: Vec<bool> = keys.iter().map(|k| systems[0][*k].0).collect();
    let mut columns: Vec<Vec<f64>> = Vec::new();
    for (s, path) in systems.iter().zip(&files) {
        if s.len() != keys.len() {
            return Err(format!(
                "{}: expected the {} trials of {}, got {}",
                path.display(),
                keys.len(),
                files[0].display(),
                s.len()
            )
            .into());
        }
        let mut col = Vec::with_capacity(keys.len());
        for (k, &y) in keys.iter().zip(&labels) {
            let &(t, score) = s
                .get(*k)
                .ok_or_else(|| format!("{}: trial {k:?} missing", path.display()))?;
            if t != y {
                return Err(format!("{}: trial {k:?} labelled differently", path.display()).into());
            }
            col.push(score);
        }
        columns.push(col);
    }
    let dcf = DcfParams::default();
    let measure = |scores: &[f64]| eer_and_min_dcf(scores, &labels, &dcf);
    let targets = labels.iter().filter(|&&t| t).count();
    println!(
        "{} trials ({} target, {} non-target)",
        labels.len(),
        targets,
        labels.len() - targets
    );
    let mut best_single = (f64::INFINITY, f64::INFINITY);
    for (col, path) in columns.iter().zip(&files) {
        let (eer, min_dcf) = measure(col)?;
        println!(
            "single  {:>6.2} % EER  minDCF {:.3}  {}",
            100.0 * eer,
            min_dcf,
            path.display()
        );
        best_single = (best_single.0.min(eer), best_single.1.min(min_dcf));
    }

    let n = (1.0 / step).round() as usize;
    let mut grid = Vec::new();
    simplex(columns.len(), n, &mut Vec::new(), &mut grid);
    let (mut beat_eer, mut beat_dcf, mut beat_both) = (0usize, 0usize, 0usize);
    let mut lowest_eer = (f64::INFINITY, Vec::new());
    let mut lowest_dcf = (f64::INFINITY, Vec::new());
    let mut fused = vec![0.0; labels.len()];
    for w in &grid {
        for (i, f) in fused.iter_mut().enumerate() {
            *f = columns.iter().zip(w).map(|(c, &wk)| wk * c[i]).sum();
        }
        let (eer, min_dcf) = measure(&fused)?;
        let (e, d) = (eer < best_single.0, min_dcf < best_single.1);
        beat_eer += usize::from(e);
        beat_dcf += usize::from(d);
        beat_both += usize::from(e && d);
        if eer < lowest_eer.0 {
            lowest_eer = (eer, w.clone());
        }
        if min_dcf < lowest_dcf.0 {
            lowest_dcf = (min_dcf, w.clone());
        }
    }
    println!(
        "scan    {} weightings (step {step}): {beat_eer} beat the best single EER ({:.2} %), \
         {beat_dcf} the best single minDCF ({:.3}), {beat_both} both",
        grid.len(),
        100.0 * best_single.0,
        best_single.1
    );
    println!(
        "        lowest EER {:.2} % at {:?}; lowest minDCF {:.3} at {:?}",
        100.0 * lowest_eer.0,
        lowest_eer.1,
        lowest_dcf.0,
        lowest_dcf.1
    );

    let refs: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
    let oracle = Fusion::train(&refs, &labels, &CalibrationOptions::default())?;
    for (i, f) in fused.iter_mut().enumerate() {
        let row: Vec<f64> = columns.iter().map(|c| c[i]).collect();
        *f = oracle.apply(&row)?;
    }
    let (eer, min_dcf) = measure(&fused)?;
    println!(
        "oracle  {:>6.2} % EER  minDCF {:.3}  (logistic regression fitted on these trials: \
         weights {:?}, offset {:.3})",
        100.0 * eer,
        min_dcf,
        oracle
            .weights
            .iter()
            .map(|w| (w * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>(),
        oracle.offset
    );
    Ok(())
}
