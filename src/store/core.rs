//! The store's logic, written once over the [`Sql`] interface.

use super::crypto::BlobPlace;
use super::schema::{BOOTSTRAP, MIGRATIONS};
use super::sql::{params, Backend, Row, Sql};
use super::*;

const META_KEY_FINGERPRINT: &str = "key_fingerprint";
const META_RETENTION: &str = "retention";
/// Blob kind under which kept audio is sealed.
const AUDIO_KIND: &str = "audio";
/// What replaces audit details about an erased speaker.
const REDACTED: &str = "[redacted: speaker erased]";

/// An [`StoreError::InvalidInput`], with the offending value cut to 80 characters.
pub(crate) fn invalid(field: &'static str, value: &str, expected: impl Into<String>) -> StoreError {
    let value = match value.char_indices().nth(80) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    };
    StoreError::InvalidInput {
        field,
        value,
        expected: expected.into(),
    }
}

fn check_speaker_id(id: &SpeakerId) -> StoreResult<()> {
    let s = id.0.as_str();
    if s.is_empty() || s.chars().count() > 256 || s.chars().any(char::is_control) {
        return Err(invalid(
            "speaker id",
            s,
            "1 to 256 characters without control characters",
        ));
    }
    Ok(())
}

fn check_kind(kind: &str) -> StoreResult<()> {
    let ok = !kind.is_empty()
        && kind.len() <= 32
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && kind != AUDIO_KIND;
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "model kind",
            kind,
            "1 to 32 characters of a-z, 0-9, '_', '-' (and not \"audio\")",
        ))
    }
}

fn check_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
    allow_empty: bool,
) -> StoreResult<()> {
    let n = value.chars().count();
    if !allow_empty && value.trim().is_empty() {
        return Err(invalid(
            field,
            value,
            format!("non-blank text of at most {max_chars} characters"),
        ));
    }
    if n > max_chars {
        return Err(invalid(
            field,
            value,
            format!("at most {max_chars} characters, not {n}"),
        ));
    }
    Ok(())
}

fn check_model(model: &ModelBlob) -> StoreResult<()> {
    check_kind(&model.kind)?;
    check_text("model version", &model.model_version, 128, false)
}

fn check_consent(consent: &Consent) -> StoreResult<()> {
    check_text("consent method", &consent.method, 64, false)?;
    check_text("consent operator", &consent.operator, 256, false)?;
    check_text("consent reference", &consent.reference, 4096, true)
}

fn check_audio(audio: &KeptAudio) -> StoreResult<()> {
    check_text("audio format", &audio.format, 64, false)
}

/// The additional-data "version" of a kept recording: its format and time, so a recording cannot
/// be swapped for another of the same speaker either.
fn audio_version(format: &str, recorded_at: UnixSeconds) -> String {
    format!("{format}@{recorded_at}")
}

fn not_found(what: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_string(),
    }
}

fn to_u64(v: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        detail: format!("{what} is {v}: expected a non-negative count"),
    })
}

fn to_u32(v: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt {
        detail: format!("{what} is {v}: expected 0 ..= {}", u32::MAX),
    })
}

fn parse_number(text: &str) -> StoreResult<PhoneNumber> {
    PhoneNumber::parse(text).map_err(|e| StoreError::Corrupt {
        detail: format!("stored number {text:?} does not parse: {e}"),
    })
}

fn speaker_exists(tx: &mut dyn Sql, speaker: &SpeakerId) -> StoreResult<bool> {
    Ok(!tx
        .query("SELECT 1 FROM speakers WHERE id = ?1", params![&speaker.0])?
        .is_empty())
}

fn require_speaker(tx: &mut dyn Sql, speaker: &SpeakerId) -> StoreResult<()> {
    if speaker_exists(tx, speaker)? {
        Ok(())
    } else {
        Err(not_found("speaker", &speaker.0))
    }
}

fn audit(
    tx: &mut dyn Sql,
    actor: &Actor,
    action: AuditAction,
    speaker: Option<&SpeakerId>,
    detail: &str,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO audit_log (at, operator, action, speaker_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            actor.now,
            &actor.operator,
            action.as_str(),
            speaker.map(|s| s.0.as_str()),
            detail
        ],
    )?;
    Ok(())
}

fn touch_speaker(tx: &mut dyn Sql, speaker: &SpeakerId, now: UnixSeconds) -> StoreResult<()> {
    tx.execute(
        "UPDATE speakers SET updated_at = ?1 WHERE id = ?2",
        params![now, &speaker.0],
    )?;
    Ok(())
}

fn meta_get(tx: &mut dyn Sql, name: &str) -> StoreResult<Option<String>> {
    let rows = tx.query("SELECT value FROM meta WHERE name = ?1", params![name])?;
    rows.first().map(|r| r.text(0)).transpose()
}

fn meta_set(tx: &mut dyn Sql, name: &str, value: &str) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, value],
    )?;
    Ok(())
}

fn read_retention(tx: &mut dyn Sql) -> StoreResult<RetentionPolicy> {
    match meta_get(tx, META_RETENTION)? {
        None => Ok(RetentionPolicy::default()),
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            detail: format!("retention policy {text:?} does not parse: {e}"),
        }),
    }
}

