//! Channel recipes: random draws of one channel kind and their rendering.

use std::fmt;

use rand::Rng;

use super::{
    apply_gain_db, apply_line_response, babble, coloured_noise, drop_packets, g711_tandem, invalid,
    mix_at_snr, AugmentError, Concealment, LineResponse, NoiseColour, PacketLoss,
};
use crate::audio::G711Law;

/// A codec the library does not implement; [`render`] hands it to a caller-supplied hook
/// (the CLI runs sox). Runtime code never needs these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExternalCodec {
    /// 3GPP AMR narrow-band at one of [`ExternalCodec::AMR_NB_RATES_BPS`] bit/s.
    AmrNb {
        /// Bit rate in bit/s.
        bitrate_bps: u32,
    },
    /// ETSI GSM 06.10 full rate (13 kbit/s).
    Gsm0610,
}

impl ExternalCodec {
    /// The eight AMR-NB modes MR475 … MR122, in bit/s (mode index = position).
    pub const AMR_NB_RATES_BPS: [u32; 8] = [4750, 5150, 5900, 6700, 7400, 7950, 10200, 12200];

    /// The AMR-NB mode index 0 ..= 7 (sox `-C`), `None` for other codecs or unknown rates.
    pub fn amr_mode(self) -> Option<u8> {
        match self {
            ExternalCodec::AmrNb { bitrate_bps } => Self::AMR_NB_RATES_BPS
                .iter()
                .position(|&r| r == bitrate_bps)
                .map(|m| m as u8),
            ExternalCodec::Gsm0610 => None,
        }
    }
}

/// Where additive noise comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoiseSource {
    /// Synthetic coloured noise.
    Colour(NoiseColour),
    /// Babble of this many talkers from the babble pool given to [`render`].
    Babble {
        /// Number of simultaneous talkers.
        talkers: usize,
    },
}

/// One step of a channel. A channel is a sequence of steps applied in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Channel {
    /// Additive noise at `snr_db` dB SNR (whole-signal powers, see [`mix_at_snr`]).
    Noise {
        /// Noise source.
        source: NoiseSource,
        /// Signal-to-noise ratio in dB.
        snr_db: f64,
    },
    /// A handset / line frequency response.
    Line(LineResponse),
    /// A level change in dB, saturating at 16 bits.
    Gain {
        /// Gain in dB.
        gain_db: f64,
    },
    /// G.711 coders in turn (e.g. A-law then μ-law: a transcoded international call).
    G711Tandem(Vec<G711Law>),
    /// A mobile / legacy codec run by the caller's hook.
    Codec(ExternalCodec),
    /// Lost packets with concealment.
    PacketLoss(PacketLoss),
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Noise { source, snr_db } => match source {
                NoiseSource::Colour(c) => write!(f, "noise {c:?} snr={snr_db:.1}dB"),
                NoiseSource::Babble { talkers } => {
                    write!(f, "noise babble{talkers} snr={snr_db:.1}dB")
                }
            },
            Channel::Line(r) => write!(
                f,
                "line {:.0}-{:.0}Hz order{} tilt={:+.1}dB/oct gain={:+.1}dB",
                r.low_hz, r.high_hz, r.edge_order, r.tilt_db_per_octave, r.gain_db
            ),
            Channel::Gain { gain_db } => write!(f, "gain {gain_db:+.1}dB"),
            Channel::G711Tandem(laws) => {
                write!(f, "g711")?;
                for law in laws {
                    write!(
                        f,
                        " {}",
                        match law {
                            G711Law::MuLaw => "mu",
                            G711Law::ALaw => "a",
                        }
                    )?;
                }
                Ok(())
            }
            Channel::Codec(ExternalCodec::AmrNb { bitrate_bps }) => {
                write!(f, "amr-nb {bitrate_bps}bps")
            }
            Channel::Codec(ExternalCodec::Gsm0610) => write!(f, "gsm-06.10"),
            Channel::PacketLoss(p) => write!(
                f,
                "packet-loss {:.1}% of {:.0}ms {:?}",
                100.0 * p.loss_fraction,
                p.packet_ms,
                p.concealment
            ),
        }
    }
}

