//! Gaussian selection (top-C components of the UBM per frame), top-C speaker scoring,
//! Baum–Welch statistics for the i-vector extractor, and a [`SpeakerBank`] that scores many
//! MAP-adapted models at once.

use serde::{Deserialize, Serialize};

use super::accum::{
    accumulate_chunked, component_logliks_block, AccumDiagGmm, EStepScratch, DEFAULT_CHUNK_FRAMES,
};
use super::error::GmmError;
use super::math::{exp_f32, gemm, ln_f32, LogSumExp, MatRef};
use super::model::DiagGmm;
use super::stats::BaumWelchStats;
use crate::features::FeatureMatrix;

/// Default number of UBM components kept per frame (Reynolds' top-5).
pub const DEFAULT_TOP_C: usize = 5;

/// The UBM's best `top_c` components for every frame of one feature matrix, with their exact
/// (f64) weighted log-likelihoods. Computed once per call by [`DiagGmm::gaussian_selection`]
/// and shared by every speaker scored on that call.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianSelection {
    top_c: usize,
    num_components: usize,
    dim: usize,
    /// n × top_c component indices, best first.
    indices: Vec<u32>,
    /// n × top_c values of ln (w_c N(x_t; μ_c, σ²_c)).
    component_logliks: Vec<f64>,
    /// n values of ln Σ_{c ∈ top-C} w_c N(x_t; μ_c, σ²_c).
    frame_logliks: Vec<f64>,
}

impl GaussianSelection {
    /// Number of frames.
    pub fn num_frames(&self) -> usize {
        self.frame_logliks.len()
    }

    /// Components kept per frame.
    pub fn top_c(&self) -> usize {
        self.top_c
    }

    /// Selected component indices of frame `t`, best first; panics if `t` is out of range.
    pub fn indices(&self, t: usize) -> &[u32] {
        &self.indices[t * self.top_c..(t + 1) * self.top_c]
    }

    /// ln (w_c N(x_t)) of the selected components of frame `t` (nats, f64).
    pub fn component_log_likelihoods(&self, t: usize) -> &[f64] {
        &self.component_logliks[t * self.top_c..(t + 1) * self.top_c]
    }

    /// Per-frame UBM log-likelihood over the selected components (nats).
    pub fn frame_log_likelihoods(&self) -> &[f64] {
        &self.frame_logliks
    }

    /// Average UBM log-likelihood per frame over the selected components (nats); NaN if empty.
    pub fn average_log_likelihood(&self) -> f64 {
        self.frame_logliks.iter().sum::<f64>() / self.num_frames() as f64
    }