fn read_version(tx: &mut dyn Sql) -> StoreResult<u32> {
    if !tx.table_exists("schema_version")? {
        return Ok(0);
    }
    let rows = tx.query("SELECT MAX(version) FROM schema_version", params![])?;
    let version = rows
        .first()
        .map(|r| r.opt_int(0))
        .transpose()?
        .flatten()
        .unwrap_or(0);
    to_u32(version, "schema version")
}

fn speaker_info(row: &Row) -> StoreResult<SpeakerInfo> {
    Ok(SpeakerInfo {
        id: SpeakerId(row.text(0)?),
        display_name: row.text(1)?,
        external_id: row.opt_text(2)?,
        created_at: row.int(3)?,
        updated_at: row.int(4)?,
        last_call_at: row.opt_int(5)?,
    })
}
const SPEAKER_COLUMNS: &str = "id, display_name, external_id, created_at, updated_at, last_call_at";

fn model_info(row: &Row) -> StoreResult<ModelInfo> {
    Ok(ModelInfo {
        kind: row.text(0)?,
        model_version: row.text(1)?,
        revision: to_u32(row.int(2)?, "model revision")?,
        created_at: row.int(3)?,
        updated_at: row.int(4)?,
    })
}
const MODEL_COLUMNS: &str = "kind, model_version, revision, created_at, updated_at";

fn number_link(row: &Row) -> StoreResult<NumberLink> {
    Ok(NumberLink {
        number: parse_number(&row.text(0)?)?,
        speaker: SpeakerId(row.text(1)?),
        call_count: to_u64(row.int(2)?, "call count")?,
        linked_at: row.int(3)?,
        last_call_at: row.opt_int(4)?,
    })
}
const LINK_COLUMNS: &str = "number, speaker_id, call_count, linked_at, last_call_at";

fn audit_entry(row: &Row) -> StoreResult<AuditEntry> {
    let action_text = row.text(3)?;
    Ok(AuditEntry {
        id: row.int(0)?,
        at: row.int(1)?,
        operator: row.text(2)?,
        action: AuditAction::parse(&action_text).ok_or_else(|| StoreError::Corrupt {
            detail: format!("audit action {action_text:?} is not one this build knows"),
        })?,
        speaker: row.opt_text(4)?.map(SpeakerId),
        detail: row.text(5)?,
    })
}

fn speaker_info_of(tx: &mut dyn Sql, speaker: &SpeakerId) -> StoreResult<SpeakerInfo> {
    let rows = tx.query(
        &format!("SELECT {SPEAKER_COLUMNS} FROM speakers WHERE id = ?1"),
        params![&speaker.0],
    )?;
    match rows.first() {
        Some(row) => speaker_info(row),
        None => Err(not_found("speaker", &speaker.0)),
    }
}

fn models_of(tx: &mut dyn Sql, speaker: &SpeakerId) -> StoreResult<Vec<(ModelInfo, Vec<u8>)>> {
    tx.query(
        &format!(
            "SELECT {MODEL_COLUMNS}, sealed FROM voice_models WHERE speaker_id = ?1 ORDER BY kind"
        ),
        params![&speaker.0],
    )?
    .iter()
    .map(|row| Ok((model_info(row)?, row.blob(5)?)))
    .collect::<StoreResult<Vec<_>>>()
    .map(|mut models| {
        models.sort_by(|a, b| a.0.kind.cmp(&b.0.kind));
        models
    })
}

fn links_of(tx: &mut dyn Sql, speaker: &SpeakerId) -> StoreResult<Vec<NumberLink>> {
    tx.query(
        &format!("SELECT {LINK_COLUMNS} FROM number_links WHERE speaker_id = ?1 ORDER BY number"),
        params![&speaker.0],
    )?
    .iter()
    .map(number_link)
    .collect::<StoreResult<Vec<_>>>()
    .map(|mut links| {
        links.sort_by(|a, b| a.number.cmp(&b.number));
        links
    })
}

fn consents_of(tx: &mut dyn Sql, speaker: &SpeakerId) -> StoreResult<Vec<Consent>> {
    tx.query(
        "SELECT given_at, method, operator, reference FROM consents WHERE speaker_id = ?1 ORDER BY id",
        params![&speaker.0],
    )?
    .iter()
    .map(|row| {
        Ok(Consent {
            given_at: row.int(0)?,
            method: row.text(1)?,
            operator: row.text(2)?,
            reference: row.text(3)?,
        })
    })
    .collect()
}

/// Kept audio rows: (recorded_at, format, sealed).
fn audio_rows_of(
    tx: &mut dyn Sql,
    speaker: &SpeakerId,
) -> StoreResult<Vec<(UnixSeconds, String, Vec<u8>)>> {
    tx.query(
        "SELECT recorded_at, format, sealed FROM kept_audio WHERE speaker_id = ?1 ORDER BY id",
        params![&speaker.0],
    )?
    .iter()
    .map(|row| Ok((row.int(0)?, row.text(1)?, row.blob(2)?)))
    .collect()
}

fn audit_of(tx: &mut dyn Sql, speaker: Option<&SpeakerId>) -> StoreResult<Vec<AuditEntry>> {
    let columns = "id, at, operator, action, speaker_id, detail";
    let rows = match speaker {
        Some(s) => tx.query(
            &format!("SELECT {columns} FROM audit_log WHERE speaker_id = ?1 ORDER BY id"),
            params![&s.0],
        )?,
        None => tx.query(
            &format!("SELECT {columns} FROM audit_log ORDER BY id"),
            params![],
        )?,
    };
    rows.iter().map(audit_entry).collect()
}

