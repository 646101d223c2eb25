//! The GE2E encoder network: 3-layer LSTM (40 → 256), linear 256 → 256, ReLU, L2 norm.
//!
//! Weights are packed once at load (`W_ihᵀ` and `W_hhᵀ` of every layer in 32-column panels)
//! so that no product re-packs them; products and cell updates run under a run-time SIMD
//! dispatch (AVX-512 / AVX2+FMA / scalar, see `kernel.rs`). The products run in the
//! [`EncoderPrecision`] chosen at construction: f32, or bf16 operands with f32 sums on CPUs with
//! AVX512_BF16 (the `quivox-bf16` crate; the default there). The cell update and the final
//! projection are f32 in both.
//!
//! Two schedules of the same arithmetic:
//! - layer after layer ([`SpeakerEncoder::embed_windows`], the batch path, and
//!   [`SpeakerEncoder::complete_windows`], the end of a stream): the input projection of every
//!   frame of every window is one product (`m` = frames × windows; for the bottom layer of
//!   evenly spaced overlapping windows, as the batch path's partial windows are, one row per
//!   distinct mel frame), then per frame one product `m` = windows with `W_hh`, whose 1 MB
//!   stays in cache for the whole layer;
//! - frame by frame ([`SpeakerEncoder::step`], streaming while the call goes on): the open
//!   windows advance one frame through all three layers.
//!
//! A window can switch from the second schedule to the first at any frame (its per-layer
//! `(h, c)` carry over), which is how a stream finishes its last windows quickly. The schedules
//! differ only in floating-point summation order (≈ 1e-6 in f32; in bf16 a sum landing on the
//! other side of a bf16 rounding boundary of a hidden state moves that operand by one bf16 ulp,
//! ≈ 1e-4 on the embedding).

use std::path::Path;

use pulp::{Arch, Simd, WithSimd};
use quivox_bf16::Bf16Kernel;

use super::arch::{EMBEDDING_DIM, GATE_ROWS, HIDDEN, LAYERS, MEL_BANDS};
use super::error::EmbeddingError;
use super::kernel::{cell_update, product, PackedWeights, ProductScratch, RowStart};
use super::weights::EncoderWeights;

/// Arithmetic of the LSTM's matrix products (input projections and recurrent products; the
/// cell update, the mel spectrogram and the final projection are f32 in every case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EncoderPrecision {
    /// [`EncoderPrecision::Bf16`] when the CPU has AVX512_BF16, else [`EncoderPrecision::F32`]
    /// (the default).
    #[default]
    Auto,
    /// f32 operands and sums (fused multiply-adds): the reference arithmetic.
    F32,
    /// Weights and left operands rounded to bf16 (8-bit significand), products summed in f32
    /// (AVX512_BF16 `vdpbf16ps`, about twice the f32 rate). Needs AVX-512F, AVX-512VL and
    /// AVX512_BF16 (AMD Zen 4 and later, Intel Cooper Lake / Sapphire Rapids and later). Embeddings
    /// stay within cosine 0.9999 of the f32 ones (see the tests).
    Bf16,
}

/// The speaker encoder network with its weights, ready for inference.
#[derive(Debug, Clone)]
pub struct SpeakerEncoder {
    /// Per layer `W_ihᵀ` packed (`GATE_ROWS` outputs, input width inner).
    w_ih: Vec<PackedWeights>,
    /// Per layer `W_hhᵀ` packed (`GATE_ROWS` outputs, `HIDDEN` inner).
    w_hh: Vec<PackedWeights>,
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

/// One window to run to its end with [`SpeakerEncoder::complete_windows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowTail {
    /// Slot of the [`LstmBatch`] whose frame-by-frame state the window continues from, or
    /// `None` for a window that has not started (zero state).
    pub slot: Option<usize>,
    /// Index (in frames) in the mel slice of the window's next frame.
    pub first_frame: usize,
    /// Frames left to run (at least 1).
    pub frames: usize,
}

impl SpeakerEncoder {
    /// Builds the network from checked weights (packs the LSTM matrices, ~1 ms), with the
    /// default precision ([`EncoderPrecision::Auto`]: bf16 products where the CPU has them).
    pub fn new(weights: &EncoderWeights) -> Self {
        Self::pack(weights, Bf16Kernel::detect())
    }

