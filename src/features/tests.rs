//! Front-end tests against independent oracles: kaldi-native-fbank golden files
//! (`audio-fixtures/golden`, made by `scripts/make-feature-goldens.sh`), a naive f64 DFT MFCC,
//! naive delta / CMN / VAD loops, and batch-vs-streaming identity.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

const FIXTURES: [&str; 5] = [
    "speech_sc0cb74144_t00",
    "speech_fsddgeorge_t00",
    "synth_silence",
    "synth_sweep",
    "synth_noise",
];

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures")
}

fn read_wav(name: &str) -> Vec<f32> {
    let mut reader = hound::WavReader::open(fixture_dir().join(format!("{name}.wav"))).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16)
    );
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()))
        .collect()
}

/// Minimal reader for the little-endian float32 C-order 2-D .npy files of the goldens.
fn read_npy(name: &str) -> FeatureMatrix {
    let bytes = std::fs::read(fixture_dir().join("golden").join(name)).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let shape: Vec<usize> = shape[..shape.find(')').unwrap()]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(data.len(), shape[0] * shape[1]);
    FeatureMatrix::from_vec(shape[1], data).unwrap()
}

/// (max |a − b|, max |a − b| / max(1, |b|)) over every coefficient; panics on shape mismatch.
fn max_errors(ours: &FeatureMatrix, reference: &FeatureMatrix) -> (f32, f32) {
    assert_eq!(ours.dim(), reference.dim());
    assert_eq!(ours.num_frames(), reference.num_frames());
    let mut abs = 0.0f32;
    let mut rel = 0.0f32;
    for (&a, &b) in ours.as_slice().iter().zip(reference.as_slice()) {
        let e = (a - b).abs();
        abs = abs.max(e);
        rel = rel.max(e / b.abs().max(1.0));
    }
    (abs, rel)
}

#[test]
fn mfcc_matches_kaldi_reference_on_every_fixture() {
    let mut overall = (0.0f32, 0.0f32);
    for use_energy in [false, true] {
        let opts = MfccOptions {
            use_energy,
            ..MfccOptions::default()
        };
        let mut extractor = MfccExtractor::new(opts).unwrap();
        for name in FIXTURES {
            let ours = extractor.compute(&read_wav(name)).unwrap();
            let suffix = if use_energy { "mfcc_energy" } else { "mfcc" };
            let reference = read_npy(&format!("{name}.{suffix}.npy"));
            let (abs, rel) = max_errors(&ours, &reference);
            eprintln!("{name} {suffix}: max abs {abs:.3e}, max scaled {rel:.3e}");
            assert!(rel <= 2e-3, "{name} {suffix}: scaled error {rel}");
            overall = (overall.0.max(abs), overall.1.max(rel));
        }
    }
    eprintln!(
        "MFCC vs kaldi-native-fbank: max abs {:.3e}, max scaled {:.3e}",
        overall.0, overall.1
    );
}

#[test]
fn the_front_ends_energy_floor_matches_kaldi_reference() {
    // Reference: kaldi-native-fbank with --use-energy --energy-floor=200 (the speaker-ID front
    // end's floor). synth_silence has 0.5 s of digital zero (ln FLT_EPSILON = −15.9 without the
    // floor) and 1-LSB noise around the floor; the speech excerpt never reaches it.
    let opts = MfccOptions {
        use_energy: true,
        ..FrontEndOptions::default().mfcc
    };
    assert_eq!(opts.energy_floor, DIGITAL_SILENCE_ENERGY_FLOOR);
    let mut extractor = MfccExtractor::new(opts).unwrap();
    for name in ["synth_silence", "speech_sc0cb74144_t00"] {
        let ours = extractor.compute(&read_wav(name)).unwrap();
        let reference = read_npy(&format!("{name}.mfcc_energy_floor200.npy"));
        let (abs, rel) = max_errors(&ours, &reference);
        eprintln!("{name} energy floor 200: max abs {abs:.3e}, max scaled {rel:.3e}");
        assert!(rel <= 2e-3, "{name}: scaled error {rel}");
    }
    let floored = read_npy("synth_silence.mfcc_energy_floor200.npy");
    assert!((floored.row(0)[0] - 200f32.ln()).abs() < 1e-5);
}

