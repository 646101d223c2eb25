//! Crash safety at the CLI level: `quivox enroll` is killed with SIGKILL at random (seeded)
//! moments, in a loop; afterwards the store opens, `quivox check` passes, and every enrollment
//! the CLI reported as done is present with its voiceprint and numbers.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{Fixture, CLI_ENV};
use rand::{Rng, SeedableRng};

const SPEAKERS: [&str; 4] = ["so0457", "so1027", "so2061", "so2740"];
const ROUNDS: usize = 24;

/// The store options of the binary: `--store ... --key-file ...` (and `--pg-schema`).
type StoreArgs = Vec<std::ffi::OsString>;

fn sqlite_args(f: &Fixture) -> StoreArgs {
    vec![
        "--store".into(),
        format!("sqlite:{}", f.store.display()).into(),
        "--key-file".into(),
        f.key_file.clone().into(),
    ]
}

/// `quivox <args> --json <store args>`, parsed, asserting success.
fn json(store: &StoreArgs, args: &[&str]) -> serde_json::Value {
    let out = common::quivox()
        .args(args)
        .arg("--json")
        .args(store)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

fn enroll_command(store: &StoreArgs, id: &str, source: &str) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("quivox"));
    cmd.current_dir(common::repo_root());
    for var in CLI_ENV {
        cmd.env_remove(var);
    }
    cmd.args([
        "enroll",
        id,
        &format!("audio-fixtures/demo/{source}-enroll.wav"),
        "--consent",
        "written",
        "--number",
        "+44 20 7946 0001",
        "--keep-audio",
        "--json",
    ])
    .args(store)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    cmd
}

#[test]
fn sigkill_during_enrollments_leaves_a_sound_store_with_every_reported_enrollment() {
    let f = Fixture::new();
    crash_loop(&sqlite_args(&f), 7);
}

#[test]
fn sigkill_during_enrollments_on_postgres() {
    let Some(url) = common::pg_url("crash loop") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    let schema = format!("cli_crash_{}", std::process::id());
    let store: StoreArgs = vec![
        "--store".into(),
        url.clone().into(),
        "--pg-schema".into(),
        schema.clone().into(),
        "--key-file".into(),
        key.into(),
    ];
    common::quivox().arg("init").args(&store).assert().success();
    crash_loop(&store, 11);
    common::drop_pg_schema(&url, &schema);
}

fn crash_loop(store: &StoreArgs, seed: u64) {
    // Full enrollments tell how long the process lives on this machine; kill moments are
    // drawn over 0.2 ..= 1.5 × that, so some kills come before, during and after the commit.
    // The longest of three runs: the machine may be busy.
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut lifetime = std::time::Duration::ZERO;
    for (i, source) in SPEAKERS.iter().take(3).enumerate() {
        let id = format!("calibration-{i}");
        let started = Instant::now();
        let out = enroll_command(store, &id, source).output().unwrap();
        assert!(out.status.success());
        lifetime = lifetime.max(started.elapsed());
        reported.insert(id);
    }
    let mut killed = 0;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for round in 0..ROUNDS {
        let id = format!("crash-{round:02}");
        let source = SPEAKERS[round % SPEAKERS.len()];
        let mut child = enroll_command(store, &id, source).spawn().unwrap();
        let delay = lifetime.mul_f64(rng.random_range(0.2..1.5));
        std::thread::sleep(delay);
        // SIGKILL on Unix (an error only if it already exited and was reaped: it was not).
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
            assert_eq!(doc["speaker"], id.as_str());
            reported.insert(id);
        } else {
            killed += 1;
        }
    }
    eprintln!(
        "{} of {ROUNDS} enrollments completed, {killed} killed (process lifetime {lifetime:?})",
        reported.len() - 3
    );
    // The point of the test: some kills landed (the loop is not vacuous).
    assert!(killed > 0);

    // The store opens and passes its integrity check.
    let check = json(store, &["check"]);
    assert_eq!(check["problems"], serde_json::json!([]), "{check}");
    // Every reported enrollment is there, complete: voiceprint, number, consent, kept audio.
    let listed: BTreeSet<String> = json(store, &["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reported.is_subset(&listed),
        "reported {reported:?}, listed {listed:?}"
    );
    eprintln!(
        "{} speakers in the store: {} committed but killed before reporting",
        listed.len(),
        listed.len() - reported.len()
    );
    // Speakers present but not reported were killed after the commit, before printing; they are
    // complete too (each enrollment is one transaction).
    for id in &listed {
        let show = json(store, &["show", id]);
        assert_eq!(show["models"].as_array().unwrap().len(), 1, "{show}");
        assert_eq!(show["numbers"][0]["number"], "+442079460001", "{show}");
        assert_eq!(show["consents"].as_array().unwrap().len(), 1, "{show}");
        assert_eq!(show["kept_audio_count"], 1, "{show}");
    }
    // And the store still takes enrollments: a killed one can be redone.
    let redo = (0..ROUNDS)
        .map(|r| format!("crash-{r:02}"))
        .find(|id| !listed.contains(id));
    if let Some(id) = redo {
        let out = enroll_command(store, &id, "so1027").output().unwrap();
        assert!(out.status.success());
    }
}