fn insert_model(
    tx: &mut dyn Sql,
    key: &StoreKey,
    speaker: &SpeakerId,
    model: &ModelBlob,
    now: UnixSeconds,
) -> StoreResult<u32> {
    let place = BlobPlace {
        speaker,
        kind: &model.kind,
        version: &model.model_version,
    };
    let sealed = key.seal(&place, &model.bytes)?;
    let rows = tx.query(
        "INSERT INTO voice_models (speaker_id, kind, model_version, revision, sealed, created_at, updated_at)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?5)
         ON CONFLICT (speaker_id, kind) DO UPDATE SET
             model_version = excluded.model_version,
             revision = voice_models.revision + 1,
             sealed = excluded.sealed,
             updated_at = excluded.updated_at
         RETURNING revision",
        params![&speaker.0, &model.kind, &model.model_version, sealed, now],
    )?;
    let revision = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
    to_u32(revision, "model revision")
}

fn insert_audio(
    tx: &mut dyn Sql,
    key: &StoreKey,
    speaker: &SpeakerId,
    audio: &KeptAudio,
) -> StoreResult<()> {
    let version = audio_version(&audio.format, audio.recorded_at);
    let place = BlobPlace {
        speaker,
        kind: AUDIO_KIND,
        version: &version,
    };
    let sealed = key.seal(&place, &audio.bytes)?;
    tx.execute(
        "INSERT INTO kept_audio (speaker_id, recorded_at, format, sealed) VALUES (?1, ?2, ?3, ?4)",
        params![&speaker.0, audio.recorded_at, &audio.format, sealed],
    )?;
    Ok(())
}

fn insert_consent(tx: &mut dyn Sql, speaker: &SpeakerId, consent: &Consent) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO consents (speaker_id, given_at, method, operator, reference) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            &speaker.0,
            consent.given_at,
            &consent.method,
            &consent.operator,
            &consent.reference
        ],
    )?;
    Ok(())
}

/// Inserts a link with call count 0 unless present; returns whether it was inserted.
fn insert_link(
    tx: &mut dyn Sql,
    number: &PhoneNumber,
    speaker: &SpeakerId,
    now: UnixSeconds,
) -> StoreResult<bool> {
    let n = tx.execute(
        "INSERT INTO number_links (number, speaker_id, call_count, linked_at) VALUES (?1, ?2, 0, ?3)
         ON CONFLICT (number, speaker_id) DO NOTHING",
        params![number.as_str(), &speaker.0, now],
    )?;
    Ok(n > 0)
}

/// Deletes every row about the speaker and redacts the details of their audit lines.
fn erase_speaker(tx: &mut dyn Sql, speaker: &SpeakerId) -> StoreResult<()> {
    for table in ["kept_audio", "consents", "number_links", "voice_models"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE speaker_id = ?1"),
            params![&speaker.0],
        )?;
    }
    tx.execute("DELETE FROM speakers WHERE id = ?1", params![&speaker.0])?;
    tx.execute(
        "UPDATE audit_log SET detail = ?1 WHERE speaker_id = ?2",
        params![REDACTED, &speaker.0],
    )?;
    Ok(())
}

fn open_audio(
    key: &StoreKey,
    speaker: &SpeakerId,
    recorded_at: UnixSeconds,
    format: &str,
    sealed: &[u8],
) -> StoreResult<Vec<u8>> {
    let version = audio_version(format, recorded_at);
    key.open(
        &BlobPlace {
            speaker,
            kind: AUDIO_KIND,
            version: &version,
        },
        sealed,
    )
}

fn open_model(
    key: &StoreKey,
    speaker: &SpeakerId,
    info: &ModelInfo,
    sealed: &[u8],
) -> StoreResult<Vec<u8>> {
    key.open(
        &BlobPlace {
            speaker,
            kind: &info.kind,
            version: &info.model_version,
        },
        sealed,
    )
}

/// How many kept recordings are held in memory at once when walking them all.
const AUDIO_BATCH: i64 = 32;

/// One kept_audio row.
struct AudioRow {
    id: i64,
    speaker: SpeakerId,
    recorded_at: UnixSeconds,
    format: String,
    sealed: Vec<u8>,
}

/// Visits every kept recording in id order, a bounded batch at a time (recordings can be large);
/// returns how many were visited.
fn for_each_audio(
    tx: &mut dyn Sql,
    visit: &mut dyn FnMut(&mut dyn Sql, AudioRow) -> StoreResult<()>,
) -> StoreResult<u64> {
    let mut after = i64::MIN;
    let mut visited = 0;
    loop {
        let rows = tx.query(
            "SELECT id, speaker_id, recorded_at, format, sealed FROM kept_audio WHERE id > ?1 ORDER BY id LIMIT ?2",
            params![after, AUDIO_BATCH],
        )?;
        if rows.is_empty() {
            return Ok(visited);
        }
        for row in &rows {
            let audio = AudioRow {
                id: row.int(0)?,
                speaker: SpeakerId(row.text(1)?),
                recorded_at: row.int(2)?,
                format: row.text(3)?,
                sealed: row.blob(4)?,
            };
            after = audio.id;
            visit(tx, audio)?;
            visited += 1;
        }
    }
}

