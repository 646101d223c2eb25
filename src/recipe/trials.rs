//! Held-out calibration trials that look like the development sets.
//!
//! The held-out background speakers are of two kinds: read-sentence speakers (speechocean762,
//! 2–8-s files) and isolated-word speakers (Speech Commands, 1-s clips). The development sets
//! enrol on ~30 s of a speaker's files, concatenated (one session through the front end), and
//! test on 7.000-s segments cut from the concatenation of the speaker's other files. [`held_out_design`]
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
//!
//! **Channel mismatch** ([`held_out_design_with_copies`]): when the background also holds a
//! channel-augmented copy of each file (`quivox augment-set` writes them under `aug/`), every test
//! is built twice, once from the clean files and once from the copies of the *same* files cut at
//! the same offsets, while enrollments stay clean. Calibration and fusion then see "enrolled on a
//! clean line, tested through another channel" as well as clean trials.

use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audio::Waveform;
use crate::embedding::{EmbedderOptions, GatedEmbedder, SpeakerEncoder};
use crate::engine::embedding_system::{EmbeddingEnrollment, EmbeddingPldaSystem, EmbeddingSum};
use crate::engine::ivector_system::{IvectorEnrollment, IvectorPldaSystem};
use crate::features::{
    AdaptiveNoiseSuppression, EnergyRange, FeatureMatrix, FrontEnd, FrontEndOptions,
};
use crate::gmm::BaumWelchStats;

use super::{RecipeError, RecordingAnalysis};

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
    /// Audio items: enrollments (their files concatenated) and test segments (8 kHz).
    pub items: Vec<Waveform>,
    /// Item indices of each enrollment: one item, the enrollment's files concatenated into one
    /// session, as the development sets' enrollment lists are enrolled.
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
    /// Whether each test was cut from channel-augmented copies (enrollments are always clean).
    pub channel_test: Vec<bool>,
    /// Whether each item is (cut from) channel-augmented copies.
    pub channel_item: Vec<bool>,
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

    /// Number of tests cut from channel-augmented copies.
    pub fn num_channel_tests(&self) -> usize {
        self.channel_test.iter().filter(|&&c| c).count()
    }

    fn push_item(&mut self, wave: Waveform, channel: bool) -> usize {
        self.items.push(wave);
        self.channel_item.push(channel);
        self.items.len() - 1
    }

    fn push_test(&mut self, own: usize, wave: Waveform, word: bool, channel: bool) {
        let item = self.push_item(wave, channel);
        self.tests.push((own, item));
        self.word_test.push(word);
        self.channel_test.push(channel);
    }
}

fn concat(waves: &[&Waveform], max_samples: usize) -> Waveform {
    let mut joined = Waveform::concatenate(waves.iter().copied()).unwrap_or(Waveform {
        sample_rate_hz: 8000,
        samples: Vec::new(),
    });
    joined.samples.truncate(max_samples);
    joined
}

fn secs(s: f64) -> usize {
    (s * 8000.0).round() as usize
}

/// Builds the design from each held-out speaker's files (8 kHz audio, in corpus order).
pub fn held_out_design(speakers: &[Vec<Waveform>], opts: &HeldOutDesignOptions) -> HeldOutDesign {
    held_out_design_with_copies(speakers, &[], opts)
}

/// Builds the design with channel-mismatched tests: `copies[s][k]` is the channel-augmented copy
/// of `speakers[s][k]` (same speaker, same words). Each test is made from the clean files and,
/// when every file it is cut from has a copy, once more from the copies cut at the same sample
/// offsets (a copy shorter than the cut drops that channel test). Enrollments use clean files
/// only. A missing `copies[s]` (shorter `copies`) means no channel tests for that speaker; with
/// `copies` empty this is [`held_out_design`].
pub fn held_out_design_with_copies(
    speakers: &[Vec<Waveform>],
    copies: &[Vec<Option<Waveform>>],
    opts: &HeldOutDesignOptions,
) -> HeldOutDesign {
    let mut d = HeldOutDesign::default();
    for (spk, files) in speakers.iter().enumerate() {
        if files.is_empty() {
            continue;
        }
        let copies = copies
            .get(spk)
            .filter(|c| c.len() == files.len())
            .map(Vec::as_slice);
        let mut lens: Vec<usize> = files.iter().map(|w| w.samples.len()).collect();
        lens.sort_unstable();
        let median = lens[lens.len() / 2];
        if median <= secs(opts.word_max_median_seconds) {
            word_speaker(&mut d, spk, files, copies, opts);
        } else {
            read_speaker(&mut d, spk, files, copies, opts);
        }
    }
    d
}

/// The copies of `files[range]` concatenated (at most `max_samples`), if every one exists.
fn concat_copies(
    copies: Option<&[Option<Waveform>]>,
    range: std::ops::Range<usize>,
    max_samples: usize,
) -> Option<Waveform> {
    let copies = copies?.get(range)?;
    let waves: Option<Vec<&Waveform>> = copies.iter().map(Option::as_ref).collect();
    Some(concat(&waves?, max_samples))
}

