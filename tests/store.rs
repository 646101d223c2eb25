//! The enrollment store's test suite, run on both backends: SQLite (a temporary file) and
//! PostgreSQL (a fresh schema on the server named by `QUIVOX_TEST_PG_URL`; start one with
//! `eval "$(bash scripts/start-test-postgres.sh)"`). Without that variable the PostgreSQL tests
//! fail when `CI` is set and are skipped with a message otherwise.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use quivox::store::{
    Actor, AuditAction, Consent, Enrollment, KeptAudio, ModelBlob, PhoneNumber, PostgresStore,
    RetentionPolicy, SpeakerId, SqliteOptions, SqliteStore, Store, StoreError, StoreKey,
};
use rand::{RngCore, SeedableRng};

fn key(byte: u8) -> StoreKey {
    StoreKey::from_bytes([byte; 32])
}

fn sid(s: &str) -> SpeakerId {
    SpeakerId::from(s)
}

fn num(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).unwrap()
}

fn at(now: i64) -> Actor {
    Actor::new("agent-7", now)
}

/// Deterministic pseudo-random bytes standing in for an engine model blob.
fn blob(seed: &str, len: usize) -> Vec<u8> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(h);
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    out
}

fn consent(now: i64) -> Consent {
    Consent {
        given_at: now,
        method: "ivr-recorded".into(),
        operator: "agent-7".into(),
        reference: "call 42".into(),
    }
}

fn enrollment(id: &str, numbers: &[&str], now: i64) -> Enrollment {
    Enrollment {
        speaker: sid(id),
        display_name: format!("Name of {id}"),
        external_id: Some(format!("crm-{id}")),
        models: vec![
            ModelBlob {
                kind: "gmm".into(),
                model_version: "v1".into(),
                bytes: blob(&format!("{id}/gmm/1"), 300),
            },
            ModelBlob {
                kind: "ivector".into(),
                model_version: "v1".into(),
                bytes: blob(&format!("{id}/ivector/1"), 64),
            },
        ],
        numbers: numbers.iter().map(|n| num(n)).collect(),
        consent: consent(now),
        keep_audio: Vec::new(),
    }
}

/// Where a test's store lives, with raw SQL access for tampering.
enum Fixture {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

static SCHEMA_COUNTER: AtomicU32 = AtomicU32::new(0);

impl Fixture {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        Fixture::Sqlite { _dir: dir, path }
    }

    /// `None` (skip) when no server is configured outside CI; panics in CI.
    fn postgres(test: &str) -> Option<Self> {
        match std::env::var("QUIVOX_TEST_PG_URL") {
            Ok(url) if !url.is_empty() => {
                let schema = format!(
                    "t{}_{}_{}",
                    std::process::id(),
                    SCHEMA_COUNTER.fetch_add(1, Ordering::Relaxed),
                    &test[..test.len().min(40)]
                );
                let fixture = Fixture::Postgres { url, schema };
                fixture.raw_batch("SELECT 1"); // fail early with a clear message if unreachable
                Some(fixture)
            }
            _ => {
                if std::env::var_os("CI").is_some() {
                    panic!(
                        "QUIVOX_TEST_PG_URL is not set but CI is: the PostgreSQL store tests must run in CI; \
                         run `eval \"$(bash scripts/start-test-postgres.sh)\"` first"
                    );
                }
                eprintln!(
                    "SKIPPED PostgreSQL store test {test}: QUIVOX_TEST_PG_URL is not set \
                     (run `eval \"$(bash scripts/start-test-postgres.sh)\"` to enable it)"
                );
                None
            }
        }
    }

    fn open(&self, key: StoreKey) -> Result<Box<dyn Store>, StoreError> {
        Ok(match self {
            Fixture::Sqlite { path, .. } => Box::new(SqliteStore::open_sqlite(path, key)?),
            Fixture::Postgres { url, schema } => {
                Box::new(PostgresStore::open_postgres(url, schema, key)?)
            }
        })
    }

