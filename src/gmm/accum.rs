//! `AccumDiagGmm`: f64 zeroth-, first- and second-order statistics for the GMM updates,
//! and the fast chunked E-step that fills them.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::GmmError;
use super::math::{
    count_above, exp_f32, exp_shifted_pruned_in_place, gemm, ln_f32, max_f32, sum_f32, MatRef,
};
use super::model::DiagGmm;
use super::stats::BaumWelchStats;
use crate::features::FeatureMatrix;

/// Frames per E-step chunk: big enough for efficient GEMMs, small enough for the cache.
pub(crate) const DEFAULT_CHUNK_FRAMES: usize = 1024;
/// Chunks computed in parallel before their results are summed (in chunk order).
const CHUNKS_PER_GROUP: usize = 16;
/// Below this fraction of non-zero posteriors the statistics are accumulated sparsely.
const SPARSE_DENSITY: f64 = 0.15;
/// Posteriors below exp(−32) ≈ 1.3e-14 of the frame's best component are set to 0: the mass
/// dropped per frame (< C · 1.3e-14) is far below the f32 resolution of the statistics.
const POSTERIOR_PRUNE_NATS: f32 = 32.0;

/// Sufficient statistics of a diagonal GMM, in f64 (Kaldi's `AccumDiagGmm`).
///
/// `occupancy[c] = Σ_t γ_c(t)`, `mean_acc[c] = Σ_t γ_c(t) x_t`, `var_acc[c] = Σ_t γ_c(t) x_t²`
/// (uncentred, element-wise square).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccumDiagGmm {
    dim: usize,
    occupancy: Vec<f64>,
    mean_acc: Vec<f64>,
    var_acc: Vec<f64>,
    num_frames: f64,
    total_log_likelihood: f64,
}

impl AccumDiagGmm {
    /// Zero statistics for `num_components` components of dimension `dim`.
    pub fn new(num_components: usize, dim: usize) -> Self {
        Self {
            dim,
            occupancy: vec![0.0; num_components],
            mean_acc: vec![0.0; num_components * dim],
            var_acc: vec![0.0; num_components * dim],
            num_frames: 0.0,
            total_log_likelihood: 0.0,
        }
    }

    /// Zero statistics shaped for `gmm`.
    pub fn for_model(gmm: &DiagGmm) -> Self {
        Self::new(gmm.num_components(), gmm.dim())
    }

    /// Feature dimension D.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of components C.
    pub fn num_components(&self) -> usize {
        self.occupancy.len()
    }

    /// Σ_t γ_c(t), length C.
    pub fn occupancy(&self) -> &[f64] {
        &self.occupancy
    }

    /// Σ_t γ_c(t) x_t, row-major C × D.
    pub fn mean_acc(&self) -> &[f64] {
        &self.mean_acc
    }

    /// Σ_t γ_c(t) x_t², row-major C × D.
    pub fn var_acc(&self) -> &[f64] {
        &self.var_acc
    }

    /// Total occupancy Σ_c occupancy[c] (the weighted number of frames).
    pub fn total_count(&self) -> f64 {
        self.occupancy.iter().sum()
    }

    /// Weighted number of frames accumulated.
    pub fn num_frames(&self) -> f64 {
        self.num_frames
    }

    /// Σ_t weight_t ln p(x_t) under the model the statistics were gathered with (nats).
    pub fn total_log_likelihood(&self) -> f64 {
        self.total_log_likelihood
    }

    /// Average log-likelihood per frame (nats); NaN when empty.
    pub fn average_log_likelihood(&self) -> f64 {
        self.total_log_likelihood / self.num_frames
    }

    fn check_model(&self, gmm: &DiagGmm) -> Result<(), GmmError> {
        gmm.check_dim(self.dim)?;
        if gmm.num_components() != self.num_components() {
            return Err(GmmError::ComponentCountMismatch {
                expected: self.num_components(),
                actual: gmm.num_components(),
            });
        }
        Ok(())
    }

    /// Adds one frame with posteriors `posteriors` (length C) and frame weight 1.
    /// Does not touch the log-likelihood total.
    pub fn accumulate_posteriors(
        &mut self,
        frame: &[f32],
        posteriors: &[f64],
    ) -> Result<(), GmmError> {
        if frame.len() != self.dim {
            return Err(GmmError::DimensionMismatch {
                expected: self.dim,
                actual: frame.len(),
            });
        }
        if posteriors.len() != self.num_components() {
            return Err(GmmError::ShapeMismatch {
                what: "posteriors",
                expected: self.num_components(),
                actual: posteriors.len(),
            });
        }
        let d = self.dim;
        for (c, &p) in posteriors.iter().enumerate() {
            if p == 0.0 {
                continue;
            }
            self.occupancy[c] += p;
            let first = &mut self.mean_acc[c * d..(c + 1) * d];
            let second = &mut self.var_acc[c * d..(c + 1) * d];
            for ((f, s), &x) in first.iter_mut().zip(second.iter_mut()).zip(frame) {
                let x = x as f64;
                *f += p * x;
                *s += p * x * x;
            }
        }
        self.num_frames += posteriors.iter().sum::<f64>();
        Ok(())
    }