fn read_speaker(
    d: &mut HeldOutDesign,
    spk: usize,
    files: &[Waveform],
    copies: Option<&[Option<Waveform>]>,
    opts: &HeldOutDesignOptions,
) {
    let mut n = 0;
    let mut k = 0;
    while k < files.len() && n < secs(opts.enroll_seconds) {
        n += files[k].samples.len();
        k += 1;
    }
    let enroll: Vec<&Waveform> = files[..k].iter().collect();
    let item = d.push_item(concat(&enroll, usize::MAX), false);
    let e = d.enrollments.len();
    d.enrollments.push(vec![item]);
    d.enrollment_speaker.push(spk);
    d.primary.push(true);
    d.enrollment_word.push(false);
    let rest: Vec<&Waveform> = files[k..].iter().collect();
    let all = concat(&rest, usize::MAX);
    let all_copies = concat_copies(copies, k..files.len(), usize::MAX);
    let mut start = 0;
    for &len in opts.segment_seconds.iter().cycle() {
        let len = secs(len);
        if len == 0 || start + len > all.samples.len() {
            break;
        }
        let cut = |w: &Waveform| Waveform {
            sample_rate_hz: 8000,
            samples: w.samples[start..start + len].to_vec(),
        };
        d.push_test(e, cut(&all), false, false);
        if let Some(c) = all_copies
            .as_ref()
            .filter(|c| start + len <= c.samples.len())
        {
            d.push_test(e, cut(c), false, true);
        }
        start += len;
    }
}

fn word_speaker(
    d: &mut HeldOutDesign,
    spk: usize,
    files: &[Waveform],
    copies: Option<&[Option<Waveform>]>,
    opts: &HeldOutDesignOptions,
) {
    let w = opts.word_clips_per_test.max(1);
    if files.len() < w + opts.word_min_enroll_clips {
        // Too few clips for a test: enrol on everything (a gallery entry for others' tests).
        let all: Vec<&Waveform> = files.iter().collect();
        let item = d.push_item(concat(&all, usize::MAX), false);
        d.enrollments.push(vec![item]);
        d.enrollment_speaker.push(spk);
        d.primary.push(true);
        d.enrollment_word.push(true);
        return;
    }
    let step = opts.word_rotation_step.max(1);
    let mut start = 0;
    let mut first = true;
    while start + w <= files.len() {
        let enroll: Vec<&Waveform> = (0..files.len())
            .filter(|&i| i < start || i >= start + w)
            .map(|i| &files[i])
            .collect();
        let item = d.push_item(concat(&enroll, usize::MAX), false);
        let e = d.enrollments.len();
        d.enrollments.push(vec![item]);
        d.enrollment_speaker.push(spk);
        d.primary.push(first);
        d.enrollment_word.push(true);
        first = false;
        let window: Vec<&Waveform> = files[start..start + w].iter().collect();
        let max = secs(opts.word_test_seconds);
        d.push_test(e, concat(&window, max), true, false);
        if let Some(c) = concat_copies(copies, start..start + w, max) {
            d.push_test(e, c, true, true);
        }
        start += step;
    }
}

/// Voiced front-end features of every item (parallel, in order).
pub fn item_features(
    items: &[Waveform],
    opts: &FrontEndOptions,
    adaptive: Option<&AdaptiveNoiseSuppression>,
) -> Result<Vec<FeatureMatrix>, RecipeError> {
    analysed_items(items, opts, adaptive).map(|(features, _)| features)
}

/// [`item_features`], with what the front end measured of each item: its frame-energy spread and
/// whether it went through the noise suppressor (with `adaptive`, an item whose spread is under
/// the gate, as the engine analyses a recording).
pub fn analysed_items(
    items: &[Waveform],
    opts: &FrontEndOptions,
    adaptive: Option<&AdaptiveNoiseSuppression>,
) -> Result<(Vec<FeatureMatrix>, Vec<RecordingAnalysis>), RecipeError> {
    opts.validate()
        .map_err(|e| RecipeError::stage("front end", e))?;
    let adaptive = AdaptiveNoiseSuppression::in_force(adaptive, &opts.mfcc);
    let stage = |e: crate::features::FeatureError| RecipeError::stage("held-out features", e);
    items
        .par_iter()
        .map_init(
            // one plain and (when gated) one suppressed front end per worker
            || {
                let suppressed = adaptive
                    .map(|ns| FrontEnd::new(ns.suppressed_front_end(opts)))
                    .transpose()?;
                Ok::<_, crate::features::FeatureError>((FrontEnd::new(opts.clone())?, suppressed))
            },
            |fes, w| {
                let (fe, suppressed) = fes
                    .as_mut()
                    .map_err(|e| RecipeError::stage("front end", e.to_string()))?;
                let plain = fe.compute(&w.samples).map_err(stage)?;
                let energy = EnergyRange::of_log_energy(fe.log_energy());
                if let (Some(ns), Some(s)) = (adaptive, suppressed.as_mut()) {
                    if ns.applies_to(&energy) {
                        let features = s.compute(&w.samples).map_err(stage)?.features;
                        return Ok((features, RecordingAnalysis::of(&energy, true)));
                    }
                }
                Ok((plain.features, RecordingAnalysis::of(&energy, false)))
            },
        )
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.into_iter().unzip())
}

