//! The total-variability extractor: EM training of T and posterior-mean extraction.

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::{IvectorError, UbmParams};
use crate::gmm::BaumWelchStats;

/// Options of total-variability training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IvectorTrainOptions {
    /// I-vector dimension R (≥ 1). Default 100.
    pub dim: usize,
    /// EM iterations (≥ 1). Default 10.
    pub iterations: usize,
    /// Utterances whose total occupancy (frames) is below this are left out of training. Default 1.
    pub min_count: f64,
    /// Seed of the random initialisation of T. Default 0.
    pub seed: u64,
    /// Minimum-divergence re-estimation after every M-step (rescales T so the empirical
    /// i-vector second moment is I; speeds convergence). Default true.
    pub min_divergence: bool,
    /// Standard deviation of the initial whitened T entries, times 1/√R (so the initial model
    /// explains `init_scale²` of the whitened per-dimension variance). Default 0.5.
    pub init_scale: f64,
}

impl Default for IvectorTrainOptions {
    fn default() -> Self {
        Self {
            dim: 100,
            iterations: 10,
            min_count: 1.0,
            seed: 0,
            min_divergence: true,
            init_scale: 0.5,
        }
    }
}

impl IvectorTrainOptions {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), IvectorError> {
        if self.dim == 0 {
            return Err(IvectorError::InvalidValue {
                what: "IvectorTrainOptions::dim",
                expected: "an i-vector dimension >= 1",
            });
        }
        if self.iterations == 0 {
            return Err(IvectorError::InvalidValue {
                what: "IvectorTrainOptions::iterations",
                expected: "at least 1 EM iteration",
            });
        }
        if !(self.min_count.is_finite() && self.min_count >= 0.0) {
            return Err(IvectorError::InvalidValue {
                what: "IvectorTrainOptions::min_count",
                expected: "a finite frame count >= 0",
            });
        }
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return Err(IvectorError::InvalidValue {
                what: "IvectorTrainOptions::init_scale",
                expected: "a finite value > 0",
            });
        }
        Ok(())
    }
}

/// Serialised form: the derived per-component terms are recomputed on load.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct ExtractorData {
    feat_dim: usize,
    ubm_means: Vec<f64>,
    inv_std: Vec<f64>,
    t: DMatrix<f64>,
}

/// A trained total-variability model. Extraction of one utterance costs one
/// (R(R+1)/2 × C) matrix–vector product, one (C·D × R) one and an R × R Cholesky.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "ExtractorData", into = "ExtractorData")]
pub struct IvectorExtractor {
    feat_dim: usize,
    /// UBM means μ, C × D row-major.
    ubm_means: Vec<f64>,
    /// 1/√σ², C × D row-major.
    inv_std: Vec<f64>,
    /// Whitened T̃ = Σ^(−1/2) T, (C·D) × R.
    t: DMatrix<f64>,
    /// Derived from `t` for extraction, in f32: extraction is memory-bound and f32 halves the
    /// traffic (sums are accumulated in f64). Training uses exact f64 terms.
    derived: DerivedTerms<f32>,
}

impl From<IvectorExtractor> for ExtractorData {
    fn from(e: IvectorExtractor) -> Self {
        Self {
            feat_dim: e.feat_dim,
            ubm_means: e.ubm_means,
            inv_std: e.inv_std,
            t: e.t,
        }
    }
}

impl TryFrom<ExtractorData> for IvectorExtractor {
    type Error = IvectorError;
    fn try_from(d: ExtractorData) -> Result<Self, IvectorError> {
        if d.feat_dim == 0
            || !d.ubm_means.len().is_multiple_of(d.feat_dim)
            || d.inv_std.len() != d.ubm_means.len()
            || d.t.nrows() != d.ubm_means.len()
            || d.t.ncols() == 0
        {
            return Err(IvectorError::Shape {
                what: "serialised i-vector extractor (means, inverse std, T rows)",
                expected: d.ubm_means.len(),
                got: d.t.nrows(),
            });
        }
        let mut e = Self {
            feat_dim: d.feat_dim,
            ubm_means: d.ubm_means,
            inv_std: d.inv_std,
            t: d.t,
            derived: DerivedTerms::default(),
        };
        e.update_precision_terms();
        Ok(e)
    }
}

