//! Held-out calibration trials that look like the development sets.
//!
//! The held-out background speakers are of two kinds: read-sentence speakers (speechocean762,
//! 2–8-s files) and isolated-word speakers (Speech Commands, 1-s clips). The development sets
//! enrol on ~30 s of a speaker's files (each file through the front end on its own) and test on
//! 7.000-s segments cut from the concatenation of the speaker's other files. [`held_out_design`]
//! builds the same kind of trials from both kinds of held-out speakers:
//!
//! - **read speakers**: enrollment = the first files until `enroll_seconds` of audio; the rest is
//!   concatenated and cut into test segments whose lengths cycle through `segment_seconds`;
//! - **word speakers** (too few clips for 30 s + a test): each rotation takes a window of
//!   `word_clips_per_test` consecutive clips, concatenated and cut to `word_test_seconds`, as the
//!   test, and enrols on all the other clips. Windows start every `word_rotation_step` clips, so
//!   one speaker gives several target trials. Only the first rotation's enrollment is a gallery
//!   entry for other speakers' tests (no duplicated non-target trials), and a test is never
//!   scored against another rotation of its own speaker (overlapping material).

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audio::Waveform;
use crate::embedding::{EmbedderOptions, SpeakerEmbedder, SpeakerEncoder};
use crate::engine::embedding_system::EmbeddingSum;
use crate::features::{FeatureMatrix, FrontEnd, FrontEndOptions};

use super::RecipeError;

/// Options of [`held_out_design`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeldOutDesignOptions {
    /// Audio (s) of a read speaker's enrollment (first files until reached). Default 30.
    pub enroll_seconds: f64,
    /// Lengths (s) of read speakers' test segments, cycled. Default [3, 5, 7].
    pub segment_seconds: Vec<f64>,
    /// A speaker whose median file is at most this long (s) is a word speaker. Default 1.5.
    pub word_max_median_seconds: f64,
    /// Clips concatenated into one word test. Default 7 (dev's 7-s tests of 1-s words).
    pub word_clips_per_test: usize,
    /// Word tests are cut to this length (s). Default 7.
    pub word_test_seconds: f64,
    /// Clips between the starts of two rotations' test windows. Default 2.
    pub word_rotation_step: usize,
    /// A word rotation needs at least this many enrollment clips. Default 8.
    pub word_min_enroll_clips: usize,
}

impl Default for HeldOutDesignOptions {
    fn default() -> Self {
        Self {
            enroll_seconds: 30.0,
            segment_seconds: vec![3.0, 5.0, 7.0],
            word_max_median_seconds: 1.5,
            word_clips_per_test: 7,
            word_test_seconds: 7.0,
            word_rotation_step: 2,
            word_min_enroll_clips: 8,
        }
    }
}

/// Enrollments and tests over in-memory audio items (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct HeldOutDesign {
    /// Audio items: single enrollment files and concatenated test segments (8 kHz).
    pub items: Vec<Waveform>,
    /// Item indices of each enrollment (each item through the front end separately, then joined).
    pub enrollments: Vec<Vec<usize>>,
    /// Held-out speaker index of each enrollment.
    pub enrollment_speaker: Vec<usize>,
    /// Whether an enrollment is a gallery entry for other speakers' tests.
    pub primary: Vec<bool>,
    /// Whether each enrollment comes from a word speaker.
    pub enrollment_word: Vec<bool>,
    /// (own enrollment, item) of each test.
    pub tests: Vec<(usize, usize)>,
    /// Whether each test comes from a word speaker.
    pub word_test: Vec<bool>,
}

impl HeldOutDesign {
    /// Label of every (test, enrollment) pair, test-major: `Some(true)` for the test's own
    /// enrollment, `Some(false)` for another speaker's primary enrollment of the same condition
    /// (word or read: the development sets' non-target trials never mix the two), `None` (not a
    /// trial) otherwise.
    pub fn labels(&self) -> Vec<Option<bool>> {
        let mut out = Vec::with_capacity(self.tests.len() * self.enrollments.len());
        for (t, &(own, _)) in self.tests.iter().enumerate() {
            let spk = self.enrollment_speaker[own];
            for e in 0..self.enrollments.len() {
                out.push(if e == own {
                    Some(true)
                } else if self.enrollment_speaker[e] != spk
                    && self.primary[e]
                    && self.enrollment_word[e] == self.word_test[t]
                {
                    Some(false)
                } else {
                    None
                });
            }
        }
        out
    }

