//! PLDA scoring and score normalisation (Z/T/S-norm, adaptive S-norm).
//!
//! The model is the two-covariance PLDA: a vector x of speaker s is x = μ + y_s + ε with speaker
//! variable y_s ~ N(0, B) (between-class) and residual ε ~ N(0, W) (within-class). It is trained
//! by EM and stored in the basis that simultaneously diagonalises both covariances
//! (u = A(x − μ) has within-class covariance I and between-class covariance diag(ψ)), so the
//! verification LLR is a sum over independent dimensions and scoring one test against N enrolled
//! speakers is one N × d matrix–vector product plus O(N) work.

mod norm;

pub use norm::{adaptive_s_norm, s_norm, t_norm, z_norm, CohortStats};

use std::collections::HashMap;
use std::hash::Hash;

use nalgebra::{DMatrix, DVector};

/// Errors of PLDA training and scoring.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PldaError {
    /// A vector has the wrong dimension.
    #[error("{what} has dimension {got}: expected {expected}")]
    Dimension {
        /// Which input.
        what: &'static str,
        /// Expected dimension.
        expected: usize,
        /// Actual dimension.
        got: usize,
    },
    /// Not enough data to train or enrol.
    #[error("{what}: expected {expected}, got {got}")]
    NotEnoughData {
        /// What is short.
        what: &'static str,
        /// Minimum needed.
        expected: usize,
        /// What arrived.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("{what} contains a non-finite value: expected finite numbers")]
    NonFinite {
        /// Which input.
        what: &'static str,
    },
    /// A covariance matrix is not positive definite.
    #[error("{what} is not positive definite: expected more (or less collinear) training vectors than dimensions")]
    NotPositiveDefinite {
        /// Which matrix.
        what: &'static str,
    },
    /// An option is out of range.
    #[error("PLDA option {what} = {value}: expected {expected}")]
    InvalidOption {
        /// The option.
        what: &'static str,
        /// Its value.
        value: usize,
        /// What was expected.
        expected: &'static str,
    },
}

/// Options of PLDA training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PldaOptions {
    /// EM iterations (≥ 1). Default 10.
    pub iterations: usize,
    /// Speaker-factor rank r of simplified PLDA (B = ΦΦᵀ with Φ d × r, trained by its own EM);
    /// `None` = the full-rank two-covariance model. Default `None`.
    pub speaker_rank: Option<usize>,
}

impl Default for PldaOptions {
    fn default() -> Self {
        Self {
            iterations: 10,
            speaker_rank: None,
        }
    }
}

/// A trained two-covariance PLDA model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plda {
    mean: DVector<f64>,
    /// A: u = A (x − μ) has within-class covariance I, between-class covariance diag(ψ).
    transform: DMatrix<f64>,
    /// ψ, descending, ≥ 0.
    between_diag: DVector<f64>,
    between: DMatrix<f64>,
    within: DMatrix<f64>,
}

/// An enrolled speaker in PLDA space: the mean of its `count` transformed vectors.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PldaEnrollment {
    /// Mean of the enrollment vectors in the PLDA basis (u-space), length d.
    pub mean: Vec<f64>,
    /// Number of enrollment vectors averaged (n ≥ 1).
    pub count: usize,
}

