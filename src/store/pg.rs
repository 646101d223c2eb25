//! The PostgreSQL backend, for several gateways sharing one enrolled population.

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

use super::error::{StoreError, StoreResult};
use super::schema::Dialect;
use super::sql::{context_of, Backend, Row, Sql, Value};
use super::{SqlStore, StoreKey};

/// Advisory-lock id that serialises schema migrations between gateways ("quivox" in ASCII).
const MIGRATION_LOCK_ID: i64 = 0x71_75_69_76_6f_78;

/// The PostgreSQL connection behind [`PostgresStore`].
pub struct PostgresBackend {
    client: Client,
}

/// The shared store: one PostgreSQL schema.
pub type PostgresStore = SqlStore<PostgresBackend>;

fn pg_err(context: impl Into<String>) -> impl FnOnce(postgres::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Postgres { context, source }
}

/// Whether `name` is a plain lower-case SQL identifier (so it can be quoted safely).
fn check_schema_name(name: &str) -> StoreResult<()> {
    let mut chars = name.chars();
    let ok = name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            field: "PostgreSQL schema",
            value: name.to_string(),
            expected: "1 to 63 characters of a-z, 0-9, '_', not starting with a digit".to_string(),
        })
    }
}

impl SqlStore<PostgresBackend> {
    /// Connects to `url` (e.g. `postgres://user:password@host:5432/db`), uses (creating it if
    /// needed) the schema `schema` — several populations can share a database — migrates it and
    /// checks `key` ([`StoreError::WrongKey`] otherwise, with nothing written).
    ///
    /// The connection is made without TLS: use a local socket-equivalent network (same host,
    /// VPN, SSH tunnel). Voiceprints and audio are encrypted before they leave the process;
    /// names, numbers and the audit log are not.
    pub fn open_postgres(url: &str, schema: &str, key: StoreKey) -> StoreResult<Self> {
        check_schema_name(schema)?;
        let mut client =
            Client::connect(url, NoTls).map_err(pg_err("connecting to the database"))?;
        // CREATE SCHEMA IF NOT EXISTS can still collide when two gateways start at once: create
        // it under the migration lock (session level, released with the connection on error).
        // Separate statements: a multi-statement batch would be one implicit transaction, whose
        // unlock would come before its commit.
        let context = format!("creating the schema {schema}");
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_ID])
            .map_err(pg_err(context.clone()))?;
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .map_err(pg_err(context.clone()))?;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_ID])
            .map_err(pg_err(context))?;
        client
            .batch_execute(&format!("SET search_path TO \"{schema}\""))
            .map_err(pg_err(format!("selecting the schema {schema}")))?;
        SqlStore::open_with(PostgresBackend { client }, key)
    }
}

impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn transaction<R>(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Sql) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let tx = self
            .client
            .transaction()
            .map_err(pg_err("beginning a transaction"))?;
        let mut sql = PgTx { tx };
        let out = work(&mut sql)?;
        sql.tx.commit().map_err(pg_err("committing"))?;
        Ok(out)
    }
}

struct PgTx<'c> {
    tx: postgres::Transaction<'c>,
}

/// Rewrites `?1` placeholders as PostgreSQL's `$1`.
fn to_pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn to_pg(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|v| match v {
            Value::Int(x) => x as &(dyn ToSql + Sync),
            Value::Text(x) => x as &(dyn ToSql + Sync),
            Value::Blob(x) => x as &(dyn ToSql + Sync),
        })
        .collect()
}

impl Sql for PgTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64> {
        self.tx
            .execute(&to_pg_placeholders(sql), &to_pg(params))
            .map_err(pg_err(context_of(sql)))
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>> {
        let rows = self
            .tx
            .query(&to_pg_placeholders(sql), &to_pg(params))
            .map_err(pg_err(context_of(sql)))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut cells = Vec::with_capacity(row.len());
            for (i, column) in row.columns().iter().enumerate() {
                let ty = column.type_();
                let cell = if *ty == Type::INT8 {
                    row.try_get::<_, Option<i64>>(i).map(Value::Int)
                } else if *ty == Type::INT4 {
                    row.try_get::<_, Option<i32>>(i)
                        .map(|v| Value::Int(v.map(i64::from)))
                } else if *ty == Type::INT2 {
                    row.try_get::<_, Option<i16>>(i)
                        .map(|v| Value::Int(v.map(i64::from)))
                } else if *ty == Type::BYTEA {
                    row.try_get::<_, Option<Vec<u8>>>(i).map(Value::Blob)
                } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
                    row.try_get::<_, Option<String>>(i).map(Value::Text)
                } else {
                    return Err(StoreError::Corrupt {
                        detail: format!(
                            "column {:?} has PostgreSQL type {ty}: expected bigint, integer, text or bytea",
                            column.name()
                        ),
                    });
                };
                cells.push(cell.map_err(pg_err(context_of(sql)))?);
            }
            out.push(Row(cells));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> StoreResult<()> {
        self.tx.batch_execute(sql).map_err(pg_err(context_of(sql)))
    }

    fn table_exists(&mut self, name: &str) -> StoreResult<bool> {
        let rows = self.query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?1",
            &[Value::from(name)],
        )?;
        Ok(!rows.is_empty())
    }

    fn lock_for_migration(&mut self) -> StoreResult<()> {
        self.tx
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_ID])
            .map_err(pg_err("taking the migration lock"))?;
        Ok(())
    }

    fn engine_checks(&mut self) -> StoreResult<Vec<String>> {
        // PostgreSQL keeps its own structures consistent (WAL, checksums when enabled); what it
        // cannot know is checked by the common invariants. Still make sure the schema is ours.
        let mut problems = Vec::new();
        for table in [
            "meta",
            "speakers",
            "voice_models",
            "number_links",
            "consents",
            "kept_audio",
            "audit_log",
        ] {
            if !self.table_exists(table)? {
                problems.push(format!("table {table} is missing from the schema"));
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten() {
        assert_eq!(
            to_pg_placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = $12"
        );
    }

    #[test]
    fn schema_names_are_checked() {
        assert!(check_schema_name("quivox_test_1").is_ok());
        assert!(check_schema_name("Bad").is_err());
        assert!(check_schema_name("1abc").is_err());
        assert!(check_schema_name("a\"b").is_err());
        assert!(check_schema_name("").is_err());
    }
}
