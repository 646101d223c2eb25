//! G.711 μ-law and A-law codecs, bit-exact to ITU-T G.711 as implemented by the ITU-T
//! G.191 Software Tool Library (the standard's reference code).
//!
//! * Decoding maps each 8-bit code to a 16-bit linear sample through a 256-entry table
//!   computed at compile time.
//! * Encoding uses the standard segment search. A 16-bit input is first reduced to the
//!   codec's uniform input width (14 bits for μ-law, 13 bits for A-law) by **truncation**
//!   (arithmetic right shift), and negative inputs use the ones' complement magnitude, as
//!   in G.191. Consequently −1 ..= −4 encode to μ-law `0x7F` ("negative zero") and 0 ..= 3
//!   to `0xFF`.
//!
//! SoX differs from this in two details: it *rounds* to 14/13 bits and, for
//! μ-law, takes the two's-complement magnitude of negative inputs. Its codes therefore
//! differ from G.191's by one quantisation step on 510 (μ-law) and 1020 (A-law) of the
//! 65 536 inputs, all at cell boundaries; the tests check exactly that relationship.
//!
//! ```
//! use quivox::audio::g711::{decode_ulaw_into, ulaw_to_i16, i16_to_ulaw};
//! assert_eq!(ulaw_to_i16(0x00), -32124);
//! assert_eq!(i16_to_ulaw(32124), 0x80);
//! let mut out = [0.0f32; 2];
//! decode_ulaw_into(&[0xFF, 0x80], &mut out).unwrap();
//! assert_eq!(out, [0.0, 32124.0]);
//! ```

use super::error::AudioError;

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// μ-law (North America, Japan); WAV format tag 7.
    MuLaw,
    /// A-law (Europe, rest of world); WAV format tag 6.
    ALaw,
}

impl G711Law {
    /// The WAV format tag of this law (7 for μ-law, 6 for A-law).
    pub const fn wav_format_tag(self) -> u16 {
        match self {
            G711Law::MuLaw => 7,
            G711Law::ALaw => 6,
        }
    }

    /// Decode one code to a 16-bit linear sample.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            G711Law::MuLaw => ulaw_to_i16(code),
            G711Law::ALaw => alaw_to_i16(code),
        }
    }

    /// Encode one 16-bit linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711Law::MuLaw => i16_to_ulaw(sample),
            G711Law::ALaw => i16_to_alaw(sample),
        }
    }

    /// Decode codes into `out` (f32 in 16-bit scale); `out.len()` must equal `codes.len()`.
    pub fn decode_into(self, codes: &[u8], out: &mut [f32]) -> Result<(), AudioError> {
        match self {
            G711Law::MuLaw => decode_ulaw_into(codes, out),
            G711Law::ALaw => decode_alaw_into(codes, out),
        }
    }

    /// Encode 16-bit samples into `out`; `out.len()` must equal `samples.len()`.
    pub fn encode_into(self, samples: &[i16], out: &mut [u8]) -> Result<(), AudioError> {
        match self {
            G711Law::MuLaw => encode_ulaw_into(samples, out),
            G711Law::ALaw => encode_alaw_into(samples, out),
        }
    }
}

/// μ-law decoding as in G.711 Table 2: the code is stored inverted; the segment
/// (exponent) is bits 4..6 and the step (mantissa) bits 0..3 of the inverted code.
const fn ulaw_decode_formula(code: u8) -> i16 {
    let inverted = !code;
    let exponent = ((inverted >> 4) & 0x07) as i32;
    let mantissa = (inverted & 0x0F) as i32;
    // In 14-bit units: ((2 * mantissa + 33) << exponent) - 33; scaled by 4 to 16 bits.
    let magnitude = (((2 * mantissa + 33) << exponent) - 33) * 4;
    let signed = if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    };
    signed as i16
}

/// A-law decoding as in G.711 Table 1: even bits inverted (XOR 0x55); segment in bits
/// 4..6, step in bits 0..3; reconstruction at the middle of the quantisation cell.
const fn alaw_decode_formula(code: u8) -> i16 {
    let toggled = code ^ 0x55;
    let exponent = ((toggled >> 4) & 0x07) as i32;
    let mantissa = (toggled & 0x0F) as i32;
    // In 13-bit units: segment 0 is linear with step 2, others double the step each.
    let magnitude = if exponent == 0 {
        (2 * mantissa + 1) * 8
    } else {
        (2 * mantissa + 33) << (exponent + 2)
    };
    let signed = if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    };
    signed as i16
}

