//! `quivox train-backend`: i-vector PLDA, embedding PLDA, their calibrations and the fusion with
//! the GMM-UBM system, trained on a background folder.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use quivox::embedding::{EncoderPrecision, EncoderWeights, SpeakerEncoder};
use quivox::engine::embedding_system::{embedder_fingerprint, file_sha256};
use quivox::engine::voice::GmmUbmSystem;
use quivox::eval::Background;
use quivox::recipe::backend::{
    train_backend_with, BackendProgress, BackendRecipeOptions, FusionComponent,
};
use quivox::recipe::trials::WholeCallChannels;

/// Arguments of `quivox train-backend`.
#[derive(Debug, Args)]
pub struct TrainBackendArgs {
    /// Background folder with `utt2spk` (e.g. ../shared/corpus/background).
    #[arg(long)]
    pub data: PathBuf,
    /// The trained GMM-UBM system (its UBM collects the i-vector statistics, its calibrated LLRs
    /// enter the fusion).
    #[arg(long, default_value = "models/gmm-ubm.qvx")]
    pub ubm: PathBuf,
    /// GE2E encoder weights (safetensors).
    #[arg(long, default_value = "models/speaker-encoder-ge2e.safetensors")]
    pub encoder: PathBuf,
    /// Output folder: ivector-plda.qvx, embedding-plda.qvx, fusion.qvx.
    #[arg(long, default_value = "models")]
    pub out_dir: PathBuf,
    /// I-vector dimension (size of T: components x feature dim x this, f32 in the file).
    #[arg(long, default_value_t = 200)]
    pub ivector_dim: usize,
    /// LDA output dimension of the i-vector back end (at most the i-vector dimension; the PLDA
    /// works in it).
    #[arg(long, default_value_t = 200)]
    pub ivector_lda_dim: usize,
    /// Total-variability EM iterations.
    #[arg(long, default_value_t = 6)]
    pub tv_iters: usize,
    /// Seed of the total-variability initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub holdout: crate::cmd_train::HoldoutArgs,
    /// Weight (repetitions) of the held-out isolated-word speakers' trials in the calibrations
    /// and the fusion (1: counted once, like every other trial; measured best, README).
    #[arg(long, default_value_t = 1)]
    pub word_trial_repeats: usize,
    /// Calibrate and fuse on clean held-out tests only, even when the background holds
    /// channel-augmented copies under `aug/` (by default each held-out test is also cut from the
    /// copies of its files, enrollment clean: calibration under channel mismatch).
    #[arg(long)]
    pub clean_trials_only: bool,
    /// Apply WCCN after LDA in both back ends (i-vector and embedding).
    #[arg(long)]
    pub wccn: bool,
    /// Keep a cohort of background vectors in both back ends for adaptive S-norm of their
    /// PLDA scores (top K = 200).
    #[arg(long)]
    pub s_norm: bool,
    /// Also recalibrate the fused LLR by measures of the test's quality, trained on the
    /// held-out trials with the fusion; stored in the fusion file and applied by eval and the
    /// engine. Comma-separated: `energy-spread` (the spread of the frame log energies, an SNR
    /// proxy), `log-speech-seconds` (the amount of speech scored). Without a value:
    /// energy-spread
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..,
        default_missing_value = "energy-spread",
        value_name = "MEASURES"
    )]
    pub quality_calibration: Option<Vec<quivox::calibration::QualityMeasure>>,
    /// Score the held-out calibration tests as the engine does with its adaptive noise
    /// suppression (a test whose frame-energy spread is under the default 25-dB gate through
    /// the suppressor), so that calibrations and fusion see the scores the engine gives.
    #[arg(long)]
    pub adaptive_noise_suppression: bool,
    /// Effective target prior the fusion's logistic regression is weighted for, in (0, 1).
    #[arg(long, default_value_t = 0.5)]
    pub fusion_prior: f64,
    /// Render every held-out channel test as a whole call through one phone channel (kinds in
    /// turn: codec, noise, handset, packet loss; `quivox::recipe::trials::add_whole_call_channel_tests`)
    /// instead of cutting it from the background's per-file copies, whose kinds change at every
    /// file boundary. Needs sox (AMR-NB, GSM 06.10) at training time only.
    #[arg(long, conflicts_with = "clean_trials_only")]
    pub whole_call_channels: bool,
    /// Seed of the whole-call channel draws.
    #[arg(long, default_value_t = 7, requires = "whole_call_channels")]
    pub whole_call_seed: u64,
    /// The sox binary used for AMR-NB and GSM 06.10 with --whole-call-channels.
    #[arg(long, default_value = "sox")]
    pub sox: PathBuf,
    /// Print the training report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write every held-out trial (labels, the three systems' calibrated LLRs, the fused LLR
    /// and the test's quality measures) to this tab-separated file, for analysis.
    #[arg(long, value_name = "FILE")]
    pub trial_scores: Option<PathBuf>,
}

