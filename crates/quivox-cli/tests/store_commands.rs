//! The store commands (`init`, `keygen`, `list`, `show`, `link-number`, `unlink-number`,
//! `forget`, `export`, `rotate-key`, `retention`, `purge`, `check`), their JSON output, exit codes
//! and configuration precedence, on a store filled through the library (no audio: fast).

mod common;

use common::{quivox, Fixture, KEY_HEX};
use predicates::prelude::*;
use quivox::store::{AuditAction, SqliteStore, Store, StoreKey};

#[test]
fn keygen_writes_a_private_key_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.key");
    let out = quivox()
        .args(["keygen", "--json", "--out"])
        .arg(&path)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let key = StoreKey::from_hex(&text, "k").unwrap();
    assert_eq!(doc["fingerprint"], key.fingerprint());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    quivox()
        .args(["keygen", "--out"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("refusing to overwrite"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    // Two keys differ.
    let other = dir.path().join("k2.key");
    quivox()
        .args(["keygen", "--out"])
        .arg(&other)
        .assert()
        .success();
    assert_ne!(std::fs::read_to_string(&other).unwrap(), text);
}

#[test]
fn init_creates_key_and_store_then_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite");
    let key = dir.path().join("s.key");
    let run = || {
        let out = quivox()
            .args(["init", "--json", "--store"])
            .arg(format!("sqlite:{}", store.display()))
            .arg("--key-file")
            .arg(&key)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()
    };
    let first = run();
    assert_eq!(first["created_store"], true);
    assert_eq!(first["created_key"], true);
    assert_eq!(first["backend"], "sqlite");
    assert_eq!(first["speakers"], 0);
    let second = run();
    assert_eq!(second["created_store"], false);
    assert_eq!(second["created_key"], false);
    assert_eq!(second["key_fingerprint"], first["key_fingerprint"]);
    // The store opens with the key file's key through the library too.
    let k = StoreKey::from_file(&key).unwrap();
    SqliteStore::open_sqlite(&store, k).unwrap();
}

#[test]
fn list_show_link_unlink_with_json_and_human_output() {
    let f = Fixture::new();
    assert_eq!(f.json(&["list"]), serde_json::json!([]));
    f.cmd(&["list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("no speakers"));
    f.enroll_fake("bob", Some("+44 20 7946 0002"), false);
    f.enroll_fake("alice", Some("+44 20 7946 0001"), true);
    let list = f.json(&["list"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    assert_eq!(list[0]["display_name"], "Name of alice");
    f.cmd(&["list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("alice").and(predicate::str::contains("2 speakers")));

    let show = f.json(&["show", "alice"]);
    assert_eq!(show["info"]["external_id"], "crm-alice");
    assert_eq!(show["models"][0]["kind"], "gmm");
    assert_eq!(show["numbers"][0]["number"], "+442079460001");
    assert_eq!(show["consents"][0]["method"], "written");
    assert_eq!(show["kept_audio_count"], 1);
    // No biometric bytes in show.
    assert!(!serde_json::to_string(&show).unwrap().contains("bytes"));
    f.cmd(&["show", "alice"])
        .assert()
        .success()
        .stdout(predicate::str::contains("+442079460001: 0 calls"));

    let linked = f.json(&["link-number", "+1 555 0100", "alice"]);
    assert_eq!(linked["was_linked"], false);
    let again = f.json(&["link-number", "+15550100", "alice"]);
    assert_eq!(again["was_linked"], true);
    let numbers: Vec<String> = f.json(&["show", "alice"])["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["number"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(numbers, ["+15550100", "+442079460001"]);
    f.cmd(&["unlink-number", "+15550100", "alice"])
        .assert()
        .success();
    assert_eq!(
        f.json(&["show", "alice"])["numbers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Unlinking again: not found.
    f.cmd(&["unlink-number", "+15550100", "alice"])
        .assert()
        .code(3);
    // A malformed number is a usage error; an unknown speaker is not found.
    f.cmd(&["link-number", "call-me", "alice"]).assert().code(2);
    f.cmd(&["link-number", "+15550100", "nobody"])
        .assert()
        .code(3);
    f.cmd(&["show", "nobody"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("nobody"));
    // The operator name reaches the audit log.
    let mut store = SqliteStore::open_sqlite(&f.store, Fixture::key()).unwrap();
    let audit = store.audit_log(None).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == AuditAction::LinkNumber && e.operator == "tester"));
}

#[test]
fn forget_needs_confirmation_and_erases_everything() {
    let f = Fixture::new();
    f.enroll_fake("alice", Some("+44 20 7946 0001"), true);
    f.enroll_fake("bob", None, false);
    f.cmd(&["forget", "alice"]).assert().code(2);
    assert_eq!(f.json(&["list"]).as_array().unwrap().len(), 2);
    let out = f.json(&["forget", "alice", "--yes"]);
    assert_eq!(out["erased"], true);
    let list = f.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], "bob");
    f.cmd(&["show", "alice"]).assert().code(3);
    f.cmd(&["forget", "alice", "--yes"]).assert().code(3);
    let mut store = SqliteStore::open_sqlite(&f.store, Fixture::key()).unwrap();
    assert!(store.load_number_links().unwrap().is_empty());
    assert!(store
        .audit_log(None)
        .unwrap()
        .iter()
        .any(|e| e.action == AuditAction::Erase && e.operator == "tester"));
    let check = f.json(&["check"]);
    assert_eq!(check["problems"], serde_json::json!([]));
    assert_eq!(check["speakers"], 1);
}

#[test]
fn export_is_json_with_biometrics_only_on_request() {
    let f = Fixture::new();
    f.enroll_fake("alice", Some("+44 20 7946 0001"), true);
    let plain = f.json(&["export", "alice"]);
    assert_eq!(plain["biometrics_included"], false);
    assert_eq!(plain["speaker"]["id"], "alice");
    assert_eq!(plain["models"][0]["bytes"], serde_json::Value::Null);
    assert_eq!(plain["numbers"][0]["number"], "+442079460001");
    // The export itself is audited and included.
    assert!(plain["audit"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "export"));
    // Without --json the document is the same JSON (an access request answer).
    let out = f
        .cmd(&["export", "alice"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["speaker"]["id"], "alice");
    let full = f.dir.path().join("alice.json");
    // An existing world-readable file is replaced and made private.
    std::fs::write(&full, "old").unwrap();
    f.cmd(&["export", "alice", "--include-biometrics"])
        .arg("--out")
        .arg(&full)
        .assert()
        .success();
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&full).unwrap()).unwrap();
    assert_eq!(doc["biometrics_included"], true);
    // The fake voiceprint is the id's bytes.
    assert_eq!(
        doc["models"][0]["bytes"],
        serde_json::json!(b"alice".to_vec())
    );
    assert_eq!(
        doc["kept_audio"][0]["bytes"],
        serde_json::json!([1, 2, 3, 4])
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&full).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    f.cmd(&["export", "nobody"]).assert().code(3);
}

#[test]
fn rotate_key_replaces_the_key_file_and_old_key_is_refused() {
    let f = Fixture::new();
    f.enroll_fake("alice", None, true);
    let old = std::fs::read_to_string(&f.key_file).unwrap();
    let out = f.json(&["rotate-key"]);
    let new = std::fs::read_to_string(&f.key_file).unwrap();
    assert_ne!(old, new);
    let new_key = StoreKey::from_hex(&new, "new").unwrap();
    assert_eq!(out["new_fingerprint"], new_key.fingerprint());
    assert_eq!(out["old_fingerprint"], Fixture::key().fingerprint());
    // Everything decrypts under the new key; the old one is refused.
    assert_eq!(f.json(&["check"])["models"], 1);
    let mut store = SqliteStore::open_sqlite(&f.store, new_key).unwrap();
    assert_eq!(store.model(&"alice".into(), "gmm").unwrap().bytes, b"alice");
    drop(store);
    let old_file = f.dir.path().join("old.key");
    std::fs::write(&old_file, &old).unwrap();
    quivox()
        .args(["list", "--store"])
        .arg(format!("sqlite:{}", f.store.display()))
        .arg("--key-file")
        .arg(&old_file)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("wrong store key"));
    // From the environment: the new key goes to --new-key-file.
    let next = f.dir.path().join("next.key");
    quivox()
        .args(["rotate-key", "--store"])
        .arg(format!("sqlite:{}", f.store.display()))
        .env("QUIVOX_STORE_KEY", new.trim())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--new-key-file"));
    quivox()
        .args(["rotate-key", "--store"])
        .arg(format!("sqlite:{}", f.store.display()))
        .arg("--new-key-file")
        .arg(&next)
        .env("QUIVOX_STORE_KEY", new.trim())
        .assert()
        .success();
    quivox()
        .args(["check", "--store"])
        .arg(format!("sqlite:{}", f.store.display()))
        .arg("--key-file")
        .arg(&next)
        .assert()
        .success()
        .stdout(predicate::str::contains("integrity: ok"));
}

#[test]
fn retention_and_purge() {
    let f = Fixture::new();
    // Enrolled in 2023 (fake enrollments are stamped 1_700_000_000): idle for years by now.
    f.enroll_fake("alice", None, true);
    let policy = f.json(&["retention"]);
    assert_eq!(policy["max_idle_s"], serde_json::Value::Null);
    let set = f.json(&[
        "retention",
        "--max-idle-days",
        "30",
        "--max-audio-age-days",
        "none",
    ]);
    assert_eq!(set["max_idle_s"], 30 * 86_400);
    assert_eq!(f.json(&["retention"])["max_idle_s"], 30 * 86_400);
    f.cmd(&["retention", "--max-idle-days", "-3"])
        .assert()
        .code(2);
    f.cmd(&["purge"]).assert().code(2);
    let purged = f.json(&["purge", "--yes"]);
    assert_eq!(purged["speakers_erased"], serde_json::json!(["alice"]));
    assert_eq!(f.json(&["list"]), serde_json::json!([]));
}

#[test]
fn wrong_key_missing_key_missing_store_and_corrupt_store() {
    let f = Fixture::new();
    f.enroll_fake("alice", None, false);
    let before = std::fs::read(&f.store).unwrap();
    let wrong = f.dir.path().join("wrong.key");
    std::fs::write(&wrong, "ff".repeat(32)).unwrap();
    let out = quivox()
        .args(["list", "--json", "--store"])
        .arg(format!("sqlite:{}", f.store.display()))
        .arg("--key-file")
        .arg(&wrong)
        .assert()
        .code(5)
        .get_output()
        .stderr
        .clone();
    // stderr holds JSON lines: a warning (the key file is world-readable), then the error.
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines[0]["warning"].as_str().unwrap().contains("chmod 600"));
    let err = lines.last().unwrap();
    assert_eq!(err["exit_code"], 5);
    assert_eq!(err["kind"], "store");
    assert!(err["error"].as_str().unwrap().contains("wrong store key"));
    // Nothing written by the refused open (the main file is byte-identical).
    assert_eq!(std::fs::read(&f.store).unwrap(), before);
    // A malformed key.
    std::fs::write(&wrong, "not a key").unwrap();
    f.cmd(&["list"]); // (the fixture's own command still works)
    quivox()
        .args(["list", "--store"])
        .arg(format!("sqlite:{}", f.store.display()))
        .arg("--key-file")
        .arg(&wrong)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("hex digits"));
    // A missing key file names the remedy.
    quivox()
        .args(["list", "--store"])
        .arg(format!("sqlite:{}", f.store.display()))
        .arg("--key-file")
        .arg(f.dir.path().join("absent.key"))
        .assert()
        .code(5)
        .stderr(predicate::str::contains("quivox init"));
    // A missing store is not created by read commands.
    let absent = f.dir.path().join("absent.sqlite");
    quivox()
        .args(["list", "--store"])
        .arg(format!("sqlite:{}", absent.display()))
        .arg("--key-file")
        .arg(&f.key_file)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("quivox init"));
    assert!(!absent.exists());
    // A corrupt store file: garbage over the pages after the header.
    let corrupt = f.dir.path().join("corrupt.sqlite");
    let mut bytes = before.clone();
    for b in bytes.iter_mut().skip(100) {
        *b ^= 0x5a;
    }
    std::fs::write(&corrupt, &bytes).unwrap();
    for cmd in ["list", "check"] {
        quivox()
            .args([cmd, "--store"])
            .arg(format!("sqlite:{}", corrupt.display()))
            .arg("--key-file")
            .arg(&f.key_file)
            .assert()
            .code(5);
    }
    // Not a database at all.
    std::fs::write(&corrupt, b"this is not an SQLite database, just text").unwrap();
    quivox()
        .args(["check", "--store"])
        .arg(format!("sqlite:{}", corrupt.display()))
        .arg("--key-file")
        .arg(&f.key_file)
        .assert()
        .code(5);
}

#[test]
fn check_reports_a_tampered_blob() {
    let f = Fixture::new();
    f.enroll_fake("alice", None, false);
    f.enroll_fake("bob", None, false);
    swap_sealed_blobs(&f.store);
    let out = f
        .cmd(&["check", "--json"])
        .assert()
        .code(5)
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(
        !report["problems"].as_array().unwrap().is_empty(),
        "{report}"
    );
    f.cmd(&["check"])
        .assert()
        .code(5)
        .stdout(predicate::str::contains("PROBLEM"));
}

/// Swaps the sealed voiceprints of the two speakers at the SQL level (an attacker with database
/// access moving one person's voiceprint to another).
fn swap_sealed_blobs(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let a: Vec<u8> = conn
        .query_row(
            "SELECT sealed FROM voice_models WHERE speaker_id = 'alice'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let b: Vec<u8> = conn
        .query_row(
            "SELECT sealed FROM voice_models WHERE speaker_id = 'bob'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute(
        "UPDATE voice_models SET sealed = ?1 WHERE speaker_id = 'alice'",
        [&b],
    )
    .unwrap();
    conn.execute(
        "UPDATE voice_models SET sealed = ?1 WHERE speaker_id = 'bob'",
        [&a],
    )
    .unwrap();
}

#[test]
fn config_file_and_environment_precedence() {
    let f = Fixture::new();
    f.enroll_fake("alice", None, false);
    let config = f.dir.path().join("quivox.toml");
    // Paths in the file are relative to it.
    std::fs::write(
        &config,
        "store = \"sqlite:store.sqlite\"\nkey_file = \"store.key\"\noperator = \"from-file\"\n",
    )
    .unwrap();
    let list = |cmd: &mut assert_cmd::Command| -> serde_json::Value {
        let out = cmd
            .arg("--json")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    };
    assert_eq!(
        list(quivox().args(["list", "--config"]).arg(&config))[0]["id"],
        "alice"
    );
    assert_eq!(
        list(quivox().arg("list").env("QUIVOX_CONFIG", &config))[0]["id"],
        "alice"
    );
    // Environment beats the file: an empty store elsewhere.
    let other = tempfile::tempdir().unwrap();
    let other_store = other.path().join("other.sqlite");
    drop(SqliteStore::open_sqlite(&other_store, Fixture::key()).unwrap());
    let env_store = format!("sqlite:{}", other_store.display());
    assert_eq!(
        list(
            quivox()
                .arg("list")
                .env("QUIVOX_CONFIG", &config)
                .env("QUIVOX_STORE", &env_store)
        ),
        serde_json::json!([])
    );
    // The flag beats the environment.
    assert_eq!(
        list(
            quivox()
                .args(["list", "--store"])
                .arg(format!("sqlite:{}", f.store.display()))
                .env("QUIVOX_CONFIG", &config)
                .env("QUIVOX_STORE", &env_store)
        )[0]["id"],
        "alice"
    );
    // The key from the environment (QUIVOX_STORE_KEY) beats the file's key_file.
    std::fs::write(
        &config,
        "store = \"sqlite:store.sqlite\"\nkey_file = \"absent.key\"\n",
    )
    .unwrap();
    quivox()
        .args(["list", "--config"])
        .arg(&config)
        .assert()
        .code(5);
    assert_eq!(
        list(
            quivox()
                .args(["list", "--config"])
                .arg(&config)
                .env("QUIVOX_STORE_KEY", KEY_HEX)
        )[0]["id"],
        "alice"
    );
    // The operator from the file reaches the audit log; the flag overrides it.
    std::fs::write(
        &config,
        "store = \"sqlite:store.sqlite\"\nkey_file = \"store.key\"\noperator = \"from-file\"\n",
    )
    .unwrap();
    quivox()
        .args(["link-number", "+15550100", "alice", "--config"])
        .arg(&config)
        .assert()
        .success();
    quivox()
        .args([
            "unlink-number",
            "+15550100",
            "alice",
            "--operator",
            "from-flag",
            "--config",
        ])
        .arg(&config)
        .assert()
        .success();
    let mut store = SqliteStore::open_sqlite(&f.store, Fixture::key()).unwrap();
    let ops: Vec<(AuditAction, String)> = store
        .audit_log(None)
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.operator))
        .collect();
    assert!(
        ops.contains(&(AuditAction::LinkNumber, "from-file".into())),
        "{ops:?}"
    );
    assert!(
        ops.contains(&(AuditAction::UnlinkNumber, "from-flag".into())),
        "{ops:?}"
    );
    // A bad config file: usage error naming the file; a missing one: not found.
    std::fs::write(&config, "store = [1, 2]\n").unwrap();
    quivox()
        .args(["list", "--config"])
        .arg(&config)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("quivox.toml"));
    quivox()
        .args(["list", "--config"])
        .arg(f.dir.path().join("absent.toml"))
        .assert()
        .code(3);
    // An unsupported store URL is a usage error.
    quivox()
        .args(["list", "--store", "mysql://h/db"])
        .assert()
        .code(2);
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.cmd(&["list"])
        .assert()
        .success()
        .stderr(predicate::str::contains("chmod").not());
    std::fs::set_permissions(&f.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    f.cmd(&["list"])
        .assert()
        .success()
        .stderr(predicate::str::contains("chmod 600"));
}

#[test]
fn version_in_both_forms() {
    quivox()
        .arg("version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("quivox "));
    let out = quivox()
        .args(["version", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(doc["version"].is_string());
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        vec!["list", "--no-such-flag"],
        vec!["show"],
        vec!["link-number", "+15550100"],
        vec!["enroll", "alice"],
        vec!["retention", "--max-idle-days"],
        vec!["identify", "--confidence", "high"],
    ] {
        quivox().args(&args).assert().code(2);
    }
}
