//! The enrollment store: enrolled speakers, their encrypted voice models, the calling numbers
//! they are known on, consent records, an audit log, optionally kept audio, and a retention
//! policy — behind one [`Store`] trait with two backends:
//!
//! - [`SqliteStore`]: embedded, one file, write-ahead log, each operation one transaction;
//! - [`PostgresStore`]: for several gateways sharing one population.
//!
//! Both share one schema (versioned migrations, a `schema_version` table) and one implementation
//! of the logic; only the SQL transport differs.
//!
//! # Privacy
//! - Voice-model blobs and kept audio are encrypted with XChaCha20-Poly1305 under a 32-byte
//!   [`StoreKey`], a random nonce per blob, and additional data binding each blob to its speaker,
//!   kind and model version: a blob copied to another row fails with
//!   [`StoreError::DecryptionFailed`]. A key fingerprint in the `meta` table makes opening with
//!   the wrong key fail with [`StoreError::WrongKey`] before anything is written.
//! - [`Store::forget`] erases the person everywhere (models, numbers, consent, kept audio). The
//!   audit log keeps its lines about that person, **with the speaker id** (the operator's customer
//!   id, not biometric data: the operator must be able to prove when and by whom an erasure was
//!   done) but with their free-text details replaced by a redaction marker, since details may
//!   hold calling numbers; an `erase` line is added.
//! - [`Store::export`] returns everything held about a person (GDPR access). Voiceprints and kept
//!   audio are included as decrypted bytes only when asked (`include_biometrics`), since they are
//!   only meaningful to the engine; [`SpeakerExport::biometrics_included`] says which.
//!
//! # Example
//! ```
//! use quivox::store::{
//!     Actor, Consent, Enrollment, ModelBlob, PhoneNumber, SpeakerId, SqliteStore, Store, StoreKey,
//! };
//! // In production: StoreKey::from_file(..) or StoreKey::from_env(), and SqliteStore::open_sqlite(path, key).
//! let mut store = SqliteStore::open_sqlite_in_memory(StoreKey::generate())?;
//! let agent = Actor::new("agent-7", 1_700_000_000);
//! let home = PhoneNumber::parse("+44 20 7946 0001")?;
//! store.enroll(&agent, &Enrollment {
//!     speaker: SpeakerId::from("cust-1001"),
//!     display_name: "A. Caller".into(),
//!     external_id: None,
//!     models: vec![ModelBlob { kind: "gmm".into(), model_version: "ubm-2026-11".into(), bytes: vec![1, 2, 3] }],
//!     numbers: vec![home.clone()],
//!     consent: Consent {
//!         given_at: agent.now,
//!         method: "ivr-recorded".into(),
//!         operator: "agent-7".into(),
//!         reference: "call 8812".into(),
//!     },
//!     keep_audio: Vec::new(),
//! })?;
//! store.record_call(&agent, &home, &SpeakerId::from("cust-1001"))?;
//! // What the engine loads at start:
//! assert_eq!(store.load_number_links()?, vec![(home, SpeakerId::from("cust-1001"), 1)]);
//! assert_eq!(store.load_models("gmm", "ubm-2026-11")?[0].1, vec![1, 2, 3]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Lists come sorted by Rust's byte order of their keys, whatever the database's collation, so
//! both backends return the same thing.
//!
//! All times are seconds since the Unix epoch (UTC), supplied by the caller in an [`Actor`] so
//! that retention and audit are testable and agree across gateways.

mod core;
mod crypto;
mod error;
mod pg;
mod schema;
mod sql;
mod sqlite;

use serde::{Deserialize, Serialize};

pub use crate::engine::{PhoneNumber, SpeakerId};
pub use crypto::{StoreKey, KEY_ENV_VAR, KEY_LEN, NONCE_LEN};
pub use error::{StoreError, StoreResult};
pub use pg::{PostgresBackend, PostgresStore};
pub use sql::Backend;
pub use sqlite::{SqliteBackend, SqliteOptions, SqliteStore};

/// Seconds since the Unix epoch (UTC).
pub type UnixSeconds = i64;

/// Who performs an operation and when: recorded in the audit log and used as "now".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Operator (agent, service or gateway name) performing the operation.
    pub operator: String,
    /// Time of the operation, seconds since the Unix epoch.
    pub now: UnixSeconds,
}

