//! The neural-embedding system: GE2E utterance embeddings (256-d, [`crate::embedding`]) scored
//! with a PLDA back end ([`VectorBackend`]: centring, LDA, WCCN, length norm, PLDA, S-norm) or
//! by cosine similarity, each with a duration-aware calibration to natural-log LRs.
//!
//! Embeddings are handled as *partial sums*: the sum of an utterance's L2-normalised partial-window
//! embeddings and their count ([`EmbeddingSum`]). Sums of several files add, and the utterance
//! embedding is the normalised sum, exactly as the embedder averages the partials of one call.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ivector_system::{BackendError, VectorBackend, VectorEnrollment};
use crate::embedding::arch::EMBEDDING_DIM;
use crate::embedding::UtteranceEmbedding;
use crate::engine::voice::DurationCalibration;
use crate::model_io::{FrontEndCheck, FrontEndFingerprint, ModelFile, ModelIoError, ModelWriter};

/// Sum of the partial-window embeddings of one or more utterances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingSum {
    /// Σ of the L2-normalised partial embeddings (length 256).
    pub sum: Vec<f32>,
    /// Number of partial windows summed.
    pub partials: usize,
    /// Speech behind the embedding, in 10-ms frames (16 kHz samples that reached the encoder / 160).
    pub frames: usize,
}

impl EmbeddingSum {
    /// An empty sum (no speech).
    pub fn zeros() -> Self {
        Self {
            sum: vec![0.0; EMBEDDING_DIM],
            partials: 0,
            frames: 0,
        }
    }

    /// The sum of one embedded utterance.
    pub fn from_utterance(u: &UtteranceEmbedding) -> Self {
        let mut s = Self::zeros();
        for p in u.partials.chunks_exact(EMBEDDING_DIM) {
            s.sum.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        s.partials = u.partial_count();
        s.frames = u.speech_samples_16k / 160;
        s
    }

    /// Adds another sum (e.g. the next file of an enrollment).
    pub fn add(&mut self, other: &EmbeddingSum) {
        self.sum
            .iter_mut()
            .zip(&other.sum)
            .for_each(|(a, b)| *a += b);
        self.partials += other.partials;
        self.frames += other.frames;
    }

    /// The L2-normalised mean embedding (f64); zero when nothing was summed.
    pub fn embedding(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.sum.iter().map(|&x| x as f64).collect();
        crate::ivector::length_normalize(&mut v, 1.0);
        v
    }
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na > 0.0 && nb > 0.0 {
        dot / (na * nb)
    } else {
        0.0
    }
}

/// An enrolled speaker of the embedding system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingEnrollment {
    /// Normalised mean embedding of the enrollment material (for cosine scoring).
    pub embedding: Vec<f64>,
    /// PLDA back-end enrollment.
    pub vector: VectorEnrollment,
    /// Speech frames behind the enrollment.
    pub frames: usize,
}

/// GE2E embeddings with a PLDA back end and a cosine alternative. The encoder itself is not part
/// of this model (its weights ship separately, see `models/README.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingPldaSystem {
    /// Post-processing and PLDA over embeddings.
    pub backend: VectorBackend,
    /// Calibration of PLDA (S-normalised) scores given the test's speech frames, if trained.
    pub calibration: Option<DurationCalibration>,
    /// Calibration of cosine scores given the test's speech frames, if trained.
    pub cosine_calibration: Option<DurationCalibration>,
}

impl EmbeddingPldaSystem {
    /// Enrols a speaker from the embedding sums of one or more sessions (each embedded as its
    /// normalised mean; several sessions are averaged in PLDA space).
    pub fn enroll(&self, sessions: &[EmbeddingSum]) -> Result<EmbeddingEnrollment, BackendError> {
        if sessions.is_empty() {
            return Err(BackendError::Shape {
                what: "enrollment sessions",
                expected: 1,
                got: 0,
            });
        }
        let mut total = EmbeddingSum::zeros();
        for s in sessions {
            total.add(s);
        }
        let vectors: Vec<Vec<f64>> = sessions.iter().map(EmbeddingSum::embedding).collect();
        Ok(EmbeddingEnrollment {
            embedding: total.embedding(),
            vector: self.backend.enroll(&vectors)?,
            frames: total.frames,
        })
    }

    /// Raw PLDA (S-normalised when the back end has a cohort) scores against every enrollment.
    pub fn raw_scores(
        &self,
        test: &EmbeddingSum,
        enrollments: &[EmbeddingEnrollment],
    ) -> Result<Vec<f64>, BackendError> {
        let e: Vec<VectorEnrollment> = enrollments.iter().map(|e| e.vector.clone()).collect();
        self.backend.score(&test.embedding(), &e)
    }

    /// Cosine similarities against every enrollment.
    pub fn cosine_scores(
        &self,
        test: &EmbeddingSum,
        enrollments: &[EmbeddingEnrollment],
    ) -> Vec<f64> {
        let t = test.embedding();
        enrollments
            .iter()
            .map(|e| cosine(&e.embedding, &t))
            .collect()
    }