    fn pg_client(url: &str, schema: &str) -> ::postgres::Client {
        let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO \"{schema}\""))
            .unwrap();
        client
    }

    /// Runs raw SQL (no parameters) behind the store's back.
    fn raw_batch(&self, sql: &str) {
        match self {
            Fixture::Sqlite { path, .. } => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Fixture::Postgres { url, schema } => {
                Self::pg_client(url, schema).batch_execute(sql).unwrap()
            }
        }
    }

    /// The single value of a raw query.
    fn raw_one<T>(&self, sql: &str) -> T
    where
        T: rusqlite::types::FromSql + for<'a> ::postgres::types::FromSql<'a>,
    {
        match self {
            Fixture::Sqlite { path, .. } => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Fixture::Postgres { url, schema } => Self::pg_client(url, schema)
                .query_one(sql, &[])
                .unwrap()
                .get(0),
        }
    }

    fn raw_int(&self, sql: &str) -> i64 {
        self.raw_one(sql)
    }

    fn raw_text(&self, sql: &str) -> String {
        self.raw_one(sql)
    }

    /// Flips one bit of a voice model's sealed blob.
    fn flip_model_bit(&self, speaker: &str, kind: &str, byte_index: usize) {
        let select = "SELECT sealed FROM voice_models WHERE speaker_id = $1 AND kind = $2";
        let update = "UPDATE voice_models SET sealed = $1 WHERE speaker_id = $2 AND kind = $3";
        match self {
            Fixture::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let mut sealed: Vec<u8> = conn
                    .query_row(
                        &select.replace('$', "?"),
                        rusqlite::params![speaker, kind],
                        |r| r.get(0),
                    )
                    .unwrap();
                sealed[byte_index] ^= 0x10;
                conn.execute(
                    &update.replace('$', "?"),
                    rusqlite::params![sealed, speaker, kind],
                )
                .unwrap();
            }
            Fixture::Postgres { url, schema } => {
                let mut client = Self::pg_client(url, schema);
                let mut sealed: Vec<u8> =
                    client.query_one(select, &[&speaker, &kind]).unwrap().get(0);
                sealed[byte_index] ^= 0x10;
                client.execute(update, &[&sealed, &speaker, &kind]).unwrap();
            }
        }
    }

    /// Row counts of every table plus the stored key fingerprint: a cheap picture of the content.
    fn snapshot(&self) -> Vec<String> {
        let mut out: Vec<String> = [
            "schema_version",
            "meta",
            "speakers",
            "voice_models",
            "number_links",
            "consents",
            "kept_audio",
            "audit_log",
        ]
        .iter()
        .map(|t| {
            format!(
                "{t}: {}",
                self.raw_int(&format!("SELECT COUNT(*) FROM {t}"))
            )
        })
        .collect();
        out.push(self.raw_text("SELECT value FROM meta WHERE name = 'key_fingerprint'"));
        out.push(self.raw_text("SELECT MAX(detail) FROM audit_log"));
        out
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Fixture::Postgres { url, schema } = self {
            if let Ok(mut client) = ::postgres::Client::connect(url, ::postgres::NoTls) {
                let _ =
                    client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        }
    }
}

/// Generates one `#[test]` per backend for each suite function `fn name(&Fixture)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::Fixture::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if let Some(fixture) = super::Fixture::postgres(stringify!($name)) {
                    super::$name(&fixture);
                }
            } )*
        }
    };
}

both_backends!(
    fresh_database_is_migrated_once,
    enroll_show_list_update,
    numbers_links_and_calls,
    load_models_filters_kind_and_version,
    forget_erases_everywhere,
    export_contains_everything_and_is_audited,
    audit_log_records_every_action,
    retention_purges_idle_speakers_and_old_audio,
    reopening_keeps_everything,
    moved_or_altered_blob_fails_to_decrypt,
    wrong_key_is_refused_and_nothing_written,
    rotate_key_then_reopen,
    newer_schema_is_refused,
    concurrent_gateways_share_one_population,
    number_links_follow_the_engine_directory,
);

fn fresh_database_is_migrated_once(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    assert!(store.list_speakers().unwrap().is_empty());
    let report = store.integrity_check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    drop(store);
    let mut store = f.open(key(1)).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    assert_eq!(f.raw_int("SELECT COUNT(*) FROM schema_version"), 1);
}

