//! The GE2E encoder network: 3-layer LSTM (40 → 256), linear 256 → 256, ReLU, L2 norm.
//!
//! All partial windows in flight advance together, one time step at a time: per layer and step
//! one matrix product `[x | h] (batch × (in + 256)) · [W_ih | W_hh]ᵀ` through nalgebra's `gemm`,
//! which hands it to `matrixmultiply`'s sgemm (AVX2/FMA kernels picked at run time; the crate
//! forbids `unsafe`, so we cannot call `matrixmultiply` directly). nalgebra only takes the sgemm
//! path when every dimension exceeds 5, so the batch is padded to [`MIN_GEMM_BATCH`] rows.
//! The batch path and the streaming path share [`LstmBatch::step`], so they agree exactly.

use std::path::Path;

use nalgebra::{DMatrixView, DMatrixViewMut};

use super::arch::{EMBEDDING_DIM, GATE_ROWS, HIDDEN, LAYERS, MEL_BANDS};
use super::error::EmbeddingError;
use super::weights::EncoderWeights;

/// Smallest batch for which nalgebra routes a product to sgemm (all dimensions > 5).
pub const MIN_GEMM_BATCH: usize = 6;

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

/// `c (m × n) = beta · c + a (m × k) · bᵀ`, all row-major, `b` being `n × k`.
pub(crate) fn gemm_abt(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    let a = DMatrixView::from_slice_with_strides(&a[..m * k], m, k, k, 1);
    let bt = DMatrixView::from_slice_with_strides(&b[..n * k], k, n, 1, k);
    let mut c = DMatrixViewMut::from_slice_with_strides_mut(&mut c[..m * n], m, n, n, 1);
    c.gemm(1.0, &a, &bt, beta);
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
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
    /// embedding per window into `out` (`starts.len() × 256`).
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
        for (chunk_starts, chunk_out) in starts
            .chunks(batch.capacity())
            .zip(out.chunks_mut(batch.capacity() * EMBEDDING_DIM))
        {
            batch.reset_all();
            for t in 0..window_frames {
                for (slot, &start) in chunk_starts.iter().enumerate() {
                    let frame = start + t;
                    batch.set_input(slot, &mel[frame * MEL_BANDS..(frame + 1) * MEL_BANDS]);
                }
                self.step(batch, chunk_starts.len());
            }
            for (slot, embedding) in chunk_out.chunks_exact_mut(EMBEDDING_DIM).enumerate() {
                self.project(batch.top_hidden(slot), embedding);
            }
        }
        Ok(())
    }

    /// Advances the first `active` slots of `batch` by one frame (their inputs already set).
    pub fn step(&self, batch: &mut LstmBatch, active: usize) {
        let rows = active.max(MIN_GEMM_BATCH).min(batch.capacity());
        for layer in 0..LAYERS {
            let width = layer_input(layer) + HIDDEN;
            let gates = &mut batch.gates[..rows * GATE_ROWS];
            for row in gates.chunks_exact_mut(GATE_ROWS) {
                row.copy_from_slice(&self.biases[layer]);
            }
            gemm_abt(
                rows,
                GATE_ROWS,
                width,
                &batch.xh[layer],
                &self.concat_weights[layer],
                1.0,
                gates,
            );
            for slot in 0..rows {
                let g = &batch.gates[slot * GATE_ROWS..(slot + 1) * GATE_ROWS];
                let c = &mut batch.cell[layer][slot * HIDDEN..(slot + 1) * HIDDEN];
                let xh = &mut batch.xh[layer][slot * width..(slot + 1) * width];
                let h = &mut xh[width - HIDDEN..];
                for j in 0..HIDDEN {
                    let input_gate = sigmoid(g[j]);
                    let forget_gate = sigmoid(g[HIDDEN + j]);
                    let candidate = g[2 * HIDDEN + j].tanh();
                    let output_gate = sigmoid(g[3 * HIDDEN + j]);
                    c[j] = forget_gate * c[j] + input_gate * candidate;
                    h[j] = output_gate * c[j].tanh();
                }
            }
            // the new hidden states are the next layer's inputs at this step
            if layer + 1 < LAYERS {
                let next_width = layer_input(layer + 1) + HIDDEN;
                let (lower, upper) = batch.xh.split_at_mut(layer + 1);
                for slot in 0..rows {
                    upper[0][slot * next_width..slot * next_width + HIDDEN].copy_from_slice(
                        &lower[layer][(slot + 1) * width - HIDDEN..(slot + 1) * width],
                    );
                }
            }
        }
    }

    /// Linear + ReLU + L2 norm of a top-layer hidden state into `embedding` (256).
    pub fn project(&self, hidden: &[f32], embedding: &mut [f32]) {
        for (row, out) in embedding.iter_mut().enumerate() {
            let w = &self.linear_weight[row * HIDDEN..(row + 1) * HIDDEN];
            let dot: f32 = w.iter().zip(hidden).map(|(a, b)| a * b).sum();
            *out = (dot + self.linear_bias[row]).max(0.0);
        }
        l2_normalize(embedding);
    }
}

/// Scales `v` to unit L2 norm (left as is when it is all zeros).
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// LSTM state and scratch for a batch of partial windows advanced in lock step; allocate once,
/// reuse for every call.
#[derive(Debug, Clone)]
pub struct LstmBatch {
    capacity: usize,
    /// Per layer, per slot `[x | h]` (input then hidden state).
    xh: Vec<Vec<f32>>,
    /// Per layer, per slot cell state.
    cell: Vec<Vec<f32>>,
    /// Gate pre-activations, `capacity × GATE_ROWS`.
    gates: Vec<f32>,
}

impl LstmBatch {
    /// Scratch for up to `capacity` windows at once (at least [`MIN_GEMM_BATCH`]).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(MIN_GEMM_BATCH);
        LstmBatch {
            capacity,
            xh: (0..LAYERS)
                .map(|l| vec![0.0; capacity * (layer_input(l) + HIDDEN)])
                .collect(),
            cell: (0..LAYERS).map(|_| vec![0.0; capacity * HIDDEN]).collect(),
            gates: vec![0.0; capacity * GATE_ROWS],
        }
    }

    /// Most windows advanced together.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Zeroes every slot's state.
    pub fn reset_all(&mut self) {
        self.xh.iter_mut().for_each(|v| v.fill(0.0));
        self.cell.iter_mut().for_each(|v| v.fill(0.0));
    }

    /// Zeroes one slot's state (a new window starts in it).
    pub fn reset_slot(&mut self, slot: usize) {
        for layer in 0..LAYERS {
            let width = layer_input(layer) + HIDDEN;
            self.xh[layer][slot * width..(slot + 1) * width].fill(0.0);
            self.cell[layer][slot * HIDDEN..(slot + 1) * HIDDEN].fill(0.0);
        }
    }

    /// Sets one slot's mel input (40 values) for the next step.
    pub fn set_input(&mut self, slot: usize, mel_frame: &[f32]) {
        let width = MEL_BANDS + HIDDEN;
        self.xh[0][slot * width..slot * width + MEL_BANDS].copy_from_slice(mel_frame);
    }

    /// Top-layer hidden state of a slot (256).
    pub fn top_hidden(&self, slot: usize) -> &[f32] {
        let width = layer_input(LAYERS - 1) + HIDDEN;
        &self.xh[LAYERS - 1][slot * width + width - HIDDEN..(slot + 1) * width]
    }
}
