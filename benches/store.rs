//! Enrollment-store throughput on SQLite (a temporary file, synchronous commits) and, when
//! `QUIVOX_TEST_PG_URL` is set, PostgreSQL: one enrollment
//! transaction, one call count, and loading the whole population's models at engine start.
//! Run: `cargo bench --bench store`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use quivox::store::{
    Actor, Consent, Enrollment, ModelBlob, PhoneNumber, PostgresStore, SpeakerId, SqliteStore,
    Store, StoreKey,
};

/// Size of one model blob in bytes (a 512-component, 20-dim mean supervector in f32 is 40 KiB).
const MODEL_BYTES: usize = 40 * 1024;
/// Speakers loaded by the `load_models` benchmark.
const POPULATION: usize = 1000;

/// An enrollment whose GMM was made with model set `model_version`.
fn enrollment(id: &str, model_version: &str) -> Enrollment {
    Enrollment {
        speaker: SpeakerId::from(id),
        display_name: id.to_string(),
        external_id: None,
        models: vec![ModelBlob {
            kind: "gmm".into(),
            model_version: model_version.into(),
            bytes: vec![0x5a; MODEL_BYTES],
        }],
        numbers: vec![PhoneNumber::parse("+44 20 7946 0001").unwrap()],
        consent: Consent {
            given_at: 1,
            method: "ivr-recorded".into(),
            operator: "bench".into(),
            reference: String::new(),
        },
        keep_audio: Vec::new(),
    }
}

/// Runs the three benchmarks on one store, named `{backend}_…`.
fn bench_backend(c: &mut Criterion, backend: &str, store: &mut dyn Store) {
    let actor = Actor::new("bench", 1);
    for i in 0..POPULATION {
        store
            .enroll(&actor, &enrollment(&format!("pop-{i:05}"), "v1"))
            .unwrap();
    }
    let mut next = 0usize;
    c.bench_function(&format!("{backend}_enroll_one_40KiB_model"), |b| {
        b.iter_batched(
            || {
                next += 1;
                // Another model version, so the population loaded below stays at 1000.
                enrollment(&format!("new-{next:08}"), "v0")
            },
            |e| store.enroll(&actor, &e).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let number = PhoneNumber::parse("+44 20 7946 0001").unwrap();
    let caller = SpeakerId::from("pop-00000");
    c.bench_function(&format!("{backend}_record_call"), |b| {
        b.iter(|| store.record_call(&actor, &number, &caller).unwrap())
    });
    let mut group = c.benchmark_group(format!("{backend}_load_models"));
    group.sample_size(10);
    group.bench_function("population_1000_40KiB", |b| {
        b.iter(|| store.load_models("gmm", "v1").unwrap().len())
    });
    group.finish();
}

fn bench_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite =
        SqliteStore::open_sqlite(&dir.path().join("bench.sqlite"), StoreKey::generate()).unwrap();
    bench_backend(c, "sqlite", &mut sqlite);
    // PostgreSQL too when a server is given (scripts/start-test-postgres.sh).
    if let Ok(url) = std::env::var("QUIVOX_TEST_PG_URL") {
        let schema = format!("bench_{}", std::process::id());
        let mut pg = PostgresStore::open_postgres(&url, &schema, StoreKey::generate()).unwrap();
        bench_backend(c, "postgres", &mut pg);
        drop(pg);
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .unwrap();
    }
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