fn enroll_show_list_update(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    let s: &mut dyn Store = &mut *store;
    s.enroll(&at(100), &enrollment("bob", &["+44 20 7946 0001"], 100))
        .unwrap();
    s.enroll(
        &at(110),
        &enrollment("alice", &["+44 20 7946 0001", "07700 900123"], 110),
    )
    .unwrap();

    let ids: Vec<_> = s
        .list_speakers()
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![sid("alice"), sid("bob")]);

    let rec = s.show(&sid("alice")).unwrap();
    assert_eq!(rec.info.display_name, "Name of alice");
    assert_eq!(rec.info.external_id.as_deref(), Some("crm-alice"));
    assert_eq!(
        (
            rec.info.created_at,
            rec.info.updated_at,
            rec.info.last_call_at
        ),
        (110, 110, None)
    );
    let kinds: Vec<_> = rec
        .models
        .iter()
        .map(|m| (m.kind.as_str(), m.revision))
        .collect();
    assert_eq!(kinds, vec![("gmm", 1), ("ivector", 1)]);
    assert_eq!(rec.numbers.len(), 2);
    assert!(rec.numbers.iter().all(|l| l.call_count == 0));
    assert_eq!(rec.consents, vec![consent(110)]);
    assert_eq!(rec.kept_audio_count, 0);
    assert_eq!(
        s.model(&sid("alice"), "gmm").unwrap().bytes,
        blob("alice/gmm/1", 300)
    );

    // A second enrollment under the same id changes nothing.
    let audit_before = s.audit_log(None).unwrap().len();
    let err = s
        .enroll(&at(120), &enrollment("alice", &["+1 555 0100"], 120))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::AlreadyExists {
                what: "speaker",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.audit_log(None).unwrap().len(), audit_before);
    assert_eq!(s.show(&sid("alice")).unwrap(), rec);

    // Updates bump the revision and replace the bytes; a new kind starts at revision 1.
    let new_gmm = ModelBlob {
        kind: "gmm".into(),
        model_version: "v2".into(),
        bytes: blob("alice/gmm/2", 310),
    };
    assert_eq!(
        s.update_model(&at(200), &sid("alice"), &new_gmm).unwrap(),
        2
    );
    assert_eq!(
        s.update_model(&at(201), &sid("alice"), &new_gmm).unwrap(),
        3
    );
    let embedding = ModelBlob {
        kind: "embedding".into(),
        model_version: "ge2e-1".into(),
        bytes: blob("alice/emb", 1024),
    };
    assert_eq!(
        s.update_model(&at(202), &sid("alice"), &embedding).unwrap(),
        1
    );
    let gmm = s.model(&sid("alice"), "gmm").unwrap();
    assert_eq!(
        (gmm.info.revision, gmm.info.model_version.as_str()),
        (3, "v2")
    );
    assert_eq!((gmm.info.created_at, gmm.info.updated_at), (110, 201));
    assert_eq!(gmm.bytes, new_gmm.bytes);
    assert_eq!(s.show(&sid("alice")).unwrap().info.updated_at, 202);

    s.update_details(&at(300), &sid("bob"), "Robert", None)
        .unwrap();
    let bob = s.show(&sid("bob")).unwrap().info;
    assert_eq!(
        (bob.display_name.as_str(), bob.external_id),
        ("Robert", None)
    );

    // Bad input and unknown speakers get clear errors.
    let bad_kind = ModelBlob {
        kind: "GMM!".into(),
        ..new_gmm.clone()
    };
    assert!(matches!(
        s.update_model(&at(300), &sid("alice"), &bad_kind),
        Err(StoreError::InvalidInput {
            field: "model kind",
            ..
        })
    ));
    assert!(matches!(
        s.update_model(&at(300), &sid("nobody"), &new_gmm),
        Err(StoreError::NotFound {
            what: "speaker",
            ..
        })
    ));
    assert!(matches!(
        s.show(&sid("nobody")),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.model(&sid("bob"), "embedding"),
        Err(StoreError::NotFound {
            what: "voice model",
            ..
        })
    ));
    let mut empty_id = enrollment("x", &[], 1);
    empty_id.speaker = sid("");
    assert!(matches!(
        s.enroll(&at(1), &empty_id),
        Err(StoreError::InvalidInput { .. })
    ));
    let report = s.integrity_check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.speakers, report.models), (2, 5));
}

fn numbers_links_and_calls(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    let s: &mut dyn Store = &mut *store;
    let home = num("+33 1 23 45 67 89");
    let mobile = num("+33 6 00 00 00 01");
    let office = num("+33 4 00 00 00 02");
    // A household shares `home`; alice also has a mobile.
    s.enroll(
        &at(1),
        &enrollment("alice", &["+33 1 23 45 67 89", "+33 6 00 00 00 01"], 1),
    )
    .unwrap();
    s.enroll(&at(1), &enrollment("bob", &["+33 1 23 45 67 89"], 1))
        .unwrap();

    for i in 1..=3 {
        assert_eq!(
            s.record_call(&at(10 + i), &home, &sid("alice")).unwrap(),
            i as u64
        );
    }
    assert_eq!(s.record_call(&at(20), &home, &sid("bob")).unwrap(), 1);
    // A call from a number not yet linked links it.
    assert_eq!(s.record_call(&at(21), &office, &sid("bob")).unwrap(), 1);
    assert_eq!(s.show(&sid("bob")).unwrap().info.last_call_at, Some(21));
    assert!(matches!(
        s.record_call(&at(22), &home, &sid("nobody")),
        Err(StoreError::NotFound { .. })
    ));

    let mut expected = vec![
        (home.clone(), sid("alice"), 3),
        (home.clone(), sid("bob"), 1),
        (mobile.clone(), sid("alice"), 0),
        (office.clone(), sid("bob"), 1),
    ];
    expected.sort();
    assert_eq!(s.load_number_links().unwrap(), expected);

    assert!(
        !s.link_number(&at(30), &home, &sid("alice")).unwrap(),
        "already linked"
    );
    assert!(s.link_number(&at(30), &office, &sid("alice")).unwrap());
    s.unlink_number(&at(31), &mobile, &sid("alice")).unwrap();
    assert!(matches!(
        s.unlink_number(&at(32), &mobile, &sid("alice")),
        Err(StoreError::NotFound {
            what: "number link",
            ..
        })
    ));
    // Relinking keeps nothing of the old count; the shared link's count is untouched.
    let links = s.load_number_links().unwrap();
    assert!(!links.iter().any(|(n, _, _)| n == &mobile));
    assert!(links.contains(&(home.clone(), sid("alice"), 3)));
    assert!(links.contains(&(office.clone(), sid("alice"), 0)));

    // The engine's number directory accepts the loaded links as they are.
    let mut directory = quivox::engine::NumberDirectory::new();
    for (number, speaker, _) in links {
        directory.link(number, speaker);
    }
}

