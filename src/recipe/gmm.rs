//! GMM-UBM stages: background split, UBM training, calibration trials and their training.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::calibration::CalibrationOptions;
use crate::engine::voice::{DurationCalibration, GmmUbmSystem};
use crate::eval::Background;
use crate::features::FeatureMatrix;
use crate::gmm::{train_ubm, DiagGmm, SpeakerBank, UbmTrainOptions};
use crate::plda::CohortStats;

use super::RecipeError;

/// Background utterances split into model-training speakers and held-out calibration speakers.
#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundSplit {
    /// (file, speaker) for UBM / T / LDA / PLDA training.
    pub train: Vec<(PathBuf, String)>,
    /// Held-out speakers and their files in `utt2spk` order, for calibration trials.
    pub calibration: Vec<(String, Vec<PathBuf>)>,
}

/// Holds out every `every`-th speaker (in sorted id order) among those with at least
/// `min_utterances` files (the read-sentence speakers): their trials calibrate the scores of
/// models that never saw them.
pub fn split_background(bg: &Background, every: usize, min_utterances: usize) -> BackgroundSplit {
    let mut by_speaker: BTreeMap<&str, Vec<PathBuf>> = BTreeMap::new();
    for (path, spk) in &bg.utterances {
        by_speaker
            .entry(spk.as_str())
            .or_default()
            .push(path.clone());
    }
    let eligible: Vec<&str> = by_speaker
        .iter()
        .filter(|(_, files)| files.len() >= min_utterances)
        .map(|(s, _)| *s)
        .collect();
    let held: Vec<&str> = eligible
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| every > 0 && i % every == 0)
        .map(|(_, s)| s)
        .collect();
    let train = bg
        .utterances
        .iter()
        .filter(|(_, s)| !held.contains(&s.as_str()))
        .cloned()
        .collect();
    let calibration = held
        .iter()
        .map(|s| (s.to_string(), by_speaker[s].clone()))
        .collect();
    BackgroundSplit { train, calibration }
}

/// Folder (under a background root) of the channel-augmented copies written by
/// `quivox augment-set`: `aug/<path of the clean file>`, same speaker in `utt2spk`.
pub const AUGMENTED_DIR: &str = "aug";

/// A background split that knows the channel-augmented copies ([`split_background_with_copies`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentedSplit {
    /// Training files (clean and augmented) of the training speakers; calibration speakers with
    /// their clean files only.
    pub split: BackgroundSplit,
    /// Per calibration speaker, per clean file: its augmented copy, if the background has one.
    pub calibration_copies: Vec<Vec<Option<PathBuf>>>,
    /// Clean files among `split.train`.
    pub clean_train_files: usize,
    /// Augmented copies among `split.train`.
    pub augmented_train_files: usize,
}

/// Whether `path` is an augmented copy (under `<root>/aug/`).
pub fn is_augmented_copy(root: &std::path::Path, path: &std::path::Path) -> bool {
    path.strip_prefix(root)
        .ok()
        .and_then(|rel| rel.components().next())
        .is_some_and(|c| c.as_os_str() == AUGMENTED_DIR)
}

/// [`split_background`] on a background that may also hold channel-augmented copies under
/// `aug/`: the held-out speakers are chosen from the clean files alone (so the split is the one
/// of the clean background, whatever the copies), every file of a held-out speaker (clean or
/// copy) stays out of training, and each held-out clean file is paired with its copy
/// `<root>/aug/<relative path>` when `utt2spk` lists it for the same speaker. Without copies the
/// result is [`split_background`]'s with `calibration_copies` all `None`.
pub fn split_background_with_copies(
    bg: &Background,
    every: usize,
    min_utterances: usize,
) -> AugmentedSplit {
    let (aug, clean): (Vec<_>, Vec<_>) = bg
        .utterances
        .iter()
        .cloned()
        .partition(|(p, _)| is_augmented_copy(&bg.root, p));
    let clean_bg = Background {
        root: bg.root.clone(),
        utterances: clean,
    };
    let clean_split = split_background(&clean_bg, every, min_utterances);
    let held: std::collections::BTreeSet<&str> = clean_split
        .calibration
        .iter()
        .map(|(s, _)| s.as_str())
        .collect();
    let train: Vec<(PathBuf, String)> = bg
        .utterances
        .iter()
        .filter(|(_, s)| !held.contains(s.as_str()))
        .cloned()
        .collect();
    let augmented_train_files = train
        .iter()
        .filter(|(p, _)| is_augmented_copy(&bg.root, p))
        .count();
    let copies: BTreeMap<&PathBuf, &str> = aug.iter().map(|(p, s)| (p, s.as_str())).collect();
    let calibration_copies = clean_split
        .calibration
        .iter()
        .map(|(spk, files)| {
            files
                .iter()
                .map(|f| {
                    let rel = f.strip_prefix(&bg.root).ok()?;
                    let copy = bg.root.join(AUGMENTED_DIR).join(rel);
                    (copies.get(&copy) == Some(&spk.as_str())).then_some(copy)
                })
                .collect()
        })
        .collect();
    AugmentedSplit {
        clean_train_files: train.len() - augmented_train_files,
        augmented_train_files,
        split: BackgroundSplit {
            train,
            calibration: clean_split.calibration,
        },
        calibration_copies,
    }
}