    /// Adds one frame with weight `weight`, computing the posteriors exactly in f64 with
    /// log-sum-exp (the reference path; [`DiagGmm::accumulate_stats`] is the fast one).
    /// Returns the frame's log-likelihood ln p(x) (nats).
    pub fn accumulate_frame(
        &mut self,
        gmm: &DiagGmm,
        frame: &[f32],
        weight: f64,
    ) -> Result<f64, GmmError> {
        self.check_model(gmm)?;
        gmm.check_dim(frame.len())?;
        let mut post: Vec<f64> = (0..gmm.num_components())
            .map(|c| gmm.component_log_likelihood_unchecked(c, frame))
            .collect();
        let ll = super::math::log_sum_exp(&post);
        post.iter_mut().for_each(|p| *p = weight * (*p - ll).exp());
        let frames_before = self.num_frames;
        self.accumulate_posteriors(frame, &post)?;
        self.num_frames = frames_before + weight;
        self.total_log_likelihood += weight * ll;
        Ok(ll)
    }

    /// Adds statistics of the same shape.
    pub fn add(&mut self, other: &AccumDiagGmm) -> Result<(), GmmError> {
        if other.dim != self.dim {
            return Err(GmmError::DimensionMismatch {
                expected: self.dim,
                actual: other.dim,
            });
        }
        if other.num_components() != self.num_components() {
            return Err(GmmError::ComponentCountMismatch {
                expected: self.num_components(),
                actual: other.num_components(),
            });
        }
        add_into(&mut self.occupancy, &other.occupancy);
        add_into(&mut self.mean_acc, &other.mean_acc);
        add_into(&mut self.var_acc, &other.var_acc);
        self.num_frames += other.num_frames;
        self.total_log_likelihood += other.total_log_likelihood;
        Ok(())
    }

    /// The zeroth- and first-order part as [`BaumWelchStats`].
    pub fn to_baum_welch_stats(&self) -> BaumWelchStats {
        BaumWelchStats {
            dim: self.dim,
            zeroth: self.occupancy.clone(),
            first: self.mean_acc.clone(),
        }
    }

    fn add_chunk(&mut self, chunk: &ChunkStats) {
        add_into(&mut self.occupancy, &chunk.occupancy);
        add_into(&mut self.mean_acc, &chunk.first);
        add_into(&mut self.var_acc, &chunk.second);
        self.num_frames += chunk.num_frames;
        self.total_log_likelihood += chunk.log_likelihood;
    }
}

fn add_into(a: &mut [f64], b: &[f64]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
}

/// Statistics of one chunk (uncentred, f64).
pub(crate) struct ChunkStats {
    occupancy: Vec<f64>,
    first: Vec<f64>,
    second: Vec<f64>,
    num_frames: f64,
    log_likelihood: f64,
}

/// Reusable buffers of the chunked E-step.
#[derive(Default)]
pub(crate) struct EStepScratch {
    /// n × 2D: `[x − r, (x − r)²]` per frame.
    pub(crate) z: Vec<f32>,
    /// n × C: component log-likelihoods, then posteriors.
    pub(crate) loglik: Vec<f32>,
    /// Per-row maximum log-likelihood.
    row_max: Vec<f32>,
    /// C × 2D product of the dense f32 path.
    stats: Vec<f32>,
    /// f64 copies for the small-model dense path: posteriors (n × C), `[x, x²]` (n × 2D), product (C × 2D).
    post64: Vec<f64>,
    x64: Vec<f64>,
    stats64: Vec<f64>,
}