fn load_models_filters_kind_and_version(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    let s: &mut dyn Store = &mut *store;
    for id in ["carol", "alice", "bob"] {
        s.enroll(&at(1), &enrollment(id, &[], 1)).unwrap();
    }
    let v2 = ModelBlob {
        kind: "gmm".into(),
        model_version: "v2".into(),
        bytes: blob("bob/gmm/v2", 50),
    };
    s.update_model(&at(2), &sid("bob"), &v2).unwrap();
    let v1 = s.load_models("gmm", "v1").unwrap();
    assert_eq!(
        v1,
        vec![
            (sid("alice"), blob("alice/gmm/1", 300)),
            (sid("carol"), blob("carol/gmm/1", 300)),
        ]
    );
    assert_eq!(
        s.load_models("gmm", "v2").unwrap(),
        vec![(sid("bob"), v2.bytes)]
    );
    assert_eq!(s.load_models("ivector", "v1").unwrap().len(), 3);
    assert!(s.load_models("embedding", "v1").unwrap().is_empty());
}

fn audio(recorded_at: i64, seed: &str) -> KeptAudio {
    KeptAudio {
        recorded_at,
        format: "pcm_s16le_8000".into(),
        bytes: blob(seed, 1600),
    }
}

fn forget_erases_everywhere(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    let s: &mut dyn Store = &mut *store;
    let mut e = enrollment("alice", &["+1 555 0100", "+1 555 0199"], 1);
    e.keep_audio = vec![audio(1, "alice/audio/1")];
    s.enroll(&at(1), &e).unwrap();
    s.enroll(&at(1), &enrollment("bob", &["+1 555 0100"], 1))
        .unwrap();
    s.record_call(&at(5), &num("+1 555 0100"), &sid("alice"))
        .unwrap();
    s.keep_audio(&at(6), &sid("alice"), &audio(6, "alice/audio/2"))
        .unwrap();
    s.add_consent(
        &at(7),
        &sid("alice"),
        &Consent {
            method: "written".into(),
            ..consent(7)
        },
    )
    .unwrap();

    s.forget(&Actor::new("dpo", 50), &sid("alice")).unwrap();
    assert!(matches!(
        s.show(&sid("alice")),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.forget(&at(51), &sid("alice")),
        Err(StoreError::NotFound { .. })
    ));
    for table in ["voice_models", "number_links", "consents", "kept_audio"] {
        assert_eq!(
            f.raw_int(&format!(
                "SELECT COUNT(*) FROM {table} WHERE speaker_id = 'alice'"
            )),
            0,
            "{table}"
        );
    }
    assert_eq!(
        f.raw_int("SELECT COUNT(*) FROM speakers WHERE id = 'alice'"),
        0
    );
    // Only the audit log still names alice, and none of its lines holds her numbers or data.
    let lines = s.audit_log(Some(&sid("alice"))).unwrap();
    let last = lines.last().unwrap();
    assert_eq!(
        (last.action, last.operator.as_str(), last.at),
        (AuditAction::Erase, "dpo", 50)
    );
    for line in &lines {
        assert!(!line.detail.contains("555"), "{line:?}");
    }
    assert!(lines[..lines.len() - 1]
        .iter()
        .all(|l| l.detail.starts_with("[redacted")));
    // bob is untouched, including the shared number.
    assert_eq!(
        s.load_number_links().unwrap(),
        vec![(num("+1 555 0100"), sid("bob"), 0)]
    );
    assert_eq!(s.load_models("gmm", "v1").unwrap().len(), 1);
    let report = s.integrity_check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.speakers, report.kept_audio), (1, 0));
}

fn export_contains_everything_and_is_audited(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    let s: &mut dyn Store = &mut *store;
    let mut e = enrollment("alice", &["+1 555 0100"], 1);
    e.keep_audio = vec![audio(1, "alice/audio/1")];
    s.enroll(&at(1), &e).unwrap();
    s.record_call(&at(2), &num("+1 555 0100"), &sid("alice"))
        .unwrap();

    let full = s.export(&at(10), &sid("alice"), true).unwrap();
    assert!(full.biometrics_included);
    assert_eq!(full.speaker.id, sid("alice"));
    let models: Vec<_> = full
        .models
        .iter()
        .map(|m| (m.info.kind.clone(), m.bytes.clone().unwrap()))
        .collect();
    assert_eq!(
        models,
        vec![
            ("gmm".to_string(), blob("alice/gmm/1", 300)),
            ("ivector".to_string(), blob("alice/ivector/1", 64)),
        ]
    );
    assert_eq!(full.kept_audio, e.keep_audio);
    assert_eq!(full.numbers.len(), 1);
    assert_eq!(full.numbers[0].call_count, 1);
    assert_eq!(full.consents, vec![consent(1)]);
    let actions: Vec<_> = full.audit.iter().map(|a| a.action).collect();
    assert_eq!(actions, vec![AuditAction::Enroll, AuditAction::Export]);
    // Serialisable, and back.
    let json = serde_json::to_string(&full).unwrap();
    let back: quivox::store::SpeakerExport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, full);

    let lean = s.export(&at(11), &sid("alice"), false).unwrap();
    assert!(!lean.biometrics_included);
    assert!(lean.models.iter().all(|m| m.bytes.is_none()));
    assert!(lean.kept_audio.iter().all(|a| a.bytes.is_empty()));
    assert_eq!(lean.kept_audio.len(), 1);
    assert!(matches!(
        s.export(&at(12), &sid("nobody"), true),
        Err(StoreError::NotFound { .. })
    ));
}

