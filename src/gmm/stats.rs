/// Zeroth- and first-order Baum–Welch statistics of one utterance against a UBM,
/// the input of the i-vector extractor (uncentred: `first[c]` = Σ_t γ_c(t) x_t).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct BaumWelchStats {
    /// Feature dimension D.
    pub dim: usize,
    /// N_c = Σ_t γ_c(t), one per component (length C).
    pub zeroth: Vec<f64>,
    /// F_c = Σ_t γ_c(t) x_t, row-major C × D.
    pub first: Vec<f64>,
}

impl BaumWelchStats {
    /// Zero statistics for `num_components` components of dimension `dim`.
    pub fn zeros(num_components: usize, dim: usize) -> Self {
        Self {
            dim,
            zeroth: vec![0.0; num_components],
            first: vec![0.0; num_components * dim],
        }
    }

    /// Number of components C.
    pub fn num_components(&self) -> usize {
        self.zeroth.len()
    }

    /// Total occupancy (number of frames, when posteriors sum to one).
    pub fn total_count(&self) -> f64 {
        self.zeroth.iter().sum()
    }

    /// Adds another set of statistics (same shape).
    pub fn add(&mut self, other: &BaumWelchStats) {
        assert_eq!(
            self.zeroth.len(),
            other.zeroth.len(),
            "component count mismatch"
        );
        assert_eq!(self.dim, other.dim, "dimension mismatch");
        for (a, b) in self.zeroth.iter_mut().zip(&other.zeroth) {
            *a += b;
        }
        for (a, b) in self.first.iter_mut().zip(&other.first) {
            *a += b;
        }
    }
}
