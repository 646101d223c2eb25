//! Numerical kernels shared by the GMM code: log-sum-exp, vectorisable `exp`/`ln`, and a safe GEMM.

use nalgebra::{DMatrixView, DMatrixViewMut, RealField};

/// ln(2π).
pub(crate) const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Below this argument [`exp_f32`] returns exactly 0 (f32 `exp` would be subnormal or 0).
const EXP_F32_MIN_ARG: f32 = -87.3;

/// `exp(x)` in f32 with a relative error below 3e-7, written so that loops over slices vectorise.
/// Returns 0 for `x < -87.3` and saturates at `exp(88)` above.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    let xc = x.clamp(EXP_F32_MIN_ARG, 88.0);
    // x = k ln2 + r, |r| <= ln2 / 2; 1.5 * 2^23 rounds to nearest in the default FP mode.
    const ROUNDER: f32 = 12_582_912.0;
    let k = (xc * std::f32::consts::LOG2_E + ROUNDER) - ROUNDER;
    let r = xc - k * 0.693_145_75 - k * 1.428_606_8e-6;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // 2^k without a float→int conversion (which does not vectorise): adding 1.5·2^23 + 127
    // leaves the integer k + 127 in the low mantissa bits.
    let biased = (k + (ROUNDER + 127.0)).to_bits();
    let scale = f32::from_bits(biased << 23);
    if x < EXP_F32_MIN_ARG {
        0.0
    } else {
        er * scale
    }
}

/// `ln(x)` in f32 for positive normal `x`, relative error below 3e-7; vectorises in slice loops.
#[inline(always)]
pub(crate) fn ln_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    // Mantissa in [0.5, 1).
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= small as i32;
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let ef = e as f32;
    let z = f * f;
    let mut y = 7.037_683_6e-2_f32;
    y = y * f - 0.115_146_1;
    y = y * f + 0.116_769_99;
    y = y * f - 0.124_201_41;
    y = y * f + 0.142_493_23;
    y = y * f - 0.166_680_57;
    y = y * f + 0.200_007_15;
    y = y * f - 0.249_999_94;
    y = y * f + 0.333_333_3;
    y *= f * z;
    y += -2.121_944_4e-4 * ef;
    y += -0.5 * z;
    f + y + 0.693_359_4 * ef
}

/// Maximum of a slice (−∞ when empty), with 8 independent lanes so the loop vectorises.
#[inline]
pub(crate) fn max_f32(values: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l = if v > *l { v } else { *l };
        }
    }
    let mut max = f32::NEG_INFINITY;
    for &v in lanes.iter().chain(rest) {
        max = if v > max { v } else { max };
    }
    max
}

/// Sum of a slice with 8 independent lanes (vectorises; f32 rounding as pairwise-ish summation).
#[inline]
pub(crate) fn sum_f32(values: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    lanes.iter().chain(rest).sum()
}

/// `values[i] = exp(values[i] − shift)` in place (vectorised [`exp_f32`]), exactly 0 where
/// `values[i] − shift < −prune_nats`.
#[inline]
pub(crate) fn exp_shifted_pruned_in_place(values: &mut [f32], shift: f32, prune_nats: f32) {
    for v in values.iter_mut() {
        let arg = *v - shift;
        let e = exp_f32(arg);
        *v = if arg < -prune_nats { 0.0 } else { e };
    }
}

/// Number of values above `threshold` (vectorises).
#[inline]
pub(crate) fn count_above(values: &[f32], threshold: f32) -> usize {
    values.iter().map(|&v| (v > threshold) as usize).sum()
}

/// log Σ exp(values), computed stably in f64; −∞ for an empty slice.
pub(crate) fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || max.is_nan() {
        return max;
    }
    let sum: f64 = values.iter().map(|v| (v - max).exp()).sum();
    max + sum.ln()
}

/// Streaming log-sum-exp accumulator (no allocation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogSumExp {
    max: f64,
    sum: f64,
}

