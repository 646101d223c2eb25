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
//! `Φ⁻¹((less + equal / 2) / n)` (the paper's `(n + ½ − R) / n` with descending rank `R`, ties
//! split evenly).
//!
//! The window is the sliding CMN's ([`super::SlidingCmnOptions::window`]); each dimension keeps
//! its window's values sorted, and a window that moves by one frame costs one removal and one
//! insertion per dimension (binary search and a short memmove), so an utterance costs
//! `O(frames · dim · window)` memmoves of 4-byte values and no allocation per frame.

/// Φ⁻¹(p), the standard normal quantile, for p in (0, 1) (±∞ at 0 and 1, NaN outside).
/// P. J. Acklam's rational approximation: relative error below 1.2 × 10⁻⁹ over (0, 1).
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

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
            *o = inverse_normal_cdf(p.clamp(0.5 / n as f64, 1.0 - 0.5 / n as f64)) as f32;
        }
    }
}
