//! Diagonal-covariance GMMs in Kaldi's split: model ([`DiagGmm`]), statistics
//! ([`AccumDiagGmm`], f64), updates ([`mle_update`], [`map_update`]), UBM training
//! ([`train_ubm`]) and top-C scoring ([`GaussianSelection`], [`score_speaker`], [`SpeakerBank`]).
//!
//! All log-likelihoods are natural logs; scores are average per-frame log-likelihood ratios
//! (nats per frame). Batch paths compute component log-likelihoods as one f32 GEMM per chunk
//! of frames (through nalgebra → matrixmultiply) on frames centred at the model's weighted mean,
//! and accumulate statistics in f64.
//!
//! ```
//! use quivox::features::FeatureMatrix;
//! use quivox::gmm::{map_update, score_speaker, train_ubm, AccumDiagGmm, MapDiagGmmOptions, UbmTrainOptions};
//! # let frames = |seed: u32, shift: f32| {
//! #     let data = (0..2000 * 2).map(|i| {
//! #         let t = (i / 2) as u32;
//! #         let h = t.wrapping_mul(2654435761).wrapping_add(seed.wrapping_mul(40503)) ^ (i as u32 % 2) * 0x9e37;
//! #         let centre = if h % 2 == 0 { -4.0 } else { 4.0 };
//! #         centre + shift + ((h >> 8) % 1000) as f32 / 500.0 - 1.0
//! #     }).collect();
//! #     FeatureMatrix::from_vec(2, data).unwrap()
//! # };
//! let background: FeatureMatrix = frames(1, 0.0);
//! let mut opts = UbmTrainOptions::default(); // options structs are #[non_exhaustive]
//! opts.num_components = 4;
//! opts.num_iters = 5;
//! let ubm = train_ubm(&background, &opts, &|iter, ll| println!("EM {iter}: {ll:.3} nats/frame")).unwrap();
//!
//! // Enrollment: statistics against the UBM, then relevance-MAP of the means (τ = 16).
//! let mut acc = AccumDiagGmm::for_model(&ubm);
//! ubm.accumulate_stats(&frames(2, 0.5), &mut acc).unwrap();
//! let speaker = map_update(&ubm, &acc, &MapDiagGmmOptions::default()).unwrap();
//!
//! // Verification: one Gaussian selection per call, then any number of speakers.
//! let call = frames(3, 0.5);
//! let sel = ubm.gaussian_selection(&call, 2).unwrap();
//! let llr = score_speaker(&ubm, &speaker, &call, &sel).unwrap();
//! assert!(llr > 0.0);
//! ```

mod accum;
mod error;
mod io;
mod math;
mod model;
mod score;
pub(crate) use score::dot_f32;
mod stats;
mod train;
mod update;

pub use accum::AccumDiagGmm;
pub use error::GmmError;
pub use model::{DiagGmm, DiagGmmParams};
pub use score::{
    score_many, score_speaker, BwPosteriors, GaussianSelection, SpeakerBank, TopCScorer,
    DEFAULT_TOP_C,
};
pub use stats::BaumWelchStats;
pub use train::{train_ubm, UbmInit, UbmTrainOptions};
pub use update::{
    map_update, mle_update, MapDiagGmmOptions, MleDiagGmmOptions, MleUpdate, VarianceFloor,
};

#[cfg(test)]
mod tests;