/// Posterior of one utterance's i-vector and what training needs from it.
struct UtterancePosterior {
    mean: DVector<f64>,
    /// Packed E[w wᵀ] = L⁻¹ + w wᵀ (training only).
    second_moment: Option<DVector<f64>>,
    /// Centred, whitened first-order stats f̃ (training only).
    centred: Option<DVector<f64>>,
    /// −½ ln|L| + ½ bᵀL⁻¹b: the T-dependent part of the utterance's marginal log-likelihood.
    objective: f64,
}

/// Element type of the derived per-component terms (f32 for extraction, f64 for training).
trait Storage: Copy + Send + Sync {
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Storage for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Storage for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// Terms derived from T̃: per component the packed lower triangle of T̃_cᵀT̃_c (C blocks of
/// R(R+1)/2), and T̃ row-major ((C·D) × R) so one component's rows are contiguous.
#[derive(Debug, Clone, PartialEq, Default)]
struct DerivedTerms<S> {
    precision: Vec<S>,
    rows: Vec<S>,
}

fn packed_len(rank: usize) -> usize {
    rank * (rank + 1) / 2
}

/// Packs the lower triangle of a symmetric matrix, row by row.
fn pack_lower(m: &DMatrix<f64>, out: &mut [f64]) {
    let mut k = 0;
    for i in 0..m.nrows() {
        for j in 0..=i {
            out[k] = m[(i, j)];
            k += 1;
        }
    }
}

fn unpack_lower(packed: &[f64], rank: usize) -> DMatrix<f64> {
    let mut m = DMatrix::zeros(rank, rank);
    let mut k = 0;
    for i in 0..rank {
        for j in 0..=i {
            m[(i, j)] = packed[k];
            m[(j, i)] = packed[k];
            k += 1;
        }
    }
    m
}

impl IvectorExtractor {
    /// An extractor from a UBM and an (unwhitened) total-variability matrix T, (C·D) × R with
    /// rows in component-major order (row c·D + d is component c, feature d).
    pub fn from_total_variability(
        ubm: &UbmParams,
        total_variability: &DMatrix<f64>,
    ) -> Result<Self, IvectorError> {
        let cd = ubm.num_components() * ubm.dim();
        if total_variability.nrows() != cd || total_variability.ncols() == 0 {
            return Err(IvectorError::Shape {
                what: "total-variability matrix rows (C x D), with at least one column",
                expected: cd,
                got: total_variability.nrows(),
            });
        }
        if total_variability.iter().any(|x| !x.is_finite()) {
            return Err(IvectorError::InvalidValue {
                what: "total-variability matrix",
                expected: "finite values",
            });
        }
        let inv_std: Vec<f64> = ubm.variances().iter().map(|v| 1.0 / v.sqrt()).collect();
        let mut t = total_variability.clone();
        for (mut row, &s) in t.row_iter_mut().zip(&inv_std) {
            row *= s;
        }
        let mut e = Self {
            feat_dim: ubm.dim(),
            ubm_means: ubm.means().to_vec(),
            inv_std,
            t,
            derived: DerivedTerms::default(),
        };
        e.update_precision_terms();
        Ok(e)
    }

    /// A randomly initialised extractor (whitened entries N(0, (init_scale/√R)²), seeded).
    pub fn random(ubm: &UbmParams, options: &IvectorTrainOptions) -> Result<Self, IvectorError> {
        options.validate()?;
        let cd = ubm.num_components() * ubm.dim();
        let rank = options.dim;
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        let scale = options.init_scale / (rank as f64).sqrt();
        let mut whitened = DMatrix::zeros(cd, rank);
        for x in whitened.iter_mut() {
            let z: f64 = StandardNormal.sample(&mut rng);
            *x = scale * z;
        }
        // Undo the whitening that from_total_variability applies.
        for (mut row, &v) in whitened.row_iter_mut().zip(ubm.variances()) {
            row *= v.sqrt();
        }
        Self::from_total_variability(ubm, &whitened)
    }