    /// (target, non-target) trial counts, and the target count from word speakers.
    pub fn counts(&self) -> (usize, usize, usize) {
        let labels = self.labels();
        let t = labels.iter().filter(|l| **l == Some(true)).count();
        let n = labels.iter().filter(|l| **l == Some(false)).count();
        let w = self.word_test.iter().filter(|&&w| w).count();
        (t, n, w)
    }
}

fn concat(waves: &[&Waveform], max_samples: usize) -> Waveform {
    let mut samples = Vec::new();
    for w in waves {
        samples.extend_from_slice(&w.samples);
    }
    samples.truncate(max_samples);
    Waveform {
        sample_rate_hz: 8000,
        samples,
    }
}

fn secs(s: f64) -> usize {
    (s * 8000.0).round() as usize
}

/// Builds the design from each held-out speaker's files (8 kHz audio, in corpus order).
pub fn held_out_design(speakers: &[Vec<Waveform>], opts: &HeldOutDesignOptions) -> HeldOutDesign {
    let mut d = HeldOutDesign::default();
    for (spk, files) in speakers.iter().enumerate() {
        if files.is_empty() {
            continue;
        }
        let mut lens: Vec<usize> = files.iter().map(|w| w.samples.len()).collect();
        lens.sort_unstable();
        let median = lens[lens.len() / 2];
        if median <= secs(opts.word_max_median_seconds) {
            word_speaker(&mut d, spk, files, opts);
        } else {
            read_speaker(&mut d, spk, files, opts);
        }
    }
    d
}

fn read_speaker(
    d: &mut HeldOutDesign,
    spk: usize,
    files: &[Waveform],
    opts: &HeldOutDesignOptions,
) {
    let mut enroll = Vec::new();
    let mut n = 0;
    let mut k = 0;
    while k < files.len() && n < secs(opts.enroll_seconds) {
        enroll.push(d.items.len());
        d.items.push(files[k].clone());
        n += files[k].samples.len();
        k += 1;
    }
    let e = d.enrollments.len();
    d.enrollments.push(enroll);
    d.enrollment_speaker.push(spk);
    d.primary.push(true);
    d.enrollment_word.push(false);
    let rest: Vec<&Waveform> = files[k..].iter().collect();
    let all = concat(&rest, usize::MAX);
    let mut start = 0;
    for &len in opts.segment_seconds.iter().cycle() {
        let len = secs(len);
        if len == 0 || start + len > all.samples.len() {
            break;
        }
        d.tests.push((e, d.items.len()));
        d.word_test.push(false);
        d.items.push(Waveform {
            sample_rate_hz: 8000,
            samples: all.samples[start..start + len].to_vec(),
        });
        start += len;
    }
}

fn word_speaker(
    d: &mut HeldOutDesign,
    spk: usize,
    files: &[Waveform],
    opts: &HeldOutDesignOptions,
) {
    let w = opts.word_clips_per_test.max(1);
    if files.len() < w + opts.word_min_enroll_clips {
        // Too few clips for a test: enrol on everything (a gallery entry for others' tests).
        let idx = (0..files.len()).map(|i| d.items.len() + i).collect();
        d.items.extend(files.iter().cloned());
        d.enrollments.push(idx);
        d.enrollment_speaker.push(spk);
        d.primary.push(true);
        d.enrollment_word.push(true);
        return;
    }
    let first_item = d.items.len();
    d.items.extend(files.iter().cloned());
    let step = opts.word_rotation_step.max(1);
    let mut start = 0;
    let mut first = true;
    while start + w <= files.len() {
        let enroll: Vec<usize> = (0..files.len())
            .filter(|&i| i < start || i >= start + w)
            .map(|i| first_item + i)
            .collect();
        let e = d.enrollments.len();
        d.enrollments.push(enroll);
        d.enrollment_speaker.push(spk);
        d.primary.push(first);
        d.enrollment_word.push(true);
        first = false;
        let window: Vec<&Waveform> = files[start..start + w].iter().collect();
        d.tests.push((e, d.items.len()));
        d.word_test.push(true);
        d.items.push(concat(&window, secs(opts.word_test_seconds)));
        start += step;
    }
}

