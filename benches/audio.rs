//! Audio module throughput: G.711 decode/encode, WAV parsing, resampling.
//! Run: `cargo bench --bench audio`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quivox::audio::g711::{decode_ulaw_into, encode_ulaw_into};
use quivox::audio::wav::encode_wav_g711;
use quivox::audio::{read_wav_bytes, G711Law, ReadOptions, Resampler};
use std::hint::black_box;

fn test_signal(len: usize) -> Vec<i16> {
    (0..len)
        .map(|n| (12_000.0 * (n as f64 * 0.05).sin() + 3_000.0 * (n as f64 * 0.71).sin()) as i16)
        .collect()
}

fn g711(c: &mut Criterion) {
    let samples = test_signal(8_000 * 60);
    let mut codes = vec![0u8; samples.len()];
    let mut decoded = vec![0f32; samples.len()];
    let mut group = c.benchmark_group("g711_60s_8k");
    group.throughput(Throughput::Elements(samples.len() as u64));
    group.bench_function("encode_ulaw", |b| {
        b.iter(|| encode_ulaw_into(black_box(&samples), &mut codes).unwrap())
    });
    group.bench_function("decode_ulaw", |b| {
        b.iter(|| decode_ulaw_into(black_box(&codes), &mut decoded).unwrap())
    });
    group.finish();
}

fn wav(c: &mut Criterion) {
    let bytes = encode_wav_g711(&test_signal(8_000 * 60), G711Law::MuLaw).unwrap();
    let mut group = c.benchmark_group("wav");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("read_ulaw_60s", |b| {
        b.iter(|| read_wav_bytes(black_box(&bytes), &ReadOptions::default()).unwrap())
    });
    group.finish();
}

fn resampling(c: &mut Criterion) {
    let mut group = c.benchmark_group("resample_10s");
    group.sample_size(10);
    for (from_hz, to_hz) in [
        (16_000u32, 8_000u32),
        (44_100, 8_000),
        (48_000, 8_000),
        (8_000, 16_000),
    ] {
        let input: Vec<f32> = test_signal(from_hz as usize * 10)
            .into_iter()
            .map(f32::from)
            .collect();
        let mut resampler = Resampler::new(from_hz, to_hz).unwrap();
        let mut out = Vec::with_capacity(to_hz as usize * 11);
        group.throughput(Throughput::Elements(input.len() as u64));
        group.bench_function(format!("{from_hz}_to_{to_hz}"), |b| {
            b.iter(|| {
                out.clear();
                resampler.process(black_box(&input), &mut out).unwrap();
                resampler.flush(&mut out).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, g711, wav, resampling);
criterion_main!(benches);
