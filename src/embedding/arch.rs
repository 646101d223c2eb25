//! Architecture and front-end constants of the GE2E speaker encoder (Resemblyzer 0.1.4).
//!
//! One place for every number the weights file, the front end and the encoder must agree on.

/// Sample rate the encoder's front end works at, in Hz.
pub const ENCODER_SAMPLE_RATE_HZ: u32 = 16_000;
/// Telephone input rate accepted by the streaming embedder, in Hz.
pub const TELEPHONE_SAMPLE_RATE_HZ: u32 = 8_000;
/// STFT window and FFT length in samples at 16 kHz (25 ms).
pub const N_FFT: usize = 400;
/// Number of power-spectrum bins (`N_FFT / 2 + 1`).
pub const N_BINS: usize = N_FFT / 2 + 1;
/// STFT hop in samples at 16 kHz (10 ms).
pub const HOP_SAMPLES: usize = 160;
/// Number of mel bands (encoder input dimension).
pub const MEL_BANDS: usize = 40;
/// LSTM hidden size (per layer).
pub const HIDDEN: usize = 256;
/// Number of gates per LSTM cell (PyTorch order: input, forget, cell candidate, output).
pub const GATES: usize = 4;
/// Rows of each LSTM weight matrix (`GATES * HIDDEN`).
pub const GATE_ROWS: usize = GATES * HIDDEN;
/// Number of stacked LSTM layers.
pub const LAYERS: usize = 3;
/// Embedding dimension (output of the linear layer).
pub const EMBEDDING_DIM: usize = 256;
/// Mel frames per partial window (1.6 s).
pub const PARTIAL_FRAMES: usize = 160;
/// Partial windows per second of audio (Resemblyzer's default `rate`).
pub const PARTIALS_PER_SECOND: f64 = 1.3;
/// Minimum fraction of the last partial window that must be real audio to keep it.
pub const MIN_COVERAGE: f64 = 0.75;
/// Volume normalisation target in dBFS (applied only to increase the level).
pub const TARGET_DBFS: f64 = -30.0;
/// Voice-activity window for silence trimming, in samples at 16 kHz (30 ms).
pub const VAD_WINDOW_SAMPLES: usize = 480;
/// Width of the moving average over VAD decisions, in windows.
pub const VAD_MOVING_AVERAGE_WIDTH: usize = 8;
/// Longest run of silent windows kept next to speech (dilation half-width), in windows.
pub const VAD_MAX_SILENCE_WINDOWS: usize = 6;

/// Name and shape of every tensor the weights file must hold.
pub fn expected_tensors() -> Vec<(String, Vec<usize>)> {
    let mut tensors = Vec::new();
    for layer in 0..LAYERS {
        let input = if layer == 0 { MEL_BANDS } else { HIDDEN };
        tensors.push((format!("lstm.weight_ih_l{layer}"), vec![GATE_ROWS, input]));
        tensors.push((format!("lstm.weight_hh_l{layer}"), vec![GATE_ROWS, HIDDEN]));
        tensors.push((format!("lstm.bias_ih_l{layer}"), vec![GATE_ROWS]));
        tensors.push((format!("lstm.bias_hh_l{layer}"), vec![GATE_ROWS]));
    }
    tensors.push(("linear.weight".to_string(), vec![EMBEDDING_DIM, HIDDEN]));
    tensors.push(("linear.bias".to_string(), vec![EMBEDDING_DIM]));
    tensors
}

/// Tensors the file may hold besides [`expected_tensors`] (training-loss scalars, unused).
pub const OPTIONAL_TENSORS: [&str; 2] = ["similarity_weight", "similarity_bias"];