    /// Builds the network with the products in `precision`; an error if bf16 is asked for on
    /// a CPU without AVX512_BF16.
    pub fn with_precision(
        weights: &EncoderWeights,
        precision: EncoderPrecision,
    ) -> Result<Self, EmbeddingError> {
        let kernel = match precision {
            EncoderPrecision::F32 => None,
            EncoderPrecision::Auto => Bf16Kernel::detect(),
            EncoderPrecision::Bf16 => Some(Bf16Kernel::detect().ok_or_else(|| {
                EmbeddingError::InvalidOption {
                    name: "precision",
                    reason: "Bf16 needs AVX-512F, AVX-512VL and AVX512_BF16, which this CPU \
                             lacks; expected Auto or F32 here"
                        .into(),
                }
            })?),
        };
        Ok(Self::pack(weights, kernel))
    }

    /// The precision the products run in ([`EncoderPrecision::F32`] or
    /// [`EncoderPrecision::Bf16`], never `Auto`).
    pub fn precision(&self) -> EncoderPrecision {
        match self.w_ih.first() {
            Some(PackedWeights::Bf16(..)) => EncoderPrecision::Bf16,
            _ => EncoderPrecision::F32,
        }
    }

    /// Packs the LSTM matrices for the bf16 kernel, or in f32 without one.
    fn pack(weights: &EncoderWeights, bf16: Option<Bf16Kernel>) -> Self {
        let w_ih = weights
            .layers
            .iter()
            .map(|l| {
                let input = l.input_size;
                PackedWeights::pack(&l.weight_ih, GATE_ROWS, input, input, bf16)
            })
            .collect();
        // Layer 0's recurrent product stays f32 in the bf16 precision: it carries most of bf16's
        // error (measured: with it in bf16 single partial embeddings fall to cosine 0.99990 of
        // Resemblyzer's; in f32 they stay at >= 0.99996, for 0.9 ms of a 7-s call).
        let w_hh = weights
            .layers
            .iter()
            .enumerate()
            .map(|(layer, l)| {
                let kernel = if layer == 0 { None } else { bf16 };
                PackedWeights::pack(&l.weight_hh, GATE_ROWS, HIDDEN, HIDDEN, kernel)
            })
            .collect();
        SpeakerEncoder {
            w_ih,
            w_hh,
            biases: weights.layers.iter().map(|l| l.bias.clone()).collect(),
            linear_weight: weights.linear_weight.clone(),
            linear_bias: weights.linear_bias.clone(),
        }
    }