/// GE2E embeddings of every item (parallel, in order). With `gates` (the adaptive noise
/// suppression and each item's analysis from [`analysed_items`]), an item whose MFCC features
/// went through the suppressor is embedded through it too, as the engine embeds a noisy
/// recording or call. An item too short for one partial window gives an empty sum.
pub fn item_embeddings(
    items: &[Waveform],
    encoder: &Arc<SpeakerEncoder>,
    gates: Option<(&AdaptiveNoiseSuppression, &[RecordingAnalysis])>,
) -> Result<Vec<EmbeddingSum>, RecipeError> {
    if let Some((_, analysis)) = gates {
        if analysis.len() != items.len() {
            return Err(RecipeError::stage(
                "embedding gates",
                format!("{} analyses for {} items", analysis.len(), items.len()),
            ));
        }
    }
    items
        .par_iter()
        .enumerate()
        .map_init(
            || SessionEmbedder::new(encoder, gates.map(|(ns, _)| ns)),
            |emb, (i, w)| {
                let emb = emb
                    .as_mut()
                    .map_err(|e| RecipeError::stage("embedder", e.to_string()))?;
                let gated = gates.is_some_and(|(_, analysis)| analysis[i].suppressed);
                Ok(emb.embed(std::slice::from_ref(w), gated))
            },
        )
        .collect()
}

/// Per worker: [`GatedEmbedder`] with the adaptive suppression's suppressor, summing a session's
/// recordings.
pub(crate) struct SessionEmbedder(GatedEmbedder);

impl SessionEmbedder {
    pub(crate) fn new(
        encoder: &Arc<SpeakerEncoder>,
        adaptive: Option<&AdaptiveNoiseSuppression>,
    ) -> Result<Self, crate::embedding::EmbeddingError> {
        GatedEmbedder::new(
            encoder.clone(),
            EmbedderOptions::default(),
            adaptive.map(|ns| &ns.suppression),
        )
        .map(Self)
    }

    /// The embedding of one session's recordings joined into one stream
    /// ([`crate::embedding::SpeakerEmbedder::embed_session`]), through the suppressor when
    /// `gated` (and there is one); empty when no speech is found.
    pub(crate) fn embed(&mut self, waves: &[Waveform], gated: bool) -> EmbeddingSum {
        match self.0.embedder(gated).embed_session(waves) {
            Ok(u) => EmbeddingSum::from_utterance(&u),
            Err(_) => EmbeddingSum::zeros(),
        }
    }
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

/// Raw i-vector PLDA scores of every (test, enrollment) pair of the design, test-major (`stats`
/// = Baum–Welch statistics of the design's items; an enrollment's items are summed).
pub fn ivector_design_scores(
    system: &IvectorPldaSystem,
    design: &HeldOutDesign,
    stats: &[BaumWelchStats],
) -> Result<Vec<f64>, RecipeError> {
    let stage = |e| RecipeError::stage("held-out i-vector trials", e);
    let enrollments: Vec<IvectorEnrollment> = design
        .enrollments
        .par_iter()
        .map(|idx| system.enroll(&[super::backend::summed_stats(stats, idx)]))
        .collect::<Result<_, _>>()
        .map_err(stage)?;
    let rows: Vec<Vec<f64>> = design
        .tests
        .par_iter()
        .map(|&(_, i)| system.raw_scores(&stats[i], &enrollments))
        .collect::<Result<_, _>>()
        .map_err(stage)?;
    Ok(rows.concat())
}

/// Raw scores of the embedding system on a design, test-major.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbeddingDesignScores {
    /// PLDA scores.
    pub plda: Vec<f64>,
    /// Cosine scores.
    pub cosine: Vec<f64>,
    /// The test's embedded frames, for each trial.
    pub frames: Vec<usize>,
}

