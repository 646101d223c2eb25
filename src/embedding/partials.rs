//! Placement of the 160-frame partial windows over an utterance (Resemblyzer's
//! `compute_partial_slices` with rate 1.3 per second and minimum coverage 0.75).

use super::arch::{
    ENCODER_SAMPLE_RATE_HZ, HOP_SAMPLES, MIN_COVERAGE, PARTIALS_PER_SECOND, PARTIAL_FRAMES,
};

/// Frames between the starts of two partial windows (77 at 1.3 windows per second).
pub fn partial_step_frames() -> usize {
    (f64::from(ENCODER_SAMPLE_RATE_HZ) / PARTIALS_PER_SECOND / HOP_SAMPLES as f64).round() as usize
}

/// Start frames of the partial windows for an utterance of `n_samples` samples at 16 kHz.
/// Always at least one window; the last is dropped if less than 75 % of it is real audio.
pub fn partial_window_starts(n_samples: usize) -> Vec<usize> {
    let step = partial_step_frames();
    let n_frames = (n_samples + 1).div_ceil(HOP_SAMPLES);
    let span = (n_frames + step + 1).saturating_sub(PARTIAL_FRAMES).max(1);
    let mut starts: Vec<usize> = (0..span).step_by(step).collect();
    if let Some(&last) = starts.last() {
        let window_samples = (PARTIAL_FRAMES * HOP_SAMPLES) as f64;
        let coverage = (n_samples as f64 - (last * HOP_SAMPLES) as f64) / window_samples;
        if coverage < MIN_COVERAGE && starts.len() > 1 {
            starts.pop();
        }
    }
    starts
}

/// Samples the waveform is zero-padded to before the mel spectrogram (end of the last window),
/// or `n_samples` if that is longer.
pub fn padded_length(n_samples: usize, starts: &[usize]) -> usize {
    let stop = starts
        .last()
        .map_or(0, |&s| (s + PARTIAL_FRAMES) * HOP_SAMPLES);
    stop.max(n_samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct transcription of the placement rule with floating point, as an oracle.
    fn oracle(n_samples: usize) -> Vec<usize> {
        let n_frames = ((n_samples as f64 + 1.0) / 160.0).ceil() as i64;
        let step = ((16000.0 / 1.3) / 160.0f64).round() as i64;
        let steps = (n_frames - 160 + step + 1).max(1);
        let mut v: Vec<usize> = (0..steps)
            .step_by(step as usize)
            .map(|s| s as usize)
            .collect();
        let last = *v.last().unwrap() as f64;
        let coverage = (n_samples as f64 - last * 160.0) / (160.0 * 160.0);
        if coverage < 0.75 && v.len() > 1 {
            v.pop();
        }
        v
    }

    #[test]
    fn matches_transcribed_rule_for_many_lengths() {
        assert_eq!(partial_step_frames(), 77);
        for n in (0..200_000).step_by(97) {
            assert_eq!(partial_window_starts(n), oracle(n), "n_samples {n}");
        }
    }

    #[test]
    fn seven_seconds_has_eight_windows() {
        // resemblyzer_ref.py reports 8 partials for a 7.000 s segment without preprocessing
        assert_eq!(partial_window_starts(112_000).len(), 8);
    }
}
