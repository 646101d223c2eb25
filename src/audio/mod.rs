//! Telephony audio input: WAV (PCM, float, G.711), G.711 μ-law/A-law codecs, resampling.
//!
//! Everything produces or consumes a [`Waveform`]: mono f32 samples **in 16-bit integer
//! scale** (−32768 ..= 32767) with their rate in Hz.
//!
//! - [`read_wav`] / [`read_wav_bytes`] decode PCM 8/16/24/32-bit, 32-bit float, A-law and
//!   μ-law WAV files (plain or WAVE_FORMAT_EXTENSIBLE), choosing or mixing channels with a
//!   [`ChannelPolicy`] and optionally resampling; [`probe_wav`] reads only the header.
//! - [`write_wav_pcm16`] and [`write_wav_g711`] write mono 16-bit PCM and 8 kHz G.711 files.
//! - [`g711`] has the μ-law/A-law codecs (bit-exact to ITU-T G.711 / G.191).
//! - [`Resampler`] (streaming) and [`resample()`] (one call) convert between sample rates.
//!
//! ```
//! use quivox::audio::{read_wav_bytes, wav::encode_wav_pcm16, ReadOptions, Waveform};
//! let wide = Waveform::from_i16(16_000, &vec![1000; 1600]);
//! let bytes = encode_wav_pcm16(&wide).unwrap();
//! let opts = ReadOptions { target_sample_rate_hz: Some(8_000), ..ReadOptions::default() };
//! let narrow = read_wav_bytes(&bytes, &opts).unwrap();
//! assert_eq!((narrow.sample_rate_hz, narrow.samples.len()), (8_000, 800));
//! ```

pub mod error;
pub mod g711;
pub mod resample;
pub mod wav;

pub use error::AudioError;
pub use g711::G711Law;
pub use resample::{resample, Resampler};
pub use wav::{
    encode_wav_g711, encode_wav_pcm16, probe_wav, probe_wav_bytes, read_wav, read_wav_bytes,
    write_wav_g711, write_wav_pcm16, ChannelPolicy, ReadOptions, WavFormat, WavInfo,
};

/// A mono waveform: samples in 16-bit integer scale (−32768 ..= 32767) and their rate in Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Waveform {
    /// Sample rate in Hz.
    pub sample_rate_hz: u32,
    /// Samples in 16-bit integer scale.
    pub samples: Vec<f32>,
}

impl Waveform {
    /// A waveform from 16-bit integer samples at `sample_rate_hz` Hz.
    pub fn from_i16(sample_rate_hz: u32, samples: &[i16]) -> Self {
        Self {
            sample_rate_hz,
            samples: samples.iter().map(|&s| f32::from(s)).collect(),
        }
    }

    /// The recordings one after another, as one stream (a session recorded as several clips);
    /// `None` when there are none or their sample rates differ.
    pub fn concatenate<'a>(parts: impl IntoIterator<Item = &'a Waveform>) -> Option<Waveform> {
        let mut parts = parts.into_iter();
        let mut out = parts.next()?.clone();
        for w in parts {
            if w.sample_rate_hz != out.sample_rate_hz {
                return None;
            }
            out.samples.extend_from_slice(&w.samples);
        }
        Some(out)
    }

    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        if self.sample_rate_hz == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / f64::from(self.sample_rate_hz)
    }

    /// Error on the first NaN or infinite sample.
    pub fn check_finite(&self) -> Result<(), AudioError> {
        match self.samples.iter().position(|s| !s.is_finite()) {
            Some(index) => Err(AudioError::NonFiniteSample {
                index,
                value: self.samples[index],
            }),
            None => Ok(()),
        }
    }

    /// The samples rounded to 16-bit integers, clipped to the i16 range; NaN/inf is an error.
    pub fn to_i16(&self) -> Result<Vec<i16>, AudioError> {
        self.samples
            .iter()
            .enumerate()
            .map(|(index, &s)| g711::f32_to_i16(s, index))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waveform_helpers() {
        let wave = Waveform::from_i16(8000, &[-32768, 0, 32767]);
        assert_eq!(wave.samples, vec![-32768.0, 0.0, 32767.0]);
        assert_eq!(wave.to_i16().unwrap(), vec![-32768, 0, 32767]);
        assert!(wave.check_finite().is_ok());
        let bad = Waveform {
            sample_rate_hz: 8000,
            samples: vec![0.0, 40000.4, f32::INFINITY],
        };
        assert!(matches!(
            bad.check_finite(),
            Err(AudioError::NonFiniteSample { index: 2, .. })
        ));
        assert!(matches!(
            bad.to_i16(),
            Err(AudioError::NonFiniteSample { index: 2, .. })
        ));
        let clipped = Waveform {
            sample_rate_hz: 8000,
            samples: vec![40000.4, -1e9, 2.5],
        };
        assert_eq!(clipped.to_i16().unwrap(), vec![32767, -32768, 3]);
        assert_eq!(Waveform::from_i16(8000, &[0; 4000]).duration_s(), 0.5);
    }
}
