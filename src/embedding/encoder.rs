//! The GE2E encoder network: 3-layer LSTM (40 → 256), linear 256 → 256, ReLU, L2 norm.
//!
//! Two schedules of the same arithmetic:
//! - whole windows ([`SpeakerEncoder::embed_windows`], the batch path): layer after layer, the
//!   input projection of every frame of every window is one large product (nalgebra's `gemm`,
//!   which hands it to `matrixmultiply`'s sgemm with AVX2/AVX-512 kernels picked at run time; the
//!   crate forbids `unsafe`, so we cannot call `matrixmultiply` directly); then, per frame, one
//!   pass over `W_hh` whose rows are dotted with every window's hidden state;
//! - frame by frame ([`SpeakerEncoder::step`], the streaming path): the open windows advance one
//!   frame, one pass over `[W_ih | W_hh]` per layer.
//!
//! Why not sgemm for the recurrence: with 1-8 windows the product is skinny, and
//! `matrixmultiply` copies (packs) the whole 1 MB weight matrix on every call; that copy was 57 %
//! of the encoder's time (perf), and the matrix-vector passes are 2-4× faster here.
//! The two schedules differ only in floating-point summation order (≈ 1e-6).

use std::path::Path;

use nalgebra::{DMatrixView, DMatrixViewMut};

use super::arch::{EMBEDDING_DIM, GATE_ROWS, HIDDEN, LAYERS, MEL_BANDS};
use super::error::EmbeddingError;
use super::weights::EncoderWeights;

/// The speaker encoder network with its weights, ready for inference.
#[derive(Debug, Clone)]
pub struct SpeakerEncoder {
    /// Per layer `[W_ih | W_hh]`, `GATE_ROWS × (input + HIDDEN)` row-major.
    concat_weights: Vec<Vec<f32>>,
    /// Per layer `b_ih + b_hh`, `GATE_ROWS`.
    biases: Vec<Vec<f32>>,
    linear_weight: Vec<f32>,
    linear_bias: Vec<f32>,
}

/// Input width of `layer` (mel bands for the bottom layer, hidden size above).
fn layer_input(layer: usize) -> usize {
    if layer == 0 {
        MEL_BANDS
    } else {
        HIDDEN
    }
}

/// `c (m × n) = beta · c + a (m × k) · bᵀ`, row-major: `a` with row stride `lda`, `b` being
/// `n × k` with row stride `ldb`, `c` contiguous.
#[allow(clippy::too_many_arguments)]
fn gemm_abt(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
) {
    let a = DMatrixView::from_slice_with_strides(&a[..(m - 1) * lda + k], m, k, lda, 1);
    let bt = DMatrixView::from_slice_with_strides(&b[..(n - 1) * ldb + k], k, n, 1, ldb);
    let mut c = DMatrixViewMut::from_slice_with_strides_mut(&mut c[..m * n], m, n, n, 1);
    c.gemm(1.0, &a, &bt, beta);
}

/// tanh by a 13/6-degree odd/even rational approximation on [-7.9053, 7.9053] (saturated
/// outside), the one Eigen uses for `float`: absolute error below 1e-6 (tested against f64),
/// branch-free so the cell-update loop vectorises; libm's `tanhf`/`expf` made the cell update a
/// third of the encoder's time.
#[inline(always)]
fn fast_tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const ALPHA: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const BETA: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let p = ALPHA[6];
    let p = p * x2 + ALPHA[5];
    let p = p * x2 + ALPHA[4];
    let p = p * x2 + ALPHA[3];
    let p = p * x2 + ALPHA[2];
    let p = p * x2 + ALPHA[1];
    let p = (p * x2 + ALPHA[0]) * x;
    let q = BETA[3];
    let q = q * x2 + BETA[2];
    let q = q * x2 + BETA[1];
    let q = q * x2 + BETA[0];
    p / q
}

/// Logistic sigmoid through [`fast_tanh`]: σ(x) = (1 + tanh(x / 2)) / 2.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    0.5 + 0.5 * fast_tanh(0.5 * x)
}

