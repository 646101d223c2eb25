//! bf16 dot-product matrix kernel for small-`m` products against a weight matrix packed once.
//!
//! `C (m × n) (+)= A (m × k) · Wᵀ`, `W` a fixed row-major `n × k` f32 matrix, `m` from 1 (one
//! recurrent step) to thousands (an input projection of every frame). `W` is rounded to bf16
//! (round to nearest even) once, in [`Bf16Panels::pack`]; each product rounds the rows of `A` to
//! bf16 while packing them into caller-owned [`Bf16Scratch`] and accumulates in f32 with
//! AVX512_BF16's `vdpbf16ps`, which does two bf16 multiply-adds per f32 lane: twice the f32
//! FMA rate on the same vector width, half the bytes of `W` to stream. This is what oneDNN does
//! for LSTM inference; the price is bf16's 8-bit significand on both operands (relative
//! rounding error 2⁻⁹ per operand), the sums stay f32.
//!
//! The instruction set is detected at run time ([`Bf16Kernel::detect`]); on other CPUs and
//! other architectures there is no kernel (`None`), and callers keep their f32 path. Every
//! pointer the intrinsics read or write comes from a bounds-checked slice or array reference,
//! and [`Bf16Kernel::gemm`] checks every size first: no input can make the safe API read or
//! write out of bounds.
//!
//! Numerics of the hardware path: products of two bf16 values are exact in f32; `vdpbf16ps`
//! and the conversion of `A` (`vcvtne2ps2bf16`) treat subnormal inputs as zero and flush
//! subnormal results (DAZ/FTZ, whatever MXCSR says), so they agree with [`to_bf16_rne`]
//! followed by exact products and f32 sums for all inputs whose bf16 roundings and partial sums
//! are zero or normal numbers.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

/// Output columns per panel of [`Bf16Panels`] (two 16-lane f32 vectors).
pub const PANEL_COLUMNS: usize = 32;
/// `k` pairs per group: one vector of 32 bf16 values (16 pairs) of a row of `A` converted at
/// once. Pairs after the last whole group (`⌈k / 2⌉ mod 16` of them) are packed row by row.
const GROUP_PAIRS: usize = 16;
/// Rows of `A` packed together (their bf16 copy, ≤ 64 KB for `k` ≤ 256, stays in L2 while all
/// panels stream by).
const MC: usize = 128;
/// Most rows of one micro-kernel block.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const MR: usize = 8;

/// Whether this CPU can run the bf16 kernel (x86-64 with AVX-512F, AVX-512VL and AVX512_BF16).
pub fn available() -> bool {
    Bf16Kernel::detect().is_some()
}

/// `x` rounded to bf16 (the upper 16 bits of an f32) to nearest, ties to even; overflow rounds
/// to ±infinity, subnormals round like any other value, NaN stays NaN (made quiet).
pub fn to_bf16_rne(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return (bits >> 16) as u16 | 0x0040;
    }
    // adding just under half an ulp of bf16, plus the low bit of the kept part, carries into
    // the kept part exactly when the dropped part is above half, or half with an odd kept part;
    // the largest non-NaN pattern, 0xFF80_0000 (-inf), cannot overflow
    let round = 0x7FFF + ((bits >> 16) & 1);
    ((bits + round) >> 16) as u16
}

/// The f32 value of a bf16 bit pattern (exact).
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// A size that does not fit the product it was given to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Bf16Error {
    /// A buffer or stride is too small for the stated shape (or the shape overflows `usize`,
    /// then `expected` is `usize::MAX`).
    #[error("{what}: expected at least {expected}, found {found}")]
    Shape {
        /// Which buffer or stride, and its unit.
        what: &'static str,
        /// Smallest value that fits.
        expected: usize,
        /// Value given.
        found: usize,
    },
}

/// `(count - 1) · stride + width`, the elements a strided matrix of `count ≥ 1` rows spans.
fn span(count: usize, stride: usize, width: usize) -> Option<usize> {
    (count - 1).checked_mul(stride)?.checked_add(width)
}

