//! Pretrained neural speaker encoder (GE2E, Resemblyzer weights) run natively and streamed.
//!
//! Pipeline (as Resemblyzer 0.1.4 scores telephone audio): 8 kHz input in 16-bit scale → [-1, 1]
//! → 16 kHz ([`preprocess`]) → volume normalisation to −30 dBFS (increase only) → silence trimming
//! → 40-band mel power spectrogram ([`mel`]) → 160-frame partial windows 77 frames apart
//! ([`partials`]) → 3-layer LSTM + linear + ReLU + L2 norm per window ([`encoder`]) → mean of the
//! partial embeddings, L2-normalised. Weights: `models/speaker-encoder-ge2e.safetensors`
//! (Apache-2.0, see `models/README.md`).

pub mod arch;
pub mod embedder;
pub mod encoder;
pub mod error;
pub mod mel;
pub mod partials;
pub mod preprocess;
pub mod weights;

pub use embedder::{EmbedderOptions, SpeakerEmbedder, StreamingEmbedder, UtteranceEmbedding};
pub use encoder::{LstmBatch, SpeakerEncoder};
pub use error::EmbeddingError;
pub use weights::EncoderWeights;

/// Path of the shipped weights in the source tree (for tests, benches and tools).
pub fn bundled_weights_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/speaker-encoder-ge2e.safetensors")
}

#[cfg(test)]
mod tests;