/// Concatenates per-utterance features, keeping at most `max_frames` frames by a fixed stride
/// (deterministic subsampling spread over every utterance).
pub fn pool_frames(feats: &[FeatureMatrix], max_frames: usize) -> FeatureMatrix {
    let dim = feats.first().map_or(0, FeatureMatrix::dim);
    let total: usize = feats.iter().map(FeatureMatrix::num_frames).sum();
    let stride = total.div_ceil(max_frames.max(1)).max(1);
    let mut out = FeatureMatrix::with_capacity(dim, total / stride + 1);
    let mut k = 0usize;
    for f in feats {
        for row in f.rows() {
            if k.is_multiple_of(stride) {
                out.push_row(row);
            }
            k += 1;
        }
    }
    out
}

/// Trains the UBM on pooled background features.
pub fn train_background_ubm(
    feats: &[FeatureMatrix],
    opts: &UbmTrainOptions,
    max_frames: usize,
    progress: &dyn Fn(usize, f64),
) -> Result<DiagGmm, RecipeError> {
    let pooled = pool_frames(feats, max_frames);
    train_ubm(&pooled, opts, progress).map_err(|e| RecipeError::stage("train-ubm", e))
}

/// Trials made from held-out speakers: one enrollment per speaker, and test segments of several
/// speech durations cut from that speaker's other utterances.
#[derive(Debug, Clone, Default)]
pub struct CalibrationSet {
    /// One enrollment (voiced features) per held-out speaker.
    pub enrollments: Vec<FeatureMatrix>,
    /// (speaker index, voiced features) of each test segment.
    pub tests: Vec<(usize, FeatureMatrix)>,
}

/// Builds a [`CalibrationSet`]: per speaker, utterances are taken in order until
/// `enroll_frames` voiced frames are reached (the enrollment); the remaining voiced frames are cut
/// into consecutive test segments whose lengths cycle through `segment_frames`.
pub fn calibration_set(
    per_speaker_utterances: &[Vec<FeatureMatrix>],
    enroll_frames: usize,
    segment_frames: &[usize],
) -> CalibrationSet {
    let mut set = CalibrationSet::default();
    for utts in per_speaker_utterances {
        let Some(dim) = utts.first().map(FeatureMatrix::dim) else {
            continue;
        };
        let mut enroll = FeatureMatrix::new(dim);
        let mut rest = FeatureMatrix::new(dim);
        for u in utts {
            if enroll.num_frames() < enroll_frames {
                enroll.extend(u);
            } else {
                rest.extend(u);
            }
        }
        let spk = set.enrollments.len();
        set.enrollments.push(enroll);
        let mut start = 0;
        for &len in segment_frames.iter().cycle() {
            if len == 0 || start + len > rest.num_frames() {
                break;
            }
            let mut seg = FeatureMatrix::with_capacity(dim, len);
            for t in start..start + len {
                seg.push_row(rest.row(t));
            }
            set.tests.push((spk, seg));
            start += len;
        }
    }
    set
}

/// Raw GMM-UBM scores of every test against every enrollment, and the time each test took.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredTest {
    /// Score before calibration against each enrollment's MAP model, in enrollment order:
    /// average frame LLR (nats), adaptive-S-normalised when the system has a cohort.
    pub raw: Vec<f64>,
    /// Wall time of scoring this test against all models (ms, one thread).
    pub ms: f64,
}

