//! MFCC extraction with Kaldi's `compute-mfcc-feats` arithmetic, batch and streaming.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::denoise::{NoiseSuppressionOptions, NoiseSuppressor};
use super::fft::PowerSpectrum;
use super::mel::{make_liftered_dct, make_mel_filters, make_window};
use super::queue::move_rows;
use super::{invalid, FeatureError, FeatureMatrix};

/// Analysis window applied to each frame (Kaldi `--window-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WindowType {
    /// Kaldi's default: Hann window raised to the power 0.85.
    #[default]
    Povey,
    /// Hann window `0.5 − 0.5 cos(2πn/(N−1))`.
    Hanning,
    /// Hamming window `0.54 − 0.46 cos(2πn/(N−1))`.
    Hamming,
    /// No tapering.
    Rectangular,
    /// Blackman window with coefficient 0.42.
    Blackman,
}

/// MFCC options; the defaults are Kaldi's 8 kHz speaker-ID recipe (`mfcc.conf` of `egs/sre*`),
/// except that `use_energy` is false (c0 is then the 0th cepstral coefficient).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfccOptions {
    /// Sample rate of the input in Hz.
    pub sample_rate_hz: u32,
    /// Frame length in ms (25 ms = 200 samples at 8 kHz).
    pub frame_length_ms: f32,
    /// Frame shift in ms (10 ms = 80 samples at 8 kHz).
    pub frame_shift_ms: f32,
    /// Analysis window.
    pub window_type: WindowType,
    /// Pre-emphasis coefficient in [0, 1]: `x[n] -= coef · x[n−1]` (`x[0] -= coef · x[0]`).
    pub preemphasis_coefficient: f32,
    /// Subtract each frame's mean before energy and pre-emphasis.
    pub remove_dc_offset: bool,
    /// Standard deviation of Gaussian dither added to each frame's samples (16-bit scale); 0 = none.
    pub dither: f32,
    /// Seed of the dither generator (ChaCha8), so dithered output is reproducible.
    pub dither_seed: u64,
    /// Pad the FFT to the next power of two (256 points for 200-sample frames).
    pub round_to_power_of_two: bool,
    /// Only whole frames inside the signal (Kaldi `--snip-edges=true`); `false` is not supported.
    pub snip_edges: bool,
    /// Number of triangular mel filters.
    pub num_mel_bins: usize,
    /// Lower edge of the mel filterbank in Hz.
    pub low_freq_hz: f32,
    /// Upper edge of the mel filterbank in Hz; `<= 0` means Nyquist + this value (Kaldi convention).
    pub high_freq_hz: f32,
    /// Number of cepstral coefficients per frame (at most `num_mel_bins`).
    pub num_ceps: usize,
    /// Replace c0 by the frame's natural-log energy.
    pub use_energy: bool,
    /// Energy measured before pre-emphasis and windowing (after dither and DC removal).
    pub raw_energy: bool,
    /// Floor on the energy (linear, not log); 0 = no floor.
    pub energy_floor: f32,
    /// Cepstral lifter Q (`1 + Q/2 · sin(πk/Q)`); 0 = no liftering.
    pub cepstral_lifter: f32,
    /// Stationary-noise suppression of the power spectrum before the mel filterbank
    /// ([`super::NoiseSuppressor`]); `None` (the Kaldi chain) by default. With it, the frame's
    /// log energy (the VAD's input) is lowered by the log of the fraction of spectral power the
    /// suppression kept, so frames of noise alone fall below the VAD threshold too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_suppression: Option<NoiseSuppressionOptions>,
}

impl Default for MfccOptions {
    fn default() -> Self {
        Self {
            sample_rate_hz: 8000,
            frame_length_ms: 25.0,
            frame_shift_ms: 10.0,
            window_type: WindowType::Povey,
            preemphasis_coefficient: 0.97,
            remove_dc_offset: true,
            dither: 0.0,
            dither_seed: 0,
            round_to_power_of_two: true,
            snip_edges: true,
            num_mel_bins: 23,
            low_freq_hz: 20.0,
            high_freq_hz: 3700.0,
            num_ceps: 20,
            use_energy: false,
            raw_energy: true,
            energy_floor: 0.0,
            cepstral_lifter: 22.0,
            noise_suppression: None,
        }
    }
}

impl MfccOptions {
    /// Frame length in samples (Kaldi truncates `rate · 0.001 · ms`).
    pub fn frame_length_samples(&self) -> usize {
        (f64::from(self.sample_rate_hz) * 0.001 * f64::from(self.frame_length_ms)) as usize
    }