#[test]
fn digital_silence_does_not_open_the_vad_to_line_noise() {
    // A call through a quiet handset: speech, then a pause the network delivers as digital
    // silence (G.711 zeros), then 1 s of faint line noise (3 LSB rms, ln energy ≈ 7.5). Oracle:
    // the same call without the digital-silence stretch, where the mean-relative VAD threshold
    // keeps the faint noise out. Without the floor, the zeros' ln FLT_EPSILON frames drag the
    // threshold down to ≈ 5.5 and the noise passes as speech.
    let speech = read_wav("speech_sc0cb74144_t00");
    let mut rng = ChaCha8Rng::seed_from_u64(20261124);
    let noise: Vec<f32> =
        crate::augment::coloured_noise(crate::augment::NoiseColour::White, 8000, &mut rng)
            .unwrap()
            .iter()
            .map(|x| (3.0 * x).round())
            .collect();
    let without_zeros: Vec<f32> = speech.iter().chain(&noise).copied().collect();
    let with_zeros: Vec<f32> = speech
        .iter()
        .chain(&vec![0.0; 32_000])
        .chain(&noise)
        .copied()
        .collect();
    // Voiced frames among the last 90 frames (the noise, clear of the transition).
    let noise_voiced = |opts: FrontEndOptions, samples: &[f32]| {
        let out = FrontEnd::new(opts).unwrap().compute(samples).unwrap();
        out.voiced.iter().rev().take(90).filter(|&&v| v).count()
    };
    let default = FrontEndOptions::default();
    assert_eq!(noise_voiced(default.clone(), &without_zeros), 0);
    assert_eq!(noise_voiced(default.clone(), &with_zeros), 0);
    let no_floor = FrontEndOptions {
        mfcc: MfccOptions {
            energy_floor: 0.0,
            ..default.mfcc
        },
        ..default
    };
    assert_eq!(noise_voiced(no_floor.clone(), &without_zeros), 0);
    let polluted = noise_voiced(no_floor, &with_zeros);
    eprintln!("noise frames voiced without the floor: {polluted} of 90");
    assert!(polluted > 45, "the failure the floor prevents");
}

#[test]
fn deltas_and_cmn_match_kaldi_reference() {
    let mut extractor = MfccExtractor::new(MfccOptions::default()).unwrap();
    for name in FIXTURES {
        let mfcc = extractor.compute(&read_wav(name)).unwrap();
        let mut feats = compute_deltas(&mfcc, &DeltaOptions::default()).unwrap();
        CmvnStats::from_features(&feats)
            .apply(&mut feats, false)
            .unwrap();
        let reference = read_npy(&format!("{name}.mfcc_deltas_cmn.npy"));
        let (abs, rel) = max_errors(&feats, &reference);
        eprintln!("{name} deltas+cmn: max abs {abs:.3e}, max scaled {rel:.3e}");
        assert!(rel <= 2e-3, "{name}: scaled error {rel}");
    }
}

/// Naive f64 MFCC of one 200-sample frame: O(n²) DFT, dense mel matrix, explicit DCT and lifter.
fn naive_frame_mfcc(frame: &[f32], opts: &MfccOptions) -> Vec<f64> {
    use std::f64::consts::PI;
    let n = frame.len();
    let x: Vec<f64> = frame.iter().map(|&s| f64::from(s)).collect();
    let mean = x.iter().sum::<f64>() / n as f64;
    let centred: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let mut windowed = vec![0.0f64; 256];
    for i in 0..n {
        let prev = if i == 0 { centred[0] } else { centred[i - 1] };
        let pre = centred[i] - 0.97 * prev;
        let hann = 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1) as f64).cos();
        windowed[i] = pre * hann.powf(0.85);
    }
    let power: Vec<f64> = (0..=128)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (t, &v) in windowed.iter().enumerate() {
                let ang = -2.0 * PI * (k * t) as f64 / 256.0;
                re += v * ang.cos();
                im += v * ang.sin();
            }
            re * re + im * im
        })
        .collect();
    let mel = |f: f64| 1127.0 * (1.0 + f / 700.0).ln();
    let (lo, hi) = (mel(20.0), mel(3700.0));
    let nb = opts.num_mel_bins;
    let delta = (hi - lo) / (nb + 1) as f64;
    let log_mel: Vec<f64> = (0..nb)
        .map(|b| {
            let (l, c, r) = (
                lo + b as f64 * delta,
                lo + (b + 1) as f64 * delta,
                lo + (b + 2) as f64 * delta,
            );
            let mut e = 0.0;
            for (k, &p) in power.iter().enumerate().take(128) {
                let m = mel(k as f64 * 31.25);
                if m > l && m < r {
                    e += p * if m <= c {
                        (m - l) / (c - l)
                    } else {
                        (r - m) / (r - c)
                    };
                }
            }
            e.max(f64::from(f32::EPSILON)).ln()
        })
        .collect();
    (0..opts.num_ceps)
        .map(|k| {
            let norm = if k == 0 {
                (1.0 / nb as f64).sqrt()
            } else {
                (2.0 / nb as f64).sqrt()
            };
            let c: f64 = log_mel
                .iter()
                .enumerate()
                .map(|(j, &v)| v * norm * (PI / nb as f64 * (j as f64 + 0.5) * k as f64).cos())
                .sum();
            c * (1.0 + 11.0 * (PI * k as f64 / 22.0).sin())
        })
        .collect()
}

