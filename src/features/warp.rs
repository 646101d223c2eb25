//! Short-time feature warping (J. Pelecanos and S. Sridharan, "Feature warping for robust speaker
//! verification", Odyssey 2001).
//!
//! A channel (a handset's band limits and tilt, a codec, additive noise) moves and squeezes each
//! cepstral coefficient's distribution; mean normalisation only removes the shift. Warping maps
//! every coefficient through the empirical distribution of its own values in a sliding window and
//! then through the inverse standard normal CDF, so that within any window each coefficient is
//! N(0, 1) whatever the channel did to it, as long as the channel's effect is monotonic per
//! coefficient. For the value `x` at the window's centre with `less` window values below it and
//! `equal` values equal to it (itself included) among `n`, the output is
//! `Φ⁻¹((less + equal / 2) / n)` ([`crate::metrics::probit`]; the paper's `(n + ½ − R) / n` with descending rank `R`, ties
//! split evenly).
//!
//! The window is the sliding CMN's ([`super::SlidingCmnOptions::window`]); each dimension keeps
//! its window's values sorted, and a window that moves by one frame costs one removal and one
//! insertion per dimension (binary search and a short memmove), so an utterance costs
//! `O(frames · dim · window)` memmoves of 4-byte values and no allocation per frame.

use crate::metrics::probit;

/// The values of the current window, sorted, one list per dimension.
#[derive(Debug, Clone)]
pub(super) struct WarpWindow {
    window: Option<(usize, usize)>,
    sorted: Vec<Vec<f32>>,
}

impl WarpWindow {
    pub(super) fn new(dim: usize, capacity: usize) -> Self {
        Self {
            window: None,
            sorted: (0..dim).map(|_| Vec::with_capacity(capacity)).collect(),
        }
    }

    fn insert(&mut self, row: &[f32]) {
        for (list, &x) in self.sorted.iter_mut().zip(row) {
            let at = list.partition_point(|v| v.total_cmp(&x).is_lt());
            list.insert(at, x);
        }
    }

    fn remove(&mut self, row: &[f32]) {
        for (list, &x) in self.sorted.iter_mut().zip(row) {
            let at = list.partition_point(|v| v.total_cmp(&x).is_lt());
            // the value was inserted from the same row, so it is there, bit for bit
            debug_assert!(list.get(at).is_some_and(|v| v.total_cmp(&x).is_eq()));
            if at < list.len() {
                list.remove(at);
            }
        }
    }

    /// Moves the window to `[start, end)`; `row(i)` is input frame `i` (at most one frame in and
    /// one out at each end per call after the first, as the sliding CMN's windows move).
    pub(super) fn advance<'a>(
        &mut self,
        start: usize,
        end: usize,
        row: impl Fn(usize) -> &'a [f32],
    ) {
        match self.window {
            None => {
                self.sorted.iter_mut().for_each(Vec::clear);
                for i in start..end {
                    self.insert(row(i));
                }
            }
            Some((last_start, last_end)) => {
                if start > last_start {
                    self.remove(row(last_start));
                }
                if end > last_end {
                    self.insert(row(last_end));
                }
            }
        }
        self.window = Some((start, end));
    }

    /// Warps `input` (a frame of the current window) into `out`.
    pub(super) fn warp(&self, input: &[f32], out: &mut [f32]) {
        for ((o, &x), list) in out.iter_mut().zip(input).zip(&self.sorted) {
            let n = list.len();
            if n == 0 {
                *o = 0.0;
                continue;
            }
            // counted with IEEE comparisons (−0 equals +0), on a list sorted by total order
            let less = list.partition_point(|v| *v < x);
            let not_more = list.partition_point(|v| *v <= x);
            let p = (less as f64 + 0.5 * (not_more - less) as f64) / n as f64;
            // a value absent from the window (not a caller of this module) would give p = 0 or 1
            *o = probit(p.clamp(0.5 / n as f64, 1.0 - 0.5 / n as f64)) as f32;
        }
    }
}
