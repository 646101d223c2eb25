use super::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Hand cases: exact values, ties to even on both sides, overflow, zeros, infinities, NaN
/// (quiet, signalling, negative) and subnormals.
#[test]
fn to_bf16_rne_hand_cases() {
    let cases: [(u32, u16); 18] = [
        (0x3F80_0000, 0x3F80), // 1.0 exact
        (0x3F80_7FFF, 0x3F80), // just below half an ulp: down
        (0x3F80_8000, 0x3F80), // tie, kept part even: down
        (0x3F81_8000, 0x3F82), // tie, kept part odd: up to even
        (0x3F80_8001, 0x3F81), // just above half: up
        (0xBF81_8000, 0xBF82), // negative tie: magnitude to even
        (0x7F7F_FFFF, 0x7F80), // f32::MAX: above the largest bf16 + half ulp, +inf
        (0x7F7F_7FFF, 0x7F7F), // stays the largest finite bf16
        (0xFF7F_FFFF, 0xFF80), // -f32::MAX → -inf
        (0x0000_0000, 0x0000), // +0
        (0x8000_0000, 0x8000), // -0
        (0x7F80_0000, 0x7F80), // +inf
        (0xFF80_0000, 0xFF80), // -inf
        (0x0000_0001, 0x0000), // smallest subnormal: to zero
        (0x0000_8000, 0x0000), // subnormal tie, even: down
        (0x0001_8000, 0x0002), // subnormal tie, odd: up
        (0x007F_FFFF, 0x0080), // largest subnormal rounds up to the smallest normal
        (0x0040_1234, 0x0040), // subnormal kept as subnormal
    ];
    for (bits, expected) in cases {
        let got = to_bf16_rne(f32::from_bits(bits));
        assert_eq!(got, expected, "{bits:#010x}: {got:#06x} vs {expected:#06x}");
    }
    for nan in [0x7FC0_0000u32, 0x7F80_0001, 0xFFC1_2345, 0x7FFF_FFFF] {
        let got = bf16_to_f32(to_bf16_rne(f32::from_bits(nan)));
        assert!(got.is_nan(), "{nan:#010x} → {:#010x}", got.to_bits());
        assert_eq!(
            got.is_sign_negative(),
            f32::from_bits(nan).is_sign_negative()
        );
    }
}

/// Against the definition in f64 on random values of every magnitude: the result is one of
/// the two neighbouring bf16 values, the nearer one, and on a tie the even one.
#[test]
fn to_bf16_rne_is_nearest_even() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..200_000 {
        let x = f32::from_bits(rng.random::<u32>() & 0x7F7F_FFFF); // finite, positive
        let down = x.to_bits() >> 16;
        let low = f64::from(bf16_to_f32(down as u16));
        // above the largest finite bf16, IEEE rounding treats 2^128 as the next value (→ inf)
        let high = match down + 1 {
            0x7F80 => 2f64.powi(128),
            up => f64::from(bf16_to_f32(up as u16)),
        };
        let (d_low, d_high) = (f64::from(x) - low, high - f64::from(x));
        let expected = if d_low < d_high || (d_low == d_high && down.is_multiple_of(2)) {
            down
        } else {
            down + 1
        };
        assert_eq!(u32::from(to_bf16_rne(x)), expected, "{:#010x}", x.to_bits());
        assert_eq!(to_bf16_rne(-x), to_bf16_rne(x) | 0x8000);
    }
}

/// Exact value of the bf16 rounding of `x`, in f64.
fn rounded(x: f32) -> f64 {
    f64::from(bf16_to_f32(to_bf16_rne(x)))
}

