//! Enrollment-store throughput on SQLite (a temporary file, synchronous commits): one enrollment
//! transaction, one call count, and loading the whole population's models at engine start.
//! Run: `cargo bench --bench store`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use quivox::store::{
    Actor, Consent, Enrollment, ModelBlob, PhoneNumber, SpeakerId, SqliteStore, Store, StoreKey,
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

fn bench_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        SqliteStore::open_sqlite(&dir.path().join("bench.sqlite"), StoreKey::generate()).unwrap();
    let actor = Actor::new("bench", 1);
    for i in 0..POPULATION {
        store
            .enroll(&actor, &enrollment(&format!("pop-{i:05}"), "v1"))
            .unwrap();
    }
    let mut next = 0usize;
    c.bench_function("sqlite_enroll_one_40KiB_model", |b| {
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
    c.bench_function("sqlite_record_call", |b| {
        b.iter(|| store.record_call(&actor, &number, &caller).unwrap())
    });
    let mut group = c.benchmark_group("sqlite_load_models");
    group.sample_size(10);
    group.bench_function("population_1000_40KiB", |b| {
        b.iter(|| store.load_models("gmm", "v1").unwrap().len())
    });
    group.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
