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
use quivox_bf16::{Bf16Kernel, Bf16Panels, Bf16Scratch};

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
        debug_assert!(n.is_multiple_of(NR) && w.len() >= (n - 1) * ldw + k);
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

/// Values the output rows of a product start from instead of `C`'s own (see [`gemm_acc`]): row
/// `i` starts from `values[i · stride ..][..n]`; with `stride` 0 every row starts from the same
/// bias. The bf16 kernel's own type, so that both precisions take the same.
pub(crate) use quivox_bf16::RowStart;

/// A weight matrix `W` packed once for the products of the chosen precision.
#[derive(Debug, Clone)]
pub(crate) enum PackedWeights {
    /// f32 panels, products by [`gemm_acc`].
    F32(PackedMatrix),
    /// bf16 panels, products by the AVX512_BF16 kernel (the token proves the CPU has it).
    Bf16(Bf16Kernel, Bf16Panels),
}

impl PackedWeights {
    /// Packs `W` (`n × k`, row stride `ldw`, `n` a multiple of [`NR`]) for the bf16 kernel when
    /// one is given, else in f32.
    pub(crate) fn pack(
        w: &[f32],
        n: usize,
        k: usize,
        ldw: usize,
        bf16: Option<Bf16Kernel>,
    ) -> Self {
        match bf16 {
            Some(kernel) => PackedWeights::Bf16(
                kernel,
                Bf16Panels::pack(w, n, k, ldw)
                    .expect("LSTM weight shapes are checked when the weights load"),
            ),
            None => PackedWeights::F32(PackedMatrix::pack(w, n, k, ldw)),
        }
    }
}

/// Scratch of [`product`]: the packed copy of `A` for either precision.
#[derive(Debug, Clone)]
pub(crate) struct ProductScratch {
    apack: Vec<f32>,
    bf16: Bf16Scratch,
}

impl ProductScratch {
    /// Scratch for products of depth up to `max_k` (either precision, no allocation later).
    pub(crate) fn new(max_k: usize) -> Self {
        ProductScratch {
            apack: vec![0.0; apack_len(max_k)],
            bf16: Bf16Scratch::new(max_k),
        }
    }
}

/// [`gemm_acc`] in the precision `w` was packed for (f32, or bf16 operands with f32 sums).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn product<S: Simd>(
    simd: S,
    m: usize,
    a: &[f32],
    lda: usize,
    w: &PackedWeights,
    c: &mut [f32],
    ldc: usize,
    start: Option<RowStart<'_>>,
    scratch: &mut ProductScratch,
) {
    match w {
        PackedWeights::F32(w) => gemm_acc(simd, m, a, lda, w, c, ldc, start, &mut scratch.apack),
        PackedWeights::Bf16(kernel, w) => kernel
            .gemm(m, a, lda, w, c, ldc, start, &mut scratch.bf16)
            .expect("LSTM product sizes are fixed by the architecture"),
    }
}

/// Scratch floats [`gemm_acc`] needs for its packed copy of `A` (for `k` ≤ `max_k`).
fn apack_len(max_k: usize) -> usize {
    MC * max_k
}

/// `C[i][..n] += A[i][..k] · Wᵀ` for `i < m`, or with `start`, `C[i][..n] = start row i +
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
    start: Option<RowStart<'_>>,
    apack: &mut [f32],
) {
    match S::F32_LANES {
        16 => gemm_blocked::<S, 8, 2, 4, 2, 2, 2>(simd, m, a, lda, w, c, ldc, start, apack),
        8 => gemm_blocked::<S, 3, 4, 2, 1, 1, 1>(simd, m, a, lda, w, c, ldc, start, apack),
        4 => gemm_blocked::<S, 2, 8, 1, 1, 1, 1>(simd, m, a, lda, w, c, ldc, start, apack),
        _ => gemm_plain(m, a, lda, w, c, ldc, start),
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
    start: Option<RowStart<'_>>,
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
            match start {
                Some(start) => out
                    .iter_mut()
                    .zip(&acc)
                    .zip(&start.values[i * start.stride + p * NR..i * start.stride + (p + 1) * NR])
                    .for_each(|((o, s), b)| *o = b + s),
                None => out.iter_mut().zip(&acc).for_each(|(o, s)| *o += s),
            }
        }
    }
}