/// Checks `found ≥ needed` (`None`: the shape overflowed).
fn check(what: &'static str, needed: Option<usize>, found: usize) -> Result<(), Bf16Error> {
    match needed {
        Some(expected) if found >= expected => Ok(()),
        expected => Err(Bf16Error::Shape {
            what,
            expected: expected.unwrap_or(usize::MAX),
            found,
        }),
    }
}

/// `k` pairs of the packed layout for depth `k`: `⌈k / 2⌉`.
fn packed_pairs(k: usize) -> usize {
    k.div_ceil(2)
}

/// `Wᵀ` of a row-major `n × k` f32 matrix `W`, rounded to bf16 ([`to_bf16_rne`]) and stored in
/// panels of [`PANEL_COLUMNS`] output columns: panel `p`, for each pair `q` of the depth, holds
/// 32 `u32`s, the one of column `j` being `bf16(W[32p + j][2q])` in the low half and
/// `bf16(W[32p + j][2q + 1])` in the high half. The high half of the last pair for odd `k`
/// and columns beyond `n` (in the last panel) are zeros.
#[derive(Debug, Clone)]
pub struct Bf16Panels {
    n: usize,
    k: usize,
    pairs: usize,
    data: Vec<u32>,
}

impl Bf16Panels {
    /// Packs `W` (`n` rows × `k` columns, row `r` at `w[r · ldw ..]`, `ldw ≥ k`). An error if
    /// `w` is too short for that shape.
    pub fn pack(w: &[f32], n: usize, k: usize, ldw: usize) -> Result<Self, Bf16Error> {
        if n > 1 {
            check("W row stride (values)", Some(k), ldw)?;
        }
        if n > 0 && k > 0 {
            check("W values (rows · stride)", span(n, ldw, k), w.len())?;
        }
        let pairs = packed_pairs(k);
        let panel_len = pairs * PANEL_COLUMNS;
        let mut data = vec![0u32; n.div_ceil(PANEL_COLUMNS) * panel_len];
        for (p, panel) in data.chunks_exact_mut(panel_len.max(1)).enumerate() {
            let columns = (n - p * PANEL_COLUMNS).min(PANEL_COLUMNS);
            for j in 0..columns {
                let row = &w[(p * PANEL_COLUMNS + j) * ldw..][..k];
                for (q, pair) in row.chunks(2).enumerate() {
                    let low = u32::from(to_bf16_rne(pair[0]));
                    let high = pair.get(1).map_or(0, |&x| u32::from(to_bf16_rne(x)));
                    panel[q * PANEL_COLUMNS + j] = low | high << 16;
                }
            }
        }
        Ok(Bf16Panels { n, k, pairs, data })
    }

    /// Output columns `n` (rows of `W`).
    pub fn columns(&self) -> usize {
        self.n
    }

    /// Depth `k` (columns of `W`, the width of a row of `A`).
    pub fn depth(&self) -> usize {
        self.k
    }

    /// The bf16 value packed for `W[row][col]` (for tests and diagnostics; zero outside `W`).
    pub fn value(&self, row: usize, col: usize) -> f32 {
        if row >= self.n || col >= self.k {
            return 0.0;
        }
        let (p, j) = (row / PANEL_COLUMNS, row % PANEL_COLUMNS);
        let word = self.data[(p * self.pairs + col / 2) * PANEL_COLUMNS + j];
        bf16_to_f32((word >> (16 * (col % 2))) as u16)
    }
}

/// Values the output rows of a product start from instead of `C`'s own: row `i` starts from
/// `values[i · stride ..][..n]`; with `stride` 0 every row starts from the same bias row.
#[derive(Debug, Clone, Copy)]
pub struct RowStart<'a> {
    /// The start rows (f32).
    pub values: &'a [f32],
    /// Distance in values between the start rows of consecutive output rows.
    pub stride: usize,
}

