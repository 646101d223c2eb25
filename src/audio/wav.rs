//! WAV reading and writing for telephony audio.
//!
//! The reader walks the RIFF structure itself and decodes:
//! - PCM (format tag 1) with 8 (unsigned), 16, 24 or 32 bits per sample,
//! - IEEE float (tag 3), 32 bits,
//! - G.711 A-law (tag 6) and μ-law (tag 7), 8 bits, with or without a `fact` chunk,
//! - WAVE_FORMAT_EXTENSIBLE (tag 0xFFFE) whose subformat GUID is one of the above.
//!
//! Samples come back as f32 in 16-bit integer scale (8-bit PCM is multiplied by 256,
//! 24/32-bit PCM divided by 256/65536, float multiplied by 32768). Multi-channel files are
//! reduced to mono according to an explicit [`ChannelPolicy`]; by default only mono is
//! accepted. Every header size is checked against the bytes present, so truncated or
//! corrupt files give an [`AudioError`], never a panic or silently shortened audio.
//!
//! ```
//! use quivox::audio::{read_wav_bytes, wav::encode_wav_g711, G711Law, ReadOptions};
//! let tone: Vec<i16> = (0..800).map(|n| (8000.0 * (n as f32 * 0.3).sin()) as i16).collect();
//! let bytes = encode_wav_g711(&tone, G711Law::MuLaw).unwrap();
//! let wave = read_wav_bytes(&bytes, &ReadOptions::default()).unwrap();
//! assert_eq!(wave.sample_rate_hz, 8000);
//! assert_eq!(wave.samples.len(), 800);
//! ```

use std::path::Path;

use super::error::AudioError;
use super::g711::{alaw_to_i16, f32_to_i16, i16_to_alaw, i16_to_ulaw, ulaw_to_i16, G711Law};
use super::Waveform;

/// Largest channel count accepted in a header; anything above is treated as corrupt.
pub const MAX_CHANNELS: u16 = 64;
/// Lowest sample rate accepted in a header or by the writers, Hz.
pub const MIN_SAMPLE_RATE_HZ: u32 = 1_000;
/// Highest sample rate accepted in a header or by the writers, Hz.
pub const MAX_SAMPLE_RATE_HZ: u32 = 768_000;

const SAMPLE_RATE_RANGE: &str = "1000 ..= 768000 Hz";

/// How a multi-channel file becomes the mono [`Waveform`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelPolicy {
    /// Accept only mono files; anything else is [`AudioError::NotMono`].
    #[default]
    RequireMono,
    /// Take one channel, by 0-based index (e.g. the caller side of a two-channel call recording).
    Select(u16),
    /// Average all channels.
    Downmix,
}

/// Options for [`read_wav`] / [`read_wav_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// How to reduce multi-channel audio to mono. Default: [`ChannelPolicy::RequireMono`].
    pub channels: ChannelPolicy,
    /// Resample to this rate in Hz after decoding; `None` (default) keeps the file's rate.
    pub target_sample_rate_hz: Option<u32>,
}

/// The sample encoding of a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    /// Linear PCM: 8-bit unsigned, or 16/24/32-bit signed, little-endian.
    Pcm,
    /// 32-bit IEEE float, nominal range −1.0 ..= 1.0.
    Float,
    /// G.711 A-law, 8 bits.
    ALaw,
    /// G.711 μ-law, 8 bits.
    MuLaw,
}

/// What [`probe_wav`] learns from a WAV header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavInfo {
    /// Sample encoding.
    pub format: WavFormat,
    /// True if the file uses WAVE_FORMAT_EXTENSIBLE (tag 0xFFFE).
    pub extensible: bool,
    /// Sample rate in Hz.
    pub sample_rate_hz: u32,
    /// Number of interleaved channels.
    pub channels: u16,
    /// Bits per sample (container size).
    pub bits_per_sample: u16,
    /// Number of sample frames (samples per channel).
    pub frames: u64,
}

impl WavInfo {
    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate_hz)
    }
}

/// A parsed file: its header facts and the exact bytes of its sample frames.
struct ParsedWav<'a> {
    info: WavInfo,
    data: &'a [u8],
}

const GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

fn le_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn format_guid(guid: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        le_u32(guid, 0),
        le_u16(guid, 4),
        le_u16(guid, 6),
        guid[8],
        guid[9],
        guid[10..16]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}

struct FmtChunk {
    format_tag: u16,
    extensible: bool,
    channels: u16,
    sample_rate_hz: u32,
    block_align: u16,
    bits_per_sample: u16,
}

fn parse_fmt(body: &[u8]) -> Result<FmtChunk, AudioError> {
    if body.len() < 16 {
        return Err(AudioError::InvalidHeader {
            field: "fmt chunk size",
            value: body.len() as u64,
            expected: "at least 16 bytes".into(),
        });
    }
    let mut format_tag = le_u16(body, 0);
    let channels = le_u16(body, 2);
    let sample_rate_hz = le_u32(body, 4);
    let block_align = le_u16(body, 12);
    let bits_per_sample = le_u16(body, 14);
    let extensible = format_tag == 0xFFFE;
    if extensible {
        if body.len() < 40 {
            return Err(AudioError::InvalidHeader {
                field: "WAVE_FORMAT_EXTENSIBLE fmt chunk size",
                value: body.len() as u64,
                expected: "at least 40 bytes".into(),
            });
        }
        let guid = &body[24..40];
        if guid[2..16] != GUID_TAIL {
            return Err(AudioError::UnsupportedSubformat {
                guid: format_guid(guid),
            });
        }
        format_tag = le_u16(guid, 0);
        if !matches!(format_tag, 1 | 3 | 6 | 7) {
            return Err(AudioError::UnsupportedSubformat {
                guid: format_guid(guid),
            });
        }
    }
    Ok(FmtChunk {
        format_tag,
        extensible,
        channels,
        sample_rate_hz,
        block_align,
        bits_per_sample,
    })
}

