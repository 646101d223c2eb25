//! Stationary-noise suppression of the power spectrum, in front of the mel filterbank.
//!
//! A caller in a car, beside a fan or on a hissing line brings additive noise that the training
//! speech never had: at 5–10 dB SNR it fills the valleys of the spectrum, the log mel energies
//! of every frame move towards the noise's, and a GMM-UBM scores the noise rather than the voice
//! (white and pink noise cost the most on the degraded dev set). This module estimates the noise
//! power spectrum while the call runs and attenuates each FFT bin by a Wiener gain, so the mel
//! energies are those of the speech again, approximately.
//!
//! - **Noise estimate: minimum statistics** (R. Martin, "Noise power spectral density estimation
//!   based on optimal smoothing and minimum statistics", IEEE Trans. SAP 9(5), 2001, simplified):
//!   the periodogram of each bin is smoothed over time (first-order recursion), and the noise
//!   power is the minimum of the smoothed power over the last `window_ms` (kept as the minima of
//!   `subwindows` sub-windows, so the update is O(1) per bin and frame), times a bias factor
//!   (the minimum of a smoothed periodogram underestimates its mean). Speech pauses of a few
//!   hundred ms inside the window are enough; a noise that rises is followed within one window.
//! - **Gain: Wiener filter with the decision-directed a-priori SNR** (Y. Ephraim and D. Malah,
//!   IEEE Trans. ASSP 32(6), 1984): `ξ = a·Ŝ²(t−1)/N + (1 − a)·max(γ − 1, 0)` with `γ = |X|²/N`,
//!   gain `G = ξ / (1 + ξ)` floored at `gain_floor_db`; the output power is `G²·|X|²`.
//!
//! Causal and frame by frame: batch and streaming extraction give the same bits. On clean speech
//! the noise estimate is the line's own hiss, far below the speech, and the gains stay near 1.

use serde::{Deserialize, Serialize};

use super::{invalid, FeatureError};

/// Options of [`NoiseSuppressor`]; the defaults are textbook values (Martin's bias for a
/// 1.5-s minimum search, a -15 dB floor); README (channel robustness) gives the settings measured
/// with whole systems trained on them (`quivox train-ubm --noise-suppression --ns-bias --ns-floor-db`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoiseSuppressionOptions {
    /// Length of the minimum search in ms (must contain a speech pause).
    pub window_ms: f32,
    /// Number of sub-windows the minimum search is split into (the estimate follows a rising
    /// noise within one window, and is refreshed every `window_ms / subwindows`).
    pub subwindows: usize,
    /// Smoothing factor of the periodogram per frame, in [0, 1).
    pub smoothing: f32,
    /// Bias compensation: noise power = `bias` × minimum of the smoothed power (≥ 1).
    pub bias: f32,
    /// Weight of the previous frame's clean-speech estimate in the a-priori SNR, in [0, 1).
    pub decision_directed: f32,
    /// Lowest gain in dB (power gain `G²` is floored at `10^(gain_floor_db / 10)`), ≤ 0.
    pub gain_floor_db: f32,
}

impl Default for NoiseSuppressionOptions {
    fn default() -> Self {
        Self {
            window_ms: 1500.0,
            subwindows: 6,
            smoothing: 0.85,
            bias: 1.5,
            decision_directed: 0.98,
            gain_floor_db: -15.0,
        }
    }
}

impl NoiseSuppressionOptions {
    /// Checks every option; the error names the option, what was expected and what arrived.
    pub fn validate(&self) -> Result<(), FeatureError> {
        if !(self.window_ms.is_finite() && self.window_ms > 0.0) {
            return Err(invalid(
                "noise_suppression.window_ms",
                format!("expected a finite value > 0 ms, got {}", self.window_ms),
            ));
        }
        if self.subwindows == 0 {
            return Err(invalid(
                "noise_suppression.subwindows",
                "expected at least 1, got 0",
            ));
        }
        for (name, v) in [
            ("noise_suppression.smoothing", self.smoothing),
            (
                "noise_suppression.decision_directed",
                self.decision_directed,
            ),
        ] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Err(invalid(name, format!("expected 0 <= value < 1, got {v}")));
            }
        }
        if !(self.bias.is_finite() && self.bias >= 1.0) {
            return Err(invalid(
                "noise_suppression.bias",
                format!("expected a finite value >= 1, got {}", self.bias),
            ));
        }
        if !(self.gain_floor_db.is_finite() && self.gain_floor_db <= 0.0) {
            return Err(invalid(
                "noise_suppression.gain_floor_db",
                format!(
                    "expected a finite value <= 0 dB, got {}",
                    self.gain_floor_db
                ),
            ));
        }
        Ok(())
    }
}

