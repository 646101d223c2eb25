//! Training and evaluation recipes: the stages that turn `../shared/corpus`-style data into
//! shipped models (UBM, total variability, LDA/WCCN/PLDA, calibration) and into evaluation scores.
//! Each stage is a plain function over in-memory data so the CLI stays thin and tests can run
//! stages on small synthetic inputs.

use std::path::{Path, PathBuf};

pub mod backend;
pub mod eval;
pub mod gmm;
pub mod trials;

use rayon::prelude::*;

use crate::audio::{self, AudioError, ChannelPolicy, ReadOptions, Waveform};
use crate::features::{
    AdaptiveNoiseSuppression, EnergyRange, FeatureError, FeatureMatrix, FrontEnd, FrontEndOptions,
};

/// Errors of the recipes: which stage and which file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecipeError {
    /// Reading audio failed.
    #[error("{path}: {source}")]
    Audio {
        /// The file.
        path: PathBuf,
        /// The audio error.
        #[source]
        source: AudioError,
    },
    /// Feature extraction failed.
    #[error("{path}: features: {source}")]
    Features {
        /// The file.
        path: PathBuf,
        /// The feature error.
        #[source]
        source: FeatureError,
    },
    /// Too little speech to use.
    #[error("{what}: {frames} voiced frames, expected at least {min}")]
    TooLittleSpeech {
        /// What was being processed.
        what: String,
        /// Voiced frames found.
        frames: usize,
        /// Minimum needed.
        min: usize,
    },
    /// Another stage failed.
    #[error("{stage}: {message}")]
    Stage {
        /// The stage.
        stage: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl RecipeError {
    /// Wraps any displayable error as a stage failure.
    pub fn stage(stage: &'static str, err: impl std::fmt::Display) -> Self {
        RecipeError::Stage {
            stage,
            message: err.to_string(),
        }
    }
}

/// Reads a WAV as 8 kHz mono for speaker recognition (resampling other rates, downmixing
/// multi-channel files only when `channels` says so).
pub fn read_telephone_wav(path: &Path, channels: ChannelPolicy) -> Result<Waveform, RecipeError> {
    let opts = ReadOptions {
        channels,
        target_sample_rate_hz: Some(8000),
    };
    audio::read_wav(path, &opts).map_err(|source| RecipeError::Audio {
        path: path.to_path_buf(),
        source,
    })
}

/// Voiced, normalised front-end features of a session recorded as several files (e.g. an
/// enrollment list, "concatenate them to enroll"): the files are concatenated and go through the
/// front end as one recording, so VAD and CMN windows span file boundaries as they span the words
/// and pauses of a call.
pub fn features_of_files(
    paths: &[PathBuf],
    opts: &FrontEndOptions,
) -> Result<FeatureMatrix, RecipeError> {
    features_of_session(paths, opts, None)
}

/// What the front end measured of a recording or session besides its features: the spread of
/// its frame log energies (the SNR proxy of the quality recalibration and of the adaptive noise
/// suppression's gate) and whether the gate sent it through the noise suppressor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordingAnalysis {
    /// Spread between the 90th and 10th percentile of the frame log energies of every file
    /// (nats, plain front end: [`EnergyRange::spread_nats`]); NaN under two frames.
    pub energy_spread_nats: f64,
    /// The features were computed with the noise suppressor (spread under the adaptive gate).
    pub suppressed: bool,
}

impl RecordingAnalysis {
    /// An analysis of this spread (nats; NaN when unknown) and gate decision.
    pub fn new(energy_spread_nats: f64, suppressed: bool) -> Self {
        Self {
            energy_spread_nats,
            suppressed,
        }
    }

    /// The analysis of these frame log energies (plain front end) and gate decision.
    pub(crate) fn of(energy: &EnergyRange, suppressed: bool) -> Self {
        Self::new(energy.spread_nats().unwrap_or(f64::NAN), suppressed)
    }
}

/// [`features_of_files`] with adaptive noise suppression: when the frame log energies of the
/// session are under the gate ([`AdaptiveNoiseSuppression::applies_to`]), it is computed again
/// with the suppressor, as the engine does for a recording. Without `adaptive`, or with a front
/// end that suppresses noise itself, this is [`features_of_files`].
pub fn features_of_session(
    paths: &[PathBuf],
    opts: &FrontEndOptions,
    adaptive: Option<&AdaptiveNoiseSuppression>,
) -> Result<FeatureMatrix, RecipeError> {
    analysed_session(paths, opts, adaptive).map(|(features, _)| features)
}

/// [`features_of_session`], with what the front end measured of the session.
pub fn analysed_session(
    paths: &[PathBuf],
    opts: &FrontEndOptions,
    adaptive: Option<&AdaptiveNoiseSuppression>,
) -> Result<(FeatureMatrix, RecordingAnalysis), RecipeError> {
    let waves = paths
        .iter()
        .map(|p| read_telephone_wav(p, ChannelPolicy::RequireMono))
        .collect::<Result<Vec<_>, _>>()?;
    let session = paths.first().cloned().unwrap_or_default();
    let joined = Waveform::concatenate(&waves).unwrap_or(Waveform {
        sample_rate_hz: 8000,
        samples: Vec::new(),
    });
    let run = |opts: &FrontEndOptions| {
        let mut front_end =
            FrontEnd::new(opts.clone()).map_err(|source| RecipeError::Features {
                path: PathBuf::from("<options>"),
                source,
            })?;
        let out = front_end
            .compute(&joined.samples)
            .map_err(|source| RecipeError::Features {
                path: session.clone(),
                source,
            })?;
        Ok::<_, RecipeError>((
            out.features,
            EnergyRange::of_log_energy(front_end.log_energy()),
        ))
    };
    let (plain, energy) = run(opts)?;
    match AdaptiveNoiseSuppression::in_force(adaptive, &opts.mfcc) {
        Some(ns) if ns.applies_to(&energy) => Ok((
            run(&ns.suppressed_front_end(opts))?.0,
            RecordingAnalysis::of(&energy, true),
        )),
        _ => Ok((plain, RecordingAnalysis::of(&energy, false))),
    }
}

/// [`features_of_files`] for many groups in parallel (rayon), in input order.
pub fn features_of_groups(
    groups: &[Vec<PathBuf>],
    opts: &FrontEndOptions,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<FeatureMatrix>, RecipeError> {
    sessions_features(groups, opts, None, progress)
}

/// [`features_of_session`] for many groups in parallel (rayon), in input order.
pub fn sessions_features(
    groups: &[Vec<PathBuf>],
    opts: &FrontEndOptions,
    adaptive: Option<&AdaptiveNoiseSuppression>,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<FeatureMatrix>, RecipeError> {
    analysed_sessions(groups, opts, adaptive, progress).map(|(features, _)| features)
}

/// [`analysed_session`] for many groups in parallel (rayon), in input order.
pub fn analysed_sessions(
    groups: &[Vec<PathBuf>],
    opts: &FrontEndOptions,
    adaptive: Option<&AdaptiveNoiseSuppression>,
    progress: &(dyn Fn() + Sync),
) -> Result<(Vec<FeatureMatrix>, Vec<RecordingAnalysis>), RecipeError> {
    groups
        .par_iter()
        .map(|paths| {
            let analysed = analysed_session(paths, opts, adaptive);
            progress();
            analysed
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.into_iter().unzip())
}