/// Groups item indices by label, classes in order of first appearance.
pub(crate) fn group_by_label<L: Eq + Hash>(labels: &[L]) -> Vec<Vec<usize>> {
    let mut index: HashMap<&L, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let g = *index.entry(label).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// Checks that all vectors have `dim` entries, finite; returns them as columns of a d × n matrix.
pub(crate) fn vectors_to_matrix<V: AsRef<[f64]>>(
    vectors: &[V],
    what: &'static str,
) -> Result<DMatrix<f64>, PldaError> {
    let dim = vectors.first().map_or(0, |v| v.as_ref().len());
    let mut m = DMatrix::zeros(dim, vectors.len());
    for (j, v) in vectors.iter().enumerate() {
        let v = v.as_ref();
        if v.len() != dim {
            return Err(PldaError::Dimension {
                what,
                expected: dim,
                got: v.len(),
            });
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(PldaError::NonFinite { what });
        }
        m.column_mut(j).copy_from_slice(v);
    }
    Ok(m)
}

/// Simultaneous diagonalisation: A with A W Aᵀ = I and A B Aᵀ = diag(ψ), ψ descending, clamped ≥ 0.
pub(crate) fn simultaneous_diagonalisation(
    within: &DMatrix<f64>,
    between: &DMatrix<f64>,
) -> Result<(DMatrix<f64>, DVector<f64>), PldaError> {
    let chol = within
        .clone()
        .cholesky()
        .ok_or(PldaError::NotPositiveDefinite {
            what: "within-class covariance",
        })?;
    let l = chol.l();
    let d = within.nrows();
    // M = L⁻¹ B L⁻ᵀ, by two triangular solves.
    let x = l
        .solve_lower_triangular(between)
        .ok_or(PldaError::NotPositiveDefinite {
            what: "within-class covariance",
        })?;
    let m = l
        .solve_lower_triangular(&x.transpose())
        .ok_or(PldaError::NotPositiveDefinite {
            what: "within-class covariance",
        })?;
    let m = (&m + m.transpose()) * 0.5;
    let eig = m.symmetric_eigen();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let l_inv = l.solve_lower_triangular(&DMatrix::identity(d, d)).ok_or(
        PldaError::NotPositiveDefinite {
            what: "within-class covariance",
        },
    )?;
    let mut a = DMatrix::zeros(d, d);
    let mut psi = DVector::zeros(d);
    for (row, &k) in order.iter().enumerate() {
        psi[row] = eig.eigenvalues[k].max(0.0);
        let u = eig.eigenvectors.column(k);
        a.row_mut(row).copy_from(&(u.transpose() * &l_inv));
    }
    Ok((a, psi))
}

/// A diagonalising basis: A, ψ and A⁻¹.
type Diagonalisation = (DMatrix<f64>, DVector<f64>, DMatrix<f64>);

/// One EM step of the two-covariance model, computed in the basis that diagonalises the current
/// (B, W), where the posterior of the speaker variable is diagonal: var = ψ/(nψ + 1),
/// mean = nψ/(nψ + 1)·ū. `scatter` is the within-class scatter, `class_offsets` the class means
/// minus the global mean with their counts. Returns the new (B, W).
fn two_covariance_em_step(
    between: &DMatrix<f64>,
    within: &DMatrix<f64>,
    scatter: &DMatrix<f64>,
    class_offsets: &[(DVector<f64>, f64)],
) -> Result<(DMatrix<f64>, DMatrix<f64>), PldaError> {
    let d = within.nrows();
    let n_total: f64 = class_offsets.iter().map(|(_, n)| n).sum();
    let (a, psi, a_inv) = diagonalise_with_rank(within, between, None)?;
    let mut between_u = DMatrix::<f64>::zeros(d, d);
    let mut within_u = &a * scatter * a.transpose();
    for (offset, n) in class_offsets {
        let u_bar = &a * offset;
        let var = psi.map(|p| p / (n * p + 1.0));
        let y_hat = DVector::from_fn(d, |k, _| n * psi[k] / (n * psi[k] + 1.0) * u_bar[k]);
        between_u.ger(1.0, &y_hat, &y_hat, 1.0);
        let r = &u_bar - &y_hat;
        within_u.ger(*n, &r, &r, 1.0);
        for k in 0..d {
            between_u[(k, k)] += var[k];
            within_u[(k, k)] += n * var[k];
        }
    }
    between_u /= class_offsets.len() as f64;
    within_u /= n_total;
    let between = &a_inv * between_u * a_inv.transpose();
    let within = &a_inv * within_u * a_inv.transpose();
    Ok((
        (&between + between.transpose()) * 0.5,
        (&within + within.transpose()) * 0.5,
    ))
}

/// One EM step of simplified PLDA x = μ + Φy + ε, y ~ N(0, I_r), ε ~ N(0, W). `total` is the
/// scatter of all vectors about the global mean. Returns the new (Φ, W).
fn simplified_em_step(
    factors: &DMatrix<f64>,
    within: &DMatrix<f64>,
    total: &DMatrix<f64>,
    class_offsets: &[(DVector<f64>, f64)],
) -> Result<(DMatrix<f64>, DMatrix<f64>), PldaError> {
    let not_pd = PldaError::NotPositiveDefinite {
        what: "within-class covariance",
    };
    let rank = factors.ncols();
    let n_total: f64 = class_offsets.iter().map(|(_, n)| n).sum();
    let w_chol = within.clone().cholesky().ok_or(not_pd.clone())?;
    let w_inv_factors = w_chol.solve(factors);
    let gram = factors.transpose() * &w_inv_factors;
    let mut second = DMatrix::<f64>::zeros(rank, rank);
    let mut cross = DMatrix::<f64>::zeros(factors.nrows(), rank);
    for (offset, n) in class_offsets {
        // Posterior of y: precision I + nΦᵀW⁻¹Φ, mean P⁻¹ΦᵀW⁻¹ Σ_i (x_i − μ).
        let precision = DMatrix::identity(rank, rank) + &gram * *n;
        let chol = precision.cholesky().ok_or(not_pd.clone())?;
        let sum = offset * *n;
        let y_hat = chol.solve(&(w_inv_factors.transpose() * &sum));
        let mut moment = chol.inverse();
        moment.ger(1.0, &y_hat, &y_hat, 1.0);
        second += moment * *n;
        cross.ger(1.0, &sum, &y_hat, 1.0);
    }
    let new_factors = second
        .cholesky()
        .ok_or(not_pd)?
        .solve(&cross.transpose())
        .transpose();
    let within = (total - &new_factors * cross.transpose()) / n_total;
    Ok((new_factors, (&within + within.transpose()) * 0.5))
}

/// [`simultaneous_diagonalisation`] with ψ beyond the `rank` largest set to zero, plus A⁻¹.
fn diagonalise_with_rank(
    within: &DMatrix<f64>,
    between: &DMatrix<f64>,
    rank: Option<usize>,
) -> Result<Diagonalisation, PldaError> {
    let (a, mut psi) = simultaneous_diagonalisation(within, between)?;
    if let Some(rank) = rank {
        let d = psi.len();
        psi.rows_mut(rank, d.saturating_sub(rank)).fill(0.0);
    }
    let a_inv = a
        .clone()
        .try_inverse()
        .ok_or(PldaError::NotPositiveDefinite {
            what: "within-class covariance",
        })?;
    Ok((a, psi, a_inv))
}

/// Per-class means (with their counts) of the columns of `x`, and the within-class scatter
/// Σ_s Σ_{i∈s} (x_i − x̄_s)(x_i − x̄_s)ᵀ (not normalised).
pub(crate) fn class_statistics(
    x: &DMatrix<f64>,
    classes: &[Vec<usize>],
) -> (Vec<(DVector<f64>, f64)>, DMatrix<f64>) {
    let d = x.nrows();
    let mut means = Vec::with_capacity(classes.len());
    let mut scatter = DMatrix::<f64>::zeros(d, d);
    for members in classes {
        let mut mean = DVector::<f64>::zeros(d);
        for &i in members {
            mean += x.column(i);
        }
        mean /= members.len() as f64;
        for &i in members {
            let r = x.column(i) - &mean;
            scatter.ger(1.0, &r, &r, 1.0);
        }
        means.push((mean, members.len() as f64));
    }
    (means, scatter)
}

impl Plda {
    /// Builds a model from known parameters (mean μ, between-class B, within-class W; d × d,
    /// symmetric, W positive definite, B positive semi-definite).
    pub fn from_parameters(
        mean: &[f64],
        between: &DMatrix<f64>,
        within: &DMatrix<f64>,
    ) -> Result<Self, PldaError> {
        let d = mean.len();
        for (what, m) in [
            ("between-class covariance", between),
            ("within-class covariance", within),
        ] {
            if m.nrows() != d || m.ncols() != d {
                return Err(PldaError::Dimension {
                    what,
                    expected: d,
                    got: m.nrows().max(m.ncols()),
                });
            }
            if m.iter().any(|x| !x.is_finite()) {
                return Err(PldaError::NonFinite { what });
            }
        }
        if mean.iter().any(|x| !x.is_finite()) {
            return Err(PldaError::NonFinite { what: "mean" });
        }
        let (transform, between_diag) = simultaneous_diagonalisation(within, between)?;
        Ok(Self {
            mean: DVector::from_column_slice(mean),
            transform,
            between_diag,
            between: between.clone(),
            within: within.clone(),
        })
    }

    /// Trains by EM on `vectors` (each of dimension d) labelled by speaker. Needs at least two
    /// speakers and more vectors than speakers + d for a non-singular within-class covariance.
    pub fn train<V: AsRef<[f64]>, L: Eq + Hash>(
        vectors: &[V],
        labels: &[L],
        options: &PldaOptions,
    ) -> Result<Self, PldaError> {
        if options.iterations == 0 {
            return Err(PldaError::InvalidOption {
                what: "iterations",
                value: 0,
                expected: "at least 1",
            });
        }
        if labels.len() != vectors.len() {
            return Err(PldaError::Dimension {
                what: "labels (one per vector)",
                expected: vectors.len(),
                got: labels.len(),
            });
        }
        let x = vectors_to_matrix(vectors, "PLDA training vector")?;
        let d = x.nrows();
        if let Some(rank) = options.speaker_rank {
            if rank == 0 || rank > d {
                return Err(PldaError::InvalidOption {
                    what: "speaker_rank",
                    value: rank,
                    expected: "between 1 and the vector dimension",
                });
            }
        }
        let classes = group_by_label(labels);
        if classes.len() < 2 {
            return Err(PldaError::NotEnoughData {
                what: "speakers in PLDA training",
                expected: 2,
                got: classes.len(),
            });
        }
        let n_total = x.ncols() as f64;
        let mean = x.column_mean();
        // Class means d_s = x̄_s − μ and the within-class scatter about them (fixed through EM).
        let (class_means, scatter) = class_statistics(&x, &classes);
        let class_offsets: Vec<(DVector<f64>, f64)> = class_means
            .into_iter()
            .map(|(class_mean, n)| (class_mean - &mean, n))
            .collect();
        // Initialisation: the method-of-moments estimates.
        let mut within = &scatter / n_total;
        let mut between = DMatrix::<f64>::zeros(d, d);
        for (offset, _) in &class_offsets {
            between.ger(1.0, offset, offset, 1.0);
        }
        between /= class_offsets.len() as f64;
        match options.speaker_rank {
            None => {
                for _ in 0..options.iterations {
                    (between, within) =
                        two_covariance_em_step(&between, &within, &scatter, &class_offsets)?;
                }
            }
            Some(rank) => {
                // Speaker factors Φ (d × r) with B = ΦΦᵀ, initialised from the top-r part of the
                // moment estimate of B.
                let (_, psi, a_inv) = diagonalise_with_rank(&within, &between, Some(rank))?;
                let mut factors = DMatrix::from_fn(d, rank, |i, k| a_inv[(i, k)] * psi[k].sqrt());
                let mut total = scatter.clone();
                for (offset, n) in &class_offsets {
                    total.ger(*n, offset, offset, 1.0);
                }
                for _ in 0..options.iterations {
                    (factors, within) =
                        simplified_em_step(&factors, &within, &total, &class_offsets)?;
                }
                between = &factors * factors.transpose();
            }
        }
        let (transform, between_diag, a_inv) =
            diagonalise_with_rank(&within, &between, options.speaker_rank)?;
        if options.speaker_rank.is_some() {
            between = &a_inv * DMatrix::from_diagonal(&between_diag) * a_inv.transpose();
        }
        Ok(Self {
            mean,
            transform,
            between_diag,
            between,
            within,
        })
    }

    /// Vector dimension d.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Global mean μ.
    pub fn mean(&self) -> &[f64] {
        self.mean.as_slice()
    }

    /// Between-class (speaker) covariance B, d × d.
    pub fn between_covariance(&self) -> &DMatrix<f64> {
        &self.between
    }

    /// Within-class (session) covariance W, d × d.
    pub fn within_covariance(&self) -> &DMatrix<f64> {
        &self.within
    }

    /// Generalised eigenvalues ψ of B relative to W (speaker-to-session variance ratio per
    /// PLDA-basis dimension), descending.
    pub fn between_diagonal(&self) -> &[f64] {
        self.between_diag.as_slice()
    }

    /// Maps a vector to the PLDA basis: u = A(x − μ), writing d values into `out`.
    pub fn transform_into(&self, x: &[f64], out: &mut [f64]) -> Result<(), PldaError> {
        self.check_dim(x, "PLDA input vector")?;
        self.check_dim(out, "PLDA output buffer")?;
        out.fill(0.0);
        // Column-major A: accumulate one column at a time (contiguous reads).
        let d = self.dim();
        if d == 0 {
            return Ok(());
        }
        for ((column, &xc), &mc) in self
            .transform
            .as_slice()
            .chunks_exact(d)
            .zip(x)
            .zip(self.mean.as_slice())
        {
            let centred = xc - mc;
            for (o, &a) in out.iter_mut().zip(column) {
                *o += a * centred;
            }
        }
        Ok(())
    }

    /// Maps a vector to the PLDA basis (allocating).
    pub fn transform(&self, x: &[f64]) -> Result<Vec<f64>, PldaError> {
        let mut out = vec![0.0; self.dim()];
        self.transform_into(x, &mut out)?;
        Ok(out)
    }

    fn check_dim(&self, x: &[f64], what: &'static str) -> Result<(), PldaError> {
        if x.len() != self.dim() {
            return Err(PldaError::Dimension {
                what,
                expected: self.dim(),
                got: x.len(),
            });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(PldaError::NonFinite { what });
        }
        Ok(())
    }

    /// Enrols a speaker from one or more vectors (original space).
    pub fn enroll<V: AsRef<[f64]>>(&self, vectors: &[V]) -> Result<PldaEnrollment, PldaError> {
        if vectors.is_empty() {
            return Err(PldaError::NotEnoughData {
                what: "enrollment vectors",
                expected: 1,
                got: 0,
            });
        }
        let d = self.dim();
        let mut mean = vec![0.0; d];
        let mut u = vec![0.0; d];
        for v in vectors {
            self.transform_into(v.as_ref(), &mut u)?;
            for (m, x) in mean.iter_mut().zip(&u) {
                *m += x;
            }
        }
        let n = vectors.len();
        for m in &mut mean {
            *m /= n as f64;
        }
        Ok(PldaEnrollment { mean, count: n })
    }

    /// Enrols a speaker from the average of `count` vectors (original space); the same as
    /// [`Plda::enroll`] on those vectors, since the model's transform is affine.
    pub fn enroll_from_mean(
        &self,
        mean: &[f64],
        count: usize,
    ) -> Result<PldaEnrollment, PldaError> {
        if count == 0 {
            return Err(PldaError::NotEnoughData {
                what: "enrollment count",
                expected: 1,
                got: 0,
            });
        }
        Ok(PldaEnrollment {
            mean: self.transform(mean)?,
            count,
        })
    }

    /// Verification LLR (natural log) of a test vector (original space) against an enrolled
    /// speaker: ln p(test | same speaker as the enrollment) − ln p(test | different speaker).
    pub fn llr(&self, enrollment: &PldaEnrollment, test: &[f64]) -> Result<f64, PldaError> {
        self.check_dim(&enrollment.mean, "enrollment mean")?;
        if enrollment.count == 0 {
            return Err(PldaError::NotEnoughData {
                what: "enrollment count",
                expected: 1,
                got: 0,
            });
        }
        let u = self.transform(test)?;
        Ok(self.llr_transformed(&enrollment.mean, enrollment.count as f64, &u))
    }

    /// LLR in u-space: per dimension, the target hypothesis predicts u ~ N(nψ/(nψ+1)·ū,
    /// 1 + ψ/(nψ+1)) and the non-target one u ~ N(0, 1 + ψ).
    fn llr_transformed(&self, enroll_mean: &[f64], n: f64, u: &[f64]) -> f64 {
        let mut llr = 0.0;
        for ((&psi, &m), &x) in self.between_diag.iter().zip(enroll_mean).zip(u) {
            let shrink = n * psi / (n * psi + 1.0);
            let var_tar = 1.0 + psi / (n * psi + 1.0);
            let var_non = 1.0 + psi;
            let r = x - shrink * m;
            llr += 0.5 * (var_non / var_tar).ln() - 0.5 * r * r / var_tar + 0.5 * x * x / var_non;
        }
        llr
    }

    /// Log-likelihood (nats) of labelled vectors under the model (what EM increases).
    pub fn log_likelihood<V: AsRef<[f64]>, L: Eq + Hash>(
        &self,
        vectors: &[V],
        labels: &[L],
    ) -> Result<f64, PldaError> {
        if labels.len() != vectors.len() {
            return Err(PldaError::Dimension {
                what: "labels (one per vector)",
                expected: vectors.len(),
                got: labels.len(),
            });
        }
        let d = self.dim();
        let log_det_a: f64 = self.transform.clone().lu().determinant().abs().ln();
        let mut total = 0.0;
        let mut u = vec![0.0; d];
        for members in group_by_label(labels) {
            let n = members.len() as f64;
            let mut sum = vec![0.0; d];
            let mut sum_sq = vec![0.0; d];
            for &i in &members {
                self.transform_into(vectors[i].as_ref(), &mut u)?;
                for k in 0..d {
                    sum[k] += u[k];
                    sum_sq[k] += u[k] * u[k];
                }
            }
            for k in 0..d {
                let mean = sum[k] / n;
                let residual = sum_sq[k] - n * mean * mean;
                let psi = self.between_diag[k];
                total += -0.5 * n * (2.0 * std::f64::consts::PI).ln()
                    - 0.5 * residual
                    - 0.5 * (1.0 + n * psi).ln()
                    - 0.5 * n * mean * mean / (1.0 + n * psi);
            }
            total += n * log_det_a;
        }
        Ok(total)
    }
}

/// Precomputed scorer of one test against many enrolled speakers: per speaker s,
/// LLR_s = Σ_d u_d·b_sd + c_s + q_{n_s}(u), where q depends only on the enrollment count n_s.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PldaScorer {
    dim: usize,
    /// Row-major N × d linear coefficients b_s.
    linear: Vec<f64>,
    /// c_s per speaker.
    constant: Vec<f64>,
    /// Index into `quadratic` per speaker.
    count_group: Vec<usize>,
    /// Per distinct enrollment count: −½/(1 + ψ/(nψ+1)) + ½/(1 + ψ), length d.
    quadratic: Vec<Vec<f64>>,
}

