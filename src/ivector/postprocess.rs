//! I-vector post-processing: centring, LDA, WCCN and length normalisation, each trained on
//! (labelled) vectors and serialisable.

use std::hash::Hash;

use nalgebra::{DMatrix, DVector};

use super::IvectorError;
use crate::plda::{
    class_statistics, group_by_label, simultaneous_diagonalisation, vectors_to_matrix,
};

fn check_vector(x: &[f64], dim: usize, what: &'static str) -> Result<(), IvectorError> {
    if x.len() != dim {
        return Err(IvectorError::Shape {
            what,
            expected: dim,
            got: x.len(),
        });
    }
    Ok(())
}

fn check_labels(vectors: usize, labels: usize) -> Result<(), IvectorError> {
    if vectors != labels {
        return Err(IvectorError::Shape {
            what: "labels (one per vector)",
            expected: vectors,
            got: labels,
        });
    }
    Ok(())
}

/// Subtracts a mean vector (trained as the average of the training vectors).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MeanCentering {
    /// The mean that is subtracted.
    pub mean: Vec<f64>,
}

impl MeanCentering {
    /// The average of `vectors` (at least one).
    pub fn train<V: AsRef<[f64]>>(vectors: &[V]) -> Result<Self, IvectorError> {
        if vectors.is_empty() {
            return Err(IvectorError::NotEnoughData {
                what: "vectors for mean centring",
                expected: 1,
                got: 0,
            });
        }
        let x = vectors_to_matrix(vectors, "centring training vector")?;
        Ok(Self {
            mean: x.column_mean().as_slice().to_vec(),
        })
    }

    /// x ← x − mean, in place.
    pub fn apply(&self, x: &mut [f64]) -> Result<(), IvectorError> {
        check_vector(x, self.mean.len(), "vector to centre")?;
        for (v, m) in x.iter_mut().zip(&self.mean) {
            *v -= m;
        }
        Ok(())
    }
}

/// Linear discriminant analysis: projects onto the `out_dim` directions of largest
/// between-class to within-class variance ratio; outputs have unit within-class covariance
/// on the training data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lda {
    mean: DVector<f64>,
    /// out_dim × in_dim.
    transform: DMatrix<f64>,
    /// Between/within variance ratio of each output dimension, descending.
    ratios: Vec<f64>,
}

impl Lda {
    /// Trains on labelled `vectors`; `out_dim` ≤ the input dimension.
    pub fn train<V: AsRef<[f64]>, L: Eq + Hash>(
        vectors: &[V],
        labels: &[L],
        out_dim: usize,
    ) -> Result<Self, IvectorError> {
        check_labels(vectors.len(), labels.len())?;
        let x = vectors_to_matrix(vectors, "LDA training vector")?;
        let d = x.nrows();
        if out_dim == 0 || out_dim > d {
            return Err(IvectorError::Shape {
                what: "LDA output dimension (1 ..= input dimension)",
                expected: d,
                got: out_dim,
            });
        }
        let classes = group_by_label(labels);
        if classes.len() < 2 {
            return Err(IvectorError::NotEnoughData {
                what: "classes for LDA",
                expected: 2,
                got: classes.len(),
            });
        }
        let mean = x.column_mean();
        let (class_means, scatter) = class_statistics(&x, &classes);
        let within = scatter / x.ncols() as f64;
        let mut between = DMatrix::<f64>::zeros(d, d);
        for (m, n) in &class_means {
            let r = m - &mean;
            between.ger(*n, &r, &r, 1.0);
        }
        between /= x.ncols() as f64;
        let (a, ratios) = simultaneous_diagonalisation(&within, &between)?;
        Ok(Self {
            mean,
            transform: a.rows(0, out_dim).into_owned(),
            ratios: ratios.iter().take(out_dim).copied().collect(),
        })
    }

    /// Input dimension.
    pub fn in_dim(&self) -> usize {
        self.transform.ncols()
    }

    /// Output dimension.
    pub fn out_dim(&self) -> usize {
        self.transform.nrows()
    }

    /// Between/within variance ratios of the kept directions, descending.
    pub fn ratios(&self) -> &[f64] {
        &self.ratios
    }

    /// The projection matrix, out_dim × in_dim (applied to x − training mean).
    pub fn transform_matrix(&self) -> &DMatrix<f64> {
        &self.transform
    }

    /// Projects one vector.
    pub fn apply(&self, x: &[f64]) -> Result<Vec<f64>, IvectorError> {
        check_vector(x, self.in_dim(), "vector to project with LDA")?;
        let centred = DVector::from_column_slice(x) - &self.mean;
        Ok((&self.transform * centred).as_slice().to_vec())
    }
}

/// Within-class covariance normalisation: x ← L⁻¹ x with W = L Lᵀ the average within-class
/// covariance (each class weighted equally), so the training data's W becomes I.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Wccn {
    /// L⁻¹, d × d lower triangular.
    transform: DMatrix<f64>,
}

impl Wccn {
    /// Trains on labelled `vectors`.
    pub fn train<V: AsRef<[f64]>, L: Eq + Hash>(
        vectors: &[V],
        labels: &[L],
    ) -> Result<Self, IvectorError> {
        check_labels(vectors.len(), labels.len())?;
        let x = vectors_to_matrix(vectors, "WCCN training vector")?;
        let d = x.nrows();
        let classes = group_by_label(labels);
        if classes.is_empty() {
            return Err(IvectorError::NotEnoughData {
                what: "classes for WCCN",
                expected: 1,
                got: 0,
            });
        }
        let mut within = DMatrix::<f64>::zeros(d, d);
        for members in &classes {
            let (_, scatter) = class_statistics(&x, std::slice::from_ref(members));
            within += scatter / members.len() as f64;
        }
        within /= classes.len() as f64;
        let chol = within.cholesky().ok_or(IvectorError::NotPositiveDefinite {
            what: "WCCN within-class covariance",
        })?;
        let transform = chol
            .l()
            .solve_lower_triangular(&DMatrix::identity(d, d))
            .ok_or(IvectorError::NotPositiveDefinite {
                what: "WCCN within-class covariance",
            })?;
        Ok(Self { transform })
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.transform.nrows()
    }

    /// Applies the normalisation to one vector.
    pub fn apply(&self, x: &[f64]) -> Result<Vec<f64>, IvectorError> {
        check_vector(x, self.dim(), "vector to normalise with WCCN")?;
        Ok((&self.transform * DVector::from_column_slice(x))
            .as_slice()
            .to_vec())
    }
}

/// Scales `x` in place to Euclidean norm `target_norm` (√dim is the usual choice before PLDA,
/// 1 for cosine scoring). A zero vector is left unchanged.
pub fn length_normalize(x: &mut [f64], target_norm: f64) {
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        let scale = target_norm / norm;
        for v in x.iter_mut() {
            *v *= scale;
        }
    }
}