/// The channel kinds a degraded set is reported by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ChannelKind {
    /// Mobile and legacy codecs, G.711 tandems.
    Codec,
    /// Additive noise (babble, white, pink, brown) at 5–20 dB SNR.
    Noise,
    /// Handset / line responses and level changes.
    Handset,
    /// Lost 20-ms packets (1–5 %), zeroed or repeated.
    PacketLoss,
}

impl ChannelKind {
    /// Every kind, in report order.
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Codec,
        ChannelKind::Noise,
        ChannelKind::Handset,
        ChannelKind::PacketLoss,
    ];

    /// Short name used in folder names (`codec`, `noise`, `handset`, `packet-loss`).
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Codec => "codec",
            ChannelKind::Noise => "noise",
            ChannelKind::Handset => "handset",
            ChannelKind::PacketLoss => "packet-loss",
        }
    }

    /// The kind named `name` (see [`ChannelKind::name`]).
    pub fn from_name(name: &str) -> Result<Self, AugmentError> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                invalid(
                    "channel kind",
                    format!("expected codec, noise, handset or packet-loss, got {name:?}"),
                )
            })
    }

    /// Draws a random channel of this kind. Every channel ends at a μ-law endpoint, as the
    /// clean corpus does. Distributions:
    /// - codec: uniformly AMR-NB 4.75 / 7.95 / 12.2 kbit/s, GSM 06.10, A-law→μ-law tandem,
    ///   double A-law/μ-law tandem;
    /// - noise: uniformly babble of 3–7 talkers, white, pink, brown; SNR uniform in 5–20 dB;
    ///   then the 300–3400 Hz telephone band;
    /// - handset: uniformly telephone 300–3400 Hz with tilt ±3 dB/oct, wide 200–3600 Hz with
    ///   tilt ±2, old handset 400–3000 Hz tilt 0…+4, the narrower quieter handset
    ///   ([`LineResponse::narrow_handset`]), a muffled speakerphone (tilt −6…−3 dB/oct); then a
    ///   level change uniform in −12…+6 dB;
    /// - packet loss: 1–5 % of 20-ms packets, zeroed or repeated with equal probability.
    pub fn draw<R: Rng + ?Sized>(self, rng: &mut R) -> Vec<Channel> {
        let mu = Channel::G711Tandem(vec![G711Law::MuLaw]);
        match self {
            ChannelKind::Codec => {
                let step = match rng.random_range(0..6) {
                    0 => Channel::Codec(ExternalCodec::AmrNb { bitrate_bps: 4750 }),
                    1 => Channel::Codec(ExternalCodec::AmrNb { bitrate_bps: 7950 }),
                    2 => Channel::Codec(ExternalCodec::AmrNb { bitrate_bps: 12200 }),
                    3 => Channel::Codec(ExternalCodec::Gsm0610),
                    4 => Channel::G711Tandem(vec![G711Law::ALaw, G711Law::MuLaw]),
                    _ => Channel::G711Tandem(vec![
                        G711Law::ALaw,
                        G711Law::MuLaw,
                        G711Law::ALaw,
                        G711Law::MuLaw,
                    ]),
                };
                if matches!(step, Channel::G711Tandem(_)) {
                    vec![step]
                } else {
                    vec![step, mu]
                }
            }
            ChannelKind::Noise => {
                let source = match rng.random_range(0..4) {
                    0 => NoiseSource::Babble {
                        talkers: rng.random_range(3..=7),
                    },
                    1 => NoiseSource::Colour(NoiseColour::White),
                    2 => NoiseSource::Colour(NoiseColour::Pink),
                    _ => NoiseSource::Colour(NoiseColour::Brown),
                };
                let snr_db = rng.random_range(5.0..20.0);
                vec![
                    Channel::Noise { source, snr_db },
                    Channel::Line(LineResponse::telephone()),
                    mu,
                ]
            }
            ChannelKind::Handset => {
                let tel = LineResponse::telephone();
                let response = match rng.random_range(0..5) {
                    0 => LineResponse {
                        tilt_db_per_octave: rng.random_range(-3.0..3.0),
                        ..tel
                    },
                    1 => LineResponse {
                        low_hz: 200.0,
                        high_hz: 3600.0,
                        tilt_db_per_octave: rng.random_range(-2.0..2.0),
                        ..tel
                    },
                    2 => LineResponse {
                        low_hz: 400.0,
                        high_hz: 3000.0,
                        tilt_db_per_octave: rng.random_range(0.0..4.0),
                        ..tel
                    },
                    3 => LineResponse::narrow_handset(),
                    _ => LineResponse {
                        tilt_db_per_octave: rng.random_range(-6.0..-3.0),
                        ..tel
                    },
                };
                let gain_db = rng.random_range(-12.0..6.0);
                vec![Channel::Line(response), Channel::Gain { gain_db }, mu]
            }
            ChannelKind::PacketLoss => {
                let loss = PacketLoss {
                    loss_fraction: rng.random_range(0.01..0.05),
                    packet_ms: 20.0,
                    concealment: if rng.random_bool(0.5) {
                        Concealment::Zero
                    } else {
                        Concealment::RepeatPrevious
                    },
                };
                vec![Channel::PacketLoss(loss), mu]
            }
        }
    }
}