fn count(tx: &mut dyn Sql, sql: &str) -> StoreResult<u64> {
    let rows = tx.query(sql, params![])?;
    let n = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
    to_u64(n, "row count")
}

impl<B: Backend> SqlStore<B> {
    /// Migrates the database behind `backend` and checks `key` against it; the common part of
    /// every `open_*` constructor.
    pub(crate) fn open_with(backend: B, key: StoreKey) -> StoreResult<Self> {
        Self::open_with_migrations(backend, key, MIGRATIONS)
    }

    /// [`SqlStore::open_with`] with an explicit migration list (tests of the mechanism).
    pub(crate) fn open_with_migrations(
        mut backend: B,
        key: StoreKey,
        migrations: &'static [&'static str],
    ) -> StoreResult<Self> {
        let fingerprint = key.fingerprint();
        let latest = migrations.len() as u32;
        backend.transaction(&mut |tx| {
            tx.lock_for_migration()?;
            let found = read_version(tx)?;
            if found > latest {
                return Err(StoreError::SchemaTooNew {
                    found,
                    supported: latest,
                });
            }
            // Check the key before writing anything.
            if tx.table_exists("meta")? {
                if let Some(expected) = meta_get(tx, META_KEY_FINGERPRINT)? {
                    if expected != fingerprint {
                        return Err(StoreError::WrongKey {
                            expected,
                            given: fingerprint.clone(),
                        });
                    }
                }
            }
            tx.batch(BOOTSTRAP)?;
            for (index, script) in migrations.iter().enumerate().skip(found as usize) {
                let dialect = tx.dialect();
                tx.batch(&dialect.render(script))?;
                tx.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
                    params![index as i64 + 1, Actor::now("").now],
                )?;
            }
            if meta_get(tx, META_KEY_FINGERPRINT)?.is_none() {
                meta_set(tx, META_KEY_FINGERPRINT, &fingerprint)?;
            }
            Ok(())
        })?;
        Ok(Self {
            backend,
            key,
            migrations,
        })
    }

    /// The fingerprint of the key in use (public; see [`StoreKey::fingerprint`]).
    pub fn key_fingerprint(&self) -> String {
        self.key.fingerprint()
    }

    fn tx<R>(
        &mut self,
        mut work: impl FnMut(&mut dyn Sql, &StoreKey) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let key = &self.key;
        self.backend.transaction(&mut |tx| work(tx, key))
    }
}

impl<B: Backend> Store for SqlStore<B> {
    fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    fn schema_version(&mut self) -> StoreResult<u32> {
        self.tx(|tx, _| read_version(tx))
    }

    fn enroll(&mut self, actor: &Actor, e: &Enrollment) -> StoreResult<()> {
        check_speaker_id(&e.speaker)?;
        check_text("display name", &e.display_name, 256, true)?;
        if let Some(external) = &e.external_id {
            check_text("external id", external, 256, false)?;
        }
        for (i, model) in e.models.iter().enumerate() {
            check_model(model)?;
            if e.models[..i].iter().any(|m| m.kind == model.kind) {
                return Err(invalid(
                    "model kind",
                    &model.kind,
                    "at most one model per kind in an enrollment",
                ));
            }
        }
        check_consent(&e.consent)?;
        for audio in &e.keep_audio {
            check_audio(audio)?;
        }
        self.tx(|tx, key| {
            if speaker_exists(tx, &e.speaker)? {
                return Err(StoreError::AlreadyExists {
                    what: "speaker",
                    id: e.speaker.0.clone(),
                });
            }
            // Another gateway may enroll the same id between the check and the insert.
            tx.execute(
                "INSERT INTO speakers (id, display_name, external_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![&e.speaker.0, &e.display_name, e.external_id.as_deref(), actor.now],
            )
            .map_err(|err| {
                if err.is_unique_violation() {
                    StoreError::AlreadyExists {
                        what: "speaker",
                        id: e.speaker.0.clone(),
                    }
                } else {
                    err
                }
            })?;
            for model in &e.models {
                insert_model(tx, key, &e.speaker, model, actor.now)?;
            }
            for number in &e.numbers {
                insert_link(tx, number, &e.speaker, actor.now)?;
            }
            insert_consent(tx, &e.speaker, &e.consent)?;
            for audio in &e.keep_audio {
                insert_audio(tx, key, &e.speaker, audio)?;
            }
            let kinds: Vec<&str> = e.models.iter().map(|m| m.kind.as_str()).collect();
            audit(
                tx,
                actor,
                AuditAction::Enroll,
                Some(&e.speaker),
                &format!(
                    "models [{}], {} number(s), consent {}, {} kept recording(s)",
                    kinds.join(", "),
                    e.numbers.len(),
                    e.consent.method,
                    e.keep_audio.len()
                ),
            )
        })
    }

    fn update_model(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        model: &ModelBlob,
    ) -> StoreResult<u32> {
        check_model(model)?;
        self.tx(|tx, key| {
            require_speaker(tx, speaker)?;
            let revision = insert_model(tx, key, speaker, model, actor.now)?;
            touch_speaker(tx, speaker, actor.now)?;
            audit(
                tx,
                actor,
                AuditAction::Update,
                Some(speaker),
                &format!(
                    "model {} (model version {}) now revision {revision}",
                    model.kind, model.model_version
                ),
            )?;
            Ok(revision)
        })
    }

