//! Versioned, checksummed model files: one container format for every quivox model (UBM,
//! speaker GMMs, i-vector extractor, PLDA, calibration, ...).
//!
//! Layout (all integers little-endian):
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 4 | magic `QVXM` |
//! | 4 | 4 | format version (u32, currently [`FORMAT_VERSION`]) |
//! | 8 | 4 | header length H (u32, bytes) |
//! | 12 | 8 | payload length P (u64, bytes) |
//! | 20 | H | header: UTF-8 JSON of [`ModelHeader`] (kind, front-end fingerprint, metadata, section table) |
//! | 20 + H | P | payload: the sections, at the offsets given in the section table |
//! | 20 + H + P | 32 | SHA-256 of every preceding byte |
//!
//! Sections are either postcard-encoded serde values or raw little-endian f32/f64 arrays with a
//! shape (fast to load for big tensors). Loading checks, in order: length, magic, version, exact
//! length, checksum, header, kind, front-end fingerprint — each failure a distinct
//! [`ModelIoError`].
//!
//! ```
//! use quivox::model_io::{FrontEndCheck, FrontEndFingerprint, ModelFile, ModelWriter};
//! let fp = FrontEndFingerprint::new("mfcc", &serde_json::json!({"num_ceps": 20})).unwrap();
//! let mut w = ModelWriter::new("example");
//! w.set_front_end(Some(fp.clone()));
//! w.add_f32("weights", &[2], &[0.25, 0.75]).unwrap();
//! let bytes = w.to_bytes().unwrap();
//! let file = ModelFile::from_bytes(&bytes, "example", FrontEndCheck::Require(&fp)).unwrap();
//! assert_eq!(file.f32_section("weights").unwrap(), (vec![2], vec![0.25, 0.75]));
//! ```

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The 4 magic bytes every quivox model file starts with.
pub const MAGIC: [u8; 4] = *b"QVXM";
/// The container format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the header: magic, version, header length, payload length.
const PREFIX_LEN: usize = 20;
/// SHA-256 digest length in bytes.
const CHECKSUM_LEN: usize = 32;

/// Kind tags used by quivox's own models (any non-empty string is accepted).
pub mod kinds {
    /// Universal background model (diagonal GMM).
    pub const UBM: &str = "ubm";
    /// MAP-adapted speaker GMM.
    pub const SPEAKER_GMM: &str = "speaker-gmm";
    /// Total-variability (i-vector) extractor.
    pub const IVECTOR_EXTRACTOR: &str = "ivector-extractor";
    /// PLDA back end.
    pub const PLDA: &str = "plda";
    /// Score calibration.
    pub const CALIBRATION: &str = "calibration";
    /// Other scoring back ends (LDA/WCCN, score normalisation, fusion).
    pub const BACKEND: &str = "backend";
    /// Neural speaker encoder weights.
    pub const SPEAKER_ENCODER: &str = "speaker-encoder";
}

/// Identifies the feature front end a model was trained with: a name and the front end's
/// options serialised as JSON (kept as a string so this module does not depend on the
/// features module). Two fingerprints match when both fields are equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontEndFingerprint {
    /// Front-end name, e.g. `"mfcc-20+d+dd-cmn"`.
    pub name: String,
    /// The options struct, serialised with `serde_json` (canonical field order of the struct).
    pub options_json: String,
}

impl FrontEndFingerprint {
    /// Fingerprint from a name and any serialisable options struct.
    pub fn new<T: Serialize + ?Sized>(name: &str, options: &T) -> Result<Self, ModelIoError> {
        let options_json = serde_json::to_string(options).map_err(|e| ModelIoError::Encode {
            section: "front-end options".into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            name: name.to_owned(),
            options_json,
        })
    }
}

impl fmt::Display for FrontEndFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.options_json)
    }
}

/// How a section's bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SectionEncoding {
    /// A serde value encoded with postcard.
    Postcard,
    /// Raw little-endian f32 values; `shape` gives the dimensions (row-major).
    F32Le,
    /// Raw little-endian f64 values; `shape` gives the dimensions (row-major).
    F64Le,
    /// Opaque bytes.
    Bytes,
}

