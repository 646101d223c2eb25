//! # quivox — voice-biometrics caller identification for telephone audio
//!
//! quivox takes 8 kHz telephone audio (16-bit PCM or G.711 μ-law/A-law), computes
//! Kaldi-compatible MFCC features and scores them against enrolled speaker models
//! (GMM-UBM with MAP adaptation, i-vector + PLDA, a pretrained neural speaker encoder),
//! fusing everything into calibrated natural-log likelihood ratios.
//!
//! Conventions used throughout the crate:
//! - waveforms are `f32` samples **in 16-bit integer scale** (−32768 ..= 32767), as Kaldi
//!   feeds them; [`audio::Waveform`] carries the sample rate in Hz next to the samples;
//! - feature matrices are row-major, one row per 10 ms frame ([`features::FeatureMatrix`]);
//! - scores called `llr` are natural-log likelihood ratios.

#![forbid(unsafe_code)]

pub mod audio;
pub mod augment;
pub mod calibration;
pub mod embedding;
pub mod engine;
pub mod eval;
pub mod features;
pub mod gmm;
pub mod ivector;
pub mod metrics;
pub mod model_io;
pub mod plda;
pub mod recipe;
pub mod service;
pub mod store;