fn audit_log_records_every_action(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    let s: &mut dyn Store = &mut *store;
    let n = num("+49 30 123456");
    s.enroll(&at(1), &enrollment("alice", &[], 1)).unwrap();
    s.link_number(&at(2), &n, &sid("alice")).unwrap();
    s.log_event(
        &at(3),
        AuditAction::Identify,
        Some(&sid("alice")),
        "llr 7.2",
    )
    .unwrap();
    s.log_event(&at(4), AuditAction::Verify, Some(&sid("alice")), "accepted")
        .unwrap();
    s.update_model(
        &at(5),
        &sid("alice"),
        &ModelBlob {
            kind: "gmm".into(),
            model_version: "v1".into(),
            bytes: vec![1, 2, 3],
        },
    )
    .unwrap();
    s.unlink_number(&at(6), &n, &sid("alice")).unwrap();
    s.export(&at(7), &sid("alice"), false).unwrap();
    s.rotate_key(&at(8), key(2)).unwrap();
    s.set_retention(&RetentionPolicy {
        max_idle_s: Some(10),
        max_audio_age_s: None,
    })
    .unwrap();
    s.purge_expired(&at(100)).unwrap();
    let log = s.audit_log(None).unwrap();
    let got: Vec<_> = log
        .iter()
        .map(|l| (l.at, l.action, l.speaker.clone().map(|s| s.0)))
        .collect();
    let a = || Some("alice".to_string());
    assert_eq!(
        got,
        vec![
            (1, AuditAction::Enroll, a()),
            (2, AuditAction::LinkNumber, a()),
            (3, AuditAction::Identify, a()),
            (4, AuditAction::Verify, a()),
            (5, AuditAction::Update, a()),
            (6, AuditAction::UnlinkNumber, a()),
            (7, AuditAction::Export, a()),
            (8, AuditAction::RotateKey, None),
            (100, AuditAction::Purge, a()),
        ]
    );
    assert!(log.windows(2).all(|w| w[0].id < w[1].id));
    assert!(log.iter().all(|l| l.operator == "agent-7"));
    assert_eq!(s.audit_log(Some(&sid("bob"))).unwrap(), vec![]);
}

fn retention_purges_idle_speakers_and_old_audio(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    let s: &mut dyn Store = &mut *store;
    assert_eq!(s.retention().unwrap(), RetentionPolicy::default());
    assert!(matches!(
        s.set_retention(&RetentionPolicy {
            max_idle_s: Some(-5),
            max_audio_age_s: None
        }),
        Err(StoreError::InvalidInput { .. })
    ));
    let policy = RetentionPolicy {
        max_idle_s: Some(100),
        max_audio_age_s: Some(50),
    };
    s.set_retention(&policy).unwrap();

    s.enroll(&at(0), &enrollment("alice", &["+1 555 0001"], 0))
        .unwrap(); // idle since 0
    s.enroll(&at(0), &enrollment("bob", &["+1 555 0002"], 0))
        .unwrap();
    s.record_call(&at(90), &num("+1 555 0002"), &sid("bob"))
        .unwrap(); // active at 90
    let mut carol = enrollment("carol", &[], 80); // updated at 80
    carol.keep_audio = vec![audio(10, "carol/a/10"), audio(120, "carol/a/120")];
    s.enroll(&at(80), &carol).unwrap();
    let mut dave = enrollment("dave", &[], 0);
    dave.keep_audio = vec![audio(0, "dave/a/0")];
    s.enroll(&at(0), &dave).unwrap(); // idle, with audio: erased as a whole

    // Nothing expires at exactly the limit: at t=60 carol's recording from t=10 is exactly 50 s
    // old (kept) while dave's from t=0 is older (deleted).
    let report = s.purge_expired(&at(60)).unwrap();
    assert_eq!((report.speakers_erased.len(), report.audio_deleted), (0, 1));
    // At t=100 alice and dave have been idle exactly 100 s (kept); carol's t=10 recording goes.
    let report = s.purge_expired(&at(100)).unwrap();
    assert_eq!((report.speakers_erased.len(), report.audio_deleted), (0, 1));
    let report = s.purge_expired(&at(150)).unwrap();
    assert_eq!(report.speakers_erased, vec![sid("alice"), sid("dave")]);
    assert_eq!(report.audio_deleted, 0);
    let ids: Vec<_> = s
        .list_speakers()
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![sid("bob"), sid("carol")]);
    assert_eq!(
        s.kept_audio(&sid("carol")).unwrap(),
        vec![audio(120, "carol/a/120")]
    );
    let purges = s
        .audit_log(None)
        .unwrap()
        .into_iter()
        .filter(|l| l.action == AuditAction::Purge)
        .count();
    assert_eq!(purges, 4);
    // Idempotent.
    assert_eq!(s.purge_expired(&at(150)).unwrap(), Default::default());
    drop(store);
    let mut store = f.open(key(1)).unwrap();
    assert_eq!(store.retention().unwrap(), policy);
}

