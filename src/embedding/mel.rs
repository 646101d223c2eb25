//! 40-band mel power spectrogram as Resemblyzer computes it (librosa `melspectrogram`:
//! 16 kHz, 400-point periodic Hann window and FFT, hop 160, centred frames with zero padding,
//! |X|² power, Slaney mel scale and area normalisation, 0-8000 Hz).

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex32;

use super::arch::{ENCODER_SAMPLE_RATE_HZ, HOP_SAMPLES, MEL_BANDS, N_BINS, N_FFT};
use super::EmbeddingError;
use crate::features::{NoiseSuppressionOptions, NoiseSuppressor};

/// Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let log_step = 6.4f64.ln() / 27.0;
    if hz >= min_log_hz {
        min_log_mel + (hz / min_log_hz).ln() / log_step
    } else {
        hz / f_sp
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let log_step = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        min_log_hz * (log_step * (mel - min_log_mel)).exp()
    } else {
        f_sp * mel
    }
}

/// Triangular Slaney-normalised filters, `MEL_BANDS × N_BINS` row-major (computed in f64, stored f32).
pub fn mel_filterbank() -> Vec<f32> {
    let sample_rate = f64::from(ENCODER_SAMPLE_RATE_HZ);
    let (mel_low, mel_high) = (hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0));
    let edges_hz: Vec<f64> = (0..MEL_BANDS + 2)
        .map(|i| mel_to_hz(mel_low + (mel_high - mel_low) * i as f64 / (MEL_BANDS + 1) as f64))
        .collect();
    let mut bank = vec![0.0f32; MEL_BANDS * N_BINS];
    for band in 0..MEL_BANDS {
        let (lo, centre, hi) = (edges_hz[band], edges_hz[band + 1], edges_hz[band + 2]);
        let area_norm = 2.0 / (hi - lo);
        for bin in 0..N_BINS {
            let hz = bin as f64 * sample_rate / N_FFT as f64;
            let rising = (hz - lo) / (centre - lo);
            let falling = (hi - hz) / (hi - centre);
            bank[band * N_BINS + bin] = (rising.min(falling).max(0.0) * area_norm) as f32;
        }
    }
    bank
}

/// Computes mel frames one at a time with planned FFT and reused buffers; optionally through a
/// stationary-noise suppressor ([`NoiseSuppressor`], the one of the MFCC front end) between the
/// power spectrum and the mel bank. The suppressor is causal and keeps state from frame to frame:
/// frames must then come in order, and [`MelExtractor::reset`] starts a new recording.
pub struct MelExtractor {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    bank: Vec<f32>,
    /// Per band, the bins `lo..hi` where its filter is non-zero (the sum skips the zeros,
    /// which add exactly nothing: same result, a twentieth of the work).
    band_bins: Vec<(usize, usize)>,
    frame: Vec<f32>,
    spectrum: Vec<Complex32>,
    scratch: Vec<Complex32>,
    power: Vec<f32>,
    suppressor: Option<NoiseSuppressor>,
}

impl std::fmt::Debug for MelExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelExtractor")
            .field("n_fft", &N_FFT)
            .field("noise_suppression", &self.suppressor.is_some())
            .finish()
    }
}

impl Default for MelExtractor {
    fn default() -> Self {
        Self::new()
    }
}