/// One entry of the section table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionInfo {
    /// Section name, unique within the file.
    pub name: String,
    /// Encoding of the bytes.
    pub encoding: SectionEncoding,
    /// Array shape (row-major) for `F32Le`/`F64Le`; empty otherwise.
    pub shape: Vec<u64>,
    /// Offset from the start of the payload, bytes.
    pub offset: u64,
    /// Length, bytes.
    pub len: u64,
}

/// The JSON header of a model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelHeader {
    /// What the file holds (see [`kinds`]).
    pub kind: String,
    /// Front end the model was trained with, if it depends on one.
    pub front_end: Option<FrontEndFingerprint>,
    /// Free-form metadata (training data, command line, ...).
    pub metadata: serde_json::Value,
    /// The section table.
    pub sections: Vec<SectionInfo>,
    /// Name and version of the writer, e.g. `quivox 0.1.0`.
    pub writer: String,
}

/// What [`ModelFile::from_bytes`] requires of the file's front-end fingerprint.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum FrontEndCheck<'a> {
    /// The file must carry exactly this fingerprint.
    Require(&'a FrontEndFingerprint),
    /// Accept any fingerprint, or none (for models that do not depend on features).
    Ignore,
}

/// Errors reading or writing model files.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ModelIoError {
    /// The file could not be read or written.
    #[error("model file {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file does not start with `QVXM`.
    #[error("not a quivox model file: magic bytes {found:02x?}, expected \"QVXM\"")]
    BadMagic {
        /// The first 4 bytes found.
        found: [u8; 4],
    },
    /// The container format version is not supported by this build.
    #[error("model file format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },
    /// The file is shorter than its declared lengths.
    #[error("model file truncated: {actual} bytes, expected {expected}")]
    Truncated {
        /// Bytes expected.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The file is longer than its declared lengths.
    #[error("model file has trailing data: {actual} bytes, expected {expected}")]
    TrailingBytes {
        /// Bytes expected.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The SHA-256 over header and payload does not match: the file is corrupted.
    #[error("model file checksum mismatch: stored SHA-256 {stored}, computed {computed} (file corrupted)")]
    ChecksumMismatch {
        /// Digest stored in the file (hex).
        stored: String,
        /// Digest of the content (hex).
        computed: String,
    },
    /// The header is not valid JSON of the expected structure.
    #[error("model file header invalid: {0}")]
    Header(String),
    /// The file holds another kind of model.
    #[error("model file holds a {found:?} model; expected {expected:?}")]
    WrongKind {
        /// Kind requested by the caller.
        expected: String,
        /// Kind in the file.
        found: String,
    },
    /// The model was trained with another feature front end.
    #[error("model was trained with front end {found}; expected {expected}")]
    FrontEndMismatch {
        /// Fingerprint required by the caller.
        expected: Box<FrontEndFingerprint>,
        /// Fingerprint in the file (`"none"` if absent).
        found: String,
    },
    /// A section the reader needs is absent.
    #[error("model file has no section {name:?}")]
    MissingSection {
        /// Section name.
        name: String,
    },
    /// A section name was used twice by the writer.
    #[error("duplicate section {name:?}")]
    DuplicateSection {
        /// Section name.
        name: String,
    },
    /// A section is stored with another encoding than the reader expects.
    #[error("section {name:?} is encoded as {found:?}; expected {expected:?}")]
    SectionEncoding {
        /// Section name.
        name: String,
        /// Encoding the reader asked for.
        expected: SectionEncoding,
        /// Encoding in the file.
        found: SectionEncoding,
    },
    /// A section's shape, length or position is inconsistent.
    #[error("section {name:?}: {detail}")]
    SectionLayout {
        /// Section name.
        name: String,
        /// What is inconsistent.
        detail: String,
    },
    /// A value could not be serialised.
    #[error("cannot encode {section}: {message}")]
    Encode {
        /// Section or item.
        section: String,
        /// Encoder message.
        message: String,
    },
    /// A postcard section could not be decoded.
    #[error("cannot decode section {section:?}: {message}")]
    Decode {
        /// Section name.
        section: String,
        /// Decoder message.
        message: String,
    },
    /// The sections decode but do not form a valid model.
    #[error("invalid {kind} model: {message}")]
    InvalidModel {
        /// Model kind.
        kind: String,
        /// What is wrong.
        message: String,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds a model file: header fields and sections, then [`ModelWriter::to_bytes`] or
/// [`ModelWriter::save`].
#[derive(Debug, Clone)]
pub struct ModelWriter {
    kind: String,
    front_end: Option<FrontEndFingerprint>,
    metadata: serde_json::Value,
    sections: Vec<SectionInfo>,
    payload: Vec<u8>,
}

impl ModelWriter {
    /// A writer for a model of kind `kind` (see [`kinds`]).
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            front_end: None,
            metadata: serde_json::Value::Null,
            sections: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// Sets the front-end fingerprint stored in the header.
    pub fn set_front_end(&mut self, front_end: Option<FrontEndFingerprint>) {
        self.front_end = front_end;
    }

    /// Sets the free-form metadata stored in the header.
    pub fn set_metadata(&mut self, metadata: serde_json::Value) {
        self.metadata = metadata;
    }

    fn push(
        &mut self,
        name: &str,
        encoding: SectionEncoding,
        shape: Vec<u64>,
        bytes: &[u8],
    ) -> Result<(), ModelIoError> {
        if self.sections.iter().any(|s| s.name == name) {
            return Err(ModelIoError::DuplicateSection {
                name: name.to_owned(),
            });
        }
        self.sections.push(SectionInfo {
            name: name.to_owned(),
            encoding,
            shape,
            offset: self.payload.len() as u64,
            len: bytes.len() as u64,
        });
        self.payload.extend_from_slice(bytes);
        Ok(())
    }

    /// Adds a serde value, postcard-encoded.
    pub fn add_postcard<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<(), ModelIoError> {
        let bytes = postcard::to_stdvec(value).map_err(|e| ModelIoError::Encode {
            section: name.to_owned(),
            message: e.to_string(),
        })?;
        self.push(name, SectionEncoding::Postcard, Vec::new(), &bytes)
    }

    fn check_shape(name: &str, shape: &[usize], len: usize) -> Result<Vec<u64>, ModelIoError> {
        let count = shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        if count != Some(len) {
            return Err(ModelIoError::SectionLayout {
                name: name.to_owned(),
                detail: format!("shape {shape:?} does not hold {len} values"),
            });
        }
        Ok(shape.iter().map(|&d| d as u64).collect())
    }

    /// Adds a row-major f32 array of shape `shape` as raw little-endian bytes.
    pub fn add_f32(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
    ) -> Result<(), ModelIoError> {
        let shape = Self::check_shape(name, shape, data.len())?;
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, SectionEncoding::F32Le, shape, &bytes)
    }

    /// Adds a row-major f64 array of shape `shape` as raw little-endian bytes.
    pub fn add_f64(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f64],
    ) -> Result<(), ModelIoError> {
        let shape = Self::check_shape(name, shape, data.len())?;
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, SectionEncoding::F64Le, shape, &bytes)
    }

    /// Adds opaque bytes.
    pub fn add_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<(), ModelIoError> {
        self.push(name, SectionEncoding::Bytes, Vec::new(), bytes)
    }

    /// The complete file contents.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelIoError> {
        let header = ModelHeader {
            kind: self.kind.clone(),
            front_end: self.front_end.clone(),
            metadata: self.metadata.clone(),
            sections: self.sections.clone(),
            writer: format!("quivox {}", env!("CARGO_PKG_VERSION")),
        };
        let header_json = serde_json::to_vec(&header).map_err(|e| ModelIoError::Encode {
            section: "header".into(),
            message: e.to_string(),
        })?;
        let header_len = u32::try_from(header_json.len()).map_err(|_| ModelIoError::Encode {
            section: "header".into(),
            message: format!("{} bytes exceeds the u32 limit", header_json.len()),
        })?;
        let mut out =
            Vec::with_capacity(PREFIX_LEN + header_json.len() + self.payload.len() + CHECKSUM_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&header_len.to_le_bytes());
        out.extend_from_slice(&(self.payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&header_json);
        out.extend_from_slice(&self.payload);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Writes the file to `path` atomically (temporary file in the same directory, then rename).
    pub fn save(&self, path: &Path) -> Result<(), ModelIoError> {
        let bytes = self.to_bytes()?;
        let io_err = |source| ModelIoError::Io {
            path: path.to_owned(),
            source,
        };
        let mut tmp_name = path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io_err)
    }
}