impl<'a> RowStart<'a> {
    /// One bias row (`n` values) for every output row.
    pub fn bias(values: &'a [f32]) -> Self {
        RowStart { values, stride: 0 }
    }
}

/// Scratch for the bf16 copy of `A`'s rows; allocate once, reuse for every product (it only
/// grows, on the first product with a larger depth).
#[derive(Debug, Clone, Default)]
pub struct Bf16Scratch {
    apack: Vec<u32>,
}

impl Bf16Scratch {
    /// Scratch sized for products of depth up to `max_k` (any row count), so that none of
    /// them allocates.
    pub fn new(max_k: usize) -> Self {
        Bf16Scratch {
            apack: vec![0; MC * packed_pairs(max_k)],
        }
    }
}

/// Proof that the CPU runs the bf16 kernel (AVX-512F, AVX-512VL, AVX512_BF16), obtained from
/// [`Bf16Kernel::detect`]; it cannot be built otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bf16Kernel {
    _proof: Proof,
}

/// Unit on x86-64; uninhabited elsewhere, so that no [`Bf16Kernel`] exists there.
#[cfg(target_arch = "x86_64")]
type Proof = ();
#[cfg(not(target_arch = "x86_64"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {}

impl Bf16Kernel {
    /// The kernel, if this CPU has the instructions (run-time detection, cached by std).
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            let ok = std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512bf16");
            ok.then_some(Bf16Kernel { _proof: () })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    /// `C[i][..n] += A[i][..k] · Wᵀ` for `i < m`, or with `start`, `C[i][..n] = start row i +
    /// A[i][..k] · Wᵀ` (C's old values unread), `n` and `k` those of `w`: `A` row `i` at
    /// `a[i · lda ..]`, `C` row `i` at `c[i · ldc ..]`. `A` is rounded to bf16 (to nearest even)
    /// into `scratch`; sums are f32, starting from zero, the start row (or C) added last. An
    /// error, before anything is written, if a buffer or stride is too small for `m` rows.
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        self,
        m: usize,
        a: &[f32],
        lda: usize,
        w: &Bf16Panels,
        c: &mut [f32],
        ldc: usize,
        start: Option<RowStart<'_>>,
        scratch: &mut Bf16Scratch,
    ) -> Result<(), Bf16Error> {
        let (n, k) = (w.n, w.k);
        if m == 0 || n == 0 {
            return Ok(());
        }
        if m > 1 {
            check("A row stride (values)", Some(k), lda)?;
            check("C row stride (values)", Some(n), ldc)?;
        }
        check("A values (rows · stride)", span(m, lda, k), a.len())?;
        check("C values (rows · stride)", span(m, ldc, n), c.len())?;
        if let Some(start) = start {
            check(
                "start values (rows · stride)",
                span(m, start.stride, n),
                start.values.len(),
            )?;
        }
        if k == 0 {
            // an empty sum: C is its start rows, or stays as it is
            if let Some(start) = start {
                for i in 0..m {
                    c[i * ldc..i * ldc + n]
                        .copy_from_slice(&start.values[i * start.stride..i * start.stride + n]);
                }
            }
            return Ok(());
        }
        let needed = m.min(MC) * w.pairs;
        if scratch.apack.len() < needed {
            scratch.apack.resize(needed, 0);
        }
        #[cfg(target_arch = "x86_64")]
        {
            let product = Product {
                m,
                a,
                lda,
                w,
                c,
                ldc,
                start,
            };
            // SAFETY: `self` exists only when `detect` found AVX-512F, AVX-512VL and
            // AVX512_BF16 on this CPU, the features `x86::gemm` is compiled for.
            unsafe { x86::gemm(product, &mut scratch.apack) };
            Ok(())
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            match self._proof {}
        }
    }
}