    /// Frame shift in samples.
    pub fn frame_shift_samples(&self) -> usize {
        (f64::from(self.sample_rate_hz) * 0.001 * f64::from(self.frame_shift_ms)) as usize
    }

    /// FFT length in samples.
    pub fn fft_size(&self) -> usize {
        let len = self.frame_length_samples();
        if self.round_to_power_of_two {
            len.next_power_of_two()
        } else {
            len
        }
    }

    /// Upper filterbank edge in Hz after resolving the `<= 0` (offset from Nyquist) convention.
    pub fn resolved_high_freq_hz(&self) -> f32 {
        let nyquist = 0.5 * self.sample_rate_hz as f32;
        if self.high_freq_hz > 0.0 {
            self.high_freq_hz
        } else {
            nyquist + self.high_freq_hz
        }
    }

    /// Number of frames for `num_samples` input samples (snip-edges framing).
    pub fn num_frames(&self, num_samples: usize) -> usize {
        let len = self.frame_length_samples();
        let shift = self.frame_shift_samples();
        if num_samples < len || shift == 0 {
            0
        } else {
            1 + (num_samples - len) / shift
        }
    }

    /// Checks every option; the error names the option, what was expected and what arrived.
    pub fn validate(&self) -> Result<(), FeatureError> {
        if self.sample_rate_hz == 0 {
            return Err(invalid("sample_rate_hz", "expected > 0 Hz, got 0"));
        }
        let finite_pos = |name, v: f32| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    name,
                    format!("expected a finite value > 0 ms, got {v}"),
                ))
            }
        };
        finite_pos("frame_length_ms", self.frame_length_ms)?;
        finite_pos("frame_shift_ms", self.frame_shift_ms)?;
        if self.frame_length_samples() < 2 {
            return Err(invalid(
                "frame_length_ms",
                format!(
                    "expected at least 2 samples per frame, got {} at {} Hz",
                    self.frame_length_samples(),
                    self.sample_rate_hz
                ),
            ));
        }
        if self.frame_shift_samples() == 0 {
            return Err(invalid(
                "frame_shift_ms",
                format!(
                    "expected at least 1 sample of shift, got {} ms at {} Hz",
                    self.frame_shift_ms, self.sample_rate_hz
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.preemphasis_coefficient) {
            return Err(invalid(
                "preemphasis_coefficient",
                format!("expected 0..=1, got {}", self.preemphasis_coefficient),
            ));
        }
        if !(self.dither.is_finite() && self.dither >= 0.0) {
            return Err(invalid(
                "dither",
                format!("expected a finite value >= 0, got {}", self.dither),
            ));
        }
        if !self.snip_edges {
            return Err(invalid(
                "snip_edges",
                "only snip_edges = true (whole frames inside the signal) is supported, got false",
            ));
        }
        if self.num_mel_bins < 3 {
            return Err(invalid(
                "num_mel_bins",
                format!("expected at least 3, got {}", self.num_mel_bins),
            ));
        }
        if self.num_ceps == 0 || self.num_ceps > self.num_mel_bins {
            return Err(invalid(
                "num_ceps",
                format!(
                    "expected 1..={} (num_mel_bins), got {}",
                    self.num_mel_bins, self.num_ceps
                ),
            ));
        }
        let nyquist = 0.5 * self.sample_rate_hz as f32;
        let high = self.resolved_high_freq_hz();
        let band_ok = self.low_freq_hz.is_finite()
            && self.low_freq_hz >= 0.0
            && self.low_freq_hz < high
            && high.is_finite()
            && high <= nyquist;
        if !band_ok {
            return Err(invalid(
                "low_freq_hz/high_freq_hz",
                format!(
                    "expected 0 <= low < high <= Nyquist ({nyquist} Hz), got low {} Hz, high {} Hz",
                    self.low_freq_hz, high
                ),
            ));
        }
        if !(self.energy_floor.is_finite() && self.energy_floor >= 0.0) {
            return Err(invalid(
                "energy_floor",
                format!("expected a finite value >= 0, got {}", self.energy_floor),
            ));
        }
        if !(self.cepstral_lifter.is_finite() && self.cepstral_lifter >= 0.0) {
            return Err(invalid(
                "cepstral_lifter",
                format!("expected a finite value >= 0, got {}", self.cepstral_lifter),
            ));
        }
        if let Some(ns) = &self.noise_suppression {
            ns.validate()?;
        }
        Ok(())
    }
}

/// Smallest positive f32 with `1 + ε ≠ 1` (C's FLT_EPSILON): Kaldi's floor before every log.
const LOG_FLOOR: f32 = f32::EPSILON;

/// Natural log of a positive, normal, finite f32, branch-free so that loops over it vectorise.
/// x = m·2^e with m in [√½, √2); ln m = 2 atanh(s), s = (m − 1)/(m + 1), |s| < 0.172, summed
/// to s⁹ (truncation < 3e-9 relative); ln 2 split in a high part exact in f32 times e and a
/// low part. Within a few ulp of `f32::ln` (checked in the tests).
#[inline(always)]
pub(crate) fn ln_positive(x: f32) -> f32 {
    const SQRT_HALF_BITS: u32 = 0x3f35_04f3;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_5e-6;
    let bits = x.to_bits().wrapping_add(0x3f80_0000 - SQRT_HALF_BITS);
    let e = ((bits >> 23) as i32 - 127) as f32;
    let m = f32::from_bits((bits & 0x007f_ffff) + SQRT_HALF_BITS);
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let series = 1.0 + z * (1.0 / 3.0 + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * (1.0 / 9.0))));
    e * LN2_HI + (e * LN2_LO + 2.0 * s * series)
}