fn reopening_keeps_everything(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    let mut e = enrollment("alice", &["+1 555 0100"], 1);
    e.keep_audio = vec![audio(3, "alice/a")];
    store.enroll(&at(1), &e).unwrap();
    store
        .record_call(&at(2), &num("+1 555 0100"), &sid("alice"))
        .unwrap();
    let record = store.show(&sid("alice")).unwrap();
    let log = store.audit_log(None).unwrap();
    drop(store);
    let mut store = f.open(key(1)).unwrap();
    assert_eq!(store.show(&sid("alice")).unwrap(), record);
    assert_eq!(store.audit_log(None).unwrap(), log);
    assert_eq!(store.kept_audio(&sid("alice")).unwrap(), e.keep_audio);
    assert_eq!(
        store.model(&sid("alice"), "ivector").unwrap().bytes,
        e.models[1].bytes
    );
    assert!(store.integrity_check().unwrap().is_ok());
}

fn moved_or_altered_blob_fails_to_decrypt(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    for id in ["alice", "bob", "carol"] {
        store.enroll(&at(1), &enrollment(id, &[], 1)).unwrap();
    }
    assert!(store.integrity_check().unwrap().is_ok());

    // alice's GMM moved to bob: the bytes are intact, the place is not.
    f.raw_batch(
        "DELETE FROM voice_models WHERE speaker_id = 'bob' AND kind = 'gmm';
         UPDATE voice_models SET speaker_id = 'bob' WHERE speaker_id = 'alice' AND kind = 'gmm';",
    );
    let err = store.model(&sid("bob"), "gmm").unwrap_err();
    match &err {
        StoreError::DecryptionFailed { speaker, kind } => {
            assert_eq!((speaker, kind.as_str()), (&sid("bob"), "gmm"));
        }
        other => panic!("expected DecryptionFailed, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("bob") && message.contains("gmm"),
        "{message}"
    );
    assert!(matches!(
        store.load_models("gmm", "v1"),
        Err(StoreError::DecryptionFailed { .. })
    ));

    // carol's ivector relabelled with another model version.
    f.raw_batch("UPDATE voice_models SET model_version = 'v9' WHERE speaker_id = 'carol' AND kind = 'ivector'");
    assert!(matches!(
        store.model(&sid("carol"), "ivector"),
        Err(StoreError::DecryptionFailed { .. })
    ));

    // One bit flipped in carol's GMM ciphertext, and one in its nonce.
    assert_eq!(
        store.model(&sid("carol"), "gmm").unwrap().bytes,
        blob("carol/gmm/1", 300)
    );
    f.flip_model_bit("carol", "gmm", 40);
    assert!(matches!(
        store.model(&sid("carol"), "gmm"),
        Err(StoreError::DecryptionFailed { .. })
    ));
    f.flip_model_bit("bob", "ivector", 3);
    assert!(matches!(
        store.model(&sid("bob"), "ivector"),
        Err(StoreError::DecryptionFailed { .. })
    ));

    let report = store.integrity_check().unwrap();
    assert_eq!(report.problems.len(), 4, "{:?}", report.problems);
    assert!(report.problems.iter().all(|p| p.contains("decryption")));
}

fn wrong_key_is_refused_and_nothing_written(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    store
        .enroll(&at(1), &enrollment("alice", &["+1 555 0100"], 1))
        .unwrap();
    drop(store);
    let before = f.snapshot();
    let err = f
        .open(key(2))
        .err()
        .expect("opening with the wrong key must fail");
    match &err {
        StoreError::WrongKey { expected, given } => {
            assert_eq!(expected, &key(1).fingerprint());
            assert_eq!(given, &key(2).fingerprint());
        }
        other => panic!("expected WrongKey, got {other}"),
    }
    assert!(err.to_string().contains("wrong store key"));
    assert_eq!(f.snapshot(), before);
    let mut store = f.open(key(1)).unwrap();
    assert_eq!(
        store.model(&sid("alice"), "gmm").unwrap().bytes,
        blob("alice/gmm/1", 300)
    );
}

fn rotate_key_then_reopen(f: &Fixture) {
    let mut store = f.open(key(1)).unwrap();
    let mut e = enrollment("alice", &[], 1);
    e.keep_audio = vec![audio(1, "alice/a/1"), audio(2, "alice/a/2")];
    store.enroll(&at(1), &e).unwrap();
    store.enroll(&at(1), &enrollment("bob", &[], 1)).unwrap();
    // More recordings than one batch of the re-encryption walk.
    let bob_audio: Vec<KeptAudio> = (0..70)
        .map(|i| audio(100 + i, &format!("bob/a/{i}")))
        .collect();
    for a in &bob_audio {
        store.keep_audio(&at(2), &sid("bob"), a).unwrap();
    }
    let sealed_before = f.raw_int("SELECT COUNT(*) FROM voice_models");
    store.rotate_key(&at(5), key(3)).unwrap();
    // Still usable in the same session.
    assert_eq!(
        store.model(&sid("bob"), "gmm").unwrap().bytes,
        blob("bob/gmm/1", 300)
    );
    drop(store);

    assert!(matches!(f.open(key(1)), Err(StoreError::WrongKey { .. })));
    let mut store = f.open(key(3)).unwrap();
    assert_eq!(
        f.raw_int("SELECT COUNT(*) FROM voice_models"),
        sealed_before
    );
    assert_eq!(
        store.model(&sid("alice"), "gmm").unwrap().bytes,
        e.models[0].bytes
    );
    assert_eq!(store.kept_audio(&sid("alice")).unwrap(), e.keep_audio);
    assert_eq!(store.load_models("ivector", "v1").unwrap().len(), 2);
    let report = store.integrity_check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!((report.models, report.kept_audio), (4, 72));
    assert_eq!(store.kept_audio(&sid("bob")).unwrap(), bob_audio);
    let last = store.audit_log(None).unwrap().pop().unwrap();
    assert_eq!(last.action, AuditAction::RotateKey);
    assert!(last.detail.contains(&key(3).fingerprint()));
}

fn newer_schema_is_refused(f: &Fixture) {
    drop(f.open(key(1)).unwrap());
    f.raw_batch("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)");
    match f.open(key(1)) {
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported: 1,
        }) => {}
        Err(other) => panic!("expected SchemaTooNew, got {other}"),
        Ok(_) => panic!("expected SchemaTooNew, the store opened"),
    }
}