    /// Calibrated PLDA LLRs (nats) against every enrollment (raw scores when uncalibrated).
    pub fn score(
        &self,
        test: &EmbeddingSum,
        enrollments: &[EmbeddingEnrollment],
    ) -> Result<Vec<f64>, BackendError> {
        let raw = self.raw_scores(test, enrollments)?;
        Ok(raw
            .into_iter()
            .map(|s| {
                self.calibration
                    .as_ref()
                    .map_or(s, |c| c.apply(s, test.frames))
            })
            .collect())
    }

    /// Calibrated cosine LLRs (nats) against every enrollment (raw cosines when uncalibrated).
    pub fn score_cosine(
        &self,
        test: &EmbeddingSum,
        enrollments: &[EmbeddingEnrollment],
    ) -> Vec<f64> {
        self.cosine_scores(test, enrollments)
            .into_iter()
            .map(|s| {
                self.cosine_calibration
                    .as_ref()
                    .map_or(s, |c| c.apply(s, test.frames))
            })
            .collect()
    }
}

/// Model-file kind of a saved [`EmbeddingPldaSystem`].
pub const EMBEDDING_PLDA_SYSTEM_KIND: &str = "embedding-plda-system";
/// Name under which the embedding front end (encoder weights and preprocessing) is fingerprinted.
pub const EMBEDDER_FRONT_END_NAME: &str = "quivox-ge2e-embedder";

/// The fingerprint an embedding back end carries: the SHA-256 (hex) of the encoder weights file
/// the embeddings came from and whether the waveform was preprocessed (volume normalisation,
/// trimming). A back end trained on other embeddings is refused at load time.
pub fn embedder_fingerprint(
    weights_sha256: &str,
    preprocess: bool,
) -> Result<FrontEndFingerprint, ModelIoError> {
    FrontEndFingerprint::new(
        EMBEDDER_FRONT_END_NAME,
        &serde_json::json!({ "encoder_weights_sha256": weights_sha256, "preprocess": preprocess }),
    )
}

