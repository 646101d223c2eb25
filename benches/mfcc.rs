//! Front-end throughput on 60 s of 8 kHz speech, one thread:
//! MFCC 20 alone, and MFCC 20 + Δ + ΔΔ + sliding CMN + energy VAD (batch and 20-ms streaming).
//! Goal: ≥ 20 000× real time (≤ 3 ms per 60 s) for the full chain.
//! Times are the benchmark thread's CPU time (Linux schedstat), not wall time: the build
//! machine is shared, and wall time there mostly measures other jobs.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use quivox::features::{
    FeatureMatrix, FrontEnd, FrontEndOptions, MfccExtractor, MfccOptions, StreamingFrontEnd,
};

/// CPU time (user + system) of the calling thread in ns from /proc/thread-self/stat (Linux; clock
/// ticks, 10 ms, so criterion's samples must be long), so results stay meaningful on a machine
/// shared with other jobs; `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

/// Runs `routine` `iters` times and returns its thread CPU time (wall time if unavailable).
fn cpu_timed(iters: u64, mut routine: impl FnMut()) -> Duration {
    let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
    for _ in 0..iters {
        routine();
    }
    match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => Duration::from_nanos(b - a),
        _ => wall0.elapsed(),
    }
}

/// 60 s of speech: the fixture speech excerpts, looped.
fn speech_60s() -> Vec<f32> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio-fixtures");
    let mut one_pass = Vec::new();
    for name in ["speech_sc0cb74144_t00.wav", "speech_fsddgeorge_t00.wav"] {
        let mut reader = hound::WavReader::open(dir.join(name)).expect("fixture WAV");
        one_pass.extend(
            reader
                .samples::<i16>()
                .map(|s| f32::from(s.expect("sample"))),
        );
    }
    one_pass.iter().copied().cycle().take(60 * 8000).collect()
}

fn bench_front_end(c: &mut Criterion) {
    let audio = speech_60s();
    let mut group = c.benchmark_group("front_end_60s_speech");
    group.throughput(Throughput::Elements(audio.len() as u64));
    group.sample_size(20);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(8));

    let mut mfcc = MfccExtractor::new(MfccOptions::default()).expect("options");
    let mut feats = FeatureMatrix::new(mfcc.dim());
    let mut log_energy = Vec::new();
    group.bench_function("mfcc20", |b| {
        b.iter_custom(|iters| {
            cpu_timed(iters, || {
                mfcc.compute_into(black_box(&audio), &mut feats, &mut log_energy)
                    .expect("mfcc");
                black_box(feats.num_frames());
            })
        })
    });

    let mut front = FrontEnd::new(FrontEndOptions::default()).expect("options");
    let mut output = front.compute(&audio).expect("front end");
    group.bench_function("mfcc20_d_dd_slidingcmn_vad_batch", |b| {
        b.iter_custom(|iters| {
            cpu_timed(iters, || {
                front
                    .compute_into(black_box(&audio), &mut output)
                    .expect("front end");
                black_box(output.features.num_frames());
            })
        })
    });

    let mut stream = StreamingFrontEnd::new(FrontEndOptions::default()).expect("options");
    let mut out = FeatureMatrix::new(stream.dim());
    group.bench_function("mfcc20_d_dd_slidingcmn_vad_stream_20ms", |b| {
        b.iter_custom(|iters| {
            cpu_timed(iters, || {
                stream.reset();
                out.clear();
                for chunk in audio.chunks(160) {
                    stream.accept_waveform(chunk).expect("stream");
                    stream.pop_frames(&mut out).expect("pop");
                }
                stream.input_finished().expect("finish");
                stream.pop_frames(&mut out).expect("pop");
                black_box(out.num_frames());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench_front_end);
criterion_main!(benches);