/// A seeded random sequence of link / unlink / record_call / forget / re-enroll, applied both to
/// the store and to the engine's in-memory `NumberDirectory` (the oracle): after every step the
/// store's links equal the directory's.
fn number_links_follow_the_engine_directory(f: &Fixture) {
    use quivox::engine::NumberDirectory;
    use rand::Rng;
    let mut store = f.open(key(1)).unwrap();
    let s: &mut dyn Store = &mut *store;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261123);
    let people = ["ann", "ben", "cid", "dee", "eve"];
    let numbers: Vec<PhoneNumber> = (0..4)
        .map(|i| num(&format!("+44 161 000 000{i}")))
        .collect();
    let mut directory = NumberDirectory::new();
    let mut enrolled = [false; 5];
    for step in 0..150i64 {
        let p = rng.random_range(0..people.len());
        let who = sid(people[p]);
        let number = numbers[rng.random_range(0..numbers.len())].clone();
        let actor = at(step);
        if !enrolled[p] {
            s.enroll(&actor, &enrollment(people[p], &[], step)).unwrap();
            enrolled[p] = true;
            continue;
        }
        match rng.random_range(0..10) {
            0..=1 => {
                let was_new = s.link_number(&actor, &number, &who).unwrap();
                let existed = directory.members(&number).any(|(m, _)| m == &who);
                assert_eq!(was_new, !existed);
                directory.link(number, who);
            }
            2 => {
                let existed = directory.unlink(&number, &who);
                assert_eq!(s.unlink_number(&actor, &number, &who).is_ok(), existed);
            }
            3 => {
                s.forget(&actor, &who).unwrap();
                directory.remove_speaker(&who);
                enrolled[p] = false;
            }
            _ => {
                let count = s.record_call(&actor, &number, &who).unwrap();
                directory.record_call(number.clone(), who.clone());
                let expected = directory
                    .members(&number)
                    .find(|(m, _)| *m == &who)
                    .unwrap()
                    .1;
                assert_eq!(count, expected);
            }
        }
        let expected: Vec<_> = directory
            .links()
            .map(|(n, m, c)| (n.clone(), m.clone(), c))
            .collect();
        assert_eq!(
            s.load_number_links().unwrap(),
            expected,
            "after step {step}"
        );
    }
    assert!(s.integrity_check().unwrap().is_ok());
}

