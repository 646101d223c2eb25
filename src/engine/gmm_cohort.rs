//! Adaptive S-norm of GMM-UBM scores against a cohort of background speakers.
//!
//! A raw GMM-UBM score (average frame LLR) moves with everything that is not the speaker: the
//! test's channel and noise shift all of its scores, an enrollment recorded in one session
//! scores every same-session impostor high. Adaptive S-norm (Matějka et al. 2017) measures both
//! shifts on impostors and removes them:
//!
//! `s' = ½ [(s − μ_e) / σ_e + (s − μ_t) / σ_t]`
//!
//! where `μ_t, σ_t` are the mean and deviation of the test's `top_k` highest scores against the
//! cohort *models* (T-norm side, computed per call) and `μ_e, σ_e` those of the enrollment model's
//! `top_k` highest scores against the cohort *utterances* (Z-norm side, computed once per
//! enrollment and stored with the voiceprint).
//!
//! The cohort is stored in the GMM-UBM system file, compressed: each model as its mean offsets
//! from the UBM in standard deviations, 8-bit with one scale per component (models are mean-only
//! MAP adaptations, so weights and variances are the UBM's); each utterance as 8-bit features
//! with one scale per dimension. [`GmmCohort::build`] quantises, and everything scored afterwards
//! uses the quantised cohort, so training and run time see the same numbers.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::features::FeatureMatrix;
use crate::gmm::{DiagGmm, GaussianSelection, GmmError, SpeakerBank};
use crate::model_io::{ModelFile, ModelIoError, ModelWriter};
use crate::plda::CohortStats;

/// Options of [`GmmCohort::build`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct GmmCohortOptions {
    /// Cohort scores kept per side (the highest K), ≥ 2. Default 200.
    pub top_k: usize,
    /// Voiced frames kept of each cohort utterance (Z-norm side), ≥ 10. Default 300 (3 s).
    pub utterance_frames: usize,
    /// Voiced frames at most used to adapt each cohort model, ≥ 10. Default 3 000 (30 s, like a
    /// generous enrollment).
    pub model_frames: usize,
}

impl Default for GmmCohortOptions {
    fn default() -> Self {
        Self {
            top_k: 200,
            utterance_frames: 300,
            model_frames: 3_000,
        }
    }
}

impl GmmCohortOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), GmmError> {
        let bad = |option: &'static str, value: usize, expected: &'static str| {
            Err(GmmError::InvalidOption {
                option,
                value: value.to_string(),
                expected,
            })
        };
        if self.top_k < 2 {
            return bad("cohort.top_k", self.top_k, "at least 2");
        }
        if self.utterance_frames < 10 {
            return bad(
                "cohort.utterance_frames",
                self.utterance_frames,
                "at least 10",
            );
        }
        if self.model_frames < 10 {
            return bad("cohort.model_frames", self.model_frames, "at least 10");
        }
        Ok(())
    }
}

/// Stored layout of a cohort (the postcard header; the data are byte / f32 sections).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CohortHeader {
    top_k: usize,
    models: usize,
    utterance_frames: Vec<usize>,
}

/// One cohort utterance, 8-bit: `value = q · scale[dim]`.
#[derive(Debug, Clone, PartialEq)]
struct QuantisedFeatures {
    frames: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

/// The cohort of a GMM-UBM system (see the module documentation).
#[derive(Clone)]
pub struct GmmCohort {
    top_k: usize,
    components: usize,
    dim: usize,
    /// M × C × D offsets in standard deviations / scale.
    offset_codes: Vec<i8>,
    /// M × C scales.
    offset_scales: Vec<f32>,
    utterances: Vec<QuantisedFeatures>,
    /// The dequantised models packed for scoring.
    bank: Arc<SpeakerBank>,
    /// UBM Gaussian selections of the cohort utterances, computed at the first enrollment and
    /// kept (they depend only on the UBM and top-C, not on the enrolled model): the selection is
    /// nine tenths of [`GmmCohort::model_stats`]' work. Keyed by top-C and a hash of the UBM's
    /// parameters, so another UBM is never served stale selections.
    selections: Arc<OnceLock<SelectionCache>>,
}

/// See [`GmmCohort::selections`].
#[derive(Debug)]
struct SelectionCache {
    top_c: usize,
    ubm_hash: u64,
    selections: Vec<GaussianSelection>,
}

/// Hash of a UBM's parameters (weights, means, inverse variances, bit patterns).
fn ubm_hash(ubm: &DiagGmm) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for values in [ubm.weights(), ubm.means(), ubm.inv_vars()] {
        values.len().hash(&mut h);
        for v in values {
            v.to_bits().hash(&mut h);
        }
    }
    h.finish()
}