    fn update_details(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        display_name: &str,
        external_id: Option<&str>,
    ) -> StoreResult<()> {
        check_text("display name", display_name, 256, true)?;
        if let Some(external) = external_id {
            check_text("external id", external, 256, false)?;
        }
        self.tx(|tx, _| {
            require_speaker(tx, speaker)?;
            tx.execute(
                "UPDATE speakers SET display_name = ?1, external_id = ?2, updated_at = ?3 WHERE id = ?4",
                params![display_name, external_id, actor.now, &speaker.0],
            )?;
            audit(tx, actor, AuditAction::Update, Some(speaker), "details changed")
        })
    }

    fn add_consent(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        consent: &Consent,
    ) -> StoreResult<()> {
        check_consent(consent)?;
        self.tx(|tx, _| {
            require_speaker(tx, speaker)?;
            insert_consent(tx, speaker, consent)?;
            audit(
                tx,
                actor,
                AuditAction::Update,
                Some(speaker),
                &format!("consent added ({})", consent.method),
            )
        })
    }

    fn keep_audio(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        audio: &KeptAudio,
    ) -> StoreResult<()> {
        check_audio(audio)?;
        self.tx(|tx, key| {
            require_speaker(tx, speaker)?;
            insert_audio(tx, key, speaker, audio)?;
            audit(
                tx,
                actor,
                AuditAction::Update,
                Some(speaker),
                &format!(
                    "kept audio added ({}, {} bytes)",
                    audio.format,
                    audio.bytes.len()
                ),
            )
        })
    }

    fn list_speakers(&mut self) -> StoreResult<Vec<SpeakerInfo>> {
        self.tx(|tx, _| {
            tx.query(
                &format!("SELECT {SPEAKER_COLUMNS} FROM speakers ORDER BY id"),
                params![],
            )?
            .iter()
            .map(speaker_info)
            .collect::<StoreResult<Vec<_>>>()
            .map(|mut speakers| {
                speakers.sort_by(|a, b| a.id.cmp(&b.id));
                speakers
            })
        })
    }

    fn show(&mut self, speaker: &SpeakerId) -> StoreResult<SpeakerRecord> {
        self.tx(|tx, _| {
            let info = speaker_info_of(tx, speaker)?;
            let models = models_of(tx, speaker)?
                .into_iter()
                .map(|(m, _)| m)
                .collect();
            let numbers = links_of(tx, speaker)?;
            let consents = consents_of(tx, speaker)?;
            let rows = tx.query(
                "SELECT COUNT(*) FROM kept_audio WHERE speaker_id = ?1",
                params![&speaker.0],
            )?;
            let kept = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
            Ok(SpeakerRecord {
                info,
                models,
                numbers,
                consents,
                kept_audio_count: to_u64(kept, "kept audio count")?,
            })
        })
    }

    fn model(&mut self, speaker: &SpeakerId, kind: &str) -> StoreResult<StoredModel> {
        self.tx(|tx, key| {
            let rows = tx.query(
                &format!("SELECT {MODEL_COLUMNS}, sealed FROM voice_models WHERE speaker_id = ?1 AND kind = ?2"),
                params![&speaker.0, kind],
            )?;
            let row = rows
                .first()
                .ok_or_else(|| not_found("voice model", &format!("{speaker}/{kind}")))?;
            let info = model_info(row)?;
            let bytes = open_model(key, speaker, &info, &row.blob(5)?)?;
            Ok(StoredModel { info, bytes })
        })
    }

    fn kept_audio(&mut self, speaker: &SpeakerId) -> StoreResult<Vec<KeptAudio>> {
        self.tx(|tx, key| {
            require_speaker(tx, speaker)?;
            audio_rows_of(tx, speaker)?
                .into_iter()
                .map(|(recorded_at, format, sealed)| {
                    let bytes = open_audio(key, speaker, recorded_at, &format, &sealed)?;
                    Ok(KeptAudio {
                        recorded_at,
                        format,
                        bytes,
                    })
                })
                .collect()
        })
    }

    fn link_number(
        &mut self,
        actor: &Actor,
        number: &PhoneNumber,
        speaker: &SpeakerId,
    ) -> StoreResult<bool> {
        self.tx(|tx, _| {
            require_speaker(tx, speaker)?;
            let inserted = insert_link(tx, number, speaker, actor.now)?;
            if inserted {
                audit(
                    tx,
                    actor,
                    AuditAction::LinkNumber,
                    Some(speaker),
                    &format!("number {number}"),
                )?;
            }
            Ok(inserted)
        })
    }

    fn unlink_number(
        &mut self,
        actor: &Actor,
        number: &PhoneNumber,
        speaker: &SpeakerId,
    ) -> StoreResult<()> {
        self.tx(|tx, _| {
            let n = tx.execute(
                "DELETE FROM number_links WHERE number = ?1 AND speaker_id = ?2",
                params![number.as_str(), &speaker.0],
            )?;
            if n == 0 {
                return Err(not_found("number link", &format!("{number} -> {speaker}")));
            }
            audit(
                tx,
                actor,
                AuditAction::UnlinkNumber,
                Some(speaker),
                &format!("number {number}"),
            )
        })
    }

