//! Lost voice packets and the jitter buffer's concealment.

use rand::Rng;

use super::{check_finite, invalid, AugmentError};

/// What the receiver plays in place of a lost packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Concealment {
    /// Silence (a plain G.711 receiver without packet-loss concealment).
    Zero,
    /// The previous packet again (a simple jitter buffer); silence if the first packet is lost.
    RepeatPrevious,
}

/// Packet-loss channel: a fixed fraction of fixed-length packets is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketLoss {
    /// Fraction of packets lost, in [0, 0.5].
    pub loss_fraction: f64,
    /// Packet length in ms (20 ms = 160 samples at 8 kHz, the usual RTP packetisation).
    pub packet_ms: f64,
    /// Concealment of a lost packet.
    pub concealment: Concealment,
}

impl Default for PacketLoss {
    /// 2 % of 20-ms packets lost, repeated.
    fn default() -> Self {
        Self {
            loss_fraction: 0.02,
            packet_ms: 20.0,
            concealment: Concealment::RepeatPrevious,
        }
    }
}

impl PacketLoss {
    /// Packet length in samples at `sample_rate_hz`; errors on invalid parameters.
    pub fn packet_samples(&self, sample_rate_hz: u32) -> Result<usize, AugmentError> {
        if !(self.loss_fraction.is_finite() && (0.0..=0.5).contains(&self.loss_fraction)) {
            return Err(invalid(
                "loss_fraction",
                format!("expected 0 ..= 0.5, got {}", self.loss_fraction),
            ));
        }
        let samples = (self.packet_ms * f64::from(sample_rate_hz) / 1000.0).round();
        if !(samples.is_finite() && samples >= 1.0) {
            return Err(invalid(
                "packet_ms",
                format!(
                    "expected a packet of >= 1 sample at {sample_rate_hz} Hz, got {} ms",
                    self.packet_ms
                ),
            ));
        }
        Ok(samples as usize)
    }
}

/// Loses `round(loss_fraction · packets)` packets chosen uniformly at random (the last, partial
/// packet counts as one) and conceals them. Returns the samples and the indices of the lost
/// packets in increasing order.
pub fn drop_packets<R: Rng + ?Sized>(
    samples: &[f32],
    sample_rate_hz: u32,
    loss: &PacketLoss,
    rng: &mut R,
) -> Result<(Vec<f32>, Vec<usize>), AugmentError> {
    check_finite(samples)?;
    let packet = loss.packet_samples(sample_rate_hz)?;
    let packets = samples.len().div_ceil(packet);
    let lost_count = (loss.loss_fraction * packets as f64).round() as usize;
    let mut lost: Vec<usize> = rand::seq::index::sample(rng, packets, lost_count.min(packets))
        .into_iter()
        .collect();
    lost.sort_unstable();
    let mut out = samples.to_vec();
    // Packets are concealed in order, so a repeat of a lost packet repeats its concealment.
    for &p in &lost {
        let start = p * packet;
        let end = (start + packet).min(out.len());
        match loss.concealment {
            Concealment::RepeatPrevious if p > 0 => {
                let prev = start - packet;
                for n in 0..end - start {
                    out[start + n] = out[prev + n];
                }
            }
            _ => out[start..end].fill(0.0),
        }
    }
    Ok((out, lost))
}
