//! Errors of the neural speaker encoder.

use std::path::PathBuf;

/// Everything that can go wrong loading the encoder or embedding audio.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddingError {
    /// The weights file could not be read.
    #[error("cannot read speaker-encoder weights {path}: {source}")]
    Io {
        /// File that was being read.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a well-formed safetensors file.
    #[error("malformed safetensors weights: {0}")]
    Format(String),
    /// A tensor the architecture needs is absent.
    #[error("speaker-encoder weights lack tensor {name} (expected shape {expected:?})")]
    MissingTensor {
        /// Tensor name.
        name: String,
        /// Shape the architecture expects.
        expected: Vec<usize>,
    },
    /// The file holds a tensor the architecture does not know.
    #[error("speaker-encoder weights hold unexpected tensor {name} (shape {found:?})")]
    UnexpectedTensor {
        /// Tensor name.
        name: String,
        /// Its shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has the wrong shape.
    #[error("speaker-encoder tensor {name} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape the architecture expects.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has the wrong element type.
    #[error("speaker-encoder tensor {name} has dtype {found}, expected F32")]
    Dtype {
        /// Tensor name.
        name: String,
        /// Dtype in the file.
        found: String,
    },
    /// A tensor holds NaN or infinity.
    #[error("speaker-encoder tensor {name} holds a non-finite value at index {index}")]
    NonFinite {
        /// Tensor name.
        name: String,
        /// Flat index of the first bad value.
        index: usize,
    },
    /// The waveform is at a rate the embedder does not take.
    #[error("waveform sample rate {found} Hz: expected {expected}")]
    SampleRate {
        /// Rates the call accepts.
        expected: &'static str,
        /// Rate of the waveform, in Hz.
        found: u32,
    },
    /// A sample is NaN or infinite.
    #[error("waveform sample {index} is not finite")]
    NonFiniteSample {
        /// Index of the sample.
        index: usize,
    },
    /// Nothing is left to embed (empty input, or no speech after silence trimming).
    #[error("no speech to embed: {0}")]
    NoSpeech(String),
    /// Mel input to the encoder has the wrong size.
    #[error("encoder input: expected {expected} values ({what}), got {found}")]
    InputSize {
        /// What the values are.
        what: &'static str,
        /// Expected count.
        expected: usize,
        /// Count received.
        found: usize,
    },
    /// An option is out of range.
    #[error("invalid embedding option {name}: {reason}")]
    InvalidOption {
        /// Option name.
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The resampler refused its input (internal sizes).
    #[error("8 -> 16 kHz resampling failed: {0}")]
    Resample(String),
}