/// Voiced front-end features of every item (parallel, in order).
pub fn item_features(
    items: &[Waveform],
    opts: &FrontEndOptions,
) -> Result<Vec<FeatureMatrix>, RecipeError> {
    opts.validate()
        .map_err(|e| RecipeError::stage("front end", e))?;
    items
        .par_iter()
        .map_init(
            || FrontEnd::new(opts.clone()),
            |fe, w| {
                let fe = fe
                    .as_mut()
                    .map_err(|e| RecipeError::stage("front end", e.to_string()))?;
                fe.compute(&w.samples)
                    .map(|o| o.features)
                    .map_err(|e| RecipeError::stage("held-out features", e))
            },
        )
        .collect()
}

/// GE2E embedding sums of every item (parallel, in order); an item too short for one partial
/// window gives an empty sum.
pub fn item_embeddings(
    items: &[Waveform],
    encoder: &Arc<SpeakerEncoder>,
) -> Result<Vec<EmbeddingSum>, RecipeError> {
    items
        .par_iter()
        .map_init(
            || SpeakerEmbedder::new(encoder.clone(), EmbedderOptions::default()),
            |emb, w| {
                let emb = emb
                    .as_mut()
                    .map_err(|e| RecipeError::stage("embedder", e.to_string()))?;
                Ok(match emb.embed(w) {
                    Ok(u) => EmbeddingSum::from_utterance(&u),
                    Err(_) => EmbeddingSum::zeros(),
                })
            },
        )
        .collect()
}

/// Raw GMM-UBM scores of every (test, enrollment) pair of the design, test-major, and the test's
/// voiced frames for each (`feats` = [`item_features`] of the design's items).
pub fn gmm_design_scores(
    system: &crate::engine::voice::GmmUbmSystem,
    design: &HeldOutDesign,
    feats: &[FeatureMatrix],
) -> Result<(Vec<f64>, Vec<usize>), RecipeError> {
    let dim = feats.first().map_or(0, FeatureMatrix::dim);
    let enrollments: Vec<FeatureMatrix> = design
        .enrollments
        .iter()
        .map(|idx| {
            let mut m = FeatureMatrix::new(dim);
            for &i in idx {
                m.extend(&feats[i]);
            }
            m
        })
        .collect();
    let tests: Vec<&FeatureMatrix> = design.tests.iter().map(|&(_, i)| &feats[i]).collect();
    let scored = super::gmm::score_tests_against_enrollments(
        system,
        &enrollments,
        &tests,
        "held-out GMM trials",
    )?;
    let (mut s, mut f) = (Vec::new(), Vec::new());
    for (row, t) in scored.into_iter().zip(&tests) {
        f.extend(std::iter::repeat_n(t.num_frames(), row.raw.len()));
        s.extend(row.raw);
    }
    Ok((s, f))
}

/// Reads every held-out speaker's files as 8 kHz mono audio (parallel, in order).
pub fn read_speakers(
    speakers: &[(String, Vec<std::path::PathBuf>)],
) -> Result<Vec<Vec<Waveform>>, RecipeError> {
    speakers
        .par_iter()
        .map(|(_, files)| {
            files
                .iter()
                .map(|p| super::read_telephone_wav(p, crate::audio::ChannelPolicy::RequireMono))
                .collect()
        })
        .collect()
}