/// Error unless `rate_hz` is within [`MIN_SAMPLE_RATE_HZ`] ..= [`MAX_SAMPLE_RATE_HZ`].
pub(crate) fn validate_sample_rate(rate_hz: u32) -> Result<(), AudioError> {
    if (MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(&rate_hz) {
        Ok(())
    } else {
        Err(AudioError::InvalidSampleRate {
            rate_hz,
            expected: SAMPLE_RATE_RANGE,
        })
    }
}

fn parse(bytes: &[u8]) -> Result<ParsedWav<'_>, AudioError> {
    if bytes.len() < 12 {
        if bytes.len() >= 4 && &bytes[..4] != b"RIFF" {
            return Err(AudioError::NotWav {
                found: String::from_utf8_lossy(&bytes[..4]).into_owned(),
            });
        }
        return Err(AudioError::Truncated {
            what: "RIFF header",
            needed: 12,
            available: bytes.len() as u64,
        });
    }
    if &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(AudioError::NotWav {
            found: format!(
                "{}....{}",
                String::from_utf8_lossy(&bytes[..4]),
                String::from_utf8_lossy(&bytes[8..12])
            ),
        });
    }

    let file_len = bytes.len() as u64;
    let mut fmt: Option<FmtChunk> = None;
    let mut fact_frames: Option<u32> = None;
    let mut data: Option<&[u8]> = None;
    let mut pos: u64 = 12;
    loop {
        if fmt.is_some() && data.is_some() {
            break;
        }
        if pos >= file_len {
            return Err(AudioError::MissingChunk {
                chunk: if fmt.is_none() { "fmt " } else { "data" },
            });
        }
        if file_len - pos < 8 {
            return Err(AudioError::Truncated {
                what: "chunk header",
                needed: 8,
                available: file_len - pos,
            });
        }
        let at = pos as usize;
        let id = &bytes[at..at + 4];
        let size = u64::from(le_u32(bytes, at + 4));
        let body_start = pos + 8;
        let available = file_len - body_start;
        if id == b"data" {
            if size > available {
                return Err(AudioError::Truncated {
                    what: "data chunk",
                    needed: size,
                    available,
                });
            }
            if data.is_none() {
                data = Some(&bytes[body_start as usize..(body_start + size) as usize]);
            }
        } else if id == b"fmt " || id == b"fact" {
            if size > available {
                return Err(AudioError::Truncated {
                    what: if id == b"fmt " {
                        "fmt chunk"
                    } else {
                        "fact chunk"
                    },
                    needed: size,
                    available,
                });
            }
            let body = &bytes[body_start as usize..(body_start + size) as usize];
            if id == b"fmt " {
                if fmt.is_none() {
                    fmt = Some(parse_fmt(body)?);
                }
            } else if body.len() >= 4 {
                fact_frames = Some(le_u32(body, 0));
            }
        }
        // Other chunks (LIST, cue, ...) are skipped; their size only has to be walkable.
        // RIFF chunks are padded to an even size.
        pos = body_start + size + (size & 1);
    }
    let (Some(fmt), Some(data)) = (fmt, data) else {
        return Err(AudioError::MissingChunk { chunk: "data" });
    };

    let format = match (fmt.format_tag, fmt.bits_per_sample) {
        (1, 8 | 16 | 24 | 32) => WavFormat::Pcm,
        (3, 32) => WavFormat::Float,
        (6, 8) => WavFormat::ALaw,
        (7, 8) => WavFormat::MuLaw,
        (format_tag, bits_per_sample) => {
            return Err(AudioError::UnsupportedFormat {
                format_tag,
                bits_per_sample,
            })
        }
    };
    if fmt.channels == 0 || fmt.channels > MAX_CHANNELS {
        return Err(AudioError::InvalidHeader {
            field: "channels",
            value: u64::from(fmt.channels),
            expected: format!("1 ..= {MAX_CHANNELS}"),
        });
    }
    validate_sample_rate(fmt.sample_rate_hz)?;
    let bytes_per_frame = u64::from(fmt.channels) * u64::from(fmt.bits_per_sample / 8);
    if u64::from(fmt.block_align) != bytes_per_frame {
        return Err(AudioError::InvalidHeader {
            field: "block_align",
            value: u64::from(fmt.block_align),
            expected: format!(
                "{bytes_per_frame} (= {} channels x {} bits / 8)",
                fmt.channels, fmt.bits_per_sample
            ),
        });
    }
    let data_len = data.len() as u64;
    if !data_len.is_multiple_of(bytes_per_frame) {
        return Err(AudioError::InvalidHeader {
            field: "data chunk size",
            value: data_len,
            expected: format!("a multiple of block_align {bytes_per_frame}"),
        });
    }
    let mut frames = data_len / bytes_per_frame;
    if matches!(format, WavFormat::ALaw | WavFormat::MuLaw) {
        if let Some(fact) = fact_frames.map(u64::from) {
            // For compressed formats the `fact` count is authoritative: more frames than the
            // data holds means the data was cut; fewer means trailing padding.
            if fact > frames {
                return Err(AudioError::Truncated {
                    what: "data chunk (frame count from the fact chunk)",
                    needed: fact * bytes_per_frame,
                    available: data_len,
                });
            }
            frames = fact;
        }
    }
    Ok(ParsedWav {
        info: WavInfo {
            format,
            extensible: fmt.extensible,
            sample_rate_hz: fmt.sample_rate_hz,
            channels: fmt.channels,
            bits_per_sample: fmt.bits_per_sample,
            frames,
        },
        data: &data[..(frames * bytes_per_frame) as usize],
    })
}

