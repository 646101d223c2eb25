//! UBM training: k-means++ or binary-splitting initialisation, then EM with a deterministic
//! parallel E-step.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::accum::{accumulate_chunked, AccumDiagGmm, DEFAULT_CHUNK_FRAMES};
use super::error::GmmError;
use super::math::{gemm, MatRef};
use super::model::DiagGmm;
use super::update::{mle_update, MleDiagGmmOptions};
use crate::features::FeatureMatrix;

/// How [`train_ubm`] builds the starting model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum UbmInit {
    /// k-means++ seeding (seeded ChaCha8) on a random subset of frames, a few Lloyd
    /// iterations; uniform weights, global variances.
    KMeansPlusPlus,
    /// Start from one Gaussian (global mean and variance) and split the heaviest components
    /// (means ± 0.2 σ) until `num_components`, with `split_em_iters` EM iterations after each round.
    BinarySplit,
}

/// Options of [`train_ubm`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UbmTrainOptions {
    /// Number of Gaussians C (default 512, ≥ 1).
    pub num_components: usize,
    /// EM iterations after initialisation (default 10).
    pub num_iters: usize,
    /// Initialisation method (default k-means++).
    pub init: UbmInit,
    /// Lloyd iterations after k-means++ seeding (default 5).
    pub kmeans_iters: usize,
    /// At most this many randomly chosen frames are used for k-means (default 50 000, ≥ num_components).
    pub max_init_frames: usize,
    /// EM iterations after each binary-split round (default 2).
    pub split_em_iters: usize,
    /// Seed of the ChaCha8 generator used by the initialisation.
    pub seed: u64,
    /// Frames per parallel E-step chunk (default 1024, ≥ 1). The model depends on this value
    /// (f32 summation order) but not on the number of threads.
    pub chunk_frames: usize,
    /// M-step options (default: Kaldi's, but dead components are kept, not removed, so the
    /// model keeps `num_components` Gaussians).
    pub mle: MleDiagGmmOptions,
}

impl Default for UbmTrainOptions {
    fn default() -> Self {
        Self {
            num_components: 512,
            num_iters: 10,
            init: UbmInit::KMeansPlusPlus,
            kmeans_iters: 5,
            max_init_frames: 50_000,
            split_em_iters: 2,
            seed: 0,
            chunk_frames: DEFAULT_CHUNK_FRAMES,
            mle: MleDiagGmmOptions {
                remove_low_count: false,
                ..MleDiagGmmOptions::default()
            },
        }
    }
}

impl UbmTrainOptions {
    /// Checks every option against its documented range.
    pub fn validate(&self) -> Result<(), GmmError> {
        let bad =
            |option: &'static str, value: usize, expected: &'static str| GmmError::InvalidOption {
                option,
                value: value.to_string(),
                expected,
            };
        if self.num_components == 0 {
            return Err(bad("num_components", 0, ">= 1"));
        }
        if self.chunk_frames == 0 {
            return Err(bad("chunk_frames", 0, ">= 1"));
        }
        if self.max_init_frames < self.num_components {
            return Err(bad(
                "max_init_frames",
                self.max_init_frames,
                ">= num_components",
            ));
        }
        self.mle.validate()
    }
}