/// MAP-enrolls every enrollment (parallel), packs the models into one [`SpeakerBank`] and scores
/// every test against it (parallel over tests). `stage` names the caller in errors.
pub fn score_tests_against_enrollments(
    system: &GmmUbmSystem,
    enrollments: &[FeatureMatrix],
    tests: &[&FeatureMatrix],
    stage: &'static str,
) -> Result<Vec<ScoredTest>, RecipeError> {
    use rayon::prelude::*;
    let models: Vec<DiagGmm> = enrollments
        .par_iter()
        .map(|f| system.enroll(f))
        .collect::<Result<_, _>>()
        .map_err(|e| RecipeError::stage(stage, e))?;
    let refs: Vec<&DiagGmm> = models.iter().collect();
    let bank = SpeakerBank::new(&system.ubm, &refs).map_err(|e| RecipeError::stage(stage, e))?;
    let norms: Vec<CohortStats> = models
        .par_iter()
        .filter_map(|m| system.model_norm(m).transpose())
        .collect::<Result<_, _>>()
        .map_err(|e| RecipeError::stage(stage, e))?;
    tests
        .par_iter()
        .map(|f| {
            let t0 = std::time::Instant::now();
            let raw = system.scores(f, &bank, &norms)?;
            Ok(ScoredTest {
                raw,
                ms: t0.elapsed().as_secs_f64() * 1e3,
            })
        })
        .collect::<Result<_, crate::gmm::GmmError>>()
        .map_err(|e| RecipeError::stage(stage, e))
}

/// Scores every calibration test against every enrollment with the GMM-UBM system and trains
/// the duration-aware calibration on them. Returns the calibration and the number of
/// (target, non-target) trials used.
pub fn train_gmm_calibration(
    system: &GmmUbmSystem,
    set: &CalibrationSet,
) -> Result<(DurationCalibration, usize, usize), RecipeError> {
    let tests: Vec<&FeatureMatrix> = set.tests.iter().map(|(_, f)| f).collect();
    let scored =
        score_tests_against_enrollments(system, &set.enrollments, &tests, "calibration scoring")?;
    let rows = scored.iter().map(|t| &t.raw);
    let (mut scores, mut frames, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for ((spk, f), row) in set.tests.iter().zip(rows) {
        for (e, &s) in row.iter().enumerate() {
            scores.push(s);
            frames.push(f.num_frames());
            labels.push(e == *spk);
        }
    }
    let cal = DurationCalibration::train(&scores, &frames, &labels, &CalibrationOptions::default())
        .map_err(|e| RecipeError::stage("calibration", e))?;
    let targets = labels.iter().filter(|&&t| t).count();
    Ok((cal, targets, labels.len() - targets))
}

/// The duration-aware calibration of `system`'s scores (normalised when it has a cohort) on the
/// held-out trials of `design`, word speakers' trials repeated `word_trial_repeats` times.
fn calibrate_on_design(
    system: &GmmUbmSystem,
    design: &super::trials::HeldOutDesign,
    front_end: &crate::features::FrontEndOptions,
    word_trial_repeats: usize,
) -> Result<DurationCalibration, RecipeError> {
    let feats = super::trials::item_features(&design.items, front_end, None)?;
    let (raw, frames) = super::trials::gmm_design_scores(system, design, &feats)?;
    let (scores, frames, labels) =
        super::trials::select_trials(design, &raw, &frames, word_trial_repeats);
    DurationCalibration::train(&scores, &frames, &labels, &CalibrationOptions::default())
        .map_err(|e| RecipeError::stage("calibration", e))
}

/// Options of [`add_gmm_cohort`].
#[derive(Debug, Clone, PartialEq)]
pub struct GmmCohortRecipeOptions {
    /// The cohort (top K, frames kept per model and utterance).
    pub cohort: crate::engine::voice::GmmCohortOptions,
    /// Held-out split (as the UBM's: every n-th eligible speaker, eligible from this many clean
    /// utterances).
    pub holdout_every: usize,
    /// Speakers need this many clean utterances to be eligible for hold-out.
    pub holdout_min_utterances: usize,
    /// How the held-out calibration trials are made.
    pub held_out: super::trials::HeldOutDesignOptions,
    /// Weight of isolated-word speakers' trials in the calibration. Default 4.
    pub word_trial_repeats: usize,
    /// Calibrate on mismatched trials (tests cut from the held-out speakers' channel copies as
    /// well as their clean files) when the background has copies. Default true.
    pub channel_trials: bool,
}

impl Default for GmmCohortRecipeOptions {
    fn default() -> Self {
        let gmm = GmmRecipeOptions::default();
        Self {
            cohort: Default::default(),
            holdout_every: gmm.holdout_every,
            holdout_min_utterances: gmm.holdout_min_utterances,
            held_out: gmm.held_out,
            word_trial_repeats: gmm.word_trial_repeats,
            channel_trials: true,
        }
    }
}

/// What [`add_gmm_cohort`] did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GmmCohortReport {
    /// Training speakers the cohort was drawn from.
    pub speakers: usize,
    /// Cohort models / utterances (one per speaker from its clean files, one from its channel
    /// copies when the background has them).
    pub models: usize,
    /// Cohort utterances.
    pub utterances: usize,
    /// Held-out calibration speakers.
    pub calibration_speakers: usize,
    /// Calibration target / non-target trials.
    pub calibration_trials: (usize, usize),
}