/// The hook [`render`] calls for [`Channel::Codec`] steps: codec and input samples (16-bit
/// scale) in, decoded samples out.
pub type CodecHook<'a> = dyn FnMut(ExternalCodec, &[f32]) -> Result<Vec<f32>, AugmentError> + 'a;

/// A codec runner that parallel renderers can share (e.g. sox behind a `Fn`).
pub type SharedCodec<'a> =
    dyn Fn(ExternalCodec, &[f32]) -> Result<Vec<f32>, AugmentError> + Sync + 'a;

/// The output of [`render`].
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Samples in 16-bit scale, same length as the input.
    pub samples: Vec<f32>,
    /// The steps applied, `" | "`-separated (their [`Channel`] display).
    pub description: String,
    /// Samples clipped by level changes.
    pub clipped_samples: usize,
    /// Packets lost.
    pub lost_packets: usize,
}

/// Applies `channels` in order to `samples` (16-bit scale at `sample_rate_hz`). Babble is drawn
/// from `babble_pool`; [`Channel::Codec`] steps go to `codec`, whose output is cut or
/// zero-padded to the input length (codecs add a few samples of delay or padding). Output
/// samples are clamped to the 16-bit range. Deterministic for the state of `rng`.
pub fn render<R: Rng + ?Sized>(
    samples: &[f32],
    sample_rate_hz: u32,
    channels: &[Channel],
    babble_pool: &[Vec<f32>],
    rng: &mut R,
    codec: &mut CodecHook<'_>,
) -> Result<Rendered, AugmentError> {
    if samples.is_empty() {
        return Err(AugmentError::InvalidInput(
            "expected a non-empty waveform, got 0 samples".into(),
        ));
    }
    let mut out = samples.to_vec();
    let mut clipped_samples = 0;
    let mut lost_packets = 0;
    for step in channels {
        out = match step {
            Channel::Noise { source, snr_db } => {
                let noise = match source {
                    NoiseSource::Colour(c) => coloured_noise(*c, out.len().max(2), rng)?,
                    NoiseSource::Babble { talkers } => {
                        babble(babble_pool, *talkers, out.len(), rng)?
                    }
                };
                mix_at_snr(&out, &noise, *snr_db)?
            }
            Channel::Line(response) => apply_line_response(&out, sample_rate_hz, response)?,
            Channel::Gain { gain_db } => {
                let (v, clipped) = apply_gain_db(&out, *gain_db)?;
                clipped_samples += clipped;
                v
            }
            Channel::G711Tandem(laws) => g711_tandem(&out, laws)?,
            Channel::Codec(c) => {
                let mut v = codec(*c, &out)?;
                v.resize(out.len(), 0.0);
                v
            }
            Channel::PacketLoss(loss) => {
                let (v, lost) = drop_packets(&out, sample_rate_hz, loss, rng)?;
                lost_packets += lost.len();
                v
            }
        };
    }
    for s in &mut out {
        *s = s.clamp(-32768.0, 32767.0);
    }
    let description = channels
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" | ");
    Ok(Rendered {
        samples: out,
        description,
        clipped_samples,
        lost_packets,
    })
}
