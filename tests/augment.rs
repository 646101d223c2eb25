//! Channel augmentation: every transform measured against what it promises (band edges on a
//! sweep with an FFT, SNR on the mixture, packets counted, levels measured), determinism per seed.

use std::path::{Path, PathBuf};

use quivox::audio::{g711, read_wav, G711Law, ReadOptions};
use quivox::augment::{
    apply_gain_db, apply_line_response, babble, coloured_noise, drop_packets, g711_tandem,
    mix_at_snr, power, render, AugmentError, Channel, ChannelKind, Concealment, ExternalCodec,
    LineResponse, NoiseColour, PacketLoss,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rustfft::{num_complex::Complex, FftPlanner};

const FS: u32 = 8000;

fn demo(name: &str) -> Vec<f32> {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("audio-fixtures/demo")
        .join(name);
    read_wav(&path, &ReadOptions::default()).unwrap().samples
}

/// Power spectrum |X(k)|² of the whole signal (complex FFT, no window), bin width FS / len.
fn power_spectrum(x: &[f32]) -> Vec<f64> {
    let mut buf: Vec<Complex<f64>> = x.iter().map(|&v| Complex::new(f64::from(v), 0.0)).collect();
    FftPlanner::new()
        .plan_fft_forward(buf.len())
        .process(&mut buf);
    buf.iter().map(|c| c.norm_sqr()).collect()
}

/// Energy of the spectrum between lo_hz and hi_hz.
fn band(spectrum: &[f64], lo_hz: f64, hi_hz: f64) -> f64 {
    let bin_hz = f64::from(FS) / spectrum.len() as f64;
    let lo = (lo_hz / bin_hz).ceil() as usize;
    let hi = (hi_hz / bin_hz).floor() as usize;
    spectrum[lo..=hi].iter().sum()
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

/// Exponential sine sweep 30 Hz → 3970 Hz over 4 s at amplitude 8000.
fn sweep() -> Vec<f32> {
    let (f0, f1, dur) = (30.0f64, 3970.0f64, 4.0f64);
    let k = (f1 / f0).ln();
    (0..(dur * f64::from(FS)) as usize)
        .map(|n| {
            let t = n as f64 / f64::from(FS);
            let phase = 2.0 * std::f64::consts::PI * f0 * dur / k * ((t * k / dur).exp() - 1.0);
            (8000.0 * phase.sin()) as f32
        })
        .collect()
}

/// Measured gain in dB of `response` in a band (out/in energy of a sweep).
fn measured_gain_db(response: &LineResponse, bands: &[(f64, f64)]) -> Vec<f64> {
    let input = sweep();
    let output = apply_line_response(&input, FS, response).unwrap();
    assert_eq!(output.len(), input.len());
    let (si, so) = (power_spectrum(&input), power_spectrum(&output));
    bands
        .iter()
        .map(|&(lo, hi)| db(band(&so, lo, hi) / band(&si, lo, hi)))
        .collect()
}

#[test]
fn telephone_band_limits_measured_on_a_sweep() {
    let r = LineResponse::telephone();
    let g = measured_gain_db(
        &r,
        &[
            (80.0, 150.0),   // > 1 octave below the low edge
            (290.0, 310.0),  // low edge
            (900.0, 1100.0), // pass band
            (3390.0, 3410.0),
            (3850.0, 3950.0),
        ],
    );
    // Butterworth order 8: −48 dB per octave outside, −3 dB at the edges, 0 dB inside.
    assert!(g[0] < -40.0, "below band: {g:?}");
    assert!((g[1] + 3.0).abs() < 1.0, "low edge: {g:?}");
    assert!(g[2].abs() < 0.3, "pass band: {g:?}");
    assert!((g[3] + 3.0).abs() < 1.0, "high edge: {g:?}");
    // At 3850–3950 Hz the design gives 10·log10(1 + (f/3400)^16) = 9.2 … 10.8 dB of attenuation.
    assert!(g[4] < -8.5 && g[4] > -12.0, "above band: {g:?}");
}

#[test]
fn narrow_quiet_handset_and_tilt_measured_on_a_sweep() {
    let narrow = LineResponse::narrow_handset();
    let g = measured_gain_db(
        &narrow,
        &[(900.0, 1100.0), (340.0, 360.0), (3300.0, 3500.0)],
    );
    assert!((g[0] + 10.0).abs() < 0.3, "quieter by 10 dB: {g:?}");
    // Design (order 8 edges at 500 / 2800 Hz): 24.8 dB down at 350 Hz, 11.7 … 15.6 dB down
    // at 3300 … 3500 Hz, relative to the pass band.
    assert!(g[1] - g[0] < -22.0, "narrower at the bottom: {g:?}");
    assert!(g[2] - g[0] < -11.0, "narrower at the top: {g:?}");

    let bright = LineResponse {
        tilt_db_per_octave: 4.0,
        ..LineResponse::telephone()
    };
    let g = measured_gain_db(
        &bright,
        &[(950.0, 1050.0), (1950.0, 2050.0), (470.0, 530.0)],
    );
    assert!((g[1] - g[0] - 4.0).abs() < 0.3, "+4 dB per octave: {g:?}");
    assert!((g[0] - g[2] - 4.0).abs() < 0.4, "+4 dB per octave: {g:?}");
}

#[test]
fn line_response_rejects_bad_parameters() {
    let bad = LineResponse {
        high_hz: 4200.0,
        ..LineResponse::telephone()
    };
    assert!(matches!(
        apply_line_response(&[0.0; 100], FS, &bad),
        Err(AugmentError::InvalidOption {
            name: "high_hz",
            ..
        })
    ));
    assert!(apply_line_response(&[f32::NAN], FS, &LineResponse::telephone()).is_err());
}

#[test]
fn snr_measured_on_the_mixture() {
    let speech = demo("so0457-call.wav");
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (colour, snr) in [
        (NoiseColour::White, 5.0),
        (NoiseColour::Pink, 10.0),
        (NoiseColour::Brown, 20.0),
    ] {
        let noise = coloured_noise(colour, speech.len(), &mut rng).unwrap();
        let mix = mix_at_snr(&speech, &noise, snr).unwrap();
        let residual: Vec<f32> = mix.iter().zip(&speech).map(|(m, s)| m - s).collect();
        let measured = db(power(&speech) / power(&residual));
        assert!((measured - snr).abs() < 0.01, "{colour:?}: {measured} dB");
    }
    assert!(mix_at_snr(&speech, &speech[..10], 5.0).is_err());
    assert!(mix_at_snr(&[0.0; 10], &[1.0; 10], 5.0).is_err());
}

#[test]
fn noise_colours_have_their_spectral_slopes() {
    // PSD ∝ 1/f^α: power per octave changes by 3·(1 − α) dB per octave; compare the octaves
    // 250–500 Hz and 1000–2000 Hz, two octaves apart.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (colour, expected_db) in [
        (NoiseColour::White, 6.02),
        (NoiseColour::Pink, 0.0),
        (NoiseColour::Brown, -6.02),
    ] {
        let noise = coloured_noise(colour, 80_000, &mut rng).unwrap();
        assert!((power(&noise) - 1.0).abs() < 1e-3, "unit RMS");
        let s = power_spectrum(&noise);
        let slope = db(band(&s, 1000.0, 2000.0) / band(&s, 250.0, 500.0));
        assert!((slope - expected_db).abs() < 0.7, "{colour:?}: {slope} dB");
    }
}

#[test]
fn babble_mixes_the_requested_talkers() {
    // Four "talkers" at distinct tones: a 2-talker babble holds exactly two of them, each at
    // half the power of the unit-RMS sum.
    let tones = [400.0, 800.0, 1600.0, 3000.0];
    let pool: Vec<Vec<f32>> = tones
        .iter()
        .enumerate()
        .map(|(i, &f)| {
            (0..8000)
                .map(|n| {
                    ((i + 1) as f32 * 1000.0)
                        * (2.0 * std::f32::consts::PI * f * n as f32 / FS as f32).sin()
                })
                .collect()
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let b = babble(&pool, 2, 16000, &mut rng).unwrap();
    assert!((power(&b) - 1.0).abs() < 1e-3);
    let s = power_spectrum(&b);
    let total: f64 = s.iter().sum();
    let shares: Vec<f64> = tones
        .iter()
        .map(|&f| 2.0 * band(&s, f64::from(f) - 20.0, f64::from(f) + 20.0) / total)
        .collect();
    let present = shares.iter().filter(|&&x| x > 0.4).count();
    assert_eq!(present, 2, "{shares:?}");
    for x in shares.iter().filter(|&&x| x > 0.4) {
        assert!((x - 0.5).abs() < 0.05, "{shares:?}");
    }
    assert!(babble(&pool, 5, 100, &mut rng).is_err());
}

#[test]
fn packet_loss_fraction_counted() {
    let speech = demo("so1027-call.wav");
    let packet = 160;
    let packets = speech.len().div_ceil(packet);
    for (fraction, concealment, seed) in [
        (0.01, Concealment::Zero, 1),
        (0.05, Concealment::Zero, 2),
        (0.03, Concealment::RepeatPrevious, 3),
    ] {
        let loss = PacketLoss {
            loss_fraction: fraction,
            packet_ms: 20.0,
            concealment,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (out, lost) = drop_packets(&speech, FS, &loss, &mut rng).unwrap();
        assert_eq!(lost.len(), (fraction * packets as f64).round() as usize);
        // Count the packets that changed, independently of the returned list.
        let mut changed = Vec::new();
        for p in 0..packets {
            let r = p * packet..((p + 1) * packet).min(speech.len());
            if out[r.clone()] != speech[r.clone()] {
                changed.push(p);
                match concealment {
                    Concealment::Zero => assert!(out[r].iter().all(|&v| v == 0.0)),
                    _ => {
                        let prev = &out[(p - 1) * packet..(p - 1) * packet + r.len()];
                        assert_eq!(&out[r], prev);
                    }
                }
            }
        }
        // A lost packet may happen to equal its concealment (silence); never more changes.
        assert!(changed.iter().all(|p| lost.contains(p)));
        assert!(
            changed.len() + 2 >= lost.len(),
            "{} vs {}",
            changed.len(),
            lost.len()
        );
    }
}

#[test]
fn level_change_measured() {
    let speech = demo("so2061-call.wav");
    let (quiet, clipped) = apply_gain_db(&speech, -12.0).unwrap();
    assert_eq!(clipped, 0);
    assert!((db(power(&quiet) / power(&speech)) + 12.0).abs() < 1e-3);
    let (loud, clipped) = apply_gain_db(&speech, 30.0).unwrap();
    assert!(clipped > 0);
    let peak = loud.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(peak <= 32768.0);
    let counted = loud
        .iter()
        .filter(|&&v| v == 32767.0 || v == -32768.0)
        .count();
    assert_eq!(counted, clipped);
    assert!(apply_gain_db(&speech, f64::NAN).is_err());
}

#[test]
fn g711_tandem_is_the_composition_of_the_coders() {
    let speech = demo("so0457-call.wav");
    let out = g711_tandem(&speech, &[G711Law::ALaw, G711Law::MuLaw]).unwrap();
    for (&x, &y) in speech.iter().zip(&out) {
        let a = g711::alaw_to_i16(g711::i16_to_alaw(x as i16));
        let u = g711::ulaw_to_i16(g711::i16_to_ulaw(a));
        assert_eq!(y, f32::from(u));
    }
    // The source is already μ-law: A-law requantisation changes it, but less than coding
    // linear PCM would (G.711 SQNR ~38 dB on speech).
    let err: Vec<f32> = out.iter().zip(&speech).map(|(a, b)| a - b).collect();
    let sqnr = db(power(&speech) / power(&err));
    assert!(sqnr > 25.0 && sqnr < 60.0, "{sqnr}");
}

fn stand_in_codec(_: ExternalCodec, x: &[f32]) -> Result<Vec<f32>, AugmentError> {
    // A crude stand-in for a codec in tests: 4-bit requantisation.
    Ok(x.iter().map(|v| (v / 4096.0).round() * 4096.0).collect())
}

#[test]
fn every_kind_is_deterministic_for_a_seed_and_changes_the_audio() {
    let speech = demo("so0457-call.wav");
    let pool = vec![
        demo("so1027-enroll.wav"),
        demo("so2061-enroll.wav"),
        demo("so2740-enroll.wav"),
        demo("so9614-call.wav"),
        demo("so2740-call.wav"),
        demo("so1027-call.wav"),
        demo("so2061-call.wav"),
    ];
    for kind in ChannelKind::ALL {
        let run = |seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let channel = kind.draw(&mut rng);
            render(&speech, FS, &channel, &pool, &mut rng, &mut stand_in_codec).unwrap()
        };
        let (a, b) = (run(17), run(17));
        assert_eq!(a, b, "{kind:?}");
        assert_eq!(a.samples.len(), speech.len());
        assert_ne!(a.samples, speech, "{kind:?}: {}", a.description);
        // Different seeds draw different channels or different noise.
        let others: Vec<_> = (18..22).map(run).collect();
        assert!(others.iter().any(|o| o.samples != a.samples), "{kind:?}");
        // Every channel ends at a μ-law endpoint: the output is on the μ-law grid.
        for &v in &a.samples {
            let s = v as i16;
            assert_eq!(g711::ulaw_to_i16(g711::i16_to_ulaw(s)), s);
        }
        assert_eq!(ChannelKind::from_name(kind.name()).unwrap(), kind);
    }
}

#[test]
fn render_reports_lost_packets_and_uses_the_codec_hook() {
    let speech = demo("so0457-call.wav");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let channel = vec![
        Channel::Codec(ExternalCodec::Gsm0610),
        Channel::PacketLoss(PacketLoss {
            loss_fraction: 0.05,
            ..PacketLoss::default()
        }),
    ];
    let mut calls = 0;
    let out = render(&speech, FS, &channel, &[], &mut rng, &mut |c, x| {
        calls += 1;
        assert_eq!(c, ExternalCodec::Gsm0610);
        Ok(x[..x.len() - 7].to_vec())
    })
    .unwrap();
    assert_eq!(calls, 1);
    assert_eq!(out.samples.len(), speech.len());
    assert_eq!(
        out.lost_packets,
        (0.05 * speech.len().div_ceil(160) as f64).round() as usize
    );
    assert_eq!(
        out.description,
        "gsm-06.10 | packet-loss 5.0% of 20ms RepeatPrevious"
    );
    assert_eq!(
        ExternalCodec::AmrNb { bitrate_bps: 7950 }.amr_mode(),
        Some(5)
    );
}

/// Not a unit test: the measurement behind the VAD choice (README). Scores dev sets with the
/// shipped GMM-UBM system (or `QUIVOX_VAD_MODEL`), once per VAD mode (enrollment and tests
/// alike). Sets are folders
/// in `QUIVOX_VAD_SETS` (comma-separated), e.g.
/// `QUIVOX_VAD_SETS=/work/shared/corpus/dev-read,/work/degraded/dev-read-noise \
///  cargo test --release --test augment -- --ignored --nocapture vad_modes`.
#[test]
#[ignore]
fn vad_modes_on_dev_sets() {
    use quivox::engine::voice::GmmUbmSystem;
    use quivox::eval::{markdown_table, report, DevSet, OpenSetRule};
    use quivox::features::{FrontEndOptions, VadMode};
    use quivox::recipe::eval::{score_gmm, set_features};

    let sets = std::env::var("QUIVOX_VAD_SETS").unwrap_or_default();
    let model = std::env::var("QUIVOX_VAD_MODEL").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gmm-ubm.qvx"),
        PathBuf::from,
    );
    let (gmm, front_end) = GmmUbmSystem::load(&model).unwrap();
    let mut reports = Vec::new();
    for root in sets.split(',').filter(|s| !s.is_empty()) {
        let set = DevSet::load(Path::new(root)).unwrap();
        let name = Path::new(root).file_name().unwrap().to_string_lossy();
        for mode in [VadMode::Utterance, VadMode::NoiseFloor] {
            let opts = FrontEndOptions {
                vad_mode: mode,
                ..front_end.clone()
            };
            let feats = set_features(&set, &opts, None).unwrap();
            let (scores, _) = score_gmm(&gmm, &feats).unwrap();
            reports.push(
                report(
                    &format!("GMM-UBM, VAD {mode:?}"),
                    &name,
                    &set,
                    &scores,
                    gmm.calibration.is_some(),
                    &OpenSetRule::default(),
                )
                .unwrap(),
            );
        }
    }
    print!("{}", markdown_table(&reports));
}

#[test]
fn babble_pool_choice_spreads_evenly_and_keeps_small_lists_whole() {
    let items: Vec<usize> = (0..10).collect();
    let pick = |n| {
        quivox::augment::babble_pool_choice(&items, n)
            .copied()
            .collect::<Vec<_>>()
    };
    assert_eq!(pick(3), vec![0, 3, 6]);
    assert_eq!(pick(5), vec![0, 2, 4, 6, 8]);
    assert_eq!(pick(20), items);
    assert_eq!(pick(0), Vec::<usize>::new());
}
