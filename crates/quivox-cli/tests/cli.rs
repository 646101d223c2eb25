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
fn demo_identifies_the_fixture_callers_and_flags_the_rest() {
    let out = quivox()
        .arg("demo")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let verdicts: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("->"))
        .collect();
    assert_eq!(verdicts.len(), 6, "{text}");
    assert!(verdicts[0].contains("IDENTIFIED so0457"), "{text}");
    assert!(verdicts[1].contains("IDENTIFIED so1027"), "{text}");
    assert!(verdicts[2].contains("IDENTIFIED so2061"), "{text}");
    assert!(
        verdicts[3].contains("MISMATCH") && verdicts[3].contains("voice says so2740"),
        "{text}"
    );
    assert!(verdicts[4].contains("UNKNOWN"), "{text}");
    assert!(verdicts[5].contains("UNKNOWN"), "{text}");
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
}