/// Noise suppression for noisy recordings only: a recording (or a call so far) whose frame log
/// energies span less than `max_spread_db` between their 10th and 90th percentiles
/// ([`super::EnergyRange::spread_db`]) has its features computed with `suppression`; any other
/// goes through the models' own front end untouched.
///
/// Why gated: the models are trained on features without suppression, and on clean speech the
/// suppressor still takes a little from the weak bins inside speech, which costs the clean
/// development sets a few target trials; in 5–20 dB noise it brings back most of what the noise
/// took (README, Channel robustness). The energy spread of a clean 7-s test is 27–49 dB on
/// `dev-read` and 21.5–61 dB on `dev` (4 of its 136 tests under 25 dB); that of their copies in
/// 5–20 dB noise 10–45 dB, median 25 dB.
/// The gate is measured on the signal before suppression, so it is the same quantity the
/// sessions report as their SNR estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveNoiseSuppression {
    /// Recordings whose energy spread is below this (dB) are suppressed. Default 25; 0 never
    /// suppresses (how a configuration file without `null` turns it off).
    pub max_spread_db: f64,
    /// Frames (10 ms) of a call or recording before the gate may open (the spread of a shorter
    /// stretch says little about the noise). Default 100.
    pub min_frames: u64,
    /// The suppressor used on noisy recordings. Default: [`NoiseSuppressionOptions`] with bias
    /// 1.0 and a −6 dB gain floor (the mildest setting measured; stronger ones cost more on
    /// clean-ish recordings near the gate than they bring in noise).
    pub suppression: NoiseSuppressionOptions,
}

impl Default for AdaptiveNoiseSuppression {
    fn default() -> Self {
        Self {
            max_spread_db: 25.0,
            min_frames: 100,
            suppression: NoiseSuppressionOptions {
                bias: 1.0,
                gain_floor_db: -6.0,
                ..NoiseSuppressionOptions::default()
            },
        }
    }
}

impl AdaptiveNoiseSuppression {
    /// Checks every option; the error names the option, what was expected and what arrived.
    pub fn validate(&self) -> Result<(), FeatureError> {
        if !(self.max_spread_db.is_finite() && self.max_spread_db >= 0.0) {
            return Err(invalid(
                "adaptive_noise_suppression.max_spread_db",
                format!(
                    "expected a finite value >= 0 dB, got {}",
                    self.max_spread_db
                ),
            ));
        }
        self.suppression.validate()
    }

    /// `adaptive`, unless the front end with these MFCC options suppresses noise itself (then
    /// there is nothing to gate): the one rule every user of the option applies.
    pub fn in_force<'a>(adaptive: Option<&'a Self>, mfcc: &super::MfccOptions) -> Option<&'a Self> {
        adaptive.filter(|_| mfcc.noise_suppression.is_none())
    }

    /// Whether a recording or call with these frame log energies is to be suppressed.
    pub fn applies_to(&self, energy: &super::EnergyRange) -> bool {
        energy.frames() >= self.min_frames && energy.spread_db() < self.max_spread_db
    }

    /// The MFCC options of the suppressed path: `mfcc` with [`Self::suppression`].
    pub fn suppressed_mfcc(&self, mfcc: &super::MfccOptions) -> super::MfccOptions {
        super::MfccOptions {
            noise_suppression: Some(self.suppression.clone()),
            ..mfcc.clone()
        }
    }

    /// The front end of the suppressed path: `front_end` with [`Self::suppression`].
    pub fn suppressed_front_end(
        &self,
        front_end: &super::FrontEndOptions,
    ) -> super::FrontEndOptions {
        super::FrontEndOptions {
            mfcc: self.suppressed_mfcc(&front_end.mfcc),
            ..front_end.clone()
        }
    }
}

