//! Kaldi-compatible MFCC front end: framing, window, real FFT, mel bank, DCT, deltas, CMVN, VAD.
//!
//! The defaults reproduce Kaldi's 8 kHz speaker-ID recipe (`compute-mfcc-feats` with
//! `mfcc.conf` of `egs/sre*/v*`, `add-deltas`, `apply-cmvn-sliding`, `compute-vad`):
//! - [`MfccExtractor`]: waveform (f32 in 16-bit integer scale) → MFCC rows, batch or streaming;
//! - [`compute_deltas`] / [`StreamingDeltas`]: Kaldi `add-deltas`;
//! - [`CmvnStats`], [`apply_sliding_cmn`] / [`StreamingSlidingCmn`]: per-utterance and sliding CMVN;
//! - [`compute_vad`] / [`StreamingVad`]: Kaldi `compute-vad` energy VAD;
//! - [`FrontEnd`] / [`StreamingFrontEnd`]: the whole speaker-ID chain (MFCC + Δ + ΔΔ, sliding CMN,
//!   voiced-frame selection) that the GMM / i-vector code consumes.
//!
//! ```
//! use quivox::features::{FeatureMatrix, FrontEnd, FrontEndOptions, MfccExtractor, MfccOptions};
//! # fn main() -> Result<(), quivox::features::FeatureError> {
//! // 1 s at 8 kHz, samples in 16-bit integer scale.
//! let samples: Vec<f32> = (0..8000).map(|n| 3000.0 * (n as f32 * 0.3).sin()).collect();
//! let mut mfcc = MfccExtractor::new(MfccOptions::default())?;
//! let batch = mfcc.compute(&samples)?;
//! assert_eq!((batch.num_frames(), batch.dim()), (98, 20));
//!
//! // Streaming with any chunk size gives the same bits.
//! mfcc.reset();
//! let mut streamed = FeatureMatrix::new(mfcc.dim());
//! for chunk in samples.chunks(333) {
//!     mfcc.accept_waveform(chunk)?;
//!     mfcc.pop_frames(&mut streamed)?;
//! }
//! mfcc.input_finished();
//! mfcc.pop_frames(&mut streamed)?;
//! assert_eq!(streamed, batch);
//!
//! // The speaker-ID chain: 60-dim normalised features of the voiced frames.
//! let out = FrontEnd::new(FrontEndOptions::default())?.compute(&samples)?;
//! assert_eq!(out.features.dim(), 60);
//! assert_eq!(out.voiced.len(), 98);
//! # Ok(())
//! # }
//! ```

mod cmvn;
mod deltas;
mod denoise;
mod fft;
mod frontend;
mod matrix;
mod mel;
mod mfcc;
mod quality;
mod queue;
mod vad;
mod vad_noise;
mod warp;

#[cfg(test)]
mod tests;

pub use cmvn::{
    apply_sliding_cmn, apply_sliding_cmn_into, CmvnStats, SlidingCmnOptions, StreamingSlidingCmn,
};
pub use deltas::{compute_deltas, compute_deltas_into, DeltaOptions, StreamingDeltas};
pub use denoise::{AdaptiveNoiseSuppression, NoiseSuppressionOptions, NoiseSuppressor};
pub use frontend::{
    compute_vad_with_mode, CmnScope, FrontEnd, FrontEndOptions, FrontEndOutput, StreamingFrontEnd,
    VadMode, DIGITAL_SILENCE_ENERGY_FLOOR,
};
pub use matrix::FeatureMatrix;
pub use mfcc::{MfccExtractor, MfccOptions, WindowType};
pub use quality::EnergyRange;
pub use vad::{compute_vad, compute_vad_running, StreamingVad, VadOptions};
pub use vad_noise::{compute_vad_noise_floor, NoiseFloorVadOptions};

/// Errors of the feature front end.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    /// An option is outside its valid range.
    #[error("invalid feature option `{name}`: {reason}")]
    InvalidOption {
        /// Option name as in the options struct.
        name: &'static str,
        /// What was expected and what arrived.
        reason: String,
    },
    /// A feature matrix or vector has the wrong number of columns.
    #[error("feature dimension mismatch: expected {expected} columns, got {actual}")]
    DimensionMismatch {
        /// Expected number of columns.
        expected: usize,
        /// Number of columns received.
        actual: usize,
    },
    /// Statistics or inputs that need at least some frames had too few.
    #[error("{what}: expected at least {expected} frames, got {actual}")]
    TooFewFrames {
        /// What needed the frames.
        what: &'static str,
        /// Minimum number of frames.
        expected: usize,
        /// Number of frames received.
        actual: usize,
    },
    /// Input that cannot be used (NaN, infinities, wrong lengths).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> FeatureError {
    FeatureError::InvalidOption {
        name,
        reason: reason.into(),
    }
}