/// Runs `train-backend`.
pub fn run(args: &TrainBackendArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let bg =
        Background::load(&args.data).with_context(|| format!("reading {}", args.data.display()))?;
    let (gmm, front_end) =
        GmmUbmSystem::load(&args.ubm).with_context(|| format!("loading {}", args.ubm.display()))?;
    // Training embeddings in the reference arithmetic (f32 products), whatever the CPU: the
    // shipped back end is rebuilt the same on any machine with the same SIMD width, and the
    // engine's bf16 products (where the CPU has them) stay within cosine 0.99998 of these.
    let weights = EncoderWeights::from_file(&args.encoder)
        .with_context(|| format!("loading {}", args.encoder.display()))?;
    let encoder = Arc::new(SpeakerEncoder::with_precision(
        &weights,
        EncoderPrecision::F32,
    )?);
    let encoder_sha = file_sha256(&args.encoder)?;
    let mut opts = BackendRecipeOptions {
        front_end: front_end.clone(),
        ..Default::default()
    };
    opts.ivector.tv.dim = args.ivector_dim;
    if args.ivector_lda_dim == 0 || args.ivector_lda_dim > args.ivector_dim {
        anyhow::bail!(
            "--ivector-lda-dim {}: expected 1 to the i-vector dimension ({})",
            args.ivector_lda_dim,
            args.ivector_dim
        );
    }
    opts.ivector.backend.lda_dim = Some(args.ivector_lda_dim);
    opts.ivector.tv.iterations = args.tv_iters;
    opts.ivector.tv.seed = args.seed;
    opts.holdout_every = args.holdout.every();
    opts.word_trial_repeats = args.word_trial_repeats;
    opts.channel_trials = !args.clean_trials_only;
    opts.quality_measures = args.quality_calibration.clone().unwrap_or_default();
    opts.fusion_prior = args.fusion_prior;
    opts.adaptive_noise_suppression = args
        .adaptive_noise_suppression
        .then(quivox::features::AdaptiveNoiseSuppression::default);
    opts.ivector.backend.wccn = args.wccn;
    opts.embedding.backend.wccn = args.wccn;
    opts.ivector.backend.s_norm = args.s_norm;
    opts.embedding.backend.s_norm = args.s_norm;
    let done = AtomicUsize::new(0);
    let progress = |p: BackendProgress| match p {
        BackendProgress::Stage(s) => {
            done.store(0, Ordering::Relaxed);
            eprintln!("[{:>6.1} s] {s}", t0.elapsed().as_secs_f64());
        }
        BackendProgress::File { total } => {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(500) || n == total {
                eprintln!("[{:>6.1} s]   {n}/{total} done", t0.elapsed().as_secs_f64());
            }
        }
        BackendProgress::TvIteration { iter, objective } => eprintln!(
            "[{:>6.1} s]   T iteration {} objective {objective:.4}",
            t0.elapsed().as_secs_f64(),
            iter + 1
        ),
        _ => {}
    };
    let codec = |c, x: &[f32]| crate::cmd_augment::sox_codec(&args.sox, c, x);
    let whole_call = args.whole_call_channels.then(|| WholeCallChannels {
        kinds: quivox::augment::ChannelKind::ALL.to_vec(),
        seed: args.whole_call_seed,
        babble_pool: 200,
        codec: &codec,
    });
    let (models, report) =
        train_backend_with(&bg, &gmm, &encoder, &opts, whole_call.as_ref(), &progress)?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let ivector_path = args.out_dir.join("ivector-plda.qvx");
    let embedding_path = args.out_dir.join("embedding-plda.qvx");
    let fusion_path = args.out_dir.join("fusion.qvx");
    models
        .ivector
        .save(&ivector_path, &front_end)
        .with_context(|| format!("saving {}", ivector_path.display()))?;
    models
        .embedding
        .save(&embedding_path, &embedder_fingerprint(&encoder_sha, true)?)
        .with_context(|| format!("saving {}", embedding_path.display()))?;
    let component = |system: &str, path: &Path| -> anyhow::Result<FusionComponent> {
        Ok(FusionComponent {
            system: system.to_owned(),
            sha256: file_sha256(path)?,
        })
    };
    let components = vec![
        component("gmm", &args.ubm)?,
        component("ivector", &ivector_path)?,
        component("embedding", &embedding_path)?,
    ];
    models
        .fusion
        .save(&fusion_path, &front_end, &components)
        .with_context(|| format!("saving {}", fusion_path.display()))?;
    if let Some(path) = &args.trial_scores {
        let text = quivox::recipe::backend::held_out_trials_tsv(&report.held_out_trials);
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if report.augmented_train_files > 0 {
            println!(
                "augmented background: {} of the {} training files are channel copies (aug/); held-out split from the clean files; {} of the held-out tests are cut from channel copies (enrollment clean){}",
                report.augmented_train_files,
                report.train_files,
                report.channel_tests,
                if args.clean_trials_only { " (--clean-trials-only)" } else { "" }
            );
        }
        println!(
            "wrote {}, {}, {} in {:.0} s: {} training files of {} speakers; {} held-out speakers, {} target / {} non-target trials ({} word targets); fusion weights {:?} offset {:.3}",
            ivector_path.display(),
            embedding_path.display(),
            fusion_path.display(),
            t0.elapsed().as_secs_f64(),
            report.train_files,
            report.train_speakers,
            report.held_out_speakers,
            report.trials.0,
            report.trials.1,
            report.trials.2,
            report.fusion.weights,
            report.fusion.offset
        );
        if let Some(q) = &report.quality {
            let terms: Vec<String> = q
                .terms
                .iter()
                .map(|t| {
                    format!(
                        "{} clamped to [{:.2}, {:.2}], centred on {:.2}",
                        t.measure.name(),
                        t.lo,
                        t.hi,
                        t.centre
                    )
                })
                .collect();
            println!(
                "quality recalibration of the fused LLR ({}): weights (llr, then q and llr·q per measure) {:?} offset {:.3}",
                terms.join("; "),
                q.fusion.weights,
                q.fusion.offset
            );
        }
    }
    Ok(())
}
