//! Small-M f32 matrix products over weights packed once at load, and the LSTM cell update,
//! vectorised at run time for the CPU at hand.
//!
//! The LSTM needs `C (m × n) += A (m × k) · Wᵀ` with `W` a fixed `n × k` weight matrix and `m`
//! from 1 (one streaming window) to a few thousand (input projection of every frame of every
//! window). Generic sgemm (`matrixmultiply`) copies `W` into its panel layout on every call,
//! which for the per-frame recurrence (`m` = 1-8) cost more than the arithmetic. Here `W` is
//! stored once, at load, as [`NR`]-column panels of `Wᵀ` ([`PackedMatrix`]), and a register-
//! blocked micro-kernel (`MR` rows of `A` × 32 columns, fused multiply-adds) streams each panel
//! once per block of `A` rows.
//!
//! Vector width: the crate forbids `unsafe`, so SIMD goes through `pulp`, whose safe
//! [`pulp::Arch::dispatch`] detects AVX-512 / AVX2+FMA at run time (the build itself targets
//! generic x86-64) and runs the generic code below compiled for the detected instruction set;
//! the plain scalar loops of the cell update are auto-vectorised inside the same dispatch.
//! Other CPUs take the scalar path (same arithmetic, slower).

use pulp::Simd;

/// Output columns per packed panel (two AVX-512 vectors, four AVX2 vectors).
pub(crate) const NR: usize = 32;
/// Rows of `A` packed together (their packed copy stays in L2 while all panels stream by).
const MC: usize = 128;

/// `Wᵀ` of a row-major `n × k` matrix `W`, in panels of [`NR`] columns: panel `p` holds, for
/// every `kk` in `0..k`, the `NR` values `W[p·NR + j][kk]`, contiguous.
#[derive(Debug, Clone)]
pub(crate) struct PackedMatrix {
    k: usize,
    data: Vec<f32>,
}

impl PackedMatrix {
    /// Packs `W` (`n × k`, row stride `ldw`). `n` must be a multiple of [`NR`] (the LSTM's
    /// sizes are 1024 and 256); callers pass architecture constants.
    pub(crate) fn pack(w: &[f32], n: usize, k: usize, ldw: usize) -> Self {
        debug_assert!(n % NR == 0 && w.len() >= (n - 1) * ldw + k);
        let mut data = vec![0.0f32; n * k];
        for (p, panel) in data.chunks_exact_mut(k * NR).enumerate() {
            for (j, column) in (p * NR..(p + 1) * NR).enumerate() {
                let row = &w[column * ldw..column * ldw + k];
                for (kk, &value) in row.iter().enumerate() {
                    panel[kk * NR + j] = value;
                }
            }
        }
        PackedMatrix { k, data }
    }
}

/// Scratch floats [`gemm_acc`] needs for its packed copy of `A` (for `k` ≤ `max_k`).
pub(crate) fn apack_len(max_k: usize) -> usize {
    MC * max_k
}

/// `C[i][..n] += A[i][..k] · Wᵀ` for `i < m`, or with `bias` (`n`), `C[i][..n] = bias +
/// A[i][..k] · Wᵀ` (C's old values unread): `A` row stride `lda`, `C` row stride `ldc`.
/// `apack` holds at least [`apack_len`]`(k)` floats of scratch.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_acc<S: Simd>(
    simd: S,
    m: usize,
    a: &[f32],
    lda: usize,
    w: &PackedMatrix,
    c: &mut [f32],
    ldc: usize,
    bias: Option<&[f32]>,
    apack: &mut [f32],
) {
    match S::F32_LANES {
        16 => gemm_blocked::<S, 8, 2, 4, 2, 2>(simd, m, a, lda, w, c, ldc, bias, apack),
        8 => gemm_blocked::<S, 3, 4, 2, 1, 1>(simd, m, a, lda, w, c, ldc, bias, apack),
        4 => gemm_blocked::<S, 2, 8, 1, 1, 1>(simd, m, a, lda, w, c, ldc, bias, apack),
        _ => gemm_plain(m, a, lda, w, c, ldc, bias),
    }
}

