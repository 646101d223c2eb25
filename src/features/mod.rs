//! Kaldi-compatible MFCC front end: framing, window, real FFT, mel bank, DCT, deltas, CMVN, VAD.

mod matrix;

pub use matrix::FeatureMatrix;