const fn build_table(law_is_ulaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0usize;
    while code < 256 {
        table[code] = if law_is_ulaw {
            ulaw_decode_formula(code as u8)
        } else {
            alaw_decode_formula(code as u8)
        };
        code += 1;
    }
    table
}

/// μ-law code → 16-bit linear sample, indexed by code.
pub static ULAW_DECODE_TABLE: [i16; 256] = build_table(true);
/// A-law code → 16-bit linear sample, indexed by code.
pub static ALAW_DECODE_TABLE: [i16; 256] = build_table(false);

/// Decode one μ-law code to a 16-bit linear sample (range −32124 ..= 32124).
#[inline]
pub fn ulaw_to_i16(code: u8) -> i16 {
    ULAW_DECODE_TABLE[usize::from(code)]
}

/// Decode one A-law code to a 16-bit linear sample (range −32256 ..= 32256).
#[inline]
pub fn alaw_to_i16(code: u8) -> i16 {
    ALAW_DECODE_TABLE[usize::from(code)]
}

/// Encode one 16-bit linear sample to μ-law (G.191 reference behaviour, see module docs).
#[inline]
pub fn i16_to_ulaw(sample: i16) -> u8 {
    // 14-bit magnitude; ones' complement for negatives keeps the cells symmetric.
    let magnitude = if sample < 0 { !sample } else { sample } >> 2;
    // Bias by 33 so that segment boundaries fall on powers of two; clip to 13 bits.
    let biased = (magnitude as u16 + 33).min(0x1FFF);
    // biased >= 33, so its highest set bit is 5..=12; segment = that bit - 5.
    let segment = (15 - biased.leading_zeros() as u16) - 5;
    let step = (biased >> (segment + 1)) & 0x0F;
    let code = 0x7F ^ ((segment << 4) | step) as u8;
    if sample >= 0 {
        code | 0x80
    } else {
        code
    }
}

/// Encode one 16-bit linear sample to A-law (G.191 reference behaviour, see module docs).
#[inline]
pub fn i16_to_alaw(sample: i16) -> u8 {
    // 12-bit magnitude (13-bit signed input); ones' complement for negatives.
    let magnitude = (if sample < 0 { !sample } else { sample } >> 4) as u16;
    let code = if magnitude < 32 {
        // Segments 0 and 1 share the step size: the magnitude is the code directly.
        magnitude
    } else {
        // Highest set bit is 5..=11 → segment 2..=7.
        let segment = (15 - magnitude.leading_zeros() as u16) - 3;
        let step = (magnitude >> (segment - 1)) & 0x0F;
        (segment << 4) | step
    } as u8;
    let signed = if sample >= 0 { code | 0x80 } else { code };
    signed ^ 0x55
}

fn check_len(expected: usize, actual: usize) -> Result<(), AudioError> {
    if expected == actual {
        Ok(())
    } else {
        Err(AudioError::BufferLength { expected, actual })
    }
}

/// Round an f32 in 16-bit scale to i16, saturating; NaN/inf is an error.
pub(crate) fn f32_to_i16(value: f32, index: usize) -> Result<i16, AudioError> {
    if !value.is_finite() {
        return Err(AudioError::NonFiniteSample { index, value });
    }
    // `as` saturates after rounding, so out-of-range values clip to the i16 range.
    Ok(value.round() as i16)
}

