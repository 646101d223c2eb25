//! Sound-card ingress (cargo feature `soundcard`): captures an input device through cpal (ALSA on
//! Linux) as one long call, for small installations with an analogue line interface.
//!
//! The cpal callback only downmixes to mono and hands blocks to a bounded queue (never blocks:
//! a full queue drops the block and counts it); a converter thread resamples to 8 kHz, cuts
//! 20-ms frames and feeds the call.

use std::sync::mpsc::{sync_channel, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use quivox::audio::Resampler;

use crate::calls::{State, Transport};
use crate::metrics::DropReason;

/// Opens the configured device and starts capturing into a new call (`[soundcard] call_id`).
/// Returns once the stream runs; capture stops at `duration_ms`, at shutdown, or when the call is
/// ended over HTTP.
pub fn start(state: Arc<State>) -> anyhow::Result<()> {
    let cfg = state.config.soundcard.clone();
    let host = cpal::default_host();
    let device = if cfg.device.is_empty() {
        host.default_input_device()
            .context("sound card: no default input device")?
    } else {
        host.input_devices()?
            .find(|d| d.name().is_ok_and(|n| n == cfg.device))
            .with_context(|| format!("sound card: no input device named {:?}", cfg.device))?
    };
    let name = device.name().unwrap_or_default();
    let supported = device
        .default_input_config()
        .with_context(|| format!("sound card {name}: no input configuration"))?;
    let rate = supported.sample_rate().0;
    let channels = supported.channels() as usize;
    let format = supported.sample_format();
    let config: cpal::StreamConfig = supported.into();
    let call_id = if cfg.call_id.is_empty() {
        format!("soundcard-{}", crate::calls::unix_ms())
    } else {
        cfg.call_id.clone()
    };
    let number = (!cfg.caller_number.is_empty()).then(|| cfg.caller_number.clone());
    let sink = state
        .open_call(&call_id, Transport::Soundcard, Some(number), None)
        .map_err(|e| anyhow::anyhow!("sound card call {call_id}: {e:?}"))?;
    let call = Arc::clone(sink.call());
    let metrics = Arc::clone(&state.metrics);
    tracing::info!(device = %name, rate, channels, ?format, call = %call_id, "sound card capture");

    let (tx, rx) = sync_channel::<Vec<f32>>(256);
    let err_fn = |e| tracing::warn!(error = %e, "sound card stream error");
    let m2 = Arc::clone(&metrics);
    let push = move |mono: Vec<f32>| match tx.try_send(mono) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(_)) => m2.dropped(DropReason::QueueFull, 1),
    };
    let (started_tx, started_rx) = sync_channel::<anyhow::Result<()>>(1);
    let mut stop = call.stop_signal();
    let mut shutdown = state.shutdown.subscribe();
    // Capture length counted in audio captured (20-ms frames), which is wall time for a real
    // card and stays exact for devices faster than real time (ALSA's null/file plugins).
    let max_frames = (cfg.duration_ms > 0).then_some(cfg.duration_ms.div_ceil(20));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done_capture = Arc::clone(&done);
    // The cpal stream is not Send: it lives on its own thread.
    std::thread::Builder::new()
        .name("quivoxd-soundcard".into())
        .spawn(move || {
            let stream = match format {
                cpal::SampleFormat::I16 => device.build_input_stream(
                    &config,
                    move |data: &[i16], _: &_| {
                        push(downmix(data.iter().map(|&s| s as f32), channels))
                    },
                    err_fn,
                    None,
                ),
                cpal::SampleFormat::F32 => device.build_input_stream(
                    &config,
                    move |data: &[f32], _: &_| {
                        push(downmix(data.iter().map(|&s| s * 32768.0), channels))
                    },
                    err_fn,
                    None,
                ),
                other => {
                    let _ = started_tx.send(Err(anyhow::anyhow!(
                        "sound card sample format {other:?}: expected i16 or f32"
                    )));
                    return;
                }
            };
            let stream = match stream.map_err(anyhow::Error::from).and_then(|s| {
                s.play()?;
                Ok(s)
            }) {
                Ok(s) => s,
                Err(e) => {
                    let _ = started_tx.send(Err(e));
                    return;
                }
            };
            let _ = started_tx.send(Ok(()));
            while !*stop.borrow_and_update()
                && !*shutdown.borrow_and_update()
                && !done_capture.load(std::sync::atomic::Ordering::Relaxed)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(stream);
        })?;
    // Converter: resample to 8 kHz, 20-ms frames, into the call.
    std::thread::Builder::new()
        .name("quivoxd-soundcard-conv".into())
        .spawn(move || {
            let mut resampler = (rate != 8000)
                .then(|| Resampler::new(rate, 8000))
                .transpose()
                .map_err(|e| tracing::error!(error = %e, "sound card resampler"))
                .ok()
                .flatten();
            let mut pending: Vec<f32> = Vec::new();
            let mut out = Vec::new();
            let mut frames = 0u64;
            'capture: while let Ok(block) = rx.recv() {
                match resampler.as_mut() {
                    Some(r) => {
                        out.clear();
                        if r.process(&block, &mut out).is_err() {
                            break;
                        }
                        pending.extend_from_slice(&out);
                    }
                    None => pending.extend_from_slice(&block),
                }
                while pending.len() >= 160 {
                    let frame: Vec<i16> = pending
                        .drain(..160)
                        .map(|s| s.round().clamp(-32768.0, 32767.0) as i16)
                        .collect();
                    sink.push(frame);
                    frames += 1;
                    if max_frames.is_some_and(|m| frames >= m) {
                        break 'capture;
                    }
                }
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            call_done(&sink);
        })?;
    match started_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(r) => r,
        Err(_) => anyhow::bail!("sound card stream did not start within 10 s"),
    }
}

fn call_done(sink: &crate::calls::AudioSink) {
    sink.call().set_end_reason("capture_ended");
}

fn downmix(samples: impl Iterator<Item = f32>, channels: usize) -> Vec<f32> {
    let v: Vec<f32> = samples.collect();
    if channels <= 1 {
        return v;
    }
    v.chunks(channels)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect()
}
