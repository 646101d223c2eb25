//! Cepstral mean (and variance) normalisation: per utterance (Kaldi `apply-cmvn`) and
//! sliding-window (Kaldi `apply-cmvn-sliding`), batch and streaming.

use serde::{Deserialize, Serialize};

use super::mfcc::check_dim;
use super::queue::{move_rows, FrameQueue};
use super::warp::WarpWindow;
use super::{invalid, FeatureError, FeatureMatrix};

/// Kaldi's variance floor for per-utterance CMVN.
const CMVN_VAR_FLOOR: f64 = 1e-20;
/// Kaldi's variance floor for sliding-window CMVN.
const SLIDING_VAR_FLOOR: f64 = 1e-10;

/// Per-utterance statistics for CMVN, accumulated in f64 (Kaldi's `compute-cmvn-stats`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CmvnStats {
    /// Σ_t x_t, one per dimension.
    pub sum: Vec<f64>,
    /// Σ_t x_t², one per dimension.
    pub sum_sq: Vec<f64>,
    /// Number of frames accumulated.
    pub count: f64,
}

impl CmvnStats {
    /// Zero statistics for `dim`-dimensional features.
    pub fn new(dim: usize) -> Self {
        Self {
            sum: vec![0.0; dim],
            sum_sq: vec![0.0; dim],
            count: 0.0,
        }
    }

    /// Statistics of every frame of `feats`.
    pub fn from_features(feats: &FeatureMatrix) -> Self {
        let mut stats = Self::new(feats.dim());
        // Same dimension by construction.
        let _ = stats.accumulate(feats);
        stats
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.sum.len()
    }

    /// Adds every frame of `feats`.
    pub fn accumulate(&mut self, feats: &FeatureMatrix) -> Result<(), FeatureError> {
        check_dim(feats, self.dim())?;
        for row in feats.rows() {
            for ((s, q), &x) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(row) {
                let x = f64::from(x);
                *s += x;
                *q += x * x;
            }
        }
        self.count += feats.num_frames() as f64;
        Ok(())
    }

    /// Normalises `feats` in place: subtracts the mean, and with `norm_vars` also divides by
    /// the standard deviation (variance floored at 1e-20). Needs at least one frame of stats.
    pub fn apply(&self, feats: &mut FeatureMatrix, norm_vars: bool) -> Result<(), FeatureError> {
        check_dim(feats, self.dim())?;
        if self.count < 1.0 {
            return Err(FeatureError::TooFewFrames {
                what: "CMVN statistics",
                expected: 1,
                actual: self.count as usize,
            });
        }
        let dim = self.dim();
        let mut scale = vec![1.0f32; dim];
        let mut offset = vec![0.0f32; dim];
        for d in 0..dim {
            let mean = self.sum[d] / self.count;
            if norm_vars {
                let var = (self.sum_sq[d] / self.count - mean * mean).max(CMVN_VAR_FLOOR);
                let s = 1.0 / var.sqrt();
                scale[d] = s as f32;
                offset[d] = (-mean * s) as f32;
            } else {
                offset[d] = -mean as f32;
            }
        }
        let dim = dim.max(1);
        for row in feats.as_mut_slice().chunks_exact_mut(dim) {
            for ((x, &s), &o) in row.iter_mut().zip(&scale).zip(&offset) {
                *x = if norm_vars { *x * s + o } else { *x + o };
            }
        }
        Ok(())
    }
}

/// Sliding-window CMN options (Kaldi `apply-cmvn-sliding`); defaults are the speaker-ID recipe:
/// 300-frame centred window, no variance normalisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlidingCmnOptions {
    /// Window length in frames.
    pub cmn_window: usize,
    /// Minimum window at the start, in frames (only when `center` is false).
    pub min_window: usize,
    /// Centre the window on the current frame (look-ahead `cmn_window / 2` frames); false =
    /// causal window ending at the current frame.
    pub center: bool,
    /// Also normalise the variance.
    pub norm_vars: bool,
    /// Short-time feature warping instead of mean (and variance) normalisation: each value is
    /// mapped through the empirical distribution of its window and the inverse normal CDF
    /// ([`super::warp`]); `norm_vars` is then ignored. Batch only (sessions normalise their
    /// buffered frames in batch); [`StreamingSlidingCmn`] refuses it. Default false (left out
    /// of the serialised options, so model fingerprints without it are unchanged).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub feature_warping: bool,
}