impl Actor {
    /// An actor at an explicit time.
    pub fn new(operator: &str, now: UnixSeconds) -> Self {
        Self {
            operator: operator.to_string(),
            now,
        }
    }

    /// An actor at the current system time.
    pub fn now(operator: &str) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self::new(operator, now)
    }
}

/// An enrolled speaker's non-biometric details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerInfo {
    /// The operator's id for the speaker.
    pub id: SpeakerId,
    /// Name shown to agents.
    pub display_name: String,
    /// Customer id in the operator's CRM, if different from `id`.
    pub external_id: Option<String>,
    /// When enrolled, Unix seconds.
    pub created_at: UnixSeconds,
    /// Last enrollment/update of details or models, Unix seconds.
    pub updated_at: UnixSeconds,
    /// Last recorded call, Unix seconds.
    pub last_call_at: Option<UnixSeconds>,
}

/// A voice model to store: an opaque blob produced by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelBlob {
    /// Model kind: 1–32 characters of `a-z`, `0-9`, `_`, `-` (e.g. "gmm", "ivector", "embedding").
    pub kind: String,
    /// Version or fingerprint of the model files the blob was made with (1–128 characters).
    pub model_version: String,
    /// The blob (stored encrypted).
    pub bytes: Vec<u8>,
}

/// What is stored about a voice model, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model kind.
    pub kind: String,
    /// Model-set version it was made with.
    pub model_version: String,
    /// 1 at enrollment, +1 at each update.
    pub revision: u32,
    /// When first stored, Unix seconds.
    pub created_at: UnixSeconds,
    /// When last replaced, Unix seconds.
    pub updated_at: UnixSeconds,
}

/// A stored voice model with its decrypted bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredModel {
    /// Its metadata.
    pub info: ModelInfo,
    /// The decrypted blob.
    pub bytes: Vec<u8>,
}

/// A consent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// When consent was given, Unix seconds.
    pub given_at: UnixSeconds,
    /// How it was given, e.g. "ivr-recorded", "written" (non-empty).
    pub method: String,
    /// Operator who collected it.
    pub operator: String,
    /// Free-text reference (document id, call id).
    pub reference: String,
}

/// Raw audio kept with the caller's explicit request (`keep_audio`), stored encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptAudio {
    /// When it was recorded, Unix seconds.
    pub recorded_at: UnixSeconds,
    /// Its format, e.g. "wav", "pcm_s16le_8000", "mulaw_8000" (1–64 characters).
    pub format: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A number ↔ speaker link with its call count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberLink {
    /// The calling number.
    pub number: PhoneNumber,
    /// The speaker known on it.
    pub speaker: SpeakerId,
    /// Calls from this speaker on this number recorded so far.
    pub call_count: u64,
    /// When linked, Unix seconds.
    pub linked_at: UnixSeconds,
    /// Last recorded call, Unix seconds.
    pub last_call_at: Option<UnixSeconds>,
}

/// Everything needed to enroll a speaker in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// The operator's id for the speaker (1–256 characters, no control characters).
    pub speaker: SpeakerId,
    /// Name shown to agents (at most 256 characters).
    pub display_name: String,
    /// Customer id in the operator's CRM.
    pub external_id: Option<String>,
    /// Voice models, at most one per kind.
    pub models: Vec<ModelBlob>,
    /// Numbers the speaker is known on (call count starts at 0).
    pub numbers: Vec<PhoneNumber>,
    /// The consent that allows the enrollment (required).
    pub consent: Consent,
    /// Audio to keep; leave empty unless the caller asked to keep it.
    pub keep_audio: Vec<KeptAudio>,
}

/// What [`Store::show`] returns: one speaker's record without biometric bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerRecord {
    /// Details.
    pub info: SpeakerInfo,
    /// Voice models (metadata only), sorted by kind.
    pub models: Vec<ModelInfo>,
    /// Numbers, sorted by number.
    pub numbers: Vec<NumberLink>,
    /// Consent records, oldest first.
    pub consents: Vec<Consent>,
    /// How many kept audio recordings there are.
    pub kept_audio_count: u64,
}

/// Kinds of audited actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A speaker was enrolled.
    Enroll,
    /// A speaker's models, details, consent or kept audio changed.
    Update,
    /// The engine identified a caller (logged by the caller with [`Store::log_event`]).
    Identify,
    /// The engine verified a claimed identity (logged with [`Store::log_event`]).
    Verify,
    /// A number was linked to a speaker.
    LinkNumber,
    /// A number was unlinked from a speaker.
    UnlinkNumber,
    /// A speaker was erased on request.
    Erase,
    /// A speaker's data was exported.
    Export,
    /// The store key was rotated.
    RotateKey,
    /// Data was removed by the retention policy.
    Purge,
}

