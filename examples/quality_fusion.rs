//! Fusions with and without the test's quality, trained on the back-end recipe's held-out trials
//! and measured on development sets: where the shipped form (one linear fusion, then a
//! recalibration of the fused LLR by the test's energy spread) stands against a fusion whose
//! per-system weights depend on that spread (the "quality measure functions" of BOSARIS-style
//! fusion: each system's weight is affine in the measure).
//!
//! ```text
//! quivox train-backend --data /tmp/qvx-aug5/background-aug --ubm models/gmm-ubm.qvx \
//!     --out-dir /tmp/m --quality-calibration --whole-call-channels --trial-scores /tmp/m/trials.tsv
//! quivox eval --corpus ../shared/corpus --sets dev,dev-read --scores-dir /tmp/scores
//! quivox eval --corpus /work/degraded --sets dev-read-all,dev-all --scores-dir /tmp/scores
//! cargo run --release --example quality_fusion -- /tmp/m/trials.tsv \
//!     /tmp/scores:dev /tmp/scores:dev-read /tmp/scores:dev-read-all /tmp/scores:dev-all
//! ```
//!
//! Each `DIR:SET` needs `DIR/scores-SET-<system>.tsv` of the GMM-UBM, i-vector PLDA, GE2E
//! embedding PLDA and fusion, and `DIR/tests-SET.tsv` (all written by `quivox eval
//! --scores-dir`). Three fusions are fitted on the held-out trials (logistic regression, prior
//! 0.5, as `train-backend` fits them) and applied to the three systems' calibrated LLRs of each
//! set: **linear** (the shipped fusion without its recalibration), **linear + quality** (the
//! shipped form: with `--quality-calibration` in the command above its weights are those of
//! `fusion.qvx`, so its row reproduces the shipped fusion's), and **per-system quality** (the
//! three LLRs, the clamped and centred spread q, and the three products LLR·q). Nothing here is
//! fitted on a development set.

use std::collections::HashMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use quivox::calibration::{
    CalibrationOptions, Fusion, QualityCalibration, QualityMeasure, QualityTerm, TestQuality,
};
use quivox::eval::score_files::{read_test_quality, read_trial_scores};
use quivox::metrics::{cllr, eer_and_min_dcf, DcfParams};
use quivox::recipe::backend::read_held_out_trials;

/// The three fused systems' score-file slugs (after `scores-<set>-`) and the shipped fusion's.
const SYSTEMS: [&str; 3] = ["GMM-UBM-", "i-vector-", "GE2E-embedding-PLDA"];
const FUSION: &str = "fusion-";

/// Clamp of the energy spread (nats), as the shipped recalibration's.
const CLAMP: (f64, f64) = QualityCalibration::DEFAULT_CLAMP;

/// The fusions compared.
struct Fusions {
    linear: Fusion,
    recalibration: QualityCalibration,
    per_system: Fusion,
    /// The clamped, centred spread of `per_system`.
    term: QualityTerm,
}

impl Fusions {
    fn train(
        llrs: &[Vec<f64>; 3],
        quality: &[TestQuality],
        y: &[bool],
    ) -> Result<Self, Box<dyn Error>> {
        let options = CalibrationOptions::default();
        let cols: Vec<&[f64]> = llrs.iter().map(Vec::as_slice).collect();
        let linear = Fusion::train(&cols, y, &options)?;
        let fused: Vec<f64> = (0..y.len())
            .map(|k| linear.apply(&[llrs[0][k], llrs[1][k], llrs[2][k]]))
            .collect::<Result<_, _>>()?;
        let recalibration = QualityCalibration::train(
            &fused,
            quality,
            y,
            &[(QualityMeasure::EnergySpread, Some(CLAMP))],
            &options,
        )?;
        // centred on the training trials' mean, as the recalibration's term
        let term = recalibration.terms[0].clone();
        let columns = per_system_columns(llrs, quality, &term);
        let cols: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        let per_system = Fusion::train(&cols, y, &options)?;
        Ok(Self {
            linear,
            recalibration,
            per_system,
            term,
        })
    }

    /// The three fusions' LLRs of every trial.
    fn apply(
        &self,
        llrs: &[Vec<f64>; 3],
        quality: &[TestQuality],
    ) -> Result<[Vec<f64>; 3], Box<dyn Error>> {
        let n = quality.len();
        let linear: Vec<f64> = (0..n)
            .map(|k| self.linear.apply(&[llrs[0][k], llrs[1][k], llrs[2][k]]))
            .collect::<Result<_, _>>()?;
        let recalibrated: Vec<f64> = linear
            .iter()
            .zip(quality)
            .map(|(&l, q)| self.recalibration.apply(l, q))
            .collect();
        let columns = per_system_columns(llrs, quality, &self.term);
        let per_system: Vec<f64> = (0..n)
            .map(|k| {
                let row: Vec<f64> = columns.iter().map(|c| c[k]).collect();
                self.per_system.apply(&row)
            })
            .collect::<Result<_, _>>()?;
        Ok([linear, recalibrated, per_system])
    }
}