    /// Trains T by EM from random initialisation on `stats` (one per utterance). Returns the
    /// model and, per iteration, the average T-dependent log-likelihood per frame (nats) of the
    /// model *entering* that iteration (EM makes it non-decreasing).
    pub fn train(
        ubm: &UbmParams,
        stats: &[BaumWelchStats],
        options: &IvectorTrainOptions,
    ) -> Result<(Self, Vec<f64>), IvectorError> {
        let mut model = Self::random(ubm, options)?;
        let selected: Vec<&BaumWelchStats> = stats
            .iter()
            .filter(|s| s.total_count() >= options.min_count)
            .collect();
        if selected.is_empty() {
            return Err(IvectorError::NotEnoughData {
                what: "utterances with at least min_count frames",
                expected: 1,
                got: 0,
            });
        }
        let mut history = Vec::with_capacity(options.iterations);
        for _ in 0..options.iterations {
            history.push(model.em_iteration(&selected, options.min_divergence)?);
        }
        Ok((model, history))
    }

    /// I-vector dimension R.
    pub fn ivector_dim(&self) -> usize {
        self.t.ncols()
    }

    /// Number of UBM components C.
    pub fn num_components(&self) -> usize {
        self.ubm_means.len() / self.feat_dim
    }

    /// Feature dimension D.
    pub fn feat_dim(&self) -> usize {
        self.feat_dim
    }

    /// The unwhitened total-variability matrix T, (C·D) × R.
    pub fn total_variability(&self) -> DMatrix<f64> {
        let mut t = self.t.clone();
        for (mut row, &s) in t.row_iter_mut().zip(&self.inv_std) {
            row /= s;
        }
        t
    }

    fn update_precision_terms(&mut self) {
        self.derived = self.derived_terms();
    }

