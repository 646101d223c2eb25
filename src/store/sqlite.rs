//! The embedded SQLite backend: one file, write-ahead log, foreign keys on, synchronous commits
//! (by default; see [`SqliteOptions`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{Value as SqliteValue, ValueRef};
use rusqlite::{params_from_iter, Connection, TransactionBehavior};

use super::error::{StoreError, StoreResult};
use super::schema::{Dialect, MIGRATIONS};
use super::sql::{context_of, Backend, Row, Sql, Value};
use super::{SqlStore, StoreKey};

/// How an SQLite store file is opened. Validated by [`SqliteOptions::validate`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SqliteOptions {
    /// `true` (default): every commit is flushed to disk (`synchronous = FULL`), so a committed
    /// enrollment survives power loss. `false`: `synchronous = NORMAL`, still safe against a
    /// process crash (the write-ahead log is in the OS's cache) but the last commits may be lost
    /// on power loss; commits are several times cheaper.
    pub durable_commits: bool,
    /// How long a writer waits for another process's write transaction before failing, in ms
    /// (1 ..= 600 000).
    pub busy_timeout_ms: u64,
    /// SQLite page cache per connection, in KiB (64 ..= 4 194 304). The default 64 MiB keeps a
    /// population's model blobs in memory while the engine loads them (1000 × 40 KiB models
    /// measured ~1.5× faster than with SQLite's own 2 MiB default).
    pub cache_kib: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durable_commits: true,
            busy_timeout_ms: 10_000,
            cache_kib: 64 * 1024,
        }
    }
}

impl SqliteOptions {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> StoreResult<()> {
        if !(1..=600_000).contains(&self.busy_timeout_ms) {
            return Err(StoreError::InvalidInput {
                field: "busy_timeout_ms",
                value: self.busy_timeout_ms.to_string(),
                expected: "1 ..= 600000 ms".to_string(),
            });
        }
        if !(64..=4_194_304).contains(&self.cache_kib) {
            return Err(StoreError::InvalidInput {
                field: "cache_kib",
                value: self.cache_kib.to_string(),
                expected: "64 ..= 4194304 KiB".to_string(),
            });
        }
        Ok(())
    }
}

/// The SQLite connection behind [`SqliteStore`].
pub struct SqliteBackend {
    conn: Connection,
}

/// The embedded store: a single SQLite file.
pub type SqliteStore = SqlStore<SqliteBackend>;

fn sqlite_err(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Sqlite { context, source }
}

impl SqlStore<SqliteBackend> {
    /// Opens (creating if needed) the store file at `path`, migrates its schema to the newest
    /// version and checks that `key` is the store's key ([`StoreError::WrongKey`] otherwise, with
    /// nothing written).
    pub fn open_sqlite(path: &Path, key: StoreKey) -> StoreResult<Self> {
        Self::open_sqlite_with(path, key, &SqliteOptions::default())
    }

    /// [`SqlStore::open_sqlite`] with explicit options.
    pub fn open_sqlite_with(
        path: &Path,
        key: StoreKey,
        options: &SqliteOptions,
    ) -> StoreResult<Self> {
        options.validate()?;
        let conn =
            Connection::open(path).map_err(sqlite_err(format!("opening {}", path.display())))?;
        Self::from_sqlite_connection(conn, key, options, MIGRATIONS)
    }

    /// [`SqlStore::open_sqlite`] with an explicit migration list (tests of the mechanism).
    #[cfg(test)]
    pub(crate) fn open_sqlite_with_migrations(
        path: &Path,
        key: StoreKey,
        migrations: &'static [&'static str],
    ) -> StoreResult<Self> {
        let conn =
            Connection::open(path).map_err(sqlite_err(format!("opening {}", path.display())))?;
        Self::from_sqlite_connection(conn, key, &SqliteOptions::default(), migrations)
    }

    /// A store in memory, gone when dropped (for tests and tools).
    pub fn open_sqlite_in_memory(key: StoreKey) -> StoreResult<Self> {
        let conn =
            Connection::open_in_memory().map_err(sqlite_err("opening an in-memory database"))?;
        Self::from_sqlite_connection(conn, key, &SqliteOptions::default(), MIGRATIONS)
    }

    fn from_sqlite_connection(
        conn: Connection,
        key: StoreKey,
        options: &SqliteOptions,
        migrations: &'static [&'static str],
    ) -> StoreResult<Self> {
        conn.busy_timeout(Duration::from_millis(options.busy_timeout_ms))
            .map_err(sqlite_err("setting the busy timeout"))?;
        // Switching a fresh file to WAL needs an exclusive lock, and SQLite answers BUSY at once
        // (without the busy handler) while another connection opens the same new file: retry
        // within the busy timeout.
        let deadline = std::time::Instant::now() + Duration::from_millis(options.busy_timeout_ms);
        let mode: String = loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => break other.map_err(sqlite_err("switching to write-ahead logging"))?,
            }
        };
        if mode != "wal" && mode != "memory" {
            return Err(StoreError::Corrupt {
                detail: format!(
                    "SQLite journal mode is {mode:?} after asking for WAL: expected \"wal\""
                ),
            });
        }
        let synchronous = if options.durable_commits {
            "FULL"
        } else {
            "NORMAL"
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{};",
            options.cache_kib
        ))
        .map_err(sqlite_err("setting synchronous commits and foreign keys"))?;
        SqlStore::open_with_migrations(SqliteBackend { conn }, key, migrations)
    }
}

impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn transaction<R>(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Sql) -> StoreResult<R>,
    ) -> StoreResult<R> {
        // IMMEDIATE takes the write lock up front, so two writers never deadlock on an upgrade.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_err("beginning a transaction"))?;
        let mut sql = SqliteTx { tx };
        let out = work(&mut sql)?;
        sql.tx.commit().map_err(sqlite_err("committing"))?;
        Ok(out)
    }
}

struct SqliteTx<'c> {
    tx: rusqlite::Transaction<'c>,
}

fn to_sqlite(params: &[Value]) -> impl Iterator<Item = SqliteValue> + '_ {
    params.iter().map(|v| match v {
        Value::Int(Some(i)) => SqliteValue::Integer(*i),
        Value::Text(Some(s)) => SqliteValue::Text(s.clone()),
        Value::Blob(Some(b)) => SqliteValue::Blob(b.clone()),
        Value::Int(None) | Value::Text(None) | Value::Blob(None) => SqliteValue::Null,
    })
}

impl Sql for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        self.tx
            .execute(sql, params_from_iter(to_sqlite(params)))
            .map(|n| n as u64)
            .map_err(sqlite_err(context_of(sql)))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let mut stmt = self.tx.prepare(sql).map_err(sqlite_err(context_of(sql)))?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(params_from_iter(to_sqlite(params)))
            .map_err(sqlite_err(context_of(sql)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite_err(context_of(sql)))? {
            let mut cells = Vec::with_capacity(columns);
            for i in 0..columns {
                let cell = row.get_ref(i).map_err(sqlite_err(context_of(sql)))?;
                cells.push(match cell {
                    ValueRef::Null => Value::Text(None),
                    ValueRef::Integer(v) => Value::Int(Some(v)),
                    ValueRef::Text(t) => Value::Text(Some(String::from_utf8_lossy(t).into_owned())),
                    ValueRef::Blob(b) => Value::Blob(Some(b.to_vec())),
                    ValueRef::Real(r) => {
                        return Err(StoreError::Corrupt {
                            detail: format!(
                                "column {i} holds the real {r}: our schema has no real columns"
                            ),
                        })
                    }
                });
            }
            out.push(Row(cells));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> StoreResult<()> {
        self.tx
            .execute_batch(sql)
            .map_err(sqlite_err(context_of(sql)))
    }

    fn table_exists(&mut self, name: &str) -> StoreResult<bool> {
        let rows = self.query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            &[Value::from(name)],
        )?;
        Ok(!rows.is_empty())
    }

    fn lock_for_migration(&mut self) -> StoreResult<()> {
        Ok(())
    }

    fn engine_checks(&mut self) -> StoreResult<Vec<String>> {
        let mut problems = Vec::new();
        for row in self.query("PRAGMA integrity_check", &[])? {
            let line = row.text(0)?;
            if line != "ok" {
                problems.push(format!("SQLite integrity_check: {line}"));
            }
        }
        for row in self.query("PRAGMA foreign_key_check", &[])? {
            problems.push(format!(
                "SQLite foreign_key_check: a row of table {} refers to a missing row of {}",
                row.text(0)?,
                row.text(2)?
            ));
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        assert!(SqliteOptions::default().validate().is_ok());
        for bad in [
            SqliteOptions {
                busy_timeout_ms: 0,
                ..SqliteOptions::default()
            },
            SqliteOptions {
                cache_kib: 1,
                ..SqliteOptions::default()
            },
        ] {
            assert!(matches!(
                bad.validate(),
                Err(StoreError::InvalidInput { .. })
            ));
            let dir = tempfile::tempdir().unwrap();
            let opened = SqlStore::open_sqlite_with(
                &dir.path().join("x.sqlite"),
                StoreKey::from_bytes([1; 32]),
                &bad,
            );
            assert!(opened.is_err());
            assert!(!dir.path().join("x.sqlite").exists(), "nothing created");
        }
    }
}
