//! `quivox eval`: EER, minDCF, actDCF, Cllr, identification on `../shared/corpus`-style sets, for
//! the GMM-UBM, i-vector PLDA, embedding PLDA systems and their fusion (shipped model files; no
//! training here).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use quivox::embedding::SpeakerEncoder;
use quivox::engine::embedding_system::{embedder_fingerprint, file_sha256, EmbeddingPldaSystem};
use quivox::engine::ivector_system::IvectorPldaSystem;
use quivox::engine::voice::GmmUbmSystem;
use quivox::eval::score_files::{test_quality_tsv, trial_scores_tsv};
use quivox::eval::{markdown_table, report, DevSet, OpenSetRule, ScoreMatrix, SystemReport};
use quivox::metrics::{det_curve, DetPlot};
use quivox::recipe::backend::{
    score_embedding, score_ivector, set_embeddings, FusedSystem, FusionComponent,
};
use quivox::recipe::eval::{score_gmm, set_features};

/// Which system(s) `eval` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SystemChoice {
    /// GMM-UBM (models/gmm-ubm.qvx).
    Gmm,
    /// I-vector PLDA (models/ivector-plda.qvx).
    Ivector,
    /// GE2E embeddings with PLDA (models/embedding-plda.qvx), and cosine scoring.
    Embedding,
    /// Fusion of the three (models/fusion.qvx; needs all three systems).
    Fusion,
    /// Every system.
    All,
}

/// Arguments of `quivox eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Corpus root holding the sets (e.g. ../shared/corpus).
    #[arg(long, default_value = "../shared/corpus")]
    pub corpus: PathBuf,
    /// Comma-separated set names under the corpus root.
    #[arg(long, default_value = "dev,dev-read", value_delimiter = ',')]
    pub sets: Vec<String>,
    /// System(s) to evaluate.
    #[arg(long, value_enum, default_value = "all")]
    pub system: SystemChoice,
    /// GMM-UBM system file.
    #[arg(long, default_value = "models/gmm-ubm.qvx")]
    pub gmm: PathBuf,
    /// I-vector PLDA system file.
    #[arg(long, default_value = "models/ivector-plda.qvx")]
    pub ivector: PathBuf,
    /// Embedding PLDA back-end file.
    #[arg(long, default_value = "models/embedding-plda.qvx")]
    pub embedding: PathBuf,
    /// GE2E encoder weights.
    #[arg(long, default_value = "models/speaker-encoder-ge2e.safetensors")]
    pub encoder: PathBuf,
    /// Fusion file.
    #[arg(long, default_value = "models/fusion.qvx")]
    pub fusion: PathBuf,
    /// Write a DET curve per set and system to this folder, as SVG and PNG
    /// (det-<set>-<system>.svg and det-<set>-<system>.png).
    #[arg(long)]
    pub det_dir: Option<PathBuf>,
    /// Write every system's trial scores to this folder, one file per set and system
    /// (scores-<set>-<system>.tsv: enrollment speaker, test file relative to the set, target|nontarget,
    /// score; the score is the calibrated natural-log likelihood ratio where the system has a
    /// calibration), and each test's quality measures, one file per set (tests-<set>.tsv: test
    /// file, spread of its frame log energies in nats, voiced frames).
    #[arg(long)]
    pub scores_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Score every recording with the models' front end only: no adaptive noise suppression
    /// (by default an enrollment or test whose frame-energy spread is under the gate is computed
    /// with the noise suppressor, as the engine does).
    #[arg(long)]
    pub no_noise_suppression: bool,
    /// Gate of the adaptive noise suppression: energy spread (90th − 10th percentile of frame log
    /// energies) in dB under which a recording is suppressed.
    #[arg(long, default_value_t = quivox::features::AdaptiveNoiseSuppression::default().max_spread_db)]
    pub ns_max_spread_db: f64,
    /// Bias factor of the adaptive suppressor's noise estimate (>= 1).
    #[arg(long, default_value_t = quivox::features::AdaptiveNoiseSuppression::default().suppression.bias)]
    pub ns_bias: f32,
    /// Lowest gain of the adaptive suppressor in dB (<= 0).
    #[arg(long, allow_hyphen_values = true, default_value_t = quivox::features::AdaptiveNoiseSuppression::default().suppression.gain_floor_db)]
    pub ns_floor_db: f32,
    /// Open-set identification: posterior a speaker needs to be named (default: the engine's
    /// confidence; 0.5 names the maximum a posteriori speaker whenever it beats "unknown" by a
    /// little).
    #[arg(long, default_value_t = OpenSetRule::default().min_posterior)]
    pub open_min_posterior: f64,
}