/// Several gateways open the same fresh store at once (the migration runs once), then count calls
/// concurrently: no increment is lost.
fn concurrent_gateways_share_one_population(f: &Fixture) {
    let gateways: Vec<Box<dyn Store>> = std::thread::scope(|scope| {
        let opening: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| f.open(key(1)).unwrap()))
            .collect();
        opening.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(f.raw_int("SELECT COUNT(*) FROM schema_version"), 1);
    let mut admin = f.open(key(1)).unwrap();
    admin
        .enroll(&at(1), &enrollment("alice", &["+1 555 0100"], 1))
        .unwrap();
    admin
        .enroll(&at(1), &enrollment("bob", &["+1 555 0100"], 1))
        .unwrap();
    let calls_per_gateway = 40;
    let barrier = std::sync::Barrier::new(3);
    let enroll_results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = gateways
            .into_iter()
            .enumerate()
            .map(|(g, mut store)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let actor = Actor::new(&format!("gateway-{g}"), 10);
                    // All three enroll the same new caller at once: one wins.
                    barrier.wait();
                    let enrolled = store.enroll(&actor, &enrollment("carol", &[], 10));
                    for i in 0..calls_per_gateway {
                        let who = if i % 4 == 0 { "bob" } else { "alice" };
                        store
                            .record_call(&actor, &num("+1 555 0100"), &sid(who))
                            .unwrap();
                    }
                    enrolled
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(
        enroll_results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{enroll_results:?}"
    );
    for result in &enroll_results {
        if let Err(e) = result {
            assert!(
                matches!(
                    e,
                    StoreError::AlreadyExists {
                        what: "speaker",
                        ..
                    }
                ),
                "{e}"
            );
        }
    }
    assert_eq!(
        admin.load_number_links().unwrap(),
        vec![
            (num("+1 555 0100"), sid("alice"), 3 * 30),
            (num("+1 555 0100"), sid("bob"), 3 * 10),
        ]
    );
    assert!(admin.integrity_check().unwrap().is_ok());
}

// ---------------------------------------------------------------------------------------------
// Crash safety (SQLite): a child process enrolls in a loop and is killed with SIGKILL.

const CHILD_DB_VAR: &str = "QUIVOX_STORE_CRASH_CHILD_DB";
const CHILD_PREFIX_VAR: &str = "QUIVOX_STORE_CRASH_CHILD_PREFIX";
/// "1": durable commits (synchronous = FULL); "0": synchronous = NORMAL. Both must survive SIGKILL.
const CHILD_DURABLE_VAR: &str = "QUIVOX_STORE_CRASH_CHILD_DURABLE";
const DONE_MARK: &str = "ENROLLED ";

fn crash_enrollment(id: &str) -> Enrollment {
    let mut e = enrollment(id, &["+1 555 0100"], 1);
    e.models[0].bytes = blob(id, 8192);
    e.keep_audio = vec![audio(1, &format!("{id}/audio"))];
    e
}

/// The id on a progress line of the child. The mark may follow libtest's own "test … " text on
/// the same line.
fn done_id(line: &str) -> Option<String> {
    line.find(DONE_MARK)
        .map(|at| line[at + DONE_MARK.len()..].trim().to_string())
}

/// Child mode: does nothing unless started by `sqlite_survives_sigkill_during_enrollment`.
#[test]
fn crash_child_enrolls_until_killed() {
    let (Some(db), Ok(prefix)) = (
        std::env::var_os(CHILD_DB_VAR),
        std::env::var(CHILD_PREFIX_VAR),
    ) else {
        return;
    };
    let options = SqliteOptions {
        durable_commits: std::env::var(CHILD_DURABLE_VAR).as_deref() != Ok("0"),
        ..SqliteOptions::default()
    };
    let mut store =
        SqliteStore::open_sqlite_with(std::path::Path::new(&db), key(9), &options).unwrap();
    let mut stdout = std::io::stdout();
    for i in 0..1_000_000 {
        let id = format!("{prefix}-{i:06}");
        store.enroll(&at(i), &crash_enrollment(&id)).unwrap();
        store
            .record_call(&at(i), &num("+1 555 0100"), &sid(&id))
            .unwrap();
        writeln!(stdout, "{DONE_MARK}{id}").unwrap();
        stdout.flush().unwrap();
    }
}

#[test]
fn sqlite_survives_sigkill_during_enrollment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.sqlite");
    let mut all_done = Vec::new();
    for round in 0..4 {
        let prefix = format!("round{round}");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_child_enrolls_until_killed",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB_VAR, &db)
            .env(CHILD_PREFIX_VAR, &prefix)
            .env(CHILD_DURABLE_VAR, if round % 2 == 0 { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let kill_after = 5 + 4 * round;
        let mut done = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while done.len() < kill_after {
            let line = lines
                .next()
                .expect("the child stopped before being killed")
                .unwrap();
            if let Some(id) = done_id(&line) {
                done.push(id);
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Lines written before the kill that we had not read yet are completed enrollments too.
        for line in lines.map_while(Result::ok) {
            if let Some(id) = done_id(&line) {
                done.push(id);
            }
        }

        let mut store = SqliteStore::open_sqlite(&db, key(9)).unwrap();
        let report = store.integrity_check().unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.problems);
        let present: Vec<SpeakerId> = store
            .list_speakers()
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .filter(|id| id.0.starts_with(&format!("{prefix}-")))
            .collect();
        for id in &done {
            let speaker = sid(id);
            assert!(
                present.contains(&speaker),
                "round {round}: {id} was reported done but is missing"
            );
            let e = crash_enrollment(id);
            assert_eq!(
                store.model(&speaker, "gmm").unwrap().bytes,
                e.models[0].bytes
            );
            assert_eq!(store.kept_audio(&speaker).unwrap(), e.keep_audio);
        }
        // At most one enrollment committed after the last line the child managed to print; it is
        // whole (enrollment is one transaction) or absent.
        assert!(
            present.len() == done.len() || present.len() == done.len() + 1,
            "round {round}: {} present, {} reported: {present:?} vs {done:?}",
            present.len(),
            done.len()
        );
        for speaker in &present {
            let record = store.show(speaker).unwrap();
            assert_eq!(
                (
                    record.models.len(),
                    record.consents.len(),
                    record.kept_audio_count
                ),
                (2, 1, 1)
            );
        }
        all_done.extend(done);
    }
    let mut store = SqliteStore::open_sqlite(&db, key(9)).unwrap();
    let speakers = store.list_speakers().unwrap();
    assert!(speakers.len() >= all_done.len());
    assert!(all_done.len() >= 5 + 9 + 13 + 17);
}