    /// Loads and checks a safetensors weights file (default precision, see
    /// [`SpeakerEncoder::new`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, EmbeddingError> {
        Ok(Self::new(&EncoderWeights::from_file(path)?))
    }

    /// Loads and checks safetensors bytes (default precision, see [`SpeakerEncoder::new`]).
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
        let frames = mel_frames(mel)?;
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
            let n = chunk_starts.len();
            batch.lens.clear();
            batch.lens.resize(n, window_frames);
            batch.prepare_layered(window_frames, n);
            // windows a constant step apart that overlap (as partial windows do) share the
            // bottom layer's input projection of their common frames: it is computed once per
            // distinct frame
            let step = chunk_starts
                .get(1)
                .map_or(0, |&s| s.saturating_sub(chunk_starts[0]));
            let evenly_spaced = chunk_starts
                .windows(2)
                .all(|p| p[1] >= p[0] && p[1] - p[0] == step);
            let shared = (evenly_spaced && step < window_frames).then(|| {
                let first = chunk_starts[0] * MEL_BANDS;
                let distinct = (n - 1) * step + window_frames;
                SharedInput {
                    mel: &mel[first..first + distinct * MEL_BANDS],
                    step,
                }
            });
            if shared.is_none() {
                for t in 0..window_frames {
                    for (slot, &start) in chunk_starts.iter().enumerate() {
                        let dst = (t * n + slot) * MEL_BANDS;
                        batch.layer_input[dst..dst + MEL_BANDS].copy_from_slice(
                            &mel[(start + t) * MEL_BANDS..(start + t + 1) * MEL_BANDS],
                        );
                    }
                }
            }
            for layer in 0..LAYERS {
                batch.init_h[layer][..n * HIDDEN].fill(0.0);
                batch.init_c[layer][..n * HIDDEN].fill(0.0);
            }
            batch.row_slots.clear();
            self.run_layered(batch, n, false, shared);
            for (slot, embedding) in chunk_out.chunks_exact_mut(EMBEDDING_DIM).enumerate() {
                let last = ((window_frames - 1) * n + slot) * HIDDEN;
                self.project(&batch.sequence[last..last + HIDDEN], embedding);
            }
        }
        Ok(())
    }

    /// Runs windows to their end layer after layer (as the batch path does), each from the
    /// frame-by-frame state of its slot in `batch` (or from zero): `tails[i]` reads mel frames
    /// `first_frame .. first_frame + frames` of `mel` (`frames × 40`). Writes one
    /// L2-normalised embedding per tail into `out` (`tails.len() × 256`). The slots' own state
    /// is left as it was.
    pub fn complete_windows(
        &self,
        mel: &[f32],
        tails: &[WindowTail],
        batch: &mut LstmBatch,
        out: &mut [f32],
    ) -> Result<(), EmbeddingError> {
        check_tail_frames(mel, tails)?;
        if let Some(slot) = tails
            .iter()
            .filter_map(|t| t.slot)
            .find(|&s| s >= batch.capacity())
        {
            return Err(EmbeddingError::InputSize {
                what: "slot index below the batch capacity",
                expected: batch.capacity(),
                found: slot,
            });
        }
        if out.len() != tails.len() * EMBEDDING_DIM {
            return Err(EmbeddingError::InputSize {
                what: "embedding output (windows × 256)",
                expected: tails.len() * EMBEDDING_DIM,
                found: out.len(),
            });
        }
        self.run_tails(mel, tails, batch, false, out);
        Ok(())
    }

    /// Advances the windows of `tails` (each continuing its slot's state, or starting from zero
    /// in its slot) over their mel frames layer after layer, and leaves each window's final
    /// state in its slot, as that many [`SpeakerEncoder::step`]s would (the same arithmetic,
    /// batched over frames: several times faster). Every tail must name a distinct slot.
    pub fn advance_windows(
        &self,
        mel: &[f32],
        tails: &[WindowTail],
        batch: &mut LstmBatch,
    ) -> Result<(), EmbeddingError> {
        check_tail_frames(mel, tails)?;
        for (i, tail) in tails.iter().enumerate() {
            let ok = tail.slot.is_some_and(|s| {
                s < batch.capacity() && tails[..i].iter().all(|o| o.slot != Some(s))
            });
            if !ok {
                return Err(EmbeddingError::InputSize {
                    what: "a distinct slot below the batch capacity for every window",
                    expected: batch.capacity(),
                    found: tail.slot.unwrap_or(usize::MAX),
                });
            }
        }
        self.run_tails(mel, tails, batch, true, &mut []);
        Ok(())
    }

    /// The layered schedule over `tails` (checked by the callers): with `write_back`, final
    /// states go back to the slots; otherwise embeddings go to `out`.
    fn run_tails(
        &self,
        mel: &[f32],
        tails: &[WindowTail],
        batch: &mut LstmBatch,
        write_back: bool,
        out: &mut [f32],
    ) {
        let rows = batch.capacity();
        let mut order: Vec<usize> = (0..tails.len()).collect();
        // longest first, so that the windows still running at any frame are a prefix
        order.sort_by_key(|&i| std::cmp::Reverse(tails[i].frames));
        for chunk in order.chunks(rows) {
            let n = chunk.len();
            let longest = tails[chunk[0]].frames;
            batch.lens.clear();
            batch.lens.extend(chunk.iter().map(|&i| tails[i].frames));
            batch.prepare_layered(longest, n);
            batch.layer_input[..longest * n * MEL_BANDS].fill(0.0);
            for (row, &i) in chunk.iter().enumerate() {
                let tail = tails[i];
                for t in 0..tail.frames {
                    let src = (tail.first_frame + t) * MEL_BANDS;
                    let dst = (t * n + row) * MEL_BANDS;
                    batch.layer_input[dst..dst + MEL_BANDS]
                        .copy_from_slice(&mel[src..src + MEL_BANDS]);
                }
                for layer in 0..LAYERS {
                    let dst = row * HIDDEN..(row + 1) * HIDDEN;
                    match tail.slot {
                        Some(slot) => {
                            let src = slot * HIDDEN..(slot + 1) * HIDDEN;
                            batch.init_h[layer][dst.clone()]
                                .copy_from_slice(&batch.hidden[layer][src.clone()]);
                            batch.init_c[layer][dst].copy_from_slice(&batch.cell[layer][src]);
                        }
                        None => {
                            batch.init_h[layer][dst.clone()].fill(0.0);
                            batch.init_c[layer][dst].fill(0.0);
                        }
                    }
                }
            }
            batch.row_slots.clear();
            if write_back {
                batch
                    .row_slots
                    .extend(chunk.iter().map(|&i| tails[i].slot.unwrap_or(0)));
            }
            self.run_layered(batch, n, true, None);
            if write_back {
                continue;
            }
            for (row, &i) in chunk.iter().enumerate() {
                let last = ((tails[i].frames - 1) * n + row) * HIDDEN;
                let embedding = &mut out[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM];
                self.project(&batch.sequence[last..last + HIDDEN], embedding);
            }
        }
    }

    /// Layer after layer over `rows` windows of lengths `batch.lens` (non-increasing), inputs
    /// time-major in `batch.layer_input` (`frames × rows × 40`), initial states in
    /// `batch.init_h` / `batch.init_c`; leaves the top layer's hidden states in
    /// `batch.sequence` (`frames × rows × 256`, time-major). With `shared`, the bottom layer
    /// reads its input from there instead (`batch.layer_input` unused).
    fn run_layered(
        &self,
        batch: &mut LstmBatch,
        rows: usize,
        from_state: bool,
        shared: Option<SharedInput<'_>>,
    ) {
        Arch::new().dispatch(Layered {
            encoder: self,
            batch,
            rows,
            from_state,
            shared,
        });
    }

    /// Advances the slots of `batch` marked in `active` by one frame (inputs set with
    /// [`LstmBatch::set_input`]); other slots are left as they are.
    pub fn step(&self, batch: &mut LstmBatch, active: &[bool]) {
        let slots = active.len().min(batch.capacity());
        batch.active.clear();
        batch
            .active
            .extend((0..slots).filter(|&s| active.get(s).copied().unwrap_or(false)));
        if batch.active.is_empty() {
            return;
        }
        Arch::new().dispatch(Step {
            encoder: self,
            batch,
        });
    }

    /// Linear + ReLU + L2 norm of a top-layer hidden state (256) into `embedding` (256).
    pub fn project(&self, hidden: &[f32], embedding: &mut [f32]) {
        for (row, out) in embedding.iter_mut().enumerate() {
            let w = &self.linear_weight[row * HIDDEN..(row + 1) * HIDDEN];
            *out = (crate::gmm::dot_f32(w, hidden) + self.linear_bias[row]).max(0.0);
        }
        l2_normalize(embedding);
    }
}