/// Raw embedding PLDA scores and cosine scores of every (test, enrollment) pair of the design,
/// test-major, and the test's embedded frames for each (`sums` = [`item_embeddings`] of the
/// design's items; an enrollment's items are summed).
pub fn embedding_design_scores(
    system: &EmbeddingPldaSystem,
    design: &HeldOutDesign,
    sums: &[EmbeddingSum],
) -> Result<EmbeddingDesignScores, RecipeError> {
    let stage = |e| RecipeError::stage("held-out embedding trials", e);
    let enrollments: Vec<EmbeddingEnrollment> = design
        .enrollments
        .iter()
        .map(|idx| {
            let mut s = EmbeddingSum::zeros();
            for &i in idx {
                s.add(&sums[i]);
            }
            system.enroll(&[s])
        })
        .collect::<Result<_, _>>()
        .map_err(stage)?;
    let (mut plda, mut cosine, mut frames) = (Vec::new(), Vec::new(), Vec::new());
    for &(_, i) in &design.tests {
        let t = &sums[i];
        plda.extend(system.raw_scores(t, &enrollments).map_err(stage)?);
        cosine.extend(system.cosine_scores(t, &enrollments));
        frames.extend(std::iter::repeat_n(t.frames, enrollments.len()));
    }
    Ok(EmbeddingDesignScores {
        plda,
        cosine,
        frames,
    })
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

/// Reads the channel copies of the held-out files (`None` stays `None`; parallel, in order).
pub fn read_copies(
    copies: &[Vec<Option<std::path::PathBuf>>],
) -> Result<Vec<Vec<Option<Waveform>>>, RecipeError> {
    copies
        .par_iter()
        .map(|files| {
            files
                .iter()
                .map(|p| {
                    p.as_ref()
                        .map(|p| {
                            super::read_telephone_wav(p, crate::audio::ChannelPolicy::RequireMono)
                        })
                        .transpose()
                })
                .collect()
        })
        .collect()
}

/// The held-out design of an augmented background split: its calibration speakers' clean files,
/// and with `channel_trials` every test cut a second time from their channel copies
/// ([`held_out_design_with_copies`]).
pub fn held_out_design_of_split(
    aug: &super::gmm::AugmentedSplit,
    channel_trials: bool,
    opts: &HeldOutDesignOptions,
) -> Result<HeldOutDesign, RecipeError> {
    let audio = read_speakers(&aug.split.calibration)?;
    let copies = if channel_trials {
        read_copies(&aug.calibration_copies)?
    } else {
        Vec::new()
    };
    Ok(held_out_design_with_copies(&audio, &copies, opts))
}

/// Whole-call phone channels for the held-out channel tests ([`add_whole_call_channel_tests`]).
pub struct WholeCallChannels<'a> {
    /// Kinds drawn in turn, test by test.
    pub kinds: Vec<crate::augment::ChannelKind>,
    /// Seed of every draw (channel, noise, babble, lost packets); test `t` uses stream `t`.
    pub seed: u64,
    /// Babble pool size: the recipe ([`super::backend::train_backend_with`]) takes this many
    /// clean read-speech (`so*`) files of the training speakers, never a held-out voice
    /// ([`crate::augment::babble_pool_choice`]).
    pub babble_pool: usize,
    /// Runs the external codecs (AMR-NB, GSM 06.10) of the codec kind.
    pub codec: &'a crate::augment::SharedCodec<'a>,
}

/// Adds to a design every clean test rendered once more, as a whole, through one phone channel
/// (kinds in turn): a call goes through one channel from its first second to its last, where a
/// test cut from per-file copies ([`held_out_design_with_copies`]) changes channel at every file
/// boundary (the copies' kinds rotate file by file). Babble is mixed from `babble_pool`.
/// Enrollments stay clean. Returns the number
/// of channel tests added (parallel; deterministic for a seed).
pub fn add_whole_call_channel_tests(
    d: &mut HeldOutDesign,
    channels: &WholeCallChannels<'_>,
    babble_pool: &[Vec<f32>],
) -> Result<usize, RecipeError> {
    if channels.kinds.is_empty() {
        return Err(RecipeError::stage(
            "whole-call channels",
            "expected at least one channel kind, got none",
        ));
    }
    let clean: Vec<usize> = (0..d.tests.len()).filter(|&t| !d.channel_test[t]).collect();
    let rendered: Vec<Waveform> = clean
        .par_iter()
        .enumerate()
        .map(|(n, &t)| {
            let wave = &d.items[d.tests[t].1];
            let kind = channels.kinds[n % channels.kinds.len()];
            let mut rng = crate::augment::channel_rng(channels.seed, n as u64);
            let chain = kind.draw(&mut rng);
            let mut codec = |c: crate::augment::ExternalCodec, x: &[f32]| (channels.codec)(c, x);
            crate::augment::render(
                &wave.samples,
                wave.sample_rate_hz,
                &chain,
                babble_pool,
                &mut rng,
                &mut codec,
            )
            .map(|out| Waveform {
                sample_rate_hz: wave.sample_rate_hz,
                samples: out.samples,
            })
            .map_err(|e| RecipeError::stage("whole-call channels", e))
        })
        .collect::<Result<_, _>>()?;
    for (&t, wave) in clean.iter().zip(rendered) {
        let (own, _) = d.tests[t];
        let word = d.word_test[t];
        d.push_test(own, wave, word, true);
    }
    Ok(clean.len())
}

