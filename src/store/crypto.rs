//! Encryption at rest of voiceprints and kept audio: XChaCha20-Poly1305 with a random 24-byte
//! nonce per blob, and additional authenticated data that binds each blob to its place.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::{StoreError, StoreResult};
use crate::engine::SpeakerId;

/// Length of a store key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the random nonce stored in front of every ciphertext, in bytes.
pub const NONCE_LEN: usize = 24;
/// Environment variable that may hold the store key as 64 hex digits.
pub const KEY_ENV_VAR: &str = "QUIVOX_STORE_KEY";

/// The 32-byte secret that encrypts every biometric blob in the store. Wiped from memory on drop;
/// its `Debug` shows only the fingerprint.
#[derive(Clone)]
pub struct StoreKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreKey(fingerprint {})", self.fingerprint())
    }
}

impl StoreKey {
    /// Wraps 32 raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A fresh random key from the operating system's generator (through `rand`'s thread RNG).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(bytes.as_mut());
        Self { bytes }
    }

    /// Parses 64 hex digits (surrounding whitespace ignored). `source_name` names where the text
    /// came from, for the error message; the text itself is never echoed.
    pub fn from_hex(text: &str, source_name: &str) -> StoreResult<Self> {
        let trimmed = text.trim();
        let invalid = |problem: String| StoreError::InvalidKey {
            source_name: source_name.to_string(),
            problem,
        };
        if trimmed.len() != 2 * KEY_LEN {
            return Err(invalid(format!(
                "{} characters: expected {} hex digits (32 bytes)",
                trimmed.len(),
                2 * KEY_LEN
            )));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(trimmed, bytes.as_mut())
            .map_err(|_| invalid("not hexadecimal: expected digits 0-9 and a-f".to_string()))?;
        Ok(Self { bytes })
    }

    /// Reads a key file holding 64 hex digits.
    pub fn from_file(path: &std::path::Path) -> StoreResult<Self> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| StoreError::Io {
                    context: format!("reading the store key file {}", path.display()),
                    source,
                })?,
            );
        Self::from_hex(&text, &path.display().to_string())
    }

    /// Reads the key from the environment variable [`KEY_ENV_VAR`] (`QUIVOX_STORE_KEY`).
    pub fn from_env() -> StoreResult<Self> {
        let text =
            Zeroizing::new(
                std::env::var(KEY_ENV_VAR).map_err(|_| StoreError::InvalidKey {
                    source_name: KEY_ENV_VAR.to_string(),
                    problem: "not set (or not Unicode): expected 64 hex digits".to_string(),
                })?,
            );
        Self::from_hex(&text, KEY_ENV_VAR)
    }

    /// A public fingerprint of the key: hex SHA-256 of a domain-separation constant followed by the
    /// key. Stored in the database so that opening with another key is refused before anything is
    /// written; it reveals nothing usable about the key.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"quivox-store key fingerprint v1\0");
        hasher.update(self.bytes.as_ref());
        hex::encode(&hasher.finalize()[..16])
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.bytes.as_ref()))
    }

    /// Encrypts `plaintext` bound to `place`; returns nonce ‖ ciphertext ‖ tag.
    pub(crate) fn seal(&self, place: &BlobPlace<'_>, plaintext: &[u8]) -> StoreResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = place.associated_data();
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Corrupt {
                detail: format!(
                    "encryption of a {}-byte blob failed (larger than the cipher allows)",
                    plaintext.len()
                ),
            })?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts a blob made by [`StoreKey::seal`] for the same `place`.
    pub(crate) fn open(&self, place: &BlobPlace<'_>, sealed: &[u8]) -> StoreResult<Vec<u8>> {
        let failed = || StoreError::DecryptionFailed {
            speaker: place.speaker.clone(),
            kind: place.kind.to_string(),
        };
        if sealed.len() < NONCE_LEN {
            return Err(failed());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let aad = place.associated_data();
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| failed())
    }
}

/// Where a blob belongs. Its encoding is the additional authenticated data, so a blob copied to
/// another speaker, kind or model version no longer decrypts.
#[derive(Debug, Clone)]
pub(crate) struct BlobPlace<'a> {
    /// Owner of the blob.
    pub speaker: &'a SpeakerId,
    /// Model kind, or `"audio"` for kept audio.
    pub kind: &'a str,
    /// Model-set version for voice models; for kept audio, its format and recording time.
    pub version: &'a str,
}

impl BlobPlace<'_> {
    fn associated_data(&self) -> Vec<u8> {
        // Length-prefixed fields: no two different places share an encoding.
        let mut aad = b"quivox-store blob v1".to_vec();
        for field in [self.speaker.0.as_str(), self.kind, self.version] {
            aad.extend_from_slice(&(field.len() as u64).to_le_bytes());
            aad.extend_from_slice(field.as_bytes());
        }
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let key = StoreKey::from_bytes([7u8; KEY_LEN]);
        let alice = SpeakerId::from("alice");
        let bob = SpeakerId::from("bob");
        let place = BlobPlace {
            speaker: &alice,
            kind: "gmm",
            version: "v1",
        };
        let sealed = key.seal(&place, b"voiceprint").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 10 + 16);
        assert_eq!(key.open(&place, &sealed).unwrap(), b"voiceprint");
        // Two seals of the same plaintext differ (random nonce).
        assert_ne!(key.seal(&place, b"voiceprint").unwrap(), sealed);
        for moved in [
            BlobPlace {
                speaker: &bob,
                ..place.clone()
            },
            BlobPlace {
                kind: "ivector",
                ..place.clone()
            },
            BlobPlace {
                version: "v2",
                ..place.clone()
            },
        ] {
            assert!(matches!(
                key.open(&moved, &sealed),
                Err(StoreError::DecryptionFailed { .. })
            ));
        }
        let other = StoreKey::from_bytes([8u8; KEY_LEN]);
        assert!(other.open(&place, &sealed).is_err());
        assert_ne!(key.fingerprint(), other.fingerprint());
    }

    #[test]
    fn hex_parsing() {
        let hex_key = "00".repeat(31) + "ff";
        let key = StoreKey::from_hex(&format!(" {hex_key}\n"), "test").unwrap();
        assert_eq!(key.bytes[31], 0xff);
        assert!(StoreKey::from_hex("abc", "test").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        std::fs::write(&path, format!("{hex_key}\n")).unwrap();
        assert_eq!(
            StoreKey::from_file(&path).unwrap().fingerprint(),
            key.fingerprint()
        );
        assert!(matches!(
            StoreKey::from_file(&dir.path().join("missing")),
            Err(StoreError::Io { .. })
        ));
        // The error never echoes the key text.
        let bad = "g".repeat(64);
        let message = StoreKey::from_hex(&bad, "test").unwrap_err().to_string();
        assert!(!message.contains(&bad), "{message}");
        assert!(StoreKey::from_hex(&"zz".repeat(32), "test").is_err());
    }
}