/// Gives a GMM-UBM system an adaptive-S-norm cohort drawn from the training speakers of `bg`
/// (never the held-out ones) and retrains its calibration on the normalised scores of the
/// held-out trials. With channel copies under `aug/`, each speaker gives one cohort model and
/// utterance from its clean files and one from its copies (a channel-diverse cohort), and the
/// calibration trials are mismatched (clean enrollment, clean and channel tests).
pub fn add_gmm_cohort(
    system: &GmmUbmSystem,
    front_end: &crate::features::FrontEndOptions,
    bg: &Background,
    opts: &GmmCohortRecipeOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(GmmUbmSystem, GmmCohortReport), RecipeError> {
    let aug = split_background_with_copies(bg, opts.holdout_every, opts.holdout_min_utterances);
    let mut by_speaker: BTreeMap<&str, (Vec<PathBuf>, Vec<PathBuf>)> = BTreeMap::new();
    for (path, spk) in &aug.split.train {
        let entry = by_speaker.entry(spk).or_default();
        if is_augmented_copy(&bg.root, path) {
            entry.1.push(path.clone());
        } else {
            entry.0.push(path.clone());
        }
    }
    let groups: Vec<Vec<PathBuf>> = by_speaker
        .values()
        .flat_map(|(clean, copies)| [clean.clone(), copies.clone()])
        .filter(|g| !g.is_empty())
        .collect();
    progress("cohort features");
    let feats = super::features_of_groups(&groups, front_end, &|| {})?;
    progress("cohort models");
    let cohort = crate::engine::voice::GmmCohort::build(
        &system.ubm,
        |f| system.enroll(f),
        &feats,
        &feats,
        &opts.cohort,
    )
    .map_err(|e| RecipeError::stage("cohort", e))?;
    drop(feats);
    let mut out = GmmUbmSystem {
        cohort: Some(cohort),
        calibration: None,
        ..system.clone()
    };
    progress("held-out trials");
    let design =
        super::trials::held_out_design_of_split(&aug, opts.channel_trials, &opts.held_out)?;
    progress("calibration");
    out.calibration = Some(calibrate_on_design(
        &out,
        &design,
        front_end,
        opts.word_trial_repeats,
    )?);
    let (targets, nontargets, _) = design.counts();
    let report = GmmCohortReport {
        speakers: by_speaker.len(),
        models: out.cohort.as_ref().map_or(0, |c| c.num_models()),
        utterances: out.cohort.as_ref().map_or(0, |c| c.num_utterances()),
        calibration_speakers: aug.split.calibration.len(),
        calibration_trials: (targets, nontargets),
    };
    Ok((out, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(frames: usize, dim: usize, start: f32) -> FeatureMatrix {
        let data = (0..frames * dim).map(|i| start + i as f32).collect();
        FeatureMatrix::from_vec(dim, data).unwrap()
    }

    #[test]
    fn augmented_copies_keep_the_clean_split_and_stay_out_of_training() {
        // Speaker "a": 3 files (ineligible alone, eligible if copies were counted); "b", "c": 2
        // files each. With min 3 and every 1 on the clean files only "a" is held out; counting
        // the copies would make "b" eligible too.
        let root = PathBuf::from("/bg");
        let mut utts = Vec::new();
        for (spk, n) in [("a", 3), ("b", 2), ("c", 2)] {
            for k in 0..n {
                let rel = format!("{spk}/{spk}_{k}.wav");
                utts.push((root.join(&rel), spk.to_string()));
                if spk != "c" {
                    utts.push((root.join("aug").join(&rel), spk.to_string()));
                }
            }
        }
        let bg = Background {
            root: root.clone(),
            utterances: utts,
        };
        let s = split_background_with_copies(&bg, 1, 3);
        let held: Vec<&str> = s
            .split
            .calibration
            .iter()
            .map(|(x, _)| x.as_str())
            .collect();
        assert_eq!(held, vec!["a"]);
        // Oracle: the split of the clean lines alone.
        let clean = Background {
            root: root.clone(),
            utterances: bg
                .utterances
                .iter()
                .filter(|(p, _)| !p.starts_with("/bg/aug"))
                .cloned()
                .collect(),
        };
        assert_eq!(
            split_background(&clean, 1, 3).calibration,
            s.split.calibration
        );
        // No file of a held-out speaker (clean or copy) is a training file.
        assert!(s
            .split
            .train
            .iter()
            .all(|(p, spk)| spk != "a" && !p.to_string_lossy().contains("/a_")));
        assert_eq!((s.clean_train_files, s.augmented_train_files), (4, 2));
        // Calibration files are clean, each paired with its copy.
        assert!(s.split.calibration[0]
            .1
            .iter()
            .all(|p| !is_augmented_copy(&root, p)));
        assert_eq!(
            s.calibration_copies,
            vec![(0..3)
                .map(|k| Some(root.join(format!("aug/a/a_{k}.wav"))))
                .collect::<Vec<_>>()]
        );
        // Counting copies would have held out "b" as well (the mistake this function avoids).
        assert_eq!(split_background(&bg, 1, 3).calibration.len(), 2);
    }

    #[test]
    fn pooling_keeps_every_stride_th_frame() {
        let feats = vec![ramp(5, 1, 0.0), ramp(5, 1, 5.0)];
        let pooled = pool_frames(&feats, 4);
        assert_eq!(pooled.as_slice(), &[0.0, 3.0, 6.0, 9.0]);
        assert_eq!(pool_frames(&feats, 100).num_frames(), 10);
    }

    #[test]
    fn calibration_set_cuts_enrollment_then_cycled_segments() {
        let utts = vec![vec![
            ramp(60, 2, 0.0),
            ramp(50, 2, 1000.0),
            ramp(40, 2, 2000.0),
        ]];
        let set = calibration_set(&utts, 100, &[30, 20]);
        assert_eq!(set.enrollments[0].num_frames(), 110);
        // 40 frames remain: one 30-frame segment, then 10 < 20 stops.
        assert_eq!(set.tests.len(), 1);
        assert_eq!(set.tests[0].1.num_frames(), 30);
        assert_eq!(set.tests[0].1.row(0), &[2000.0, 2001.0]);
    }

    #[test]
    fn split_holds_out_every_nth_eligible_speaker() {
        let utterances = (0..6)
            .flat_map(|s| {
                (0..if s < 4 { 3 } else { 1 })
                    .map(move |u| (PathBuf::from(format!("{s}/{u}.wav")), format!("spk{s}")))
            })
            .collect();
        let bg = Background {
            root: PathBuf::new(),
            utterances,
        };
        let split = split_background(&bg, 2, 3);
        let held: Vec<&str> = split.calibration.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(held, vec!["spk0", "spk2"]);
        assert!(split.train.iter().all(|(_, s)| s != "spk0" && s != "spk2"));
        assert_eq!(split.train.len(), 3 + 3 + 1 + 1);
    }
}

/// Options of the whole GMM-UBM training recipe ([`train_gmm_ubm_system`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GmmRecipeOptions {
    /// Front end for every stage.
    pub front_end: crate::features::FrontEndOptions,
    /// UBM training options (components, EM iterations, seed).
    pub ubm: UbmTrainOptions,
    /// At most this many pooled background frames for the UBM (deterministic stride).
    pub max_ubm_frames: usize,
    /// Scoring/enrollment options of the system.
    pub system: crate::engine::voice::GmmUbmOptions,
    /// Hold out every n-th eligible speaker for calibration.
    pub holdout_every: usize,
    /// Speakers need this many utterances to be eligible for hold-out.
    pub holdout_min_utterances: usize,
    /// How the held-out calibration trials are made (dev-like enrollments and tests for read
    /// and isolated-word speakers).
    pub held_out: super::trials::HeldOutDesignOptions,
    /// Each isolated-word speaker's trial counts this many times in the calibration (they are
    /// few: 5 held-out word speakers against 20 read ones). Default 4.
    pub word_trial_repeats: usize,
}

impl Default for GmmRecipeOptions {
    fn default() -> Self {
        let mut system = crate::engine::voice::GmmUbmOptions::default();
        system.map.mean_tau = 8.0;
        Self {
            front_end: crate::features::FrontEndOptions::default(),
            ubm: UbmTrainOptions::default(),
            max_ubm_frames: 1_000_000,
            system,
            holdout_every: 5,
            holdout_min_utterances: 15,
            held_out: super::trials::HeldOutDesignOptions::default(),
            word_trial_repeats: 4,
        }
    }
}

/// What [`train_gmm_ubm_system`] did, for logs and the models README.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GmmRecipeReport {
    /// Background files used for the UBM.
    pub ubm_files: usize,
    /// Voiced frames available / used for the UBM.
    pub ubm_frames_available: usize,
    /// Frames the UBM was trained on.
    pub ubm_frames_used: usize,
    /// Held-out calibration speakers.
    pub calibration_speakers: usize,
    /// Calibration target / non-target trials.
    pub calibration_trials: (usize, usize),
    /// Target trials from isolated-word speakers (counted once, weighted by `word_trial_repeats`).
    pub calibration_word_targets: usize,
}

/// Progress events of the recipe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GmmRecipeProgress {
    /// One more background file's features are done (of `total`).
    Features {
        /// Files to process.
        total: usize,
    },
    /// One EM iteration finished with this average log-likelihood per frame.
    Em {
        /// Iteration index.
        iter: usize,
        /// Average log-likelihood (nats per frame).
        avg_loglik: f64,
    },
    /// Calibration started.
    Calibration,
}