/// Keeps the scored pairs of a full test-major score list (`None` labels dropped); returns the
/// scores, their test lengths and labels. `repeat_word` repeats word speakers' trials that many
/// times (≥ 1), weighting the isolated-word condition in a calibration.
pub fn select_trials<T: Copy>(
    design: &HeldOutDesign,
    full_scores: &[f64],
    full_frames: &[T],
    repeat_word: usize,
) -> (Vec<f64>, Vec<T>, Vec<bool>) {
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

    /// A design over 6 items: enrollment 0 is items 0 and 1 (one session), enrollments 1 and 2
    /// are items 2 and 3; items 4 and 5 are tests of enrollments 0 and 1.
    fn two_test_design() -> HeldOutDesign {
        HeldOutDesign {
            items: vec![wave(1.0, 0.0); 6],
            enrollments: vec![vec![0, 1], vec![2], vec![3]],
            enrollment_speaker: vec![0, 1, 2],
            primary: vec![true; 3],
            enrollment_word: vec![false; 3],
            tests: vec![(0, 4), (1, 5)],
            word_test: vec![false; 2],
            channel_test: vec![false; 2],
            channel_item: vec![false; 6],
        }
    }

    fn assert_close(got: f64, want: f64, what: &str) {
        assert!(
            (got - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{what}: {got} against {want}"
        );
    }

    #[test]
    fn design_scores_are_test_major_against_each_enrollments_summed_items() {
        use crate::engine::ivector_system::BackendOptions;
        use crate::gmm::{BwPosteriors, DiagGmm};
        use crate::ivector::IvectorTrainOptions;
        use crate::recipe::backend::{
            stats_of, train_embedding_system, train_ivector_system, EmbeddingRecipeOptions,
            IvectorRecipeOptions,
        };
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let noise = Normal::new(0.0, 1.0).unwrap();
        let design = two_test_design();

        // i-vector system: 4-component 3-dimensional UBM, 12 speakers of 4 utterances whose
        // frames are shifted by the speaker's offset.
        let (c, d) = (4, 3);
        let means: Vec<f32> = (0..c * d).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let ubm = DiagGmm::new(d, vec![0.25; c], means, vec![1.0; c * d]).unwrap();
        let mut utterance = |shift: &[f64], frames: usize| {
            let mut m = FeatureMatrix::new(d);
            for t in 0..frames {
                let k = t % c;
                let row: Vec<f32> = (0..d)
                    .map(|j| ubm.mean(k)[j] + (shift[j] + 0.5 * noise.sample(&mut rng)) as f32)
                    .collect();
                m.push_row(&row);
            }
            m
        };
        let shifts: Vec<Vec<f64>> = (0..12)
            .map(|s| {
                (0..d)
                    .map(|j| ((s * 3 + j) % 7) as f64 * 0.3 - 0.9)
                    .collect()
            })
            .collect();
        let (mut feats, mut labels) = (Vec::new(), Vec::new());
        for (s, shift) in shifts.iter().enumerate() {
            for _ in 0..4 {
                feats.push(utterance(shift, 150));
                labels.push(format!("s{s}"));
            }
        }
        let options = IvectorRecipeOptions {
            system: crate::engine::ivector_system::IvectorSystemOptions {
                posteriors: BwPosteriors::Full,
            },
            tv: IvectorTrainOptions {
                dim: 4,
                iterations: 3,
                ..Default::default()
            },
            backend: BackendOptions {
                lda_dim: Some(3),
                ..Default::default()
            },
            chunk_frames: 100,
        };
        let ivector = train_ivector_system(&ubm, &feats, &labels, &options, &|_, _| {}).unwrap();
        let item_feats: Vec<FeatureMatrix> = (0..6)
            .map(|i| utterance(&shifts[[0, 0, 1, 2, 0, 1][i]], 120 + 10 * i))
            .collect();
        let stats = stats_of(&ubm, &item_feats, &options.system).unwrap();
        let got = ivector_design_scores(&ivector, &design, &stats).unwrap();
        assert_eq!(got.len(), 2 * 3);
        let mut joined = stats[0].clone();
        joined.add(&stats[1]);
        let enrolled: Vec<_> = [joined, stats[2].clone(), stats[3].clone()]
            .iter()
            .map(|s| ivector.enroll(std::slice::from_ref(s)).unwrap())
            .collect();
        for (t, &(_, item)) in design.tests.iter().enumerate() {
            for (e, enrollment) in enrolled.iter().enumerate() {
                let want = ivector
                    .raw_scores(&stats[item], std::slice::from_ref(enrollment))
                    .unwrap()[0];
                assert_close(
                    got[t * 3 + e],
                    want,
                    &format!("i-vector test {t} enrollment {e}"),
                );
            }
        }
        // the test of enrollment 0 (same speaker) scores it above the other two
        assert!(got[0] > got[1] && got[0] > got[2], "{got:?}");

        // embedding system on synthetic sums of unit partials around each speaker's direction
        let dim = crate::embedding::arch::EMBEDDING_DIM;
        let directions: Vec<Vec<f64>> = (0..12)
            .map(|_| (0..dim).map(|_| noise.sample(&mut rng)).collect())
            .collect();
        let mut embedded = |s: usize, partials: usize| {
            let mut sum = EmbeddingSum::zeros();
            for _ in 0..partials {
                let mut p: Vec<f64> = directions[s]
                    .iter()
                    .map(|x| x + 0.7 * noise.sample(&mut rng))
                    .collect();
                crate::ivector::length_normalize(&mut p, 1.0);
                sum.sum
                    .iter_mut()
                    .zip(&p)
                    .for_each(|(a, b)| *a += *b as f32);
            }
            sum.partials = partials;
            sum.frames = 50 * partials;
            sum
        };
        let (mut sums, mut labels) = (Vec::new(), Vec::new());
        for s in 0..12 {
            for _ in 0..5 {
                sums.push(embedded(s, 4));
                labels.push(format!("s{s}"));
            }
        }
        let options = EmbeddingRecipeOptions {
            backend: BackendOptions {
                pca_dim: Some(20),
                lda_dim: Some(8),
                ..Default::default()
            },
            chunk_frames: 500,
        };
        let embedding = train_embedding_system(&sums, &labels, &options).unwrap();
        let item_sums: Vec<EmbeddingSum> = (0..6)
            .map(|i| embedded([0, 0, 1, 2, 0, 1][i], 2 + i))
            .collect();
        let got = embedding_design_scores(&embedding, &design, &item_sums).unwrap();
        assert_eq!((got.plda.len(), got.cosine.len()), (6, 6));
        let mut joined = item_sums[0].clone();
        joined.add(&item_sums[1]);
        let enrolled: Vec<_> = [joined, item_sums[2].clone(), item_sums[3].clone()]
            .iter()
            .map(|s| embedding.enroll(std::slice::from_ref(s)).unwrap())
            .collect();
        for (t, &(_, item)) in design.tests.iter().enumerate() {
            let test = &item_sums[item];
            for (e, enrollment) in enrolled.iter().enumerate() {
                let one = std::slice::from_ref(enrollment);
                let k = t * 3 + e;
                let what = format!("embedding test {t} enrollment {e}");
                assert_close(
                    got.plda[k],
                    embedding.raw_scores(test, one).unwrap()[0],
                    &what,
                );
                assert_close(got.cosine[k], embedding.cosine_scores(test, one)[0], &what);
                assert_eq!(got.frames[k], test.frames);
            }
        }
        assert!(
            got.plda[4] > got.plda[3] && got.plda[4] > got.plda[5],
            "{:?}",
            got.plda
        );
    }

    #[test]
    fn read_speakers_enrol_30_s_and_cut_cycled_segments() {
        // 10 files of 4 s: enrollment = 8 files (32 s); 8 s remain: one 3-s and one 5-s segment.
        let files: Vec<Waveform> = (0..10).map(|i| wave(4.0, i as f32)).collect();
        let d = held_out_design(&[files], &HeldOutDesignOptions::default());
        // One item: the 8 files concatenated (one session).
        assert_eq!(d.enrollments, vec![vec![0]]);
        let enrolled = &d.items[0].samples;
        assert_eq!(enrolled.len(), 8 * 32_000);
        assert!((0..8).all(|f| enrolled[f * 32_000..(f + 1) * 32_000]
            .iter()
            .all(|&x| x == f as f32)));
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
        // Rotation 1's test is clips 2..9, its enrollment the 10 others concatenated.
        let (own, item) = d.tests[1];
        assert_eq!(own, 1);
        let enrolled = &d.items[d.enrollments[1][0]].samples;
        let firsts: Vec<f32> = enrolled.chunks(8000).map(|c| c[0]).collect();
        assert_eq!(
            firsts,
            [0.0, 1.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0]
        );
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

    fn tone_files(n: usize, seconds: f64, hz: f32) -> Vec<Waveform> {
        (0..n)
            .map(|k| Waveform {
                sample_rate_hz: 8000,
                samples: (0..secs(seconds))
                    .map(|i| {
                        let t = (k * secs(seconds) + i) as f32 / 8000.0;
                        3000.0 * (std::f32::consts::TAU * hz * t).sin()
                    })
                    .collect(),
            })
            .collect()
    }

    fn rms_db(x: &[f32]) -> f64 {
        10.0 * crate::augment::power(x).log10()
    }

    #[test]
    fn whole_call_channels_render_each_clean_test_once_through_one_channel() {
        let opts = HeldOutDesignOptions::default();
        let speakers = vec![tone_files(12, 4.0, 700.0), tone_files(12, 4.0, 1100.0)];
        let clean = held_out_design(&speakers, &opts);
        let n = clean.tests.len();
        assert!(n >= 4);
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let identity = |_: crate::augment::ExternalCodec, x: &[f32]| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(x.to_vec())
        };
        let pool: Vec<Vec<f32>> = tone_files(8, 2.0, 450.0)
            .into_iter()
            .map(|w| w.samples)
            .collect();
        let render = |kinds: Vec<crate::augment::ChannelKind>, seed: u64| {
            let mut d = clean.clone();
            let channels = WholeCallChannels {
                kinds,
                seed,
                babble_pool: pool.len(),
                codec: &identity,
            };
            let added = add_whole_call_channel_tests(&mut d, &channels, &pool).unwrap();
            (d, added)
        };
        use crate::augment::ChannelKind::{Codec, Handset};
        let (d, added) = render(vec![Handset], 7);
        assert_eq!(added, n);
        assert_eq!(d.tests.len(), 2 * n);
        assert_eq!(d.enrollments, clean.enrollments);
        for t in 0..n {
            let (own, src) = d.tests[t];
            let (own_c, item) = d.tests[n + t];
            assert!(!d.channel_test[t] && d.channel_test[n + t] && d.channel_item[item]);
            assert_eq!((own_c, d.word_test[n + t]), (own, d.word_test[t]));
            let (a, b) = (&d.items[src].samples, &d.items[item].samples);
            assert_eq!(a.len(), b.len());
            // One channel for the whole call: the same level change in both halves (a test
            // cut from per-file copies changes channel, and level, at every file boundary).
            let h = a.len() / 2;
            let gain_first = rms_db(&b[..h]) - rms_db(&a[..h]);
            let gain_second = rms_db(&b[h..]) - rms_db(&a[h..]);
            assert!(
                (gain_first - gain_second).abs() < 0.5,
                "test {t}: {gain_first:.2} dB then {gain_second:.2} dB"
            );
        }
        // The labels of the channel tests are those of their clean sources.
        let m = d.enrollments.len();
        let labels = d.labels();
        for t in 0..n {
            assert_eq!(
                labels[t * m..(t + 1) * m],
                labels[(n + t) * m..(n + t + 1) * m]
            );
        }
        // Deterministic for a seed, different for another.
        let again = render(vec![Handset], 7).0;
        let other = render(vec![Handset], 8).0;
        let last = |d: &HeldOutDesign| d.items[d.tests[2 * n - 1].1].samples.clone();
        assert_eq!(last(&d), last(&again));
        assert_ne!(last(&d), last(&other));
        // The codec kind goes through the hook for AMR-NB / GSM draws.
        calls.store(0, std::sync::atomic::Ordering::Relaxed);
        render(vec![Codec], 7);
        assert!(calls.load(std::sync::atomic::Ordering::Relaxed) > 0);
        let mut d = clean.clone();
        let none = WholeCallChannels {
            kinds: Vec::new(),
            seed: 7,
            babble_pool: 0,
            codec: &identity,
        };
        assert!(add_whole_call_channel_tests(&mut d, &none, &pool).is_err());
    }

    #[test]
    fn channel_copies_double_the_tests_at_the_same_offsets_and_never_enrol() {
        // Clean files hold positive values, their copies the negated values: an item made from
        // copies is all negative, one from clean files all positive.
        let opts = HeldOutDesignOptions::default();
        let read: Vec<Waveform> = (0..10).map(|i| wave(4.0, 1.0 + i as f32)).collect();
        let read_c: Vec<Option<Waveform>> =
            (0..10).map(|i| Some(wave(4.0, -1.0 - i as f32))).collect();
        let word: Vec<Waveform> = (0..17).map(|i| wave(1.0, 100.0 + i as f32)).collect();
        let mut word_c: Vec<Option<Waveform>> = (0..17)
            .map(|i| Some(wave(1.0, -100.0 - i as f32)))
            .collect();
        // Clip 16 has no copy: the last rotation (clips 10..17) gets no channel test.
        word_c[16] = None;
        let clean = held_out_design(&[read.clone(), word.clone()], &opts);
        let d = held_out_design_with_copies(&[read, word], &[read_c, word_c], &opts);
        // Same enrollments (clean items only) as the clean design.
        assert_eq!(d.enrollments.len(), clean.enrollments.len());
        for (a, b) in d.enrollments.iter().zip(&clean.enrollments) {
            let av: Vec<&[f32]> = a.iter().map(|&i| d.items[i].samples.as_slice()).collect();
            let bv: Vec<&[f32]> = b
                .iter()
                .map(|&i| clean.items[i].samples.as_slice())
                .collect();
            assert_eq!(av, bv);
            assert!(a.iter().all(|&i| !d.channel_item[i]));
            assert!(a
                .iter()
                .all(|&i| d.items[i].samples.iter().all(|&x| x > 0.0)));
        }
        // Read: 2 clean tests, each followed by its copy; word: 6 clean tests, 5 copies.
        assert_eq!(clean.tests.len(), 8);
        assert_eq!(d.tests.len(), 8 + 2 + 5);
        assert_eq!(d.num_channel_tests(), 7);
        assert_eq!(d.channel_test.len(), d.tests.len());
        let clean_tests: Vec<(usize, &Waveform)> = d
            .tests
            .iter()
            .zip(&d.channel_test)
            .filter(|(_, &c)| !c)
            .map(|(&(e, i), _)| (e, &d.items[i]))
            .collect();
        let oracle: Vec<(usize, &Waveform)> = clean
            .tests
            .iter()
            .map(|&(e, i)| (e, &clean.items[i]))
            .collect();
        assert_eq!(clean_tests, oracle);
        for (t, &(own, item)) in d.tests.iter().enumerate() {
            let x = &d.items[item].samples;
            assert_eq!(d.channel_item[item], d.channel_test[t]);
            if d.channel_test[t] {
                // The previous test is the clean rendering of the same cut, same enrollment.
                let (own0, item0) = d.tests[t - 1];
                assert!(!d.channel_test[t - 1]);
                assert_eq!(own, own0);
                let y = &d.items[item0].samples;
                assert_eq!(x.len(), y.len());
                assert!(x.iter().zip(y).all(|(a, b)| *a == -*b));
            } else {
                assert!(x.iter().all(|&v| v > 0.0));
            }
        }
        // Channel tests are scored against other speakers' clean enrollments too.
        let labels = d.labels();
        let ne = d.enrollments.len();
        let t = d.channel_test.iter().position(|&c| c).unwrap();
        assert_eq!(labels[t * ne + d.tests[t].0], Some(true));
        assert!(labels[t * ne..(t + 1) * ne].contains(&None));
        assert_eq!(d.counts().0, d.tests.len());
    }

    /// With the adaptive noise suppression, each item's features are those of the suppressed
    /// front end when its energy spread is under the gate and the plain one's otherwise, computed
    /// one by one here (the oracle); several noisy items in a row check that the workers' reused
    /// front ends carry nothing from one item to the next.
    #[test]
    fn item_features_gate_each_item_as_the_engine_does() {
        use crate::augment::{channel_rng, coloured_noise, mix_at_snr, NoiseColour};
        // 3 s of 300-ms tone bursts separated by 200-ms silences: a wide energy spread
        let clean: Vec<f32> = (0..secs(3.0))
            .map(|n| {
                let on = (n % 4000) < 2400;
                if on {
                    8000.0 * (2.0 * std::f32::consts::PI * 440.0 * n as f32 / 8000.0).sin()
                } else {
                    0.0
                }
            })
            .collect();
        let noisy = |stream: u64| {
            let noise =
                coloured_noise(NoiseColour::White, clean.len(), &mut channel_rng(3, stream))
                    .unwrap();
            mix_at_snr(&clean, &noise, 5.0).unwrap()
        };
        let as_wave = |samples: Vec<f32>| Waveform {
            sample_rate_hz: 8000,
            samples,
        };
        let items = vec![
            as_wave(noisy(0)),
            as_wave(clean.clone()),
            as_wave(noisy(1)),
            as_wave(noisy(2)),
        ];
        let opts = FrontEndOptions::default();
        let ns = AdaptiveNoiseSuppression::default();
        let (got, analysis) = analysed_items(&items, &opts, Some(&ns)).unwrap();
        assert_eq!(got, item_features(&items, &opts, Some(&ns)).unwrap());
        let mut suppressed = 0;
        for ((item, features), analysis) in items.iter().zip(&got).zip(&analysis) {
            // the analysis reports the spread of the plain front end's energies (oracle: the
            // MFCC extractor run on its own) and the gate's decision
            let energy = EnergyRange::of_samples(&opts.mfcc, &item.samples).unwrap();
            assert_eq!(
                analysis.energy_spread_nats.to_bits(),
                energy.spread_nats().unwrap().to_bits()
            );
            assert_eq!(analysis.suppressed, ns.applies_to(&energy));
            let plain = FrontEnd::new(opts.clone())
                .unwrap()
                .compute(&item.samples)
                .unwrap()
                .features;
            let expected = if ns.applies_to(&energy) {
                suppressed += 1;
                let s = FrontEnd::new(ns.suppressed_front_end(&opts))
                    .unwrap()
                    .compute(&item.samples)
                    .unwrap()
                    .features;
                assert_ne!(s, plain, "the suppressor changes a noisy item");
                s
            } else {
                plain
            };
            assert_eq!(features, &expected);
        }
        assert_eq!(
            suppressed, 3,
            "the three noisy items are under the gate, the clean one is not"
        );
        // without the option every item goes through the plain front end
        let plain = item_features(&items, &opts, None).unwrap();
        assert_ne!(plain[0], got[0]);
        assert_eq!(plain[1], got[1]);
    }
}
