//! Energy voice-activity detection with Kaldi `compute-vad` semantics, batch and streaming.

use serde::{Deserialize, Serialize};

use super::{invalid, FeatureError};

/// Energy VAD options; defaults are the speaker-ID recipe's `vad.conf`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VadOptions {
    /// Constant part of the log-energy threshold (natural log).
    pub energy_threshold: f32,
    /// The threshold also gets `energy_mean_scale ×` the mean log energy (0 = constant threshold).
    pub energy_mean_scale: f32,
    /// Frames of context on each side of the frame.
    pub frames_context: usize,
    /// Fraction of frames in the context window that must exceed the threshold, in (0, 1).
    pub proportion_threshold: f32,
}

impl Default for VadOptions {
    fn default() -> Self {
        Self {
            energy_threshold: 5.5,
            energy_mean_scale: 0.5,
            frames_context: 2,
            proportion_threshold: 0.12,
        }
    }
}

impl VadOptions {
    /// Checks the options (Kaldi's own constraints).
    pub fn validate(&self) -> Result<(), FeatureError> {
        if !self.energy_threshold.is_finite() {
            return Err(invalid(
                "energy_threshold",
                format!("expected a finite value, got {}", self.energy_threshold),
            ));
        }
        if !(self.energy_mean_scale.is_finite() && self.energy_mean_scale >= 0.0) {
            return Err(invalid(
                "energy_mean_scale",
                format!(
                    "expected a finite value >= 0, got {}",
                    self.energy_mean_scale
                ),
            ));
        }
        if !(self.proportion_threshold > 0.0 && self.proportion_threshold < 1.0) {
            return Err(invalid(
                "proportion_threshold",
                format!("expected 0 < p < 1, got {}", self.proportion_threshold),
            ));
        }
        Ok(())
    }
}

/// Decision for one frame: enough of the log energies in its context `window` above `threshold`.
fn decide(window: &[f32], threshold: f32, proportion_threshold: f32) -> bool {
    let above = window.iter().filter(|&&e| e > threshold).count();
    above as f32 >= window.len() as f32 * proportion_threshold
}

/// Kaldi `compute-vad`: frame `t` is voiced when at least `proportion_threshold` of the frames
/// in `t ± frames_context` have a natural-log energy above
/// `energy_threshold + energy_mean_scale · mean(log_energy)` (mean over the whole utterance).
pub fn compute_vad(log_energy: &[f32], opts: &VadOptions) -> Result<Vec<bool>, FeatureError> {
    opts.validate()?;
    if log_energy.is_empty() {
        return Ok(Vec::new());
    }
    let mut threshold = opts.energy_threshold;
    if opts.energy_mean_scale != 0.0 {
        let total: f64 = log_energy.iter().map(|&e| f64::from(e)).sum();
        threshold += opts.energy_mean_scale * (total / log_energy.len() as f64) as f32;
    }
    let context = opts.frames_context;
    Ok((0..log_energy.len())
        .map(|t| {
            let lo = t.saturating_sub(context);
            let hi = (t + context + 1).min(log_energy.len());
            decide(&log_energy[lo..hi], threshold, opts.proportion_threshold)
        })
        .collect())
}

/// Causal variant of [`compute_vad`]: the mean in the threshold is the running mean over
/// frames `0 ..= t + frames_context` (all frames seen when frame `t` is decided), so it can run
/// on a live stream. Same result as [`StreamingVad`].
pub fn compute_vad_running(
    log_energy: &[f32],
    opts: &VadOptions,
) -> Result<Vec<bool>, FeatureError> {
    let mut vad = StreamingVad::new(opts)?;
    vad.accept_log_energy(log_energy);
    vad.input_finished();
    let mut out = Vec::with_capacity(log_energy.len());
    vad.pop_decisions(&mut out);
    Ok(out)
}

/// Streaming energy VAD with a running-mean threshold (see [`compute_vad_running`]); decision
/// for frame `t` is available once frame `t + frames_context` has arrived.
#[derive(Debug, Clone)]
pub struct StreamingVad {
    opts: VadOptions,
    /// Log energies from global frame `history_start` on.
    history: Vec<f32>,
    history_start: usize,
    received: usize,
    total: f64,
    next_out: usize,
    finished: bool,
    ready: Vec<bool>,
}

impl StreamingVad {
    /// A streaming VAD.
    pub fn new(opts: &VadOptions) -> Result<Self, FeatureError> {
        opts.validate()?;
        Ok(Self {
            opts: opts.clone(),
            history: Vec::with_capacity(256),
            history_start: 0,
            received: 0,
            total: 0.0,
            next_out: 0,
            finished: false,
            ready: Vec::new(),
        })
    }

    /// Forgets all frames.
    pub fn reset(&mut self) {
        self.history.clear();
        self.history_start = 0;
        self.received = 0;
        self.total = 0.0;
        self.next_out = 0;
        self.finished = false;
        self.ready.clear();
    }

    /// Feeds the natural-log energies of the next frames.
    pub fn accept_log_energy(&mut self, log_energy: &[f32]) {
        for &e in log_energy {
            self.history.push(e);
            self.received += 1;
            self.total += f64::from(e);
            self.emit();
        }
    }

    /// Marks the end of the utterance: the last `frames_context` decisions are made.
    pub fn input_finished(&mut self) {
        self.finished = true;
        self.emit();
    }

    /// Moves every decision made so far (true = voiced) to the end of `out`; returns how many.
    pub fn pop_decisions(&mut self, out: &mut Vec<bool>) -> usize {
        let n = self.ready.len();
        out.append(&mut self.ready);
        n
    }

    fn emit(&mut self) {
        let context = self.opts.frames_context;
        while self.next_out < self.received
            && (self.finished || self.next_out + context < self.received)
        {
            let t = self.next_out;
            let mut threshold = self.opts.energy_threshold;
            if self.opts.energy_mean_scale != 0.0 {
                // Frames seen: 0 ..= min(t + context, received − 1).
                let mean = (self.total / self.received as f64) as f32;
                threshold += self.opts.energy_mean_scale * mean;
            }
            let lo = t.saturating_sub(context);
            let hi = (t + context + 1).min(self.received);
            let window = &self.history[lo - self.history_start..hi - self.history_start];
            self.ready
                .push(decide(window, threshold, self.opts.proportion_threshold));
            self.next_out += 1;
        }
        let keep_from = self.next_out.saturating_sub(context);
        let droppable = keep_from - self.history_start.min(keep_from);
        if droppable >= 256 {
            self.history.drain(..droppable);
            self.history_start += droppable;
        }
    }
}
