//! Microphone capture (cpal): the default input device at its own rate and channel count, mixed
//! to mono, scaled to 16-bit integer scale and resampled to the models' 8 kHz with
//! [`quivox::audio::Resampler`], delivered in blocks; plus a live level meter on stderr.
//!
//! For tests and demos without a sound card, the environment variable [`MIC_WAV_ENV`] names a
//! WAV file that stands in for the device: it goes through the same down-mix/resample path, at
//! its own rate, as fast as it can be read.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use anyhow::Context;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use indicatif::{ProgressBar, ProgressStyle};
use quivox::audio::{read_wav, ChannelPolicy, ReadOptions, Resampler, Waveform};

use crate::outcome::{interactive, CliError, Exit};

/// Environment variable naming a WAV file to use instead of the microphone (tests).
pub const MIC_WAV_ENV: &str = "QUIVOX_MIC_WAV";

/// Sample rate delivered to the engine, Hz.
pub const TARGET_RATE_HZ: u32 = 8000;

/// Device blocks that may wait in the channel before the capture thread drops audio (a few
/// seconds at typical block sizes).
const CHANNEL_BLOCKS: usize = 256;

enum Source {
    Device {
        // Kept alive: dropping the stream stops the capture.
        _stream: cpal::Stream,
        blocks: Receiver<Vec<f32>>,
        errors: Receiver<String>,
    },
    Wav {
        samples: Vec<f32>,
        position: usize,
        block: usize,
    },
}

/// An open capture: the microphone, or the stand-in WAV file.
pub struct Capture {
    source: Source,
    resampler: Option<Resampler>,
    /// What is being recorded from (device name or file).
    pub device_name: String,
    /// The device's sample rate, Hz.
    pub device_rate_hz: u32,
    /// 8-kHz samples delivered so far.
    delivered: u64,
}

fn no_device(message: String) -> anyhow::Error {
    CliError::new(Exit::NoDevice, message).into()
}

/// Mixes interleaved frames to mono in 16-bit integer scale.
fn push_mono<T: Copy>(data: &[T], channels: usize, to_i16_scale: impl Fn(T) -> f32) -> Vec<f32> {
    let channels = channels.max(1);
    data.chunks(channels)
        .map(|frame| frame.iter().map(|&s| to_i16_scale(s)).sum::<f32>() / frame.len() as f32)
        .collect()
}

fn send_block(tx: &SyncSender<Vec<f32>>, block: Vec<f32>) {
    // A full channel means the consumer stalled: dropping this block is better than blocking the
    // audio thread.
    let _ = tx.try_send(block);
}

impl Capture {
    /// Opens the default input device (or the file named by [`MIC_WAV_ENV`]). Fails with exit
    /// code 8 ([`Exit::NoDevice`]) when there is no usable input device.
    pub fn open() -> anyhow::Result<Self> {
        if let Some(path) = std::env::var_os(MIC_WAV_ENV) {
            return Self::open_wav(PathBuf::from(path));
        }
        let host = cpal::default_host();
        let device = host.default_input_device().ok_or_else(|| {
            no_device(format!(
                "no audio input device found (audio host {}): connect a microphone, or give WAV files instead of --mic",
                host.id().name()
            ))
        })?;
        let device_name = device.name().unwrap_or_else(|_| "default".to_string());
        let supported = device.default_input_config().map_err(|e| {
            no_device(format!(
                "audio input device {device_name:?} is not usable ({e}): connect a microphone, or give WAV files instead of --mic"
            ))
        })?;
        let sample_format = supported.sample_format();
        let config: cpal::StreamConfig = supported.into();
        let channels = usize::from(config.channels);
        let device_rate_hz = config.sample_rate.0;
        let (tx, blocks) = std::sync::mpsc::sync_channel::<Vec<f32>>(CHANNEL_BLOCKS);
        let (err_tx, errors) = std::sync::mpsc::sync_channel::<String>(16);
        let on_error = move |e: cpal::StreamError| {
            let _ = err_tx.try_send(e.to_string());
        };
        let stream = match sample_format {
            cpal::SampleFormat::F32 => device.build_input_stream(
                &config,
                move |data: &[f32], _: &cpal::InputCallbackInfo| {
                    send_block(&tx, push_mono(data, channels, |s| s * 32768.0));
                },
                on_error,
                None,
            ),
            cpal::SampleFormat::I16 => device.build_input_stream(
                &config,
                move |data: &[i16], _: &cpal::InputCallbackInfo| {
                    send_block(&tx, push_mono(data, channels, f32::from));
                },
                on_error,
                None,
            ),
            cpal::SampleFormat::I32 => device.build_input_stream(
                &config,
                move |data: &[i32], _: &cpal::InputCallbackInfo| {
                    send_block(&tx, push_mono(data, channels, |s| s as f32 / 65536.0));
                },
                on_error,
                None,
            ),
            cpal::SampleFormat::U16 => device.build_input_stream(
                &config,
                move |data: &[u16], _: &cpal::InputCallbackInfo| {
                    send_block(&tx, push_mono(data, channels, |s| f32::from(s) - 32768.0));
                },
                on_error,
                None,
            ),
            other => {
                return Err(no_device(format!(
                    "audio input device {device_name:?} delivers {other:?} samples: expected f32, i16, i32 or u16"
                )))
            }
        }
        .map_err(|e| {
            no_device(format!(
                "opening audio input device {device_name:?} at {device_rate_hz} Hz failed: {e}"
            ))
        })?;
        stream.play().map_err(|e| {
            no_device(format!(
                "starting audio input device {device_name:?} failed: {e}"
            ))
        })?;
        Ok(Self {
            source: Source::Device {
                _stream: stream,
                blocks,
                errors,
            },
            resampler: Self::resampler_for(device_rate_hz)?,
            device_name,
            device_rate_hz,
            delivered: 0,
        })
    }