/// Running noise estimate and Wiener gains of one stream (see the module documentation).
/// Owns all its buffers: [`process`](Self::process) does not allocate.
#[derive(Debug, Clone)]
pub struct NoiseSuppressor {
    bins: usize,
    smoothing: f32,
    bias: f32,
    dd: f32,
    min_power_gain: f32,
    frames_per_subwindow: usize,
    /// Rows of the ring of past sub-window minima (`subwindows − 1`).
    ring: usize,
    /// Smoothed periodogram per bin.
    smoothed: Vec<f32>,
    /// Minimum of the smoothed power in the current sub-window, per bin.
    current_min: Vec<f32>,
    /// Minima of the last `subwindows − 1` complete sub-windows, ring of `bins`-long rows.
    past_min: Vec<f32>,
    /// Completed sub-windows so far (saturating at the ring's length).
    past_count: usize,
    /// Next ring row to overwrite.
    past_next: usize,
    /// Frames in the current sub-window.
    in_subwindow: usize,
    /// Clean-speech power estimate of the previous frame over its noise estimate, per bin.
    prev_snr: Vec<f32>,
    /// Frames seen since the last reset.
    frames: u64,
}

impl NoiseSuppressor {
    /// A suppressor for power spectra of `bins` bins, frames `frame_shift_ms` apart.
    pub fn new(
        opts: &NoiseSuppressionOptions,
        bins: usize,
        frame_shift_ms: f32,
    ) -> Result<Self, FeatureError> {
        opts.validate()?;
        if bins == 0 || !(frame_shift_ms.is_finite() && frame_shift_ms > 0.0) {
            return Err(invalid(
                "noise_suppression",
                format!(
                    "expected >= 1 bin and a frame shift > 0 ms, got {bins} bins, {frame_shift_ms} ms"
                ),
            ));
        }
        let window_frames = (opts.window_ms / frame_shift_ms).round().max(1.0) as usize;
        let frames_per_subwindow = window_frames.div_ceil(opts.subwindows).max(1);
        let ring = opts.subwindows.saturating_sub(1);
        Ok(Self {
            bins,
            smoothing: opts.smoothing,
            bias: opts.bias,
            dd: opts.decision_directed,
            min_power_gain: 10f32.powf(opts.gain_floor_db / 10.0),
            frames_per_subwindow,
            ring,
            smoothed: vec![0.0; bins],
            current_min: vec![f32::INFINITY; bins],
            past_min: vec![f32::INFINITY; ring * bins],
            past_count: 0,
            past_next: 0,
            in_subwindow: 0,
            prev_snr: vec![0.0; bins],
            frames: 0,
        })
    }

    /// Number of power bins per frame.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Forgets the noise estimate (a new call).
    pub fn reset(&mut self) {
        self.smoothed.fill(0.0);
        self.current_min.fill(f32::INFINITY);
        self.past_min.fill(f32::INFINITY);
        self.past_count = 0;
        self.past_next = 0;
        self.in_subwindow = 0;
        self.prev_snr.fill(0.0);
        self.frames = 0;
    }

