//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use quivox::store::{
    Actor, Consent, Enrollment, KeptAudio, ModelBlob, PhoneNumber, SpeakerId, SqliteStore, Store,
    StoreKey,
};

/// Every environment variable the CLI reads: cleared so the caller's environment cannot leak in.
pub const CLI_ENV: [&str; 9] = [
    "QUIVOX_CONFIG",
    "QUIVOX_STORE",
    "QUIVOX_PG_SCHEMA",
    "QUIVOX_STORE_KEY",
    "QUIVOX_KEY_FILE",
    "QUIVOX_MODELS",
    "QUIVOX_OPERATOR",
    "QUIVOX_MIC_WAV",
    "USER",
];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary, run from the repository root with a clean quivox environment.
pub fn quivox() -> Command {
    let mut cmd = Command::cargo_bin("quivox").unwrap();
    cmd.current_dir(repo_root());
    for var in CLI_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// A temporary store (SQLite file + key file) for one test.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    pub key_file: PathBuf,
}

pub const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

impl Fixture {
    /// A key file and an empty store created through the library.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.sqlite");
        let key_file = dir.path().join("store.key");
        std::fs::write(&key_file, format!("{KEY_HEX}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        drop(SqliteStore::open_sqlite(&store, Self::key()).unwrap());
        Self {
            dir,
            store,
            key_file,
        }
    }

    pub fn key() -> StoreKey {
        StoreKey::from_hex(KEY_HEX, "test").unwrap()
    }

    /// `quivox <args> --store sqlite:... --key-file ...`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = quivox();
        cmd.args(args)
            .arg("--store")
            .arg(format!("sqlite:{}", self.store.display()))
            .arg("--key-file")
            .arg(&self.key_file)
            .args(["--operator", "tester"]);
        cmd
    }

    /// Runs `quivox <args> --json` and parses stdout, asserting success.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self
            .cmd(args)
            .arg("--json")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    /// Enrolls a speaker with a fake voiceprint directly through the library.
    pub fn enroll_fake(&self, id: &str, number: Option<&str>, audio: bool) {
        let mut store = SqliteStore::open_sqlite(&self.store, Self::key()).unwrap();
        let actor = Actor::new("setup", 1_700_000_000);
        store
            .enroll(
                &actor,
                &Enrollment {
                    speaker: SpeakerId(id.to_string()),
                    display_name: format!("Name of {id}"),
                    external_id: Some(format!("crm-{id}")),
                    models: vec![ModelBlob {
                        kind: "gmm".into(),
                        model_version: "test-v1".into(),
                        bytes: id.as_bytes().to_vec(),
                    }],
                    numbers: number
                        .map(|n| vec![PhoneNumber::parse(n).unwrap()])
                        .unwrap_or_default(),
                    consent: Consent {
                        given_at: actor.now,
                        method: "written".into(),
                        operator: "setup".into(),
                        reference: format!("form-{id}"),
                    },
                    keep_audio: if audio {
                        vec![KeptAudio {
                            recorded_at: actor.now,
                            format: "wav".into(),
                            bytes: vec![1, 2, 3, 4],
                        }]
                    } else {
                        Vec::new()
                    },
                },
            )
            .unwrap();
    }
}

/// The test PostgreSQL server's URL (`QUIVOX_TEST_PG_URL`); `None` (test skipped, with a message)
/// when unset outside CI; panics when unset in CI.
pub fn pg_url(test: &str) -> Option<String> {
    match std::env::var("QUIVOX_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "QUIVOX_TEST_PG_URL is not set but CI is: the PostgreSQL CLI tests must run in CI; \
                     run `eval \"$(bash scripts/start-test-postgres.sh)\"` first"
                );
            }
            eprintln!(
                "SKIPPED PostgreSQL CLI test {test}: QUIVOX_TEST_PG_URL is not set \
                 (run `eval \"$(bash scripts/start-test-postgres.sh)\"` to enable it)"
            );
            None
        }
    }
}

/// Drops a test schema.
pub fn drop_pg_schema(url: &str, schema: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .unwrap();
}
