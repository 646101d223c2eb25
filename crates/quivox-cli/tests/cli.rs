//! End-to-end tests of the `quivox` binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn quivox() -> Command {
    let mut cmd = Command::cargo_bin("quivox").unwrap();
    cmd.current_dir(repo_root());
    cmd
}

#[test]
fn demo_identifies_the_fixture_callers_and_never_names_the_wrong_person() {
    let out = quivox()
        .arg("demo")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let finals: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("=>"))
        .collect();
    assert_eq!(finals.len(), 6, "{text}");
    assert!(finals[0].contains("IDENTIFIED so0457"), "{text}");
    assert!(finals[1].contains("IDENTIFIED so1027"), "{text}");
    // Withheld number: the voice alone names so2061 or asks for more audio, nobody else.
    assert!(
        finals[2].contains("IDENTIFIED so2061") || finals[2].contains("need more audio"),
        "{text}"
    );
    // so2740 calling from so2061's number: the voice rules so2061 out (naming so2740 or not).
    assert!(
        finals[3].contains("MISMATCH: number says so2061, voice says so2740")
            || finals[3].contains("MISMATCH: number says so2061, voice says none of the number's"),
        "{text}"
    );
    // Nobody enrolled: flagged against the number (as nobody enrolled, or as none of the
    // number's people), or unknown when withheld.
    assert!(
        finals[4].contains("MISMATCH: number says so2740, voice says nobody enrolled")
            || finals[4].contains("MISMATCH: number says so2740, voice says none of the number's"),
        "{text}"
    );
    assert!(finals[5].contains("UNKNOWN"), "{text}");
    // No wrong identification anywhere on the timelines.
    for line in text.lines().filter(|l| l.contains("IDENTIFIED")) {
        let calls_block = text[..text.find(line).unwrap()]
            .rfind("true caller ")
            .unwrap();
        let truth = &text[calls_block + 12..calls_block + 18];
        assert!(
            line.contains(&format!("IDENTIFIED {truth}")),
            "wrong identification: {line}\n{text}"
        );
    }
    assert!(text.contains("problems: none"), "{text}");
}