/// A verified model file: header and payload, with typed section accessors.
#[derive(Debug, Clone)]
pub struct ModelFile {
    header: ModelHeader,
    payload: Vec<u8>,
}

impl ModelFile {
    /// Parses and verifies `bytes`: magic, version, lengths, SHA-256, header, kind (must equal
    /// `kind`) and front-end fingerprint.
    pub fn from_bytes(
        bytes: &[u8],
        kind: &str,
        front_end: FrontEndCheck<'_>,
    ) -> Result<Self, ModelIoError> {
        let actual = bytes.len() as u64;
        if bytes.len() < 4 {
            return Err(ModelIoError::Truncated {
                expected: (PREFIX_LEN + CHECKSUM_LEN) as u64,
                actual,
            });
        }
        let magic: [u8; 4] = bytes[..4].try_into().unwrap_or([0; 4]);
        if magic != MAGIC {
            return Err(ModelIoError::BadMagic { found: magic });
        }
        if bytes.len() < PREFIX_LEN + CHECKSUM_LEN {
            return Err(ModelIoError::Truncated {
                expected: (PREFIX_LEN + CHECKSUM_LEN) as u64,
                actual,
            });
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let version = u32_at(4);
        if version != FORMAT_VERSION {
            return Err(ModelIoError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let header_len = u32_at(8) as u64;
        let mut payload_len_bytes = [0u8; 8];
        payload_len_bytes.copy_from_slice(&bytes[12..20]);
        let payload_len = u64::from_le_bytes(payload_len_bytes);
        let expected = (PREFIX_LEN as u64 + CHECKSUM_LEN as u64)
            .checked_add(header_len)
            .and_then(|v| v.checked_add(payload_len))
            .unwrap_or(u64::MAX);
        if actual < expected {
            return Err(ModelIoError::Truncated { expected, actual });
        }
        if actual > expected {
            return Err(ModelIoError::TrailingBytes { expected, actual });
        }
        let body_end = bytes.len() - CHECKSUM_LEN;
        let computed = Sha256::digest(&bytes[..body_end]);
        let stored = &bytes[body_end..];
        if computed.as_slice() != stored {
            return Err(ModelIoError::ChecksumMismatch {
                stored: hex(stored),
                computed: hex(&computed),
            });
        }
        let header_end = PREFIX_LEN + header_len as usize;
        let header: ModelHeader = serde_json::from_slice(&bytes[PREFIX_LEN..header_end])
            .map_err(|e| ModelIoError::Header(e.to_string()))?;
        if header.kind != kind {
            return Err(ModelIoError::WrongKind {
                expected: kind.to_owned(),
                found: header.kind,
            });
        }
        if let FrontEndCheck::Require(want) = front_end {
            if header.front_end.as_ref() != Some(want) {
                return Err(ModelIoError::FrontEndMismatch {
                    expected: Box::new(want.clone()),
                    found: header
                        .front_end
                        .as_ref()
                        .map_or_else(|| "none".to_owned(), |f| f.to_string()),
                });
            }
        }
        for (i, s) in header.sections.iter().enumerate() {
            if s.offset
                .checked_add(s.len)
                .is_none_or(|end| end > payload_len)
            {
                return Err(ModelIoError::SectionLayout {
                    name: s.name.clone(),
                    detail: format!(
                        "bytes {}..+{} outside the {payload_len}-byte payload",
                        s.offset, s.len
                    ),
                });
            }
            if header.sections[..i].iter().any(|o| o.name == s.name) {
                return Err(ModelIoError::DuplicateSection {
                    name: s.name.clone(),
                });
            }
        }
        Ok(ModelFile {
            header,
            payload: bytes[header_end..body_end].to_vec(),
        })
    }

    /// Reads and verifies the file at `path` (see [`ModelFile::from_bytes`]).
    pub fn load(
        path: &Path,
        kind: &str,
        front_end: FrontEndCheck<'_>,
    ) -> Result<Self, ModelIoError> {
        let bytes = std::fs::read(path).map_err(|source| ModelIoError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes, kind, front_end)
    }

    /// The header.
    pub fn header(&self) -> &ModelHeader {
        &self.header
    }

    /// The section table entry called `name`.
    pub fn section(&self, name: &str) -> Result<&SectionInfo, ModelIoError> {
        self.header
            .sections
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ModelIoError::MissingSection {
                name: name.to_owned(),
            })
    }

    fn section_bytes(
        &self,
        name: &str,
        encoding: SectionEncoding,
    ) -> Result<(&SectionInfo, &[u8]), ModelIoError> {
        let info = self.section(name)?;
        if info.encoding != encoding {
            return Err(ModelIoError::SectionEncoding {
                name: name.to_owned(),
                expected: encoding,
                found: info.encoding,
            });
        }
        // Bounds were checked when the file was parsed.
        let start = info.offset as usize;
        Ok((info, &self.payload[start..start + info.len as usize]))
    }

    /// Decodes the postcard section `name`.
    pub fn postcard<T: DeserializeOwned>(&self, name: &str) -> Result<T, ModelIoError> {
        let (_, bytes) = self.section_bytes(name, SectionEncoding::Postcard)?;
        postcard::from_bytes(bytes).map_err(|e| ModelIoError::Decode {
            section: name.to_owned(),
            message: e.to_string(),
        })
    }

    fn array<const N: usize, T>(
        &self,
        name: &str,
        encoding: SectionEncoding,
        decode: fn([u8; N]) -> T,
    ) -> Result<(Vec<usize>, Vec<T>), ModelIoError> {
        let (info, bytes) = self.section_bytes(name, encoding)?;
        let shape: Vec<usize> = info.shape.iter().map(|&d| d as usize).collect();
        let count = shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        if count.and_then(|c| c.checked_mul(N)) != Some(bytes.len()) {
            return Err(ModelIoError::SectionLayout {
                name: name.to_owned(),
                detail: format!("shape {shape:?} does not match {} bytes", bytes.len()),
            });
        }
        let values = bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                decode(a)
            })
            .collect();
        Ok((shape, values))
    }