/// Trains a diagonal UBM on `frames` (one row per frame): initialisation, then
/// `opts.num_iters` EM iterations. `progress(iter, avg_loglik)` is called after each E-step
/// with the average log-likelihood per frame (nats) of the model *before* that iteration's update.
///
/// The E-step runs on rayon's current pool over fixed chunks whose results are summed in chunk
/// order, so the model is bit-identical whatever the number of threads.
pub fn train_ubm(
    frames: &FeatureMatrix,
    opts: &UbmTrainOptions,
    progress: &dyn Fn(usize, f64),
) -> Result<DiagGmm, GmmError> {
    opts.validate()?;
    let dim = frames.dim();
    if dim == 0 {
        return Err(GmmError::EmptyModel {
            components: opts.num_components,
            dim,
        });
    }
    let n = frames.num_frames();
    if n < opts.num_components.max(2) {
        return Err(GmmError::NotEnoughData {
            detail: format!("{n} frames for {} components; expected at least as many frames as components (and 2)", opts.num_components),
        });
    }
    if let Some(i) = frames.as_slice().iter().position(|v| !v.is_finite()) {
        return Err(GmmError::NonFiniteFeature {
            frame: i / dim,
            dim: i % dim,
        });
    }
    let (global_mean, global_var) = global_mean_var(frames);
    if global_var.iter().any(|&v| !(v > 0.0 && v.is_finite())) {
        return Err(GmmError::NotEnoughData {
            detail:
                "a feature dimension is constant; expected positive variance in every dimension"
                    .into(),
        });
    }
    let mut gmm = match opts.init {
        UbmInit::KMeansPlusPlus => {
            let centers = kmeans(frames, opts)?;
            let weights = vec![1.0 / opts.num_components as f32; opts.num_components];
            let vars: Vec<f32> = (0..opts.num_components)
                .flat_map(|_| global_var.iter().map(|&v| v as f32))
                .collect();
            DiagGmm::new(dim, weights, centers, vars)?
        }
        UbmInit::BinarySplit => {
            let mut gmm = DiagGmm::new(
                dim,
                vec![1.0],
                global_mean.iter().map(|&m| m as f32).collect(),
                global_var.iter().map(|&v| v as f32).collect(),
            )?;
            while gmm.num_components() < opts.num_components {
                gmm = split(&gmm, opts.num_components)?;
                for _ in 0..opts.split_em_iters {
                    gmm = em_iteration(&gmm, frames, opts)?.0;
                }
            }
            gmm
        }
    };
    for iter in 0..opts.num_iters {
        let (next, ll) = em_iteration(&gmm, frames, opts)?;
        progress(iter, ll);
        gmm = next;
    }
    Ok(gmm)
}

/// One EM iteration; returns the updated model and the average log-likelihood before it.
fn em_iteration(
    gmm: &DiagGmm,
    frames: &FeatureMatrix,
    opts: &UbmTrainOptions,
) -> Result<(DiagGmm, f64), GmmError> {
    let mut acc = AccumDiagGmm::for_model(gmm);
    accumulate_chunked(gmm, frames.as_slice(), opts.chunk_frames, &mut acc);
    let ll = acc.average_log_likelihood();
    Ok((mle_update(gmm, &acc, &opts.mle)?.model, ll))
}