impl Default for SlidingCmnOptions {
    fn default() -> Self {
        Self {
            cmn_window: 300,
            min_window: 100,
            center: true,
            norm_vars: false,
            feature_warping: false,
        }
    }
}

impl SlidingCmnOptions {
    /// Checks the options: `cmn_window >= 1`, `min_window >= 1`.
    pub fn validate(&self) -> Result<(), FeatureError> {
        if self.cmn_window == 0 {
            return Err(invalid("cmn_window", "expected >= 1 frame, got 0"));
        }
        if self.min_window == 0 {
            return Err(invalid("min_window", "expected >= 1 frame, got 0"));
        }
        Ok(())
    }

    /// Window `[start, end)` of frame `t` as Kaldi computes it, for an utterance of
    /// `num_frames` frames, or of unknown length (`None`: no end clamp).
    fn window(&self, t: usize, num_frames: Option<usize>) -> (usize, usize) {
        let t = t as isize;
        let (mut start, mut end) = if self.center {
            let start = t - (self.cmn_window / 2) as isize;
            (start, start + self.cmn_window as isize)
        } else {
            (t - self.cmn_window as isize, t + 1)
        };
        if start < 0 {
            end -= start;
            start = 0;
        }
        if !self.center && end > t {
            end = (t + 1).max(self.min_window as isize);
        }
        if let Some(n) = num_frames {
            let n = n as isize;
            if end > n {
                start = (start - (end - n)).max(0);
                end = n;
            }
        }
        (start as usize, end as usize)
    }
}

/// Running window sums of the sliding CMN, updated exactly as Kaldi does (first window summed
/// row by row, then one frame removed / added per step), in f64.
#[derive(Debug, Clone)]
struct RunningWindow {
    window: Option<(usize, usize)>,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    norm_vars: bool,
}

impl RunningWindow {
    fn new(dim: usize, norm_vars: bool) -> Self {
        Self {
            window: None,
            sum: vec![0.0; dim],
            sum_sq: vec![0.0; if norm_vars { dim } else { 0 }],
            norm_vars,
        }
    }

    fn reset(&mut self) {
        self.window = None;
    }

    fn add(&mut self, row: &[f32], sign: f64) {
        for (s, &x) in self.sum.iter_mut().zip(row) {
            *s += sign * f64::from(x);
        }
        if self.norm_vars {
            for (q, &x) in self.sum_sq.iter_mut().zip(row) {
                let x = f64::from(x);
                *q += sign * x * x;
            }
        }
    }

    /// Moves the window to `[start, end)`; `row(i)` is input frame `i`.
    fn advance<'a>(&mut self, start: usize, end: usize, row: impl Fn(usize) -> &'a [f32]) {
        match self.window {
            None => {
                self.sum.fill(0.0);
                self.sum_sq.fill(0.0);
                for i in start..end {
                    self.add(row(i), 1.0);
                }
            }
            Some((last_start, last_end)) => {
                // Windows move by at most one frame at each end (Kaldi asserts the same).
                if start > last_start {
                    self.add(row(last_start), -1.0);
                }
                if end > last_end {
                    self.add(row(last_end), 1.0);
                }
            }
        }
        self.window = Some((start, end));
    }

    /// Normalises `input` with the current window's statistics into `out`.
    fn normalize(&self, input: &[f32], out: &mut [f32]) {
        let Some((start, end)) = self.window else {
            return;
        };
        let count = (end - start) as f64;
        let neg_inv_count = -1.0 / count;
        if !self.norm_vars {
            for ((o, &x), &s) in out.iter_mut().zip(input).zip(&self.sum) {
                *o = (f64::from(x) + neg_inv_count * s) as f32;
            }
            return;
        }
        for (((o, &x), &s), &q) in out.iter_mut().zip(input).zip(&self.sum).zip(&self.sum_sq) {
            *o = if end - start == 1 {
                0.0
            } else {
                let mean = s / count;
                let var = (q / count - mean * mean).max(SLIDING_VAR_FLOOR);
                ((f64::from(x) - mean) / var.sqrt()) as f32
            };
        }
    }
}