    /// Per-component packed T̃_cᵀT̃_c and row-major T̃, in the storage type `S`.
    fn derived_terms<S: Storage>(&self) -> DerivedTerms<S> {
        let rank = self.ivector_dim();
        let d = self.feat_dim;
        let p = packed_len(rank);
        let mut precision = vec![S::from_f64(0.0); self.num_components() * p];
        precision
            .par_chunks_mut(p)
            .enumerate()
            .for_each(|(c, packed)| {
                let block = self.t.rows(c * d, d);
                let mut exact = vec![0.0; p];
                pack_lower(&block.tr_mul(&block), &mut exact);
                for (out, x) in packed.iter_mut().zip(exact) {
                    *out = S::from_f64(x);
                }
            });
        let mut rows = vec![S::from_f64(0.0); self.t.nrows() * rank];
        for (i, row) in rows.chunks_exact_mut(rank).enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                *x = S::from_f64(self.t[(i, j)]);
            }
        }
        DerivedTerms { precision, rows }
    }

    fn check_stats(&self, stats: &BaumWelchStats) -> Result<(), IvectorError> {
        let c = self.num_components();
        if stats.dim != self.feat_dim {
            return Err(IvectorError::Shape {
                what: "Baum-Welch statistics feature dimension",
                expected: self.feat_dim,
                got: stats.dim,
            });
        }
        if stats.zeroth.len() != c {
            return Err(IvectorError::Shape {
                what: "Baum-Welch statistics components",
                expected: c,
                got: stats.zeroth.len(),
            });
        }
        if stats.first.len() != c * self.feat_dim {
            return Err(IvectorError::Shape {
                what: "Baum-Welch first-order statistics (C x D)",
                expected: c * self.feat_dim,
                got: stats.first.len(),
            });
        }
        if stats.zeroth.iter().any(|n| !(n.is_finite() && *n >= 0.0))
            || stats.first.iter().any(|f| !f.is_finite())
        {
            return Err(IvectorError::InvalidValue {
                what: "Baum-Welch statistics",
                expected: "finite values and zeroth-order counts >= 0",
            });
        }
        Ok(())
    }

    /// Posterior of w for one utterance: precision L = I + Σ_c N_c T̃_cᵀT̃_c, mean L⁻¹ T̃ᵀ f̃.
    fn posterior<S: Storage>(
        &self,
        terms: &DerivedTerms<S>,
        stats: &BaumWelchStats,
        for_training: bool,
    ) -> Result<(UtterancePosterior, nalgebra::Cholesky<f64, nalgebra::Dyn>), IvectorError> {
        self.check_stats(stats)?;
        let rank = self.ivector_dim();
        let d = self.feat_dim;
        let p = packed_len(rank);
        // Components with no occupancy and no first-order stats contribute nothing: skip them
        // (most of a short call's components under pruned posteriors).
        let mut centred = DVector::zeros(if for_training { self.t.nrows() } else { 0 });
        let mut linear = DVector::<f64>::zeros(rank);
        let mut packed = vec![0.0; p];
        let mut centred_block = vec![0.0; d];
        for (c, &n) in stats.zeroth.iter().enumerate() {
            let range = c * d..(c + 1) * d;
            let first = &stats.first[range.clone()];
            if n == 0.0 && first.iter().all(|&f| f == 0.0) {
                continue;
            }
            for (((out, &f), &mu), &inv_std) in centred_block
                .iter_mut()
                .zip(first)
                .zip(&self.ubm_means[range.clone()])
                .zip(&self.inv_std[range.clone()])
            {
                *out = (f - n * mu) * inv_std;
            }
            if for_training {
                centred.rows_mut(c * d, d).copy_from_slice(&centred_block);
            }
            // b += T̃_cᵀ f̃_c, one contiguous row of T̃ per feature dimension.
            let rows = &terms.rows[c * d * rank..(c + 1) * d * rank];
            for (&f, row) in centred_block.iter().zip(rows.chunks_exact(rank)) {
                for (b, &t) in linear.as_mut_slice().iter_mut().zip(row) {
                    *b += f * t.to_f64();
                }
            }
            if n != 0.0 {
                for (acc, &u) in packed.iter_mut().zip(&terms.precision[c * p..(c + 1) * p]) {
                    *acc += n * u.to_f64();
                }
            }
        }
        let mut precision = unpack_lower(&packed, rank);
        for i in 0..rank {
            precision[(i, i)] += 1.0;
        }
        let chol = precision
            .cholesky()
            .ok_or(IvectorError::NotPositiveDefinite {
                what: "i-vector posterior precision",
            })?;
        let mean = chol.solve(&linear);
        let log_det: f64 = chol.l_dirty().diagonal().iter().map(|x| 2.0 * x.ln()).sum();
        let objective = -0.5 * log_det + 0.5 * linear.dot(&mean);
        let second_moment = for_training.then(|| {
            let mut m = chol.inverse();
            m.ger(1.0, &mean, &mean, 1.0);
            let mut p = DVector::zeros(packed_len(rank));
            pack_lower(&m, p.as_mut_slice());
            p
        });
        Ok((
            UtterancePosterior {
                mean,
                second_moment,
                centred: for_training.then_some(centred),
                objective,
            },
            chol,
        ))
    }

    /// The i-vector (posterior mean of w, length R) of one utterance's statistics.
    pub fn extract(&self, stats: &BaumWelchStats) -> Result<Vec<f64>, IvectorError> {
        let (post, _) = self.posterior(&self.derived, stats, false)?;
        Ok(post.mean.as_slice().to_vec())
    }

    /// The i-vector and its posterior covariance L⁻¹ (R × R).
    pub fn extract_with_covariance(
        &self,
        stats: &BaumWelchStats,
    ) -> Result<(Vec<f64>, DMatrix<f64>), IvectorError> {
        let (post, chol) = self.posterior(&self.derived, stats, false)?;
        Ok((post.mean.as_slice().to_vec(), chol.inverse()))
    }

    /// Average T-dependent marginal log-likelihood per frame (nats) of `stats` under the model
    /// (Σ_u [−½ ln|L_u| + ½ b_uᵀ L_u⁻¹ b_u] / Σ_u frames); EM never decreases it.
    pub fn objective(&self, stats: &[BaumWelchStats]) -> Result<f64, IvectorError> {
        let terms = self.derived_terms::<f64>();
        let terms: Vec<f64> = stats
            .par_iter()
            .map(|s| self.posterior(&terms, s, false).map(|(p, _)| p.objective))
            .collect::<Result<_, _>>()?;
        let frames: f64 = stats.iter().map(BaumWelchStats::total_count).sum();
        Ok(terms.iter().sum::<f64>() / frames.max(f64::MIN_POSITIVE))
    }

    /// One EM iteration (plus optional minimum-divergence step) on `stats`; returns the
    /// objective of the model before the update (nats per frame). Utterances are processed in
    /// parallel, in fixed-size blocks reduced in order, so the result does not depend on the
    /// number of threads.
    pub fn em_iteration(
        &mut self,
        stats: &[&BaumWelchStats],
        min_divergence: bool,
    ) -> Result<f64, IvectorError> {
        const BLOCK: usize = 64;
        if stats.is_empty() {
            return Err(IvectorError::NotEnoughData {
                what: "utterances for an EM iteration",
                expected: 1,
                got: 0,
            });
        }
        let rank = self.ivector_dim();
        let c_count = self.num_components();
        let d = self.feat_dim;
        let cd = self.t.nrows();
        let p = packed_len(rank);
        // Σ_u N_uc E[w wᵀ]_u (packed, one column per component) and Σ_u f̃_u E[w]ᵀ.
        let mut acc_second = DMatrix::<f64>::zeros(p, c_count);
        let mut acc_linear = DMatrix::<f64>::zeros(cd, rank);
        let mut acc_prior = DVector::<f64>::zeros(p);
        let mut objective = 0.0;
        let mut frames = 0.0;
        let terms = self.derived_terms::<f64>();
        for block in stats.chunks(BLOCK) {
            let posteriors: Vec<UtterancePosterior> = block
                .par_iter()
                .map(|s| self.posterior(&terms, s, true).map(|(p, _)| p))
                .collect::<Result<_, _>>()?;
            let n = block.len();
            let mut moments = DMatrix::<f64>::zeros(p, n);
            let mut counts = DMatrix::<f64>::zeros(n, c_count);
            let mut centred = DMatrix::<f64>::zeros(cd, n);
            let mut means = DMatrix::<f64>::zeros(n, rank);
            for (u, (post, s)) in posteriors.iter().zip(block).enumerate() {
                if let (Some(m), Some(f)) = (&post.second_moment, &post.centred) {
                    moments.column_mut(u).copy_from(m);
                    centred.column_mut(u).copy_from(f);
                    acc_prior += m;
                }
                for (c, &count) in s.zeroth.iter().enumerate() {
                    counts[(u, c)] = count;
                }
                means.row_mut(u).copy_from(&post.mean.transpose());
                objective += post.objective;
                frames += s.total_count();
            }
            acc_second.gemm(1.0, &moments, &counts, 1.0);
            acc_linear.gemm(1.0, &centred, &means, 1.0);
        }
        // M-step per component: T̃_c = (Σ_u f̃_uc E[w]ᵀ) (Σ_u N_uc E[wwᵀ])⁻¹.
        let updated: Vec<Option<DMatrix<f64>>> = (0..c_count)
            .into_par_iter()
            .map(|c| {
                let a = unpack_lower(acc_second.column(c).as_slice(), rank);
                let chol = a.cholesky()?;
                let rhs = acc_linear.rows(c * d, d).transpose();
                Some(chol.solve(&rhs).transpose())
            })
            .collect();
        for (c, block) in updated.into_iter().enumerate() {
            // A component nobody visited keeps its previous T̃_c.
            if let Some(block) = block {
                self.t.rows_mut(c * d, d).copy_from(&block);
            }
        }
        if min_divergence {
            let second = unpack_lower(acc_prior.as_slice(), rank) / stats.len() as f64;
            if let Some(chol) = second.cholesky() {
                self.t = &self.t * chol.l();
            }
        }
        self.update_precision_terms();
        Ok(objective / frames.max(f64::MIN_POSITIVE))
    }
}