/// A checked product (see [`Bf16Kernel::gemm`]): every size fits.
#[cfg(target_arch = "x86_64")]
struct Product<'a, 'c> {
    m: usize,
    a: &'a [f32],
    lda: usize,
    w: &'a Bf16Panels,
    c: &'c mut [f32],
    ldc: usize,
    start: Option<RowStart<'a>>,
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The AVX-512 code. Every function is compiled for the kernel's features and callable
    //! safely only from functions that have them; the entry point, [`gemm`], is `unsafe` to
    //! call for that reason alone.

    use super::{Product, RowStart, GROUP_PAIRS, MC, MR, PANEL_COLUMNS};
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, _mm512_add_ps, _mm512_cvtne2ps_pbh, _mm512_dpbf16_ps,
        _mm512_loadu_epi32, _mm512_loadu_ps, _mm512_set1_epi32, _mm512_setzero_ps,
        _mm512_storeu_epi32, _mm512_storeu_ps,
    };

    /// Values of `A` converted by one instruction (a group of pairs).
    const GROUP_VALUES: usize = 2 * GROUP_PAIRS;

    /// 16 f32 lanes from an array (bounds proven by the reference's type).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load_f32(values: &[f32; 16]) -> __m512 {
        // SAFETY: the reference covers 16 readable f32s; the load has no alignment requirement.
        unsafe { _mm512_loadu_ps(values.as_ptr()) }
    }

    /// Stores 16 f32 lanes into an array.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store_f32(out: &mut [f32; 16], v: __m512) {
        // SAFETY: the reference covers 16 writable f32s; the store has no alignment requirement.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) }
    }

    /// 16 bf16 pairs (32-bit lanes) from an array.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load_pairs(words: &[u32; 16]) -> __m512bh {
        // SAFETY: the reference covers 16 readable u32s; the load has no alignment requirement.
        let v: __m512i = unsafe { _mm512_loadu_epi32(words.as_ptr().cast()) };
        as_bh(v)
    }

    /// The same 512 bits seen as 32 bf16 values.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn as_bh(v: __m512i) -> __m512bh {
        // SAFETY: both are plain 64-byte vectors, every bit pattern valid for either.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    }

    /// 32 f32 values → 16 pairs of bf16 (round to nearest even; value `2j` in the low half of
    /// word `j`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    fn convert_group(values: &[f32; GROUP_VALUES], out: &mut [u32; GROUP_PAIRS]) {
        let (low, high) = values.split_at(16);
        let low = load_f32(low.try_into().expect("16 of 32"));
        let high = load_f32(high.try_into().expect("16 of 32"));
        // the second operand fills the low 16 bf16 slots
        let words: __m512i =
            // SAFETY: plain 64-byte vectors, every bit pattern valid for either.
            unsafe { std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(high, low)) };
        // SAFETY: the reference covers 16 writable u32s; the store has no alignment requirement.
        unsafe { _mm512_storeu_epi32(out.as_mut_ptr().cast(), words) }
    }

    /// Packs `rows` rows of `A` (row `r` at `a[r · lda ..][..k]`, `⌈k / 2⌉` = `pairs`) as one
    /// micro-kernel block: whole group `g`, row `r`, pair `j` at `block[(g · rows + r) · 16 +
    /// j]`; then the `t` pairs after the last whole group, row `r`'s pair `j` at `[r · t + j]`
    /// from there; a zero high half for odd `k`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    fn pack_block(a: &[f32], lda: usize, k: usize, rows: usize, pairs: usize, block: &mut [u32]) {
        let (groups, tail) = (pairs / GROUP_PAIRS, pairs % GROUP_PAIRS);
        let (whole, rest) = block.split_at_mut(groups * GROUP_PAIRS * rows);
        for (r, row) in (0..rows).map(|r| &a[r * lda..r * lda + k]).enumerate() {
            if tail > 0 {
                let first = groups * GROUP_VALUES;
                let mut values = [0.0f32; GROUP_VALUES];
                values[..k - first].copy_from_slice(&row[first..]);
                let mut words = [0u32; GROUP_PAIRS];
                convert_group(&values, &mut words);
                rest[r * tail..(r + 1) * tail].copy_from_slice(&words[..tail]);
            }
            for (g, out) in whole.chunks_exact_mut(GROUP_PAIRS * rows).enumerate() {
                let out: &mut [u32; GROUP_PAIRS] = (&mut out[r * GROUP_PAIRS..][..GROUP_PAIRS])
                    .try_into()
                    .expect("16 words");
                let first = g * GROUP_VALUES;
                match row.get(first..first + GROUP_VALUES) {
                    Some(values) => convert_group(values.try_into().expect("32 values"), out),
                    None => {
                        let mut values = [0.0f32; GROUP_VALUES];
                        let tail = &row[first.min(k)..];
                        values[..tail.len()].copy_from_slice(tail);
                        convert_group(&values, out);
                    }
                }
            }
        }
    }

    /// The product, blocked: chunks of [`MC`] rows of `A` are converted into `apack` (blocks
    /// of up to [`MR`] rows), then every panel of `W` streams past the chunk's blocks.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX512_BF16. (Sizes are checked by the caller; a wrong
    /// size would only panic on a slice index.)
    #[target_feature(enable = "avx512f,avx512vl,avx512bf16")]
    pub(super) unsafe fn gemm(product: Product<'_, '_>, apack: &mut [u32]) {
        let Product {
            m,
            a,
            lda,
            w,
            c,
            ldc,
            start,
        } = product;
        let pairs = w.pairs;
        let mut chunk_start = 0;
        while chunk_start < m {
            let chunk_rows = (m - chunk_start).min(MC);
            let mut offset = 0;
            let mut row = 0;
            while row < chunk_rows {
                let rows = (chunk_rows - row).min(MR);
                let first = chunk_start + row;
                pack_block(
                    &a[first * lda..],
                    lda,
                    w.k,
                    rows,
                    pairs,
                    &mut apack[offset..offset + pairs * rows],
                );
                offset += pairs * rows;
                row += rows;
            }
            for (p, panel) in w
                .data
                .chunks_exact(pairs * PANEL_COLUMNS)
                .enumerate()
                .take(w.n.div_ceil(PANEL_COLUMNS))
            {
                let col = p * PANEL_COLUMNS;
                let out = Out {
                    col,
                    width: (w.n - col).min(PANEL_COLUMNS),
                    ldc,
                };
                let mut offset = 0;
                let mut row = 0;
                while row < chunk_rows {
                    let rows = (chunk_rows - row).min(MR);
                    let first = chunk_start + row;
                    let block = &apack[offset..offset + pairs * rows];
                    let c_block = &mut c[first * ldc..];
                    let start = start.map(|s| RowStart {
                        values: &s.values[first * s.stride..],
                        stride: s.stride,
                    });
                    // depth splits: enough independent `vdpbf16ps` chains for few rows. One to
                    // three rows are bound by streaming `W` from L2 (1024 × 256: 3.9-4.7 µs);
                    // a split of 4 for three rows measured 7 % slower than 2
                    match rows {
                        1 => micro::<1, 8>(block, panel, c_block, out, start),
                        2 => micro::<2, 4>(block, panel, c_block, out, start),
                        3 => micro::<3, 2>(block, panel, c_block, out, start),
                        4 => micro::<4, 2>(block, panel, c_block, out, start),
                        5 => micro::<5, 2>(block, panel, c_block, out, start),
                        6 => micro::<6, 2>(block, panel, c_block, out, start),
                        7 => micro::<7, 1>(block, panel, c_block, out, start),
                        _ => micro::<8, 1>(block, panel, c_block, out, start),
                    }
                    offset += pairs * rows;
                    row += rows;
                }
            }
            chunk_start += chunk_rows;
        }
    }

    /// Where a micro-kernel's 32 columns go: `C` columns `col .. col + width` (`width` < 32 in
    /// a last, partial panel), row stride `ldc`.
    #[derive(Clone, Copy)]
    struct Out {
        col: usize,
        width: usize,
        ldc: usize,
    }

    /// `M` rows × 32 columns: `C[i][col..] (+)= Σ_q a[q][i] · panel[q][..]` over the whole
    /// depth, with `U × M × 2` accumulators in registers (`U` > 1 splits the depth into
    /// interleaved partial sums, so that few rows still give enough independent `vdpbf16ps`
    /// chains to hide their latency). `a`: the block as [`pack_block`] lays it out; `c` and
    /// `start` begin at the block's first row.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    fn micro<const M: usize, const U: usize>(
        a: &[u32],
        panel: &[u32],
        c: &mut [f32],
        out: Out,
        start: Option<RowStart<'_>>,
    ) {
        let zero = _mm512_setzero_ps();
        let mut acc = [[[zero; 2]; M]; U];
        let a_groups = a.chunks_exact(GROUP_PAIRS * M);
        let b_groups = panel.chunks_exact(GROUP_PAIRS * PANEL_COLUMNS);
        let (a_tail, b_tail) = (a_groups.remainder(), b_groups.remainder());
        for (a_group, b_group) in a_groups.zip(b_groups) {
            let (b_vectors, _) = b_group.as_chunks::<16>();
            for step in 0..GROUP_PAIRS / U {
                for (u, acc_u) in acc.iter_mut().enumerate() {
                    let q = step * U + u;
                    let b0 = load_pairs(&b_vectors[2 * q]);
                    let b1 = load_pairs(&b_vectors[2 * q + 1]);
                    for (r, acc_row) in acc_u.iter_mut().enumerate() {
                        let x = as_bh(_mm512_set1_epi32(a_group[r * GROUP_PAIRS + q] as i32));
                        acc_row[0] = _mm512_dpbf16_ps(acc_row[0], x, b0);
                        acc_row[1] = _mm512_dpbf16_ps(acc_row[1], x, b1);
                    }
                }
            }
        }
        // pairs after the last whole group, into the first partial sums
        let tail = a_tail.len() / M;
        let (b_vectors, _) = b_tail.as_chunks::<16>();
        for q in 0..tail {
            let b0 = load_pairs(&b_vectors[2 * q]);
            let b1 = load_pairs(&b_vectors[2 * q + 1]);
            for (r, acc_row) in acc[0].iter_mut().enumerate() {
                let x = as_bh(_mm512_set1_epi32(a_tail[r * tail + q] as i32));
                acc_row[0] = _mm512_dpbf16_ps(acc_row[0], x, b0);
                acc_row[1] = _mm512_dpbf16_ps(acc_row[1], x, b1);
            }
        }
        for i in 0..M {
            let mut sums = acc[0][i];
            for acc_u in acc.iter().skip(1) {
                sums[0] = _mm512_add_ps(sums[0], acc_u[i][0]);
                sums[1] = _mm512_add_ps(sums[1], acc_u[i][1]);
            }
            let c_row = &mut c[i * out.ldc + out.col..][..out.width];
            let base = start.map(|s| &s.values[i * s.stride + out.col..][..out.width]);
            if out.width == PANEL_COLUMNS {
                let (c_vectors, _) = c_row.as_chunks_mut::<16>();
                let base_vectors = base.map(|b| b.as_chunks::<16>().0);
                for (j, (c_vector, sum)) in c_vectors.iter_mut().zip(sums).enumerate() {
                    let from = match base_vectors {
                        Some(b) => load_f32(&b[j]),
                        None => load_f32(c_vector),
                    };
                    store_f32(c_vector, _mm512_add_ps(from, sum));
                }
            } else {
                let mut partial = [0.0f32; PANEL_COLUMNS];
                let (halves, _) = partial.as_chunks_mut::<16>();
                store_f32(&mut halves[0], sums[0]);
                store_f32(&mut halves[1], sums[1]);
                for (j, (o, s)) in c_row.iter_mut().zip(partial).enumerate() {
                    *o = base.map_or(*o, |b| b[j]) + s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
