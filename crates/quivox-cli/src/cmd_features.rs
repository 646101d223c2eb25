//! `quivox features`: Kaldi-compatible MFCC of one WAV (optionally + Δ/ΔΔ and per-utterance
//! CMN, like `kaldi_mfcc_ref.py --deltas --cmn`) written as .npy (float32) or .csv.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use quivox::features::{
    compute_deltas, CmvnStats, DeltaOptions, FeatureMatrix, MfccExtractor, MfccOptions,
};

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// NumPy .npy, float32, shape [frames, dims].
    Npy,
    /// Comma-separated text, one frame per line.
    Csv,
}

/// Arguments of `quivox features`.
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Input WAV: mono, 16-bit PCM, 8000 Hz.
    pub input: PathBuf,
    /// Output file (default: the input path with extension .npy or .csv); `-` = stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Npy)]
    pub format: Format,
    /// Column 0 = raw natural-log frame energy instead of c0.
    #[arg(long)]
    pub use_energy: bool,
    /// Append Δ and ΔΔ (Kaldi add-deltas, order 2, window 2): 60 columns.
    #[arg(long)]
    pub deltas: bool,
    /// Per-utterance cepstral mean normalisation (after deltas).
    #[arg(long)]
    pub cmn: bool,
}

/// Runs the subcommand.
pub fn run(args: &FeaturesArgs) -> Result<()> {
    let opts = MfccOptions {
        use_energy: args.use_energy,
        ..MfccOptions::default()
    };
    let samples = read_wav_pcm16(&args.input, opts.sample_rate_hz)?;
    let feats = compute(&samples, opts, args.deltas, args.cmn)?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.input.with_extension(match args.format {
            Format::Npy => "npy",
            Format::Csv => "csv",
        })
    });
    let mut bytes = Vec::new();
    match args.format {
        Format::Npy => write_npy(&mut bytes, &feats)?,
        Format::Csv => write_csv(&mut bytes, &feats)?,
    }
    if out.as_os_str() == "-" {
        std::io::stdout().lock().write_all(&bytes)?;
    } else {
        std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    }
    eprintln!(
        "{}: {} frames x {} dims -> {}",
        args.input.display(),
        feats.num_frames(),
        feats.dim(),
        out.display()
    );
    Ok(())
}

/// MFCC, then optional deltas and per-utterance CMN.
fn compute(samples: &[f32], opts: MfccOptions, deltas: bool, cmn: bool) -> Result<FeatureMatrix> {
    let mut feats = MfccExtractor::new(opts)?.compute(samples)?;
    if deltas {
        feats = compute_deltas(&feats, &DeltaOptions::default())?;
    }
    if cmn && !feats.is_empty() {
        CmvnStats::from_features(&feats).apply(&mut feats, false)?;
    }
    Ok(feats)
}

/// Reads any supported WAV (PCM, float, G.711 μ-law/A-law; mono) as f32 samples in 16-bit
/// scale, resampled to `expected_rate_hz` when the file has another rate.
fn read_wav_pcm16(path: &Path, expected_rate_hz: u32) -> Result<Vec<f32>> {
    let opts = quivox::audio::ReadOptions {
        target_sample_rate_hz: Some(expected_rate_hz),
        ..Default::default()
    };
    let wave = quivox::audio::read_wav(path, &opts)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(wave.samples)
}

/// NumPy .npy v1.0: magic, header dict padded with spaces to a 64-byte boundary, then
/// little-endian float32 data in C order.
fn write_npy(out: &mut impl Write, feats: &FeatureMatrix) -> std::io::Result<()> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        feats.num_frames(),
        feats.dim()
    );
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header.len() as u16).to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    for &v in feats.as_slice() {
        out.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

/// One frame per line, comma-separated, shortest round-trip decimal form.
fn write_csv(out: &mut impl Write, feats: &FeatureMatrix) -> std::io::Result<()> {
    for row in feats.rows() {
        let line: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_data_follows() {
        let feats = FeatureMatrix::from_vec(3, vec![1.0, -2.5, 3.0, 0.5, 0.0, -1.0]).unwrap();
        let mut bytes = Vec::new();
        write_npy(&mut bytes, &feats).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'shape': (2, 3)") && header.ends_with('\n'));
        let data: Vec<f32> = bytes[10 + header_len..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(data, feats.as_slice());
    }

    #[test]
    fn features_of_fixture_match_library_and_csv_round_trips() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../audio-fixtures");
        let samples = read_wav_pcm16(&dir.join("synth_noise.wav"), 8000).unwrap();
        let feats = compute(&samples, MfccOptions::default(), true, true).unwrap();
        assert_eq!((feats.num_frames(), feats.dim()), (198, 60));
        // CMN: every column has zero mean.
        for d in 0..60 {
            let mean: f64 = feats.rows().map(|r| f64::from(r[d])).sum::<f64>() / 198.0;
            assert!(mean.abs() < 1e-4, "column {d}: {mean}");
        }
        let mut csv = Vec::new();
        write_csv(&mut csv, &feats).unwrap();
        let parsed: Vec<f32> = String::from_utf8(csv)
            .unwrap()
            .lines()
            .flat_map(|l| {
                l.split(',')
                    .map(|v| v.parse::<f32>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(parsed, feats.as_slice());
        assert!(read_wav_pcm16(&dir.join("synth_noise.wav"), 16000).is_err());
    }
}