impl MelExtractor {
    /// Plans the 400-point FFT, the periodic Hann window and the mel bank.
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        let window = (0..N_FFT)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32
            })
            .collect();
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        let bank = mel_filterbank();
        let band_bins = bank
            .chunks_exact(N_BINS)
            .map(|row| {
                let lo = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let hi = row.iter().rposition(|&w| w != 0.0).map_or(lo, |i| i + 1);
                (lo, hi)
            })
            .collect();
        MelExtractor {
            fft,
            window,
            bank,
            band_bins,
            frame: vec![0.0; N_FFT],
            spectrum,
            scratch,
            power: vec![0.0; N_BINS],
            suppressor: None,
        }
    }

    /// [`MelExtractor::new`] with the noise suppressor of `options` on the 16 kHz power spectrum
    /// (10-ms frames, the encoder's hop).
    pub fn with_noise_suppression(
        options: &NoiseSuppressionOptions,
    ) -> Result<Self, EmbeddingError> {
        let frame_shift_ms = (HOP_SAMPLES * 1000) as f32 / ENCODER_SAMPLE_RATE_HZ as f32;
        let suppressor = NoiseSuppressor::new(options, N_BINS, frame_shift_ms).map_err(|e| {
            EmbeddingError::InvalidOption {
                name: "noise_suppression",
                reason: e.to_string(),
            }
        })?;
        Ok(MelExtractor {
            suppressor: Some(suppressor),
            ..Self::new()
        })
    }

    /// Forgets the noise estimate (a new recording); nothing to do without a suppressor.
    pub fn reset(&mut self) {
        if let Some(s) = &mut self.suppressor {
            s.reset();
        }
    }

    /// Copies the suppressor's state into `into` (reusing its buffers), so that frames computed
    /// ahead of time can be taken back with [`MelExtractor::restore`].
    pub(crate) fn save(&self, into: &mut Option<NoiseSuppressor>) {
        match (&self.suppressor, into.as_mut()) {
            (Some(s), Some(dst)) => dst.clone_from(s),
            (Some(s), None) => *into = Some(s.clone()),
            (None, _) => *into = None,
        }
    }

    /// Puts back a state saved by [`MelExtractor::save`].
    pub(crate) fn restore(&mut self, from: &Option<NoiseSuppressor>) {
        if let (Some(s), Some(saved)) = (&mut self.suppressor, from) {
            s.clone_from(saved);
        }
    }

    /// Mel frame of 400 samples (waveform in [-1, 1] scale) into `out` (40).
    pub fn frame(&mut self, samples: &[f32], out: &mut [f32]) {
        for ((dst, &x), &w) in self.frame.iter_mut().zip(samples).zip(&self.window) {
            *dst = x * w;
        }
        // lengths are fixed by construction, so the FFT cannot fail
        let _ =
            self.fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch);
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }
        if let Some(s) = &mut self.suppressor {
            s.process(&mut self.power);
        }
        for (band, value) in out.iter_mut().enumerate().take(MEL_BANDS) {
            let (lo, hi) = self.band_bins[band];
            let row = &self.bank[band * N_BINS + lo..band * N_BINS + hi];
            *value = row
                .iter()
                .zip(&self.power[lo..hi])
                .map(|(w, p)| w * p)
                .sum();
        }
    }

    /// Mel frame `index` of `wav` as librosa's centred STFT sees it: samples
    /// `index·160 − 200 .. index·160 + 200`, zeros outside `wav`.
    pub fn centred_frame(
        &mut self,
        wav: &[f32],
        index: usize,
        padded: &mut [f32],
        out: &mut [f32],
    ) {
        let start = (index * HOP_SAMPLES) as isize - (N_FFT / 2) as isize;
        // the part of the frame inside `wav`, copied; zeros around it
        let from = start.clamp(0, wav.len() as isize) as usize;
        let to = (start + N_FFT as isize).clamp(0, wav.len() as isize) as usize;
        padded[..N_FFT].fill(0.0);
        if to > from {
            let offset = (from as isize - start) as usize;
            padded[offset..offset + (to - from)].copy_from_slice(&wav[from..to]);
        }
        self.frame(padded, out);
    }

    /// The whole centred spectrogram of `wav` ([-1, 1] scale, 16 kHz): `1 + len / 160` frames × 40
    /// (a new recording: the noise suppressor, if any, starts afresh).
    pub fn spectrogram(&mut self, wav: &[f32]) -> Vec<f32> {
        self.reset();
        let frames = 1 + wav.len() / HOP_SAMPLES;
        let mut mel = vec![0.0f32; frames * MEL_BANDS];
        let mut padded = vec![0.0f32; N_FFT];
        for (index, out) in mel.chunks_exact_mut(MEL_BANDS).enumerate() {
            self.centred_frame(wav, index, &mut padded, out);
        }
        mel
    }
}