/// Sliding-window CMN (Kaldi `apply-cmvn-sliding`) of a whole utterance.
pub fn apply_sliding_cmn(
    feats: &FeatureMatrix,
    opts: &SlidingCmnOptions,
) -> Result<FeatureMatrix, FeatureError> {
    let mut out = FeatureMatrix::new(feats.dim());
    apply_sliding_cmn_into(feats, opts, &mut out)?;
    Ok(out)
}

/// [`apply_sliding_cmn`] into a caller-owned matrix (cleared first; same dimension).
pub fn apply_sliding_cmn_into(
    feats: &FeatureMatrix,
    opts: &SlidingCmnOptions,
    out: &mut FeatureMatrix,
) -> Result<(), FeatureError> {
    opts.validate()?;
    check_dim(out, feats.dim())?;
    let n = feats.num_frames();
    out.clear();
    out.reserve_frames(n);
    let mut row_buf = vec![0.0; feats.dim()];
    if opts.feature_warping {
        let mut window = WarpWindow::new(feats.dim(), opts.cmn_window.min(n) + 1);
        for t in 0..n {
            let (start, end) = opts.window(t, Some(n));
            window.advance(start, end, |i| feats.row(i));
            window.warp(feats.row(t), &mut row_buf);
            out.push_row(&row_buf);
        }
        return Ok(());
    }
    let mut running = RunningWindow::new(feats.dim(), opts.norm_vars);
    for t in 0..n {
        let (start, end) = opts.window(t, Some(n));
        running.advance(start, end, |i| feats.row(i));
        running.normalize(feats.row(t), &mut row_buf);
        out.push_row(&row_buf);
    }
    Ok(())
}

/// Streaming sliding-window CMN, bit-identical to [`apply_sliding_cmn`] for any chunking.
/// Frame `t` is emitted as soon as its whole window has arrived: with `center` that is a
/// look-ahead of `cmn_window / 2` frames; without, `min_window` frames at the start only.
#[derive(Debug, Clone)]
pub struct StreamingSlidingCmn {
    opts: SlidingCmnOptions,
    dim: usize,
    queue: FrameQueue,
    running: RunningWindow,
    row_buf: Vec<f32>,
}

impl StreamingSlidingCmn {
    /// A streaming normaliser for `dim`-dimensional frames.
    pub fn new(dim: usize, opts: &SlidingCmnOptions) -> Result<Self, FeatureError> {
        opts.validate()?;
        if opts.feature_warping {
            return Err(invalid(
                "feature_warping",
                "expected false for the streaming normaliser (feature warping is batch only: \
                 normalise the buffered frames with apply_sliding_cmn_into)",
            ));
        }
        Ok(Self {
            opts: opts.clone(),
            dim,
            queue: FrameQueue::new(dim, dim, opts.cmn_window + opts.min_window + 128),
            running: RunningWindow::new(dim, opts.norm_vars),
            row_buf: vec![0.0; dim],
        })
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Forgets all frames.
    pub fn reset(&mut self) {
        self.queue.reset();
        self.running.reset();
    }

    /// Feeds the next frames.
    pub fn accept_frames(&mut self, frames: &FeatureMatrix) -> Result<(), FeatureError> {
        self.queue.push(frames)?;
        self.emit();
        Ok(())
    }

    /// Marks the end of the utterance; the remaining frames are normalised.
    pub fn input_finished(&mut self) {
        self.queue.finished = true;
        self.emit();
    }

    /// Moves every normalised frame to the end of `out`; returns how many.
    pub fn pop_frames(&mut self, out: &mut FeatureMatrix) -> Result<usize, FeatureError> {
        move_rows(&mut self.queue.ready, out)
    }

    fn emit(&mut self) {
        let q = &mut self.queue;
        while q.next_out < q.received {
            let t = q.next_out;
            let (start, end) = if q.finished {
                self.opts.window(t, Some(q.received))
            } else {
                let (start, end) = self.opts.window(t, None);
                if end > q.received {
                    break;
                }
                (start, end)
            };
            let queue = &*q;
            self.running.advance(start, end, |i| queue.input(i));
            self.running.normalize(queue.input(t), &mut self.row_buf);
            q.ready.push_row(&self.row_buf);
            q.next_out += 1;
        }
        let keep_from = match self.running.window {
            Some((start, _)) => start.min(q.next_out),
            None => 0,
        };
        q.forget_before(keep_from, 128);
    }
}