/// True when every sample is finite (integer OR-reduction over exponent bits: vectorises).
fn all_finite(samples: &[f32]) -> bool {
    samples.iter().fold(0u32, |acc, s| {
        acc | u32::from(s.to_bits() & 0x7f80_0000 == 0x7f80_0000)
    }) == 0
}

/// Per-frame DSP: everything precomputed once, every buffer owned, no allocation per frame.
struct FrameProcessor {
    frame_length: usize,
    preemph: f32,
    remove_dc: bool,
    raw_energy: bool,
    use_energy: bool,
    log_energy_floor: Option<f32>,
    dither: f32,
    rng: ChaCha8Rng,
    dither_seed: u64,
    window: Vec<f32>,
    spectrum: PowerSpectrum,
    fft_in: Vec<f32>,
    /// Power spectrum; entries past the FFT's last bin stay zero (padding for the mel spans).
    power: Vec<f32>,
    /// First FFT bin of each mel filter.
    mel_offsets: Vec<usize>,
    /// Row-major num_mel_bins × mel_span filter weights, zero-padded.
    mel_weights: Vec<f32>,
    mel_span: usize,
    log_mel: Vec<f32>,
    dither_buf: Vec<f32>,
    /// Row-major num_ceps × num_bins liftered DCT, stored transposed (num_bins × num_ceps)
    /// so the product is a sum of scaled contiguous columns; columns padded with zeros to
    /// `ceps_stride` entries.
    dct_t: Vec<f32>,
    ceps_stride: usize,
    /// Cepstra of the last frame (`ceps_stride` long; the first `num_ceps` are the output).
    ceps: Vec<f32>,
    /// Noise suppression of the power spectrum, when the options ask for it.
    denoise: Option<NoiseSuppressor>,
}