macro_rules! slice_codecs {
    ($law:literal, $to_i16:ident, $from_i16:ident,
     $dec_f32:ident, $dec_i16:ident, $enc_i16:ident, $enc_f32:ident) => {
        #[doc = concat!("Decode ", $law, " codes into `out` (f32 in 16-bit scale). `out.len()` must equal `codes.len()`.")]
        pub fn $dec_f32(codes: &[u8], out: &mut [f32]) -> Result<(), AudioError> {
            check_len(codes.len(), out.len())?;
            for (dst, &code) in out.iter_mut().zip(codes) {
                *dst = f32::from($to_i16(code));
            }
            Ok(())
        }

        #[doc = concat!("Decode ", $law, " codes into `out` (16-bit linear). `out.len()` must equal `codes.len()`.")]
        pub fn $dec_i16(codes: &[u8], out: &mut [i16]) -> Result<(), AudioError> {
            check_len(codes.len(), out.len())?;
            for (dst, &code) in out.iter_mut().zip(codes) {
                *dst = $to_i16(code);
            }
            Ok(())
        }

        #[doc = concat!("Encode 16-bit linear samples to ", $law, " codes in `out`. `out.len()` must equal `samples.len()`.")]
        pub fn $enc_i16(samples: &[i16], out: &mut [u8]) -> Result<(), AudioError> {
            check_len(samples.len(), out.len())?;
            for (dst, &sample) in out.iter_mut().zip(samples) {
                *dst = $from_i16(sample);
            }
            Ok(())
        }

        #[doc = concat!("Encode f32 samples in 16-bit scale to ", $law, " codes in `out` (rounded to the nearest integer, clipped to the i16 range). NaN/inf is an error; `out.len()` must equal `samples.len()`.")]
        pub fn $enc_f32(samples: &[f32], out: &mut [u8]) -> Result<(), AudioError> {
            check_len(samples.len(), out.len())?;
            for (index, (dst, &sample)) in out.iter_mut().zip(samples).enumerate() {
                *dst = $from_i16(f32_to_i16(sample, index)?);
            }
            Ok(())
        }
    };
}