#[test]
fn fft_path_matches_naive_dft_mfcc() {
    let opts = MfccOptions::default();
    let mut extractor = MfccExtractor::new(opts.clone()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let speech = read_wav("speech_sc0cb74144_t00");
    for trial in 0..6 {
        let frame: Vec<f32> = if trial < 3 {
            let start = rng.random_range(0..speech.len() - 200);
            speech[start..start + 200].to_vec()
        } else {
            (0..200)
                .map(|_| rng.random_range(-8000.0..8000.0f32).round())
                .collect()
        };
        let ours = extractor.compute(&frame).unwrap();
        assert_eq!(ours.num_frames(), 1);
        let naive = naive_frame_mfcc(&frame, &opts);
        for (k, (&a, &b)) in ours.row(0).iter().zip(&naive).enumerate() {
            assert!(
                (f64::from(a) - b).abs() <= 1e-3 * b.abs().max(1.0),
                "trial {trial} c{k}: fft {a} vs naive {b}"
            );
        }
    }
}

fn random_chunks(len: usize, rng: &mut ChaCha8Rng) -> Vec<std::ops::Range<usize>> {
    random_chunks_of(len, 4000, rng)
}

/// Consecutive ranges covering `0..len`, each 1..=`max` long (seeded).
fn random_chunks_of(len: usize, max: usize, rng: &mut ChaCha8Rng) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        let step = rng.random_range(1..=max).min(len - at);
        out.push(at..at + step);
        at += step;
    }
    out
}

#[test]
fn streaming_mfcc_is_bit_identical_to_batch_for_any_chunking() {
    let mut audio = read_wav("speech_fsddgeorge_t00");
    audio.extend(read_wav("synth_noise"));
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for (use_energy, dither, denoise) in [
        (false, 0.0, false),
        (true, 0.0, false),
        (false, 1.0, false),
        (true, 0.0, true),
    ] {
        let opts = MfccOptions {
            use_energy,
            dither,
            dither_seed: 9,
            noise_suppression: denoise.then(NoiseSuppressionOptions::default),
            ..MfccOptions::default()
        };
        let mut extractor = MfccExtractor::new(opts).unwrap();
        let (batch, batch_energy) = extractor.compute_with_energy(&audio).unwrap();
        for round in 0..4 {
            extractor.reset();
            let mut streamed = FeatureMatrix::new(20);
            let mut energy = Vec::new();
            let chunks = if round == 0 {
                // Tiny chunks too: every straddling case.
                (0..audio.len()).map(|i| i..i + 1).collect()
            } else {
                random_chunks(audio.len(), &mut rng)
            };
            for chunk in chunks {
                extractor.accept_waveform(&audio[chunk]).unwrap();
                extractor
                    .pop_frames_with_energy(&mut streamed, &mut energy)
                    .unwrap();
            }
            extractor.input_finished();
            extractor
                .pop_frames_with_energy(&mut streamed, &mut energy)
                .unwrap();
            assert_eq!(
                streamed, batch,
                "energy {use_energy} dither {dither} denoise {denoise}"
            );
            assert_eq!(energy, batch_energy);
        }
    }
}

#[test]
fn frame_count_follows_snip_edges_and_short_input_gives_no_frames() {
    let mut extractor = MfccExtractor::new(MfccOptions::default()).unwrap();
    for (n, frames) in [(0, 0), (199, 0), (200, 1), (279, 1), (280, 2), (8000, 98)] {
        let out = extractor.compute(&vec![100.0; n]).unwrap();
        assert_eq!(out.num_frames(), frames, "{n} samples");
    }
}