    fn open_wav(path: PathBuf) -> anyhow::Result<Self> {
        let wave = read_wav(
            &path,
            &ReadOptions {
                channels: ChannelPolicy::Downmix,
                target_sample_rate_hz: None,
            },
        )
        .with_context(|| format!("{MIC_WAV_ENV}: reading {}", path.display()))?;
        let rate = wave.sample_rate_hz;
        Ok(Self {
            source: Source::Wav {
                samples: wave.samples,
                position: 0,
                // 20-ms device blocks.
                block: (rate as usize / 50).max(1),
            },
            resampler: Self::resampler_for(rate)?,
            device_name: format!("{} (file standing in for the microphone)", path.display()),
            device_rate_hz: rate,
            delivered: 0,
        })
    }

    fn resampler_for(rate: u32) -> anyhow::Result<Option<Resampler>> {
        if rate == TARGET_RATE_HZ {
            return Ok(None);
        }
        Ok(Some(Resampler::new(rate, TARGET_RATE_HZ).with_context(
            || format!("resampling the microphone from {rate} Hz to {TARGET_RATE_HZ} Hz"),
        )?))
    }

    /// Seconds of audio delivered so far.
    pub fn recorded_s(&self) -> f64 {
        self.delivered as f64 / f64::from(TARGET_RATE_HZ)
    }

    /// The next block of 8-kHz samples (16-bit scale; possibly empty while the resampler fills),
    /// or `None` when the source has ended.
    pub fn next_block(&mut self) -> anyhow::Result<Option<Vec<f32>>> {
        let raw = match &mut self.source {
            Source::Device { blocks, errors, .. } => {
                if let Ok(e) = errors.try_recv() {
                    return Err(no_device(format!(
                        "audio input device {:?} failed while recording: {e}",
                        self.device_name
                    )));
                }
                match blocks.recv_timeout(Duration::from_secs(2)) {
                    Ok(block) => block,
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(no_device(format!(
                            "audio input device {:?} delivered nothing for 2 s",
                            self.device_name
                        )))
                    }
                    Err(RecvTimeoutError::Disconnected) => return Ok(None),
                }
            }
            Source::Wav {
                samples,
                position,
                block,
            } => {
                if *position >= samples.len() {
                    return Ok(None);
                }
                let end = (*position + *block).min(samples.len());
                let raw = samples[*position..end].to_vec();
                *position = end;
                raw
            }
        };
        let out = match &mut self.resampler {
            None => raw,
            Some(r) => {
                let mut out = Vec::with_capacity(raw.len());
                r.process(&raw, &mut out)?;
                out
            }
        };
        self.delivered += out.len() as u64;
        Ok(Some(out))
    }

    /// The resampler's last samples, at the end of a recording.
    pub fn flush(&mut self) -> anyhow::Result<Vec<f32>> {
        let mut out = Vec::new();
        if let Some(r) = &mut self.resampler {
            r.flush(&mut out)?;
        }
        self.delivered += out.len() as u64;
        Ok(out)
    }
}

/// Level of a block in dB relative to 16-bit full scale (−96 dB for silence).
pub fn level_dbfs(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return -96.0;
    }
    let mean_square = samples
        .iter()
        .map(|&s| f64::from(s) * f64::from(s))
        .sum::<f64>()
        / samples.len() as f64;
    (10.0 * (mean_square / (32768.0 * 32768.0)).max(1e-10).log10()).max(-96.0)
}