impl PldaScorer {
    /// Precomputes the per-speaker terms for `enrollments` (all from `plda`).
    pub fn new(plda: &Plda, enrollments: &[PldaEnrollment]) -> Result<Self, PldaError> {
        let d = plda.dim();
        let mut linear = Vec::with_capacity(enrollments.len() * d);
        let mut constant = Vec::with_capacity(enrollments.len());
        let mut count_group = Vec::with_capacity(enrollments.len());
        let mut counts: Vec<usize> = Vec::new();
        let mut quadratic: Vec<Vec<f64>> = Vec::new();
        for e in enrollments {
            plda.check_dim(&e.mean, "enrollment mean")?;
            if e.count == 0 {
                return Err(PldaError::NotEnoughData {
                    what: "enrollment count",
                    expected: 1,
                    got: 0,
                });
            }
            let n = e.count as f64;
            let group = match counts.iter().position(|&c| c == e.count) {
                Some(g) => g,
                None => {
                    counts.push(e.count);
                    quadratic.push(
                        plda.between_diag
                            .iter()
                            .map(|&psi| -0.5 / (1.0 + psi / (n * psi + 1.0)) + 0.5 / (1.0 + psi))
                            .collect(),
                    );
                    counts.len() - 1
                }
            };
            count_group.push(group);
            let mut c = 0.0;
            for (&psi, &m) in plda.between_diag.iter().zip(&e.mean) {
                let shrink = n * psi / (n * psi + 1.0);
                let var_tar = 1.0 + psi / (n * psi + 1.0);
                let mean_tar = shrink * m;
                linear.push(mean_tar / var_tar);
                c += 0.5 * ((1.0 + psi) / var_tar).ln() - 0.5 * mean_tar * mean_tar / var_tar;
            }
            constant.push(c);
        }
        Ok(Self {
            dim: d,
            linear,
            constant,
            count_group,
            quadratic,
        })
    }

