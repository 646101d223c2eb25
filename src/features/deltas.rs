//! Kaldi `add-deltas`: appends regression-based time derivatives, edge frames replicated.

use serde::{Deserialize, Serialize};

use super::mfcc::check_dim;
use super::queue::{move_rows, FrameQueue};
use super::{invalid, FeatureError, FeatureMatrix};

/// Delta options (Kaldi `add-deltas`); defaults: order 2 (Δ and ΔΔ), window 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeltaOptions {
    /// Highest derivative order (2 = static + Δ + ΔΔ); output has `(order + 1) · dim` columns.
    pub order: usize,
    /// Half-width of the regression window in frames.
    pub window: usize,
}

impl Default for DeltaOptions {
    fn default() -> Self {
        Self {
            order: 2,
            window: 2,
        }
    }
}

impl DeltaOptions {
    /// Checks the options: `order` in 0..=4, `window` in 1..=100.
    pub fn validate(&self) -> Result<(), FeatureError> {
        if self.order > 4 {
            return Err(invalid(
                "order",
                format!("expected 0..=4, got {}", self.order),
            ));
        }
        if self.window == 0 || self.window > 100 {
            return Err(invalid(
                "window",
                format!("expected 1..=100 frames, got {}", self.window),
            ));
        }
        Ok(())
    }

    /// Frames of look-ahead (and look-behind) the highest order needs: `order · window`.
    pub fn context_frames(&self) -> usize {
        self.order * self.window
    }
}

/// Regression filters, one per order: filter `o` has `2·o·window + 1` taps centred on the frame
/// (order 0 = identity; order `o` = order `o−1` convolved with `j / Σj²`, j = −window..=window).
fn delta_scales(opts: &DeltaOptions) -> Vec<Vec<f32>> {
    let w = opts.window as isize;
    let mut scales = vec![vec![1.0f32]];
    for order in 1..=opts.order {
        let prev = &scales[order - 1];
        let prev_offset = (prev.len() as isize - 1) / 2;
        let cur_offset = prev_offset + w;
        let mut cur = vec![0.0f32; prev.len() + 2 * opts.window];
        let mut normalizer = 0.0f32;
        for j in -w..=w {
            normalizer += (j * j) as f32;
            for k in -prev_offset..=prev_offset {
                cur[(j + k + cur_offset) as usize] += j as f32 * prev[(k + prev_offset) as usize];
            }
        }
        for c in &mut cur {
            *c *= 1.0 / normalizer;
        }
        scales.push(cur);
    }
    scales
}

/// Output row for frame `t`: for each order, Σ_j scale_j · row(clamp(t + j)). `row` does the clamping.
fn delta_row<'a>(scales: &[Vec<f32>], t: isize, row: impl Fn(isize) -> &'a [f32], out: &mut [f32]) {
    let dim = out.len() / scales.len();
    for (scale, out) in scales.iter().zip(out.chunks_exact_mut(dim)) {
        out.fill(0.0);
        let max_offset = (scale.len() as isize - 1) / 2;
        for (j, &s) in (-max_offset..=max_offset).zip(scale) {
            if s != 0.0 {
                for (o, &x) in out.iter_mut().zip(row(t + j)) {
                    *o += s * x;
                }
            }
        }
    }
}

/// Static features followed by their deltas up to `opts.order` (Kaldi `add-deltas`):
/// `[x, Δx, ΔΔx]` for the default options. Frames beyond the edges are replicated.
pub fn compute_deltas(
    feats: &FeatureMatrix,
    opts: &DeltaOptions,
) -> Result<FeatureMatrix, FeatureError> {
    let mut out = FeatureMatrix::new(feats.dim() * (opts.order + 1));
    compute_deltas_into(feats, opts, &mut out)?;
    Ok(out)
}

