//! Sound-card ingress through cpal and ALSA: the default capture device is ALSA's `file` plugin
//! reading a fixture recording (raw S16_LE, 8 kHz, mono) over the `null` device, behind `plug`
//! (format/rate conversion to whatever cpal asks for). Configured with an `.asoundrc` in a
//! temporary `$HOME`. The capture is one call; its final decision must be `Identified`.
//!
//! Needs `--features soundcard` (libasound2-dev): `cargo test --release -p quivoxd --features soundcard --test soundcard`.
#![cfg(feature = "soundcard")]

mod common;

use std::time::Duration;

use common::*;
use quivoxd::client::SseClient;

#[test]
fn alsa_file_plugin_capture_is_identified() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("so0457-call.raw");
    let pcm = call_pcm("so0457");
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&raw, bytes).unwrap();
    std::fs::write(
        dir.path().join(".asoundrc"),
        format!(
            "pcm.!default {{\n  type plug\n  slave {{\n    pcm \"qvxfile\"\n    format S16_LE\n    rate 8000\n    channels 1\n  }}\n}}\n\
             pcm.qvxfile {{\n  type file\n  slave.pcm {{ type null }}\n  file \"/dev/null\"\n  infile \"{}\"\n  format \"raw\"\n}}\n",
            raw.display()
        ),
    )
    .unwrap();
    // Single-threaded so far: no other thread reads the environment.
    std::env::set_var("HOME", dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cfg = config(true);
        cfg.soundcard.enabled = true;
        cfg.soundcard.call_id = "line1".into();
        cfg.soundcard.caller_number = "+44 20 7946 0001".into();
        cfg.soundcard.duration_ms = (pcm.len() as u64) / 8;
        init_logs();
        let d = quivoxd::Daemon::start(cfg)
            .await
            .expect("daemon with sound card");
        let mut sse = SseClient::connect(d.http_addr(), "/v1/calls/line1/events")
            .await
            .unwrap();
        let events = tokio::time::timeout(Duration::from_secs(40), events_until_final(&mut sse))
            .await
            .unwrap();
        let last = events.last().unwrap();
        assert_eq!(last["kind"], "identified", "{events:?}");
        assert_eq!(last["speaker"], "so0457");
        d.shutdown().await;
    });
}