#[test]
fn features_writes_csv_for_a_mulaw_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.csv");
    quivox()
        .args([
            "features",
            "audio-fixtures/demo/so9614-call.wav",
            "--format",
            "csv",
            "--deltas",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    // 7.000 s at 8 kHz, 25 ms / 10 ms frames with snip_edges: 1 + (56000 - 200) / 80 = 698.
    assert_eq!(rows.len(), 698);
    assert_eq!(rows[0].split(',').count(), 60);
}

#[test]
fn missing_inputs_fail_with_a_clear_message() {
    quivox()
        .args(["features", "no/such/file.wav"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no/such/file.wav"));
    quivox()
        .args(["eval", "--corpus", "no/such/corpus"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no/such/corpus"));
    quivox()
        .args(["demo", "--gmm", "no/such/model.qvx"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no/such/model.qvx"));
}

#[test]
fn corrupt_model_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.qvx");
    let mut bytes = std::fs::read(repo_root().join("models/gmm-ubm.qvx")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    quivox()
        .args(["demo", "--gmm"])
        .arg(&path)
        .assert()
        .failure()
        .stderr(predicate::str::contains("checksum"));
}

#[test]
fn bad_arguments_are_usage_errors() {
    quivox()
        .args(["train-ubm", "--components", "many"])
        .assert()
        .failure()
        .code(2);
    quivox().arg("no-such-command").assert().failure().code(2);
    // holding out every speaker (or none) is no split
    for command in ["train-ubm", "train-cohort", "train-backend"] {
        quivox()
            .args([
                command,
                "--data",
                "no/such/background",
                "--holdout-every",
                "1",
            ])
            .assert()
            .failure()
            .code(2)
            .stderr(predicate::str::contains("--holdout-every"));
    }
}

#[test]
fn back_end_model_files_of_the_wrong_kind_are_refused() {
    quivox()
        .args([
            "eval",
            "--system",
            "ivector",
            "--ivector",
            "models/embedding-plda.qvx",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("\"embedding-plda-system\""));
    quivox()
        .args([
            "eval",
            "--system",
            "embedding",
            "--embedding",
            "models/fusion.qvx",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("\"fusion\""));
    quivox()
        .args([
            "eval",
            "--system",
            "fusion",
            "--fusion",
            "models/gmm-ubm.qvx",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("\"gmm-ubm-system\""));
    // Embeddings of other encoder weights: the embedding back end's fingerprint does not match.
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.safetensors");
    let mut bytes =
        std::fs::read(repo_root().join("models/speaker-encoder-ge2e.safetensors")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    quivox()
        .args(["eval", "--system", "embedding", "--encoder"])
        .arg(&weights)
        .assert()
        .failure()
        .stderr(predicate::str::contains("trained with front end"));
    quivox()
        .args(["train-backend", "--data", "no/such/background"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no/such/background"));
    quivox()
        .args(["eval", "--system", "bogus"])
        .assert()
        .failure()
        .code(2);
}

/// Width and height from a PNG's IHDR chunk (bytes 16..24, big-endian), after checking the
/// signature: read from the bytes as the PNG specification lays them out.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn eval_writes_a_det_svg_and_png_and_trial_scores_per_set_and_system() {
    // A two-speaker set from the demo fixtures (absolute paths: the set's root joins them as is).
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("mini");
    std::fs::create_dir_all(&set).unwrap();
    let demo = repo_root().join("audio-fixtures/demo");
    let wav = |name: &str| demo.join(name).display().to_string();
    let mut enroll = String::new();
    let mut trials = String::new();
    for speaker in ["so0457", "so1027"] {
        enroll.push_str(&format!(
            "{speaker} {}\n",
            wav(&format!("{speaker}-enroll.wav"))
        ));
        for caller in ["so0457", "so1027"] {
            let kind = if caller == speaker {
                "target"
            } else {
                "nontarget"
            };
            trials.push_str(&format!(
                "{speaker} {} {kind}\n",
                wav(&format!("{caller}-call.wav"))
            ));
        }
    }
    std::fs::write(set.join("enroll.lst"), enroll).unwrap();
    std::fs::write(set.join("trials.txt"), trials).unwrap();
    let det_dir = dir.path().join("det");
    quivox()
        .args(["eval", "--system", "gmm", "--sets", "mini", "--corpus"])
        .arg(dir.path())
        .arg("--det-dir")
        .arg(&det_dir)
        .arg("--scores-dir")
        .arg(dir.path().join("scores"))
        .assert()
        .success();
    let mut names: Vec<String> = std::fs::read_dir(&det_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // One SVG and one PNG of the same stem, det-<set>-<system slug>.
    assert_eq!(names.len(), 2, "{names:?}");
    let stem = names[0].strip_suffix(".png").expect("a PNG");
    assert!(stem.starts_with("det-mini-GMM-UBM-"), "{names:?}");
    assert_eq!(names[1], format!("{stem}.svg"));
    let svg = std::fs::read_to_string(det_dir.join(&names[1])).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<path"));
    let png = std::fs::read(det_dir.join(&names[0])).unwrap();
    assert_eq!(png_size(&png), (600, 600));
    // The trial scores: one line per trial, in trials.txt order, the demo callers recognised.
    let scores_dir = dir.path().join("scores");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&scores_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let path = &files[0];
    assert!(path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("scores-mini-GMM-UBM-"));
    // Each test's quality measures: the spread of its frame log energies, as the library
    // measures it from the samples (an MFCC pass of its own), and its voiced frames.
    assert_eq!(files[1].file_name().unwrap(), "tests-mini.tsv");
    let tests = std::fs::read_to_string(&files[1]).unwrap();
    let tests = tests.replace(&format!("{}/", demo.display()), "");
    let (_, front_end) =
        quivox::engine::voice::GmmUbmSystem::load(&repo_root().join("models/gmm-ubm.qvx")).unwrap();
    let mut lines = tests.lines();
    assert_eq!(
        lines.next(),
        Some("test\tenergy_spread\tspeech_frames"),
        "{tests}"
    );
    for (line, caller) in lines.zip(["so0457", "so1027"]) {
        let cols: Vec<&str> = line.split('\t').collect();
        let file = format!("{caller}-call.wav");
        assert_eq!(cols[0], file, "{tests}");
        let wave = quivox::audio::read_wav(&demo.join(&file), &Default::default()).unwrap();
        let expected = quivox::features::EnergyRange::of_samples(&front_end.mfcc, &wave.samples)
            .unwrap()
            .spread_nats()
            .unwrap();
        let spread: f64 = cols[1].parse().unwrap();
        assert!((spread - expected).abs() < 1e-6, "{spread} vs {expected}");
        let voiced: usize = cols[2].parse().unwrap();
        let frames = wave.samples.len() / 80;
        assert!(
            voiced > frames / 4 && voiced <= frames,
            "{voiced} of {frames}"
        );
    }
    let text = std::fs::read_to_string(path).unwrap();
    // (the fixtures lie outside the set's folder: their paths are written as given)
    let text = text.replace(&format!("{}/", demo.display()), "");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    let expected = [
        ("so0457", "so0457-call.wav", "target"),
        ("so0457", "so1027-call.wav", "nontarget"),
        ("so1027", "so0457-call.wav", "nontarget"),
        ("so1027", "so1027-call.wav", "target"),
    ];
    assert_eq!(rows.len(), expected.len(), "{text}");
    let mut score = std::collections::HashMap::new();
    for (row, (speaker, test, kind)) in rows.iter().zip(expected) {
        assert_eq!(&row[..3], &[speaker, test, kind], "{text}");
        let s: f64 = row[3].parse().unwrap();
        assert!(s.is_finite());
        score.insert((speaker, kind), s);
    }
    for speaker in ["so0457", "so1027"] {
        assert!(
            score[&(speaker, "target")] > score[&(speaker, "nontarget")],
            "{text}"
        );
    }
}