/// Keeps the scored pairs of a full test-major score list (`None` labels dropped); returns the
/// scores, their test lengths and labels. `repeat_word` repeats word speakers' trials that many
/// times (≥ 1), weighting the isolated-word condition in a calibration.
pub fn select_trials(
    design: &HeldOutDesign,
    full_scores: &[f64],
    full_frames: &[usize],
    repeat_word: usize,
) -> (Vec<f64>, Vec<usize>, Vec<bool>) {
    let labels = design.labels();
    let ne = design.enrollments.len();
    let (mut s, mut f, mut l) = (Vec::new(), Vec::new(), Vec::new());
    for (i, lab) in labels.iter().enumerate() {
        let Some(y) = lab else { continue };
        let reps = if design.word_test[i / ne.max(1)] {
            repeat_word.max(1)
        } else {
            1
        };
        for _ in 0..reps {
            s.push(full_scores[i]);
            f.push(full_frames[i]);
            l.push(*y);
        }
    }
    (s, f, l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wave(seconds: f64, value: f32) -> Waveform {
        Waveform {
            sample_rate_hz: 8000,
            samples: vec![value; secs(seconds)],
        }
    }

    #[test]
    fn read_speakers_enrol_30_s_and_cut_cycled_segments() {
        // 10 files of 4 s: enrollment = 8 files (32 s); 8 s remain: one 3-s and one 5-s segment.
        let files: Vec<Waveform> = (0..10).map(|i| wave(4.0, i as f32)).collect();
        let d = held_out_design(&[files], &HeldOutDesignOptions::default());
        assert_eq!(d.enrollments, vec![(0..8).collect::<Vec<_>>()]);
        assert_eq!(d.tests.len(), 2);
        let t0 = &d.items[d.tests[0].1];
        let t1 = &d.items[d.tests[1].1];
        assert_eq!(t0.samples.len(), 24_000);
        assert_eq!(t1.samples.len(), 40_000);
        // Segment 2 starts 3 s into file 8 and runs 1 s into file 9.
        assert_eq!(t1.samples[0], 8.0);
        assert_eq!(*t1.samples.last().unwrap(), 9.0);
    }

    #[test]
    fn word_speakers_rotate_windows_and_never_score_their_own_other_rotations() {
        let opts = HeldOutDesignOptions::default();
        // Speaker 0: 17 one-second clips -> windows at 0, 2, 4, 6, 8, 10 (6 rotations).
        let a: Vec<Waveform> = (0..17).map(|i| wave(1.0, i as f32)).collect();
        // Speaker 1: 10 clips, too few for a test (7 + 8): one gallery enrollment.
        let b: Vec<Waveform> = (0..10).map(|_| wave(1.0, -1.0)).collect();
        // Speaker 2: a read speaker (4-s files); never a non-target trial for word tests.
        let c: Vec<Waveform> = (0..8).map(|_| wave(4.0, 5.0)).collect();
        let d = held_out_design(&[a, b, c], &opts);
        assert_eq!(d.enrollments.len(), 8);
        assert_eq!(d.tests.len(), 6);
        assert_eq!(
            d.enrollment_word,
            vec![true; 7].into_iter().chain([false]).collect::<Vec<_>>()
        );
        let labels = d.labels();
        assert!((0..6).all(|t| labels[t * 8 + 7].is_none()));
        let a: Vec<Waveform> = (0..17).map(|i| wave(1.0, i as f32)).collect();
        let b: Vec<Waveform> = (0..10).map(|_| wave(1.0, -1.0)).collect();
        let d = held_out_design(&[a, b], &opts);
        assert_eq!(d.enrollments.len(), 7);
        assert_eq!(d.tests.len(), 6);
        assert_eq!(
            d.primary,
            vec![true, false, false, false, false, false, true]
        );
        // Rotation 1's test is clips 2..9, its enrollment the 10 others.
        let (own, item) = d.tests[1];
        assert_eq!(own, 1);
        assert_eq!(d.enrollments[1].len(), 10);
        assert_eq!(d.items[item].samples.len(), 56_000);
        assert_eq!(d.items[item].samples[0], 2.0);
        assert_eq!(*d.items[item].samples.last().unwrap(), 8.0);
        let labels = d.labels();
        // Per test: its own enrollment (target) and speaker 1's gallery entry (non-target).
        for t in 0..6 {
            let row = &labels[t * 7..(t + 1) * 7];
            assert_eq!(row.iter().filter(|l| **l == Some(true)).count(), 1);
            assert_eq!(row[t], Some(true));
            assert_eq!(row[6], Some(false));
            assert_eq!(row.iter().filter(|l| l.is_none()).count(), 5);
        }
        assert_eq!(d.counts(), (6, 6, 6));
        let full: Vec<f64> = (0..labels.len()).map(|i| i as f64).collect();
        let frames = vec![1; labels.len()];
        let (s, _, l) = select_trials(&d, &full, &frames, 3);
        assert_eq!(s.len(), 36);
        assert_eq!(l.iter().filter(|&&y| y).count(), 18);
    }
}