/// Input of the bottom layer for windows of equal length starting `step` frames apart (`step`
/// below the window length): the mel frames from the first window's start to the last window's
/// end, each once.
#[derive(Debug, Clone, Copy)]
struct SharedInput<'a> {
    mel: &'a [f32],
    step: usize,
}

/// The layer-after-layer schedule as a SIMD-dispatched operation.
struct Layered<'a> {
    encoder: &'a SpeakerEncoder,
    batch: &'a mut LstmBatch,
    rows: usize,
    from_state: bool,
    shared: Option<SharedInput<'a>>,
}

impl WithSimd for Layered<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Layered {
            encoder,
            batch,
            rows,
            from_state,
            shared,
        } = self;
        let frames = batch.lens.first().copied().unwrap_or(0);
        for layer in 0..LAYERS {
            if let (0, Some(shared)) = (layer, shared) {
                shared_bottom_layer(simd, encoder, batch, rows, frames, shared);
                std::mem::swap(&mut batch.layer_input, &mut batch.sequence);
                continue;
            }
            let input = layer_input(layer);
            let projections = &mut batch.projections[..frames * rows * GATE_ROWS];
            product(
                simd,
                frames * rows,
                &batch.layer_input,
                input,
                &encoder.w_ih[layer],
                projections,
                GATE_ROWS,
                Some(RowStart::bias(&encoder.biases[layer])),
                &mut batch.scratch,
            );
            let cell = &mut batch.cell_scratch[..rows * HIDDEN];
            cell.copy_from_slice(&batch.init_c[layer][..rows * HIDDEN]);
            for t in 0..frames {
                let running = batch.lens.iter().take_while(|&&len| len > t).count();
                let (done, current) = batch.sequence.split_at_mut(t * rows * HIDDEN);
                let gates =
                    &mut batch.projections[t * rows * GATE_ROWS..(t + 1) * rows * GATE_ROWS];
                let previous = if t == 0 {
                    &batch.init_h[layer][..rows * HIDDEN]
                } else {
                    &done[(t - 1) * rows * HIDDEN..t * rows * HIDDEN]
                };
                if t > 0 || from_state {
                    product(
                        simd,
                        running,
                        previous,
                        HIDDEN,
                        &encoder.w_hh[layer],
                        gates,
                        GATE_ROWS,
                        None,
                        &mut batch.scratch,
                    );
                }
                cell_update(simd, gates, GATE_ROWS, cell, current, HIDDEN, running);
            }
            // final states back to the slots (layered advance of streaming windows)
            for (row, &slot) in batch.row_slots.iter().enumerate() {
                let last = ((batch.lens[row] - 1) * rows + row) * HIDDEN;
                batch.hidden[layer][slot * HIDDEN..(slot + 1) * HIDDEN]
                    .copy_from_slice(&batch.sequence[last..last + HIDDEN]);
                batch.cell[layer][slot * HIDDEN..(slot + 1) * HIDDEN]
                    .copy_from_slice(&batch.cell_scratch[row * HIDDEN..(row + 1) * HIDDEN]);
            }
            if layer + 1 < LAYERS {
                std::mem::swap(&mut batch.layer_input, &mut batch.sequence);
            }
        }
    }
}