/// Scalar fallback for lane counts the micro-kernel is not laid out for.
fn gemm_plain(
    m: usize,
    a: &[f32],
    lda: usize,
    w: &PackedMatrix,
    c: &mut [f32],
    ldc: usize,
    bias: Option<&[f32]>,
) {
    let k = w.k;
    for i in 0..m {
        let a_row = &a[i * lda..i * lda + k];
        for (p, panel) in w.data.chunks_exact(k * NR).enumerate() {
            let mut acc = [0.0f32; NR];
            for (&x, b) in a_row.iter().zip(panel.chunks_exact(NR)) {
                for (s, &bj) in acc.iter_mut().zip(b) {
                    *s += x * bj;
                }
            }
            let out = &mut c[i * ldc + p * NR..i * ldc + (p + 1) * NR];
            match bias {
                Some(bias) => out
                    .iter_mut()
                    .zip(&acc)
                    .zip(&bias[p * NR..(p + 1) * NR])
                    .for_each(|((o, s), b)| *o = b + s),
                None => out.iter_mut().zip(&acc).for_each(|(o, s)| *o += s),
            }
        }
    }
}

/// Blocked product: chunks of [`MC`] rows of `A` are packed (`k × MR` per block of `MR` rows),
/// then every panel of `W` streams past the chunk's blocks. `U1`, `U2`, `U34`: `k` splits of
/// the micro-kernel for blocks of 1, 2 and 3-4 rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm_blocked<
    S: Simd,
    const MR: usize,
    const V: usize,
    const U1: usize,
    const U2: usize,
    const U34: usize,
>(
    simd: S,
    m: usize,
    a: &[f32],
    lda: usize,
    w: &PackedMatrix,
    c: &mut [f32],
    ldc: usize,
    bias: Option<&[f32]>,
    apack: &mut [f32],
) {
    let k = w.k;
    let mut chunk_start = 0;
    while chunk_start < m {
        let chunk_rows = (m - chunk_start).min(MC);
        // pack: block b (rows chunk_start + b·MR ..), layout [kk][row in block]
        let mut offset = 0;
        let mut row = 0;
        while row < chunk_rows {
            let rows = (chunk_rows - row).min(MR);
            let block = &mut apack[offset..offset + k * rows];
            for r in 0..rows {
                let src = &a[(chunk_start + row + r) * lda..(chunk_start + row + r) * lda + k];
                for (kk, &x) in src.iter().enumerate() {
                    block[kk * rows + r] = x;
                }
            }
            offset += k * rows;
            row += rows;
        }
        for (p, panel) in w.data.chunks_exact(k * NR).enumerate() {
            let mut offset = 0;
            let mut row = 0;
            while row < chunk_rows {
                let rows = (chunk_rows - row).min(MR);
                let block = &apack[offset..offset + k * rows];
                let c_block = &mut c[(chunk_start + row) * ldc..];
                let col = p * NR;
                let col_bias = bias.map(|b| &b[col..col + NR]);
                match rows {
                    1 => micro::<S, 1, V, U1>(simd, block, panel, c_block, ldc, col, col_bias),
                    2 => micro::<S, 2, V, U2>(simd, block, panel, c_block, ldc, col, col_bias),
                    3 => micro::<S, 3, V, U34>(simd, block, panel, c_block, ldc, col, col_bias),
                    4 => micro::<S, 4, V, U34>(simd, block, panel, c_block, ldc, col, col_bias),
                    5 => micro::<S, 5, V, 1>(simd, block, panel, c_block, ldc, col, col_bias),
                    6 => micro::<S, 6, V, 1>(simd, block, panel, c_block, ldc, col, col_bias),
                    7 => micro::<S, 7, V, 1>(simd, block, panel, c_block, ldc, col, col_bias),
                    _ => micro::<S, 8, V, 1>(simd, block, panel, c_block, ldc, col, col_bias),
                }
                offset += k * rows;
                row += rows;
            }
        }
        chunk_start += chunk_rows;
    }
}

/// Multiply-adds `M` rows of packed `A` (`[k][M]`) with one panel into `acc`.
#[inline(always)]
fn accumulate<S: Simd, const M: usize, const V: usize>(
    simd: S,
    acc: &mut [[S::f32s; V]; M],
    a_k: &[f32],
    b_k: &[f32],
) {
    let (b_vectors, _) = S::as_simd_f32s(b_k);
    let b: [S::f32s; V] = core::array::from_fn(|j| b_vectors[j]);
    for (acc_row, &x) in acc.iter_mut().zip(a_k) {
        let x = simd.splat_f32s(x);
        for (s, &bj) in acc_row.iter_mut().zip(&b) {
            *s = simd.mul_add_e_f32s(x, bj, *s);
        }
    }
}