#[test]
fn bad_input_and_options_are_errors_not_panics() {
    let mut extractor = MfccExtractor::new(MfccOptions::default()).unwrap();
    assert!(matches!(
        extractor.accept_waveform(&[0.0, f32::NAN]),
        Err(FeatureError::InvalidInput(_))
    ));
    let bad = [
        MfccOptions {
            num_ceps: 24,
            ..MfccOptions::default()
        },
        MfccOptions {
            high_freq_hz: 5000.0,
            ..MfccOptions::default()
        },
        MfccOptions {
            frame_shift_ms: 0.0,
            ..MfccOptions::default()
        },
        MfccOptions {
            snip_edges: false,
            ..MfccOptions::default()
        },
        MfccOptions {
            num_mel_bins: 120,
            num_ceps: 20,
            ..MfccOptions::default()
        },
        MfccOptions {
            dither: -1.0,
            ..MfccOptions::default()
        },
    ];
    for opts in bad {
        assert!(MfccExtractor::new(opts.clone()).is_err(), "{opts:?}");
    }
    let mut wrong = FeatureMatrix::new(13);
    assert!(matches!(
        extractor.pop_frames(&mut wrong),
        Err(FeatureError::DimensionMismatch {
            expected: 20,
            actual: 13
        })
    ));
    // Options survive a serde round trip and partial configs take defaults.
    let json = serde_json::to_string(&FrontEndOptions::default()).unwrap();
    let back: FrontEndOptions = serde_json::from_str(&json).unwrap();
    assert_eq!(back, FrontEndOptions::default());
    let partial: MfccOptions = serde_json::from_str(r#"{"use_energy": true}"#).unwrap();
    assert!(partial.use_energy && partial.num_ceps == 20);
}

fn random_features(frames: usize, dim: usize, seed: u64) -> FeatureMatrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = (0..frames * dim)
        .map(|i| rng.random_range(-20.0..20.0f32) + (i % dim) as f32)
        .collect();
    FeatureMatrix::from_vec(dim, data).unwrap()
}

/// `x` cut into consecutive chunks of 1..=`max_frames` frames (seeded).
fn random_frame_chunks(x: &FeatureMatrix, max_frames: usize, seed: u64) -> Vec<FeatureMatrix> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dim = x.dim();
    random_chunks_of(x.num_frames(), max_frames, &mut rng)
        .into_iter()
        .map(|r| {
            FeatureMatrix::from_vec(dim, x.as_slice()[r.start * dim..r.end * dim].to_vec()).unwrap()
        })
        .collect()
}

#[test]
fn deltas_match_naive_regression_formula() {
    for frames in [1, 3, 9, 57] {
        let x = random_features(frames, 5, frames as u64);
        let out = compute_deltas(&x, &DeltaOptions::default()).unwrap();
        assert_eq!(out.dim(), 15);
        let at = |t: isize, d: usize| f64::from(x.row(t.clamp(0, frames as isize - 1) as usize)[d]);
        for t in 0..frames as isize {
            for d in 0..5 {
                // Δ = Σ_n n·x[t+n] / Σ n²; ΔΔ = Σ_i Σ_k i·k·x[t+i+k] / (Σ n²)², edges replicated.
                let delta: f64 = (-2..=2).map(|n| n as f64 * at(t + n, d)).sum::<f64>() / 10.0;
                let mut accel = 0.0;
                for i in -2..=2isize {
                    for k in -2..=2isize {
                        accel += (i * k) as f64 * at(t + i + k, d);
                    }
                }
                accel /= 100.0;
                let row = out.row(t as usize);
                assert_eq!(row[d], x.row(t as usize)[d]);
                assert!((f64::from(row[5 + d]) - delta).abs() < 1e-4, "Δ t{t} d{d}");
                assert!(
                    (f64::from(row[10 + d]) - accel).abs() < 1e-4,
                    "ΔΔ t{t} d{d}"
                );
            }
        }
    }
}

#[test]
fn streaming_deltas_are_bit_identical_to_batch() {
    let x = random_features(300, 20, 3);
    let batch = compute_deltas(&x, &DeltaOptions::default()).unwrap();
    let mut stream = StreamingDeltas::new(20, &DeltaOptions::default()).unwrap();
    let mut out = FeatureMatrix::new(60);
    for chunk in random_frame_chunks(&x, 30, 4) {
        stream.accept_frames(&chunk).unwrap();
        stream.pop_frames(&mut out).unwrap();
    }
    stream.input_finished();
    stream.pop_frames(&mut out).unwrap();
    assert_eq!(out, batch);
}

/// Kaldi's sliding window re-derived independently: `[start, end)` of frame t among `n`.
fn naive_window(t: usize, n: usize, opts: &SlidingCmnOptions) -> (usize, usize) {
    let w = opts.cmn_window;
    if opts.center {
        let len = w.min(n);
        let start = (t as isize - (w / 2) as isize).clamp(0, (n - len) as isize) as usize;
        (start, start + len)
    } else {
        let end = (t + 1).max(opts.min_window);
        let start = t.saturating_sub(w);
        if end > n {
            (start.saturating_sub(end - n), n)
        } else {
            (start, end)
        }
    }
}