/// The bottom layer over windows sharing their input frames (see [`SharedInput`]; all `rows`
/// windows run `frames` frames from zero state): the input projection once per distinct frame
/// into `batch.projections`, then per frame the recurrent product starting from each window's
/// row of it (`step` frames apart) into `batch.gates`; hidden states into `batch.sequence`.
#[inline(always)]
fn shared_bottom_layer<S: Simd>(
    simd: S,
    encoder: &SpeakerEncoder,
    batch: &mut LstmBatch,
    rows: usize,
    frames: usize,
    shared: SharedInput<'_>,
) {
    let distinct = shared.mel.len() / MEL_BANDS;
    product(
        simd,
        distinct,
        shared.mel,
        MEL_BANDS,
        &encoder.w_ih[0],
        &mut batch.projections[..distinct * GATE_ROWS],
        GATE_ROWS,
        Some(RowStart::bias(&encoder.biases[0])),
        &mut batch.scratch,
    );
    let cell = &mut batch.cell_scratch[..rows * HIDDEN];
    cell.fill(0.0);
    for t in 0..frames {
        let (done, current) = batch.sequence.split_at_mut(t * rows * HIDDEN);
        let projected = RowStart {
            values: &batch.projections[t * GATE_ROWS..distinct * GATE_ROWS],
            stride: shared.step * GATE_ROWS,
        };
        if t == 0 {
            // zero state: the gates are the projections themselves
            cell_update(
                simd,
                projected.values,
                projected.stride,
                cell,
                current,
                HIDDEN,
                rows,
            );
            continue;
        }
        let gates = &mut batch.gates[..rows * GATE_ROWS];
        product(
            simd,
            rows,
            &done[(t - 1) * rows * HIDDEN..t * rows * HIDDEN],
            HIDDEN,
            &encoder.w_hh[0],
            gates,
            GATE_ROWS,
            Some(projected),
            &mut batch.scratch,
        );
        cell_update(simd, gates, GATE_ROWS, cell, current, HIDDEN, rows);
    }
}

