//! The schema, as an ordered list of migrations written once for both SQL dialects.
//!
//! Each migration is a SQL script with two dialect tokens: `{blob}` (SQLite `BLOB`, PostgreSQL
//! `BYTEA`) and `{serial_pk}` (an auto-increment 64-bit primary key). Version *n* is the number of
//! migrations applied; the `schema_version` table records each one. Never edit a released
//! migration: append a new one.

/// The SQL dialect a script is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.35 or later.
    Sqlite,
    /// PostgreSQL 12 or later.
    Postgres,
}

impl Dialect {
    /// Replaces the dialect tokens in a script.
    pub(crate) fn render(self, script: &str) -> String {
        let (blob, serial_pk) = match self {
            Dialect::Sqlite => ("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"),
            Dialect::Postgres => ("BYTEA", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
        };
        script
            .replace("{blob}", blob)
            .replace("{serial_pk}", serial_pk)
    }
}

/// Created before any migration runs, so the version can be read from any database.
pub(crate) const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version BIGINT PRIMARY KEY,
    applied_at BIGINT NOT NULL
)";

/// The migrations, oldest first; `MIGRATIONS[i]` brings the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE speakers (
        id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        external_id TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        last_call_at BIGINT
    );
    CREATE TABLE voice_models (
        speaker_id TEXT NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        model_version TEXT NOT NULL,
        revision BIGINT NOT NULL CHECK (revision >= 1),
        sealed {blob} NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (speaker_id, kind)
    );
    CREATE INDEX voice_models_kind_version ON voice_models (kind, model_version);
    CREATE TABLE number_links (
        number TEXT NOT NULL,
        speaker_id TEXT NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
        call_count BIGINT NOT NULL CHECK (call_count >= 0),
        linked_at BIGINT NOT NULL,
        last_call_at BIGINT,
        PRIMARY KEY (number, speaker_id)
    );
    CREATE INDEX number_links_speaker ON number_links (speaker_id);
    CREATE TABLE consents (
        id {serial_pk},
        speaker_id TEXT NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
        given_at BIGINT NOT NULL,
        method TEXT NOT NULL,
        operator TEXT NOT NULL,
        reference TEXT NOT NULL
    );
    CREATE INDEX consents_speaker ON consents (speaker_id);
    CREATE TABLE kept_audio (
        id {serial_pk},
        speaker_id TEXT NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
        recorded_at BIGINT NOT NULL,
        format TEXT NOT NULL,
        sealed {blob} NOT NULL
    );
    CREATE INDEX kept_audio_speaker ON kept_audio (speaker_id);
    CREATE TABLE audit_log (
        id {serial_pk},
        at BIGINT NOT NULL,
        operator TEXT NOT NULL,
        action TEXT NOT NULL,
        speaker_id TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_log_speaker ON audit_log (speaker_id);",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_leaves_no_token() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for script in MIGRATIONS {
                let sql = dialect.render(script);
                assert!(!sql.contains('{') && !sql.contains('}'), "{sql}");
            }
        }
    }
}