#[test]
fn sliding_cmn_matches_naive_window_means() {
    for (frames, center, norm_vars) in [
        (700, true, false),
        (120, true, false),
        (700, false, false),
        (60, false, false),
        (450, true, true),
        (450, false, true),
    ] {
        let opts = SlidingCmnOptions {
            center,
            norm_vars,
            ..SlidingCmnOptions::default()
        };
        let x = random_features(frames, 4, 11);
        let out = apply_sliding_cmn(&x, &opts).unwrap();
        for t in 0..frames {
            let (start, end) = naive_window(t, frames, &opts);
            for d in 0..4 {
                let vals: Vec<f64> = (start..end).map(|i| f64::from(x.row(i)[d])).collect();
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                let mut expect = f64::from(x.row(t)[d]) - mean;
                if norm_vars {
                    let var =
                        vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
                    expect /= var.sqrt();
                }
                let got = f64::from(out.row(t)[d]);
                assert!(
                    (got - expect).abs() < 1e-4,
                    "{center} {norm_vars} t{t} d{d}: {got} vs {expect}"
                );
            }
        }
        // Streaming in random chunks gives the very same bits.
        let mut stream = StreamingSlidingCmn::new(4, &opts).unwrap();
        let mut streamed = FeatureMatrix::new(4);
        for chunk in random_frame_chunks(&x, 40, frames as u64) {
            stream.accept_frames(&chunk).unwrap();
            stream.pop_frames(&mut streamed).unwrap();
        }
        stream.input_finished();
        stream.pop_frames(&mut streamed).unwrap();
        assert_eq!(streamed, out);
    }
}

#[test]
fn causal_sliding_cmn_has_no_lookahead_after_min_window() {
    let opts = SlidingCmnOptions {
        center: false,
        ..SlidingCmnOptions::default()
    };
    let mut stream = StreamingSlidingCmn::new(1, &opts).unwrap();
    let mut out = FeatureMatrix::new(1);
    for t in 0..250 {
        stream
            .accept_frames(&FeatureMatrix::from_vec(1, vec![t as f32]).unwrap())
            .unwrap();
        stream.pop_frames(&mut out).unwrap();
        let expect = if t + 1 < 100 { 0 } else { t + 1 };
        assert_eq!(out.num_frames(), expect, "after frame {t}");
    }
}

#[test]
fn cmvn_with_variance_gives_zero_mean_unit_variance() {
    let mut x = random_features(200, 6, 5);
    let stats = CmvnStats::from_features(&x);
    stats.apply(&mut x, true).unwrap();
    for d in 0..6 {
        let col: Vec<f64> = x.rows().map(|r| f64::from(r[d])).collect();
        let mean = col.iter().sum::<f64>() / 200.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 200.0;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "d{d}: {mean} {var}"
        );
    }
    assert!(CmvnStats::new(6).apply(&mut x, false).is_err());
}

#[test]
fn vad_matches_brute_force_and_streaming_matches_running_mean() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let energy: Vec<f32> = (0..400)
        .map(|t| {
            if (t / 37) % 2 == 0 {
                rng.random_range(14.0..22.0)
            } else {
                rng.random_range(2.0..9.0)
            }
        })
        .collect();
    let opts = VadOptions::default();
    let batch = compute_vad(&energy, &opts).unwrap();
    let mean = energy.iter().map(|&e| f64::from(e)).sum::<f64>() / 400.0;
    let threshold = 5.5 + 0.5 * mean;
    for (t, &decision) in batch.iter().enumerate() {
        let ctx: Vec<f32> = (t.saturating_sub(2)..(t + 3).min(400))
            .map(|i| energy[i])
            .collect();
        let above = ctx.iter().filter(|&&e| f64::from(e) > threshold).count();
        assert_eq!(
            decision,
            above as f64 >= 0.12 * ctx.len() as f64,
            "frame {t}"
        );
    }
    assert!(batch.iter().any(|&v| v) && batch.iter().any(|&v| !v));

    let running = compute_vad_running(&energy, &opts).unwrap();
    for (t, &decision) in running.iter().enumerate() {
        let seen = (t + 3).min(400);
        let mean = energy[..seen].iter().map(|&e| f64::from(e)).sum::<f64>() / seen as f64;
        let threshold = 5.5 + 0.5 * mean;
        let ctx: Vec<f32> = (t.saturating_sub(2)..(t + 3).min(400))
            .map(|i| energy[i])
            .collect();
        let above = ctx.iter().filter(|&&e| f64::from(e) > threshold).count();
        assert_eq!(
            decision,
            above as f64 >= 0.12 * ctx.len() as f64,
            "frame {t}"
        );
    }
    let mut vad = StreamingVad::new(&opts).unwrap();
    let mut decisions = Vec::new();
    for chunk in energy.chunks(7) {
        vad.accept_log_energy(chunk);
        vad.pop_decisions(&mut decisions);
    }
    vad.input_finished();
    vad.pop_decisions(&mut decisions);
    assert_eq!(decisions, running);
}

