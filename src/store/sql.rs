//! The small SQL interface both backends implement, so the store's logic is written once.

use super::error::{StoreError, StoreResult};
use super::schema::Dialect;

/// A parameter or a column value. Nulls carry a type because PostgreSQL needs one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A 64-bit integer (SQLite INTEGER, PostgreSQL BIGINT).
    Int(Option<i64>),
    /// Text.
    Text(Option<String>),
    /// Bytes (SQLite BLOB, PostgreSQL BYTEA).
    Blob(Option<Vec<u8>>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_string()))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_string))
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(Some(v))
    }
}

/// Builds a parameter slice: `params![a, b]` is `&[Value::from(a), Value::from(b)]`.
macro_rules! params {
    () => { &[] as &[$crate::store::sql::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::store::sql::Value::from($v)),+] };
}
pub(crate) use params;

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn cell(&self, i: usize) -> StoreResult<&Value> {
        self.0.get(i).ok_or_else(|| StoreError::Corrupt {
            detail: format!(
                "result row has {} columns: expected at least {}",
                self.0.len(),
                i + 1
            ),
        })
    }

    fn mismatch(&self, i: usize, expected: &str) -> StoreError {
        StoreError::Corrupt {
            detail: format!("column {i} holds {:?}: expected {expected}", self.0[i]),
        }
    }

    /// An integer that may be null.
    pub fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        match self.cell(i)? {
            Value::Int(v) => Ok(*v),
            Value::Text(None) | Value::Blob(None) => Ok(None),
            _ => Err(self.mismatch(i, "an integer")),
        }
    }

    /// A non-null integer.
    pub fn int(&self, i: usize) -> StoreResult<i64> {
        self.opt_int(i)?
            .ok_or_else(|| self.mismatch(i, "a non-null integer"))
    }

    /// Text that may be null.
    pub fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        match self.cell(i)? {
            Value::Text(v) => Ok(v.clone()),
            Value::Int(None) | Value::Blob(None) => Ok(None),
            _ => Err(self.mismatch(i, "text")),
        }
    }

    /// Non-null text.
    pub fn text(&self, i: usize) -> StoreResult<String> {
        self.opt_text(i)?
            .ok_or_else(|| self.mismatch(i, "non-null text"))
    }

    /// Non-null bytes.
    pub fn blob(&self, i: usize) -> StoreResult<Vec<u8>> {
        match self.cell(i)? {
            Value::Blob(Some(v)) => Ok(v.clone()),
            _ => Err(self.mismatch(i, "bytes")),
        }
    }
}

/// A transaction on one of the backends. Statements use `?1`, `?2`, … placeholders (the
/// PostgreSQL backend rewrites them to `$1`, `$2`, …).
pub trait Sql {
    /// Which dialect scripts must be rendered in.
    fn dialect(&self) -> Dialect;
    /// Runs one statement; returns the number of rows changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64>;
    /// Runs one query; returns all rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>>;
    /// Runs a script of several statements without parameters.
    fn batch(&mut self, sql: &str) -> StoreResult<()>;
    /// Whether a table of that name exists in the store's schema.
    fn table_exists(&mut self, name: &str) -> StoreResult<bool>;
    /// Serialises concurrent schema migrations (several gateways starting at once). SQLite's
    /// write transaction already does this.
    fn lock_for_migration(&mut self) -> StoreResult<()>;
    /// The database engine's own consistency checks; returns the problems found.
    fn engine_checks(&mut self) -> StoreResult<Vec<String>>;
}

/// A database connection that can run closures in a transaction: commit if the closure returns
/// `Ok`, roll back otherwise. Sealed: implemented by the SQLite and PostgreSQL backends only.
pub trait Backend: Send {
    /// Short name of the backend ("sqlite", "postgres").
    fn name(&self) -> &'static str;
    #[doc(hidden)]
    fn transaction<R>(
        &mut self,
        work: &mut dyn FnMut(&mut dyn Sql) -> StoreResult<R>,
    ) -> StoreResult<R>;
}

/// Shortens a statement for error messages.
pub(crate) fn context_of(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.len() > 90 {
        let mut end = 90;
        while !one_line.is_char_boundary(end) {
            end -= 1;
        }
        format!("running `{}…`", &one_line[..end])
    } else {
        format!("running `{one_line}`")
    }
}