slice_codecs!(
    "μ-law",
    ulaw_to_i16,
    i16_to_ulaw,
    decode_ulaw_into,
    decode_ulaw_i16_into,
    encode_ulaw_into,
    encode_ulaw_f32_into
);
slice_codecs!(
    "A-law",
    alaw_to_i16,
    i16_to_alaw,
    decode_alaw_into,
    decode_alaw_i16_into,
    encode_alaw_into,
    encode_alaw_f32_into
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected decoder outputs written from G.711's description of the code words, not
    /// from the decoder: μ-law segment s, step q → ±4·((2q+33)·2^s − 33); A-law segment 0
    /// → ±8·(2q+1), segment s ≥ 1 → ±(2q+33)·2^(s+2). Code layout: sign (1 = positive),
    /// 3 segment bits, 4 step bits; μ-law transmits all bits inverted, A-law the even
    /// bits inverted (XOR 0x55).
    #[test]
    fn decode_tables_match_g711_code_layout() {
        for sign in 0..2u8 {
            for segment in 0..8u8 {
                for step in 0..16u8 {
                    let raw = (sign << 7) | (segment << 4) | step;
                    let (q, s) = (i32::from(step), i32::from(segment));

                    let ulaw_code = !raw ^ 0x80; // all bits inverted except the sign bit
                    let ulaw_mag = 4 * ((2 * q + 33) * (1 << s) - 33);
                    let ulaw_expected = if sign == 1 { ulaw_mag } else { -ulaw_mag };
                    assert_eq!(
                        i32::from(ulaw_to_i16(ulaw_code)),
                        ulaw_expected,
                        "ulaw {ulaw_code:#04x}"
                    );

                    let alaw_code = raw ^ 0x55;
                    let alaw_mag = if s == 0 {
                        8 * (2 * q + 1)
                    } else {
                        (2 * q + 33) << (s + 2)
                    };
                    let alaw_expected = if sign == 1 { alaw_mag } else { -alaw_mag };
                    assert_eq!(
                        i32::from(alaw_to_i16(alaw_code)),
                        alaw_expected,
                        "alaw {alaw_code:#04x}"
                    );
                }
            }
        }
    }

    #[test]
    fn decode_known_values() {
        assert_eq!(ulaw_to_i16(0x00), -32124);
        assert_eq!(ulaw_to_i16(0x80), 32124);
        assert_eq!(ulaw_to_i16(0xFF), 0);
        assert_eq!(ulaw_to_i16(0x7F), 0);
        assert_eq!(ulaw_to_i16(0xFE), 8);
        assert_eq!(ulaw_to_i16(0x7E), -8);
        assert_eq!(alaw_to_i16(0xD5), 8);
        assert_eq!(alaw_to_i16(0x55), -8);
        assert_eq!(alaw_to_i16(0x2A), -32256);
        assert_eq!(alaw_to_i16(0xAA), 32256);
    }

    /// Every code decodes and re-encodes to itself, except μ-law 0x7F (negative zero),
    /// whose decoded value 0 is non-negative and so encodes to 0xFF.
    #[test]
    fn encode_decode_round_trip() {
        for code in 0..=255u8 {
            let ulaw_back = i16_to_ulaw(ulaw_to_i16(code));
            if code == 0x7F {
                assert_eq!(ulaw_back, 0xFF);
            } else {
                assert_eq!(ulaw_back, code, "ulaw {code:#04x}");
            }
            assert_eq!(i16_to_alaw(alaw_to_i16(code)), code, "alaw {code:#04x}");
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("audio-fixtures/g711")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(bytes.len(), 65536, "{}", path.display());
        bytes
    }

    /// SoX's rounding from 16 to `bits` bits, with clipping (SOX_SAMPLE_TO_SIGNED).
    fn sox_round(sample: i16, bits: u32) -> i32 {
        let shift = 16 - bits;
        let rounded = (i32::from(sample) + (1 << (shift - 1))) >> shift;
        rounded.clamp(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    }

    /// Compares our encoder on all 65 536 inputs with `sox -D` (fixtures from
    /// scripts/make-g711-fixtures.sh).
    ///
    /// SoX is not bit-identical to the ITU reference: it rounds 16-bit input to the
    /// nearest 14-bit (μ-law) / 13-bit (A-law) value, where ITU-T G.191 (whose `g711.c` is
    /// the reference implementation of G.711, and which G.711 Appendix/G.191 test vectors
    /// use) truncates by an arithmetic shift and encodes negative inputs with the ones'
    /// complement magnitude. SoX's μ-law also uses the two's-complement magnitude for
    /// negatives (Sun's g711.c), so e.g. −1 and −2 become 0xFF (positive zero) in SoX but
    /// 0x7F in G.191. We follow G.191. The test checks (1) that after applying SoX's
    /// input rounding our encoder reproduces SoX exactly, i.e. the segment/step logic is
    /// identical, and (2) that on raw input the two differ only at cell boundaries, by
    /// one quantisation step, on a known number of inputs.
    #[test]
    fn encoder_matches_sox_modulo_input_rounding() {
        let sox_ulaw = fixture("all_i16.ulaw");
        let sox_alaw = fixture("all_i16.alaw");
        let mut ulaw_raw_diffs = 0;
        let mut alaw_raw_diffs = 0;
        for (index, value) in (i16::MIN..=i16::MAX).enumerate() {
            // μ-law: SoX's 14-bit value v corresponds to the 16-bit G.191 input 4v for
            // v >= 0 and 4v - 1 for v < 0 (ones' complement magnitude −v).
            let v14 = sox_round(value, 14);
            let g191_input = if v14 < 0 {
                (4 * v14 - 1).max(-32768)
            } else {
                4 * v14
            };
            assert_eq!(
                i16_to_ulaw(g191_input as i16),
                sox_ulaw[index],
                "ulaw input {value}"
            );
            // A-law: SoX rounds to 13 bits, otherwise identical to G.191.
            let v13 = sox_round(value, 13);
            assert_eq!(
                i16_to_alaw((v13 * 8) as i16),
                sox_alaw[index],
                "alaw input {value}"
            );

            let ours_u = i16_to_ulaw(value);
            if ours_u != sox_ulaw[index] {
                ulaw_raw_diffs += 1;
                let step = (i32::from(ulaw_to_i16(ours_u))
                    - i32::from(ulaw_to_i16(sox_ulaw[index])))
                .abs();
                // Adjacent codes: the decoded values differ by one step of that segment.
                assert!(
                    step <= 1024,
                    "ulaw {value}: ours {ours_u:#04x} sox {:#04x}",
                    sox_ulaw[index]
                );
            }
            let ours_a = i16_to_alaw(value);
            if ours_a != sox_alaw[index] {
                alaw_raw_diffs += 1;
                let delta = (i32::from(alaw_to_i16(ours_a))
                    - i32::from(alaw_to_i16(sox_alaw[index])))
                .abs();
                assert!(
                    delta <= 1024,
                    "alaw {value}: ours {ours_a:#04x} sox {:#04x}",
                    sox_alaw[index]
                );
            }
        }
        assert_eq!(ulaw_raw_diffs, 510);
        // Sign of zero: G.191 sends −1 ..= −4 as negative zero, SoX rounds −1, −2 to +0.
        assert_eq!((i16_to_ulaw(-1), sox_ulaw[32767]), (0x7F, 0xFF));
        assert_eq!(alaw_raw_diffs, 1020);
    }

    /// Brute-force oracle from G.711's definition of the quantiser: each reconstruction
    /// value is the midpoint of its decision interval, whose width is the step size of its
    /// segment (μ-law: 2^(s+1) in 14-bit units; A-law: 2 in segments 0 and 1, 2^s above,
    /// in 13-bit units); inputs beyond the last interval take the largest code. G.191
    /// first truncates the input to 14/13 bits, using the ones' complement magnitude for
    /// negative inputs. We search all codes for the interval containing the input.
    #[test]
    fn encoder_picks_the_interval_containing_the_input() {
        // (lower edge, upper edge, code) in 16-bit scale, positive codes only.
        let cells = |law: G711Law| -> Vec<(i32, i32, u8)> {
            (0x80..=0xFFu8)
                .map(|code| {
                    let reconstruction = i32::from(law.decode(code));
                    let width = match law {
                        G711Law::MuLaw => 4 << (((!code >> 4) & 7) + 1),
                        G711Law::ALaw => 8 << ((((code ^ 0x55) >> 4) & 7).max(1)),
                    };
                    (reconstruction - width / 2, reconstruction + width / 2, code)
                })
                .collect()
        };
        for (law, unit) in [(G711Law::MuLaw, 4), (G711Law::ALaw, 8)] {
            let table = cells(law);
            let top_code = table
                .iter()
                .max_by_key(|cell| cell.1)
                .map(|cell| cell.2)
                .unwrap();
            for value in i16::MIN..=i16::MAX {
                let positive = value >= 0;
                let magnitude = i32::from(if positive { value } else { !value });
                let truncated = (magnitude / unit) * unit;
                let containing: Vec<u8> = table
                    .iter()
                    .filter(|(lower, upper, _)| *lower <= truncated && truncated < *upper)
                    .map(|cell| cell.2)
                    .collect();
                assert!(
                    containing.len() <= 1,
                    "{law:?} overlapping cells at {value}"
                );
                let chosen = containing.first().copied().unwrap_or(top_code);
                let expected = if positive { chosen } else { chosen & 0x7F };
                assert_eq!(law.encode(value), expected, "{law:?} input {value}");
            }
        }
    }

    #[test]
    fn slice_versions_check_lengths_and_agree() {
        let samples: Vec<i16> = (-300..300).map(|i| (i * 109) as i16).collect();
        let mut codes = vec![0u8; samples.len()];
        encode_ulaw_into(&samples, &mut codes).unwrap();
        let mut back = vec![0i16; samples.len()];
        decode_ulaw_i16_into(&codes, &mut back).unwrap();
        let mut back_f = vec![0f32; samples.len()];
        decode_ulaw_into(&codes, &mut back_f).unwrap();
        for i in 0..samples.len() {
            assert_eq!(codes[i], i16_to_ulaw(samples[i]));
            assert_eq!(back[i], ulaw_to_i16(codes[i]));
            assert_eq!(back_f[i], f32::from(back[i]));
        }
        let floats: Vec<f32> = samples.iter().map(|&s| f32::from(s) + 0.3).collect();
        let mut codes_f = vec![0u8; floats.len()];
        encode_alaw_f32_into(&floats, &mut codes_f).unwrap();
        encode_alaw_into(&samples, &mut codes).unwrap();
        assert_eq!(codes, codes_f);

        assert!(matches!(
            decode_alaw_into(&[1, 2, 3], &mut [0.0; 2]),
            Err(AudioError::BufferLength {
                expected: 3,
                actual: 2
            })
        ));
        assert!(matches!(
            encode_ulaw_f32_into(&[0.0, f32::NAN], &mut [0; 2]),
            Err(AudioError::NonFiniteSample { index: 1, .. })
        ));
        // The law-generic versions dispatch to the same functions.
        let mut by_law = vec![0u8; samples.len()];
        G711Law::ALaw.encode_into(&samples, &mut by_law).unwrap();
        assert_eq!(by_law, codes);
        let mut by_law_f = vec![0f32; samples.len()];
        G711Law::MuLaw.decode_into(&codes, &mut by_law_f).unwrap();
        let mut direct_f = vec![0f32; samples.len()];
        decode_ulaw_into(&codes, &mut direct_f).unwrap();
        assert_eq!(by_law_f, direct_f);
        // Out-of-range floats clip rather than wrap.
        let mut clipped = [0u8; 2];
        encode_ulaw_f32_into(&[1e9, -1e9], &mut clipped).unwrap();
        assert_eq!(clipped, [i16_to_ulaw(i16::MAX), i16_to_ulaw(i16::MIN)]);
    }
}