#[test]
fn vad_rejects_digital_silence_and_keeps_speech() {
    let mut audio = read_wav("synth_silence");
    audio.extend(read_wav("speech_sc0cb74144_t00"));
    let mut front = FrontEnd::new(FrontEndOptions::default()).unwrap();
    let out = front.compute(&audio).unwrap();
    // The first 1.8 s are silence or ±1 LSB noise: none of it is voiced.
    assert!(out.voiced[..170].iter().all(|&v| !v));
    let speech_voiced = out.voiced[200..].iter().filter(|&&v| v).count();
    assert!(speech_voiced > 100, "{speech_voiced} voiced speech frames");
    assert_eq!(out.features.dim(), 60);
    assert_eq!(
        out.features.num_frames(),
        out.voiced.iter().filter(|&&v| v).count()
    );
}

#[test]
fn streaming_front_end_equals_batch_with_running_vad() {
    let mut audio = read_wav("speech_sc0cb74144_t00");
    audio.extend(read_wav("synth_silence"));
    audio.extend(read_wav("speech_fsddgeorge_t00"));
    for scope in [CmnScope::VoicedFrames, CmnScope::AllFrames] {
        let opts = FrontEndOptions {
            vad_mode: VadMode::Running,
            cmn_scope: scope,
            ..FrontEndOptions::default()
        };
        let batch = FrontEnd::new(opts.clone())
            .unwrap()
            .compute(&audio)
            .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let mut stream = StreamingFrontEnd::new(opts).unwrap();
        for _ in 0..2 {
            stream.reset();
            let mut out = FeatureMatrix::new(60);
            for chunk in random_chunks(audio.len(), &mut rng) {
                stream.accept_waveform(&audio[chunk]).unwrap();
                stream.pop_frames(&mut out).unwrap();
            }
            stream.input_finished().unwrap();
            stream.pop_frames(&mut out).unwrap();
            assert_eq!(stream.num_frames_decided(), batch.voiced.len(), "{scope:?}");
            assert_eq!(out, batch.features, "{scope:?}");
        }
    }
}

#[test]
fn voiced_scope_normalises_the_voiced_frames_to_zero_mean() {
    // Independent check: with a window longer than the utterance, VoicedFrames CMN is the
    // whole-utterance mean of the voiced Δ features, computed here by a naive loop.
    let audio = read_wav("speech_sc0cb74144_t00");
    let opts = FrontEndOptions::default();
    let out = FrontEnd::new(opts.clone())
        .unwrap()
        .compute(&audio)
        .unwrap();
    let n = out.features.num_frames();
    assert!(n > 50 && n < opts.sliding_cmn.cmn_window);
    for j in 0..out.features.dim() {
        let mean: f64 = out.features.rows().map(|r| f64::from(r[j])).sum::<f64>() / n as f64;
        assert!(mean.abs() < 1e-3, "dim {j}: mean {mean}");
    }
}

#[test]
fn fast_log_is_within_a_few_ulp_of_f64_log() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut worst = 0.0f64;
    for i in 0..200_000 {
        // Log-uniform over the range MFCC energies take: FLT_EPSILON .. 1e15.
        let x = if i < 2 {
            [f32::EPSILON, 1.0][i]
        } else {
            (rng.random_range(-16.0f64..35.0)).exp() as f32
        };
        let exact = f64::from(x).ln();
        let got = f64::from(super::mfcc::ln_positive(x));
        let ulp = f64::from(f32::EPSILON) * exact.abs().max(0.5);
        worst = worst.max((got - exact).abs() / ulp);
    }
    assert!(worst <= 2.0, "worst error {worst} ulp");
}