impl AuditAction {
    /// Every action, in declaration order.
    pub const ALL: [AuditAction; 10] = [
        AuditAction::Enroll,
        AuditAction::Update,
        AuditAction::Identify,
        AuditAction::Verify,
        AuditAction::LinkNumber,
        AuditAction::UnlinkNumber,
        AuditAction::Erase,
        AuditAction::Export,
        AuditAction::RotateKey,
        AuditAction::Purge,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Enroll => "enroll",
            AuditAction::Update => "update",
            AuditAction::Identify => "identify",
            AuditAction::Verify => "verify",
            AuditAction::LinkNumber => "link_number",
            AuditAction::UnlinkNumber => "unlink_number",
            AuditAction::Erase => "erase",
            AuditAction::Export => "export",
            AuditAction::RotateKey => "rotate_key",
            AuditAction::Purge => "purge",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// One audit-log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing sequence number.
    pub id: i64,
    /// When, Unix seconds.
    pub at: UnixSeconds,
    /// Who.
    pub operator: String,
    /// What.
    pub action: AuditAction,
    /// About whom, if about one speaker.
    pub speaker: Option<SpeakerId>,
    /// Free text (never biometric data).
    pub detail: String,
}

/// Retention policy, stored in the database. `None` keeps forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// A speaker with neither a call nor an update for longer than this (seconds) is erased by
    /// [`Store::purge_expired`] (models, numbers, consent, audio; audited as `purge`).
    pub max_idle_s: Option<i64>,
    /// Kept audio older than this (seconds since recording) is deleted by [`Store::purge_expired`].
    pub max_audio_age_s: Option<i64>,
}

/// What [`Store::purge_expired`] removed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PurgeReport {
    /// Speakers erased for being idle too long, sorted.
    pub speakers_erased: Vec<SpeakerId>,
    /// Kept audio recordings deleted for being too old (not counting those of erased speakers).
    pub audio_deleted: u64,
}

/// A voice model in an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedModel {
    /// Metadata.
    pub info: ModelInfo,
    /// Decrypted bytes, when biometrics were asked for.
    pub bytes: Option<Vec<u8>>,
}

/// Everything the store holds about one person (GDPR access request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerExport {
    /// When the export was made, Unix seconds.
    pub exported_at: UnixSeconds,
    /// Whether voiceprint and audio bytes are included.
    pub biometrics_included: bool,
    /// Details.
    pub speaker: SpeakerInfo,
    /// Voice models.
    pub models: Vec<ExportedModel>,
    /// Numbers with call counts.
    pub numbers: Vec<NumberLink>,
    /// Consent records.
    pub consents: Vec<Consent>,
    /// Kept audio; bytes empty when biometrics are not included.
    pub kept_audio: Vec<KeptAudio>,
    /// Audit lines about the person (including this export).
    pub audit: Vec<AuditEntry>,
}

/// The result of [`Store::integrity_check`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IntegrityReport {
    /// Problems found; empty when the store is sound.
    pub problems: Vec<String>,
    /// Speakers counted.
    pub speakers: u64,
    /// Voice models counted (each decrypted successfully unless a problem says otherwise).
    pub models: u64,
    /// Number links counted.
    pub number_links: u64,
    /// Kept audio recordings counted.
    pub kept_audio: u64,
    /// Audit lines counted.
    pub audit_entries: u64,
}

impl IntegrityReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The enrollment store. Every mutating operation is one transaction: it happens entirely or not
/// at all, together with its audit line.
pub trait Store: Send {
    /// Backend name ("sqlite", "postgres").
    fn backend_name(&self) -> &'static str;
    /// The schema version of the database (after migration: the newest this build knows).
    fn schema_version(&mut self) -> StoreResult<u32>;