impl FrameProcessor {
    fn new(opts: &MfccOptions) -> Result<Self, FeatureError> {
        opts.validate()?;
        let frame_length = opts.frame_length_samples();
        let fft_size = opts.fft_size();
        let filters = make_mel_filters(
            opts.num_mel_bins,
            fft_size,
            opts.sample_rate_hz as f32,
            opts.low_freq_hz,
            opts.resolved_high_freq_hz(),
        )?;
        // Every filter padded with zero weights to the same span, a multiple of 8, so each
        // dot product is a fixed-length vectorisable loop.
        let mel_span = filters
            .iter()
            .map(|f| f.weights.len())
            .max()
            .unwrap_or(0)
            .div_ceil(8)
            * 8;
        let num_power_bins = filters
            .iter()
            .map(|f| f.offset + mel_span)
            .max()
            .unwrap_or(0);
        let mel_offsets: Vec<usize> = filters.iter().map(|f| f.offset).collect();
        let mut mel_weights = vec![0.0f32; mel_span * filters.len()];
        for (padded, f) in mel_weights.chunks_exact_mut(mel_span.max(1)).zip(&filters) {
            padded[..f.weights.len()].copy_from_slice(&f.weights);
        }
        let dct = make_liftered_dct(opts.num_ceps, opts.num_mel_bins, opts.cepstral_lifter);
        let ceps_stride = opts.num_ceps.div_ceil(8) * 8;
        let mut dct_t = vec![0.0; ceps_stride * opts.num_mel_bins];
        for k in 0..opts.num_ceps {
            for j in 0..opts.num_mel_bins {
                dct_t[j * ceps_stride + k] = dct[k * opts.num_mel_bins + j];
            }
        }
        let denoise = match &opts.noise_suppression {
            Some(ns) => Some(NoiseSuppressor::new(
                ns,
                fft_size / 2 + 1,
                opts.frame_shift_ms,
            )?),
            None => None,
        };
        Ok(Self {
            denoise,
            frame_length,
            preemph: opts.preemphasis_coefficient,
            remove_dc: opts.remove_dc_offset,
            raw_energy: opts.raw_energy,
            use_energy: opts.use_energy,
            log_energy_floor: (opts.energy_floor > 0.0).then(|| opts.energy_floor.ln()),
            dither: opts.dither,
            rng: ChaCha8Rng::seed_from_u64(opts.dither_seed),
            dither_seed: opts.dither_seed,
            window: make_window(opts.window_type, frame_length),
            fft_in: vec![0.0; fft_size],
            spectrum: PowerSpectrum::new(fft_size),
            power: vec![0.0; num_power_bins],
            log_mel: vec![0.0; opts.num_mel_bins],
            dither_buf: vec![0.0; frame_length],
            mel_offsets,
            mel_weights,
            mel_span,
            dct_t,
            ceps_stride,
            ceps: vec![0.0; ceps_stride],
        })
    }

    fn reset(&mut self) {
        self.rng = ChaCha8Rng::seed_from_u64(self.dither_seed);
        if let Some(d) = &mut self.denoise {
            d.reset();
        }
    }

    /// Computes one frame's cepstra into `self.ceps[..num_ceps]` and returns its natural-log
    /// energy (raw or windowed per the options, floored like Kaldi).
    fn process(&mut self, frame: &[f32]) -> f32 {
        let n = self.frame_length;
        let samples: &[f32] = if self.dither != 0.0 {
            for (d, &s) in self.dither_buf.iter_mut().zip(&frame[..n]) {
                let noise: f32 = StandardNormal.sample(&mut self.rng);
                *d = s + self.dither * noise;
            }
            &self.dither_buf
        } else {
            &frame[..n]
        };
        let mean = if self.remove_dc {
            sum(samples) / n as f32
        } else {
            0.0
        };
        let mut log_energy = 0.0;
        if self.raw_energy {
            log_energy = sum_sq_centered(samples, mean).max(LOG_FLOOR).ln();
        }
        // Pre-emphasis and window in one pass: each term is the same float op sequence as
        // Kaldi's in-place `x[i] -= c·x[i−1]` on the DC-free frame.
        let c = self.preemph;
        let fft_in = &mut self.fft_in[..];
        let window = &self.window[..n];
        fft_in[0] = ((samples[0] - mean) - c * (samples[0] - mean)) * window[0];
        for (((out, &cur), &prev), &w) in fft_in[1..n]
            .iter_mut()
            .zip(&samples[1..])
            .zip(&samples[..n - 1])
            .zip(&window[1..])
        {
            *out = ((cur - mean) - c * (prev - mean)) * w;
        }
        fft_in[n..].fill(0.0);
        if !self.raw_energy {
            log_energy = sum_sq_centered(&fft_in[..n], 0.0).max(LOG_FLOOR).ln();
        }
        if let Some(floor) = self.log_energy_floor {
            log_energy = log_energy.max(floor);
        }
        self.spectrum.compute(fft_in, &mut self.power);
        if let Some(denoise) = &mut self.denoise {
            let kept = denoise.process(&mut self.power);
            log_energy += kept.max(LOG_FLOOR).ln();
        }
        let span = self.mel_span;
        for ((log_mel, &offset), weights) in self
            .log_mel
            .iter_mut()
            .zip(&self.mel_offsets)
            .zip(self.mel_weights.chunks_exact(span))
        {
            let power = &self.power[offset..offset + span];
            let mut acc = [0.0f32; 8];
            for (w8, p8) in weights.chunks_exact(8).zip(power.chunks_exact(8)) {
                for ((a, &w), &p) in acc.iter_mut().zip(w8).zip(p8) {
                    *a += w * p;
                }
            }
            *log_mel =
                (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        }
        for v in &mut self.log_mel {
            *v = ln_positive(v.max(LOG_FLOOR));
        }
        // Columns padded to a multiple of 8 coefficients: the inner loop has no remainder.
        let ceps = &mut self.ceps[..];
        ceps.fill(0.0);
        for (&x, column) in self
            .log_mel
            .iter()
            .zip(self.dct_t.chunks_exact(self.ceps_stride))
        {
            for (out, &d) in ceps.iter_mut().zip(column) {
                *out += d * x;
            }
        }
        if self.use_energy {
            ceps[0] = log_energy;
        }
        log_energy
    }
}

/// Sum with 8 independent partial sums (vectorisable; deterministic order).
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let mut total = acc.iter().sum::<f32>();
    for &v in rest {
        total += v;
    }
    total
}