/// `M` rows × [`NR`] columns: `C[i][col..col + NR] += Σ_kk a[kk][i] · panel[kk][..]` (or `= bias +
/// Σ…` with `bias`), with
/// `U × M × V` vector accumulators in registers over the whole `k` loop (`U` > 1 splits `k`
/// into interleaved partial sums, so that few rows still give enough independent
/// multiply-add chains to hide their latency).
#[inline(always)]
fn micro<S: Simd, const M: usize, const V: usize, const U: usize>(
    simd: S,
    a: &[f32],
    panel: &[f32],
    c: &mut [f32],
    ldc: usize,
    col: usize,
    bias: Option<&[f32]>,
) {
    let zero = simd.splat_f32s(0.0);
    let mut acc = [[[zero; V]; M]; U];
    let a_split = a.chunks_exact(M * U);
    let a_rest = a_split.remainder();
    let b_split = panel.chunks_exact(NR * U);
    let b_rest = b_split.remainder();
    for (a_u, b_u) in a_split.zip(b_split) {
        for (u, acc_u) in acc.iter_mut().enumerate() {
            accumulate::<S, M, V>(
                simd,
                acc_u,
                &a_u[u * M..(u + 1) * M],
                &b_u[u * NR..(u + 1) * NR],
            );
        }
    }
    for (a_k, b_k) in a_rest.chunks_exact(M).zip(b_rest.chunks_exact(NR)) {
        accumulate::<S, M, V>(simd, &mut acc[0], a_k, b_k);
    }
    for i in 0..M {
        let out = &mut c[i * ldc + col..i * ldc + col + NR];
        let (out_vectors, _) = S::as_mut_simd_f32s(out);
        let base: Option<&[S::f32s]> = bias.map(|b| S::as_simd_f32s(b).0);
        for (j, o) in out_vectors.iter_mut().enumerate().take(V) {
            let mut sum = acc[0][i][j];
            for acc_u in acc.iter().skip(1) {
                sum = simd.add_f32s(sum, acc_u[i][j]);
            }
            let start = match base {
                Some(base) => base[j],
                None => *o,
            };
            *o = simd.add_f32s(start, sum);
        }
    }
}

/// tanh by a 13/6-degree odd/even rational approximation on [-7.9053, 7.9053] (saturated
/// outside), the one Eigen uses for `float`: absolute error below 1e-6 (tested against f64),
/// branch-free so the cell-update loop vectorises; libm's `tanhf`/`expf` made the cell update a
/// third of the encoder's time.
#[inline(always)]
pub(crate) fn fast_tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const ALPHA: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const BETA: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let p = ALPHA[6];
    let p = p * x2 + ALPHA[5];
    let p = p * x2 + ALPHA[4];
    let p = p * x2 + ALPHA[3];
    let p = p * x2 + ALPHA[2];
    let p = p * x2 + ALPHA[1];
    let p = (p * x2 + ALPHA[0]) * x;
    let q = BETA[3];
    let q = q * x2 + BETA[2];
    let q = q * x2 + BETA[1];
    let q = q * x2 + BETA[0];
    p / q
}

/// Logistic sigmoid through [`fast_tanh`]: σ(x) = (1 + tanh(x / 2)) / 2.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    0.5 + 0.5 * fast_tanh(0.5 * x)
}