/// Columns of the per-system quality fusion: LLR₁..₃, q, LLR₁..₃·q (q clamped and centred).
fn per_system_columns(
    llrs: &[Vec<f64>; 3],
    quality: &[TestQuality],
    term: &QualityTerm,
) -> Vec<Vec<f64>> {
    let q: Vec<f64> = quality.iter().map(|t| term.centred(t)).collect();
    let mut columns: Vec<Vec<f64>> = llrs.to_vec();
    columns.push(q.clone());
    for l in llrs {
        columns.push(l.iter().zip(&q).map(|(a, b)| a * b).collect());
    }
    columns
}

fn rounded(w: &[f64]) -> Vec<f64> {
    w.iter().map(|w| (w * 1000.0).round() / 1000.0).collect()
}

/// The score file of `slug` for `set` in `dir`.
fn score_file(dir: &Path, set: &str, slug: &str) -> Result<PathBuf, Box<dyn Error>> {
    let prefix = format!("scores-{set}-{slug}");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".tsv"))
        })
        .collect();
    found.sort();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!(
            "{}: expected one {prefix}*.tsv, found {found:?}",
            dir.display()
        )
        .into()),
    }
}

/// One set's labels, the three systems' LLRs, the shipped fusion's and each trial's test quality.
struct SetScores {
    labels: Vec<bool>,
    llrs: [Vec<f64>; 3],
    shipped: Vec<f64>,
    quality: Vec<TestQuality>,
}

fn read_set(dir: &Path, set: &str) -> Result<SetScores, Box<dyn Error>> {
    let quality: HashMap<String, TestQuality> =
        read_test_quality(&dir.join(format!("tests-{set}.tsv")))?
            .into_iter()
            .collect();
    let read = |slug: &str| -> Result<_, Box<dyn Error>> {
        let mut trials = read_trial_scores(&score_file(dir, set, slug)?)?;
        trials.sort_by(|a, b| (&a.enrollment, &a.test).cmp(&(&b.enrollment, &b.test)));
        Ok(trials)
    };
    let first = read(SYSTEMS[0])?;
    let mut columns = Vec::new();
    for slug in SYSTEMS.iter().copied().chain([FUSION]) {
        let trials = read(slug)?;
        if trials.len() != first.len()
            || trials.iter().zip(&first).any(|(a, b)| {
                (&a.enrollment, &a.test, a.target) != (&b.enrollment, &b.test, b.target)
            })
        {
            return Err(format!("{set}: the {slug} scores are not of the same trials").into());
        }
        columns.push(trials.iter().map(|t| t.score).collect::<Vec<f64>>());
    }
    let quality = first
        .iter()
        .map(|t| {
            quality
                .get(&t.test)
                .copied()
                .ok_or_else(|| format!("{set}: no quality for test {}", t.test))
        })
        .collect::<Result<_, _>>()?;
    let shipped = columns.pop().unwrap_or_default();
    let mut it = columns.into_iter();
    let mut next = || it.next().unwrap_or_default();
    Ok(SetScores {
        labels: first.iter().map(|t| t.target).collect(),
        llrs: [next(), next(), next()],
        shipped,
        quality,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: quality_fusion HELD_OUT_TRIALS.tsv DIR:SET [DIR:SET ...]".into());
    }
    let rows = read_held_out_trials(Path::new(&args[0]))?;
    let y: Vec<bool> = rows.iter().map(|r| r.target).collect();
    let llrs: [Vec<f64>; 3] = [0, 1, 2].map(|s| rows.iter().map(|r| r.llrs[s]).collect());
    let quality: Vec<TestQuality> = rows.iter().map(|r| r.quality).collect();
    let fusions = Fusions::train(&llrs, &quality, &y)?;
    println!(
        "held-out trials: {} ({} target)",
        y.len(),
        y.iter().filter(|&&t| t).count()
    );
    println!(
        "linear            weights {:?} offset {:.3}",
        rounded(&fusions.linear.weights),
        fusions.linear.offset
    );
    println!(
        "  + quality       (llr, q, llr·q) {:?} offset {:.3}, q centred on {:.2}",
        rounded(&fusions.recalibration.fusion.weights),
        fusions.recalibration.fusion.offset,
        fusions.recalibration.terms[0].centre
    );
    println!(
        "per-system quality (gmm, ivector, embedding, q, gmm·q, ivector·q, embedding·q) {:?} offset {:.3}, q centred on {:.2}",
        rounded(&fusions.per_system.weights),
        fusions.per_system.offset,
        fusions.term.centre
    );
    let dcf = DcfParams::default();
    println!("| set | fusion | EER % | minDCF | Cllr |\n|---|---|---:|---:|---:|");
    for spec in &args[1..] {
        let (dir, set) = spec
            .rsplit_once(':')
            .ok_or_else(|| format!("{spec:?}: expected DIR:SET"))?;
        let s = read_set(Path::new(dir), set)?;
        let [linear, recalibrated, per_system] = fusions.apply(&s.llrs, &s.quality)?;
        for (name, scores) in [
            ("shipped fusion.qvx (eval)", &s.shipped),
            ("linear", &linear),
            ("linear + quality (shipped form)", &recalibrated),
            ("per-system quality", &per_system),
        ] {
            let (eer, min_dcf) = eer_and_min_dcf(scores, &s.labels, &dcf)?;
            println!(
                "| {set} | {name} | {:.2} | {:.3} | {:.3} |",
                100.0 * eer,
                min_dcf,
                cllr(scores, &s.labels)?
            );
        }
    }
    Ok(())
}
