//! The store's error type.

use crate::engine::SpeakerId;

/// Everything that can go wrong in the enrollment store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The thing asked for is not in the store.
    #[error("{what} {id:?} not found in the store")]
    NotFound {
        /// What kind of thing ("speaker", "voice model", "number link").
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// The thing to create is already in the store.
    #[error("{what} {id:?} already exists in the store: expected a new one (update or forget it instead)")]
    AlreadyExists {
        /// What kind of thing.
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// The store was created (or last re-keyed) with another key. Nothing was written.
    #[error("wrong store key: the store expects the key with fingerprint {expected}, the key given has fingerprint {given}; nothing was written")]
    WrongKey {
        /// Fingerprint recorded in the store (hex, not secret).
        expected: String,
        /// Fingerprint of the key given (hex, not secret).
        given: String,
    },
    /// A key could not be parsed or read.
    #[error("store key from {source_name}: {problem}")]
    InvalidKey {
        /// Where the key came from (a path, an environment variable).
        source_name: String,
        /// What is wrong with it (never the key itself).
        problem: String,
    },
    /// An encrypted blob does not authenticate: it was altered, or moved to another speaker, kind
    /// or model version.
    #[error("decryption of the {kind} blob of speaker {speaker} failed: it was altered or moved from another speaker, kind or model version")]
    DecryptionFailed {
        /// Speaker the blob is filed under.
        speaker: SpeakerId,
        /// Kind of blob ("gmm", "ivector", "embedding", or "audio").
        kind: String,
    },
    /// The database was written by a newer quivox with a schema this one does not know.
    #[error("store schema version {found}: this quivox supports up to version {supported}; upgrade quivox")]
    SchemaTooNew {
        /// Version found in the database.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// An argument is malformed. `value` is cut to 80 characters.
    #[error("{field} = {value:?}: expected {expected}")]
    InvalidInput {
        /// Name of the argument or field.
        field: &'static str,
        /// The value given.
        value: String,
        /// What a valid value looks like.
        expected: String,
    },
    /// A row holds something our schema cannot hold (a wrong type, an unknown enum text).
    #[error("store data is inconsistent: {detail}")]
    Corrupt {
        /// What was found.
        detail: String,
    },
    /// SQLite failed.
    #[error("SQLite error while {context}: {source}")]
    Sqlite {
        /// What we were doing.
        context: String,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL failed.
    #[error("PostgreSQL error while {context}: {source}")]
    Postgres {
        /// What we were doing.
        context: String,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },
    /// Reading a key file failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand for results of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Whether the database refused a row because its key is taken (a concurrent writer won).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } => {
                source.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
            }
            StoreError::Postgres { source, .. } => {
                source.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }
}
