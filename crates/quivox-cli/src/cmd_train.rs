//! `quivox train-ubm`: the GMM-UBM recipe on a background folder.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use quivox::eval::Background;
use quivox::recipe::gmm::{train_gmm_ubm_system, GmmRecipeOptions, GmmRecipeProgress};

/// The background split shared by `train-ubm`, `train-cohort` and `train-backend`.
#[derive(Debug, Args)]
pub struct HoldoutArgs {
    /// Hold out every n-th background speaker with enough files (15) for the calibration
    /// trials; must be the same in train-ubm, train-cohort and train-backend, so that no model has
    /// seen the calibration speakers.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(2..))]
    pub holdout_every: u64,
}

impl HoldoutArgs {
    /// The recipes' `holdout_every`.
    pub fn every(&self) -> usize {
        self.holdout_every as usize
    }
}

/// Arguments of `quivox train-ubm`.
#[derive(Debug, Args)]
pub struct TrainUbmArgs {
    /// Background folder with `utt2spk` (e.g. ../shared/corpus/background).
    #[arg(long)]
    pub data: PathBuf,
    /// Number of Gaussian components.
    #[arg(long, default_value_t = 512)]
    pub components: usize,
    /// EM iterations after k-means++ initialisation.
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub holdout: HoldoutArgs,
    /// MAP relevance factor for the means, frames.
    #[arg(long, default_value_t = 8.0)]
    pub relevance: f64,
    /// UBM components scored per frame.
    #[arg(long, default_value_t = 5)]
    pub top_c: usize,
    /// Weight (repetitions) of the held-out isolated-word speakers' trials in the calibration.
    #[arg(long, default_value_t = 4)]
    pub word_trial_repeats: usize,
    /// Suppress stationary noise in the power spectrum before the mel filterbank (minimum
    /// statistics noise estimate, Wiener gain; `quivox::features::NoiseSuppressionOptions`). The
    /// front end is stored in the model file: every system trained on it, and every voiceprint
    /// enrolled with it, uses the same.
    #[arg(long)]
    pub noise_suppression: bool,
    /// Normalise the variance of the voiced features as well as their mean (sliding CMVN over
    /// the CMN window, `SlidingCmnOptions::norm_vars`); stored in the model file like the rest
    /// of the front end.
    #[arg(long)]
    pub cmvn: bool,
    /// Short-time feature warping of the voiced features instead of mean normalisation
    /// (`SlidingCmnOptions::feature_warping`, over a centred window of --warp-window frames).
    #[arg(long, conflicts_with = "cmvn")]
    pub feature_warping: bool,
    /// With --feature-warping: the warping window in frames (10 ms each).
    #[arg(long, requires = "feature_warping", default_value_t = 300)]
    pub warp_window: usize,
    /// Lower edge of the MFCC mel filterbank in Hz (default: the front end's, 20 Hz).
    #[arg(long)]
    pub mel_low_hz: Option<f32>,
    /// Floor on the frame energy (linear; default: the front end's,
    /// `quivox::features::DIGITAL_SILENCE_ENERGY_FLOOR` = 200, what 1 LSB of dither gives a
    /// frame); 0 turns it off (the front end of the models shipped before 2026-11-24 18:06 UTC).
    #[arg(long)]
    pub energy_floor: Option<f32>,
    /// Upper edge of the MFCC mel filterbank in Hz (default: the front end's, 3700 Hz).
    #[arg(long)]
    pub mel_high_hz: Option<f32>,
    /// With --noise-suppression: bias factor of the minimum-statistics noise estimate (>= 1).
    #[arg(long, requires = "noise_suppression")]
    pub ns_bias: Option<f32>,
    /// With --noise-suppression: lowest gain in dB (<= 0).
    #[arg(long, requires = "noise_suppression", allow_hyphen_values = true)]
    pub ns_floor_db: Option<f32>,
    /// Output model file.
    #[arg(long, default_value = "models/gmm-ubm.qvx")]
    pub out: PathBuf,
    /// Print the training report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn bar(len: u64, msg: &'static str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// Runs `train-ubm`.
pub fn run(args: &TrainUbmArgs) -> anyhow::Result<()> {
    let bg =
        Background::load(&args.data).with_context(|| format!("reading {}", args.data.display()))?;
    let mut opts = GmmRecipeOptions::default();
    opts.ubm.num_components = args.components;
    opts.ubm.num_iters = args.iters;
    opts.ubm.seed = args.seed;
    opts.system.map.mean_tau = args.relevance;
    opts.system.top_c = args.top_c;
    opts.word_trial_repeats = args.word_trial_repeats;
    opts.holdout_every = args.holdout.every();
    if let Some(low) = args.mel_low_hz {
        opts.front_end.mfcc.low_freq_hz = low;
    }
    if let Some(high) = args.mel_high_hz {
        opts.front_end.mfcc.high_freq_hz = high;
    }
    if let Some(floor) = args.energy_floor {
        opts.front_end.mfcc.energy_floor = floor;
    }
    opts.front_end.mfcc.validate()?;
    opts.front_end.sliding_cmn.norm_vars |= args.cmvn;
    if args.feature_warping {
        opts.front_end.sliding_cmn.feature_warping = true;
        opts.front_end.sliding_cmn.cmn_window = args.warp_window;
    }
    opts.front_end.sliding_cmn.validate()?;
    if args.noise_suppression {
        let mut ns = quivox::features::NoiseSuppressionOptions::default();
        if let Some(bias) = args.ns_bias {
            ns.bias = bias;
        }
        if let Some(floor) = args.ns_floor_db {
            ns.gain_floor_db = floor;
        }
        ns.validate()?;
        opts.front_end.mfcc.noise_suppression = Some(ns);
    }
    let features = bar(bg.utterances.len() as u64, "features");
    let em = bar(args.iters as u64, "EM");
    let done = AtomicUsize::new(0);
    let progress = |p: GmmRecipeProgress| match p {
        GmmRecipeProgress::Features { total } => {
            features.set_length(total as u64);
            features.set_position(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
        }
        GmmRecipeProgress::Em { iter, avg_loglik } => {
            features.finish();
            em.set_position(iter as u64 + 1);
            em.set_message(format!("EM {avg_loglik:.3}"));
        }
        GmmRecipeProgress::Calibration => {
            em.finish();
            eprintln!("calibrating on held-out background speakers...");
        }
    };
    let (system, report) = train_gmm_ubm_system(&bg, &opts, &progress)?;
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    system
        .save(&args.out, &opts.front_end)
        .with_context(|| format!("saving {}", args.out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "wrote {}: {} components, UBM on {} of {} voiced frames from {} files; calibration on {} held-out speakers ({} target / {} non-target trials)",
            args.out.display(),
            args.components,
            report.ubm_frames_used,
            report.ubm_frames_available,
            report.ubm_files,
            report.calibration_speakers,
            report.calibration_trials.0,
            report.calibration_trials.1
        );
    }
    Ok(())
}

/// Arguments of `quivox train-cohort`.
#[derive(Debug, Args)]
pub struct TrainCohortArgs {
    /// Background folder with `utt2spk`, optionally with channel copies under `aug/` (made by
    /// `scripts/make-augmented-background.sh`): each training speaker then gives one cohort model
    /// from its clean files and one from its copies.
    #[arg(long)]
    pub data: PathBuf,
    /// The GMM-UBM system to give a cohort (its UBM and MAP options are kept).
    #[arg(long, default_value = "models/gmm-ubm.qvx")]
    pub gmm: PathBuf,
    /// Cohort scores kept per side (adaptive S-norm's top K).
    #[arg(long, default_value_t = 200)]
    pub top_k: usize,
    /// Voiced frames kept of each cohort utterance (Z-norm side).
    #[arg(long, default_value_t = 300)]
    pub utterance_frames: usize,
    /// Calibrate on clean held-out trials only (default: clean and channel-copy tests).
    #[arg(long)]
    pub clean_trials_only: bool,
    #[command(flatten)]
    pub holdout: HoldoutArgs,
    /// Output system file (may be the input).
    #[arg(long, default_value = "models/gmm-ubm.qvx")]
    pub out: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `train-cohort`: adaptive S-norm cohort and recalibration of a GMM-UBM system.
pub fn run_cohort(args: &TrainCohortArgs) -> anyhow::Result<()> {
    use quivox::engine::voice::GmmUbmSystem;
    use quivox::recipe::gmm::{add_gmm_cohort, GmmCohortRecipeOptions};
    let bg =
        Background::load(&args.data).with_context(|| format!("reading {}", args.data.display()))?;
    let (system, front_end) =
        GmmUbmSystem::load(&args.gmm).with_context(|| format!("loading {}", args.gmm.display()))?;
    let mut opts = GmmCohortRecipeOptions::default();
    opts.cohort.top_k = args.top_k;
    opts.cohort.utterance_frames = args.utterance_frames;
    opts.channel_trials = !args.clean_trials_only;
    opts.holdout_every = args.holdout.every();
    let (system, report) = add_gmm_cohort(&system, &front_end, &bg, &opts, &|stage| {
        eprintln!("{stage}...")
    })?;
    system
        .save(&args.out, &front_end)
        .with_context(|| format!("saving {}", args.out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "wrote {}: cohort of {} models and {} utterances from {} training speakers (top K {}); calibration on {} held-out speakers ({} target / {} non-target trials)",
            args.out.display(),
            report.models,
            report.utterances,
            report.speakers,
            args.top_k,
            report.calibration_speakers,
            report.calibration_trials.0,
            report.calibration_trials.1
        );
    }
    Ok(())
}