fn global_mean_var(frames: &FeatureMatrix) -> (Vec<f64>, Vec<f64>) {
    let dim = frames.dim();
    let n = frames.num_frames() as f64;
    let mut mean = vec![0.0; dim];
    for row in frames.rows() {
        mean.iter_mut().zip(row).for_each(|(m, &x)| *m += x as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0; dim];
    for row in frames.rows() {
        for ((v, &x), m) in var.iter_mut().zip(row).zip(&mean) {
            let diff = x as f64 - m;
            *v += diff * diff;
        }
    }
    var.iter_mut().for_each(|v| *v /= n);
    (mean, var)
}

/// Splits the heaviest components (means ± 0.2 σ) until there are `target` (or twice as many).
fn split(gmm: &DiagGmm, target: usize) -> Result<DiagGmm, GmmError> {
    let (c_count, d) = (gmm.num_components(), gmm.dim());
    let new_count = (2 * c_count).min(target);
    let mut order: Vec<usize> = (0..c_count).collect();
    order.sort_by(|&a, &b| {
        gmm.weights()[b]
            .total_cmp(&gmm.weights()[a])
            .then(a.cmp(&b))
    });
    let mut weights = gmm.weights().to_vec();
    let mut means = gmm.means().to_vec();
    let mut vars = gmm.variances();
    for &c in order.iter().take(new_count - c_count) {
        weights[c] *= 0.5;
        weights.push(weights[c]);
        let mut new_mean = Vec::with_capacity(d);
        for k in 0..d {
            let shift = 0.2 * vars[c * d + k].sqrt();
            new_mean.push(means[c * d + k] - shift);
            means[c * d + k] += shift;
        }
        means.extend_from_slice(&new_mean);
        let var_c = vars[c * d..(c + 1) * d].to_vec();
        vars.extend_from_slice(&var_c);
    }
    DiagGmm::new(d, weights, means, vars)
}

/// k-means++ seeding and Lloyd iterations on a seeded random subset; returns C × D centres.
fn kmeans(frames: &FeatureMatrix, opts: &UbmTrainOptions) -> Result<Vec<f32>, GmmError> {
    let (d, k) = (frames.dim(), opts.num_components);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let n_all = frames.num_frames();
    let n = n_all.min(opts.max_init_frames);
    // Partial Fisher–Yates: the first n indices are a uniform random subset, kept in order.
    let mut idx: Vec<usize> = (0..n_all).collect();
    for i in 0..n {
        let j = rng.random_range(i..n_all);
        idx.swap(i, j);
    }
    let mut subset = idx[..n].to_vec();
    subset.sort_unstable();
    let mut data = Vec::with_capacity(n * d);
    for &i in &subset {
        data.extend_from_slice(frames.row(i));
    }
    let row = |i: usize| &data[i * d..(i + 1) * d];
    let sq_dist = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| ((x - y) as f64).powi(2))
            .sum()
    };
    // Seeding.
    let mut centers: Vec<f32> = Vec::with_capacity(k * d);
    let first = rng.random_range(0..n);
    centers.extend_from_slice(row(first));
    let mut dist: Vec<f64> = (0..n).map(|i| sq_dist(row(i), row(first))).collect();
    for _ in 1..k {
        let total: f64 = dist.iter().sum();
        let chosen = if total > 0.0 {
            let target = rng.random::<f64>() * total;
            let mut acc = 0.0;
            let mut chosen = n - 1;
            for (i, &dd) in dist.iter().enumerate() {
                acc += dd;
                if acc > target {
                    chosen = i;
                    break;
                }
            }
            chosen
        } else {
            rng.random_range(0..n)
        };
        let center = row(chosen).to_vec();
        dist.par_chunks_mut(4096)
            .enumerate()
            .for_each(|(b, chunk)| {
                for (j, dd) in chunk.iter_mut().enumerate() {
                    let i = b * 4096 + j;
                    *dd = dd.min(sq_dist(&data[i * d..(i + 1) * d], &center));
                }
            });
        centers.extend_from_slice(&center);
    }
    // Lloyd iterations; assignment by one GEMM per block: argmax_c x·μ_c − ½|μ_c|².
    let block = 1024;
    for _ in 0..opts.kmeans_iters {
        let half_norms: Vec<f32> = centers
            .chunks_exact(d)
            .map(|c| 0.5 * c.iter().map(|v| v * v).sum::<f32>())
            .collect();
        let assign: Vec<usize> = data
            .par_chunks(block * d)
            .flat_map_iter(|chunk| {
                let m = chunk.len() / d;
                let mut scores = vec![0.0_f32; m * k];
                for r in scores.chunks_exact_mut(k) {
                    r.iter_mut().zip(&half_norms).for_each(|(s, h)| *s = -h);
                }
                gemm(
                    &MatRef::row_major(chunk, m, d),
                    &MatRef::transposed(&centers, d, k),
                    1.0,
                    &mut scores,
                );
                scores
                    .chunks_exact(k)
                    .map(|r| {
                        let mut best = 0;
                        for (c, &v) in r.iter().enumerate() {
                            if v > r[best] {
                                best = c;
                            }
                        }
                        best
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut sums = vec![0.0_f64; k * d];
        let mut counts = vec![0usize; k];
        for (i, &c) in assign.iter().enumerate() {
            counts[c] += 1;
            sums[c * d..(c + 1) * d]
                .iter_mut()
                .zip(row(i))
                .for_each(|(s, &x)| *s += x as f64);
        }
        for c in 0..k {
            // An empty cluster keeps its centre.
            if counts[c] > 0 {
                for j in 0..d {
                    centers[c * d + j] = (sums[c * d + j] / counts[c] as f64) as f32;
                }
            }
        }
    }
    Ok(centers)
}
