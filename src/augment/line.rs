//! Handset and line frequency responses as a linear-phase FIR filter.

use realfft::RealFftPlanner;

use super::{check_finite, invalid, AugmentError};

/// Half length of the FIR filter in samples: 2·256 + 1 taps = 64 ms at 8 kHz, so the edges
/// after the Blackman window are about ±50 Hz wide.
const FIR_HALF_TAPS: usize = 256;
/// Frequency grid (points of the real DFT) the response is sampled on before windowing.
const DESIGN_FFT_LEN: usize = 8192;

/// A handset / line frequency response: Butterworth-shaped band edges, a spectral tilt around
/// a pivot, and a broadband gain. Magnitude at frequency f (Hz):
/// `|H(f)| = g · HP(f) · LP(f) · T(f)` with
/// `HP = 1/√(1 + (low_hz/f)^(2·edge_order))` (1 when `low_hz` = 0),
/// `LP = 1/√(1 + (f/high_hz)^(2·edge_order))`,
/// `T = 10^(tilt_db_per_octave · log2(f'/pivot_hz) / 20)` with f' = f clamped to
/// [max(low_hz, 50), high_hz], and `g = 10^(gain_db/20)`. See [`LineResponse::gain_at`].
#[derive(Debug, Clone, PartialEq)]
pub struct LineResponse {
    /// Lower band edge (−3 dB point) in Hz; 0 = no high-pass.
    pub low_hz: f64,
    /// Upper band edge (−3 dB point) in Hz.
    pub high_hz: f64,
    /// Butterworth order of both edges (6·order dB per octave outside the band), 1 ..= 16.
    pub edge_order: u32,
    /// Spectral tilt in dB per octave (positive = brighter, negative = muffled), |tilt| ≤ 12.
    pub tilt_db_per_octave: f64,
    /// Frequency in Hz where the tilt is 0 dB.
    pub pivot_hz: f64,
    /// Broadband gain in dB (negative = a quieter handset), |gain| ≤ 40.
    pub gain_db: f64,
}

impl Default for LineResponse {
    /// The telephone band: 300–3400 Hz, order 8, flat, 0 dB.
    fn default() -> Self {
        Self::telephone()
    }
}

impl LineResponse {
    /// The ITU telephone band 300–3400 Hz, 48 dB/octave edges, flat, 0 dB.
    pub fn telephone() -> Self {
        Self {
            low_hz: 300.0,
            high_hz: 3400.0,
            edge_order: 8,
            tilt_db_per_octave: 0.0,
            pivot_hz: 1000.0,
            gain_db: 0.0,
        }
    }

    /// A narrower, quieter handset: 500–2800 Hz, 10 dB down (an old or cheap earpiece
    /// microphone held away from the mouth).
    pub fn narrow_handset() -> Self {
        Self {
            low_hz: 500.0,
            high_hz: 2800.0,
            gain_db: -10.0,
            ..Self::telephone()
        }
    }

    /// Checks the parameters against the sample rate in Hz.
    pub fn validate(&self, sample_rate_hz: u32) -> Result<(), AugmentError> {
        let nyquist = f64::from(sample_rate_hz) / 2.0;
        if !(self.low_hz.is_finite() && self.low_hz >= 0.0) {
            return Err(invalid(
                "low_hz",
                format!("expected >= 0 Hz, got {}", self.low_hz),
            ));
        }
        if !(self.high_hz.is_finite()
            && self.high_hz > self.low_hz + 100.0
            && self.high_hz < nyquist)
        {
            return Err(invalid(
                "high_hz",
                format!(
                    "expected low_hz + 100 < high_hz < {nyquist} Hz (Nyquist), got {} (low_hz {})",
                    self.high_hz, self.low_hz
                ),
            ));
        }
        if !(1..=16).contains(&self.edge_order) {
            return Err(invalid(
                "edge_order",
                format!("expected 1 ..= 16, got {}", self.edge_order),
            ));
        }
        if !(self.tilt_db_per_octave.is_finite() && self.tilt_db_per_octave.abs() <= 12.0) {
            return Err(invalid(
                "tilt_db_per_octave",
                format!(
                    "expected |tilt| <= 12 dB/octave, got {}",
                    self.tilt_db_per_octave
                ),
            ));
        }
        if !(self.pivot_hz.is_finite() && self.pivot_hz > 0.0) {
            return Err(invalid(
                "pivot_hz",
                format!("expected > 0 Hz, got {}", self.pivot_hz),
            ));
        }
        if !(self.gain_db.is_finite() && self.gain_db.abs() <= 40.0) {
            return Err(invalid(
                "gain_db",
                format!("expected |gain| <= 40 dB, got {}", self.gain_db),
            ));
        }
        Ok(())
    }

