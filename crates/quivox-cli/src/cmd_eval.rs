//! `quivox eval`: EER, minDCF, Cllr, identification on `../shared/corpus`-style sets.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use quivox::engine::voice::GmmUbmSystem;
use quivox::eval::{markdown_table, report, DevSet, OpenSetRule, SystemReport};
use quivox::metrics::{det_curve, DetPlot};
use quivox::recipe::eval::{score_gmm, set_features};

/// Arguments of `quivox eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Corpus root holding the sets (e.g. ../shared/corpus).
    #[arg(long, default_value = "../shared/corpus")]
    pub corpus: PathBuf,
    /// Comma-separated set names under the corpus root.
    #[arg(long, default_value = "dev,dev-read", value_delimiter = ',')]
    pub sets: Vec<String>,
    /// GMM-UBM system file.
    #[arg(long, default_value = "models/gmm-ubm.qvx")]
    pub gmm: PathBuf,
    /// Write a DET curve (SVG) per set to this folder.
    #[arg(long)]
    pub det_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let (gmm, front_end) =
        GmmUbmSystem::load(&args.gmm).with_context(|| format!("loading {}", args.gmm.display()))?;
    let mut reports: Vec<SystemReport> = Vec::new();
    for name in &args.sets {
        let root = args.corpus.join(name);
        let set = DevSet::load(&root).with_context(|| format!("reading set {}", root.display()))?;
        let feats = set_features(&set, &front_end)?;
        let (scores, ms) = score_gmm(&gmm, &feats)?;
        let system = format!(
            "GMM-UBM {} top-{}",
            gmm.ubm.num_components(),
            gmm.options.top_c
        );
        let mut r = report(
            &system,
            name,
            &set,
            &scores,
            gmm.calibration.is_some(),
            &OpenSetRule::default(),
        )?;
        r.identify_ms_per_call = Some(ms);
        if let Some(dir) = &args.det_dir {
            std::fs::create_dir_all(dir)?;
            let (s, l): (Vec<f64>, Vec<bool>) = set
                .trials
                .iter()
                .map(|t| (scores.get(t.enrollment, t.test), t.target))
                .unzip();
            let mut plot = DetPlot::new(&format!("DET: {name}"));
            plot.add_system(&system, det_curve(&s, &l)?);
            let path = dir.join(format!("det-{name}.svg"));
            std::fs::write(&path, plot.to_svg())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        reports.push(r);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", markdown_table(&reports));
    }
    Ok(())
}
