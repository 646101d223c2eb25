//! `quivox augment-set`: renders a development set's test segments (never its enrollment)
//! through random phone channels, one set per channel kind plus their union, each laid out
//! like `../shared/corpus/dev-read` so `quivox eval --corpus OUT --sets NAME-KIND` reads it.
//!
//! AMR-NB and GSM 06.10 run through `sox` (Debian `sox libsox-fmt-all`); this is data
//! preparation only, the library never needs them.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Args;
use quivox::audio::{read_wav, write_wav_pcm16, ReadOptions, Waveform};
use quivox::augment::{channel_rng, render, AugmentError, ChannelKind, ExternalCodec};
use quivox::eval::Background;
use rayon::prelude::*;

/// Arguments of `quivox augment-set`.
#[derive(Debug, Args)]
pub struct AugmentSetArgs {
    /// The clean set (enroll.lst, trials.txt, ident lists, test/); or a background folder
    /// (with utt2spk), rendered to `<out>/<name>-aug` with one channel copy per utterance.
    #[arg(long, default_value = "../shared/corpus/dev-read")]
    pub set: PathBuf,
    /// Output folder; sets `<name>-<kind>` and `<name>-all` are created in it.
    #[arg(long, default_value = "/work/degraded")]
    pub out: PathBuf,
    /// Background folder (with utt2spk) whose recordings make the babble.
    #[arg(long, default_value = "../shared/corpus/background")]
    pub babble: PathBuf,
    /// Babble pool: this many background recordings of read speech (so*), every k-th in order.
    #[arg(long, default_value_t = 200)]
    pub babble_pool: usize,
    /// Channel kinds to render (codec, noise, handset, packet-loss).
    #[arg(
        long,
        default_value = "codec,noise,handset,packet-loss",
        value_delimiter = ','
    )]
    pub kinds: Vec<String>,
    /// Seed of every random draw (channel choice, noise, babble, lost packets).
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// The sox binary used for AMR-NB and GSM 06.10.
    #[arg(long, default_value = "sox")]
    pub sox: PathBuf,
}