    /// The designed magnitude |H(f)| (linear) at `freq_hz`.
    pub fn gain_at(&self, freq_hz: f64) -> f64 {
        let f = freq_hz.abs();
        let order = 2.0 * f64::from(self.edge_order);
        let high_pass = if self.low_hz <= 0.0 {
            1.0
        } else if f <= 0.0 {
            0.0
        } else {
            1.0 / (1.0 + (self.low_hz / f).powf(order)).sqrt()
        };
        let low_pass = 1.0 / (1.0 + (f / self.high_hz).powf(order)).sqrt();
        let tilt_f = f.clamp(self.low_hz.max(50.0), self.high_hz);
        let tilt_db = self.tilt_db_per_octave * (tilt_f / self.pivot_hz).log2();
        10f64.powf((self.gain_db + tilt_db) / 20.0) * high_pass * low_pass
    }

    /// The FIR taps (2·256 + 1, linear phase, delay 256 samples) realising this response at
    /// `sample_rate_hz`: frequency sampling on an 8192-point grid, Blackman window.
    pub fn fir_taps(&self, sample_rate_hz: u32) -> Result<Vec<f64>, AugmentError> {
        self.validate(sample_rate_hz)?;
        let mut planner = RealFftPlanner::<f64>::new();
        let inverse = planner.plan_fft_inverse(DESIGN_FFT_LEN);
        let mut spectrum = inverse.make_input_vec();
        let bin_hz = f64::from(sample_rate_hz) / DESIGN_FFT_LEN as f64;
        for (k, bin) in spectrum.iter_mut().enumerate() {
            *bin = realfft::num_complex::Complex::new(self.gain_at(k as f64 * bin_hz), 0.0);
        }
        let mut impulse = inverse.make_output_vec();
        inverse
            .process(&mut spectrum, &mut impulse)
            .map_err(|e| AugmentError::InvalidInput(format!("FIR design FFT: {e}")))?;
        let taps_len = 2 * FIR_HALF_TAPS + 1;
        let taps = (0..taps_len)
            .map(|i| {
                // Zero-phase impulse response, centred: tap i is lag i − FIR_HALF_TAPS.
                let lag = i as isize - FIR_HALF_TAPS as isize;
                let h = impulse[lag.rem_euclid(DESIGN_FFT_LEN as isize) as usize]
                    / DESIGN_FFT_LEN as f64;
                let x = i as f64 / (taps_len - 1) as f64;
                let blackman = 0.42 - 0.5 * (2.0 * std::f64::consts::PI * x).cos()
                    + 0.08 * (4.0 * std::f64::consts::PI * x).cos();
                h * blackman
            })
            .collect();
        Ok(taps)
    }
}

/// Filters `samples` (16-bit scale, `sample_rate_hz`) through `response`, delay-compensated so
/// the output lines up with the input and has the same length (zeros assumed outside). Not
/// clipped.
pub fn apply_line_response(
    samples: &[f32],
    sample_rate_hz: u32,
    response: &LineResponse,
) -> Result<Vec<f32>, AugmentError> {
    check_finite(samples)?;
    let taps = response.fir_taps(sample_rate_hz)?;
    let half = FIR_HALF_TAPS as isize;
    let len = samples.len() as isize;
    Ok((0..len)
        .map(|n| {
            // y[n] = Σ_i taps[i] · x[n + half − i], x = 0 outside.
            let lo = (n + half - (len - 1)).max(0) as usize;
            let hi = ((n + half) as usize).min(taps.len() - 1);
            let mut acc = 0.0;
            for (i, &tap) in taps.iter().enumerate().take(hi + 1).skip(lo) {
                acc += tap * f64::from(samples[(n + half - i as isize) as usize]);
            }
            acc as f32
        })
        .collect())
}
