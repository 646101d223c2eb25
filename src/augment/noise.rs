//! Additive noise: coloured noise, babble, and mixing at a target SNR.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use realfft::RealFftPlanner;

use super::{check_finite, invalid, AugmentError};

/// Spectral colour of synthetic noise: power spectral density ∝ 1 / f^α.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoiseColour {
    /// Flat spectrum (α = 0): hiss, line noise.
    White,
    /// −3 dB per octave (α = 1): fans, air conditioning, a room.
    Pink,
    /// −6 dB per octave (α = 2): rumble, car and wind noise.
    Brown,
}

impl NoiseColour {
    /// The exponent α of the PSD ∝ 1 / f^α.
    pub fn exponent(self) -> f64 {
        match self {
            NoiseColour::White => 0.0,
            NoiseColour::Pink => 1.0,
            NoiseColour::Brown => 2.0,
        }
    }
}

/// Mean power (mean square, in 16-bit scale squared) of `samples`; 0 for an empty slice.
pub fn power(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len() as f64
}

/// `len` samples of Gaussian noise with PSD ∝ 1 / f^α (see [`NoiseColour`]), scaled to unit
/// RMS. Shaped in the frequency domain: independent complex Gaussian bins of amplitude
/// f^(−α/2), DC removed, one inverse real FFT of the whole length.
pub fn coloured_noise<R: Rng + ?Sized>(
    colour: NoiseColour,
    len: usize,
    rng: &mut R,
) -> Result<Vec<f32>, AugmentError> {
    if len < 2 {
        return Err(invalid("len", format!("expected >= 2 samples, got {len}")));
    }
    let alpha = colour.exponent();
    let mut planner = RealFftPlanner::<f64>::new();
    let inverse = planner.plan_fft_inverse(len);
    let mut spectrum = inverse.make_input_vec();
    let last = spectrum.len() - 1;
    for (k, bin) in spectrum.iter_mut().enumerate() {
        if k == 0 {
            continue;
        }
        let amplitude = (k as f64).powf(-alpha / 2.0);
        let re: f64 = StandardNormal.sample(rng);
        // The Nyquist bin of an even length is real.
        let im: f64 = if k == last && len.is_multiple_of(2) {
            0.0
        } else {
            StandardNormal.sample(rng)
        };
        *bin = realfft::num_complex::Complex::new(re * amplitude, im * amplitude);
    }
    let mut out = inverse.make_output_vec();
    inverse
        .process(&mut spectrum, &mut out)
        .map_err(|e| AugmentError::InvalidInput(format!("inverse FFT of {len} samples: {e}")))?;
    let rms = (out.iter().map(|v| v * v).sum::<f64>() / len as f64).sqrt();
    if rms <= 0.0 {
        return Err(AugmentError::InvalidInput(
            "generated noise is silent".into(),
        ));
    }
    Ok(out.into_iter().map(|v| (v / rms) as f32).collect())
}

/// The babble pool's members: `n` of `candidates` spread evenly through them (every k-th, k =
/// len / n, from the first), or all of them when there are fewer. The one rule every babble
/// pool is chosen by (`quivox augment-set`, the whole-call held-out channel tests).
pub fn babble_pool_choice<T>(candidates: &[T], n: usize) -> impl Iterator<Item = &T> {
    let step = (candidates.len() / n.max(1)).max(1);
    candidates.iter().step_by(step).take(n)
}

/// Babble: `talkers` recordings drawn from `pool` (without replacement), each read from a
/// random start and looped to `len` samples, scaled to unit RMS, summed, and the sum scaled
/// to unit RMS. Silent or empty pool entries are skipped.
pub fn babble<R: Rng + ?Sized>(
    pool: &[Vec<f32>],
    talkers: usize,
    len: usize,
    rng: &mut R,
) -> Result<Vec<f32>, AugmentError> {
    if talkers == 0 || len == 0 {
        return Err(invalid(
            "talkers",
            format!("expected >= 1 talker and >= 1 sample, got {talkers} talkers, {len} samples"),
        ));
    }
    let usable: Vec<&Vec<f32>> = pool.iter().filter(|p| power(p) > 0.0).collect();
    if usable.len() < talkers {
        return Err(AugmentError::InvalidInput(format!(
            "babble of {talkers} talkers needs as many non-silent pool recordings, got {}",
            usable.len()
        )));
    }
    for p in &usable {
        check_finite(p)?;
    }
    let picks = rand::seq::index::sample(rng, usable.len(), talkers);
    let mut sum = vec![0f64; len];
    for pick in picks.iter() {
        let talker = usable[pick];
        let gain = 1.0 / power(talker).sqrt();
        let start = rng.random_range(0..talker.len());
        for (n, acc) in sum.iter_mut().enumerate() {
            *acc += f64::from(talker[(start + n) % talker.len()]) * gain;
        }
    }
    let rms = (sum.iter().map(|v| v * v).sum::<f64>() / len as f64).sqrt();
    if rms <= 0.0 {
        return Err(AugmentError::InvalidInput("babble is silent".into()));
    }
    Ok(sum.into_iter().map(|v| (v / rms) as f32).collect())
}

/// `signal + g · noise[..signal.len()]` with `g` chosen so that
/// `10·log10(power(signal) / power(g · noise)) = snr_db` exactly (powers over the whole
/// signal, pauses included). `noise` must be at least as long as `signal`; the result is not
/// clipped (apply [`super::apply_gain_db`] or G.711 after it to return to 16 bits).
pub fn mix_at_snr(signal: &[f32], noise: &[f32], snr_db: f64) -> Result<Vec<f32>, AugmentError> {
    if !snr_db.is_finite() {
        return Err(invalid(
            "snr_db",
            format!("expected a finite SNR, got {snr_db}"),
        ));
    }
    if noise.len() < signal.len() {
        return Err(AugmentError::InvalidInput(format!(
            "noise of {} samples for a signal of {}: expected at least as many",
            noise.len(),
            signal.len()
        )));
    }
    check_finite(signal)?;
    check_finite(noise)?;
    let noise = &noise[..signal.len()];
    let (ps, pn) = (power(signal), power(noise));
    if ps <= 0.0 || pn <= 0.0 {
        return Err(AugmentError::InvalidInput(format!(
            "SNR undefined: signal power {ps}, noise power {pn} (expected both > 0)"
        )));
    }
    let gain = (ps / pn / 10f64.powf(snr_db / 10.0)).sqrt();
    Ok(signal
        .iter()
        .zip(noise)
        .map(|(&s, &n)| (f64::from(s) + gain * f64::from(n)) as f32)
        .collect())
}