    /// Enrolls a new speaker with models, numbers, consent and optionally kept audio.
    /// [`StoreError::AlreadyExists`] if the id is taken.
    fn enroll(&mut self, actor: &Actor, enrollment: &Enrollment) -> StoreResult<()>;
    /// Stores or replaces the speaker's model of `model.kind`; returns its new revision.
    fn update_model(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        model: &ModelBlob,
    ) -> StoreResult<u32>;
    /// Changes a speaker's display name and external id.
    fn update_details(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        display_name: &str,
        external_id: Option<&str>,
    ) -> StoreResult<()>;
    /// Adds a consent record.
    fn add_consent(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        consent: &Consent,
    ) -> StoreResult<()>;
    /// Keeps a recording (only call this when the caller asked to keep audio).
    fn keep_audio(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        audio: &KeptAudio,
    ) -> StoreResult<()>;

    /// All speakers, sorted by id.
    fn list_speakers(&mut self) -> StoreResult<Vec<SpeakerInfo>>;
    /// One speaker's record (no biometric bytes).
    fn show(&mut self, speaker: &SpeakerId) -> StoreResult<SpeakerRecord>;
    /// One decrypted voice model.
    fn model(&mut self, speaker: &SpeakerId, kind: &str) -> StoreResult<StoredModel>;
    /// A speaker's kept audio, decrypted, oldest first.
    fn kept_audio(&mut self, speaker: &SpeakerId) -> StoreResult<Vec<KeptAudio>>;

    /// Links a number to a speaker; returns `false` if it was already linked (nothing changes).
    fn link_number(
        &mut self,
        actor: &Actor,
        number: &PhoneNumber,
        speaker: &SpeakerId,
    ) -> StoreResult<bool>;
    /// Removes a number ↔ speaker link. [`StoreError::NotFound`] if not linked.
    fn unlink_number(
        &mut self,
        actor: &Actor,
        number: &PhoneNumber,
        speaker: &SpeakerId,
    ) -> StoreResult<()>;
    /// Counts one call by `speaker` from `number` (linking them if needed); returns the new count.
    fn record_call(
        &mut self,
        actor: &Actor,
        number: &PhoneNumber,
        speaker: &SpeakerId,
    ) -> StoreResult<u64>;

    /// Every number link with its call count, for the engine's number directory; sorted by
    /// (number, speaker).
    fn load_number_links(&mut self) -> StoreResult<Vec<(PhoneNumber, SpeakerId, u64)>>;
    /// Every speaker's decrypted model of `kind` made with `model_version`, sorted by speaker.
    fn load_models(
        &mut self,
        kind: &str,
        model_version: &str,
    ) -> StoreResult<Vec<(SpeakerId, Vec<u8>)>>;

    /// Appends an audit line for an action done outside the store (identify, verify).
    fn log_event(
        &mut self,
        actor: &Actor,
        action: AuditAction,
        speaker: Option<&SpeakerId>,
        detail: &str,
    ) -> StoreResult<()>;
    /// Audit lines, oldest first; only those about `speaker` when given.
    fn audit_log(&mut self, speaker: Option<&SpeakerId>) -> StoreResult<Vec<AuditEntry>>;

    /// Erases the person everywhere; see the module docs for what the audit log keeps.
    fn forget(&mut self, actor: &Actor, speaker: &SpeakerId) -> StoreResult<()>;
    /// Everything held about the person; audited as `export`.
    fn export(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        include_biometrics: bool,
    ) -> StoreResult<SpeakerExport>;

    /// The retention policy in force.
    fn retention(&mut self) -> StoreResult<RetentionPolicy>;
    /// Replaces the retention policy (durations must be positive).
    fn set_retention(&mut self, policy: &RetentionPolicy) -> StoreResult<()>;
    /// Applies the retention policy at `actor.now`.
    fn purge_expired(&mut self, actor: &Actor) -> StoreResult<PurgeReport>;

    /// Re-encrypts every blob under `new_key` in one transaction; the store then uses it.
    fn rotate_key(&mut self, actor: &Actor, new_key: StoreKey) -> StoreResult<()>;
    /// Database engine checks plus the store's invariants (every blob decrypts, every speaker has
    /// consent, no orphans, counts non-negative, numbers and audit actions parse).
    fn integrity_check(&mut self) -> StoreResult<IntegrityReport>;
}

/// The store over a backend: the one implementation of [`Store`]. Use the aliases
/// [`SqliteStore`] and [`PostgresStore`].
pub struct SqlStore<B: Backend> {
    backend: B,
    key: StoreKey,
    /// The migrations this store was opened with (the crate's list, except in tests).
    migrations: &'static [&'static str],
}

impl<B: Backend> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend.name())
            .field("key", &self.key)
            .finish()
    }
}