/// LSTM cell update (PyTorch gate order i, f, g, o) for `rows` slots: gate pre-activations
/// (`rows × GATE_ROWS`) → cell state (`rows × HIDDEN`) and hidden state (row stride `h_stride`).
fn cell_update(gates: &[f32], cell: &mut [f32], hidden: &mut [f32], h_stride: usize, rows: usize) {
    for slot in 0..rows {
        let g = &gates[slot * GATE_ROWS..(slot + 1) * GATE_ROWS];
        let c = &mut cell[slot * HIDDEN..(slot + 1) * HIDDEN];
        let h = &mut hidden[slot * h_stride..slot * h_stride + HIDDEN];
        for j in 0..HIDDEN {
            let input_gate = sigmoid(g[j]);
            let forget_gate = sigmoid(g[HIDDEN + j]);
            let candidate = fast_tanh(g[2 * HIDDEN + j]);
            let output_gate = sigmoid(g[3 * HIDDEN + j]);
            c[j] = forget_gate * c[j] + input_gate * candidate;
            h[j] = output_gate * fast_tanh(c[j]);
        }
    }
}

impl SpeakerEncoder {
    /// Builds the network from checked weights.
    pub fn new(weights: &EncoderWeights) -> Self {
        let concat_weights = weights
            .layers
            .iter()
            .map(|layer| {
                let input = layer.input_size;
                let mut w = Vec::with_capacity(GATE_ROWS * (input + HIDDEN));
                for row in 0..GATE_ROWS {
                    w.extend_from_slice(&layer.weight_ih[row * input..(row + 1) * input]);
                    w.extend_from_slice(&layer.weight_hh[row * HIDDEN..(row + 1) * HIDDEN]);
                }
                w
            })
            .collect();
        SpeakerEncoder {
            concat_weights,
            biases: weights.layers.iter().map(|l| l.bias.clone()).collect(),
            linear_weight: weights.linear_weight.clone(),
            linear_bias: weights.linear_bias.clone(),
        }
    }

