//! Precomputed tables of the MFCC front end: analysis window, sparse mel filterbank, DCT, lifter.

use super::mfcc::WindowType;
use super::{invalid, FeatureError};

/// Kaldi's mel scale (HTK formula, natural log): mel(f) = 1127 · ln(1 + f / 700), `f` in Hz.
pub(crate) fn mel_scale(freq_hz: f32) -> f32 {
    1127.0 * (1.0 + freq_hz / 700.0).ln()
}

/// Window of `frame_length` samples (computed in f64 as Kaldi does, stored as f32).
pub(crate) fn make_window(window_type: WindowType, frame_length: usize) -> Vec<f32> {
    let a = 2.0 * std::f64::consts::PI / (frame_length.max(2) - 1) as f64;
    (0..frame_length)
        .map(|i| {
            let i = i as f64;
            let hann = 0.5 - 0.5 * (a * i).cos();
            let w = match window_type {
                WindowType::Hanning => hann,
                WindowType::Povey => hann.powf(0.85),
                WindowType::Hamming => 0.54 - 0.46 * (a * i).cos(),
                WindowType::Rectangular => 1.0,
                WindowType::Blackman => 0.42 - 0.5 * (a * i).cos() + 0.08 * (2.0 * a * i).cos(),
            };
            w as f32
        })
        .collect()
}

/// One triangular mel filter: weights over FFT bins `offset .. offset + weights.len()`.
#[derive(Debug, Clone)]
pub(crate) struct MelFilter {
    pub offset: usize,
    pub weights: Vec<f32>,
}

/// Kaldi's triangular mel filterbank (triangles in mel, unnormalised, no VTLN) over the
/// `fft_size / 2` lowest FFT bins; only the non-zero span of each filter is stored.
pub(crate) fn make_mel_filters(
    num_bins: usize,
    fft_size: usize,
    sample_rate_hz: f32,
    low_freq_hz: f32,
    high_freq_hz: f32,
) -> Result<Vec<MelFilter>, FeatureError> {
    let num_fft_bins = fft_size / 2;
    let fft_bin_width_hz = sample_rate_hz / fft_size as f32;
    let mel_low = mel_scale(low_freq_hz);
    let mel_high = mel_scale(high_freq_hz);
    let mel_delta = (mel_high - mel_low) / (num_bins as f32 + 1.0);
    let fft_bin_mels: Vec<f32> = (0..num_fft_bins)
        .map(|k| mel_scale(fft_bin_width_hz * k as f32))
        .collect();
    let mut filters = Vec::with_capacity(num_bins);
    for bin in 0..num_bins {
        let left = mel_low + bin as f32 * mel_delta;
        let center = mel_low + (bin as f32 + 1.0) * mel_delta;
        let right = mel_low + (bin as f32 + 2.0) * mel_delta;
        let mut offset = None;
        let mut weights = Vec::new();
        for (k, &mel) in fft_bin_mels.iter().enumerate() {
            if mel > left && mel < right {
                let weight = if mel <= center {
                    (mel - left) / (center - left)
                } else {
                    (right - mel) / (right - center)
                };
                let first = *offset.get_or_insert(k);
                // Triangles are convex in mel and mel is monotonic in k, so the span is contiguous.
                debug_assert_eq!(first + weights.len(), k);
                weights.push(weight);
            }
        }
        let Some(offset) = offset else {
            return Err(invalid(
                "num_mel_bins",
                format!(
                    "mel bin {bin} of {num_bins} covers no FFT bin (FFT size {fft_size}, \
                     {low_freq_hz}-{high_freq_hz} Hz): use fewer mel bins or a larger FFT"
                ),
            ));
        };
        filters.push(MelFilter { offset, weights });
    }
    Ok(filters)
}

/// Row-major `num_ceps × num_bins` orthonormal DCT-II matrix (Kaldi's `ComputeDctMatrix`,
/// first `num_ceps` rows), each row `k` multiplied by the cepstral lifter coefficient
/// `1 + Q/2 · sin(π k / Q)` when `lifter_q != 0`.
pub(crate) fn make_liftered_dct(num_ceps: usize, num_bins: usize, lifter_q: f32) -> Vec<f32> {
    let n = num_bins as f64;
    let mut dct = Vec::with_capacity(num_ceps * num_bins);
    for k in 0..num_ceps {
        let lifter = if lifter_q != 0.0 {
            let q = f64::from(lifter_q);
            1.0 + 0.5 * q * (std::f64::consts::PI * k as f64 / q).sin()
        } else {
            1.0
        };
        for j in 0..num_bins {
            let value = if k == 0 {
                (1.0 / n).sqrt()
            } else {
                (2.0 / n).sqrt() * (std::f64::consts::PI / n * (j as f64 + 0.5) * k as f64).cos()
            };
            // Kaldi stores the DCT and the lifter as float and multiplies after the product;
            // folding them costs at most one rounding per coefficient.
            dct.push((value as f32) * (lifter as f32));
        }
    }
    dct
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_filters_are_triangles_summing_to_one_between_centres() {
        let filters = make_mel_filters(23, 256, 8000.0, 20.0, 3700.0).unwrap();
        assert_eq!(filters.len(), 23);
        let mut total = vec![0.0f32; 128];
        for f in &filters {
            assert!(f.weights.iter().all(|&w| w > 0.0 && w <= 1.0));
            for (i, &w) in f.weights.iter().enumerate() {
                total[f.offset + i] += w;
            }
        }
        // Between the first and the last filter centre, adjacent triangles overlap to exactly 1.
        let centre_hz = |bin: f32| {
            let mel_low = mel_scale(20.0);
            let mel = mel_low + (bin + 1.0) * (mel_scale(3700.0) - mel_low) / 24.0;
            700.0 * ((mel / 1127.0).exp() - 1.0)
        };
        let lo = (centre_hz(0.0) / 31.25).ceil() as usize + 1;
        let hi = (centre_hz(22.0) / 31.25).floor() as usize - 1;
        for (k, &t) in total.iter().enumerate().take(hi).skip(lo) {
            assert!((t - 1.0).abs() < 1e-4, "bin {k}: {t}");
        }
    }

    #[test]
    fn dct_rows_are_orthonormal_without_lifter() {
        let d = make_liftered_dct(23, 23, 0.0);
        for a in 0..23 {
            for b in 0..23 {
                let dot: f64 = (0..23)
                    .map(|j| f64::from(d[a * 23 + j]) * f64::from(d[b * 23 + j]))
                    .sum();
                let expect = if a == b { 1.0 } else { 0.0 };
                assert!((dot - expect).abs() < 1e-6, "{a},{b}: {dot}");
            }
        }
    }

    #[test]
    fn too_many_mel_bins_is_an_error() {
        assert!(make_mel_filters(200, 256, 8000.0, 20.0, 3700.0).is_err());
    }
}