impl LogSumExp {
    pub(crate) fn new() -> Self {
        Self {
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, value: f64) {
        if value <= self.max {
            self.sum += (value - self.max).exp();
        } else if value.is_finite() {
            self.sum = self.sum * (self.max - value).exp() + 1.0;
            self.max = value;
        }
    }

    pub(crate) fn value(&self) -> f64 {
        if self.sum == 0.0 {
            f64::NEG_INFINITY
        } else {
            self.max + self.sum.ln()
        }
    }
}

/// A strided f32 matrix operand: `data[r * row_stride + c * col_stride]`.
pub(crate) struct MatRef<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// Row-major `rows × cols` matrix.
    pub(crate) fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major `cols × rows` matrix, seen as `rows × cols`.
    pub(crate) fn transposed(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: 1,
            col_stride: rows,
        }
    }
}

/// `out (rows(a) × cols(b), row-major) = a · b + beta · out`, through nalgebra, which hands
/// large f32/f64 products to `matrixmultiply::{sgemm, dgemm}` (safe wrapper; the crate forbids `unsafe`).
pub(crate) fn gemm<T: RealField + Copy>(
    a: &MatRef<'_, T>,
    b: &MatRef<'_, T>,
    beta: T,
    out: &mut [T],
) {
    debug_assert_eq!(a.cols, b.rows);
    let (m, n) = (a.rows, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    if a.cols == 0 {
        out[..m * n].iter_mut().for_each(|v| *v *= beta);
        return;
    }
    // nalgebra hands only products with every dimension > 5 to matrixmultiply; its own
    // fallback mishandles strided views, so small products are done here.
    if m <= 5 || n <= 5 || a.cols <= 5 {
        for i in 0..m {
            for j in 0..n {
                let mut dot = T::zero();
                for l in 0..a.cols {
                    dot += a.data[i * a.row_stride + l * a.col_stride]
                        * b.data[l * b.row_stride + j * b.col_stride];
                }
                out[i * n + j] = dot + beta * out[i * n + j];
            }
        }
        return;
    }
    let av =
        DMatrixView::from_slice_with_strides(a.data, a.rows, a.cols, a.row_stride, a.col_stride);
    let bv =
        DMatrixView::from_slice_with_strides(b.data, b.rows, b.cols, b.row_stride, b.col_stride);
    let mut cv = DMatrixViewMut::from_slice_with_strides_mut(&mut out[..m * n], m, n, n, 1);
    cv.gemm(T::one(), &av, &bv, beta);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_matches_std_exp() {
        let mut x = -87.0_f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            assert!(
                ((got - want) / want).abs() < 4e-7,
                "x={x} got={got} want={want}"
            );
            x += 0.01237;
        }
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn ln_f32_matches_std_ln() {
        let mut x = 1e-30_f32;
        while x < 1e30 {
            let want = (x as f64).ln();
            let got = ln_f32(x) as f64;
            assert!(
                (got - want).abs() < 4e-7 * want.abs().max(1.0),
                "x={x} got={got} want={want}"
            );
            x *= 1.013;
        }
        assert_eq!(ln_f32(1.0), 0.0);
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let v = [1000.0, 1000.0];
        assert!((log_sum_exp(&v) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        let mut s = LogSumExp::new();
        for x in [-5.0, 3.0, 1000.0, 2.0, f64::NEG_INFINITY] {
            s.push(x);
        }
        let direct = log_sum_exp(&[-5.0, 3.0, 1000.0, 2.0, f64::NEG_INFINITY]);
        assert!((s.value() - direct).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
    }

    #[test]
    fn sgemm_matches_naive_product_with_strides() {
        for (m, k, n) in [(9, 7, 11), (3, 8, 2), (8, 3, 9)] {
            sgemm_case(m, k, n);
        }
    }

    fn sgemm_case(m: usize, k: usize, n: usize) {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 17) as f32) - 8.0).collect();
        // b given transposed: stored row-major n × k.
        let bt: Vec<f32> = (0..n * k)
            .map(|i| ((i * 13 % 11) as f32) * 0.5 - 2.0)
            .collect();
        let mut out = vec![1.0_f32; m * n];
        gemm(
            &MatRef::row_major(&a, m, k),
            &MatRef::transposed(&bt, k, n),
            2.0,
            &mut out,
        );
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|l| a[i * k + l] * bt[j * k + l]).sum::<f32>() + 2.0;
                assert!((out[i * n + j] - want).abs() < 1e-4);
            }
        }
    }
}