    fn record_call(
        &mut self,
        actor: &Actor,
        number: &PhoneNumber,
        speaker: &SpeakerId,
    ) -> StoreResult<u64> {
        self.tx(|tx, _| {
            require_speaker(tx, speaker)?;
            let rows = tx.query(
                "INSERT INTO number_links (number, speaker_id, call_count, linked_at, last_call_at) VALUES (?1, ?2, 1, ?3, ?3)
                 ON CONFLICT (number, speaker_id) DO UPDATE SET
                     call_count = number_links.call_count + 1,
                     last_call_at = excluded.last_call_at
                 RETURNING call_count",
                params![number.as_str(), &speaker.0, actor.now],
            )?;
            tx.execute(
                "UPDATE speakers SET last_call_at = ?1 WHERE id = ?2",
                params![actor.now, &speaker.0],
            )?;
            let count = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
            to_u64(count, "call count")
        })
    }

    fn load_number_links(&mut self) -> StoreResult<Vec<(PhoneNumber, SpeakerId, u64)>> {
        self.tx(|tx, _| {
            tx.query(
                "SELECT number, speaker_id, call_count FROM number_links ORDER BY number, speaker_id",
                params![],
            )?
            .iter()
            .map(|row| {
                Ok((
                    parse_number(&row.text(0)?)?,
                    SpeakerId(row.text(1)?),
                    to_u64(row.int(2)?, "call count")?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()
            .map(|mut links| {
                links.sort();
                links
            })
        })
    }

    fn load_models(
        &mut self,
        kind: &str,
        model_version: &str,
    ) -> StoreResult<Vec<(SpeakerId, Vec<u8>)>> {
        self.tx(|tx, key| {
            tx.query(
                "SELECT speaker_id, sealed FROM voice_models WHERE kind = ?1 AND model_version = ?2 ORDER BY speaker_id",
                params![kind, model_version],
            )?
            .iter()
            .map(|row| {
                let speaker = SpeakerId(row.text(0)?);
                let place = BlobPlace {
                    speaker: &speaker,
                    kind,
                    version: model_version,
                };
                let bytes = key.open(&place, &row.blob(1)?)?;
                Ok((speaker, bytes))
            })
            .collect::<StoreResult<Vec<_>>>()
            .map(|mut models| {
                models.sort_by(|a, b| a.0.cmp(&b.0));
                models
            })
        })
    }

    fn log_event(
        &mut self,
        actor: &Actor,
        action: AuditAction,
        speaker: Option<&SpeakerId>,
        detail: &str,
    ) -> StoreResult<()> {
        check_text("audit detail", detail, 4096, true)?;
        self.tx(|tx, _| audit(tx, actor, action, speaker, detail))
    }

    fn audit_log(&mut self, speaker: Option<&SpeakerId>) -> StoreResult<Vec<AuditEntry>> {
        self.tx(|tx, _| audit_of(tx, speaker))
    }

    fn forget(&mut self, actor: &Actor, speaker: &SpeakerId) -> StoreResult<()> {
        self.tx(|tx, _| {
            require_speaker(tx, speaker)?;
            erase_speaker(tx, speaker)?;
            audit(
                tx,
                actor,
                AuditAction::Erase,
                Some(speaker),
                "erased on request: models, numbers, consent records and kept audio deleted",
            )
        })
    }

    fn export(
        &mut self,
        actor: &Actor,
        speaker: &SpeakerId,
        include_biometrics: bool,
    ) -> StoreResult<SpeakerExport> {
        self.tx(|tx, key| {
            let info = speaker_info_of(tx, speaker)?;
            let mut models = Vec::new();
            for (model, sealed) in models_of(tx, speaker)? {
                let bytes = if include_biometrics {
                    Some(open_model(key, speaker, &model, &sealed)?)
                } else {
                    None
                };
                models.push(ExportedModel { info: model, bytes });
            }
            let mut kept_audio = Vec::new();
            for (recorded_at, format, sealed) in audio_rows_of(tx, speaker)? {
                let bytes = if include_biometrics {
                    open_audio(key, speaker, recorded_at, &format, &sealed)?
                } else {
                    Vec::new()
                };
                kept_audio.push(KeptAudio {
                    recorded_at,
                    format,
                    bytes,
                });
            }
            let numbers = links_of(tx, speaker)?;
            let consents = consents_of(tx, speaker)?;
            audit(
                tx,
                actor,
                AuditAction::Export,
                Some(speaker),
                &format!("exported; biometrics included: {include_biometrics}"),
            )?;
            let audit = audit_of(tx, Some(speaker))?;
            Ok(SpeakerExport {
                exported_at: actor.now,
                biometrics_included: include_biometrics,
                speaker: info,
                models,
                numbers,
                consents,
                kept_audio,
                audit,
            })
        })
    }

    fn retention(&mut self) -> StoreResult<RetentionPolicy> {
        self.tx(|tx, _| read_retention(tx))
    }

    fn set_retention(&mut self, policy: &RetentionPolicy) -> StoreResult<()> {
        for (field, value) in [
            ("max_idle_s", policy.max_idle_s),
            ("max_audio_age_s", policy.max_audio_age_s),
        ] {
            if let Some(v) = value {
                if v <= 0 {
                    return Err(invalid(
                        field,
                        &v.to_string(),
                        "a positive number of seconds, or None",
                    ));
                }
            }
        }
        let text = serde_json::to_string(policy).map_err(|e| StoreError::Corrupt {
            detail: format!("retention policy does not serialise: {e}"),
        })?;
        self.tx(|tx, _| meta_set(tx, META_RETENTION, &text))
    }

    fn purge_expired(&mut self, actor: &Actor) -> StoreResult<PurgeReport> {
        self.tx(|tx, _| {
            let policy = read_retention(tx)?;
            let mut report = PurgeReport::default();
            if let Some(max_idle) = policy.max_idle_s {
                let cutoff = actor.now.saturating_sub(max_idle);
                let speakers = tx.query(&format!("SELECT {SPEAKER_COLUMNS} FROM speakers ORDER BY id"), params![])?;
                for row in &speakers {
                    let info = speaker_info(row)?;
                    let last_activity = info.updated_at.max(info.last_call_at.unwrap_or(i64::MIN));
                    if last_activity < cutoff {
                        erase_speaker(tx, &info.id)?;
                        audit(
                            tx,
                            actor,
                            AuditAction::Purge,
                            Some(&info.id),
                            &format!("erased by retention: idle since {last_activity}, policy max_idle_s {max_idle}"),
                        )?;
                        report.speakers_erased.push(info.id);
                    }
                }
            }
            report.speakers_erased.sort();
            if let Some(max_age) = policy.max_audio_age_s {
                let cutoff = actor.now.saturating_sub(max_age);
                let rows = tx.query(
                    "SELECT speaker_id, COUNT(*) FROM kept_audio WHERE recorded_at < ?1 GROUP BY speaker_id ORDER BY speaker_id",
                    params![cutoff],
                )?;
                for row in &rows {
                    let speaker = SpeakerId(row.text(0)?);
                    let n = to_u64(row.int(1)?, "kept audio count")?;
                    tx.execute(
                        "DELETE FROM kept_audio WHERE speaker_id = ?1 AND recorded_at < ?2",
                        params![&speaker.0, cutoff],
                    )?;
                    audit(
                        tx,
                        actor,
                        AuditAction::Purge,
                        Some(&speaker),
                        &format!("{n} kept recording(s) deleted by retention: policy max_audio_age_s {max_age}"),
                    )?;
                    report.audio_deleted += n;
                }
            }
            Ok(report)
        })
    }

    fn rotate_key(&mut self, actor: &Actor, new_key: StoreKey) -> StoreResult<()> {
        let new_fingerprint = new_key.fingerprint();
        self.tx(|tx, old_key| {
            let models = tx.query(
                "SELECT speaker_id, kind, model_version, sealed FROM voice_models ORDER BY speaker_id, kind",
                params![],
            )?;
            for row in &models {
                let speaker = SpeakerId(row.text(0)?);
                let kind = row.text(1)?;
                let version = row.text(2)?;
                let place = BlobPlace {
                    speaker: &speaker,
                    kind: &kind,
                    version: &version,
                };
                let plain = zeroize::Zeroizing::new(old_key.open(&place, &row.blob(3)?)?);
                let sealed = new_key.seal(&place, &plain)?;
                tx.execute(
                    "UPDATE voice_models SET sealed = ?1 WHERE speaker_id = ?2 AND kind = ?3",
                    params![sealed, &speaker.0, &kind],
                )?;
            }
            let audio_count = for_each_audio(tx, &mut |tx, audio| {
                let plain = zeroize::Zeroizing::new(open_audio(
                    old_key,
                    &audio.speaker,
                    audio.recorded_at,
                    &audio.format,
                    &audio.sealed,
                )?);
                let version = audio_version(&audio.format, audio.recorded_at);
                let place = BlobPlace {
                    speaker: &audio.speaker,
                    kind: AUDIO_KIND,
                    version: &version,
                };
                let sealed = new_key.seal(&place, &plain)?;
                tx.execute(
                    "UPDATE kept_audio SET sealed = ?1 WHERE id = ?2",
                    params![sealed, audio.id],
                )?;
                Ok(())
            })?;
            meta_set(tx, META_KEY_FINGERPRINT, &new_fingerprint)?;
            audit(
                tx,
                actor,
                AuditAction::RotateKey,
                None,
                &format!(
                    "re-encrypted {} model(s) and {} kept recording(s); new key fingerprint {new_fingerprint}",
                    models.len(),
                    audio_count
                ),
            )
        })?;
        self.key = new_key;
        Ok(())
    }

    fn integrity_check(&mut self) -> StoreResult<IntegrityReport> {
        let migrations = self.migrations;
        self.tx(|tx, key| {
            let mut report = IntegrityReport {
                problems: tx.engine_checks()?,
                ..IntegrityReport::default()
            };
            let problems = &mut report.problems;
            let version = read_version(tx)?;
            if version as usize != migrations.len() {
                problems.push(format!(
                    "schema version {version}: expected {}",
                    migrations.len()
                ));
            }
            match meta_get(tx, META_KEY_FINGERPRINT)? {
                Some(f) if f == key.fingerprint() => {}
                other => problems.push(format!(
                    "key fingerprint in meta is {other:?}: expected {:?}",
                    key.fingerprint()
                )),
            }
            for table in ["voice_models", "number_links", "consents", "kept_audio"] {
                let orphans = count(
                    tx,
                    &format!(
                        "SELECT COUNT(*) FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM speakers s WHERE s.id = t.speaker_id)"
                    ),
                )?;
                if orphans > 0 {
                    problems.push(format!("{orphans} row(s) of {table} belong to no speaker"));
                }
            }
            let without_consent = tx.query(
                "SELECT id FROM speakers s WHERE NOT EXISTS (SELECT 1 FROM consents c WHERE c.speaker_id = s.id) ORDER BY id",
                params![],
            )?;
            for row in &without_consent {
                problems.push(format!("speaker {:?} has no consent record", row.text(0)?));
            }
            let models = tx.query(
                &format!("SELECT {MODEL_COLUMNS}, sealed, speaker_id FROM voice_models ORDER BY speaker_id, kind"),
                params![],
            )?;
            for row in &models {
                let speaker = SpeakerId(row.text(6)?);
                match model_info(row) {
                    Ok(info) => {
                        if info.revision < 1 {
                            problems.push(format!("model {speaker}/{} has revision 0: expected ≥ 1", info.kind));
                        }
                        if let Err(e) = open_model(key, &speaker, &info, &row.blob(5)?) {
                            problems.push(e.to_string());
                        }
                    }
                    Err(e) => problems.push(format!("model of {speaker}: {e}")),
                }
            }
            report.models = models.len() as u64;
            report.kept_audio = for_each_audio(tx, &mut |_, audio| {
                if let Err(e) = open_audio(key, &audio.speaker, audio.recorded_at, &audio.format, &audio.sealed) {
                    problems.push(e.to_string());
                }
                Ok(())
            })?;
            let links = tx.query(&format!("SELECT {LINK_COLUMNS} FROM number_links"), params![])?;
            for row in &links {
                if let Err(e) = number_link(row) {
                    problems.push(format!("number link: {e}"));
                }
            }
            report.number_links = links.len() as u64;
            let entries = tx.query("SELECT id, at, operator, action, speaker_id, detail FROM audit_log", params![])?;
            for row in &entries {
                if let Err(e) = audit_entry(row) {
                    problems.push(format!("audit line: {e}"));
                }
            }
            report.audit_entries = entries.len() as u64;
            report.speakers = count(tx, "SELECT COUNT(*) FROM speakers")?;
            Ok(report)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate's schema plus one later migration, as a newer build would have it.
    static WITH_V2: &[&str] = &[
        MIGRATIONS[0],
        "ALTER TABLE speakers ADD COLUMN nickname TEXT; CREATE TABLE extra (x BIGINT NOT NULL);",
    ];

    fn consent() -> Consent {
        Consent {
            given_at: 1,
            method: "written".into(),
            operator: "op".into(),
            reference: String::new(),
        }
    }

    #[test]
    fn migrations_apply_in_order_keep_data_and_refuse_downgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let key = || StoreKey::from_bytes([5; 32]);
        let actor = Actor::new("op", 1);
        let enrollment = Enrollment {
            speaker: SpeakerId::from("s1"),
            display_name: "S".into(),
            external_id: None,
            models: vec![ModelBlob {
                kind: "gmm".into(),
                model_version: "v".into(),
                bytes: vec![9; 10],
            }],
            numbers: vec![],
            consent: consent(),
            keep_audio: vec![],
        };
        {
            let mut v1 =
                SqliteStore::open_sqlite_with_migrations(&path, key(), &MIGRATIONS[..1]).unwrap();
            assert_eq!(v1.schema_version().unwrap(), 1);
            v1.enroll(&actor, &enrollment).unwrap();
        }
        {
            let mut v2 = SqliteStore::open_sqlite_with_migrations(&path, key(), WITH_V2).unwrap();
            assert_eq!(v2.schema_version().unwrap(), 2);
            assert_eq!(
                v2.model(&enrollment.speaker, "gmm").unwrap().bytes,
                vec![9; 10]
            );
            let report = v2.integrity_check().unwrap();
            assert!(report.is_ok(), "{:?}", report.problems);
            v2.tx(|tx, _| {
                let rows = tx.query(
                    "SELECT version FROM schema_version ORDER BY version",
                    params![],
                )?;
                let versions: Vec<i64> =
                    rows.iter().map(|r| r.int(0)).collect::<StoreResult<_>>()?;
                assert_eq!(versions, vec![1, 2]);
                assert!(tx.table_exists("extra")?);
                Ok(())
            })
            .unwrap();
        }
        // This build's list is older than the database now.
        match SqliteStore::open_sqlite_with_migrations(&path, key(), &MIGRATIONS[..1]) {
            Err(StoreError::SchemaTooNew {
                found: 2,
                supported: 1,
            }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn a_failing_migration_leaves_the_database_untouched() {
        static BROKEN: &[&str] = &[
            MIGRATIONS[0],
            "CREATE TABLE extra (x BIGINT); THIS IS NOT SQL;",
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        let key = || StoreKey::from_bytes([5; 32]);
        drop(SqliteStore::open_sqlite_with_migrations(&path, key(), &MIGRATIONS[..1]).unwrap());
        assert!(matches!(
            SqliteStore::open_sqlite_with_migrations(&path, key(), BROKEN),
            Err(StoreError::Sqlite { .. })
        ));
        let mut store =
            SqliteStore::open_sqlite_with_migrations(&path, key(), &MIGRATIONS[..1]).unwrap();
        assert_eq!(store.schema_version().unwrap(), 1);
        assert!(!store.tx(|tx, _| tx.table_exists("extra")).unwrap());
    }
}