/// One frame-by-frame step as a SIMD-dispatched operation.
struct Step<'a> {
    encoder: &'a SpeakerEncoder,
    batch: &'a mut LstmBatch,
}

impl WithSimd for Step<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Step { encoder, batch } = self;
        let n = batch.active.len();
        for layer in 0..LAYERS {
            let input = layer_input(layer);
            // gather the open slots' inputs, hidden and cell states into contiguous rows
            for (row, &slot) in batch.active.iter().enumerate() {
                let x = if layer == 0 {
                    &batch.mel_input[slot * MEL_BANDS..(slot + 1) * MEL_BANDS]
                } else {
                    &batch.hidden[layer - 1][slot * HIDDEN..(slot + 1) * HIDDEN]
                };
                batch.step_x[row * input..(row + 1) * input].copy_from_slice(x);
                batch.step_h[row * HIDDEN..(row + 1) * HIDDEN]
                    .copy_from_slice(&batch.hidden[layer][slot * HIDDEN..(slot + 1) * HIDDEN]);
                batch.step_c[row * HIDDEN..(row + 1) * HIDDEN]
                    .copy_from_slice(&batch.cell[layer][slot * HIDDEN..(slot + 1) * HIDDEN]);
            }
            let gates = &mut batch.gates[..n * GATE_ROWS];
            product(
                simd,
                n,
                &batch.step_x,
                input,
                &encoder.w_ih[layer],
                gates,
                GATE_ROWS,
                Some(RowStart::bias(&encoder.biases[layer])),
                &mut batch.scratch,
            );
            product(
                simd,
                n,
                &batch.step_h,
                HIDDEN,
                &encoder.w_hh[layer],
                gates,
                GATE_ROWS,
                None,
                &mut batch.scratch,
            );
            cell_update(
                simd,
                gates,
                GATE_ROWS,
                &mut batch.step_c,
                &mut batch.step_h,
                HIDDEN,
                n,
            );
            for (row, &slot) in batch.active.iter().enumerate() {
                batch.hidden[layer][slot * HIDDEN..(slot + 1) * HIDDEN]
                    .copy_from_slice(&batch.step_h[row * HIDDEN..(row + 1) * HIDDEN]);
                batch.cell[layer][slot * HIDDEN..(slot + 1) * HIDDEN]
                    .copy_from_slice(&batch.step_c[row * HIDDEN..(row + 1) * HIDDEN]);
            }
        }
    }
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
    /// Frame-by-frame path: per slot mel input (40).
    mel_input: Vec<f32>,
    /// Frame-by-frame path: per layer, per slot hidden state (256).
    hidden: Vec<Vec<f32>>,
    /// Frame-by-frame path: per layer, per slot cell state (256).
    cell: Vec<Vec<f32>>,
    /// Frame-by-frame path: slots advanced by the current step.
    active: Vec<usize>,
    /// Frame-by-frame path: gathered inputs, hidden and cell states of the active slots.
    step_x: Vec<f32>,
    step_h: Vec<f32>,
    step_c: Vec<f32>,
    /// Frame-by-frame path: gate pre-activations, `capacity × GATE_ROWS`.
    gates: Vec<f32>,
    /// Packed rows of the left operand of a product.
    scratch: ProductScratch,
    /// Layered path: frames to run per row (non-increasing).
    lens: Vec<usize>,
    /// Layered path: per layer initial hidden / cell state, `capacity × 256`.
    init_h: Vec<Vec<f32>>,
    init_c: Vec<Vec<f32>>,
    /// Layered path: running cell state, `capacity × 256`.
    cell_scratch: Vec<f32>,
    /// Layered path: layer input, `frames × rows × (40 or 256)`.
    layer_input: Vec<f32>,
    /// Layered path: layer output, `frames × rows × 256`.
    sequence: Vec<f32>,
    /// Layered path: gate pre-activations, `frames × rows × GATE_ROWS`.
    projections: Vec<f32>,
    /// Layered advance: the slot each row's final state is written back to (empty: none).
    row_slots: Vec<usize>,
}

