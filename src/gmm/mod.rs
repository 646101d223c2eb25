//! Diagonal-covariance GMMs in Kaldi's split: model, accumulator, update (MLE, MAP), top-C scoring.

mod stats;

pub use stats::BaumWelchStats;