/// Decode one sample (little-endian bytes of one channel of one frame) to 16-bit scale.
fn decode_sample(info: &WavInfo, raw: &[u8], index: usize) -> Result<f32, AudioError> {
    let value = match (info.format, info.bits_per_sample) {
        (WavFormat::Pcm, 8) => (f32::from(raw[0]) - 128.0) * 256.0,
        (WavFormat::Pcm, 16) => f32::from(i16::from_le_bytes([raw[0], raw[1]])),
        (WavFormat::Pcm, 24) => {
            // Sign-extend by placing the 3 bytes in the top of an i32.
            let wide = i32::from_le_bytes([0, raw[0], raw[1], raw[2]]) >> 8;
            wide as f32 / 256.0
        }
        (WavFormat::Pcm, _) => {
            i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as f32 / 65536.0
        }
        (WavFormat::Float, _) => {
            let unit = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
            let scaled = unit * 32768.0;
            if !scaled.is_finite() {
                return Err(AudioError::NonFiniteSample { index, value: unit });
            }
            scaled
        }
        (WavFormat::ALaw, _) => f32::from(alaw_to_i16(raw[0])),
        (WavFormat::MuLaw, _) => f32::from(ulaw_to_i16(raw[0])),
    };
    Ok(value)
}

fn decode_mono(parsed: &ParsedWav<'_>, policy: ChannelPolicy) -> Result<Vec<f32>, AudioError> {
    let info = &parsed.info;
    let channels = usize::from(info.channels);
    let sample_bytes = usize::from(info.bits_per_sample / 8);
    let frame_bytes = channels * sample_bytes;
    let frames = parsed.data.chunks_exact(frame_bytes);
    let sample_at = |frame: &[u8], frame_index: usize, channel: usize| {
        let start = channel * sample_bytes;
        decode_sample(
            info,
            &frame[start..start + sample_bytes],
            frame_index * channels + channel,
        )
    };
    match policy {
        ChannelPolicy::RequireMono if channels != 1 => Err(AudioError::NotMono {
            channels: info.channels,
        }),
        ChannelPolicy::RequireMono => frames
            .enumerate()
            .map(|(i, frame)| sample_at(frame, i, 0))
            .collect(),
        ChannelPolicy::Select(requested) if requested >= info.channels => {
            Err(AudioError::NoSuchChannel {
                requested,
                channels: info.channels,
            })
        }
        ChannelPolicy::Select(requested) => frames
            .enumerate()
            .map(|(i, frame)| sample_at(frame, i, usize::from(requested)))
            .collect(),
        ChannelPolicy::Downmix => frames
            .enumerate()
            .map(|(i, frame)| {
                let mut sum = 0.0f64;
                for channel in 0..channels {
                    sum += f64::from(sample_at(frame, i, channel)?);
                }
                Ok((sum / channels as f64) as f32)
            })
            .collect(),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, AudioError> {
    std::fs::read(path).map_err(|source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read the header of an in-memory WAV file without decoding samples.
pub fn probe_wav_bytes(bytes: &[u8]) -> Result<WavInfo, AudioError> {
    parse(bytes).map(|parsed| parsed.info)
}

/// Read the header of a WAV file without decoding samples.
pub fn probe_wav(path: &Path) -> Result<WavInfo, AudioError> {
    probe_wav_bytes(&read_file(path)?)
}

/// Decode an in-memory WAV file to a mono [`Waveform`] (f32 in 16-bit scale).
///
/// Errors on anything not listed in the [module docs](self), on headers inconsistent with
/// the bytes present, on files without samples, on NaN/inf float samples, and when the
/// channel layout does not fit `opts.channels`.
pub fn read_wav_bytes(bytes: &[u8], opts: &ReadOptions) -> Result<Waveform, AudioError> {
    let parsed = parse(bytes)?;
    if parsed.info.frames == 0 {
        return Err(AudioError::Empty {
            what: "WAV data chunk",
        });
    }
    let wave = Waveform {
        sample_rate_hz: parsed.info.sample_rate_hz,
        samples: decode_mono(&parsed, opts.channels)?,
    };
    match opts.target_sample_rate_hz {
        Some(target) if target != wave.sample_rate_hz => super::resample::resample(&wave, target),
        _ => Ok(wave),
    }
}

/// Read a WAV file to a mono [`Waveform`]; see [`read_wav_bytes`].
pub fn read_wav(path: &Path, opts: &ReadOptions) -> Result<Waveform, AudioError> {
    read_wav_bytes(&read_file(path)?, opts)
}

/// Assemble RIFF/WAVE bytes from a `fmt ` body, an optional `fact` frame count and data.
fn riff_bytes(
    fmt_body: &[u8],
    fact_frames: Option<u32>,
    data: &[u8],
) -> Result<Vec<u8>, AudioError> {
    let pad = data.len() & 1;
    let fact_len = if fact_frames.is_some() { 12 } else { 0 };
    let riff_len = 4 + (8 + fmt_body.len()) + fact_len + 8 + data.len() + pad;
    let too_long = || AudioError::InvalidHeader {
        field: "data chunk size",
        value: data.len() as u64,
        expected: "at most 4 GiB minus the header (RIFF size limit)".into(),
    };
    let riff_size = u32::try_from(riff_len).map_err(|_| too_long())?;
    let data_size = u32::try_from(data.len()).map_err(|_| too_long())?;
    let mut out = Vec::with_capacity(riff_len + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_size.to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&(fmt_body.len() as u32).to_le_bytes());
    out.extend_from_slice(fmt_body);
    if let Some(frames) = fact_frames {
        out.extend_from_slice(b"fact");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&frames.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_size.to_le_bytes());
    out.extend_from_slice(data);
    if pad == 1 {
        out.push(0);
    }
    Ok(out)
}

/// `fmt ` body for a mono file (WAVEFORMATEX, cbSize appended when `with_cb_size`).
fn mono_fmt_body(
    format_tag: u16,
    sample_rate_hz: u32,
    bits_per_sample: u16,
    with_cb_size: bool,
) -> Vec<u8> {
    let block_align = bits_per_sample / 8;
    let mut body = Vec::with_capacity(18);
    body.extend_from_slice(&format_tag.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&sample_rate_hz.to_le_bytes());
    body.extend_from_slice(&(sample_rate_hz * u32::from(block_align)).to_le_bytes());
    body.extend_from_slice(&block_align.to_le_bytes());
    body.extend_from_slice(&bits_per_sample.to_le_bytes());
    if with_cb_size {
        body.extend_from_slice(&0u16.to_le_bytes());
    }
    body
}

/// Encode a waveform as a mono 16-bit PCM WAV (tag 1) in memory. Samples are rounded to
/// the nearest integer and clipped to the i16 range; NaN/inf is an error.
pub fn encode_wav_pcm16(wave: &Waveform) -> Result<Vec<u8>, AudioError> {
    validate_sample_rate(wave.sample_rate_hz)?;
    let mut data = Vec::with_capacity(wave.samples.len() * 2);
    for (index, &sample) in wave.samples.iter().enumerate() {
        data.extend_from_slice(&f32_to_i16(sample, index)?.to_le_bytes());
    }
    riff_bytes(
        &mono_fmt_body(1, wave.sample_rate_hz, 16, false),
        None,
        &data,
    )
}

/// Write a waveform as a mono 16-bit PCM WAV file; see [`encode_wav_pcm16`].
pub fn write_wav_pcm16(path: &Path, wave: &Waveform) -> Result<(), AudioError> {
    write_file(path, &encode_wav_pcm16(wave)?)
}

/// Sample rate of the files [`encode_wav_g711`] writes: G.711 is defined at 8 kHz.
pub const G711_SAMPLE_RATE_HZ: u32 = 8_000;

/// Encode 16-bit samples as a mono 8 kHz G.711 WAV (tag 7 for μ-law, 6 for A-law) with a
/// `fact` chunk, in memory.
pub fn encode_wav_g711(samples: &[i16], law: G711Law) -> Result<Vec<u8>, AudioError> {
    let encode = match law {
        G711Law::MuLaw => i16_to_ulaw,
        G711Law::ALaw => i16_to_alaw,
    };
    let data: Vec<u8> = samples.iter().map(|&s| encode(s)).collect();
    let frames = u32::try_from(samples.len()).map_err(|_| AudioError::InvalidHeader {
        field: "fact sample count",
        value: samples.len() as u64,
        expected: "at most 2^32 - 1 samples".into(),
    })?;
    riff_bytes(
        &mono_fmt_body(law.wav_format_tag(), G711_SAMPLE_RATE_HZ, 8, true),
        Some(frames),
        &data,
    )
}

/// Write 16-bit samples as a mono 8 kHz G.711 WAV file; see [`encode_wav_g711`].
pub fn write_wav_g711(path: &Path, samples: &[i16], law: G711Law) -> Result<(), AudioError> {
    write_file(path, &encode_wav_g711(samples, law)?)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), AudioError> {
    std::fs::write(path, bytes).map_err(|source| AudioError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::io::Cursor;
    use std::path::PathBuf;

    fn fixture_path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("audio-fixtures/g711")
            .join(name)
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = fixture_path(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn s16le(bytes: &[u8]) -> Vec<f32> {
        bytes
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
            .collect()
    }

    fn mono() -> ReadOptions {
        ReadOptions::default()
    }

    fn with_channels(channels: ChannelPolicy) -> ReadOptions {
        ReadOptions {
            channels,
            ..ReadOptions::default()
        }
    }

    /// Write with hound (an independent writer) into memory.
    fn hound_bytes(
        spec: hound::WavSpec,
        write: impl FnOnce(&mut hound::WavWriter<&mut Cursor<Vec<u8>>>),
    ) -> Vec<u8> {
        let mut cursor = Cursor::new(Vec::new());
        {
            let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
            write(&mut writer);
            writer.finalize().unwrap();
        }
        cursor.into_inner()
    }

    fn spec(channels: u16, bits: u16, float: bool) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        }
    }

    /// SoX-written μ-law file (tag 7, fact chunk, odd data length with pad byte) against
    /// SoX's own decoding of it.
    #[test]
    fn sox_ulaw_fixture_matches_sox_decoding() {
        let bytes = fixture("sweep_ulaw.wav");
        let info = probe_wav_bytes(&bytes).unwrap();
        assert_eq!(
            info,
            WavInfo {
                format: WavFormat::MuLaw,
                extensible: false,
                sample_rate_hz: 8000,
                channels: 1,
                bits_per_sample: 8,
                frames: 2001
            }
        );
        let wave = read_wav(&fixture_path("sweep_ulaw.wav"), &mono()).unwrap();
        assert_eq!(wave.sample_rate_hz, 8000);
        assert_eq!(wave.samples, s16le(&fixture("sweep_ulaw.s16le")));
    }

    #[test]
    fn sox_alaw_three_channels_with_each_policy() {
        let bytes = fixture("tones_alaw_3ch.wav");
        let interleaved = s16le(&fixture("tones_alaw_3ch.s16le"));
        let info = probe_wav_bytes(&bytes).unwrap();
        assert_eq!(
            (info.format, info.channels, info.frames),
            (WavFormat::ALaw, 3, 161)
        );
        assert!(matches!(
            read_wav_bytes(&bytes, &mono()),
            Err(AudioError::NotMono { channels: 3 })
        ));
        assert!(matches!(
            read_wav_bytes(&bytes, &with_channels(ChannelPolicy::Select(3))),
            Err(AudioError::NoSuchChannel {
                requested: 3,
                channels: 3
            })
        ));
        for channel in 0..3u16 {
            let wave =
                read_wav_bytes(&bytes, &with_channels(ChannelPolicy::Select(channel))).unwrap();
            let expected: Vec<f32> = interleaved
                .iter()
                .skip(usize::from(channel))
                .step_by(3)
                .copied()
                .collect();
            assert_eq!(wave.samples, expected, "channel {channel}");
        }
        let mixed = read_wav_bytes(&bytes, &with_channels(ChannelPolicy::Downmix)).unwrap();
        assert_eq!(mixed.samples.len(), 161);
        for (frame, &value) in interleaved.chunks_exact(3).zip(&mixed.samples) {
            let mean = (frame[0] + frame[1] + frame[2]) / 3.0;
            assert!((value - mean).abs() < 1e-3, "{value} vs {mean}");
        }
    }

    /// Rewrite a mono G.711 file's `fmt ` chunk as WAVE_FORMAT_EXTENSIBLE with the given
    /// subformat GUID.
    fn to_extensible(plain: &[u8], guid: [u8; 16]) -> Vec<u8> {
        let parsed = parse(plain).unwrap();
        let info = parsed.info.clone();
        let mut fmt = Vec::new();
        fmt.extend_from_slice(&0xFFFEu16.to_le_bytes());
        fmt.extend_from_slice(&info.channels.to_le_bytes());
        fmt.extend_from_slice(&info.sample_rate_hz.to_le_bytes());
        fmt.extend_from_slice(&(info.sample_rate_hz * u32::from(info.channels)).to_le_bytes());
        fmt.extend_from_slice(&info.channels.to_le_bytes()); // block_align for 8-bit
        fmt.extend_from_slice(&8u16.to_le_bytes());
        fmt.extend_from_slice(&22u16.to_le_bytes()); // cbSize
        fmt.extend_from_slice(&8u16.to_le_bytes()); // valid bits
        fmt.extend_from_slice(&4u32.to_le_bytes()); // channel mask
        fmt.extend_from_slice(&guid);
        riff_bytes(&fmt, Some(info.frames as u32), parsed.data).unwrap()
    }

    fn guid_for_tag(tag: u16) -> [u8; 16] {
        let mut guid = [0u8; 16];
        guid[..2].copy_from_slice(&tag.to_le_bytes());
        guid[2..].copy_from_slice(&GUID_TAIL);
        guid
    }

    #[test]
    fn extensible_g711_and_unknown_subformats() {
        let plain = fixture("sweep_ulaw.wav");
        let expected = read_wav_bytes(&plain, &mono()).unwrap();
        let ext = to_extensible(&plain, guid_for_tag(7));
        let info = probe_wav_bytes(&ext).unwrap();
        assert!(info.extensible);
        assert_eq!(info.format, WavFormat::MuLaw);
        assert_eq!(read_wav_bytes(&ext, &mono()).unwrap(), expected);
        // Same bytes declared A-law decode with the A-law table.
        let as_alaw = read_wav_bytes(&to_extensible(&plain, guid_for_tag(6)), &mono()).unwrap();
        let codes = &parse(&plain).unwrap().data.to_vec();
        let alaw: Vec<f32> = codes.iter().map(|&c| f32::from(alaw_to_i16(c))).collect();
        assert_eq!(as_alaw.samples, alaw);
        // ADPCM subformat (tag 2) and a foreign GUID are refused with the GUID printed.
        match read_wav_bytes(&to_extensible(&plain, guid_for_tag(2)), &mono()) {
            Err(AudioError::UnsupportedSubformat { guid }) => {
                assert_eq!(guid, "00000002-0000-0010-8000-00AA00389B71")
            }
            other => panic!("{other:?}"),
        }
        let mut foreign = guid_for_tag(7);
        foreign[15] ^= 0xFF;
        assert!(matches!(
            read_wav_bytes(&to_extensible(&plain, foreign), &mono()),
            Err(AudioError::UnsupportedSubformat { .. })
        ));
    }

    /// hound writes PCM 8/16/24/32 (WAVE_FORMAT_EXTENSIBLE above 16 bits) and float; we
    /// read them back with the documented scaling.
    #[test]
    fn pcm_and_float_written_by_hound() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let values: Vec<i32> = (0..500)
            .map(|_| rng.random_range(-(1 << 23)..(1 << 23)))
            .collect();
        for bits in [8u16, 16, 24, 32] {
            let shift = 24 - i32::from(bits.min(24));
            let ints: Vec<i32> = values
                .iter()
                .map(|&v| if bits == 32 { v * 256 + 77 } else { v >> shift })
                .collect();
            let bytes = hound_bytes(spec(1, bits, false), |w| {
                for &s in &ints {
                    w.write_sample(s).unwrap();
                }
            });
            let info = probe_wav_bytes(&bytes).unwrap();
            assert_eq!(
                (info.format, info.bits_per_sample, info.frames),
                (WavFormat::Pcm, bits, 500)
            );
            assert_eq!(info.extensible, bits > 16);
            let wave = read_wav_bytes(&bytes, &mono()).unwrap();
            let scale = 2f32.powi(16 - i32::from(bits));
            for (&got, &int) in wave.samples.iter().zip(&ints) {
                let expected = int as f32 * scale;
                assert!(
                    (got - expected).abs() <= expected.abs() * 1e-6,
                    "{bits} bits: {got} vs {expected}"
                );
            }
        }
        let floats: Vec<f32> = values
            .iter()
            .map(|&v| v as f32 / (1 << 23) as f32)
            .collect();
        let bytes = hound_bytes(spec(2, 32, true), |w| {
            for &s in &floats {
                w.write_sample(s).unwrap();
                w.write_sample(-s).unwrap();
            }
        });
        assert_eq!(probe_wav_bytes(&bytes).unwrap().format, WavFormat::Float);
        let right = read_wav_bytes(&bytes, &with_channels(ChannelPolicy::Select(1))).unwrap();
        let expected: Vec<f32> = floats.iter().map(|&s| -s * 32768.0).collect();
        assert_eq!(right.samples, expected);
        let mixed = read_wav_bytes(&bytes, &with_channels(ChannelPolicy::Downmix)).unwrap();
        assert!(mixed.samples.iter().all(|&s| s == 0.0));
    }

    #[test]
    fn non_finite_float_samples_are_errors() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e38] {
            let bytes = hound_bytes(spec(1, 32, true), |w| {
                w.write_sample(0.5f32).unwrap();
                w.write_sample(bad).unwrap();
            });
            assert!(
                matches!(
                    read_wav_bytes(&bytes, &mono()),
                    Err(AudioError::NonFiniteSample { index: 1, .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn writers_round_trip_through_independent_readers() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let samples: Vec<i16> = (0..1001).map(|_| rng.random()).collect();
        // PCM16: hound reads what we wrote.
        let wave = Waveform::from_i16(16_000, &samples);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pcm16.wav");
        write_wav_pcm16(&path, &wave).unwrap();
        let mut reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.spec().sample_rate, 16_000);
        let read_back: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(read_back, samples);
        assert_eq!(read_wav(&path, &mono()).unwrap(), wave);
        // G.711: fact chunk, tag 6/7, odd length padded; decoding gives the codec's values.
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            let path = dir.path().join("g711.wav");
            write_wav_g711(&path, &samples, law).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.len() % 2, 0, "RIFF chunks are padded to even size");
            assert_eq!(le_u16(&bytes, 20), law.wav_format_tag());
            assert_eq!(&bytes[38..42], b"fact");
            assert_eq!(le_u32(&bytes, 46), 1001);
            let info = probe_wav(&path).unwrap();
            assert_eq!(
                (info.frames, info.sample_rate_hz),
                (1001, G711_SAMPLE_RATE_HZ)
            );
            let decoded = read_wav(&path, &mono()).unwrap();
            let expected: Vec<f32> = samples
                .iter()
                .map(|&s| f32::from(law.decode(law.encode(s))))
                .collect();
            assert_eq!(decoded.samples, expected);
        }
        // Float samples are rounded and clipped; NaN refused; bad rate refused.
        let wave = Waveform {
            sample_rate_hz: 8000,
            samples: vec![0.4, -0.6, 1e6, -1e6],
        };
        let back = read_wav_bytes(&encode_wav_pcm16(&wave).unwrap(), &mono()).unwrap();
        assert_eq!(back.samples, vec![0.0, -1.0, 32767.0, -32768.0]);
        let nan = Waveform {
            sample_rate_hz: 8000,
            samples: vec![f32::NAN],
        };
        assert!(matches!(
            encode_wav_pcm16(&nan),
            Err(AudioError::NonFiniteSample { index: 0, .. })
        ));
        let zero_rate = Waveform {
            sample_rate_hz: 0,
            samples: vec![0.0],
        };
        assert!(matches!(
            encode_wav_pcm16(&zero_rate),
            Err(AudioError::InvalidSampleRate { rate_hz: 0, .. })
        ));
        // I/O errors carry the path.
        let missing = dir.path().join("missing.wav");
        match read_wav(&missing, &mono()) {
            Err(AudioError::Io { path, .. }) => assert_eq!(path, missing),
            other => panic!("{other:?}"),
        }
        assert!(format!("{}", read_wav(&missing, &mono()).unwrap_err()).contains("missing.wav"));
    }

    #[test]
    fn resampling_on_read() {
        let samples: Vec<i16> = (0..16_000)
            .map(|n| (8000.0 * (n as f32 * 0.2).sin()) as i16)
            .collect();
        let bytes = encode_wav_pcm16(&Waveform::from_i16(16_000, &samples)).unwrap();
        let opts = ReadOptions {
            target_sample_rate_hz: Some(8_000),
            ..ReadOptions::default()
        };
        let wave = read_wav_bytes(&bytes, &opts).unwrap();
        assert_eq!((wave.sample_rate_hz, wave.samples.len()), (8_000, 8_000));
        let same = ReadOptions {
            target_sample_rate_hz: Some(16_000),
            ..ReadOptions::default()
        };
        assert_eq!(read_wav_bytes(&bytes, &same).unwrap().samples.len(), 16_000);
    }

    /// Skips unknown chunks, including odd-sized ones followed by a pad byte, before and
    /// after `fmt `.
    #[test]
    fn odd_sized_chunks_are_padded() {
        let plain = encode_wav_g711(&[100, -200, 300], G711Law::MuLaw).unwrap();
        let expected = read_wav_bytes(&plain, &mono()).unwrap();
        let mut bytes = plain[..12].to_vec();
        bytes.extend_from_slice(b"LIST\x03\x00\x00\x00abc\x00");
        bytes.extend_from_slice(&plain[12..38]); // fmt chunk: 8 + 18 bytes
        bytes.extend_from_slice(b"junk\x01\x00\x00\x00z\x00");
        bytes.extend_from_slice(&plain[38..]);
        assert_eq!(read_wav_bytes(&bytes, &mono()).unwrap(), expected);
        // Without the pad byte the walk lands mid-chunk and must not succeed silently.
        let mut unpadded = plain[..12].to_vec();
        unpadded.extend_from_slice(b"LIST\x03\x00\x00\x00abc");
        unpadded.extend_from_slice(&plain[12..]);
        assert!(read_wav_bytes(&unpadded, &mono()).is_err());
    }

    fn pcm16_header(
        channels: u16,
        rate: u32,
        block_align: u16,
        bits: u16,
        tag: u16,
        data_len: u32,
    ) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&tag.to_le_bytes());
        bytes.extend_from_slice(&channels.to_le_bytes());
        bytes.extend_from_slice(&rate.to_le_bytes());
        bytes.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        bytes.extend_from_slice(&block_align.to_le_bytes());
        bytes.extend_from_slice(&bits.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data_len.to_le_bytes());
        bytes
    }

    #[test]
    fn bad_headers_give_specific_errors() {
        let with_data = |mut header: Vec<u8>, n: usize| {
            header.extend(std::iter::repeat_n(0u8, n));
            header
        };
        let check = |bytes: Vec<u8>, what: &str, pred: &dyn Fn(&AudioError) -> bool| {
            let err = read_wav_bytes(&bytes, &mono()).unwrap_err();
            assert!(pred(&err), "{what}: got {err:?}");
            assert!(!err.to_string().is_empty());
        };
        check(b"RIFX\0\0\0\0WAVE".to_vec(), "not riff", &|e| {
            matches!(e, AudioError::NotWav { .. })
        });
        check(b"RIFF\0\0\0\0AVI ".to_vec(), "not wave", &|e| {
            matches!(e, AudioError::NotWav { .. })
        });
        check(b"RIFF\0\0".to_vec(), "short", &|e| {
            matches!(e, AudioError::Truncated { .. })
        });
        check(Vec::new(), "empty file", &|e| {
            matches!(e, AudioError::Truncated { .. })
        });
        check(b"RIFF\x04\0\0\0WAVE".to_vec(), "no chunks", &|e| {
            matches!(e, AudioError::MissingChunk { chunk: "fmt " })
        });
        check(
            with_data(
                pcm16_header(65535, 8000, 65535u16.wrapping_mul(2), 16, 1, 4),
                4,
            ),
            "channels",
            &|e| {
                matches!(
                    e,
                    AudioError::InvalidHeader {
                        field: "channels",
                        value: 65535,
                        ..
                    }
                )
            },
        );
        check(
            with_data(pcm16_header(0, 8000, 0, 16, 1, 4), 4),
            "zero channels",
            &|e| {
                matches!(
                    e,
                    AudioError::InvalidHeader {
                        field: "channels",
                        value: 0,
                        ..
                    }
                )
            },
        );
        check(
            with_data(pcm16_header(1, 0, 2, 16, 1, 4), 4),
            "rate 0",
            &|e| matches!(e, AudioError::InvalidSampleRate { rate_hz: 0, .. }),
        );
        check(
            with_data(pcm16_header(1, 8000, 3, 16, 1, 6), 6),
            "block align",
            &|e| {
                matches!(
                    e,
                    AudioError::InvalidHeader {
                        field: "block_align",
                        value: 3,
                        ..
                    }
                )
            },
        );
        check(
            with_data(pcm16_header(1, 8000, 2, 16, 1, 5), 5),
            "partial frame",
            &|e| {
                matches!(
                    e,
                    AudioError::InvalidHeader {
                        field: "data chunk size",
                        value: 5,
                        ..
                    }
                )
            },
        );
        check(
            with_data(pcm16_header(1, 8000, 2, 16, 1, 4_000_000_000), 100),
            "data beyond file",
            &|e| {
                matches!(
                    e,
                    AudioError::Truncated {
                        what: "data chunk",
                        needed: 4_000_000_000,
                        available: 100
                    }
                )
            },
        );
        check(
            with_data(pcm16_header(1, 8000, 2, 12, 1, 4), 4),
            "12-bit",
            &|e| {
                matches!(
                    e,
                    AudioError::UnsupportedFormat {
                        format_tag: 1,
                        bits_per_sample: 12
                    }
                )
            },
        );
        check(
            with_data(pcm16_header(1, 8000, 1, 8, 0x55, 4), 4),
            "mp3",
            &|e| {
                matches!(
                    e,
                    AudioError::UnsupportedFormat {
                        format_tag: 0x55,
                        ..
                    }
                )
            },
        );
        check(
            with_data(pcm16_header(1, 8000, 2, 16, 7, 4), 4),
            "16-bit mulaw",
            &|e| {
                matches!(
                    e,
                    AudioError::UnsupportedFormat {
                        format_tag: 7,
                        bits_per_sample: 16
                    }
                )
            },
        );
        check(pcm16_header(1, 8000, 2, 16, 1, 0), "no samples", &|e| {
            matches!(e, AudioError::Empty { .. })
        });
        // fact says more frames than the data holds: truncated.
        let mut short = encode_wav_g711(&[1, 2, 3, 4], G711Law::ALaw).unwrap();
        short[46] = 9;
        check(short, "fact > data", &|e| {
            matches!(
                e,
                AudioError::Truncated {
                    needed: 9,
                    available: 4,
                    ..
                }
            )
        });
        // fact says fewer: trailing padding is dropped.
        let mut padded = encode_wav_g711(&[1000, 2000, 3000, 4000], G711Law::ALaw).unwrap();
        padded[46] = 3;
        assert_eq!(read_wav_bytes(&padded, &mono()).unwrap().samples.len(), 3);
        // Error messages say what was expected.
        let message = read_wav_bytes(&with_data(pcm16_header(1, 8000, 2, 12, 1, 4), 4), &mono())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("12 bits") && message.contains("supported"),
            "{message}"
        );
    }

    fn valid_files() -> Vec<Vec<u8>> {
        let stereo24 = hound_bytes(spec(2, 24, false), |w| {
            for n in 0..300 {
                w.write_sample((n * 7919) % 100_000 - 50_000).unwrap();
            }
        });
        let mut with_list =
            encode_wav_pcm16(&Waveform::from_i16(8000, &[5, -5, 500, -500, 7])).unwrap();
        with_list.extend_from_slice(b"LIST\x05\x00\x00\x00hello\x00");
        vec![
            fixture("sweep_ulaw.wav"),
            fixture("tones_alaw_3ch.wav"),
            stereo24,
            with_list,
        ]
    }

    fn read_any(bytes: &[u8]) -> Result<Waveform, AudioError> {
        let _ = probe_wav_bytes(bytes);
        read_wav_bytes(bytes, &with_channels(ChannelPolicy::Downmix))
    }

    /// Every truncation of valid files: never a panic; an error whenever the cut removes
    /// any header or sample byte (only trailing chunks after the data may go).
    #[test]
    fn truncations_never_panic_and_never_pass_silently() {
        for file in valid_files() {
            let parsed = parse(&file).unwrap();
            let data_end =
                parsed.data.as_ptr() as usize - file.as_ptr() as usize + parsed.data.len();
            let full = read_any(&file).unwrap();
            for len in 0..file.len() {
                let result = read_any(&file[..len]);
                if len < data_end {
                    assert!(result.is_err(), "cut at {len} of {} accepted", file.len());
                } else {
                    assert_eq!(result.unwrap(), full);
                }
            }
        }
    }

    /// Seeded random byte corruption: never a panic; anything accepted is finite and no
    /// longer than the bytes could hold.
    #[test]
    fn random_byte_flips_never_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(2024);
        for file in valid_files() {
            for _ in 0..3000 {
                let mut bytes = file.clone();
                for _ in 0..rng.random_range(1..=4) {
                    let at = rng.random_range(0..bytes.len());
                    // Bias towards the header, where the interesting fields live.
                    let at = if rng.random_bool(0.7) {
                        at % 64.min(bytes.len())
                    } else {
                        at
                    };
                    bytes[at] = rng.random();
                }
                if let Ok(wave) = read_any(&bytes) {
                    assert!(wave.check_finite().is_ok());
                    assert!(!wave.samples.is_empty() && wave.samples.len() <= bytes.len());
                }
            }
        }
    }

    fn corpus_dir() -> Option<PathBuf> {
        let candidates = [
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
            PathBuf::from("/work/shared/corpus"),
        ];
        candidates.into_iter().find(|dir| dir.join("dev").is_dir())
    }

    fn corpus_wavs(dir: &Path, limit: usize) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut speakers: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        speakers.sort();
        for speaker in speakers {
            let mut clips: Vec<PathBuf> = std::fs::read_dir(&speaker)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            clips.sort();
            files.extend(
                clips
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "wav"))
                    .take(2),
            );
            if files.len() >= limit {
                break;
            }
        }
        files
    }

    /// Real corpus files (skipped when the corpus is absent): 16-bit PCM agrees with hound
    /// sample for sample; μ-law (tag 7 + fact) reads with the fact frame count.
    #[test]
    fn corpus_files_read() {
        let Some(corpus) = corpus_dir() else {
            eprintln!("corpus not found; skipping");
            return;
        };
        let pcm_files = corpus_wavs(&corpus.join("dev/enroll"), 40);
        assert!(!pcm_files.is_empty());
        for path in &pcm_files {
            let info = probe_wav(path).unwrap();
            assert_eq!(
                (
                    info.format,
                    info.bits_per_sample,
                    info.sample_rate_hz,
                    info.channels
                ),
                (WavFormat::Pcm, 16, 8000, 1)
            );
            let wave = read_wav(path, &mono()).unwrap();
            let mut reader = hound::WavReader::open(path).unwrap();
            let oracle: Vec<f32> = reader
                .samples::<i16>()
                .map(|s| f32::from(s.unwrap()))
                .collect();
            assert_eq!(wave.samples, oracle, "{}", path.display());
        }
        let ulaw_files = corpus_wavs(&corpus.join("dev-read/enroll"), 40);
        assert!(!ulaw_files.is_empty());
        for path in &ulaw_files {
            let bytes = std::fs::read(path).unwrap();
            let info = probe_wav_bytes(&bytes).unwrap();
            assert_eq!(
                (info.format, info.sample_rate_hz, info.channels),
                (WavFormat::MuLaw, 8000, 1)
            );
            let wave = read_wav_bytes(&bytes, &mono()).unwrap();
            assert_eq!(wave.samples.len() as u64, info.frames);
            assert!(wave.samples.iter().all(|s| s.abs() <= 32124.0));
            assert!(wave.duration_s() > 0.5, "{}", path.display());
        }
    }

    /// Every WAV in the corpus reads (slow-ish, ~6500 files): `cargo test --release
    /// whole_corpus_reads -- --ignored`.
    #[test]
    #[ignore]
    fn whole_corpus_reads() {
        let Some(corpus) = corpus_dir() else {
            eprintln!("corpus not found; skipping");
            return;
        };
        let mut stack = vec![corpus];
        let (mut files, mut seconds) = (0usize, 0.0f64);
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "wav") {
                    let wave = read_wav(&path, &mono())
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert_eq!(wave.sample_rate_hz, 8000, "{}", path.display());
                    files += 1;
                    seconds += wave.duration_s();
                }
            }
        }
        eprintln!("read {files} files, {:.1} h", seconds / 3600.0);
        assert!(files > 0);
    }
}