/// Σ (x − mean)² with 8 independent partial sums.
fn sum_sq_centered(x: &[f32], mean: f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let d = v - mean;
            *a += d * d;
        }
    }
    let mut total = acc.iter().sum::<f32>();
    for &v in rest {
        let d = v - mean;
        total += d * d;
    }
    total
}

/// Kaldi-compatible MFCC extractor. Batch: [`MfccExtractor::compute`]. Streaming:
/// [`MfccExtractor::accept_waveform`] with chunks of any size, then [`MfccExtractor::pop_frames`];
/// the frames are bit-identical to the batch result for any chunking.
pub struct MfccExtractor {
    opts: MfccOptions,
    dsp: FrameProcessor,
    frame_length: usize,
    frame_shift: usize,
    /// Unconsumed input samples, starting at global sample index `pending_start`.
    pending: Vec<f32>,
    pending_start: u64,
    samples_received: u64,
    next_frame: u64,
    frame_buf: Vec<f32>,
    ready: FeatureMatrix,
    ready_log_energy: Vec<f32>,
}

impl std::fmt::Debug for MfccExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfccExtractor")
            .field("opts", &self.opts)
            .field("samples_received", &self.samples_received)
            .field("frames_computed", &self.next_frame)
            .finish_non_exhaustive()
    }
}

impl MfccExtractor {
    /// Validates the options and precomputes the FFT plan, window, mel filters, DCT and lifter.
    pub fn new(opts: MfccOptions) -> Result<Self, FeatureError> {
        let dsp = FrameProcessor::new(&opts)?;
        let frame_length = opts.frame_length_samples();
        let frame_shift = opts.frame_shift_samples();
        Ok(Self {
            dsp,
            frame_length,
            frame_shift,
            pending: Vec::with_capacity(4 * frame_length.max(frame_shift)),
            pending_start: 0,
            samples_received: 0,
            next_frame: 0,
            frame_buf: vec![0.0; frame_length],
            ready: FeatureMatrix::new(opts.num_ceps),
            ready_log_energy: Vec::new(),
            opts,
        })
    }

    /// The options in use.
    pub fn options(&self) -> &MfccOptions {
        &self.opts
    }

    /// Number of coefficients per frame.
    pub fn dim(&self) -> usize {
        self.opts.num_ceps
    }

    /// Frames computed since creation or the last [`reset`](Self::reset) (popped or not).
    pub fn num_frames_computed(&self) -> u64 {
        self.next_frame
    }

    /// Frames computed and not yet popped.
    pub fn num_frames_ready(&self) -> usize {
        self.ready.num_frames()
    }

    /// Forgets all input and output; the dither generator restarts from its seed.
    pub fn reset(&mut self) {
        self.dsp.reset();
        self.pending.clear();
        self.pending_start = 0;
        self.samples_received = 0;
        self.next_frame = 0;
        self.ready.clear();
        self.ready_log_energy.clear();
    }

    /// Feeds the next samples (16-bit integer scale), any number at a time; computes every
    /// frame that is now complete. Fails (without consuming anything) on NaN or infinite samples.
    pub fn accept_waveform(&mut self, samples: &[f32]) -> Result<(), FeatureError> {
        // Taking the Vecs out and back moves pointers only: no allocation.
        let mut ready = std::mem::take(&mut self.ready);
        let mut log_energy = std::mem::take(&mut self.ready_log_energy);
        let result = self.run(samples, &mut ready, &mut log_energy);
        self.ready = ready;
        self.ready_log_energy = log_energy;
        result
    }

