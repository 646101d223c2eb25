//! Speaker-encoder speed: model load, a 7-s call embedded in one go, and the streaming latency
//! (time from the last 20 ms chunk of a 7-s call to its embedding). One thread.
//!
//! `cargo bench --bench embedding`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use quivox::audio::Waveform;
use quivox::embedding::{
    bundled_weights_path, EmbedderOptions, SpeakerEmbedder, SpeakerEncoder, StreamingEmbedder,
};

/// 20 ms at 8 kHz.
const CHUNK_SAMPLES: usize = 160;

fn fixture() -> Waveform {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/embedding/testdata/so0120-t00.wav");
    let mut reader = hound::WavReader::open(path).expect("fixture WAV");
    let sample_rate_hz = reader.spec().sample_rate;
    let samples = reader
        .samples::<i16>()
        .map(|s| f32::from(s.expect("sample")))
        .collect();
    Waveform {
        sample_rate_hz,
        samples,
    }
}

fn bench_embedding(c: &mut Criterion) {
    let wav = fixture();
    let encoder = Arc::new(SpeakerEncoder::from_file(bundled_weights_path()).expect("weights"));
    let mut group = c.benchmark_group("embedding");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));

    group.bench_function("load_weights", |b| {
        b.iter(|| black_box(SpeakerEncoder::from_file(bundled_weights_path()).expect("weights")))
    });

    let mut embedder =
        SpeakerEmbedder::new(encoder.clone(), EmbedderOptions::default()).expect("embedder");
    group.bench_function("batch_7s_call", |b| {
        b.iter(|| black_box(embedder.embed(&wav).expect("embed")))
    });

    let split = wav.samples.len() - CHUNK_SAMPLES;
    group.bench_function("streaming_last_chunk_to_embedding", |b| {
        b.iter_batched(
            || {
                let mut stream =
                    StreamingEmbedder::new(encoder.clone(), EmbedderOptions::default())
                        .expect("stream");
                for chunk in wav.samples[..split].chunks(CHUNK_SAMPLES) {
                    stream.accept_waveform(chunk).expect("accept");
                }
                stream
            },
            |mut stream| {
                stream
                    .accept_waveform(&wav.samples[split..])
                    .expect("accept");
                black_box(stream.finish().expect("finish"))
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("streaming_whole_7s_call", |b| {
        b.iter(|| {
            let mut stream = StreamingEmbedder::new(encoder.clone(), EmbedderOptions::default())
                .expect("stream");
            for chunk in wav.samples.chunks(CHUNK_SAMPLES) {
                stream.accept_waveform(chunk).expect("accept");
            }
            black_box(stream.finish().expect("finish"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_embedding);
criterion_main!(benches);
