//! bf16 kernel speed on the speaker encoder's product shapes (`n` = 1024 gate rows): the
//! recurrent product of 1 to 6 and 8 windows (`k` = 256), an upper layer's input projection of 5
//! windows × 160 frames (`m` = 800, `k` = 256) and the bottom layer's projection of 468 distinct
//! mel frames (`k` = 40). One thread, thread CPU time (the machine is shared).
//!
//! `cargo bench -p quivox-bf16 --bench kernel`

use std::time::Duration;

#[path = "../../../benches/common/cpu_time.rs"]
mod cpu_time;
use cpu_time::cpu_time_of;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quivox_bf16::{Bf16Kernel, Bf16Panels, Bf16Scratch, RowStart};

fn bench_kernel(c: &mut Criterion) {
    let Some(kernel) = Bf16Kernel::detect() else {
        eprintln!("no AVX512_BF16 on this CPU: nothing to measure");
        return;
    };
    let mut group = c.benchmark_group("bf16_gemm");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let n = 1024;
    for (label, m, k) in [
        ("recurrent_1", 1, 256),
        ("recurrent_2", 2, 256),
        ("recurrent_3", 3, 256),
        ("recurrent_4", 4, 256),
        ("recurrent_5", 5, 256),
        ("recurrent_6", 6, 256),
        ("recurrent_8", 8, 256),
        ("projection_800", 800, 256),
        ("bottom_468", 468, 40),
    ] {
        // deterministic values in [-1, 1)
        let value = |i: usize| ((i * 7919 % 2003) as f32 / 1001.5) - 1.0;
        let w: Vec<f32> = (0..n * k).map(value).collect();
        let a: Vec<f32> = (0..m * k).map(|i| value(i + 17)).collect();
        let bias: Vec<f32> = (0..n).map(|i| value(i + 5)).collect();
        let panels = Bf16Panels::pack(&w, n, k, k).expect("shape");
        let mut out = vec![0.0f32; m * n];
        let mut scratch = Bf16Scratch::new(k);
        group.throughput(Throughput::Elements((m * n * k) as u64));
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                cpu_time_of(iters, || {
                    kernel
                        .gemm(
                            m,
                            &a,
                            k,
                            &panels,
                            &mut out,
                            n,
                            Some(RowStart::bias(&bias)),
                            &mut scratch,
                        )
                        .expect("sizes")
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_kernel);
criterion_main!(benches);