impl LstmBatch {
    /// Scratch for up to `capacity` windows at once (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let per_layer = || (0..LAYERS).map(|_| vec![0.0; capacity * HIDDEN]).collect();
        LstmBatch {
            capacity,
            mel_input: vec![0.0; capacity * MEL_BANDS],
            hidden: per_layer(),
            cell: per_layer(),
            active: Vec::with_capacity(capacity),
            step_x: vec![0.0; capacity * HIDDEN],
            step_h: vec![0.0; capacity * HIDDEN],
            step_c: vec![0.0; capacity * HIDDEN],
            gates: vec![0.0; capacity * GATE_ROWS],
            scratch: ProductScratch::new(HIDDEN),
            lens: Vec::with_capacity(capacity),
            init_h: per_layer(),
            init_c: per_layer(),
            cell_scratch: vec![0.0; capacity * HIDDEN],
            layer_input: Vec::new(),
            sequence: Vec::new(),
            projections: Vec::new(),
            row_slots: Vec::with_capacity(capacity),
        }
    }

    /// Most windows advanced together.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Allocates (and touches) the buffers of the layer-after-layer schedule for windows of up
    /// to `frames` frames, so that a later [`SpeakerEncoder::embed_windows`] or
    /// [`SpeakerEncoder::complete_windows`] of that size does not allocate.
    pub fn reserve_frames(&mut self, frames: usize) {
        self.prepare_layered(frames, self.capacity);
    }

    /// Grows the layered buffers for `frames × rows`.
    fn prepare_layered(&mut self, frames: usize, rows: usize) {
        if self.sequence.len() < frames * rows * HIDDEN {
            self.layer_input.resize(frames * rows * HIDDEN, 0.0);
            self.sequence.resize(frames * rows * HIDDEN, 0.0);
            self.projections.resize(frames * rows * GATE_ROWS, 0.0);
        }
    }

    /// Zeroes one slot's frame-by-frame state (a new window starts in it).
    pub fn reset_slot(&mut self, slot: usize) {
        if slot >= self.capacity {
            return;
        }
        for layer in 0..LAYERS {
            self.hidden[layer][slot * HIDDEN..(slot + 1) * HIDDEN].fill(0.0);
            self.cell[layer][slot * HIDDEN..(slot + 1) * HIDDEN].fill(0.0);
        }
    }

    /// Sets one slot's mel input (40 values) for the next [`SpeakerEncoder::step`].
    pub fn set_input(&mut self, slot: usize, mel_frame: &[f32]) {
        if slot < self.capacity && mel_frame.len() == MEL_BANDS {
            self.mel_input[slot * MEL_BANDS..(slot + 1) * MEL_BANDS].copy_from_slice(mel_frame);
        }
    }

    /// Top-layer hidden state (256) of a slot after frame-by-frame steps.
    pub fn top_hidden(&self, slot: usize) -> &[f32] {
        let slot = slot.min(self.capacity - 1);
        &self.hidden[LAYERS - 1][slot * HIDDEN..(slot + 1) * HIDDEN]
    }
}

/// Checks that `mel` is whole frames and covers every tail (at least one frame each).
fn check_tail_frames(mel: &[f32], tails: &[WindowTail]) -> Result<(), EmbeddingError> {
    let frames = mel_frames(mel)?;
    match tails
        .iter()
        .find(|t| t.frames == 0 || t.first_frame + t.frames > frames)
    {
        Some(tail) => Err(EmbeddingError::InputSize {
            what: "mel frames covering every window tail (at least one frame each)",
            expected: (tail.first_frame + tail.frames.max(1)) * MEL_BANDS,
            found: mel.len(),
        }),
        None => Ok(()),
    }
}

/// Number of 40-band frames in a row-major mel buffer; an error if it is not whole frames.
fn mel_frames(mel: &[f32]) -> Result<usize, EmbeddingError> {
    if !mel.len().is_multiple_of(MEL_BANDS) {
        return Err(EmbeddingError::InputSize {
            what: "mel frames × 40",
            expected: mel.len() / MEL_BANDS * MEL_BANDS,
            found: mel.len(),
        });
    }
    Ok(mel.len() / MEL_BANDS)
}
