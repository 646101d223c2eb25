//! Telephony audio input: WAV (PCM, float, G.711), G.711 μ-law/A-law codecs, resampling to 8 kHz.

pub mod error;
pub mod g711;

pub use error::AudioError;
pub use g711::G711Law;

/// A mono waveform: samples in 16-bit integer scale (−32768 ..= 32767) and their rate in Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Waveform {
    /// Sample rate in Hz.
    pub sample_rate_hz: u32,
    /// Samples in 16-bit integer scale.
    pub samples: Vec<f32>,
}

impl Waveform {
    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        if self.sample_rate_hz == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / f64::from(self.sample_rate_hz)
    }
}