/// LSTM cell update (PyTorch gate order i, f, g, o) for `rows` rows: gate pre-activations
/// (row stride `gate_stride`, 4 × `hidden` used) → cell state (`rows × hidden`, contiguous)
/// and hidden state (`rows × hidden`, contiguous).
#[inline(always)]
pub(crate) fn cell_update(
    gates: &[f32],
    gate_stride: usize,
    cell: &mut [f32],
    hidden_out: &mut [f32],
    hidden: usize,
    rows: usize,
) {
    for r in 0..rows {
        let g = &gates[r * gate_stride..r * gate_stride + 4 * hidden];
        let (gi, rest) = g.split_at(hidden);
        let (gf, rest) = rest.split_at(hidden);
        let (gg, go) = rest.split_at(hidden);
        let c = &mut cell[r * hidden..(r + 1) * hidden];
        let h = &mut hidden_out[r * hidden..(r + 1) * hidden];
        for j in 0..hidden {
            let input_gate = sigmoid(gi[j]);
            let forget_gate = sigmoid(gf[j]);
            let candidate = fast_tanh(gg[j]);
            let output_gate = sigmoid(go[j]);
            let cj = forget_gate * c[j] + input_gate * candidate;
            c[j] = cj;
            h[j] = output_gate * fast_tanh(cj);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    struct Product<'a> {
        m: usize,
        a: &'a [f32],
        lda: usize,
        w: &'a PackedMatrix,
        c: &'a mut [f32],
        ldc: usize,
        bias: Option<&'a [f32]>,
    }

    impl pulp::WithSimd for Product<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let mut apack = vec![0.0f32; apack_len(self.w.k)];
            gemm_acc(
                simd, self.m, self.a, self.lda, self.w, self.c, self.ldc, self.bias, &mut apack,
            );
        }
    }

    /// Against a naive triple loop in f64, for row counts around every block size and with
    /// strided A and C, on the dispatched instruction set and on the scalar path.
    #[test]
    fn packed_product_matches_naive_f64() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (m, n, k) in [
            (1, 32, 1),
            (3, 64, 40),
            (8, 96, 17),
            (13, 32, 256),
            (300, 64, 9),
        ] {
            let (lda, ldc) = (k + 3, n + 5);
            let w: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let a: Vec<f32> = (0..m * lda).map(|_| rng.random_range(-1.0..1.0)).collect();
            let c0: Vec<f32> = (0..m * ldc).map(|_| rng.random_range(-1.0..1.0)).collect();
            let packed = PackedMatrix::pack(&w, n, k, k);
            assert_eq!((packed.k, packed.data.len()), (k, n * k));
            let bias: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            for with_bias in [false, true] {
                let bias = with_bias.then_some(&bias[..]);
                let run = |simd: &dyn Fn(Product<'_>)| {
                    let mut c = c0.clone();
                    simd(Product {
                        m,
                        a: &a,
                        lda,
                        w: &packed,
                        c: &mut c,
                        ldc,
                        bias,
                    });
                    c
                };
                let fast = run(&|op| pulp::Arch::new().dispatch(op));
                // the AVX2 kernel layout too, when this CPU can run it
                #[cfg(target_arch = "x86_64")]
                let avx2 =
                    pulp::x86::V3::try_new().map(|simd| run(&|op| Simd::vectorize(simd, op)));
                #[cfg(not(target_arch = "x86_64"))]
                let avx2: Option<Vec<f32>> = None;
                let mut plain = c0.clone();
                gemm_plain(m, &a, lda, &packed, &mut plain, ldc, bias);
                for i in 0..m {
                    for j in 0..ldc {
                        let idx = i * ldc + j;
                        let expected = if j < n {
                            let start = bias.map_or(c0[idx], |b| b[j]);
                            f64::from(start)
                                + (0..k)
                                    .map(|kk| f64::from(a[i * lda + kk]) * f64::from(w[j * k + kk]))
                                    .sum::<f64>()
                        } else {
                            f64::from(c0[idx]) // padding columns untouched
                        };
                        let avx2_value = avx2.as_ref().map_or(plain[idx], |c| c[idx]);
                        for (label, got) in [
                            ("dispatched", fast[idx]),
                            ("avx2", avx2_value),
                            ("scalar", plain[idx]),
                        ] {
                            assert!(
                                (f64::from(got) - expected).abs() < 1e-5 * (k as f64).sqrt() + 1e-6,
                                "{label} bias {with_bias} m {m} n {n} k {k} at ({i}, {j}): \
                                 {got} vs {expected}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fast_tanh_and_sigmoid_match_f64() {
        let mut worst = (0.0f64, 0.0f64);
        for i in -400_000..=400_000 {
            let x = i as f64 * 5e-5;
            let tanh_err = (f64::from(fast_tanh(x as f32)) - x.tanh()).abs();
            let sig_err = (f64::from(sigmoid(x as f32)) - 1.0 / (1.0 + (-x).exp())).abs();
            worst = (worst.0.max(tanh_err), worst.1.max(sig_err));
        }
        assert!(
            worst.0 < 1e-6 && worst.1 < 1e-6,
            "max errors tanh {:e}, sigmoid {:e}",
            worst.0,
            worst.1
        );
        assert_eq!(fast_tanh(100.0), fast_tanh(7.905_311));
        assert!((fast_tanh(100.0) - 1.0).abs() < 1e-6 && (fast_tanh(-100.0) + 1.0).abs() < 1e-6);
    }
}