/// Runs AMR-NB / GSM 06.10 through sox: PCM WAV → codec file → PCM WAV.
pub(crate) fn sox_codec(
    sox: &Path,
    codec: ExternalCodec,
    samples: &[f32],
) -> Result<Vec<f32>, AugmentError> {
    let fail = |reason: String| AugmentError::ExternalCodec { codec, reason };
    let dir = tempfile::tempdir().map_err(|e| fail(format!("temp dir: {e}")))?;
    let input = dir.path().join("in.wav");
    let output = dir.path().join("out.wav");
    write_wav_pcm16(
        &input,
        &Waveform {
            sample_rate_hz: 8000,
            samples: samples.to_vec(),
        },
    )
    .map_err(|e| fail(e.to_string()))?;
    let (coded, encode_args): (PathBuf, Vec<String>) = match codec {
        ExternalCodec::Gsm0610 => (dir.path().join("x.gsm"), vec!["-t".into(), "gsm".into()]),
        ExternalCodec::AmrNb { .. } => {
            let mode = codec
                .amr_mode()
                .ok_or_else(|| fail("not an AMR-NB bit rate".into()))?;
            (
                dir.path().join("x.amr"),
                vec!["-t".into(), "amr-nb".into(), "-C".into(), mode.to_string()],
            )
        }
        _ => return Err(fail("no sox recipe for this codec".into())),
    };
    let run = |cmd: &mut Command| -> Result<(), AugmentError> {
        let out = cmd
            .output()
            .map_err(|e| fail(format!("running {}: {e}", sox.display())))?;
        if !out.status.success() {
            return Err(fail(format!(
                "sox failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    };
    run(Command::new(sox).arg(&input).args(&encode_args).arg(&coded))?;
    run(Command::new(sox)
        .arg(&coded)
        .args(["-e", "signed", "-b", "16"])
        .arg(&output))?;
    Ok(read_wav(&output, &ReadOptions::default())
        .map_err(|e| fail(e.to_string()))?
        .samples)
}

/// Test paths in the order of trials.txt, then the ident lists.
fn test_paths(set: &Path) -> anyhow::Result<Vec<String>> {
    let mut seen = Vec::new();
    for (list, column) in [
        ("trials.txt", 1),
        ("ident_closed.txt", 0),
        ("ident_open.txt", 0),
    ] {
        let path = set.join(list);
        if !path.exists() && list != "trials.txt" {
            continue;
        }
        for line in fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
        {
            if let Some(test) = line.split_whitespace().nth(column) {
                if !seen.iter().any(|s| s == test) {
                    seen.push(test.to_string());
                }
            }
        }
    }
    if seen.is_empty() {
        bail!("{}: no test files in trials.txt", set.display());
    }
    Ok(seen)
}

/// Copies a list file, prefixing the test-path column (`column`) with `prefix`.
fn copy_list(from: &Path, to: &Path, column: usize, prefix: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    for line in fs::read_to_string(from)
        .with_context(|| format!("reading {}", from.display()))?
        .lines()
    {
        let fields: Vec<String> = line
            .split_whitespace()
            .enumerate()
            .map(|(i, f)| {
                if i == column {
                    format!("{prefix}{f}")
                } else {
                    f.to_string()
                }
            })
            .collect();
        if !fields.is_empty() {
            out.push_str(&fields.join(" "));
            out.push('\n');
        }
    }
    fs::write(to, &out).with_context(|| format!("writing {}", to.display()))?;
    Ok(out)
}

/// Makes `link` (creating its folder, replacing an old link) point at `target`'s real path.
fn link_to(target: &Path, link: &Path) -> anyhow::Result<()> {
    if let Some(parent) = link.parent() {
        fs::create_dir_all(parent)?;
    }
    if link.is_symlink() || link.is_file() {
        fs::remove_file(link)?;
    }
    let target =
        fs::canonicalize(target).with_context(|| format!("resolving {}", target.display()))?;
    std::os::unix::fs::symlink(&target, link).with_context(|| format!("linking {}", link.display()))
}

fn link_enrollment(set: &Path, out_set: &Path) -> anyhow::Result<()> {
    link_to(&set.join("enroll"), &out_set.join("enroll"))?;
    fs::copy(set.join("enroll.lst"), out_set.join("enroll.lst"))?;
    Ok(())
}

/// The list files of a set and the column holding the test path.
const LISTS: [(&str, usize); 3] = [
    ("trials.txt", 1),
    ("ident_closed.txt", 0),
    ("ident_open.txt", 0),
];
const MODEL_LISTS: [&str; 2] = ["ident_closed_models.txt", "ident_open_models.txt"];

/// Background mode: `<out>/<name>-aug/` holds every clean utterance (a link) and one copy
/// rendered through a channel (kinds in turn by utterance index, so each speaker meets every
/// kind), listed under the same speaker in `utt2spk`: same voice, different channels.
fn augment_background(
    args: &AugmentSetArgs,
    name: &str,
    kinds: &[ChannelKind],
    pool: &[Vec<f32>],
) -> anyhow::Result<()> {
    let bg =
        Background::load(&args.set).with_context(|| format!("reading {}", args.set.display()))?;
    let out_dir = args.out.join(format!("{name}-aug"));
    fs::create_dir_all(&out_dir)?;
    let lines: Vec<String> = bg
        .utterances
        .par_iter()
        .enumerate()
        .map(|(i, (path, speaker))| -> anyhow::Result<String> {
            let rel = path
                .strip_prefix(&bg.root)
                .with_context(|| format!("{} is outside {}", path.display(), bg.root.display()))?
                .to_string_lossy()
                .into_owned();
            link_to(path, &out_dir.join(&rel))?;
            let kind = kinds[i % kinds.len()];
            let wave = read_wav(path, &ReadOptions::default())
                .with_context(|| format!("reading {}", path.display()))?;
            let mut rng = channel_rng(args.seed, (1 << 40) | i as u64);
            let channel = kind.draw(&mut rng);
            let out = render(
                &wave.samples,
                wave.sample_rate_hz,
                &channel,
                pool,
                &mut rng,
                &mut |codec, x| sox_codec(&args.sox, codec, x),
            )
            .with_context(|| format!("rendering {rel}"))?;
            let aug_rel = format!("aug/{rel}");
            let aug_path = out_dir.join(&aug_rel);
            if let Some(parent) = aug_path.parent() {
                fs::create_dir_all(parent)?;
            }
            write_wav_pcm16(
                &aug_path,
                &Waveform {
                    sample_rate_hz: wave.sample_rate_hz,
                    samples: out.samples,
                },
            )?;
            Ok(format!(
                "{rel} {speaker}\n{aug_rel} {speaker}\t# {}\n",
                out.description
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut utt2spk = String::new();
    let mut channels = String::new();
    for block in &lines {
        for line in block.lines() {
            match line.split_once('\t') {
                Some((entry, description)) => {
                    writeln!(utt2spk, "{entry}")?;
                    writeln!(
                        channels,
                        "{}\t{}",
                        entry,
                        description.trim_start_matches("# ")
                    )?;
                }
                None => writeln!(utt2spk, "{line}")?,
            }
        }
    }
    fs::write(out_dir.join("utt2spk"), utt2spk)?;
    fs::write(out_dir.join("channels.tsv"), channels)?;
    eprintln!(
        "{}: {} clean + {} augmented utterances",
        out_dir.display(),
        lines.len(),
        lines.len()
    );
    Ok(())
}

/// Runs `augment-set`.
pub fn run(args: &AugmentSetArgs) -> anyhow::Result<()> {
    let kinds: Vec<ChannelKind> = args
        .kinds
        .iter()
        .map(|k| ChannelKind::from_name(k))
        .collect::<Result<_, _>>()?;
    let name = args
        .set
        .file_name()
        .and_then(|n| n.to_str())
        .context("set folder has no name")?
        .to_string();
    let background_mode = args.set.join("utt2spk").exists();
    let bg = Background::load(&args.babble)
        .with_context(|| format!("reading {}", args.babble.display()))?;
    let read: Vec<&PathBuf> = bg
        .utterances
        .iter()
        .filter(|(_, spk)| spk.starts_with("so"))
        .map(|(p, _)| p)
        .collect();
    let pool: Vec<Vec<f32>> = quivox::augment::babble_pool_choice(&read, args.babble_pool)
        .map(|p| {
            read_wav(p, &ReadOptions::default())
                .map(|w| w.samples)
                .with_context(|| format!("reading {}", p.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    if background_mode {
        return augment_background(args, &name, &kinds, &pool);
    }
    let tests = test_paths(&args.set)?;
    eprintln!(
        "{} tests, {} kinds, babble pool of {} recordings",
        tests.len(),
        kinds.len(),
        pool.len()
    );

    let all_dir = args.out.join(format!("{name}-all"));
    fs::create_dir_all(&all_dir)?;
    link_enrollment(&args.set, &all_dir)?;
    let mut all_lists = vec![String::new(); LISTS.len()];
    let mut all_channels = String::new();
    for model in MODEL_LISTS {
        if args.set.join(model).exists() {
            fs::copy(args.set.join(model), all_dir.join(model))?;
        }
    }

    for &kind in &kinds {
        let kind_index = ChannelKind::ALL
            .iter()
            .position(|&k| k == kind)
            .unwrap_or(0) as u64;
        let out_set = args.out.join(format!("{name}-{}", kind.name()));
        fs::create_dir_all(&out_set)?;
        link_enrollment(&args.set, &out_set)?;
        let rendered: Vec<(String, String)> = tests
            .par_iter()
            .enumerate()
            .map(|(i, test)| -> anyhow::Result<(String, String)> {
                let wave = read_wav(&args.set.join(test), &ReadOptions::default())
                    .with_context(|| format!("reading {test}"))?;
                let mut rng = channel_rng(args.seed, (kind_index << 32) | i as u64);
                let channel = kind.draw(&mut rng);
                let out = render(
                    &wave.samples,
                    wave.sample_rate_hz,
                    &channel,
                    &pool,
                    &mut rng,
                    &mut |codec, x| sox_codec(&args.sox, codec, x),
                )
                .with_context(|| format!("rendering {test}"))?;
                let out_wave = Waveform {
                    sample_rate_hz: wave.sample_rate_hz,
                    samples: out.samples,
                };
                let path = out_set.join(test);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
                write_wav_pcm16(&path, &out_wave)?;
                // The union holds the same audio: a link to the per-kind file.
                link_to(&path, &all_dir.join(format!("test/{}/{test}", kind.name())))?;
                Ok((test.clone(), out.description))
            })
            .collect::<anyhow::Result<_>>()?;
        let mut channels = String::new();
        for (test, description) in &rendered {
            writeln!(channels, "{test}\t{description}")?;
            writeln!(
                all_channels,
                "test/{}/{test}\t{}\t{description}",
                kind.name(),
                kind.name()
            )?;
        }
        fs::write(out_set.join("channels.tsv"), channels)?;
        for (j, (list, column)) in LISTS.iter().enumerate() {
            let from = args.set.join(list);
            if from.exists() {
                copy_list(&from, &out_set.join(list), *column, "")?;
                let prefixed = copy_list(
                    &from,
                    &all_dir.join(list),
                    *column,
                    &format!("test/{}/", kind.name()),
                )?;
                all_lists[j].push_str(&prefixed);
            }
        }
        for model in MODEL_LISTS {
            if args.set.join(model).exists() {
                fs::copy(args.set.join(model), out_set.join(model))?;
            }
        }
        eprintln!("{}: {} tests rendered", out_set.display(), rendered.len());
    }
    for (j, (list, _)) in LISTS.iter().enumerate() {
        if !all_lists[j].is_empty() {
            fs::write(all_dir.join(list), &all_lists[j])?;
        }
    }
    fs::write(all_dir.join("channels.tsv"), all_channels)?;
    eprintln!("{}: union of {} kinds", all_dir.display(), kinds.len());
    Ok(())
}
