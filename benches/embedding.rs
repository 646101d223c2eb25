//! Speaker-encoder speed: model load, a 7-s call embedded in one go, and the streaming latency
//! (time from the last 20 ms chunk of a 7-s call to its embedding). One thread.
//!
//! Times are the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the
//! machine is shared with builds, and CPU time is what the goals (≤ 10 ms batch, ≤ 2 ms
//! streaming tail, ≤ 20 ms load, one core) are about.
//!
//! Default precision (bf16 products where the CPU has AVX512_BF16) and, suffixed `_f32`, the
//! same calls with f32 products, measured in the same run.
//!
//! `cargo bench --bench embedding`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::{cpu_time_of, thread_cpu_time};
use criterion::{criterion_group, criterion_main, Criterion};
use quivox::audio::Waveform;
use quivox::embedding::{
    bundled_weights_path, EmbedderOptions, EncoderPrecision, EncoderWeights, SpeakerEmbedder,
    SpeakerEncoder, StreamingEmbedder,
};

/// 20 ms at 8 kHz.
const CHUNK_SAMPLES: usize = 160;

fn fixture(name: &str) -> Waveform {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/embedding/testdata")
        .join(name);
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

fn stream_all_but_last_chunk(encoder: &Arc<SpeakerEncoder>, call: &Waveform) -> StreamingEmbedder {
    let split = call.samples.len() - CHUNK_SAMPLES;
    let mut stream =
        StreamingEmbedder::new(encoder.clone(), EmbedderOptions::default()).expect("stream");
    for chunk in call.samples[..split].chunks(CHUNK_SAMPLES) {
        stream.accept_waveform(chunk).expect("accept");
    }
    stream
}

fn bench_embedding(c: &mut Criterion) {
    // so0120-t00: 5 windows, all complete before the end of speech; so0457-t01: 6 windows, the
    // last one still open at the end (its zero-padded tail runs in finish): the worst case.
    let wav = fixture("so0120-t00.wav");
    let open_end = fixture("so0457-t01.wav");
    let encoder = Arc::new(SpeakerEncoder::from_file(bundled_weights_path()).expect("weights"));
    let weights = EncoderWeights::from_file(bundled_weights_path()).expect("weights");
    let encoder_f32 = Arc::new(
        SpeakerEncoder::with_precision(&weights, EncoderPrecision::F32).expect("f32 encoder"),
    );
    eprintln!("default encoder precision: {:?}", encoder.precision());
    let mut group = c.benchmark_group("embedding");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2));

    group.bench_function("load_weights", |b| {
        b.iter_custom(|iters| {
            cpu_time_of(iters, || {
                SpeakerEncoder::from_file(bundled_weights_path()).expect("weights")
            })
        })
    });

    let mut embedder =
        SpeakerEmbedder::new(encoder.clone(), EmbedderOptions::default()).expect("embedder");
    group.bench_function("batch_7s_call", |b| {
        b.iter_custom(|iters| cpu_time_of(iters, || embedder.embed(&wav).expect("embed")))
    });
    let mut embedder_f32 =
        SpeakerEmbedder::new(encoder_f32.clone(), EmbedderOptions::default()).expect("embedder");
    group.bench_function("batch_7s_call_f32", |b| {
        b.iter_custom(|iters| cpu_time_of(iters, || embedder_f32.embed(&wav).expect("embed")))
    });
    // without silence trimming the whole 7 s is kept: 8 partial windows, the most a 7-s call has
    let mut no_preprocess = EmbedderOptions::default();
    no_preprocess.preprocess = false;
    let mut untrimmed = SpeakerEmbedder::new(encoder.clone(), no_preprocess).expect("embedder");
    group.bench_function("batch_7s_call_8_windows", |b| {
        b.iter_custom(|iters| cpu_time_of(iters, || untrimmed.embed(&wav).expect("embed")))
    });

    for (label, call, encoder) in [
        ("streaming_last_chunk_to_embedding", &wav, &encoder),
        ("streaming_last_chunk_to_embedding_f32", &wav, &encoder_f32),
        ("streaming_last_chunk_open_window", &open_end, &encoder),
        (
            "streaming_last_chunk_open_window_f32",
            &open_end,
            &encoder_f32,
        ),
    ] {
        let last = &call.samples[call.samples.len() - CHUNK_SAMPLES..];
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut stream = stream_all_but_last_chunk(encoder, call);
                    let start = thread_cpu_time();
                    stream.accept_waveform(last).expect("accept");
                    black_box(stream.finish().expect("finish"));
                    total += thread_cpu_time() - start;
                }
                total
            })
        });
    }
    // CPU spent on a whole 7-s call streamed in 20-ms chunks (the work spread over the call)
    group.bench_function("streaming_whole_call", |b| {
        b.iter_custom(|iters| {
            cpu_time_of(iters, || {
                let mut stream =
                    StreamingEmbedder::new(encoder.clone(), EmbedderOptions::default())
                        .expect("stream");
                for chunk in wav.samples.chunks(CHUNK_SAMPLES) {
                    stream.accept_waveform(chunk).expect("accept");
                }
                stream.finish().expect("finish")
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_embedding);
criterion_main!(benches);
