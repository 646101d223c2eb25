//! Storing GMMs in quivox model files ([`crate::model_io`]).

use std::path::Path;

use super::model::DiagGmm;
use crate::model_io::{FrontEndCheck, FrontEndFingerprint, ModelFile, ModelIoError, ModelWriter};

impl DiagGmm {
    /// A model-file writer holding this GMM as raw f32 sections `weights` [C], `means` [C, D]
    /// and `inv_vars` [C, D], with kind `kind` (e.g. [`crate::model_io::kinds::UBM`]).
    pub fn to_model_writer(
        &self,
        kind: &str,
        front_end: Option<FrontEndFingerprint>,
    ) -> Result<ModelWriter, ModelIoError> {
        let (c, d) = (self.num_components(), self.dim());
        let mut w = ModelWriter::new(kind);
        w.set_front_end(front_end);
        w.add_f32("weights", &[c], self.weights())?;
        w.add_f32("means", &[c, d], self.means())?;
        w.add_f32("inv_vars", &[c, d], self.inv_vars())?;
        Ok(w)
    }

    /// Reads a GMM from a verified model file (sections as written by [`DiagGmm::to_model_writer`]).
    pub fn from_model_file(file: &ModelFile) -> Result<Self, ModelIoError> {
        let kind = file.header().kind.clone();
        let (w_shape, weights) = file.f32_section("weights")?;
        let (m_shape, means) = file.f32_section("means")?;
        let (v_shape, inv_vars) = file.f32_section("inv_vars")?;
        let invalid = |message: String| ModelIoError::InvalidModel {
            kind: kind.clone(),
            message,
        };
        if w_shape.len() != 1
            || m_shape.len() != 2
            || m_shape != v_shape
            || m_shape[0] != w_shape[0]
        {
            return Err(invalid(format!(
                "section shapes weights {w_shape:?}, means {m_shape:?}, inv_vars {v_shape:?}; expected [C], [C, D], [C, D]"
            )));
        }
        DiagGmm::from_inv_vars(m_shape[1], weights, means, inv_vars)
            .map_err(|e| invalid(e.to_string()))
    }

    /// Saves this GMM to `path` as a model file of kind `kind`.
    pub fn save(
        &self,
        path: &Path,
        kind: &str,
        front_end: Option<FrontEndFingerprint>,
    ) -> Result<(), ModelIoError> {
        self.to_model_writer(kind, front_end)?.save(path)
    }

    /// Loads a GMM of kind `kind` from `path`, verifying checksum, version and front end.
    pub fn load(
        path: &Path,
        kind: &str,
        front_end: FrontEndCheck<'_>,
    ) -> Result<Self, ModelIoError> {
        Self::from_model_file(&ModelFile::load(path, kind, front_end)?)
    }
}