impl EvalArgs {
    /// The adaptive noise suppression these arguments ask for.
    fn adaptive_noise_suppression(
        &self,
    ) -> anyhow::Result<Option<quivox::features::AdaptiveNoiseSuppression>> {
        if self.no_noise_suppression {
            return Ok(None);
        }
        let mut ns = quivox::features::AdaptiveNoiseSuppression {
            max_spread_db: self.ns_max_spread_db,
            ..Default::default()
        };
        ns.suppression.bias = self.ns_bias;
        ns.suppression.gain_floor_db = self.ns_floor_db;
        ns.validate()?;
        Ok(Some(ns))
    }
}

struct Loaded {
    gmm: GmmUbmSystem,
    front_end: quivox::features::FrontEndOptions,
    ivector: Option<IvectorPldaSystem>,
    embedding: Option<(EmbeddingPldaSystem, Arc<SpeakerEncoder>)>,
    fusion: Option<FusedSystem>,
}

fn load(args: &EvalArgs) -> anyhow::Result<Loaded> {
    use SystemChoice::*;
    let (gmm, front_end) =
        GmmUbmSystem::load(&args.gmm).with_context(|| format!("loading {}", args.gmm.display()))?;
    let want = |s: SystemChoice| args.system == s || matches!(args.system, All | Fusion);
    let ivector = if want(Ivector) {
        Some(
            IvectorPldaSystem::load_for(&args.ivector, &front_end)
                .with_context(|| format!("loading {}", args.ivector.display()))?,
        )
    } else {
        None
    };
    let embedding = if want(Embedding) {
        let fp = embedder_fingerprint(&file_sha256(&args.encoder)?, true)?;
        let system = EmbeddingPldaSystem::load(&args.embedding, &fp)
            .with_context(|| format!("loading {}", args.embedding.display()))?;
        let encoder = SpeakerEncoder::from_file(&args.encoder)
            .with_context(|| format!("loading {}", args.encoder.display()))?;
        Some((system, Arc::new(encoder)))
    } else {
        None
    };
    let fusion = if matches!(args.system, All | Fusion) {
        let (fused, components) = FusedSystem::load(&args.fusion, &front_end)
            .with_context(|| format!("loading {}", args.fusion.display()))?;
        FusionComponent::verify_all(&args.fusion, &components, |system| match system {
            "gmm" => Some(args.gmm.clone()),
            "ivector" => Some(args.ivector.clone()),
            "embedding" => Some(args.embedding.clone()),
            _ => None,
        })?;
        if fused.systems != ["gmm", "ivector", "embedding"] {
            bail!(
                "{}: fuses {:?}; this eval fuses gmm, ivector, embedding",
                args.fusion.display(),
                fused.systems
            );
        }
        Some(fused)
    } else {
        None
    };
    Ok(Loaded {
        gmm,
        front_end,
        ivector,
        embedding,
        fusion,
    })
}