/// Fills `scratch.z` and `scratch.loglik` (n × C, `ln w_c N(x_t)`) for the frames of `frames`
/// (row-major n × D), with two passes: centring, then one GEMM. Returns n.
pub(crate) fn component_logliks_block(
    gmm: &DiagGmm,
    frames: &[f32],
    scratch: &mut EStepScratch,
) -> usize {
    let (d, c_count) = (gmm.dim(), gmm.num_components());
    let n = frames.len() / d;
    scratch.z.resize(n * 2 * d, 0.0);
    let center = gmm.center();
    for (x, z) in frames
        .chunks_exact(d)
        .zip(scratch.z.chunks_exact_mut(2 * d))
    {
        let (lin, quad) = z.split_at_mut(d);
        for k in 0..d {
            let y = x[k] - center[k];
            lin[k] = y;
            quad[k] = y * y;
        }
    }
    scratch.loglik.resize(n * c_count, 0.0);
    for row in scratch.loglik.chunks_exact_mut(c_count) {
        row.copy_from_slice(gmm.packed_consts());
    }
    gemm(
        &MatRef::row_major(&scratch.z, n, 2 * d),
        &MatRef::row_major(gmm.packed(), 2 * d, c_count),
        1.0,
        &mut scratch.loglik,
    );
    n
}

/// Log-sum-exp of one row of component log-likelihoods (f32 arithmetic, f64 result).
#[inline]
pub(crate) fn row_log_sum_exp(row: &[f32]) -> f64 {
    let max = max_f32(row);
    let mut sum = 0.0_f32;
    for chunk in row.chunks(64) {
        let mut buf = [0.0_f32; 64];
        for (b, &v) in buf.iter_mut().zip(chunk) {
            *b = exp_f32(v - max);
        }
        sum += sum_f32(&buf[..chunk.len()]);
    }
    max as f64 + ln_f32(sum) as f64
}

/// E-step on one chunk of frames (row-major n × D): posteriors from the f32 GEMM (pruned at
/// [`POSTERIOR_PRUNE_NATS`]), then uncentred statistics: sparsely in f64 over the non-zero
/// posteriors, or densely by a GEMM, whichever is cheaper.
fn chunk_stats(gmm: &DiagGmm, frames: &[f32], scratch: &mut EStepScratch) -> ChunkStats {
    let (d, c_count) = (gmm.dim(), gmm.num_components());
    let n = component_logliks_block(gmm, frames, scratch);
    scratch.row_max.clear();
    let mut nonzero = 0usize;
    for row in scratch.loglik.chunks_exact(c_count) {
        let max = max_f32(row);
        nonzero += count_above(row, max - POSTERIOR_PRUNE_NATS);
        scratch.row_max.push(max);
    }
    let mut stats = ChunkStats {
        occupancy: vec![0.0; c_count],
        first: vec![0.0; c_count * d],
        second: vec![0.0; c_count * d],
        num_frames: n as f64,
        log_likelihood: 0.0,
    };
    if (nonzero as f64) < SPARSE_DENSITY * (n * c_count) as f64 {
        let mut entries: Vec<(usize, f32)> = Vec::with_capacity(c_count);
        for ((row, &max), x) in scratch
            .loglik
            .chunks_exact(c_count)
            .zip(&scratch.row_max)
            .zip(frames.chunks_exact(d))
        {
            entries.clear();
            let threshold = max - POSTERIOR_PRUNE_NATS;
            for (c, &v) in row.iter().enumerate() {
                if v >= threshold {
                    entries.push((c, exp_f32(v - max)));
                }
            }
            let sum: f32 = entries.iter().map(|e| e.1).sum();
            stats.log_likelihood += max as f64 + ln_f32(sum) as f64;
            let scale = 1.0 / sum as f64;
            for &(c, e) in &entries {
                let p = e as f64 * scale;
                stats.occupancy[c] += p;
                let first = &mut stats.first[c * d..(c + 1) * d];
                let second = &mut stats.second[c * d..(c + 1) * d];
                for ((f, s), &x) in first.iter_mut().zip(second.iter_mut()).zip(x) {
                    let px = p * x as f64;
                    *f += px;
                    *s += px * x as f64;
                }
            }
        }
        return stats;
    }
    for (row, &max) in scratch
        .loglik
        .chunks_exact_mut(c_count)
        .zip(&scratch.row_max)
    {
        exp_shifted_pruned_in_place(row, max, POSTERIOR_PRUNE_NATS);
        let sum = sum_f32(row);
        let scale = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= scale);
        stats.log_likelihood += max as f64 + ln_f32(sum) as f64;
    }
    if c_count > 5 && d > 2 {
        // Dense f32 GEMM on centred frames: Σγ(x − r) and Σγ(x − r)², made uncentred in f64.
        // Relative error of a variance derived from them: ~1e-6 · max_d (μ_cd − r_d)² / σ²_cd.
        for post in scratch.loglik.chunks_exact(c_count) {
            for (o, &p) in stats.occupancy.iter_mut().zip(post) {
                *o += p as f64;
            }
        }
        scratch.stats.resize(c_count * 2 * d, 0.0);
        gemm(
            &MatRef::transposed(&scratch.loglik, c_count, n),
            &MatRef::row_major(&scratch.z, n, 2 * d),
            0.0,
            &mut scratch.stats,
        );
        let center = gmm.center();
        for c in 0..c_count {
            let row = &scratch.stats[c * 2 * d..(c + 1) * 2 * d];
            let occ = stats.occupancy[c];
            for k in 0..d {
                let (lin, quad, r) = (row[k] as f64, row[d + k] as f64, center[k] as f64);
                stats.first[c * d + k] = lin + occ * r;
                stats.second[c * d + k] = quad + 2.0 * r * lin + occ * r * r;
            }
        }
    } else {
        // Small models: f64 throughout (cheap at this size).
        scratch.post64.clear();
        scratch
            .post64
            .extend(scratch.loglik.iter().map(|&p| p as f64));
        for post in scratch.post64.chunks_exact(c_count) {
            for (o, &p) in stats.occupancy.iter_mut().zip(post) {
                *o += p;
            }
        }
        scratch.x64.resize(n * 2 * d, 0.0);
        for (x, row) in frames
            .chunks_exact(d)
            .zip(scratch.x64.chunks_exact_mut(2 * d))
        {
            let (lin, quad) = row.split_at_mut(d);
            for k in 0..d {
                let v = x[k] as f64;
                lin[k] = v;
                quad[k] = v * v;
            }
        }
        scratch.stats64.resize(c_count * 2 * d, 0.0);
        gemm(
            &MatRef::transposed(&scratch.post64, c_count, n),
            &MatRef::row_major(&scratch.x64, n, 2 * d),
            0.0,
            &mut scratch.stats64,
        );
        for c in 0..c_count {
            let row = &scratch.stats64[c * 2 * d..(c + 1) * 2 * d];
            stats.first[c * d..(c + 1) * d].copy_from_slice(&row[..d]);
            stats.second[c * d..(c + 1) * d].copy_from_slice(&row[d..]);
        }
    }
    stats
}

