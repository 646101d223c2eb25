//! Signal quality of a call from its frame log energies: the spread between loud and quiet
//! frames, a cheap, robust SNR proxy that needs no speech model.
//!
//! On a clean line the quiet 10 % of the frames are pauses near the line's hiss and the loud 10 %
//! are vowels, 9–11 nats apart on telephone speech (≈ 40–48 dB); additive noise at 5–10 dB fills
//! the pauses and the spread falls to 3–6 nats. The calibration of the fused scores uses it as a
//! quality measure ([`crate::calibration::QualityCalibration`]) so that an LLR means the same on a
//! clean and on a noisy line; sessions report it as the call's SNR estimate.
//!
//! The quantiles come from a fixed histogram (bins of [`EnergyRange::BIN_NATS`]), so a streaming
//! session and a batch analysis of the same audio give the same value bit for bit, with no
//! allocation per frame and no sort.

/// Histogram of frame log energies (natural log of the frame energy, as
/// [`super::MfccExtractor::compute_with_energy`] gives them) from [`EnergyRange::LOW_NATS`] to
/// [`EnergyRange::HIGH_NATS`]; values outside are counted in the first or last bin.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyRange {
    counts: Vec<u32>,
    total: u64,
}

impl Default for EnergyRange {
    fn default() -> Self {
        Self::new()
    }
}

impl EnergyRange {
    /// Width of a histogram bin, nats (0.22 dB).
    pub const BIN_NATS: f64 = 0.05;
    /// Lower edge of the first bin, nats (below the log of a digital-silence frame's floored
    /// energy, −15.9).
    pub const LOW_NATS: f64 = -20.0;
    /// Upper edge of the last bin, nats (a full-scale 25-ms frame at 8 kHz is ≈ 26).
    pub const HIGH_NATS: f64 = 40.0;
    const BINS: usize = ((Self::HIGH_NATS - Self::LOW_NATS) / Self::BIN_NATS) as usize;

    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; Self::BINS],
            total: 0,
        }
    }

    /// The histogram of these frame log energies.
    pub fn of_log_energy(log_energy: &[f32]) -> Self {
        let mut range = Self::new();
        range.extend(log_energy);
        range
    }

    /// The histogram of a whole recording: its frame log energies as the MFCC front end with
    /// `mfcc` computes them (what a session counts as the call streams in).
    pub fn of_samples(
        mfcc: &super::MfccOptions,
        samples: &[f32],
    ) -> Result<Self, super::FeatureError> {
        let (_, energy) = super::MfccExtractor::new(mfcc.clone())?.compute_with_energy(samples)?;
        Ok(Self::of_log_energy(&energy))
    }

    /// Forgets every frame.
    pub fn reset(&mut self) {
        self.counts.fill(0);
        self.total = 0;
    }

    /// Counts one frame's log energy (NaN counts in the first bin).
    pub fn push(&mut self, log_energy: f32) {
        let x = (f64::from(log_energy) - Self::LOW_NATS) / Self::BIN_NATS;
        let bin = if x.is_nan() {
            0
        } else {
            (x.max(0.0) as usize).min(Self::BINS - 1)
        };
        self.counts[bin] += 1;
        self.total += 1;
    }

    /// Counts every frame of `log_energy`.
    pub fn extend(&mut self, log_energy: &[f32]) {
        for &e in log_energy {
            self.push(e);
        }
    }

    /// Adds the frames counted by `other` (the range of two recordings of one session).
    pub fn merge(&mut self, other: &EnergyRange) {
        for (c, &o) in self.counts.iter_mut().zip(&other.counts) {
            *c += o;
        }
        self.total += other.total;
    }

    /// Number of frames counted.
    pub fn frames(&self) -> u64 {
        self.total
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) of the counted log energies, nats: the lower edge of the bin
    /// holding the frame of rank round((n − 1)·q) in increasing order; `None` without frames.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let target = ((self.total - 1) as f64 * q.clamp(0.0, 1.0)).round() as u64;
        let mut seen = 0u64;
        for (bin, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen > target {
                return Some(Self::LOW_NATS + bin as f64 * Self::BIN_NATS);
            }
        }
        Some(Self::LOW_NATS + (Self::BINS - 1) as f64 * Self::BIN_NATS)
    }

    /// 90th minus 10th percentile of the frame log energies, nats; `None` with fewer than two
    /// frames.
    pub fn spread_nats(&self) -> Option<f64> {
        if self.total < 2 {
            return None;
        }
        Some(self.quantile(0.9)? - self.quantile(0.1)?)
    }

    /// [`spread_nats`](Self::spread_nats) in dB of energy (10·log10), 0 with fewer than two
    /// frames.
    pub fn spread_db(&self) -> f64 {
        self.spread_nats().unwrap_or(0.0) * 10.0 / std::f64::consts::LN_10
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Quantiles match the order statistics of a sorted copy to within one bin.
    #[test]
    fn quantiles_match_sorted_order_statistics_within_a_bin() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for n in [2usize, 3, 10, 101, 5000] {
            let values: Vec<f32> = (0..n).map(|_| rng.random_range(-18.0..35.0)).collect();
            let mut h = EnergyRange::new();
            h.extend(&values);
            let mut sorted = values.clone();
            sorted.sort_by(f32::total_cmp);
            for q in [0.0, 0.1, 0.5, 0.9, 1.0] {
                let exact = f64::from(sorted[((n - 1) as f64 * q).round() as usize]);
                let got = h.quantile(q).unwrap();
                assert!(
                    got <= exact + 1e-9 && exact - got < EnergyRange::BIN_NATS + 1e-9,
                    "n {n} q {q}: {got} vs {exact}"
                );
            }
        }
    }

    /// Merging the ranges of two recordings counts what one range of both would.
    #[test]
    fn merge_counts_both_recordings() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let a: Vec<f32> = (0..300).map(|_| rng.random_range(-5.0..20.0)).collect();
        let b: Vec<f32> = (0..77).map(|_| rng.random_range(0.0..30.0)).collect();
        let mut merged = EnergyRange::of_log_energy(&a);
        merged.merge(&EnergyRange::of_log_energy(&b));
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert_eq!(merged, EnergyRange::of_log_energy(&both));
        assert_eq!(merged.frames(), 377);
    }

    #[test]
    fn spread_of_two_levels_and_edge_cases() {
        let mut h = EnergyRange::new();
        assert_eq!(h.quantile(0.5), None);
        h.push(10.0);
        assert_eq!(h.spread_nats(), None);
        assert_eq!(h.spread_db(), 0.0);
        // 50 quiet frames at 8.0 nats and 50 loud ones at 18.0: spread 10 nats = 43.4 dB
        h.reset();
        h.extend(&[8.0; 50]);
        h.extend(&[18.0; 50]);
        let s = h.spread_nats().unwrap();
        assert!((s - 10.0).abs() <= EnergyRange::BIN_NATS, "{s}");
        assert!((h.spread_db() - s * 4.342_944_819).abs() < 1e-6);
        // out of range and NaN land in the end bins instead of panicking
        h.extend(&[-100.0, 100.0, f32::NAN]);
        assert_eq!(h.frames(), 103);
        assert_eq!(h.quantile(0.0), Some(EnergyRange::LOW_NATS));
        assert!(h.quantile(1.0).unwrap() > 39.9);
    }
}