/// Runs `eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let m = load(args)?;
    let want_gmm = matches!(
        args.system,
        SystemChoice::Gmm | SystemChoice::All | SystemChoice::Fusion
    );
    let show = |s: SystemChoice| args.system == s || args.system == SystemChoice::All;
    anyhow::ensure!(
        args.open_min_posterior > 0.0 && args.open_min_posterior < 1.0,
        "--open-min-posterior must be in (0, 1), got {}",
        args.open_min_posterior
    );
    let rule = OpenSetRule {
        min_posterior: args.open_min_posterior,
        ..OpenSetRule::default()
    };
    let adaptive = args.adaptive_noise_suppression()?;
    let mut reports: Vec<SystemReport> = Vec::new();
    for name in &args.sets {
        let root = args.corpus.join(name);
        let set = DevSet::load(&root).with_context(|| format!("reading set {}", root.display()))?;
        // The embedding's noise-suppression gate reads the MFCC front end's analysis.
        let feats =
            if want_gmm || m.ivector.is_some() || (m.embedding.is_some() && adaptive.is_some()) {
                Some(set_features(&set, &m.front_end, adaptive.as_ref())?)
            } else {
                None
            };
        if let (Some(dir), Some(feats)) = (&args.scores_dir, &feats) {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("tests-{name}.tsv"));
            std::fs::write(&path, test_quality_tsv(&set, &feats.test_quality()))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let mut systems: Vec<(String, ScoreMatrix, Option<f64>)> = Vec::new();
        let gmm_scores = match (&feats, want_gmm) {
            (Some(f), true) => Some(score_gmm(&m.gmm, f)?),
            _ => None,
        };
        let ivector_scores = match (&feats, &m.ivector) {
            (Some(f), Some(iv)) => Some(score_ivector(iv, f)?),
            _ => None,
        };
        let (emb_scores, cos_scores) = match &m.embedding {
            Some((system, encoder)) => {
                let emb = set_embeddings(&set, encoder, adaptive.as_ref().zip(feats.as_ref()))?;
                (
                    Some(score_embedding(system, &emb, false)?),
                    Some(score_embedding(system, &emb, true)?),
                )
            }
            None => (None, None),
        };
        if let (Some(g), true) = (&gmm_scores, show(SystemChoice::Gmm)) {
            let label = format!(
                "GMM-UBM {} top-{}",
                m.gmm.ubm.num_components(),
                m.gmm.options.top_c
            );
            systems.push((label, g.0.clone(), Some(g.1)));
        }
        if let (Some(i), true) = (&ivector_scores, show(SystemChoice::Ivector)) {
            let iv = m.ivector.as_ref().map_or(0, |s| s.extractor.ivector_dim());
            systems.push((format!("i-vector {iv} PLDA"), i.0.clone(), Some(i.1)));
        }
        if show(SystemChoice::Embedding) {
            if let (Some(e), Some(c)) = (&emb_scores, &cos_scores) {
                systems.push(("GE2E embedding PLDA".into(), e.0.clone(), Some(e.1)));
                systems.push(("GE2E embedding cosine".into(), c.0.clone(), Some(c.1)));
            }
        }
        if let (Some(f), Some(g), Some(i), Some(e)) =
            (&m.fusion, &gmm_scores, &ivector_scores, &emb_scores)
        {
            let quality = feats.as_ref().map(|f| f.test_quality());
            let fused = f.apply_matrices(&[&g.0, &i.0, &e.0], quality.as_deref())?;
            systems.push(("fusion (GMM + i-vector + embedding)".into(), fused, None));
        }
        for (label, scores, ms) in systems {
            let mut r = report(&label, name, &set, &scores, true, &rule)?;
            r.identify_ms_per_call = ms;
            let slug: String = label
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            if let Some(dir) = &args.scores_dir {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(format!("scores-{name}-{slug}.tsv"));
                std::fs::write(&path, trial_scores_tsv(&set, &scores))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(dir) = &args.det_dir {
                std::fs::create_dir_all(dir)?;
                let (s, l): (Vec<f64>, Vec<bool>) = set
                    .trials
                    .iter()
                    .map(|t| (scores.get(t.enrollment, t.test), t.target))
                    .unzip();
                let mut plot = DetPlot::new(&format!("DET: {name}, {label}"));
                plot.add_system(&label, det_curve(&s, &l)?);
                let svg_path = dir.join(format!("det-{name}-{slug}.svg"));
                std::fs::write(&svg_path, plot.to_svg())
                    .with_context(|| format!("writing {}", svg_path.display()))?;
                let png_path = svg_path.with_extension("png");
                std::fs::write(&png_path, plot.to_png()?)
                    .with_context(|| format!("writing {}", png_path.display()))?;
            }
            reports.push(r);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!("{}", markdown_table(&reports));
    }
    Ok(())
}
