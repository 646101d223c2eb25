//! The error type of the audio module.

use std::path::PathBuf;

/// Everything that can go wrong reading, decoding, writing or resampling audio.
///
/// Messages say what was expected and what arrived. Bad input always yields one of these,
/// never a panic and never silently altered samples.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// Reading or writing a file failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The input ends before a structure it declares is complete.
    #[error("truncated WAV: {what} needs {needed} bytes, only {available} present")]
    Truncated {
        /// Which structure was cut short (e.g. "RIFF header", "data chunk").
        what: &'static str,
        /// Bytes the structure declares or needs.
        needed: u64,
        /// Bytes actually available.
        available: u64,
    },

    /// The bytes are not a RIFF/WAVE file.
    #[error("not a WAV file: expected \"RIFF\"....\"WAVE\", found {found:?}")]
    NotWav {
        /// The first bytes found, lossily printed.
        found: String,
    },

    /// A required chunk is missing.
    #[error("WAV file has no {chunk:?} chunk before the end of the file")]
    MissingChunk {
        /// Chunk id, e.g. "fmt " or "data".
        chunk: &'static str,
    },

    /// The sample format (format tag / bit depth) is not one this reader decodes.
    #[error(
        "unsupported WAV format: tag 0x{format_tag:04X} with {bits_per_sample} bits per sample; \
         supported: PCM (tag 1) 8/16/24/32-bit, IEEE float (tag 3) 32-bit, A-law (tag 6) and \
         μ-law (tag 7) 8-bit, and WAVE_FORMAT_EXTENSIBLE (0xFFFE) with one of those subformats"
    )]
    UnsupportedFormat {
        /// The format tag (for WAVE_FORMAT_EXTENSIBLE: the subformat's tag).
        format_tag: u16,
        /// Bits per sample declared in the `fmt ` chunk.
        bits_per_sample: u16,
    },

    /// A WAVE_FORMAT_EXTENSIBLE subformat GUID that is not PCM, float, A-law or μ-law.
    #[error(
        "unsupported WAVE_FORMAT_EXTENSIBLE subformat GUID {guid}; supported: PCM, IEEE float, \
         A-law, μ-law (xxxxxxxx-0000-0010-8000-00AA00389B71 with tag 1, 3, 6, 7)"
    )]
    UnsupportedSubformat {
        /// The GUID, printed in the usual 8-4-4-4-12 hex form.
        guid: String,
    },

    /// A header field has a value that is impossible or absurd.
    #[error("invalid WAV header: {field} = {value}: {expected}")]
    InvalidHeader {
        /// The header field (e.g. "channels", "block_align").
        field: &'static str,
        /// The value found.
        value: u64,
        /// What was expected instead.
        expected: String,
    },

    /// The audio holds no samples.
    #[error("empty audio: {what} has no samples")]
    Empty {
        /// What was empty (e.g. "WAV data chunk", "waveform").
        what: &'static str,
    },

    /// A sample is NaN or infinite.
    #[error("non-finite sample {value} at index {index}: samples must be finite")]
    NonFiniteSample {
        /// Index of the first offending sample (interleaved index for multi-channel data).
        index: usize,
        /// Its value.
        value: f32,
    },

    /// The file has more than one channel and the options demand mono.
    #[error(
        "WAV has {channels} channels, expected mono; choose ChannelPolicy::Select(n) or \
         ChannelPolicy::Downmix"
    )]
    NotMono {
        /// Number of channels in the file.
        channels: u16,
    },

    /// `ChannelPolicy::Select(n)` names a channel the file does not have.
    #[error(
        "channel {requested} selected but the WAV has only {channels} channels (0-based index)"
    )]
    NoSuchChannel {
        /// The requested 0-based channel index.
        requested: u16,
        /// Number of channels in the file.
        channels: u16,
    },

    /// A sample rate outside the supported range (or zero).
    #[error("sample rate {rate_hz} Hz not supported: expected {expected}")]
    InvalidSampleRate {
        /// The rate in Hz.
        rate_hz: u32,
        /// The accepted range.
        expected: &'static str,
    },

    /// A caller-supplied output buffer has the wrong length.
    #[error("output buffer holds {actual} samples, expected {expected} (one per input)")]
    BufferLength {
        /// Required length.
        expected: usize,
        /// Supplied length.
        actual: usize,
    },

    /// The resampler failed to build or run.
    #[error("resampling {from_hz} Hz -> {to_hz} Hz failed: {reason}")]
    Resample {
        /// Input rate in Hz.
        from_hz: u32,
        /// Output rate in Hz.
        to_hz: u32,
        /// What the resampling library reported.
        reason: String,
    },

    /// The PCM/float decoder (hound) rejected data the RIFF walk had accepted.
    #[error("WAV decoding failed: {reason}")]
    Decode {
        /// The decoder's message.
        reason: String,
    },
}