/// [`compute_deltas`] into a caller-owned matrix of `(order + 1) · dim` columns (cleared first).
pub fn compute_deltas_into(
    feats: &FeatureMatrix,
    opts: &DeltaOptions,
    out: &mut FeatureMatrix,
) -> Result<(), FeatureError> {
    opts.validate()?;
    let scales = delta_scales(opts);
    let dim = feats.dim();
    let n = feats.num_frames();
    check_dim(out, dim * (opts.order + 1))?;
    out.clear();
    out.reserve_frames(n);
    let mut row_buf = vec![0.0; dim * (opts.order + 1)];
    let last = n as isize - 1;
    let context = opts.context_frames();
    let data = feats.as_slice();
    for t in 0..n {
        if t >= context && t + context < n {
            // Interior frame: no clamping, so read the rows straight from the contiguous block
            // (same operations in the same order as `delta_row`, hence the same bits).
            let block = &data[(t - context) * dim..(t + context + 1) * dim];
            for (scale, out) in scales.iter().zip(row_buf.chunks_exact_mut(dim)) {
                out.fill(0.0);
                let first = context - (scale.len() - 1) / 2;
                for (&s, row) in scale.iter().zip(block.chunks_exact(dim).skip(first)) {
                    if s != 0.0 {
                        for (o, &x) in out.iter_mut().zip(row) {
                            *o += s * x;
                        }
                    }
                }
            }
        } else {
            delta_row(
                &scales,
                t as isize,
                |i| feats.row(i.clamp(0, last) as usize),
                &mut row_buf,
            );
        }
        out.push_row(&row_buf);
    }
    Ok(())
}

/// Streaming [`compute_deltas`]: frame `t` is emitted once frame `t + order·window` has arrived
/// (or at [`input_finished`](Self::input_finished)); output is bit-identical to the batch function.
#[derive(Debug, Clone)]
pub struct StreamingDeltas {
    scales: Vec<Vec<f32>>,
    context: usize,
    queue: FrameQueue,
    row_buf: Vec<f32>,
}

impl StreamingDeltas {
    /// A streaming delta computer for `in_dim`-dimensional input frames.
    pub fn new(in_dim: usize, opts: &DeltaOptions) -> Result<Self, FeatureError> {
        opts.validate()?;
        let out_dim = in_dim * (opts.order + 1);
        Ok(Self {
            scales: delta_scales(opts),
            context: opts.context_frames(),
            queue: FrameQueue::new(in_dim, out_dim, 4 * opts.context_frames() + 64),
            row_buf: vec![0.0; out_dim],
        })
    }

    /// Output dimension `(order + 1) · in_dim`.
    pub fn dim(&self) -> usize {
        self.row_buf.len()
    }

    /// Forgets all frames.
    pub fn reset(&mut self) {
        self.queue.reset();
    }

    /// Feeds the next input frames.
    pub fn accept_frames(&mut self, frames: &FeatureMatrix) -> Result<(), FeatureError> {
        self.queue.push(frames)?;
        self.emit();
        Ok(())
    }

    /// Marks the end of the utterance: the last `order·window` frames become available.
    pub fn input_finished(&mut self) {
        self.queue.finished = true;
        self.emit();
    }

    /// Moves every finished output frame to the end of `out`; returns how many.
    pub fn pop_frames(&mut self, out: &mut FeatureMatrix) -> Result<usize, FeatureError> {
        move_rows(&mut self.queue.ready, out)
    }

    fn emit(&mut self) {
        let q = &mut self.queue;
        while q.next_out < q.received && (q.finished || q.next_out + self.context < q.received) {
            let last = q.received as isize - 1;
            let queue = &*q;
            delta_row(
                &self.scales,
                q.next_out as isize,
                |i| queue.input(i.clamp(0, last) as usize),
                &mut self.row_buf,
            );
            q.ready.push_row(&self.row_buf);
            q.next_out += 1;
        }
        // Frames before next_out − context can no longer be reached.
        q.forget_before(q.next_out.saturating_sub(self.context), 64);
    }
}
