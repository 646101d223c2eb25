/// A row-major matrix of `f32` features: one row per frame (10 ms shift by default).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureMatrix {
    dim: usize,
    data: Vec<f32>,
}

impl FeatureMatrix {
    /// An empty matrix whose rows will have `dim` columns.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            data: Vec::new(),
        }
    }

    /// An empty matrix with room for `frames` rows.
    pub fn with_capacity(dim: usize, frames: usize) -> Self {
        Self {
            dim,
            data: Vec::with_capacity(dim * frames),
        }
    }

    /// Wraps row-major data; `None` if `data.len()` is not a multiple of `dim` (or `dim` is 0 with data).
    pub fn from_vec(dim: usize, data: Vec<f32>) -> Option<Self> {
        if dim == 0 {
            return data.is_empty().then_some(Self { dim, data });
        }
        data.len().is_multiple_of(dim).then_some(Self { dim, data })
    }

    /// Number of columns (feature dimension).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows (frames).
    pub fn num_frames(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// True when there are no frames.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Row `frame`; panics if out of range (like slice indexing).
    pub fn row(&self, frame: usize) -> &[f32] {
        &self.data[frame * self.dim..(frame + 1) * self.dim]
    }

    /// Mutable row `frame`.
    pub fn row_mut(&mut self, frame: usize) -> &mut [f32] {
        &mut self.data[frame * self.dim..(frame + 1) * self.dim]
    }

    /// Iterator over rows.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f32]> + '_ {
        // chunks_exact with dim 0 would panic; an empty matrix has no rows.
        self.data
            .chunks_exact(self.dim.max(1))
            .take(self.num_frames())
    }

    /// Appends one row; `row.len()` must equal `dim()`.
    pub fn push_row(&mut self, row: &[f32]) {
        assert_eq!(
            row.len(),
            self.dim,
            "row length must equal the matrix dimension"
        );
        self.data.extend_from_slice(row);
    }

    /// Keeps only the rows for which `keep` is true (e.g. VAD decisions).
    pub fn select_rows(&self, keep: &[bool]) -> FeatureMatrix {
        let mut out = FeatureMatrix::new(self.dim);
        for (row, &k) in self.rows().zip(keep) {
            if k {
                out.data.extend_from_slice(row);
            }
        }
        out
    }

    /// Appends all rows of `other` (same dimension).
    pub fn extend(&mut self, other: &FeatureMatrix) {
        assert_eq!(other.dim, self.dim, "dimension mismatch");
        self.data.extend_from_slice(&other.data);
    }

    /// The row-major data.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The row-major data, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Removes all rows, keeping capacity.
    pub fn clear(&mut self) {
        self.data.clear();
    }

    /// Consumes the matrix, returning the row-major data.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Reserves room for at least `frames` more rows.
    pub fn reserve_frames(&mut self, frames: usize) {
        self.data.reserve(frames * self.dim);
    }

    /// Removes the first `frames` rows (all rows if fewer), keeping capacity.
    pub fn drain_front(&mut self, frames: usize) {
        let n = (frames * self.dim).min(self.data.len());
        self.data.drain(..n);
    }
}