    /// Updates the noise estimate with one frame's power spectrum (`power[..bins]`, linear) and
    /// replaces it by the suppressed spectrum; returns the fraction of the frame's power kept
    /// (in [0, 1]; 1 for a silent frame). Entries past `bins` are left alone.
    pub fn process(&mut self, power: &mut [f32]) -> f32 {
        let bins = self.bins.min(power.len());
        let power = &mut power[..bins];
        let a = self.smoothing;
        if self.frames == 0 {
            self.smoothed[..bins].copy_from_slice(power);
        } else {
            for (s, &p) in self.smoothed.iter_mut().zip(power.iter()) {
                *s = a * *s + (1.0 - a) * p;
            }
        }
        for (m, &s) in self.current_min.iter_mut().zip(&self.smoothed) {
            *m = m.min(s);
        }
        let ring = self.ring;
        let mut before = 0.0f64;
        let mut after = 0.0f64;
        for (k, slot) in power.iter_mut().enumerate() {
            let mut noise = self.current_min[k];
            for r in 0..self.past_count.min(ring) {
                noise = noise.min(self.past_min[r * self.bins + k]);
            }
            let noise = (self.bias * noise).max(f32::MIN_POSITIVE);
            let x = *slot;
            let gamma = x / noise;
            let xi = if self.frames == 0 {
                (gamma - 1.0).max(0.0)
            } else {
                self.dd * self.prev_snr[k] + (1.0 - self.dd) * (gamma - 1.0).max(0.0)
            };
            let g = xi / (1.0 + xi);
            let power_gain = (g * g).max(self.min_power_gain);
            let out = power_gain * x;
            self.prev_snr[k] = out / noise;
            before += f64::from(x);
            after += f64::from(out);
            *slot = out;
        }
        self.in_subwindow += 1;
        if self.in_subwindow == self.frames_per_subwindow {
            self.in_subwindow = 0;
            if ring > 0 {
                let row = self.past_next;
                self.past_min[row * self.bins..(row + 1) * self.bins]
                    .copy_from_slice(&self.current_min);
                self.past_next = (row + 1) % ring;
                self.past_count = (self.past_count + 1).min(ring);
            }
            // the new sub-window starts from the current smoothed power
            self.current_min.copy_from_slice(&self.smoothed);
        }
        self.frames += 1;
        if before > 0.0 {
            (after / before) as f32
        } else {
            1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const BINS: usize = 129;

    /// Periodogram of white Gaussian noise of power `sigma2` per bin: exponentially distributed.
    fn noise_frame(rng: &mut ChaCha8Rng, sigma2: f32, out: &mut [f32]) {
        for p in out.iter_mut() {
            let u: f32 = rng.random_range(1e-7..1.0);
            *p = -sigma2 * u.ln();
        }
    }

    #[test]
    fn options_are_validated_with_the_offending_value() {
        let ok = NoiseSuppressionOptions::default();
        assert!(ok.validate().is_ok());
        type Break = fn(&mut NoiseSuppressionOptions);
        let cases: [(Break, &str); 5] = [
            (|o| o.window_ms = 0.0, "window_ms"),
            (|o| o.subwindows = 0, "subwindows"),
            (|o| o.smoothing = 1.0, "smoothing"),
            (|o| o.bias = 0.5, "bias"),
            (|o| o.gain_floor_db = 3.0, "gain_floor_db"),
        ];
        for (break_it, name) in cases {
            let mut o = ok.clone();
            break_it(&mut o);
            let err = o.validate().unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        assert!(NoiseSuppressor::new(&ok, 0, 10.0).is_err());
    }

    /// Stationary noise alone: once the estimate has converged (one window), nearly all of it is
    /// taken down to the gain floor.
    #[test]
    fn stationary_noise_alone_is_taken_down_to_the_floor() {
        let opts = NoiseSuppressionOptions {
            gain_floor_db: -15.0,
            bias: 1.5,
            ..Default::default()
        };
        let mut ns = NoiseSuppressor::new(&opts, BINS, 10.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut frame = vec![0.0; BINS];
        let mut kept = Vec::new();
        for _ in 0..400 {
            noise_frame(&mut rng, 100.0, &mut frame);
            kept.push(ns.process(&mut frame));
        }
        let floor = 10f32.powf(-1.5);
        let late: f32 = kept[200..].iter().sum::<f32>() / 200.0;
        // Wiener gains of noise-only bins are small but not all at the floor: the periodogram's
        // own fluctuation (exponential) gives some bins γ > 1.
        assert!(
            late < 4.0 * floor,
            "mean kept fraction {late}, floor {floor}"
        );
    }

    /// A steady component that comes and goes (300 ms on, 300 ms off) in two bins, 20 dB above
    /// white noise: its bins are kept, the noise bins are suppressed, so the ratio of the
    /// component to the noise, measured on the output, rises by more than 10 dB.
    #[test]
    fn an_intermittent_component_is_kept_while_the_noise_goes() {
        let mut ns = NoiseSuppressor::new(&NoiseSuppressionOptions::default(), BINS, 10.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut frame = vec![0.0; BINS];
        let (mut tone_in, mut tone_out, mut noise_in, mut noise_out) = (0.0, 0.0, 0.0, 0.0);
        for t in 0..600 {
            noise_frame(&mut rng, 10.0, &mut frame);
            let on = (t / 30) % 2 == 1;
            if on {
                frame[20] += 1000.0;
                frame[21] += 1000.0;
            }
            let input = frame.clone();
            ns.process(&mut frame);
            if t >= 300 && on {
                tone_in += input[20] + input[21];
                tone_out += frame[20] + frame[21];
                noise_in += input[60..120].iter().sum::<f32>();
                noise_out += frame[60..120].iter().sum::<f32>();
            }
        }
        let kept_tone = tone_out / tone_in;
        assert!(kept_tone > 0.9, "component kept {kept_tone}");
        let gain_db = 10.0 * ((tone_out / noise_out) / (tone_in / noise_in)).log10();
        assert!(gain_db > 10.0, "SNR gain {gain_db} dB");
    }

    /// A clean line (the "noise" is 60 dB below the speech-like frames): gains stay at 1 within
    /// a hundredth once the estimate has seen a pause, except on the first frame of each
    /// speech run, where the decision-directed a-priori SNR still carries the pause's (its known
    /// one-frame lag; about -0.9 dB there).
    #[test]
    fn clean_frames_pass_almost_unchanged() {
        let mut ns = NoiseSuppressor::new(&NoiseSuppressionOptions::default(), BINS, 10.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut frame = vec![0.0; BINS];
        let (mut worst, mut onset_worst): (f32, f32) = (1.0, 1.0);
        for t in 0..500 {
            noise_frame(&mut rng, 1e-3, &mut frame);
            let speech = (t / 40) % 3 != 0;
            if speech {
                for (k, p) in frame.iter_mut().enumerate() {
                    *p += 1e3 * (1.0 + (k as f32 * 0.3).sin().abs());
                }
            }
            let kept = ns.process(&mut frame);
            if speech && t >= 160 {
                if t % 40 == 0 {
                    onset_worst = onset_worst.min(kept);
                } else {
                    worst = worst.min(kept);
                }
            }
        }
        assert!(worst > 0.99, "worst kept fraction on speech frames {worst}");
        assert!(
            onset_worst > 0.75,
            "worst kept fraction on onsets {onset_worst}"
        );
    }

    /// Without suppression the MFCC options serialise exactly as before the option existed, so
    /// the front-end fingerprints of model files trained without it stay valid; with it they
    /// round-trip.
    #[test]
    fn the_option_is_absent_from_the_front_end_json_unless_set() {
        let plain = serde_json::to_string(&crate::features::MfccOptions::default()).unwrap();
        assert!(!plain.contains("noise_suppression"), "{plain}");
        let with = crate::features::MfccOptions {
            noise_suppression: Some(NoiseSuppressionOptions {
                bias: 1.0,
                gain_floor_db: -6.0,
                ..Default::default()
            }),
            ..Default::default()
        };
        let json = serde_json::to_string(&with).unwrap();
        let back: crate::features::MfccOptions = serde_json::from_str(&json).unwrap();
        assert_eq!(back, with);
        let old: crate::features::MfccOptions = serde_json::from_str(&plain).unwrap();
        assert_eq!(old.noise_suppression, None);
    }

    /// Reset forgets everything: the same input after a reset gives the same output bits.
    #[test]
    fn reset_restarts_from_scratch() {
        let mut ns = NoiseSuppressor::new(&NoiseSuppressionOptions::default(), BINS, 10.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let frames: Vec<Vec<f32>> = (0..300)
            .map(|_| {
                let mut f = vec![0.0; BINS];
                let level = 1.0 + rng.random_range(0.0..1.0);
                noise_frame(&mut rng, level, &mut f);
                f
            })
            .collect();
        let run = |ns: &mut NoiseSuppressor| -> Vec<Vec<f32>> {
            frames
                .iter()
                .map(|f| {
                    let mut f = f.clone();
                    ns.process(&mut f);
                    f
                })
                .collect()
        };
        let first = run(&mut ns);
        ns.reset();
        assert_eq!(run(&mut ns), first);
    }
}