/// Speech (two fixtures, 8 s) in white noise at 5 dB SNR, the clean signal's energy VAD as the
/// oracle of where the pauses are: with noise suppression the frame log energies (the VAD's
/// input) drop more in the pauses (noise alone) than on the speech, i.e. the frame-level SNR
/// rises (speech frames drop too: at 5 dB much of their energy is noise).
#[test]
fn noise_suppression_lowers_the_pauses_more_than_the_speech_at_5_db() {
    let mut clean = read_wav("speech_sc0cb74144_t00");
    clean.extend(read_wav("speech_fsddgeorge_t00"));
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let speech_power =
        clean.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / clean.len() as f64;
    let sigma = (speech_power / 10f64.powf(0.5)).sqrt();
    let noisy: Vec<f32> = clean
        .iter()
        .map(|&x| {
            // Box-Muller from two uniforms: Gaussian noise of standard deviation sigma.
            let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
            x + (sigma * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect();
    let energy = |opts: MfccOptions, audio: &[f32]| -> Vec<f32> {
        let mut ex = MfccExtractor::new(opts).unwrap();
        ex.compute_with_energy(audio).unwrap().1
    };
    let truth = compute_vad(
        &energy(MfccOptions::default(), &clean),
        &VadOptions::default(),
    )
    .unwrap();
    let plain = energy(MfccOptions::default(), &noisy);
    let suppressed = energy(
        MfccOptions {
            noise_suppression: Some(NoiseSuppressionOptions::default()),
            ..MfccOptions::default()
        },
        &noisy,
    );
    // after the first window (1.5 s), where the noise estimate has converged
    let mean_drop = |speech: bool| {
        let frames: Vec<usize> = (150..truth.len()).filter(|&t| truth[t] == speech).collect();
        frames
            .iter()
            .map(|&t| f64::from(plain[t] - suppressed[t]))
            .sum::<f64>()
            / frames.len() as f64
    };
    let (pauses, speech) = (mean_drop(false), mean_drop(true));
    eprintln!("mean log-energy drop: pauses {pauses:.2}, speech {speech:.2} nats");
    assert!(pauses > 2.0, "pauses {pauses}");
    // measured 3.42 and 2.29 nats: the frame SNR rises by ~1.1 nats (~5 dB)
    assert!(pauses - speech > 0.8, "speech {speech}, pauses {pauses}");
}

#[test]
fn adaptive_noise_suppression_gate_and_options() {
    use super::{AdaptiveNoiseSuppression, EnergyRange};
    let ns = AdaptiveNoiseSuppression::default();
    ns.validate().unwrap();
    // frames 20 dB apart (ln 100 = 4.6 nats): under the 25-dB gate once there are enough frames
    let mut range = EnergyRange::new();
    for k in 0..(ns.min_frames - 1) {
        range.push(if k % 2 == 0 { 10.0 } else { 10.0 + 100f32.ln() });
    }
    assert!(
        (range.spread_db() - 20.0).abs() < 0.3,
        "{}",
        range.spread_db()
    );
    assert!(!ns.applies_to(&range), "too few frames to judge");
    range.push(10.0);
    assert!(ns.applies_to(&range));
    // 40 dB apart: a clean line, left alone
    let mut clean = EnergyRange::new();
    for k in 0..200 {
        clean.push(if k % 2 == 0 {
            5.0
        } else {
            5.0 + 10_000f32.ln()
        });
    }
    assert!(!ns.applies_to(&clean));
    // the suppressed front end differs from the plain one in the suppressor only
    let fe = super::FrontEndOptions::default();
    let s = ns.suppressed_front_end(&fe);
    assert_eq!(s.mfcc.noise_suppression.as_ref(), Some(&ns.suppression));
    assert_eq!(
        super::FrontEndOptions {
            mfcc: super::MfccOptions {
                noise_suppression: None,
                ..s.mfcc.clone()
            },
            ..s
        },
        fe
    );
    let never = AdaptiveNoiseSuppression {
        max_spread_db: 0.0,
        ..ns.clone()
    };
    never.validate().unwrap();
    let mut flat = EnergyRange::new();
    for _ in 0..200 {
        flat.push(3.0);
    }
    assert!(ns.applies_to(&flat) && !never.applies_to(&flat));
    for bad in [-3.0, f64::NAN, f64::INFINITY] {
        let e = AdaptiveNoiseSuppression {
            max_spread_db: bad,
            ..ns.clone()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("max_spread_db"), "{e}");
    }
    let mut weak = ns.clone();
    weak.suppression.bias = 0.5;
    assert!(weak.validate().unwrap_err().to_string().contains("bias"));
}

#[test]
fn warping_quantile_function_matches_tabulated_quantiles() {
    use crate::metrics::probit as inverse_normal_cdf;
    // Φ⁻¹ of these probabilities, from standard tables (computed with mpmath to 16 digits)
    for (p, z) in [
        (0.5, 0.0),
        (0.975, 1.959_963_984_540_054),
        (0.841_344_746_068_542_9, 1.0),
        (0.001, -3.090_232_306_167_813_5),
        (0.02, -2.053_748_910_631_823),
        (0.9999, 3.719_016_485_455_709),
        (1e-10, -6.361_340_902_404_056),
    ] {
        let got = inverse_normal_cdf(p);
        assert!(
            (got - z).abs() <= 1e-8 * (1.0 + z.abs()),
            "Φ⁻¹({p}) = {got}, expected {z}"
        );
        assert!((inverse_normal_cdf(1.0 - p) + z).abs() <= 1e-8 * (1.0 + z.abs()));
    }
    assert_eq!(inverse_normal_cdf(0.0), f64::NEG_INFINITY);
    assert_eq!(inverse_normal_cdf(1.0), f64::INFINITY);
}

#[test]
fn feature_warping_equals_brute_force_ranking() {
    use crate::metrics::probit as inverse_normal_cdf;
    for (frames, center, window) in [
        (700, true, 300),
        (120, true, 300),
        (500, false, 200),
        (1, true, 300),
    ] {
        let opts = SlidingCmnOptions {
            center,
            cmn_window: window,
            feature_warping: true,
            ..SlidingCmnOptions::default()
        };
        // values on a coarse grid, so that ties occur
        let mut x = random_features(frames, 3, 5);
        for t in 0..frames {
            let row: Vec<f32> = x.row(t).iter().map(|v| (v * 4.0).round() / 4.0).collect();
            x.row_mut(t).copy_from_slice(&row);
        }
        let out = apply_sliding_cmn(&x, &opts).unwrap();
        for t in 0..frames {
            let (start, end) = naive_window(t, frames, &opts);
            for d in 0..3 {
                let v = x.row(t)[d];
                let less = (start..end).filter(|&i| x.row(i)[d] < v).count();
                let equal = (start..end).filter(|&i| x.row(i)[d] == v).count();
                let p = (less as f64 + 0.5 * equal as f64) / (end - start) as f64;
                let expect = inverse_normal_cdf(p) as f32;
                assert_eq!(out.row(t)[d], expect, "frames {frames} t {t} d {d}");
            }
        }
    }
}

#[test]
fn feature_warping_ignores_monotonic_channel_effects() {
    // A channel that scales, shifts or bends a coefficient monotonically leaves the warped
    // features unchanged (what mean normalisation cannot do for a scale).
    let opts = SlidingCmnOptions {
        cmn_window: 300,
        feature_warping: true,
        ..SlidingCmnOptions::default()
    };
    let x = random_features(400, 4, 9);
    let mut y = x.clone();
    for t in 0..400 {
        let row: Vec<f32> = x
            .row(t)
            .iter()
            .enumerate()
            .map(|(d, &v)| match d {
                0 => 3.0 * v + 5.0,
                1 => 0.25 * v - 2.0,
                2 => v * v * v,
                _ => v.exp(),
            })
            .collect();
        y.row_mut(t).copy_from_slice(&row);
    }
    let a = apply_sliding_cmn(&x, &opts).unwrap();
    let b = apply_sliding_cmn(&y, &opts).unwrap();
    assert_eq!(a, b);
    // and each coefficient is close to N(0, 1) over the utterance
    for d in 0..4 {
        let v: Vec<f64> = (0..400).map(|t| f64::from(a.row(t)[d])).collect();
        let mean = v.iter().sum::<f64>() / 400.0;
        let var = v.iter().map(|z| (z - mean) * (z - mean)).sum::<f64>() / 400.0;
        assert!(
            mean.abs() < 0.1 && (var - 1.0).abs() < 0.15,
            "d {d}: {mean} {var}"
        );
    }
    // mean normalisation does not undo a scale
    let cmn = SlidingCmnOptions {
        feature_warping: false,
        ..opts.clone()
    };
    assert_ne!(
        apply_sliding_cmn(&x, &cmn).unwrap(),
        apply_sliding_cmn(&y, &cmn).unwrap()
    );
    // batch only, and absent from the serialised options unless on
    assert!(StreamingSlidingCmn::new(4, &opts).is_err());
    let json = serde_json::to_string(&SlidingCmnOptions::default()).unwrap();
    assert!(!json.contains("feature_warping"), "{json}");
    assert!(serde_json::to_string(&opts)
        .unwrap()
        .contains("\"feature_warping\":true"));
}