    /// Number of enrolled speakers N.
    pub fn len(&self) -> usize {
        self.constant.len()
    }

    /// True when no speaker is enrolled.
    pub fn is_empty(&self) -> bool {
        self.constant.is_empty()
    }

    /// LLRs (nats) of a test already in the PLDA basis (see [`Plda::transform_into`]) against
    /// every enrolled speaker, written into `out` (length N). No allocation.
    pub fn score_transformed_into(&self, u: &[f64], out: &mut [f64]) -> Result<(), PldaError> {
        if u.len() != self.dim {
            return Err(PldaError::Dimension {
                what: "transformed test vector",
                expected: self.dim,
                got: u.len(),
            });
        }
        if out.len() != self.len() {
            return Err(PldaError::Dimension {
                what: "score buffer (one per enrolled speaker)",
                expected: self.len(),
                got: out.len(),
            });
        }
        // Quadratic terms per distinct enrollment count: few groups, O(groups·d).
        let mut quad_small = [0.0f64; 8];
        let mut quad_large = Vec::new();
        let quad: &mut [f64] = if self.quadratic.len() <= quad_small.len() {
            &mut quad_small[..self.quadratic.len()]
        } else {
            quad_large.resize(self.quadratic.len(), 0.0);
            &mut quad_large
        };
        for (q, coeffs) in quad.iter_mut().zip(&self.quadratic) {
            *q = coeffs.iter().zip(u).map(|(c, x)| c * x * x).sum();
        }
        if self.dim == 0 {
            for (o, (&c, &g)) in out
                .iter_mut()
                .zip(self.constant.iter().zip(&self.count_group))
            {
                *o = c + quad[g];
            }
            return Ok(());
        }
        for (((o, row), &c), &g) in out
            .iter_mut()
            .zip(self.linear.chunks_exact(self.dim))
            .zip(&self.constant)
            .zip(&self.count_group)
        {
            *o = dot(row, u) + c + quad[g];
        }
        Ok(())
    }

    /// LLRs of a test vector (original space) against every enrolled speaker.
    pub fn score(&self, plda: &Plda, test: &[f64]) -> Result<Vec<f64>, PldaError> {
        let u = plda.transform(test)?;
        let mut out = vec![0.0; self.len()];
        self.score_transformed_into(&u, &mut out)?;
        Ok(out)
    }
}

/// Dot product with four independent accumulators (lets the compiler vectorise).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let chunks_a = a.chunks_exact(4);
    let chunks_b = b.chunks_exact(4);
    let tail: f64 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    acc[0] + acc[1] + acc[2] + acc[3] + tail
}

#[cfg(test)]
mod tests;