    /// Loads and checks a safetensors weights file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, EmbeddingError> {
        Ok(Self::new(&EncoderWeights::from_file(path)?))
    }

    /// Loads and checks safetensors bytes.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, EmbeddingError> {
        Ok(Self::new(&EncoderWeights::from_safetensors(bytes)?))
    }

    /// Embeds partial windows of a mel spectrogram (`frames × 40`, row-major, power not log):
    /// window `i` is frames `starts[i] .. starts[i] + window_frames`. Writes one L2-normalised
    /// embedding per window into `out` (`starts.len() × 256`). Windows beyond the batch's
    /// capacity run in further rounds.
    pub fn embed_windows(
        &self,
        mel: &[f32],
        starts: &[usize],
        window_frames: usize,
        batch: &mut LstmBatch,
        out: &mut [f32],
    ) -> Result<(), EmbeddingError> {
        if mel.len() % MEL_BANDS != 0 {
            return Err(EmbeddingError::InputSize {
                what: "mel frames × 40",
                expected: mel.len() / MEL_BANDS * MEL_BANDS,
                found: mel.len(),
            });
        }
        let frames = mel.len() / MEL_BANDS;
        if let Some(&start) = starts.iter().find(|&&s| s + window_frames > frames) {
            return Err(EmbeddingError::InputSize {
                what: "mel frames covering every window",
                expected: (start + window_frames) * MEL_BANDS,
                found: mel.len(),
            });
        }
        if out.len() != starts.len() * EMBEDDING_DIM {
            return Err(EmbeddingError::InputSize {
                what: "embedding output (windows × 256)",
                expected: starts.len() * EMBEDDING_DIM,
                found: out.len(),
            });
        }
        if window_frames == 0 {
            return Err(EmbeddingError::InputSize {
                what: "frames per window",
                expected: 1,
                found: 0,
            });
        }
        let rows = batch.capacity();
        for (chunk_starts, chunk_out) in starts
            .chunks(rows)
            .zip(out.chunks_mut(rows * EMBEDDING_DIM))
        {
            self.run_windows(mel, chunk_starts, window_frames, batch);
            for (slot, embedding) in chunk_out.chunks_exact_mut(EMBEDDING_DIM).enumerate() {
                let last = ((window_frames - 1) * chunk_starts.len() + slot) * HIDDEN;
                self.project(&batch.sequence[last..last + HIDDEN], embedding);
            }
        }
        Ok(())
    }

    /// Whole windows, layer after layer; leaves the top layer's hidden states in
    /// `batch.sequence` (`frames × rows × 256`, time-major).
    fn run_windows(&self, mel: &[f32], starts: &[usize], frames: usize, batch: &mut LstmBatch) {
        // one row per window: the recurrence is matrix-vector work, and the input projection's
        // row count (frames × windows) is far above nalgebra's sgemm threshold (5)
        let rows = starts.len();
        batch.ensure_frames(frames);
        batch.layer_input[..frames * rows * MEL_BANDS].fill(0.0);
        for t in 0..frames {
            for (slot, &start) in starts.iter().enumerate() {
                let dst = (t * rows + slot) * MEL_BANDS;
                batch.layer_input[dst..dst + MEL_BANDS]
                    .copy_from_slice(&mel[(start + t) * MEL_BANDS..(start + t + 1) * MEL_BANDS]);
            }
        }
        for layer in 0..LAYERS {
            let input = layer_input(layer);
            let width = input + HIDDEN;
            let weights = &self.concat_weights[layer];
            let projections = &mut batch.projections[..frames * rows * GATE_ROWS];
            for row in projections.chunks_exact_mut(GATE_ROWS) {
                row.copy_from_slice(&self.biases[layer]);
            }
            gemm_abt(
                frames * rows,
                GATE_ROWS,
                input,
                &batch.layer_input,
                input,
                weights,
                width,
                1.0,
                projections,
            );
            let cell = &mut batch.cell[0][..rows * HIDDEN];
            cell.fill(0.0);
            for t in 0..frames {
                let (done, current) = batch.sequence.split_at_mut(t * rows * HIDDEN);
                let gates =
                    &mut batch.projections[t * rows * GATE_ROWS..(t + 1) * rows * GATE_ROWS];
                if t > 0 {
                    // recurrence: one pass over W_hh per frame, each row dotted with every
                    // window's previous hidden state (sgemm would re-pack W_hh every frame)
                    let previous = &done[(t - 1) * rows * HIDDEN..t * rows * HIDDEN];
                    for (r, w) in weights.chunks_exact(width).enumerate() {
                        let w_hh = &w[input..];
                        for (slot, h) in previous.chunks_exact(HIDDEN).take(rows).enumerate() {
                            gates[slot * GATE_ROWS + r] += dot(w_hh, h);
                        }
                    }
                }
                cell_update(gates, cell, current, HIDDEN, rows);
            }
            if layer + 1 < LAYERS {
                std::mem::swap(&mut batch.layer_input, &mut batch.sequence);
            }
        }
    }

    /// Advances the slots of `batch` marked in `active` by one frame (inputs set with
    /// [`LstmBatch::set_input`]); other slots are left as they are. With the few windows open
    /// while streaming (≤ 3), matrix-vector products that read each weight row once for all
    /// open slots beat sgemm, which would copy (pack) the whole weight matrix at every step.
    pub fn step(&self, batch: &mut LstmBatch, active: &[bool]) {
        let slots = active.len().min(batch.capacity());
        for layer in 0..LAYERS {
            let width = layer_input(layer) + HIDDEN;
            let weights = &self.concat_weights[layer];
            for (r, w) in weights.chunks_exact(width).enumerate() {
                for slot in (0..slots).filter(|&s| active[s]) {
                    batch.gates[slot * GATE_ROWS + r] = self.biases[layer][r]
                        + dot(w, &batch.xh[layer][slot * width..(slot + 1) * width]);
                }
            }
            for slot in (0..slots).filter(|&s| active[s]) {
                cell_update(
                    &batch.gates[slot * GATE_ROWS..(slot + 1) * GATE_ROWS],
                    &mut batch.cell[layer][slot * HIDDEN..(slot + 1) * HIDDEN],
                    &mut batch.xh[layer][(slot + 1) * width - HIDDEN..(slot + 1) * width],
                    HIDDEN,
                    1,
                );
            }
            // the new hidden states are the next layer's inputs at this step
            if layer + 1 < LAYERS {
                let next_width = layer_input(layer + 1) + HIDDEN;
                let (lower, upper) = batch.xh.split_at_mut(layer + 1);
                for slot in (0..slots).filter(|&s| active[s]) {
                    upper[0][slot * next_width..slot * next_width + HIDDEN].copy_from_slice(
                        &lower[layer][(slot + 1) * width - HIDDEN..(slot + 1) * width],
                    );
                }
            }
        }
    }

    /// Linear + ReLU + L2 norm of a top-layer hidden state (256) into `embedding` (256).
    pub fn project(&self, hidden: &[f32], embedding: &mut [f32]) {
        for (row, out) in embedding.iter_mut().enumerate() {
            let w = &self.linear_weight[row * HIDDEN..(row + 1) * HIDDEN];
            let dot: f32 = w.iter().zip(hidden).map(|(a, b)| a * b).sum();
            *out = (dot + self.linear_bias[row]).max(0.0);
        }
        l2_normalize(embedding);
    }
}