    /// Decodes the f32 section `name`: (shape, row-major values).
    pub fn f32_section(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ModelIoError> {
        self.array(name, SectionEncoding::F32Le, f32::from_le_bytes)
    }

    /// Decodes the f64 section `name`: (shape, row-major values).
    pub fn f64_section(&self, name: &str) -> Result<(Vec<usize>, Vec<f64>), ModelIoError> {
        self.array(name, SectionEncoding::F64Le, f64::from_le_bytes)
    }

    /// The bytes of the opaque section `name`.
    pub fn bytes_section(&self, name: &str) -> Result<&[u8], ModelIoError> {
        Ok(self.section_bytes(name, SectionEncoding::Bytes)?.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(num_ceps: u32) -> FrontEndFingerprint {
        FrontEndFingerprint::new(
            "mfcc",
            &serde_json::json!({ "num_ceps": num_ceps, "deltas": true }),
        )
        .unwrap()
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Params {
        name: String,
        scale: f64,
        ids: Vec<u32>,
    }

    fn sample_file() -> Vec<u8> {
        let mut w = ModelWriter::new("plda");
        w.set_front_end(Some(fingerprint(20)));
        w.set_metadata(serde_json::json!({ "trained_on": "background", "frames": 12345 }));
        w.add_postcard(
            "params",
            &Params {
                name: "x".into(),
                scale: 0.5,
                ids: vec![1, 2, 3],
            },
        )
        .unwrap();
        let big: Vec<f32> = (0..600).map(|i| i as f32 * 0.25 - 7.0).collect();
        w.add_f32("matrix", &[20, 30], &big).unwrap();
        w.add_f64("vector", &[3], &[1.0, -2.5, 1e300]).unwrap();
        w.add_bytes("blob", b"opaque").unwrap();
        w.to_bytes().unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = sample_file();
        let f = ModelFile::from_bytes(&bytes, "plda", FrontEndCheck::Require(&fingerprint(20)))
            .unwrap();
        assert_eq!(f.header().kind, "plda");
        assert_eq!(f.header().metadata["frames"], 12345);
        let p: Params = f.postcard("params").unwrap();
        assert_eq!(p.ids, vec![1, 2, 3]);
        let (shape, m) = f.f32_section("matrix").unwrap();
        assert_eq!(shape, vec![20, 30]);
        assert_eq!(m[599], 599.0 * 0.25 - 7.0);
        assert_eq!(f.f64_section("vector").unwrap().1, vec![1.0, -2.5, 1e300]);
        assert_eq!(f.bytes_section("blob").unwrap(), b"opaque");
        assert!(matches!(
            f.postcard::<Params>("nope"),
            Err(ModelIoError::MissingSection { .. })
        ));
        assert!(matches!(
            f.f32_section("vector"),
            Err(ModelIoError::SectionEncoding { .. })
        ));
        // Front end not checked.
        assert!(ModelFile::from_bytes(&bytes, "plda", FrontEndCheck::Ignore).is_ok());
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let bytes = sample_file();
        let header_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let err = ModelFile::from_bytes(&bad, "plda", FrontEndCheck::Ignore).unwrap_err();
            match i {
                0..=3 => assert!(
                    matches!(err, ModelIoError::BadMagic { .. }),
                    "byte {i}: {err}"
                ),
                4..=7 => assert!(
                    matches!(err, ModelIoError::UnsupportedVersion { .. }),
                    "byte {i}: {err}"
                ),
                8..=19 => assert!(
                    matches!(
                        err,
                        ModelIoError::Truncated { .. } | ModelIoError::TrailingBytes { .. }
                    ),
                    "byte {i}: {err}"
                ),
                _ => assert!(
                    matches!(err, ModelIoError::ChecksumMismatch { .. }),
                    "byte {i} (header {header_len}): {err}"
                ),
            }
        }
    }

    #[test]
    fn truncated_or_extended_files_are_refused() {
        let bytes = sample_file();
        for len in [0, 3, 4, 19, 40, bytes.len() / 2, bytes.len() - 1] {
            let err =
                ModelFile::from_bytes(&bytes[..len], "plda", FrontEndCheck::Ignore).unwrap_err();
            assert!(
                matches!(err, ModelIoError::Truncated { .. }),
                "len {len}: {err}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            ModelFile::from_bytes(&longer, "plda", FrontEndCheck::Ignore),
            Err(ModelIoError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn wrong_version_kind_or_front_end_is_refused() {
        let bytes = sample_file();
        let mut v2 = bytes.clone();
        v2[4..8].copy_from_slice(&2u32.to_le_bytes());
        assert!(matches!(
            ModelFile::from_bytes(&v2, "plda", FrontEndCheck::Ignore),
            Err(ModelIoError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        ));
        assert!(matches!(
            ModelFile::from_bytes(&bytes, "ubm", FrontEndCheck::Ignore),
            Err(ModelIoError::WrongKind { .. })
        ));
        let err = ModelFile::from_bytes(&bytes, "plda", FrontEndCheck::Require(&fingerprint(13)))
            .unwrap_err();
        assert!(matches!(err, ModelIoError::FrontEndMismatch { .. }));
        assert!(err.to_string().contains("num_ceps"), "{err}");
        // A file without a fingerprint does not satisfy a required one.
        let bare = ModelWriter::new("plda").to_bytes().unwrap();
        assert!(matches!(
            ModelFile::from_bytes(&bare, "plda", FrontEndCheck::Require(&fingerprint(20))),
            Err(ModelIoError::FrontEndMismatch { .. })
        ));
        assert!(matches!(
            ModelFile::from_bytes(b"RIFF....", "plda", FrontEndCheck::Ignore),
            Err(ModelIoError::BadMagic { .. })
        ));
    }

    #[test]
    fn writer_validates_sections() {
        let mut w = ModelWriter::new("x");
        assert!(matches!(
            w.add_f32("a", &[2, 2], &[1.0; 3]),
            Err(ModelIoError::SectionLayout { .. })
        ));
        w.add_bytes("a", b"1").unwrap();
        assert!(matches!(
            w.add_bytes("a", b"2"),
            Err(ModelIoError::DuplicateSection { .. })
        ));
    }

    #[test]
    fn save_and_load_through_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.qvx");
        let mut w = ModelWriter::new("backend");
        w.add_f32("w", &[2], &[1.0, 2.0]).unwrap();
        w.save(&path).unwrap();
        let f = ModelFile::load(&path, "backend", FrontEndCheck::Ignore).unwrap();
        assert_eq!(f.f32_section("w").unwrap().1, vec![1.0, 2.0]);
        let missing = ModelFile::load(&dir.path().join("absent"), "backend", FrontEndCheck::Ignore);
        assert!(matches!(missing, Err(ModelIoError::Io { .. })));
    }
}
