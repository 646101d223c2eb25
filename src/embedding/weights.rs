//! Loading the encoder weights from safetensors, checked against the architecture.

use std::collections::HashMap;
use std::path::Path;

use super::arch::{
    expected_tensors, EMBEDDING_DIM, GATE_ROWS, HIDDEN, LAYERS, MEL_BANDS, OPTIONAL_TENSORS,
};
use super::error::EmbeddingError;

/// Weights of one LSTM layer, PyTorch layout (gate rows i, f, g, o; row-major).
#[derive(Debug, Clone)]
pub struct LstmLayerWeights {
    /// Input size of the layer (40 for layer 0, 256 above).
    pub input_size: usize,
    /// Input-to-gates matrix, `GATE_ROWS × input_size`.
    pub weight_ih: Vec<f32>,
    /// Hidden-to-gates matrix, `GATE_ROWS × HIDDEN`.
    pub weight_hh: Vec<f32>,
    /// `bias_ih + bias_hh`, `GATE_ROWS`.
    pub bias: Vec<f32>,
}

/// All weights of the GE2E encoder: 3 LSTM layers and the output projection.
#[derive(Debug, Clone)]
pub struct EncoderWeights {
    /// LSTM layers, bottom first.
    pub layers: Vec<LstmLayerWeights>,
    /// Projection `EMBEDDING_DIM × HIDDEN`, row-major.
    pub linear_weight: Vec<f32>,
    /// Projection bias, `EMBEDDING_DIM`.
    pub linear_bias: Vec<f32>,
}

struct RawTensor<'a> {
    shape: Vec<usize>,
    bytes: &'a [u8],
}

fn format_err(msg: impl Into<String>) -> EmbeddingError {
    EmbeddingError::Format(msg.into())
}

/// Parses a safetensors file: `u64` little-endian header length, JSON header, raw data.
fn parse_safetensors(bytes: &[u8]) -> Result<HashMap<String, RawTensor<'_>>, EmbeddingError> {
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            format_err(format!(
                "{} bytes: expected at least an 8-byte header length",
                bytes.len()
            ))
        })?;
    let header_len = u64::from_le_bytes(len_bytes);
    let data_start = usize::try_from(header_len)
        .ok()
        .and_then(|len| len.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            format_err(format!(
                "header length {header_len} runs past the {}-byte file",
                bytes.len()
            ))
        })?;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..data_start])
        .map_err(|e| format_err(format!("header is not JSON: {e}")))?;
    let entries = header
        .as_object()
        .ok_or_else(|| format_err("header is not a JSON object"))?;
    let data = &bytes[data_start..];
    let mut tensors = HashMap::new();
    for (name, entry) in entries {
        if name == "__metadata__" {
            continue;
        }
        let dtype = entry["dtype"]
            .as_str()
            .ok_or_else(|| format_err(format!("tensor {name}: no dtype")))?;
        if dtype != "F32" {
            return Err(EmbeddingError::Dtype {
                name: name.clone(),
                found: dtype.to_string(),
            });
        }
        let shape = entry["shape"]
            .as_array()
            .ok_or_else(|| format_err(format!("tensor {name}: no shape")))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| format_err(format!("tensor {name}: shape is not a list of sizes")))?;
        let offsets = entry["data_offsets"]
            .as_array()
            .filter(|o| o.len() == 2)
            .and_then(|o| {
                Some((
                    usize::try_from(o[0].as_u64()?).ok()?,
                    usize::try_from(o[1].as_u64()?).ok()?,
                ))
            })
            .ok_or_else(|| {
                format_err(format!("tensor {name}: data_offsets is not [begin, end]"))
            })?;
        let (begin, end) = offsets;
        let numel: usize = shape.iter().product();
        if end < begin || end > data.len() || end - begin != numel * 4 {
            return Err(format_err(format!(
                "tensor {name}: data_offsets [{begin}, {end}] for shape {shape:?} (expected {} bytes within {})",
                numel * 4,
                data.len()
            )));
        }
        tensors.insert(
            name.clone(),
            RawTensor {
                shape,
                bytes: &data[begin..end],
            },
        );
    }
    Ok(tensors)
}

fn to_f32(name: &str, bytes: &[u8]) -> Result<Vec<f32>, EmbeddingError> {
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(EmbeddingError::NonFinite {
            name: name.to_string(),
            index,
        });
    }
    Ok(values)
}

impl EncoderWeights {
    /// Reads and checks a safetensors weights file (e.g. `models/speaker-encoder-ge2e.safetensors`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, EmbeddingError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| EmbeddingError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_safetensors(&bytes)
    }

    /// Parses safetensors bytes; refuses missing, unexpected, mis-shaped or non-F32 tensors,
    /// naming the tensor and both shapes.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, EmbeddingError> {
        let mut raw = parse_safetensors(bytes)?;
        let mut values: HashMap<String, Vec<f32>> = HashMap::new();
        for (name, expected) in expected_tensors() {
            let tensor = raw
                .remove(&name)
                .ok_or_else(|| EmbeddingError::MissingTensor {
                    name: name.clone(),
                    expected: expected.clone(),
                })?;
            if tensor.shape != expected {
                return Err(EmbeddingError::Shape {
                    name,
                    expected,
                    found: tensor.shape,
                });
            }
            values.insert(name.clone(), to_f32(&name, tensor.bytes)?);
        }
        if let Some((name, tensor)) = raw
            .iter()
            .find(|(name, _)| !OPTIONAL_TENSORS.contains(&name.as_str()))
        {
            return Err(EmbeddingError::UnexpectedTensor {
                name: name.clone(),
                found: tensor.shape.clone(),
            });
        }
        let mut take = |name: String| values.remove(&name).unwrap_or_default();
        let layers = (0..LAYERS)
            .map(|layer| {
                let bias_ih = take(format!("lstm.bias_ih_l{layer}"));
                let bias_hh = take(format!("lstm.bias_hh_l{layer}"));
                LstmLayerWeights {
                    input_size: if layer == 0 { MEL_BANDS } else { HIDDEN },
                    weight_ih: take(format!("lstm.weight_ih_l{layer}")),
                    weight_hh: take(format!("lstm.weight_hh_l{layer}")),
                    bias: bias_ih.iter().zip(&bias_hh).map(|(a, b)| a + b).collect(),
                }
            })
            .collect();
        let weights = EncoderWeights {
            layers,
            linear_weight: take("linear.weight".to_string()),
            linear_bias: take("linear.bias".to_string()),
        };
        debug_assert_eq!(weights.linear_weight.len(), EMBEDDING_DIM * HIDDEN);
        debug_assert!(weights.layers.iter().all(|l| l.bias.len() == GATE_ROWS));
        Ok(weights)
    }
}