/// A live meter on stderr: input level and net speech towards a goal (hidden when stderr is not
/// a terminal).
pub struct Meter {
    bar: ProgressBar,
}

impl Meter {
    /// A meter whose bar fills at `goal_ms` of net speech.
    pub fn new(goal_ms: u64) -> Self {
        let bar = if interactive() {
            let bar = ProgressBar::new(goal_ms.max(1));
            bar.set_style(
                ProgressStyle::with_template("{msg} speech [{bar:20}] {pos}/{len} ms")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        Self { bar }
    }

    /// Shows the level of the last block and the net speech so far, after `recorded_s` seconds.
    pub fn update(&self, block: &[f32], net_speech_ms: u64, recorded_s: f64) {
        let db = level_dbfs(block);
        // 15 cells from −60 dBFS to 0 dBFS.
        let cells = (((db + 60.0) / 4.0).clamp(0.0, 15.0)) as usize;
        let clip = if db > -1.0 { "CLIP" } else { "    " };
        self.bar.set_message(format!(
            "{recorded_s:5.1} s |{:<15}| {db:5.1} dBFS {clip}",
            "#".repeat(cells)
        ));
        self.bar.set_position(net_speech_ms);
    }

    /// Runs `print` with the meter hidden, so that its output appears above the meter.
    pub fn suspend(&self, print: impl FnOnce()) {
        self.bar.suspend(print);
    }

    /// Removes the meter.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Spawns a thread that reports when the operator presses Enter (only when stdin is a terminal).
pub fn enter_pressed() -> Receiver<()> {
    use std::io::IsTerminal;
    let (tx, rx) = std::sync::mpsc::channel();
    if std::io::stdin().is_terminal() {
        std::thread::spawn(move || {
            let mut line = String::new();
            // Ok(0) is end of input (no operator): only a line counts.
            if matches!(std::io::stdin().read_line(&mut line), Ok(n) if n > 0) {
                let _ = tx.send(());
            }
        });
    }
    rx
}

/// Records from an open capture until `on_block` returns `true`, `max_s` seconds of audio have
/// been captured, the operator presses Enter, or the source ends; returns the 8-kHz recording.
/// `on_block` sees each new block of 8-kHz samples.
pub fn record(
    mut capture: Capture,
    max_s: f64,
    mut on_block: impl FnMut(&Capture, &[f32]) -> anyhow::Result<bool>,
) -> anyhow::Result<Waveform> {
    crate::outcome::status(&format!(
        "recording from {} at {} Hz (resampled to {TARGET_RATE_HZ} Hz)",
        capture.device_name, capture.device_rate_hz
    ));
    let stop = enter_pressed();
    let mut samples = Vec::new();
    let max_samples = (max_s * f64::from(TARGET_RATE_HZ)) as usize;
    while samples.len() < max_samples {
        let Some(block) = capture.next_block()? else {
            break;
        };
        samples.extend_from_slice(&block);
        let done = on_block(&capture, &block)?;
        if done || stop.try_recv().is_ok() {
            break;
        }
    }
    let tail = capture.flush()?;
    on_block(&capture, &tail)?;
    samples.extend_from_slice(&tail);
    samples.truncate(max_samples.max(1));
    Ok(Waveform {
        sample_rate_hz: TARGET_RATE_HZ,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_mix_and_levels() {
        // Stereo i16 frames (1000, -1000) mix to 0; (2000, 0) to 1000.
        let mixed = push_mono(&[1000i16, -1000, 2000, 0], 2, f32::from);
        assert_eq!(mixed, vec![0.0, 1000.0]);
        let u = push_mono(&[32768u16, 0], 1, |s| f32::from(s) - 32768.0);
        assert_eq!(u, vec![0.0, -32768.0]);
        // A full-scale square wave is 0 dBFS; half amplitude is -6.02 dB.
        let full: Vec<f32> = (0..800)
            .map(|i| if i % 2 == 0 { 32768.0 } else { -32768.0 })
            .collect();
        assert!(level_dbfs(&full).abs() < 1e-9);
        let half: Vec<f32> = full.iter().map(|s| s / 2.0).collect();
        assert!((level_dbfs(&half) + 20.0 * 2f64.log10()).abs() < 1e-9);
        assert_eq!(level_dbfs(&[0.0; 10]), -96.0);
        assert_eq!(level_dbfs(&[]), -96.0);
    }
}
