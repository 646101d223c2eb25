//! Pretrained neural speaker encoder (GE2E, Resemblyzer weights) run natively and streamed.
//!
//! Pipeline (as Resemblyzer 0.1.4 scores telephone audio): 8 kHz input in 16-bit scale → [-1, 1]
//! → 16 kHz ([`preprocess`]) → volume normalisation to −30 dBFS (increase only) → silence trimming
//! → 40-band mel power spectrogram ([`mel`]) → 160-frame partial windows 77 frames apart
//! ([`partials`]) → 3-layer LSTM + linear + ReLU + L2 norm per window ([`encoder`]) → mean of the
//! partial embeddings, L2-normalised. Weights: `models/speaker-encoder-ge2e.safetensors`
//! (Apache-2.0, see `models/README.md`), rebuilt by `scripts/convert-resemblyzer`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use quivox::audio::Waveform;
//! use quivox::embedding::{bundled_weights_path, EmbedderOptions, SpeakerEmbedder, SpeakerEncoder, StreamingEmbedder};
//!
//! let encoder = Arc::new(SpeakerEncoder::from_file(bundled_weights_path())?);
//! let call = Waveform { sample_rate_hz: 8000, samples: vec![0.0; 56_000] };
//! // whole call at once
//! let mut embedder = SpeakerEmbedder::new(encoder.clone(), EmbedderOptions::default())?;
//! let batch = embedder.embed(&call)?;
//! // or 20 ms chunks as they arrive; each partial window runs while the call goes on
//! let mut stream = StreamingEmbedder::new(encoder, EmbedderOptions::default())?;
//! for chunk in call.samples.chunks(160) {
//!     stream.accept_waveform(chunk)?;
//! }
//! let streamed = stream.finish()?;
//! assert_eq!(batch.embedding.len(), 256);
//! # let _ = streamed;
//! # Ok::<(), quivox::embedding::EmbeddingError>(())
//! ```
//!
//! Speed (`cargo bench --bench embedding`, thread CPU time, one core of the AMD EPYC Zen 5
//! development machine, AVX-512 picked at run time from a generic x86-64 build; 2026-11-24
//! 07:32 UTC, load average 1.5): model load 1.9 ms; a 7-s call in one go (5 partial windows after
//! trimming) 6.6 ms with the default bf16 products against 9.6 ms with f32 products in the same
//! run; streaming, last 20-ms chunk to embedding 0.17 ms (f32: 0.25 ms) when every window has
//! closed and 0.97 ms (f32: 1.44 ms) when the last window is still open. Resemblyzer (torch, one
//! thread, `scripts/time-resemblyzer.py`) in the same sitting: 17.0 ms per call. The LSTM is
//! matrix products: f32 runs at ~100 G multiply-adds/s, near the core's FMA peak (the 1.08 G
//! multiply-adds of 5 windows × 160 frames set a floor of about 10 ms); bf16 operands with f32
//! sums ([`EncoderPrecision`], AVX512_BF16 `vdpbf16ps`) run at ~240 G/s (`cargo bench -p
//! quivox-bf16`). In the bf16 precision layer 0's recurrent product stays f32 (it carried most
//! of the rounding error; +0.8 ms). bf16 embeddings stay within cosine 0.99998 of the f32 ones.
//!
//! Agreement with Resemblyzer (tests in `tests.rs`, goldens from `scripts/make-embedding-goldens.sh`):
//! encoder fed Resemblyzer's mel frames, cosine ≥ 0.9999 for the embedding and every partial
//! (bf16 products: measured ≥ 0.99999 for the embedding, ≥ 0.99996 for every partial);
//! mel spectrogram within 1e-4 relative of librosa; without preprocessing (our resampler) cosine
//! ≥ 0.999; full pipeline cosine ≥ 0.999 against Resemblyzer using the same silence decisions and
//! 0.986-0.999 against Resemblyzer with webrtcvad (see [`preprocess`] for the VAD difference).

pub mod arch;
pub mod embedder;
pub mod encoder;
pub mod error;
mod kernel;
pub mod mel;
pub mod partials;
pub mod preprocess;
pub mod weights;

pub use embedder::{
    EmbedderOptions, GatedEmbedder, SpeakerEmbedder, StreamingEmbedder, UtteranceEmbedding,
};
pub use encoder::{EncoderPrecision, LstmBatch, SpeakerEncoder, WindowTail};
pub use error::EmbeddingError;
pub use weights::EncoderWeights;

/// Path of the shipped weights in the source tree (for tests, benches and tools).
pub fn bundled_weights_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/speaker-encoder-ge2e.safetensors")
}

#[cfg(test)]
mod tests;