    /// Computes every frame completed by `samples`, appending rows to `out` and energies to
    /// `log_energy`.
    fn run(
        &mut self,
        samples: &[f32],
        out: &mut FeatureMatrix,
        log_energy: &mut Vec<f32>,
    ) -> Result<(), FeatureError> {
        if !all_finite(samples) {
            let pos = samples.iter().position(|s| !s.is_finite()).unwrap_or(0);
            return Err(FeatureError::InvalidInput(format!(
                "sample {} of the chunk is {}: expected finite samples in 16-bit scale",
                pos, samples[pos]
            )));
        }
        let len = self.frame_length as u64;
        let shift = self.frame_shift as u64;
        let chunk_start = self.samples_received;
        self.samples_received += samples.len() as u64;
        loop {
            let start = self.next_frame * shift;
            if start + len > self.samples_received {
                break;
            }
            let frame: &[f32] = if start >= chunk_start {
                let from = (start - chunk_start) as usize;
                &samples[from..from + self.frame_length]
            } else {
                // The frame straddles the previous input and this chunk.
                let from = (start - self.pending_start) as usize;
                let head = &self.pending[from..];
                self.frame_buf[..head.len()].copy_from_slice(head);
                let tail = self.frame_length - head.len();
                self.frame_buf[head.len()..].copy_from_slice(&samples[..tail]);
                &self.frame_buf
            };
            let energy = self.dsp.process(frame);
            out.push_row(&self.dsp.ceps[..self.opts.num_ceps]);
            log_energy.push(energy);
            self.next_frame += 1;
        }
        // Keep what the next frame will need.
        let keep_from = self.next_frame * shift;
        if keep_from >= chunk_start {
            let from = ((keep_from - chunk_start) as usize).min(samples.len());
            self.pending.clear();
            self.pending.extend_from_slice(&samples[from..]);
        } else {
            self.pending
                .drain(..(keep_from - self.pending_start) as usize);
            self.pending.extend_from_slice(samples);
        }
        self.pending_start = keep_from;
        Ok(())
    }

    /// Marks the end of input. With snip-edges framing no further frame can appear; the
    /// trailing partial frame is dropped, as in Kaldi.
    pub fn input_finished(&mut self) {
        self.pending.clear();
    }

    /// Moves every computed frame to the end of `out` (which must have [`dim`](Self::dim)
    /// columns); returns the number of frames moved.
    pub fn pop_frames(&mut self, out: &mut FeatureMatrix) -> Result<usize, FeatureError> {
        let n = move_rows(&mut self.ready, out)?;
        self.ready_log_energy.clear();
        Ok(n)
    }

    /// Like [`pop_frames`](Self::pop_frames), also appending each frame's natural-log energy
    /// (raw energy per `raw_energy`, whether or not `use_energy` puts it in c0) to `log_energy`.
    pub fn pop_frames_with_energy(
        &mut self,
        out: &mut FeatureMatrix,
        log_energy: &mut Vec<f32>,
    ) -> Result<usize, FeatureError> {
        check_dim(out, self.dim())?;
        log_energy.extend_from_slice(&self.ready_log_energy);
        self.pop_frames(out)
    }

    /// Batch MFCC of a whole utterance (resets the extractor first).
    pub fn compute(&mut self, samples: &[f32]) -> Result<FeatureMatrix, FeatureError> {
        Ok(self.compute_with_energy(samples)?.0)
    }

    /// Batch MFCC plus the per-frame natural-log energy (resets the extractor first).
    pub fn compute_with_energy(
        &mut self,
        samples: &[f32],
    ) -> Result<(FeatureMatrix, Vec<f32>), FeatureError> {
        let mut out = FeatureMatrix::new(self.dim());
        let mut log_energy = Vec::new();
        self.compute_into(samples, &mut out, &mut log_energy)?;
        Ok((out, log_energy))
    }

    /// Batch MFCC into caller-owned buffers (cleared first; no allocation once they are large
    /// enough). Resets the extractor first; leaves it finished.
    pub fn compute_into(
        &mut self,
        samples: &[f32],
        out: &mut FeatureMatrix,
        log_energy: &mut Vec<f32>,
    ) -> Result<(), FeatureError> {
        check_dim(out, self.dim())?;
        self.reset();
        out.clear();
        log_energy.clear();
        let frames = self.opts.num_frames(samples.len());
        out.reserve_frames(frames);
        log_energy.reserve(frames);
        self.run(samples, out, log_energy)?;
        self.input_finished();
        Ok(())
    }
}

pub(crate) fn check_dim(m: &FeatureMatrix, expected: usize) -> Result<(), FeatureError> {
    if m.dim() != expected {
        return Err(FeatureError::DimensionMismatch {
            expected,
            actual: m.dim(),
        });
    }
    Ok(())
}