/// Against a naive f64 product of the bf16-rounded inputs, for row counts around every block
/// size and across the 128-row chunk of `A`, even and odd depths (one partial group, whole
/// groups, a padded pair), a partial last panel, strided `A`, `C` and start rows, in the three
/// modes (accumulate into `C`, bias row, start matrix). The bound is the worst case of f32
/// summation over `k` + a few terms (each addition rounds by at most half an ulp of the
/// running sum, bounded by the sum of magnitudes).
#[test]
fn product_matches_naive_f64_of_rounded_inputs() {
    let Some(kernel) = Bf16Kernel::detect() else {
        eprintln!("no AVX512_BF16 on this CPU: product test skipped");
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut scratch = Bf16Scratch::default();
    let rows: Vec<usize> = (1..=9).chain([17, 130]).collect();
    for k in [40, 256, 255, 1, 33] {
        for n in [64, 48] {
            let ldw = k + 1;
            let w: Vec<f32> = (0..n * ldw).map(|_| rng.random_range(-1.0..1.0)).collect();
            let panels = Bf16Panels::pack(&w, n, k, ldw).unwrap();
            assert_eq!((panels.columns(), panels.depth()), (n, k));
            for &m in &rows {
                let (lda, ldc, start_stride) = (k + 3, n + 5, n + 2);
                let a: Vec<f32> = (0..m * lda).map(|_| rng.random_range(-1.0..1.0)).collect();
                let c0: Vec<f32> = (0..m * ldc).map(|_| rng.random_range(-1.0..1.0)).collect();
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
                    let mut c = c0.clone();
                    kernel
                        .gemm(m, &a, lda, &panels, &mut c, ldc, start, &mut scratch)
                        .unwrap();
                    for i in 0..m {
                        for j in 0..ldc {
                            let idx = i * ldc + j;
                            if j >= n {
                                assert_eq!(c[idx], c0[idx], "padding column changed");
                                continue;
                            }
                            let from = start.map_or(c0[idx], |s| s.values[i * s.stride + j]);
                            let terms = (0..k)
                                .map(|kk| rounded(a[i * lda + kk]) * rounded(w[j * ldw + kk]));
                            let (sum, magnitude) =
                                terms.fold((0.0f64, 0.0f64), |(s, m), t| (s + t, m + t.abs()));
                            let expected = f64::from(from) + sum;
                            let bound = (k as f64 + 20.0)
                                * f64::from(f32::EPSILON)
                                * (magnitude + f64::from(from.abs()));
                            let got = f64::from(c[idx]);
                            assert!(
                                (got - expected).abs() <= bound,
                                "{mode} m {m} n {n} k {k} at ({i}, {j}): {got} vs {expected} \
                                 (bound {bound:e})"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The rounding does happen: the product of values that bf16 cannot hold equals that of their
/// roundings exactly (one term, no summation error), not the f32 product.
#[test]
fn product_uses_rounded_operands() {
    let Some(kernel) = Bf16Kernel::detect() else {
        return;
    };
    let x = 1.0 + 3.0 / 512.0; // 3/4 of the way from bf16 1 to 1 + 1/128: rounds up
    let w = vec![x; 32];
    let panels = Bf16Panels::pack(&w, 32, 1, 1).unwrap();
    assert_eq!(f64::from(panels.value(5, 0)), rounded(x));
    let mut c = vec![0.0f32; 32];
    kernel
        .gemm(
            1,
            &[x],
            1,
            &panels,
            &mut c,
            32,
            None,
            &mut Bf16Scratch::new(1),
        )
        .unwrap();
    let expected = rounded(x) * rounded(x);
    assert!(c.iter().all(|&v| f64::from(v) == expected), "{c:?}");
    assert_ne!(f64::from(x) * f64::from(x), expected);
}

/// Short buffers and strides are refused with the sizes, before anything is written; empty
/// products do nothing.
#[test]
fn bad_sizes_are_refused() {
    assert!(matches!(
        Bf16Panels::pack(&[0.0; 10], 4, 3, 3),
        Err(Bf16Error::Shape {
            expected: 12,
            found: 10,
            ..
        })
    ));
    assert!(Bf16Panels::pack(&[0.0; 12], 4, 3, 2).is_err());
    assert!(Bf16Panels::pack(&[], 0, 3, 3).is_ok());
    let Some(kernel) = Bf16Kernel::detect() else {
        return;
    };
    let panels = Bf16Panels::pack(&[1.0; 40 * 8], 40, 8, 8).unwrap();
    let mut scratch = Bf16Scratch::default();
    let a = vec![1.0f32; 3 * 8];
    let mut c = vec![0.0f32; 3 * 40];
    let mut run = |m, a: &[f32], lda, c: &mut [f32], ldc, start| {
        kernel.gemm(m, a, lda, &panels, c, ldc, start, &mut scratch)
    };
    assert!(run(4, &a, 8, &mut c, 40, None).is_err()); // A too short
    assert!(run(3, &a, 7, &mut c, 40, None).is_err()); // A stride below k
    assert!(run(3, &a, 8, &mut c, 39, None).is_err()); // C stride below n
    assert!(run(3, &a, 8, &mut c[..119], 40, None).is_err()); // C too short
    let short_bias = RowStart::bias(&[0.0; 39]);
    assert!(run(3, &a, 8, &mut c, 40, Some(short_bias)).is_err());
    let huge = RowStart {
        values: &[0.0; 40],
        stride: usize::MAX,
    };
    assert!(run(3, &a, 8, &mut c, 40, Some(huge)).is_err()); // overflowing shape
    assert!(c.iter().all(|&v| v == 0.0), "nothing written on error");
    assert!(run(0, &[], 0, &mut [], 0, None).is_ok());
    // depth 0: an empty sum, C becomes the start rows or stays
    let empty = Bf16Panels::pack(&[], 40, 0, 0).unwrap();
    let mut c0 = vec![2.0f32; 2 * 40];
    let mut scratch = Bf16Scratch::default();
    let bias = [1.0f32; 40];
    kernel
        .gemm(2, &[], 0, &empty, &mut c0, 40, None, &mut scratch)
        .unwrap();
    assert!(c0.iter().all(|&v| v == 2.0));
    kernel
        .gemm(
            2,
            &[],
            0,
            &empty,
            &mut c0,
            40,
            Some(RowStart::bias(&bias)),
            &mut scratch,
        )
        .unwrap();
    assert!(c0.iter().all(|&v| v == 1.0));
    run(3, &a, 8, &mut c, 40, None).unwrap();
    assert!(c.iter().all(|&v| v == 8.0));
}

#[test]
fn availability_matches_detection() {
    assert_eq!(available(), Bf16Kernel::detect().is_some());
    #[cfg(not(target_arch = "x86_64"))]
    assert!(!available());
}
