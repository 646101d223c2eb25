//! Diagonal-covariance GMMs in Kaldi's split: model ([`DiagGmm`]), statistics
//! ([`AccumDiagGmm`], f64), updates ([`mle_update`], [`map_update`]), UBM training
//! ([`train_ubm`]) and top-C scoring ([`GaussianSelection`], [`score_speaker`], [`SpeakerBank`]).

mod accum;
mod error;
mod io;
mod math;
mod model;
mod score;
mod stats;
mod train;
mod update;

pub use accum::AccumDiagGmm;
pub use error::GmmError;
pub use model::{DiagGmm, DiagGmmParams};
pub use score::{
    score_many, score_speaker, BwPosteriors, GaussianSelection, SpeakerBank, DEFAULT_TOP_C,
};
pub use stats::BaumWelchStats;
pub use train::{train_ubm, UbmInit, UbmTrainOptions};
pub use update::{
    map_update, mle_update, MapDiagGmmOptions, MleDiagGmmOptions, MleUpdate, VarianceFloor,
};

#[cfg(test)]
mod tests;