/// Blocked product: chunks of [`MC`] rows of `A` are packed (`k × MR` per block of `MR` rows),
/// then every panel of `W` streams past the chunk's blocks. `U1`, `U2`, `U34`, `U56`: `k`
/// splits of the micro-kernel for blocks of 1, 2, 3-4 and 5-6 rows (AVX-512: 5 windows' recurrent
/// product with 20 accumulators instead of 10 measured 2-4 % faster on the whole call).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemm_blocked<
    S: Simd,
    const MR: usize,
    const V: usize,
    const U1: usize,
    const U2: usize,
    const U34: usize,
    const U56: usize,
>(
    simd: S,
    m: usize,
    a: &[f32],
    lda: usize,
    w: &PackedMatrix,
    c: &mut [f32],
    ldc: usize,
    start: Option<RowStart<'_>>,
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
                let first = chunk_start + row;
                let col_start = start.map(|s| RowStart {
                    values: &s.values[first * s.stride + col..],
                    stride: s.stride,
                });
                match rows {
                    1 => micro::<S, 1, V, U1>(simd, block, panel, c_block, ldc, col, col_start),
                    2 => micro::<S, 2, V, U2>(simd, block, panel, c_block, ldc, col, col_start),
                    3 => micro::<S, 3, V, U34>(simd, block, panel, c_block, ldc, col, col_start),
                    4 => micro::<S, 4, V, U34>(simd, block, panel, c_block, ldc, col, col_start),
                    5 => micro::<S, 5, V, U56>(simd, block, panel, c_block, ldc, col, col_start),
                    6 => micro::<S, 6, V, U56>(simd, block, panel, c_block, ldc, col, col_start),
                    7 => micro::<S, 7, V, 1>(simd, block, panel, c_block, ldc, col, col_start),
                    _ => micro::<S, 8, V, 1>(simd, block, panel, c_block, ldc, col, col_start),
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

/// `M` rows × [`NR`] columns: `C[i][col..col + NR] += Σ_kk a[kk][i] · panel[kk][..]` (or `=
/// start row i + Σ…` with `start`, its values beginning at this block's row 0, column `col`), with
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
    start: Option<RowStart<'_>>,
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
        let base: Option<&[S::f32s]> =
            start.map(|s| S::as_simd_f32s(&s.values[i * s.stride..i * s.stride + NR]).0);
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

/// tanh as a ratio `tanh(x) ≈ p / q` of 13/6-degree odd/even polynomials on [-7.9053,
/// 7.9053] (saturated outside), the approximation Eigen uses for `float`: absolute error below
/// 1e-6 (tested against f64), branch-free; `q` lies in [4.9e-3, 0.9]. The division is left to
/// the caller, which can share it (libm's `tanhf`/`expf` made the cell update a third of the
/// encoder's time; separate divisions for each gate, a tenth).
#[inline(always)]
fn tanh_ratio<S: Simd>(simd: S, x: S::f32s) -> (S::f32s, S::f32s) {
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
    let splat = |v: f32| simd.splat_f32s(v);
    let x = simd.max_f32s(simd.min_f32s(x, splat(CLAMP)), splat(-CLAMP));
    let x2 = simd.mul_f32s(x, x);
    let mut p = splat(ALPHA[6]);
    for &alpha in ALPHA[..6].iter().rev() {
        p = simd.mul_add_e_f32s(p, x2, splat(alpha));
    }
    let mut q = splat(BETA[3]);
    for &beta in BETA[..3].iter().rev() {
        q = simd.mul_add_e_f32s(q, x2, splat(beta));
    }
    (simd.mul_f32s(p, x), q)
}

/// One vector of the cell update: gate pre-activations `(i, f, g, o)` and the old cell state
/// → (new cell state, hidden state). With σ(x) = (q + p) / 2q at x / 2 and tanh = p / q, the
/// new cell state `σ(f)·c + σ(i)·tanh(g)` and the hidden state `σ(o)·tanh(c')` each take one
/// division over a common denominator instead of three and two.
#[inline(always)]
fn cell_vector<S: Simd>(simd: S, gates: [S::f32s; 4], cell: S::f32s) -> (S::f32s, S::f32s) {
    let half = simd.splat_f32s(0.5);
    let [gi, gf, gg, go] = gates;
    let (pi, qi) = tanh_ratio(simd, simd.mul_f32s(gi, half));
    let (pf, qf) = tanh_ratio(simd, simd.mul_f32s(gf, half));
    let (pg, qg) = tanh_ratio(simd, gg);
    let (po, qo) = tanh_ratio(simd, simd.mul_f32s(go, half));
    // c' = [(qf + pf)·c·qi·qg + (qi + pi)·pg·qf] / (2·qf·qi·qg)
    let qig = simd.mul_f32s(qi, qg);
    let kept = simd.mul_f32s(simd.mul_f32s(simd.add_f32s(qf, pf), cell), qig);
    let added = simd.mul_f32s(simd.add_f32s(qi, pi), pg);
    let numerator = simd.mul_add_e_f32s(added, qf, kept);
    let denominator = simd.mul_f32s(simd.add_f32s(qf, qf), qig);
    let new_cell = simd.div_f32s(numerator, denominator);
    // h = (qo + po)·pc / (2·qo·qc)
    let (pc, qc) = tanh_ratio(simd, new_cell);
    let numerator = simd.mul_f32s(simd.add_f32s(qo, po), pc);
    let denominator = simd.mul_f32s(simd.add_f32s(qo, qo), qc);
    (new_cell, simd.div_f32s(numerator, denominator))
}

/// LSTM cell update (PyTorch gate order i, f, g, o) for `rows` rows: gate pre-activations
/// (row stride `gate_stride`, 4 × `hidden` used) → cell state (`rows × hidden`, contiguous)
/// and hidden state (`rows × hidden`, contiguous), with σ(x) = (1 + tanh(x / 2)) / 2 and tanh
/// from [`tanh_ratio`].
#[inline(always)]
pub(crate) fn cell_update<S: Simd>(
    simd: S,
    gates: &[f32],
    gate_stride: usize,
    cell: &mut [f32],
    hidden_out: &mut [f32],
    hidden: usize,
    rows: usize,
) {
    let lanes = S::F32_LANES;
    let full = hidden / lanes * lanes;
    for r in 0..rows {
        let g = &gates[r * gate_stride..r * gate_stride + 4 * hidden];
        let c = &mut cell[r * hidden..(r + 1) * hidden];
        let h = &mut hidden_out[r * hidden..(r + 1) * hidden];
        let gate = |q: usize| S::as_simd_f32s(&g[q * hidden..q * hidden + full]).0;
        let (gi, gf, gg, go) = (gate(0), gate(1), gate(2), gate(3));
        {
            let (c_vectors, _) = S::as_mut_simd_f32s(&mut c[..full]);
            let (h_vectors, _) = S::as_mut_simd_f32s(&mut h[..full]);
            for (j, (cj, hj)) in c_vectors.iter_mut().zip(h_vectors).enumerate() {
                let (new_cell, new_hidden) = cell_vector(simd, [gi[j], gf[j], gg[j], go[j]], *cj);
                *cj = new_cell;
                *hj = new_hidden;
            }
        }
        if full < hidden {
            let load = |q: usize| simd.partial_load_f32s(&g[q * hidden + full..(q + 1) * hidden]);
            let gates = [load(0), load(1), load(2), load(3)];
            let old = simd.partial_load_f32s(&c[full..]);
            let (new_cell, new_hidden) = cell_vector(simd, gates, old);
            simd.partial_store_f32s(&mut c[full..], new_cell);
            simd.partial_store_f32s(&mut h[full..], new_hidden);
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
        start: Option<RowStart<'a>>,
    }

    impl pulp::WithSimd for Product<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let mut apack = vec![0.0f32; apack_len(self.w.k)];
            gemm_acc(
                simd, self.m, self.a, self.lda, self.w, self.c, self.ldc, self.start, &mut apack,
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
            (5, 32, 256),
            (6, 64, 33),
            (13, 32, 256),
            (300, 64, 9),
        ] {
            let (lda, ldc) = (k + 3, n + 5);
            let w: Vec<f32> = (0..n * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let a: Vec<f32> = (0..m * lda).map(|_| rng.random_range(-1.0..1.0)).collect();
            let c0: Vec<f32> = (0..m * ldc).map(|_| rng.random_range(-1.0..1.0)).collect();
            let packed = PackedMatrix::pack(&w, n, k, k);
            assert_eq!((packed.k, packed.data.len()), (k, n * k));
            // start rows: none (accumulate), one bias row, or a row of its own per output row
            let start_stride = n + 2;
            let starts: Vec<f32> = (0..m * start_stride)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            for mode in ["accumulate", "bias", "rows"] {
                let start = match mode {
                    "accumulate" => None,
                    "bias" => Some(RowStart::bias(&starts[..n])),
                    _ => Some(RowStart {
                        values: &starts,
                        stride: start_stride,
                    }),
                };
                let run = |simd: &dyn Fn(Product<'_>)| {
                    let mut c = c0.clone();
                    simd(Product {
                        m,
                        a: &a,
                        lda,
                        w: &packed,
                        c: &mut c,
                        ldc,
                        start,
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
                gemm_plain(m, &a, lda, &packed, &mut plain, ldc, start);
                for i in 0..m {
                    for j in 0..ldc {
                        let idx = i * ldc + j;
                        let expected = if j < n {
                            let start = start.map_or(c0[idx], |s| s.values[i * s.stride + j]);
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
                                "{label} {mode} m {m} n {n} k {k} at ({i}, {j}): \
                                 {got} vs {expected}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// tanh and σ as the cell update computes them, one value at a time.
    fn fast_tanh(x: f32) -> f32 {
        let (p, q) = tanh_ratio(pulp::Scalar::new(), x);
        p / q
    }

    fn sigmoid(x: f32) -> f32 {
        0.5 + 0.5 * fast_tanh(0.5 * x)
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

    struct Cells<'a> {
        gates: &'a [f32],
        stride: usize,
        cell: &'a mut [f32],
        hidden_out: &'a mut [f32],
        hidden: usize,
        rows: usize,
    }

    impl pulp::WithSimd for Cells<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            cell_update(
                simd,
                self.gates,
                self.stride,
                self.cell,
                self.hidden_out,
                self.hidden,
                self.rows,
            );
        }
    }

    /// Against the LSTM cell equations in f64 (exact tanh and logistic), on saturated and
    /// unsaturated gates, with a hidden size that leaves a partial vector, on the dispatched
    /// instruction set, AVX2 and the scalar path.
    #[test]
    fn cell_update_matches_f64_equations() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (hidden, rows) = (37, 3);
        let stride = 4 * hidden + 7;
        let gates: Vec<f32> = (0..rows * stride)
            .map(|_| rng.random_range(-12.0..12.0))
            .collect();
        let cell0: Vec<f32> = (0..rows * hidden)
            .map(|_| rng.random_range(-3.0..3.0))
            .collect();
        let run = |simd: &dyn Fn(Cells<'_>)| {
            let mut cell = cell0.clone();
            let mut h = vec![0.0f32; rows * hidden];
            simd(Cells {
                gates: &gates,
                stride,
                cell: &mut cell,
                hidden_out: &mut h,
                hidden,
                rows,
            });
            (cell, h)
        };
        let mut results = vec![
            ("dispatched", run(&|op| pulp::Arch::new().dispatch(op))),
            (
                "scalar",
                run(&|op| Simd::vectorize(pulp::Scalar::new(), op)),
            ),
        ];
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            results.push(("avx2", run(&|op| Simd::vectorize(simd, op))));
        }
        let sig = |x: f32| 1.0 / (1.0 + (-f64::from(x)).exp());
        for (label, (cell, h)) in results {
            for r in 0..rows {
                for j in 0..hidden {
                    let g = |q: usize| gates[r * stride + q * hidden + j];
                    let c = sig(g(1)) * f64::from(cell0[r * hidden + j])
                        + sig(g(0)) * f64::from(g(2)).tanh();
                    let hv = sig(g(3)) * c.tanh();
                    let (got_c, got_h) = (cell[r * hidden + j], h[r * hidden + j]);
                    assert!(
                        (f64::from(got_c) - c).abs() < 1e-5 && (f64::from(got_h) - hv).abs() < 1e-5,
                        "{label} row {r} unit {j}: c {got_c} vs {c}, h {got_h} vs {hv}"
                    );
                }
            }
        }
    }
}