/// Dot product with 8 independent accumulators, so the compiler vectorises it.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit L2 norm (left as is when it is all zeros).
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// LSTM state and scratch for a batch of partial windows; allocate once, reuse for every call
/// (buffers only grow).
#[derive(Debug, Clone)]
pub struct LstmBatch {
    capacity: usize,
    /// Frame-by-frame path: per layer, per slot `[x | h]` (input then hidden state).
    xh: Vec<Vec<f32>>,
    /// Per layer, per slot cell state.
    cell: Vec<Vec<f32>>,
    /// Frame-by-frame path: gate pre-activations, `capacity × GATE_ROWS`.
    gates: Vec<f32>,
    /// Whole-window path: layer input, `frames × capacity × (40 or 256)`.
    layer_input: Vec<f32>,
    /// Whole-window path: layer output, `frames × capacity × 256`.
    sequence: Vec<f32>,
    /// Whole-window path: gate pre-activations, `frames × capacity × GATE_ROWS`.
    projections: Vec<f32>,
}

impl LstmBatch {
    /// Scratch for up to `capacity` windows at once (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        LstmBatch {
            capacity,
            xh: (0..LAYERS)
                .map(|l| vec![0.0; capacity * (layer_input(l) + HIDDEN)])
                .collect(),
            cell: (0..LAYERS).map(|_| vec![0.0; capacity * HIDDEN]).collect(),
            gates: vec![0.0; capacity * GATE_ROWS],
            layer_input: Vec::new(),
            sequence: Vec::new(),
            projections: Vec::new(),
        }
    }

    /// Most windows advanced together.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn ensure_frames(&mut self, frames: usize) {
        let rows = self.capacity;
        if self.sequence.len() < frames * rows * HIDDEN {
            self.layer_input.resize(frames * rows * HIDDEN, 0.0);
            self.sequence.resize(frames * rows * HIDDEN, 0.0);
            self.projections.resize(frames * rows * GATE_ROWS, 0.0);
        }
    }

    /// Zeroes one slot's frame-by-frame state (a new window starts in it).
    pub fn reset_slot(&mut self, slot: usize) {
        for layer in 0..LAYERS {
            let width = layer_input(layer) + HIDDEN;
            self.xh[layer][slot * width..(slot + 1) * width].fill(0.0);
            self.cell[layer][slot * HIDDEN..(slot + 1) * HIDDEN].fill(0.0);
        }
    }

    /// Sets one slot's mel input (40 values) for the next [`SpeakerEncoder::step`].
    pub fn set_input(&mut self, slot: usize, mel_frame: &[f32]) {
        let width = MEL_BANDS + HIDDEN;
        self.xh[0][slot * width..slot * width + MEL_BANDS].copy_from_slice(mel_frame);
    }

    /// Top-layer hidden state (256) of a slot after frame-by-frame steps.
    pub fn top_hidden(&self, slot: usize) -> &[f32] {
        let width = layer_input(LAYERS - 1) + HIDDEN;
        &self.xh[LAYERS - 1][slot * width + width - HIDDEN..(slot + 1) * width]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tanh_and_sigmoid_match_f64() {
        let mut worst = (0.0f64, 0.0f64);
        for i in -400_000..=400_000 {
            let x = i as f64 * 5e-5;
            let tanh_err = (f64::from(fast_tanh(x as f32)) - x.tanh()).abs();
            let sig_err = (f64::from(sigmoid(x as f32)) - 1.0 / (1.0 + (-x).exp())).abs();
            worst = (worst.0.max(tanh_err), worst.1.max(sig_err));
        }
        assert!(
            worst.0 < 1e-6 && worst.1 < 1e-6,
            "max errors tanh {:e}, sigmoid {:e}",
            worst.0,
            worst.1
        );
        assert_eq!(fast_tanh(100.0), fast_tanh(7.905_311));
        assert!((fast_tanh(100.0) - 1.0).abs() < 1e-6 && (fast_tanh(-100.0) + 1.0).abs() < 1e-6);
    }
}