/// SHA-256 (lower-case hex) of a file, e.g. the encoder weights.
pub fn file_sha256(path: &Path) -> Result<String, ModelIoError> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|source| ModelIoError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl EmbeddingPldaSystem {
    /// Saves the back end (postcard sections) with the fingerprint of the embeddings it was
    /// trained on (see [`embedder_fingerprint`]).
    pub fn save(&self, path: &Path, embedder: &FrontEndFingerprint) -> Result<(), ModelIoError> {
        let mut w = ModelWriter::new(EMBEDDING_PLDA_SYSTEM_KIND);
        w.set_front_end(Some(embedder.clone()));
        w.add_postcard("backend", &self.backend)?;
        w.add_postcard("calibration", &self.calibration)?;
        w.add_postcard("cosine_calibration", &self.cosine_calibration)?;
        w.set_metadata(serde_json::json!({
            "embedding_dim": self.backend.in_dim(),
            "plda_dim": self.backend.plda_dim(),
            "calibrated": self.calibration.is_some(),
        }));
        w.save(path)
    }

    /// Loads a back end saved by [`EmbeddingPldaSystem::save`], refusing it unless its
    /// fingerprint equals `embedder` (same encoder weights and preprocessing).
    pub fn load(path: &Path, embedder: &FrontEndFingerprint) -> Result<Self, ModelIoError> {
        let file = ModelFile::load(
            path,
            EMBEDDING_PLDA_SYSTEM_KIND,
            FrontEndCheck::Require(embedder),
        )?;
        let backend: VectorBackend = file.postcard("backend")?;
        if backend.in_dim() != EMBEDDING_DIM {
            return Err(ModelIoError::InvalidModel {
                kind: EMBEDDING_PLDA_SYSTEM_KIND.to_owned(),
                message: format!(
                    "back end takes {}-dimensional vectors; expected {EMBEDDING_DIM}",
                    backend.in_dim()
                ),
            });
        }
        Ok(Self {
            backend,
            calibration: file.postcard("calibration")?,
            cosine_calibration: file.postcard("cosine_calibration")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ivector_system::BackendOptions;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    /// A synthetic "utterance": `partials` unit vectors around the speaker's direction.
    fn sum(center: &[f64], partials: usize, rng: &mut rand_chacha::ChaCha8Rng) -> EmbeddingSum {
        let n = Normal::new(0.0, 0.05).unwrap();
        let mut s = EmbeddingSum::zeros();
        for _ in 0..partials {
            let mut p: Vec<f64> = center.iter().map(|c| c + n.sample(rng)).collect();
            crate::ivector::length_normalize(&mut p, 1.0);
            s.sum.iter_mut().zip(&p).for_each(|(a, b)| *a += *b as f32);
        }
        s.partials = partials;
        s.frames = partials * 77;
        s
    }

    #[test]
    fn sums_add_like_concatenated_partials() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let c: Vec<f64> = (0..EMBEDDING_DIM).map(|i| (i % 3) as f64).collect();
        let a = sum(&c, 3, &mut rng);
        let b = sum(&c, 2, &mut rng);
        let mut ab = a.clone();
        ab.add(&b);
        assert_eq!(ab.partials, 5);
        for k in 0..EMBEDDING_DIM {
            assert!((ab.sum[k] - a.sum[k] - b.sum[k]).abs() < 1e-6);
        }
        let e = ab.embedding();
        assert!((e.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 2.0]), 0.0);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn synthetic_embedding_system_separates_targets_and_round_trips() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let n = Normal::new(0.0, 0.1).unwrap();
        let centers: Vec<Vec<f64>> = (0..40)
            .map(|_| (0..EMBEDDING_DIM).map(|_| n.sample(&mut rng)).collect())
            .collect();
        let (mut train, mut labels) = (Vec::new(), Vec::new());
        for (s, c) in centers.iter().enumerate().take(30) {
            for _ in 0..14 {
                train.push(sum(c, 3, &mut rng).embedding());
                labels.push(s);
            }
        }
        // Dead dimensions (always zero, like ReLU units that never fire) make the within-class
        // covariance singular; PCA drops them.
        for v in &mut train {
            v[200..].iter_mut().for_each(|x| *x = 0.0);
        }
        let opts = BackendOptions {
            pca_dim: Some(250),
            lda_dim: Some(20),
            ..Default::default()
        };
        assert!(VectorBackend::train(
            &train,
            &labels,
            &BackendOptions {
                pca_dim: None,
                ..opts
            }
        )
        .is_err());
        let system = EmbeddingPldaSystem {
            backend: VectorBackend::train(&train, &labels, &opts).unwrap(),
            calibration: None,
            cosine_calibration: None,
        };
        assert_eq!(system.backend.pca.as_ref().map(|p| p.nrows()), Some(200));
        let held = &centers[30..];
        let enrollments: Vec<EmbeddingEnrollment> = held
            .iter()
            .map(|c| {
                system
                    .enroll(&[sum(c, 5, &mut rng), sum(c, 5, &mut rng)])
                    .unwrap()
            })
            .collect();
        for (i, c) in held.iter().enumerate() {
            let t = sum(c, 3, &mut rng);
            let plda = system.score(&t, &enrollments).unwrap();
            let cos = system.score_cosine(&t, &enrollments);
            let best = |v: &[f64]| {
                v.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap()
                    .0
            };
            assert_eq!(best(&plda), i, "PLDA scores {plda:?}");
            assert_eq!(best(&cos), i, "cosine scores {cos:?}");
        }
        let json = serde_json::to_string(&system).unwrap();
        let back: EmbeddingPldaSystem = serde_json::from_str(&json).unwrap();
        let t = sum(&held[0], 3, &mut rng);
        let a = system.score(&t, &enrollments).unwrap();
        let b = back.score(&t, &enrollments).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-9 * (1.0 + x.abs()));
        }
    }

    #[test]
    fn model_file_round_trips_and_refuses_other_embeddings_or_kinds() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let n = Normal::new(0.0, 0.1).unwrap();
        let (mut train, mut labels) = (Vec::new(), Vec::new());
        for s in 0..12 {
            let c: Vec<f64> = (0..EMBEDDING_DIM).map(|_| n.sample(&mut rng)).collect();
            for _ in 0..6 {
                train.push(sum(&c, 2, &mut rng).embedding());
                labels.push(s);
            }
        }
        let opts = BackendOptions {
            pca_dim: Some(40),
            lda_dim: Some(8),
            ..Default::default()
        };
        let system = EmbeddingPldaSystem {
            backend: VectorBackend::train(&train, &labels, &opts).unwrap(),
            calibration: Some(DurationCalibration {
                fusion: crate::calibration::Fusion {
                    weights: vec![1.5, 0.1, -0.2],
                    offset: 0.3,
                },
            }),
            cosine_calibration: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("emb.qvx");
        let fp = embedder_fingerprint("abc", true).unwrap();
        system.save(&path, &fp).unwrap();
        assert_eq!(EmbeddingPldaSystem::load(&path, &fp).unwrap(), system);
        // Embeddings of other encoder weights or without preprocessing: refused.
        for other in [
            embedder_fingerprint("abd", true).unwrap(),
            embedder_fingerprint("abc", false).unwrap(),
        ] {
            assert!(matches!(
                EmbeddingPldaSystem::load(&path, &other),
                Err(ModelIoError::FrontEndMismatch { .. })
            ));
        }
        // Another kind of model file: refused by kind.
        let mut w = ModelWriter::new("gmm-ubm-system");
        w.set_front_end(Some(fp.clone()));
        w.add_postcard("backend", &system.backend).unwrap();
        w.save(&path).unwrap();
        assert!(matches!(
            EmbeddingPldaSystem::load(&path, &fp),
            Err(ModelIoError::WrongKind { .. })
        ));
        // file_sha256 agrees with an independent digest of known bytes (FIPS 180-2 "abc").
        let abc = dir.path().join("abc");
        std::fs::write(&abc, b"abc").unwrap();
        assert_eq!(
            file_sha256(&abc).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