    fn check(&self, ubm: &DiagGmm, feats: &FeatureMatrix) -> Result<(), GmmError> {
        if self.num_components != ubm.num_components() || self.dim != ubm.dim() {
            return Err(GmmError::SelectionMismatch {
                detail: format!(
                    "selection made with a {}-component, {}-dimensional UBM; this UBM has {} and {}",
                    self.num_components,
                    self.dim,
                    ubm.num_components(),
                    ubm.dim()
                ),
            });
        }
        if self.num_frames() != feats.num_frames() {
            return Err(GmmError::SelectionMismatch {
                detail: format!(
                    "selection has {} frames; the features have {}",
                    self.num_frames(),
                    feats.num_frames()
                ),
            });
        }
        if feats.is_empty() {
            return Err(GmmError::NotEnoughData {
                detail: "0 frames to score; expected at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Which posteriors [`DiagGmm::baum_welch_stats`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum BwPosteriors {
    /// All components (posteriors below 1.3e-14 of the best are dropped).
    Full,
    /// Only the frame's best C components, renormalised (Kaldi's gselect).
    TopC(usize),
}

impl DiagGmm {
    /// Selects the `top_c` best components of every frame (one f32 GEMM pass over the frames,
    /// then the selected log-likelihoods recomputed exactly in f64). Single-threaded.
    pub fn gaussian_selection(
        &self,
        feats: &FeatureMatrix,
        top_c: usize,
    ) -> Result<GaussianSelection, GmmError> {
        self.check_features(feats)?;
        let c_count = self.num_components();
        if top_c == 0 || top_c > c_count {
            return Err(GmmError::InvalidOption {
                option: "top_c",
                value: top_c.to_string(),
                expected: "between 1 and the number of UBM components",
            });
        }
        let n = feats.num_frames();
        let mut sel = GaussianSelection {
            top_c,
            num_components: c_count,
            dim: self.dim(),
            indices: Vec::with_capacity(n * top_c),
            component_logliks: Vec::with_capacity(n * top_c),
            frame_logliks: Vec::with_capacity(n),
        };
        let mut scratch = EStepScratch::default();
        let mut best_v = vec![0.0_f32; top_c];
        let mut best_i = vec![0_u32; top_c];
        let mut frame = 0;
        for frames in feats.as_slice().chunks(DEFAULT_CHUNK_FRAMES * self.dim()) {
            component_logliks_block(self, frames, &mut scratch);
            for row in scratch.loglik.chunks_exact(c_count) {
                top_k_into(row, &mut best_v, &mut best_i);
                let x = feats.row(frame);
                let mut lse = LogSumExp::new();
                for &c in &best_i {
                    let ll = self.component_log_likelihood_unchecked(c as usize, x);
                    sel.component_logliks.push(ll);
                    lse.push(ll);
                }
                sel.indices.extend_from_slice(&best_i);
                sel.frame_logliks.push(lse.value());
                frame += 1;
            }
        }
        Ok(sel)
    }

    /// Zeroth- and first-order Baum–Welch statistics of `feats` for the i-vector extractor.
    pub fn baum_welch_stats(
        &self,
        feats: &FeatureMatrix,
        posteriors: BwPosteriors,
    ) -> Result<BaumWelchStats, GmmError> {
        self.check_features(feats)?;
        match posteriors {
            BwPosteriors::Full => {
                let mut acc = AccumDiagGmm::for_model(self);
                accumulate_chunked(self, feats.as_slice(), DEFAULT_CHUNK_FRAMES, &mut acc);
                Ok(acc.to_baum_welch_stats())
            }
            BwPosteriors::TopC(c) => {
                let sel = self.gaussian_selection(feats, c)?;
                Ok(self.baum_welch_stats_from_selection(feats, &sel)?)
            }
        }
    }

    /// Baum–Welch statistics with the posteriors restricted to a precomputed selection.
    pub fn baum_welch_stats_from_selection(
        &self,
        feats: &FeatureMatrix,
        sel: &GaussianSelection,
    ) -> Result<BaumWelchStats, GmmError> {
        self.check_dim(feats.dim())?;
        if sel.num_components != self.num_components() || sel.num_frames() != feats.num_frames() {
            return Err(GmmError::SelectionMismatch {
                detail: format!(
                    "selection: {} components, {} frames; expected {} and {}",
                    sel.num_components,
                    sel.num_frames(),
                    self.num_components(),
                    feats.num_frames()
                ),
            });
        }
        let d = self.dim();
        let mut stats = BaumWelchStats::zeros(self.num_components(), d);
        for (t, x) in feats.rows().enumerate() {
            let frame_ll = sel.frame_logliks[t];
            for (&c, &ll) in sel.indices(t).iter().zip(sel.component_log_likelihoods(t)) {
                let c = c as usize;
                let p = (ll - frame_ll).exp();
                stats.zeroth[c] += p;
                for (f, &v) in stats.first[c * d..(c + 1) * d].iter_mut().zip(x) {
                    *f += p * v as f64;
                }
            }
        }
        Ok(stats)
    }
}

/// Keeps the `k` largest values of `row` (best first) in `best_v`/`best_i` (length `k`).
fn top_k_into(row: &[f32], best_v: &mut [f32], best_i: &mut [u32]) {
    let k = best_v.len();
    best_v.fill(f32::NEG_INFINITY);
    best_i.fill(0);
    let mut worst = f32::NEG_INFINITY;
    for (c, &v) in row.iter().enumerate() {
        if v > worst || (c < k && v == worst) {
            // Insertion into the sorted (descending) short list.
            let mut pos = k - 1;
            while pos > 0 && best_v[pos - 1] < v {
                best_v[pos] = best_v[pos - 1];
                best_i[pos] = best_i[pos - 1];
                pos -= 1;
            }
            best_v[pos] = v;
            best_i[pos] = c as u32;
            worst = best_v[k - 1];
        }
    }
}

fn check_speaker(ubm: &DiagGmm, speaker: &DiagGmm) -> Result<(), GmmError> {
    ubm.check_dim(speaker.dim())?;
    if speaker.num_components() != ubm.num_components() {
        return Err(GmmError::ComponentCountMismatch {
            expected: ubm.num_components(),
            actual: speaker.num_components(),
        });
    }
    Ok(())
}

/// Average per-frame log-likelihood ratio (nats) of `speaker` against `ubm`, both evaluated on
/// the UBM's top-C components `sel` of each frame (the Reynolds GMM-UBM score).
/// `speaker` may have any adapted parameters; computed in f64.
pub fn score_speaker(
    ubm: &DiagGmm,
    speaker: &DiagGmm,
    feats: &FeatureMatrix,
    sel: &GaussianSelection,
) -> Result<f64, GmmError> {
    check_speaker(ubm, speaker)?;
    sel.check(ubm, feats)?;
    let mut total = 0.0;
    for (t, x) in feats.rows().enumerate() {
        let mut lse = LogSumExp::new();
        for &c in sel.indices(t) {
            lse.push(speaker.component_log_likelihood_unchecked(c as usize, x));
        }
        total += lse.value() - sel.frame_logliks[t];
    }
    Ok(total / feats.num_frames() as f64)
}

/// [`score_speaker`] for many speakers: builds a [`SpeakerBank`] and scores it. To score many
/// calls against the same speakers, build the bank once instead.
pub fn score_many(
    ubm: &DiagGmm,
    speakers: &[&DiagGmm],
    feats: &FeatureMatrix,
    sel: &GaussianSelection,
) -> Result<Vec<f64>, GmmError> {
    SpeakerBank::new(ubm, speakers)?.score(feats, sel)
}

/// Speakers scored per block (bounds the working set of [`SpeakerBank::score`]).
const SPEAKER_BLOCK: usize = 256;
/// nalgebra hands a product to matrixmultiply only when every dimension exceeds 5.
const MIN_GEMM_ROWS: usize = 6;

/// Many speaker models adapted from one UBM, stored as per-component differences from the UBM
/// so that a call is scored against all of them with one small GEMM per selected component.
///
/// For component c with UBM mean μ, precision p and speaker mean μ' = μ + δ, precision p',
/// weight w', and y = x − μ:
/// `ln w'N'(x) − ln wN(x) = k + (p'δ)·y − ½(p' − p)·y²` with
/// `k = ln(w'/w) + ½ Σ ln(p'/p) − ½ Σ p'δ²`. For mean-only MAP (p' = p, w' = w) the quadratic
/// term vanishes and the bank stores only the D linear coefficients.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerBank {
    num_speakers: usize,
    num_components: usize,
    dim: usize,
    /// D (mean-only adaptation) or 2D (variances adapted too).
    width: usize,
    ubm_means: Vec<f32>,
    /// Per component, per speaker, the contiguous (width + 1) coefficients `[p'δ, (−½(p' − p)), k]`
    /// (C × S × (width + 1)): a component's block is the GEMM's right operand (transposed view),
    /// one speaker's column is one short contiguous read (shortlist rescoring), and the constant
    /// k multiplies a column of ones.
    coefs: Vec<f32>,
}

impl SpeakerBank {
    /// Packs `speakers` (all adapted from `ubm`: same component count and dimension).
    pub fn new(ubm: &DiagGmm, speakers: &[&DiagGmm]) -> Result<Self, GmmError> {
        for spk in speakers {
            check_speaker(ubm, spk)?;
        }
        let (c_count, d, s_count) = (ubm.num_components(), ubm.dim(), speakers.len());
        let quadratic = speakers.iter().any(|s| s.inv_vars() != ubm.inv_vars());
        let width = if quadratic { 2 * d } else { d };
        let rows = width + 1;
        let mut coefs = vec![0.0_f32; c_count * s_count * rows];
        for (s, spk) in speakers.iter().enumerate() {
            for c in 0..c_count {
                let column = &mut coefs[(c * s_count + s) * rows..(c * s_count + s + 1) * rows];
                let mut k = (spk.weights()[c] as f64 / ubm.weights()[c] as f64).ln();
                for j in 0..d {
                    let (mu, p) = (ubm.mean(c)[j] as f64, ubm.inv_var(c)[j] as f64);
                    let (mu_s, p_s) = (spk.mean(c)[j] as f64, spk.inv_var(c)[j] as f64);
                    let delta = mu_s - mu;
                    column[j] = (p_s * delta) as f32;
                    if quadratic {
                        column[d + j] = (-0.5 * (p_s - p)) as f32;
                    }
                    // ln(p'/p) is exactly 0 for mean-only adaptation: skip the logarithm.
                    let log_ratio = if p_s == p { 0.0 } else { (p_s / p).ln() };
                    k += 0.5 * log_ratio - 0.5 * p_s * delta * delta;
                }
                column[width] = k as f32;
            }
        }
        Ok(SpeakerBank {
            num_speakers: s_count,
            num_components: c_count,
            dim: d,
            width,
            ubm_means: ubm.means().to_vec(),
            coefs,
        })
    }

    /// Number of speakers S.
    pub fn num_speakers(&self) -> usize {
        self.num_speakers
    }

    /// True when the speakers differ from the UBM in means (and weights) only.
    pub fn is_mean_only(&self) -> bool {
        self.width == self.dim
    }

    /// Average per-frame LLR (nats) of every speaker against the UBM on the selected
    /// components, in speaker order; equals [`score_speaker`] up to f32 rounding (~1e-5).
    /// Single-threaded. Runs [`SpeakerBank::score_subset`] over everybody: copying each block of
    /// speakers' coefficients into a small panel before its product was measured twice as fast
    /// as multiplying straight from the bank (a 7-s call against the 524-model S-norm cohort,
    /// engine bench 73 → 34 ms per call; the scores are the same bit for bit).
    pub fn score(
        &self,
        feats: &FeatureMatrix,
        sel: &GaussianSelection,
    ) -> Result<Vec<f64>, GmmError> {
        let everybody: Vec<usize> = (0..self.num_speakers).collect();
        self.score_subset(feats, sel, &everybody)
    }

    /// [`SpeakerBank::score`] restricted to the speakers at `speakers` (indices into the bank, any
    /// order, repeats allowed): the same f32 arithmetic per speaker, in the order given.
    pub fn score_subset(
        &self,
        feats: &FeatureMatrix,
        sel: &GaussianSelection,
        speakers: &[usize],
    ) -> Result<Vec<f64>, GmmError> {
        self.check_call(feats, sel)?;
        if let Some(&bad) = speakers.iter().find(|&&s| s >= self.num_speakers) {
            return Err(GmmError::InvalidOption {
                option: "speakers",
                value: bad.to_string(),
                expected: "indices below the number of speakers in the bank",
            });
        }
        if speakers.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.grouped_rows(feats, sel);
        let wk = self.width + 1;
        let mut llr = vec![0.0_f64; speakers.len()];
        let block = SPEAKER_BLOCK.min(speakers.len());
        let mut bufs = BlockBuffers::new(&rows, block);
        let mut panel = vec![0.0_f32; wk * block];
        for (b, chunk) in speakers.chunks(block).enumerate() {
            let sb = chunk.len();
            for c in 0..self.num_components {
                if rows.starts[c] == rows.starts[c + 1] {
                    continue;
                }
                for (column, &s) in panel.chunks_exact_mut(wk).zip(chunk) {
                    let at = (c * self.num_speakers + s) * wk;
                    column.copy_from_slice(&self.coefs[at..at + wk]);
                }
                rows.component_pass(c, &panel[..wk * sb], sb, &mut bufs);
            }
            rows.reduce_block(sb, &mut bufs, &mut llr[b * block..b * block + sb]);
        }
        let n = feats.num_frames() as f64;
        llr.iter_mut().for_each(|l| *l /= n);
        Ok(llr)
    }

    /// Linear (first-order) approximation of [`SpeakerBank::score`] for every speaker, from the
    /// call's top-C Baum–Welch statistics (Glembek et al. 2009): with γ the UBM posteriors over the
    /// selected components, `Σ_t ln Σ_c γ_tc e^{ℓ_sc(x_t)} ≥ Σ_c Σ_t γ_tc ℓ_sc(x_t)` (Jensen), and
    /// the right side is one dot product per speaker and component with the statistics
    /// `Σ_t γ_tc [x_t − μ_c, (x_t − μ_c)², 1]`. Nats per frame, a lower bound of the exact score up
    /// to f32 rounding; costs one pass over the bank's components the call occupies, whatever its
    /// length. Components whose occupancy is below `min_occupancy` frames are skipped.
    pub fn linear_scores(
        &self,
        feats: &FeatureMatrix,
        sel: &GaussianSelection,
        min_occupancy: f64,
    ) -> Result<Vec<f64>, GmmError> {
        self.check_call(feats, sel)?;
        let (d, w, wk) = (self.dim, self.width, self.width + 1);
        let (c_count, s_count) = (self.num_components, self.num_speakers);
        let mut stats = vec![0.0_f64; c_count * wk];
        for t in 0..feats.num_frames() {
            let x = feats.row(t);
            let frame_ll = sel.frame_logliks[t];
            for (&c, &ll) in sel.indices(t).iter().zip(sel.component_log_likelihoods(t)) {
                let c = c as usize;
                let gamma = (ll - frame_ll).exp();
                let mu = &self.ubm_means[c * d..(c + 1) * d];
                let acc = &mut stats[c * wk..(c + 1) * wk];
                for j in 0..d {
                    let y = f64::from(x[j] - mu[j]);
                    acc[j] += gamma * y;
                    if w > d {
                        acc[d + j] += gamma * y * y;
                    }
                }
                acc[w] += gamma;
            }
        }
        let mut lin = vec![0.0_f32; s_count];
        let mut v = vec![0.0_f32; wk];
        for c in 0..c_count {
            let acc = &stats[c * wk..(c + 1) * wk];
            if acc[w] < min_occupancy || acc[w] == 0.0 {
                continue;
            }
            for (vj, &a) in v.iter_mut().zip(acc) {
                *vj = a as f32;
            }
            let block = &self.coefs[c * s_count * wk..(c + 1) * s_count * wk];
            for (l, column) in lin.iter_mut().zip(block.chunks_exact(wk)) {
                *l += dot_f32(&v, column);
            }
        }
        let n = feats.num_frames() as f64;
        Ok(lin.into_iter().map(|l| f64::from(l) / n).collect())
    }

    fn check_call(&self, feats: &FeatureMatrix, sel: &GaussianSelection) -> Result<(), GmmError> {
        if sel.num_components != self.num_components
            || sel.dim != self.dim
            || feats.dim() != self.dim
        {
            return Err(GmmError::SelectionMismatch {
                detail: format!(
                    "bank: {} components of dimension {}; selection: {} of {}; features: dimension {}",
                    self.num_components,
                    self.dim,
                    sel.num_components,
                    sel.dim,
                    feats.dim()
                ),
            });
        }
        if sel.num_frames() != feats.num_frames() {
            return Err(GmmError::SelectionMismatch {
                detail: format!(
                    "selection has {} frames; the features have {}",
                    sel.num_frames(),
                    feats.num_frames()
                ),
            });
        }
        if feats.is_empty() {
            return Err(GmmError::NotEnoughData {
                detail: "0 frames to score; expected at least 1".into(),
            });
        }
        Ok(())
    }

    /// Each (frame, slot) pair of the selection as a row [y, (y²), 1] with y = x − μ_c, rows
    /// grouped by component, each group padded to `MIN_GEMM_ROWS` rows.
    fn grouped_rows(&self, feats: &FeatureMatrix, sel: &GaussianSelection) -> GroupedRows {
        let (n, tc, d, w) = (feats.num_frames(), sel.top_c, self.dim, self.width);
        let c_count = self.num_components;
        let wk = w + 1;
        let mut counts = vec![0usize; c_count];
        for &c in &sel.indices {
            counts[c as usize] += 1;
        }
        let mut starts = vec![0usize; c_count + 1];
        for c in 0..c_count {
            let rows = if counts[c] == 0 {
                0
            } else {
                counts[c].max(MIN_GEMM_ROWS)
            };
            starts[c + 1] = starts[c] + rows;
        }
        let total_rows = starts[c_count];
        let mut fill = starts.clone();
        // Row of each (frame, slot) pair, and the UBM part of its value: ln w_c N_c(x) − ln p(x).
        let mut position = vec![0usize; n * tc];
        let mut base = vec![0.0_f32; n * tc];
        let mut ys = vec![0.0_f32; total_rows * wk];
        for t in 0..n {
            let x = feats.row(t);
            let frame_ll = sel.frame_logliks[t];
            for slot in 0..tc {
                let id = t * tc + slot;
                let c = sel.indices[id] as usize;
                let r = fill[c];
                fill[c] += 1;
                position[id] = r;
                base[id] = (sel.component_logliks[id] - frame_ll) as f32;
                let mu = &self.ubm_means[c * d..(c + 1) * d];
                let y = &mut ys[r * wk..(r + 1) * wk];
                for j in 0..d {
                    let v = x[j] - mu[j];
                    y[j] = v;
                    if w > d {
                        y[d + j] = v * v;
                    }
                }
                y[w] = 1.0;
            }
        }
        // Inverse of `position`: the (frame, slot) id of each real grouped row.
        let mut row_id = vec![usize::MAX; total_rows];
        for (id, &r) in position.iter().enumerate() {
            row_id[r] = id;
        }
        GroupedRows {
            num_frames: n,
            top_c: tc,
            width: wk,
            starts,
            row_id,
            base,
            ys,
        }
    }
}

/// Dot product with 8 independent lanes (vectorises).
#[inline]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((l, &p), &q) in lanes.iter_mut().zip(x).zip(y) {
            *l += p * q;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The rows of [`SpeakerBank::grouped_rows`].
struct GroupedRows {
    num_frames: usize,
    top_c: usize,
    /// Row width: D (or 2D) + 1.
    width: usize,
    /// First row of each component's group (C + 1 entries).
    starts: Vec<usize>,
    /// (frame, slot) id of each grouped row; `usize::MAX` for padding.
    row_id: Vec<usize>,
    /// Per (frame, slot): ln w_c N_c(x) − ln p(x) under the UBM.
    base: Vec<f32>,
    ys: Vec<f32>,
}

/// Working buffers of one block of speakers.
struct BlockBuffers {
    /// GEMM output of one component.
    group_out: Vec<f32>,
    /// Per (frame, slot), the block's values (frame order, so the reduction reads sequentially).
    vals: Vec<f32>,
    max_buf: Vec<f32>,
    sum_buf: Vec<f32>,
}

impl BlockBuffers {
    fn new(rows: &GroupedRows, block: usize) -> Self {
        let c_count = rows.starts.len() - 1;
        let max_group = (0..c_count)
            .map(|c| rows.starts[c + 1] - rows.starts[c])
            .max()
            .unwrap_or(0);
        Self {
            group_out: vec![0.0; max_group * block],
            vals: vec![0.0; rows.num_frames * rows.top_c * block],
            max_buf: vec![0.0; block],
            sum_buf: vec![0.0; block],
        }
    }
}

impl GroupedRows {
    /// One component's GEMM against sb speakers' coefficient columns (sb × width, row-major),
    /// scattered into `bufs.vals` in frame order.
    fn component_pass(&self, c: usize, coefs: &[f32], sb: usize, bufs: &mut BlockBuffers) {
        let (r0, r1) = (self.starts[c], self.starts[c + 1]);
        if r0 == r1 {
            return;
        }
        let wk = self.width;
        gemm(
            &MatRef::row_major(&self.ys[r0 * wk..r1 * wk], r1 - r0, wk),
            &MatRef::transposed(coefs, wk, sb),
            0.0,
            &mut bufs.group_out[..(r1 - r0) * sb],
        );
        for (r, out) in (r0..r1).zip(bufs.group_out.chunks_exact(sb)) {
            let id = self.row_id[r];
            if id == usize::MAX {
                continue; // padding row
            }
            let b = self.base[id];
            for (v, &g) in bufs.vals[id * sb..(id + 1) * sb].iter_mut().zip(out) {
                *v = g + b;
            }
        }
    }

    /// Adds each frame's log-sum-exp over its slots to `llr` (one entry per speaker of the block).
    fn reduce_block(&self, sb: usize, bufs: &mut BlockBuffers, llr: &mut [f64]) {
        let tc = self.top_c;
        for frame_vals in bufs.vals[..self.num_frames * tc * sb].chunks_exact(tc * sb) {
            let maxes = &mut bufs.max_buf[..sb];
            maxes.copy_from_slice(&frame_vals[..sb]);
            for row in frame_vals.chunks_exact(sb).skip(1) {
                for (m, &v) in maxes.iter_mut().zip(row) {
                    *m = if v > *m { v } else { *m };
                }
            }
            let sums = &mut bufs.sum_buf[..sb];
            sums.fill(0.0);
            for row in frame_vals.chunks_exact(sb) {
                for ((s, &v), &m) in sums.iter_mut().zip(row).zip(maxes.iter()) {
                    *s += exp_f32(v - m);
                }
            }
            for ((l, &m), &s) in llr.iter_mut().zip(maxes.iter()).zip(sums.iter()) {
                *l += (m + ln_f32(s)) as f64;
            }
        }
    }
}

/// A UBM with its enrolled speakers, ready to score calls: one Gaussian selection per call,
/// then every speaker on the selected components ([`SpeakerBank`]).
#[derive(Debug, Clone)]
pub struct TopCScorer {
    ubm: DiagGmm,
    bank: SpeakerBank,
    top_c: usize,
}

impl TopCScorer {
    /// Packs `speakers` (MAP-adapted from `ubm`) for top-`top_c` scoring (C = 5 is usual).
    pub fn new(ubm: DiagGmm, speakers: &[&DiagGmm], top_c: usize) -> Result<Self, GmmError> {
        if top_c == 0 || top_c > ubm.num_components() {
            return Err(GmmError::InvalidOption {
                option: "top_c",
                value: top_c.to_string(),
                expected: "between 1 and the number of UBM components",
            });
        }
        let bank = SpeakerBank::new(&ubm, speakers)?;
        Ok(Self { ubm, bank, top_c })
    }

    /// The UBM.
    pub fn ubm(&self) -> &DiagGmm {
        &self.ubm
    }

    /// Number of speakers.
    pub fn num_speakers(&self) -> usize {
        self.bank.num_speakers()
    }

    /// Average per-frame LLR (nats) of every speaker against the UBM for one call, in the
    /// order the speakers were given. Single-threaded.
    pub fn score(&self, feats: &FeatureMatrix) -> Result<Vec<f64>, GmmError> {
        let sel = self.ubm.gaussian_selection(feats, self.top_c)?;
        self.bank.score(feats, &sel)
    }
}