/// Accumulates the statistics of all frames of `data` (row-major, D columns) into `acc`,
/// in parallel over chunks of `chunk_frames` frames; chunk results are summed in chunk order,
/// so the result does not depend on the number of threads.
pub(crate) fn accumulate_chunked(
    gmm: &DiagGmm,
    data: &[f32],
    chunk_frames: usize,
    acc: &mut AccumDiagGmm,
) {
    let d = gmm.dim();
    let chunks: Vec<&[f32]> = data.chunks(chunk_frames.max(1) * d).collect();
    for group in chunks.chunks(CHUNKS_PER_GROUP) {
        let results: Vec<ChunkStats> = group
            .par_iter()
            .map_init(EStepScratch::default, |scratch, frames| {
                chunk_stats(gmm, frames, scratch)
            })
            .collect();
        for stats in &results {
            acc.add_chunk(stats);
        }
    }
}

impl DiagGmm {
    /// Accumulates the E-step statistics of `feats` into `acc` (fast path: chunked f32 GEMMs,
    /// f64 accumulation, rayon-parallel with a fixed reduction order). Used for EM and for
    /// MAP enrollment.
    pub fn accumulate_stats(
        &self,
        feats: &FeatureMatrix,
        acc: &mut AccumDiagGmm,
    ) -> Result<(), GmmError> {
        acc.check_model(self)?;
        self.check_features(feats)?;
        accumulate_chunked(self, feats.as_slice(), DEFAULT_CHUNK_FRAMES, acc);
        Ok(())
    }

    /// Per-frame log-likelihoods ln p(x_t) (nats) by the batch GEMM path.
    pub fn frame_log_likelihoods(&self, feats: &FeatureMatrix) -> Result<Vec<f64>, GmmError> {
        self.check_features(feats)?;
        let mut scratch = EStepScratch::default();
        let mut out = Vec::with_capacity(feats.num_frames());
        for frames in feats.as_slice().chunks(DEFAULT_CHUNK_FRAMES * self.dim()) {
            component_logliks_block(self, frames, &mut scratch);
            out.extend(
                scratch
                    .loglik
                    .chunks_exact(self.num_components())
                    .map(row_log_sum_exp),
            );
        }
        Ok(out)
    }

    /// Average log-likelihood per frame (nats) of `feats`; an error for an empty matrix.
    pub fn average_log_likelihood(&self, feats: &FeatureMatrix) -> Result<f64, GmmError> {
        if feats.is_empty() {
            return Err(GmmError::NotEnoughData {
                detail: "0 frames; expected at least 1".into(),
            });
        }
        let ll = self.frame_log_likelihoods(feats)?;
        Ok(ll.iter().sum::<f64>() / ll.len() as f64)
    }
}