impl std::fmt::Debug for GmmCohort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmmCohort")
            .field("models", &self.num_models())
            .field("utterances", &self.utterances.len())
            .field("top_k", &self.top_k)
            .finish()
    }
}

impl PartialEq for GmmCohort {
    fn eq(&self, other: &Self) -> bool {
        self.top_k == other.top_k
            && self.offset_codes == other.offset_codes
            && self.offset_scales == other.offset_scales
            && self.utterances == other.utterances
    }
}

/// Symmetric 8-bit code of `values` with scale max|v| / 127 (scale 1 for all-zero input).
fn quantise(values: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    codes.extend(
        values
            .iter()
            .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

impl GmmCohort {
    /// Adapts one cohort model per entry of `model_feats` (mean-only MAP with `map`, on at most
    /// `options.model_frames` frames each) and keeps the first `options.utterance_frames` frames of
    /// each entry of `utterance_feats`, both quantised. `enroll` is the system's MAP enrollment.
    pub fn build(
        ubm: &DiagGmm,
        enroll: impl Fn(&FeatureMatrix) -> Result<DiagGmm, GmmError> + Sync,
        model_feats: &[FeatureMatrix],
        utterance_feats: &[FeatureMatrix],
        options: &GmmCohortOptions,
    ) -> Result<Self, GmmError> {
        use rayon::prelude::*;
        options.validate()?;
        let at_least = |what: &str, got: usize| {
            if got < options.top_k {
                Err(GmmError::NotEnoughData {
                    detail: format!(
                        "{got} cohort {what} with speech; expected at least top_k = {}",
                        options.top_k
                    ),
                })
            } else {
                Ok(())
            }
        };
        let models: Vec<DiagGmm> = model_feats
            .par_iter()
            .filter(|f| !f.is_empty())
            .map(|f| enroll(&truncate(f, options.model_frames)))
            .collect::<Result<_, _>>()?;
        at_least("models", models.len())?;
        let (components, dim) = (ubm.num_components(), ubm.dim());
        let mut offset_codes = Vec::with_capacity(models.len() * components * dim);
        let mut offset_scales = Vec::with_capacity(models.len() * components);
        let mut offsets = vec![0.0f32; dim];
        for model in &models {
            if model.weights() != ubm.weights() || model.inv_vars() != ubm.inv_vars() {
                return Err(GmmError::InvalidParameter {
                    what: "cohort MAP options",
                    detail: "the cohort stores mean-only adaptations; the system's MAP adapts \
                             weights or variances too"
                        .into(),
                });
            }
            for c in 0..components {
                for ((o, m), (mu, p)) in offsets
                    .iter_mut()
                    .zip(model.mean(c))
                    .zip(ubm.mean(c).iter().zip(ubm.inv_var(c)))
                {
                    *o = (m - mu) * p.sqrt();
                }
                offset_scales.push(quantise(&offsets, &mut offset_codes));
            }
        }
        let utterances: Vec<QuantisedFeatures> = utterance_feats
            .iter()
            .filter(|f| !f.is_empty())
            .map(|f| quantise_features(&truncate(f, options.utterance_frames)))
            .collect();
        at_least("utterances", utterances.len())?;
        let bank = Arc::new(dequantised_bank(
            ubm,
            models.len(),
            &offset_codes,
            &offset_scales,
        )?);
        Ok(Self {
            top_k: options.top_k,
            components,
            dim,
            offset_codes,
            offset_scales,
            utterances,
            bank,
            selections: Arc::default(),
        })
    }

    /// Number of cohort models (T-norm side).
    pub fn num_models(&self) -> usize {
        self.offset_scales.len() / self.components.max(1)
    }

    /// Number of cohort utterances (Z-norm side).
    pub fn num_utterances(&self) -> usize {
        self.utterances.len()
    }

    /// Cohort scores kept per side.
    pub fn top_k(&self) -> usize {
        self.top_k
    }

    /// The cohort models as scored (the dequantised offsets on the UBM).
    pub fn bank(&self) -> &SpeakerBank {
        &self.bank
    }

    /// Cohort model `i` as scored (the UBM with the dequantised mean offsets); `ubm` must be the
    /// system's.
    pub fn model(&self, ubm: &DiagGmm, i: usize) -> Option<DiagGmm> {
        if i >= self.num_models()
            || ubm.num_components() != self.components
            || ubm.dim() != self.dim
        {
            return None;
        }
        dequantised_model(ubm, i, &self.offset_codes, &self.offset_scales).ok()
    }

    /// Cohort utterance `i`, dequantised.
    pub fn utterance(&self, i: usize) -> Option<FeatureMatrix> {
        let q = self.utterances.get(i)?;
        let data = q
            .codes
            .chunks_exact(self.dim)
            .flat_map(|row| row.iter().zip(&q.scales).map(|(&c, s)| f32::from(c) * s))
            .collect();
        FeatureMatrix::from_vec(self.dim, data)
    }

    /// T-norm side: statistics of the `top_k` highest raw scores of the test (`feats` with its
    /// top-C selection `sel`) against the cohort models.
    pub fn test_stats(
        &self,
        feats: &FeatureMatrix,
        sel: &GaussianSelection,
    ) -> Result<CohortStats, GmmError> {
        if feats.is_empty() {
            return Err(GmmError::NotEnoughData {
                detail: "a test without frames has no cohort statistics".into(),
            });
        }
        let scores = self.bank.score(feats, sel)?;
        self.stats_of(&scores)
    }

    /// Z-norm side: statistics of the `top_k` highest raw scores of the cohort utterances against
    /// `model` (an enrollment adapted from `ubm`), scored with `top_c` components as tests are.
    pub fn model_stats(
        &self,
        ubm: &DiagGmm,
        top_c: usize,
        model: &DiagGmm,
    ) -> Result<CohortStats, GmmError> {
        let bank = SpeakerBank::new(ubm, &[model])?;
        let hash = ubm_hash(ubm);
        let cached = self
            .selections
            .get()
            .filter(|c| c.top_c == top_c && c.ubm_hash == hash);
        let mut computed = Vec::new();
        let mut scores = Vec::with_capacity(self.utterances.len());
        for i in 0..self.utterances.len() {
            let feats = self.checked_utterance(i)?;
            let sel = match cached {
                Some(c) => &c.selections[i],
                None => {
                    computed.push(ubm.gaussian_selection(&feats, top_c)?);
                    &computed[i]
                }
            };
            scores.push(bank.score(&feats, sel)?[0]);
        }
        if cached.is_none() {
            // the first enrollment keeps its selections; `set` leaves a cache already there (a
            // lost race, or another UBM's) as it is
            let _ = self.selections.set(SelectionCache {
                top_c,
                ubm_hash: hash,
                selections: computed,
            });
        }
        self.stats_of(&scores)
    }

    /// Cohort utterance `i`, dequantised.
    fn checked_utterance(&self, i: usize) -> Result<FeatureMatrix, GmmError> {
        self.utterance(i).ok_or_else(|| GmmError::InvalidParameter {
            what: "cohort utterance",
            detail: format!("utterance {i} does not have whole frames"),
        })
    }

    /// Mean and deviation of the `top_k` highest `scores` (deviation floored at 1e-6 nats, so
    /// that a degenerate test, e.g. a few identical frames, normalises instead of failing).
    fn stats_of(&self, scores: &[f64]) -> Result<CohortStats, GmmError> {
        CohortStats::from_top_k_floored(scores, self.top_k.min(scores.len()), 1e-6).map_err(|e| {
            GmmError::InvalidParameter {
                what: "cohort scores",
                detail: e.to_string(),
            }
        })
    }

    /// Adds the cohort's sections to a system file being written.
    pub fn write_sections(&self, w: &mut ModelWriter) -> Result<(), ModelIoError> {
        let header = CohortHeader {
            top_k: self.top_k,
            models: self.num_models(),
            utterance_frames: self.utterances.iter().map(|u| u.frames).collect(),
        };
        w.add_postcard("cohort", &header)?;
        w.add_bytes("cohort_offsets", &to_bytes(&self.offset_codes))?;
        w.add_f32(
            "cohort_offset_scales",
            &[header.models, self.components],
            &self.offset_scales,
        )?;
        let codes: Vec<i8> = self
            .utterances
            .iter()
            .flat_map(|u| u.codes.iter().copied())
            .collect();
        w.add_bytes("cohort_utterances", &to_bytes(&codes))?;
        let scales: Vec<f32> = self
            .utterances
            .iter()
            .flat_map(|u| u.scales.iter().copied())
            .collect();
        w.add_f32(
            "cohort_utterance_scales",
            &[self.utterances.len(), self.dim],
            &scales,
        )?;
        Ok(())
    }

    /// Reads the cohort of a verified system file (None when it has none).
    pub fn from_model_file(file: &ModelFile, ubm: &DiagGmm) -> Result<Option<Self>, ModelIoError> {
        if file.section("cohort").is_err() {
            return Ok(None);
        }
        let invalid = |message: String| ModelIoError::InvalidModel {
            kind: file.header().kind.clone(),
            message,
        };
        let header: CohortHeader = file.postcard("cohort")?;
        let (components, dim) = (ubm.num_components(), ubm.dim());
        let offset_codes = from_bytes(file.bytes_section("cohort_offsets")?);
        let (shape, offset_scales) = file.f32_section("cohort_offset_scales")?;
        if shape != [header.models, components]
            || offset_codes.len() != header.models * components * dim
        {
            return Err(invalid(format!(
                "cohort offsets: {} codes and scales {shape:?}; expected {} models × {components} \
                 components × {dim}",
                offset_codes.len(),
                header.models
            )));
        }
        let codes = from_bytes(file.bytes_section("cohort_utterances")?);
        let (shape, scales) = file.f32_section("cohort_utterance_scales")?;
        let total: usize = header.utterance_frames.iter().sum();
        let count = header.utterance_frames.len();
        if shape != [count, dim] || codes.len() != total * dim {
            return Err(invalid(format!(
                "cohort utterances: {} codes and scales {shape:?}; expected {total} frames of \
                 {count} utterances × {dim}",
                codes.len()
            )));
        }
        if header.top_k < 2 || header.models < 2 || count < 2 {
            return Err(invalid(format!(
                "cohort of {} models, {count} utterances, top_k {}; expected at least 2 of each",
                header.models, header.top_k
            )));
        }
        let mut utterances = Vec::with_capacity(count);
        let mut at = 0;
        for (u, &frames) in header.utterance_frames.iter().enumerate() {
            utterances.push(QuantisedFeatures {
                frames,
                codes: codes[at..at + frames * dim].to_vec(),
                scales: scales[u * dim..(u + 1) * dim].to_vec(),
            });
            at += frames * dim;
        }
        let bank = dequantised_bank(ubm, header.models, &offset_codes, &offset_scales)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Some(Self {
            top_k: header.top_k,
            components,
            dim,
            offset_codes,
            offset_scales,
            utterances,
            bank: Arc::new(bank),
            selections: Arc::default(),
        }))
    }
}

fn truncate(f: &FeatureMatrix, frames: usize) -> FeatureMatrix {
    if f.num_frames() <= frames {
        return f.clone();
    }
    let keep = frames * f.dim();
    FeatureMatrix::from_vec(f.dim(), f.as_slice()[..keep].to_vec()).unwrap_or_else(|| f.clone())
}

fn quantise_features(f: &FeatureMatrix) -> QuantisedFeatures {
    let dim = f.dim();
    let mut scales = Vec::with_capacity(dim);
    let mut column = Vec::with_capacity(f.num_frames());
    let mut column_codes = Vec::with_capacity(f.num_frames());
    let mut codes = vec![0i8; f.num_frames() * dim];
    for j in 0..dim {
        column.clear();
        column.extend(f.rows().map(|row| row[j]));
        column_codes.clear();
        scales.push(quantise(&column, &mut column_codes));
        for (t, &c) in column_codes.iter().enumerate() {
            codes[t * dim + j] = c;
        }
    }
    QuantisedFeatures {
        frames: f.num_frames(),
        codes,
        scales,
    }
}

/// Cohort model `m` of `models`: the UBM with its dequantised mean offsets.
fn dequantised_model(
    ubm: &DiagGmm,
    m: usize,
    codes: &[i8],
    scales: &[f32],
) -> Result<DiagGmm, GmmError> {
    let (components, dim) = (ubm.num_components(), ubm.dim());
    let mut means = ubm.means().to_vec();
    for c in 0..components {
        let scale = scales[m * components + c];
        let block = &codes[(m * components + c) * dim..(m * components + c + 1) * dim];
        for ((mean, &q), p) in means[c * dim..(c + 1) * dim]
            .iter_mut()
            .zip(block)
            .zip(ubm.inv_var(c))
        {
            *mean += f32::from(q) * scale / p.sqrt();
        }
    }
    DiagGmm::from_inv_vars(dim, ubm.weights().to_vec(), means, ubm.inv_vars().to_vec())
}

fn dequantised_bank(
    ubm: &DiagGmm,
    models: usize,
    codes: &[i8],
    scales: &[f32],
) -> Result<SpeakerBank, GmmError> {
    let gmms = (0..models)
        .map(|m| dequantised_model(ubm, m, codes, scales))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<&DiagGmm> = gmms.iter().collect();
    SpeakerBank::new(ubm, &refs)
}

fn to_bytes(codes: &[i8]) -> Vec<u8> {
    codes.iter().map(|&c| c as u8).collect()
}

fn from_bytes(bytes: &[u8]) -> Vec<i8> {
    bytes.iter().map(|&b| b as i8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::voice::{GmmUbmOptions, GmmUbmSystem};
    use crate::features::FrontEndOptions;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    const DIM: usize = 3;
    const COMPONENTS: usize = 6;

    fn ubm() -> DiagGmm {
        let means: Vec<f32> = (0..COMPONENTS * DIM)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.6)
            .collect();
        let vars: Vec<f32> = (0..COMPONENTS * DIM)
            .map(|i| 0.5 + (i % 4) as f32 * 0.25)
            .collect();
        DiagGmm::new(DIM, vec![1.0 / COMPONENTS as f32; COMPONENTS], means, vars).unwrap()
    }

    fn system(top_c: usize) -> GmmUbmSystem {
        GmmUbmSystem {
            ubm: ubm(),
            options: GmmUbmOptions {
                top_c,
                ..Default::default()
            },
            calibration: None,
            cohort: None,
        }
    }

    /// `frames` frames around a speaker-specific shift of the UBM's component means.
    fn speaker_feats(rng: &mut ChaCha8Rng, frames: usize) -> FeatureMatrix {
        let u = ubm();
        let shift = Normal::new(0.0f32, 0.8).unwrap();
        let noise = Normal::new(0.0f32, 0.7).unwrap();
        let offsets: Vec<f32> = (0..DIM).map(|_| shift.sample(rng)).collect();
        let mut data = Vec::with_capacity(frames * DIM);
        for t in 0..frames {
            let c = (t * 5 + t / 3) % COMPONENTS;
            for (m, o) in u.mean(c).iter().zip(&offsets) {
                data.push(m + o + noise.sample(rng));
            }
        }
        FeatureMatrix::from_vec(DIM, data).unwrap()
    }

    fn options() -> GmmCohortOptions {
        GmmCohortOptions {
            top_k: 4,
            utterance_frames: 60,
            model_frames: 150,
        }
    }

    fn cohort(sys: &GmmUbmSystem, rng: &mut ChaCha8Rng) -> (GmmCohort, Vec<FeatureMatrix>) {
        let feats: Vec<FeatureMatrix> = (0..7).map(|_| speaker_feats(rng, 200)).collect();
        let c = GmmCohort::build(&sys.ubm, |f| sys.enroll(f), &feats, &feats, &options()).unwrap();
        (c, feats)
    }

    /// Exact top-C average frame LLR in f64, from every component's log-likelihood (independent
    /// of the speaker bank).
    fn brute_force_score(
        ubm: &DiagGmm,
        model: &DiagGmm,
        feats: &FeatureMatrix,
        top_c: usize,
    ) -> f64 {
        let lse = |v: &[f64]| {
            let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
        };
        let mut all = vec![0.0; ubm.num_components()];
        let mut total = 0.0;
        for x in feats.rows() {
            ubm.component_log_likelihoods(x, &mut all).unwrap();
            let mut order: Vec<usize> = (0..all.len()).collect();
            order.sort_by(|&a, &b| all[b].total_cmp(&all[a]));
            let top = &order[..top_c];
            let u: Vec<f64> = top.iter().map(|&c| all[c]).collect();
            let s: Vec<f64> = top
                .iter()
                .map(|&c| model.component_log_likelihood(c, x).unwrap())
                .collect();
            total += lse(&s) - lse(&u);
        }
        total / feats.num_frames() as f64
    }

    fn top_k_stats(mut scores: Vec<f64>, k: usize) -> (f64, f64) {
        scores.sort_by(|a, b| b.total_cmp(a));
        let top = &scores[..k];
        let mean = top.iter().sum::<f64>() / k as f64;
        let var = top.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / k as f64;
        (mean, var.sqrt())
    }

    #[test]
    fn models_and_utterances_are_kept_within_half_a_quantisation_step() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let sys = system(2);
        let (c, feats) = cohort(&sys, &mut rng);
        assert_eq!((c.num_models(), c.num_utterances(), c.top_k()), (7, 7, 4));
        let u = &sys.ubm;
        for (i, f) in feats.iter().enumerate() {
            let exact = sys.enroll(&truncate(f, 150)).unwrap();
            let stored = c.model(u, i).unwrap();
            for comp in 0..COMPONENTS {
                let p = u.inv_var(comp);
                let offset = |m: &DiagGmm| -> Vec<f32> {
                    (0..DIM)
                        .map(|j| (m.mean(comp)[j] - u.mean(comp)[j]) * p[j].sqrt())
                        .collect()
                };
                let (a, b) = (offset(&exact), offset(&stored));
                let step = a.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
                for (x, y) in a.iter().zip(&b) {
                    assert!(
                        (x - y).abs() <= 0.5 * step + 1e-5,
                        "model {i} comp {comp}: {x} vs {y}"
                    );
                }
            }
            let kept = c.utterance(i).unwrap();
            assert_eq!(kept.num_frames(), 60);
            for j in 0..DIM {
                let column: Vec<f32> = f.rows().take(60).map(|r| r[j]).collect();
                let step = column.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
                for (x, y) in column.iter().zip(kept.rows().map(|r| r[j])) {
                    assert!((x - y).abs() <= 0.5 * step + 1e-5);
                }
            }
        }
        assert!(c.model(u, 7).is_none() && c.utterance(7).is_none());
    }

    #[test]
    fn both_sides_are_the_top_k_statistics_of_brute_force_scores() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let sys = system(3);
        let (c, _) = cohort(&sys, &mut rng);
        let u = &sys.ubm;
        let test = speaker_feats(&mut rng, 120);
        let sel = u.gaussian_selection(&test, 3).unwrap();
        let got = c.test_stats(&test, &sel).unwrap();
        let scores = (0..c.num_models())
            .map(|i| brute_force_score(u, &c.model(u, i).unwrap(), &test, 3))
            .collect();
        let (mean, std) = top_k_stats(scores, 4);
        assert!((got.mean - mean).abs() < 1e-4 && (got.std - std).abs() < 1e-4);

        let model = sys.enroll(&speaker_feats(&mut rng, 300)).unwrap();
        let got = c.model_stats(u, 3, &model).unwrap();
        let scores = (0..c.num_utterances())
            .map(|i| brute_force_score(u, &model, &c.utterance(i).unwrap(), 3))
            .collect();
        let (mean, std) = top_k_stats(scores, 4);
        assert!((got.mean - mean).abs() < 1e-4 && (got.std - std).abs() < 1e-4);
        // The second enrollment uses the cached UBM selections of the utterances: the same
        // statistics bit for bit, for this model and another one; another top-C or another UBM
        // is computed afresh (compared with the brute force again).
        assert_eq!(c.model_stats(u, 3, &model).unwrap(), got);
        let other = sys.enroll(&speaker_feats(&mut rng, 300)).unwrap();
        let fresh = cohort(&sys, &mut ChaCha8Rng::seed_from_u64(5)).0;
        assert_eq!(
            c.model_stats(u, 3, &other).unwrap(),
            fresh.model_stats(u, 3, &other).unwrap()
        );
        let shifted = {
            let means: Vec<f32> = u.means().iter().map(|m| m + 0.3).collect();
            let vars: Vec<f32> = u.inv_vars().iter().map(|v| 1.0 / v).collect();
            DiagGmm::new(DIM, u.weights().to_vec(), means, vars).unwrap()
        };
        for (ubm, top_c) in [(u.clone(), 2), (shifted, 3)] {
            let m = sys.enroll(&speaker_feats(&mut rng, 300)).unwrap();
            let got = c.model_stats(&ubm, top_c, &m).unwrap();
            let scores = (0..c.num_utterances())
                .map(|i| brute_force_score(&ubm, &m, &c.utterance(i).unwrap(), top_c))
                .collect();
            let (mean, std) = top_k_stats(scores, 4);
            assert!((got.mean - mean).abs() < 1e-4 && (got.std - std).abs() < 1e-4);
        }

        // The system applies ½[(s − μ_e)/σ_e + (s − μ_t)/σ_t] to the bank's raw scores.
        let with = GmmUbmSystem {
            cohort: Some(c.clone()),
            ..sys.clone()
        };
        let bank = SpeakerBank::new(u, &[&model]).unwrap();
        let z = with.model_norm(&model).unwrap().unwrap();
        let raw = bank.score(&test, &sel).unwrap()[0];
        let t = c.test_stats(&test, &sel).unwrap();
        let normalised = with.scores(&test, &bank, &[z]).unwrap()[0];
        let by_hand = 0.5 * ((raw - z.mean) / z.std + (raw - t.mean) / t.std);
        assert!((normalised - by_hand).abs() < 1e-12);
        assert!(
            with.scores(&test, &bank, &[]).is_err(),
            "one statistic per speaker"
        );
        // Without a cohort the raw score is kept.
        assert_eq!(sys.scores(&test, &bank, &[]).unwrap()[0], raw);
        assert!(sys.model_norm(&model).unwrap().is_none());
    }

    #[test]
    fn the_cohort_round_trips_through_the_system_file_and_bad_files_are_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let sys = system(2);
        let (c, _) = cohort(&sys, &mut rng);
        let with = GmmUbmSystem {
            cohort: Some(c),
            ..sys.clone()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gmm.qvx");
        let mut fe = FrontEndOptions::default();
        fe.mfcc.num_ceps = 1; // dimension 3 with deltas
        with.save(&path, &fe).unwrap();
        let (loaded, _) = GmmUbmSystem::load(&path).unwrap();
        assert_eq!(loaded, with);
        let test = speaker_feats(&mut rng, 50);
        let sel = sys.ubm.gaussian_selection(&test, 2).unwrap();
        assert_eq!(
            loaded.cohort.unwrap().test_stats(&test, &sel).unwrap(),
            with.cohort
                .as_ref()
                .unwrap()
                .test_stats(&test, &sel)
                .unwrap()
        );
        // A file whose offset codes do not match its model count is refused.
        let mut broken = with.clone();
        if let Some(c) = broken.cohort.as_mut() {
            c.offset_scales.truncate(COMPONENTS * 6);
        }
        broken.save(&path, &fe).unwrap();
        let err = GmmUbmSystem::load(&path).unwrap_err();
        assert!(
            matches!(err, ModelIoError::InvalidModel { ref message, .. } if message.contains("cohort offsets")),
            "{err}"
        );
    }

    #[test]
    fn options_and_data_are_checked() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let sys = system(2);
        let feats: Vec<FeatureMatrix> = (0..3).map(|_| speaker_feats(&mut rng, 80)).collect();
        let build =
            |o: &GmmCohortOptions| GmmCohort::build(&sys.ubm, |f| sys.enroll(f), &feats, &feats, o);
        for bad in [
            GmmCohortOptions {
                top_k: 1,
                ..options()
            },
            GmmCohortOptions {
                utterance_frames: 5,
                ..options()
            },
            GmmCohortOptions {
                model_frames: 0,
                ..options()
            },
        ] {
            assert!(matches!(build(&bad), Err(GmmError::InvalidOption { .. })));
        }
        // 3 speakers cannot give a top 4.
        assert!(matches!(
            build(&options()),
            Err(GmmError::NotEnoughData { .. })
        ));
        // Adapting variances too is not what the cohort stores.
        let mut variances = sys.clone();
        variances.options.map.update_variances = true;
        let r = GmmCohort::build(
            &sys.ubm,
            |f| variances.enroll(f),
            &feats,
            &feats,
            &GmmCohortOptions {
                top_k: 2,
                ..options()
            },
        );
        assert!(matches!(r, Err(GmmError::InvalidParameter { .. })), "{r:?}");
    }
}
