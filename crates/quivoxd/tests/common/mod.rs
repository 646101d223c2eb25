//! Shared helpers: a daemon with the demo fixture speakers enrolled, fixture audio.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use quivox::audio::ChannelPolicy;
use quivoxd::config::EnrollConfig;
use quivoxd::{Config, Daemon};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("audio-fixtures/demo").join(name)
}

/// (speaker, number) as in `quivox demo`.
pub const SPEAKERS: [(&str, &str); 4] = [
    ("so0457", "+44 20 7946 0001"),
    ("so1027", "+44 20 7946 0001"),
    ("so2061", "+33 1 23 45 67 89"),
    ("so2740", "+1 555 0100"),
];

/// A config on ephemeral loopback ports; `enroll` = enroll the fixture speakers at start.
pub fn config(enroll: bool) -> Config {
    let mut c = Config::default();
    c.model.path = repo().join("models/gmm-ubm.qvx");
    c.http.listen = "127.0.0.1:0".parse().unwrap();
    c.audiosocket.listen = "127.0.0.1:0".parse().unwrap();
    c.audiosocket.number_wait_ms = 1500;
    c.audiosocket.idle_timeout_ms = 3000;
    c.rtp.port_min = 0;
    c.rtp.port_max = 0;
    c.compute_threads = 2;
    c.shutdown_timeout_ms = 10_000;
    if enroll {
        c.enroll = SPEAKERS
            .iter()
            .map(|(s, n)| EnrollConfig {
                speaker: s.to_string(),
                wav: vec![fixture(&format!("{s}-enroll.wav"))],
                numbers: vec![n.to_string()],
            })
            .collect();
    }
    c
}

pub async fn daemon(enroll: bool) -> Daemon {
    init_logs();
    Daemon::start(config(enroll)).await.expect("daemon starts")
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("QUIVOXD_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// A fixture call as 16-bit samples (8 kHz).
pub fn call_pcm(speaker: &str) -> Vec<i16> {
    quivox::recipe::read_telephone_wav(
        &fixture(&format!("{speaker}-call.wav")),
        ChannelPolicy::RequireMono,
    )
    .unwrap()
    .to_i16()
    .unwrap()
}

/// Sleeps so that `frames_sent` 20-ms frames go out at `speedup` × real time.
pub async fn pace(start: tokio::time::Instant, frames_sent: usize, speedup: f64) {
    let due = start + Duration::from_secs_f64(frames_sent as f64 * 0.020 / speedup);
    tokio::time::sleep_until(due).await;
}

/// A deterministic UUID from a seed.
pub fn uuid(seed: u8) -> [u8; 16] {
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8 * 7 + 1);
    }
    u
}

/// Reads decision events of a call until the final one; returns them all.
pub async fn events_until_final(sse: &mut quivoxd::client::SseClient) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    loop {
        let e = sse
            .next_decision(Duration::from_secs(30))
            .await
            .expect("decision stream")
            .expect("stream open until the final decision");
        let fin = e["final"].as_bool().unwrap();
        all.push(e);
        if fin {
            return all;
        }
    }
}