/// The full GMM-UBM recipe on a `background/` folder: split, features, UBM, held-out calibration.
pub fn train_gmm_ubm_system(
    bg: &Background,
    opts: &GmmRecipeOptions,
    progress: &(dyn Fn(GmmRecipeProgress) + Sync),
) -> Result<(GmmUbmSystem, GmmRecipeReport), RecipeError> {
    let split = split_background(bg, opts.holdout_every, opts.holdout_min_utterances);
    let groups: Vec<Vec<PathBuf>> = split.train.iter().map(|(p, _)| vec![p.clone()]).collect();
    let total = groups.len();
    let feats = super::features_of_groups(&groups, &opts.front_end, &|| {
        progress(GmmRecipeProgress::Features { total })
    })?;
    let available: usize = feats.iter().map(FeatureMatrix::num_frames).sum();
    let pooled = pool_frames(&feats, opts.max_ubm_frames);
    let used = pooled.num_frames();
    drop(feats);
    let ubm = train_ubm(&pooled, &opts.ubm, &|iter, avg_loglik| {
        progress(GmmRecipeProgress::Em { iter, avg_loglik })
    })
    .map_err(|e| RecipeError::stage("train-ubm", e))?;
    drop(pooled);
    progress(GmmRecipeProgress::Calibration);
    let mut system = GmmUbmSystem {
        ubm,
        options: opts.system.clone(),
        calibration: None,
        cohort: None,
    };
    let audio = super::trials::read_speakers(&split.calibration)?;
    let design = super::trials::held_out_design(&audio, &opts.held_out);
    drop(audio);
    let cal = calibrate_on_design(&system, &design, &opts.front_end, opts.word_trial_repeats)?;
    let (targets, nontargets, word_targets) = design.counts();
    system.calibration = Some(cal);
    let report = GmmRecipeReport {
        ubm_files: total,
        ubm_frames_available: available,
        ubm_frames_used: used,
        calibration_speakers: split.calibration.len(),
        calibration_trials: (targets, nontargets),
        calibration_word_targets: word_targets,
    };
    Ok((system, report))
}
