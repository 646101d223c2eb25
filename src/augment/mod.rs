//! Deterministic telephone-channel augmentation: what a caller's voice goes through between
//! the enrollment line and a later call.
//!
//! Every transform works on samples in 16-bit integer scale (the crate convention) at the
//! telephone rate and is deterministic for a seeded RNG:
//! - [`coloured_noise`], [`babble`], [`mix_at_snr`]: additive noise at a target SNR
//!   (white / pink / brown, or a babble of other talkers);
//! - [`LineResponse`] / [`apply_line_response`]: handset and line frequency responses (band
//!   limits, spectral tilt, gain) as a linear-phase FIR filter;
//! - [`apply_gain_db`]: level changes, saturating at the 16-bit range like a real ADC;
//! - [`g711_tandem`]: A-law / μ-law transcoding chains;
//! - [`PacketLoss`] / [`drop_packets`]: lost 20-ms packets, zeroed or repeated as a jitter
//!   buffer would;
//! - [`Channel`] / [`ChannelKind::draw`]: a recipe that draws a random channel of one kind
//!   (noise, handset, codec, packet loss) and [`render`] applies it. Mobile codecs (AMR-NB,
//!   GSM 06.10) are described by [`ExternalCodec`] and run by a caller-supplied hook (the CLI
//!   uses sox); the library itself never needs them.
//!
//! ```
//! use quivox::augment::{mix_at_snr, coloured_noise, NoiseColour};
//! use rand::SeedableRng;
//! # fn main() -> Result<(), quivox::augment::AugmentError> {
//! let speech: Vec<f32> = (0..8000).map(|n| 3000.0 * (n as f32 * 0.05).sin()).collect();
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let noise = coloured_noise(NoiseColour::Pink, speech.len(), &mut rng)?;
//! let noisy = mix_at_snr(&speech, &noise, 10.0)?;
//! assert_eq!(noisy.len(), speech.len());
//! # Ok(())
//! # }
//! ```

mod chain;
mod line;
mod noise;
mod packet;

pub use chain::{
    render, Channel, ChannelKind, CodecHook, ExternalCodec, NoiseSource, Rendered, SharedCodec,
};
pub use line::{apply_line_response, LineResponse};
pub use noise::{babble, babble_pool_choice, coloured_noise, mix_at_snr, power, NoiseColour};
pub use packet::{drop_packets, Concealment, PacketLoss};

use crate::audio::G711Law;

/// Errors of the augmentation transforms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AugmentError {
    /// A parameter is outside its valid range.
    #[error("invalid augmentation parameter `{name}`: {reason}")]
    InvalidOption {
        /// Parameter name.
        name: &'static str,
        /// What was expected and what arrived.
        reason: String,
    },
    /// Input that cannot be used (empty, NaN, too short, silent).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A channel needs an external codec and no hook could run it.
    #[error("external codec {codec:?} failed: {reason}")]
    ExternalCodec {
        /// The codec.
        codec: ExternalCodec,
        /// Why it failed.
        reason: String,
    },
}

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> AugmentError {
    AugmentError::InvalidOption {
        name,
        reason: reason.into(),
    }
}

pub(crate) fn check_finite(samples: &[f32]) -> Result<(), AugmentError> {
    match samples.iter().position(|s| !s.is_finite()) {
        Some(i) => Err(AugmentError::InvalidInput(format!(
            "expected finite samples, got {} at index {i}",
            samples[i]
        ))),
        None => Ok(()),
    }
}

/// Multiplies by `10^(gain_db / 20)` and saturates at −32768 ..= 32767 (an ADC clips, it
/// does not wrap). Returns the samples and how many of them were clipped.
pub fn apply_gain_db(samples: &[f32], gain_db: f64) -> Result<(Vec<f32>, usize), AugmentError> {
    if !gain_db.is_finite() {
        return Err(invalid(
            "gain_db",
            format!("expected a finite gain, got {gain_db}"),
        ));
    }
    check_finite(samples)?;
    let gain = 10f64.powf(gain_db / 20.0) as f32;
    let mut clipped = 0;
    let out = samples
        .iter()
        .map(|&s| {
            let v = s * gain;
            if !(-32768.0..=32767.0).contains(&v) {
                clipped += 1;
            }
            v.clamp(-32768.0, 32767.0)
        })
        .collect();
    Ok((out, clipped))
}

/// Passes the samples through G.711 coders in turn (encode then decode with each law), as a
/// call transcoded between μ-law and A-law networks. Samples are rounded and clipped to 16 bits
/// first.
pub fn g711_tandem(samples: &[f32], laws: &[G711Law]) -> Result<Vec<f32>, AugmentError> {
    check_finite(samples)?;
    let mut pcm: Vec<i16> = samples
        .iter()
        .map(|&s| s.round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    for &law in laws {
        for s in &mut pcm {
            *s = law.decode(law.encode(*s));
        }
    }
    Ok(pcm.into_iter().map(f32::from).collect())
}

/// The RNG of one rendered item: ChaCha8 seeded with `seed` on stream `stream` (e.g. the
/// item's index), so every item is reproducible on its own, in any order or thread.
pub fn channel_rng(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
