//! Settings of the store-backed commands: command-line flags, then environment variables, then a
//! TOML config file, then built-in defaults (the first that gives a value wins).
//!
//! | setting            | flag                | environment                         | file key            | default                |
//! |--------------------|---------------------|-------------------------------------|---------------------|------------------------|
//! | config file        | `--config`          | `QUIVOX_CONFIG`                     | —                   | none                   |
//! | store              | `--store`           | `QUIVOX_STORE`                      | `store`             | `sqlite:quivox.sqlite` |
//! | PostgreSQL schema  | `--pg-schema`       | `QUIVOX_PG_SCHEMA`                  | `postgres_schema`   | `quivox`               |
//! | store key          | `--key-file`        | `QUIVOX_STORE_KEY` (the key itself), then `QUIVOX_KEY_FILE` | `key_file` | `quivox.key` |
//! | models             | `--models`          | `QUIVOX_MODELS`                     | `models`            | `models` (folder: fused system; a `.qvx` file: GMM-UBM alone) |
//! | operator (audit)   | `--operator`        | `QUIVOX_OPERATOR`                   | `operator`          | `$USER`, else `quivox-cli` |
//! | engine options     | `--confidence`      | —                                   | `[engine]` table    | the engine's defaults  |
//! | SQLite options     | —                   | —                                   | `[sqlite]` table    | the store's defaults   |
//! | verify prior       | —                   | —                                   | `verify_prior`      | the service's (0.5)    |
//!
//! Relative paths in the config file are relative to the file's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use quivox::engine::EngineOptions;
use quivox::store::{PostgresStore, SqliteOptions, SqliteStore, Store, StoreKey, KEY_ENV_VAR};
use serde::Deserialize;

use crate::outcome::{CliError, Exit};

/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "QUIVOX_CONFIG";
/// Environment variable with the store location.
pub const STORE_ENV: &str = "QUIVOX_STORE";
/// Environment variable with the PostgreSQL schema.
pub const PG_SCHEMA_ENV: &str = "QUIVOX_PG_SCHEMA";
/// Environment variable with the key file path (the key itself goes in [`KEY_ENV_VAR`]).
pub const KEY_FILE_ENV: &str = "QUIVOX_KEY_FILE";
/// Environment variable with the model file.
pub const MODELS_ENV: &str = "QUIVOX_MODELS";
/// Environment variable with the operator name.
pub const OPERATOR_ENV: &str = "QUIVOX_OPERATOR";

/// Default store when nothing says otherwise.
pub const DEFAULT_STORE: &str = "sqlite:quivox.sqlite";
/// Default key file.
pub const DEFAULT_KEY_FILE: &str = "quivox.key";
/// Default model file.
pub const DEFAULT_MODELS: &str = "models";
/// Default PostgreSQL schema.
pub const DEFAULT_PG_SCHEMA: &str = "quivox";

/// Options shared by every store-backed command (flattened into each one's arguments).
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// TOML config file [env: QUIVOX_CONFIG].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store: `sqlite:PATH` (or a bare path) or `postgres://user@host:port/db` [env: QUIVOX_STORE].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// PostgreSQL schema holding the population [env: QUIVOX_PG_SCHEMA].
    #[arg(long, value_name = "NAME")]
    pub pg_schema: Option<String>,
    /// File with the store key (64 hex digits) [env: QUIVOX_STORE_KEY holds the key itself,
    /// QUIVOX_KEY_FILE a path].
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// GMM-UBM model file [env: QUIVOX_MODELS].
    #[arg(long, value_name = "FILE")]
    pub models: Option<PathBuf>,
    /// Operator name written to the audit log [env: QUIVOX_OPERATOR].
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// Posterior a voice decision needs, in (0, 1) (overrides the config's [engine] confidence).
    #[arg(long, value_name = "P")]
    pub confidence: Option<f64>,
    /// Machine-readable output: one JSON document on stdout (errors: one on stderr).
    #[arg(long)]
    pub json: bool,
}

/// The config file's contents. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Store location (`sqlite:PATH` or `postgres://...`).
    pub store: Option<String>,
    /// PostgreSQL schema.
    pub postgres_schema: Option<String>,
    /// Key file path.
    pub key_file: Option<PathBuf>,
    /// Model file path.
    pub models: Option<PathBuf>,
    /// Operator name for the audit log.
    pub operator: Option<String>,
    /// Engine options (see `quivox::engine::EngineOptions`; missing keys keep their defaults).
    pub engine: Option<EngineOptions>,
    /// SQLite options (`durable_commits`, `busy_timeout_ms`, `cache_kib`).
    pub sqlite: Option<SqliteOptions>,
    /// Prior probability that a claimed identity is true, for `verify`, in (0, 1).
    pub verify_prior: Option<f64>,
}

impl ConfigFile {
    /// Reads and parses a config file; relative paths in it become relative to its folder.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let exit = if e.kind() == std::io::ErrorKind::NotFound {
                Exit::NotFound
            } else {
                Exit::Error
            };
            CliError::new(exit, format!("config file {}: {e}", path.display()))
        })?;
        let mut file: ConfigFile = toml::from_str(&text).map_err(|e| {
            CliError::new(
                Exit::Usage,
                format!("config file {}: {}", path.display(), e.message()),
            )
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        let rebase = |p: &mut Option<PathBuf>| {
            if let Some(p) = p {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        };
        rebase(&mut file.key_file);
        rebase(&mut file.models);
        if let Some(store) = &file.store {
            if let StoreLocation::Sqlite(p) = StoreLocation::parse(store)? {
                if p.is_relative() {
                    file.store = Some(format!("sqlite:{}", base.join(p).display()));
                }
            }
        }
        Ok(file)
    }
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl StoreLocation {
    /// Parses `sqlite:PATH`, `postgres://...`, `postgresql://...`, or a bare path (SQLite).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(text.to_string()));
        }
        let path = text.strip_prefix("sqlite:").unwrap_or(text);
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() || (!text.starts_with("sqlite:") && text.contains("://")) {
            return Err(CliError::new(
                Exit::Usage,
                format!("store {text:?}: expected sqlite:PATH, a file path, or postgres://user@host:port/db"),
            )
            .into());
        }
        Ok(StoreLocation::Sqlite(PathBuf::from(path)))
    }

    /// The location for messages, without a PostgreSQL password.
    pub fn display(&self) -> String {
        match self {
            StoreLocation::Sqlite(p) => format!("sqlite:{}", p.display()),
            StoreLocation::Postgres(url) => redact_password(url),
        }
    }
}

fn redact_password(url: &str) -> String {
    // postgres://user:secret@host → postgres://user:***@host
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Where the store key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The hex key in the environment variable [`KEY_ENV_VAR`].
    Env,
    /// A key file.
    File(PathBuf),
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Store location.
    pub store: StoreLocation,
    /// PostgreSQL schema.
    pub pg_schema: String,
    /// Where the key comes from.
    pub key: KeySource,
    /// Model file.
    pub models: PathBuf,
    /// Operator name for the audit log.
    pub operator: String,
    /// Engine options (validated).
    pub engine: EngineOptions,
    /// SQLite options.
    pub sqlite: SqliteOptions,
    /// Prior of a claimed identity for `verify` (the service's default when `None`).
    pub verify_prior: Option<f64>,
    /// The config file used, if any.
    pub config_file: Option<PathBuf>,
    /// JSON output.
    pub json: bool,
}

/// Something that answers environment look-ups (the process environment, or a map in tests).
pub trait Env {
    /// The variable's value, if set and non-empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Env for BTreeMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string())
    }
}

impl Settings {
    /// Resolves flags > environment > config file > defaults, reading the config file named by
    /// the flag or the environment.
    pub fn resolve(args: &CommonArgs, env: &dyn Env) -> anyhow::Result<Self> {
        let config_file = args
            .config
            .clone()
            .or_else(|| env.var(CONFIG_ENV).map(PathBuf::from));
        let file = match &config_file {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let mut settings = Self::merge(args, env, &file)?;
        settings.config_file = config_file;
        Ok(settings)
    }

    /// The precedence rule itself, on an already parsed config file.
    pub fn merge(args: &CommonArgs, env: &dyn Env, file: &ConfigFile) -> anyhow::Result<Self> {
        let store_text = args
            .store
            .clone()
            .or_else(|| env.var(STORE_ENV))
            .or_else(|| file.store.clone())
            .unwrap_or_else(|| DEFAULT_STORE.to_string());
        let store = StoreLocation::parse(&store_text)?;
        let pg_schema = args
            .pg_schema
            .clone()
            .or_else(|| env.var(PG_SCHEMA_ENV))
            .or_else(|| file.postgres_schema.clone())
            .unwrap_or_else(|| DEFAULT_PG_SCHEMA.to_string());
        let key = if let Some(path) = &args.key_file {
            KeySource::File(path.clone())
        } else if env.var(KEY_ENV_VAR).is_some() {
            KeySource::Env
        } else if let Some(path) = env.var(KEY_FILE_ENV) {
            KeySource::File(PathBuf::from(path))
        } else {
            KeySource::File(
                file.key_file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_FILE)),
            )
        };
        let models = args
            .models
            .clone()
            .or_else(|| env.var(MODELS_ENV).map(PathBuf::from))
            .or_else(|| file.models.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODELS));
        let operator = args
            .operator
            .clone()
            .or_else(|| env.var(OPERATOR_ENV))
            .or_else(|| file.operator.clone())
            .or_else(|| env.var("USER"))
            .unwrap_or_else(|| "quivox-cli".to_string());
        let mut engine = file.engine.clone().unwrap_or_default();
        if let Some(confidence) = args.confidence {
            engine.confidence = confidence;
        }
        engine
            .validate()
            .map_err(|e| CliError::new(Exit::Usage, format!("engine options: {e}")))?;
        let sqlite = file.sqlite.clone().unwrap_or_default();
        sqlite
            .validate()
            .map_err(|e| CliError::new(Exit::Usage, format!("sqlite options: {e}")))?;
        if let Some(p) = file.verify_prior {
            if !(p > 0.0 && p < 1.0) {
                return Err(CliError::new(
                    Exit::Usage,
                    format!("verify_prior = {p}: expected a probability strictly between 0 and 1"),
                )
                .into());
            }
        }
        Ok(Self {
            verify_prior: file.verify_prior,
            store,
            pg_schema,
            key,
            models,
            operator,
            engine,
            sqlite,
            config_file: None,
            json: args.json,
        })
    }

    /// Reads the store key from its source.
    pub fn load_key(&self) -> anyhow::Result<StoreKey> {
        let key = match &self.key {
            KeySource::Env => StoreKey::from_env(),
            KeySource::File(path) => {
                if !path.exists() {
                    return Err(CliError::new(
                        Exit::Store,
                        format!(
                            "store key file {} does not exist: create one with `quivox init` or `quivox keygen`, \
                             or give the key in {KEY_ENV_VAR}",
                            path.display()
                        ),
                    )
                    .into());
                }
                warn_if_shared(path);
                StoreKey::from_file(path)
            }
        };
        Ok(key?)
    }

    /// Opens the store with the configured key. An SQLite file must exist unless `create`.
    pub fn open_store(&self, create: bool) -> anyhow::Result<Box<dyn Store>> {
        let key = self.load_key()?;
        self.open_store_with(key, create)
    }

    /// Opens the store with an explicit key.
    pub fn open_store_with(&self, key: StoreKey, create: bool) -> anyhow::Result<Box<dyn Store>> {
        Ok(match &self.store {
            StoreLocation::Sqlite(path) => {
                if !create && !path.exists() {
                    return Err(CliError::new(
                        Exit::NotFound,
                        format!(
                            "store {} does not exist: create it with `quivox init` (or point --store / {STORE_ENV} at it)",
                            path.display()
                        ),
                    )
                    .into());
                }
                Box::new(
                    SqliteStore::open_sqlite_with(path, key, &self.sqlite)
                        .with_context(|| format!("opening the store {}", self.store.display()))?,
                )
            }
            StoreLocation::Postgres(url) => Box::new(
                PostgresStore::open_postgres(url, &self.pg_schema, key).with_context(|| {
                    format!(
                        "opening the store {} (schema {})",
                        self.store.display(),
                        self.pg_schema
                    )
                })?,
            ),
        })
    }
}

/// Warns on stderr when a key file is readable or writable by group or others.
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                crate::outcome::warn(&format!(
                    "store key file {} has mode {mode:03o}: other users may read it; run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> ConfigFile {
        toml::from_str(
            r#"
            store = "sqlite:/from/file.sqlite"
            key_file = "/from/file.key"
            models = "/from/file.qvx"
            operator = "file-op"
            postgres_schema = "file_schema"
            [engine]
            confidence = 0.95
            [sqlite]
            durable_commits = false
            "#,
        )
        .unwrap()
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let file = file();
        let env: BTreeMap<&str, &str> = [
            (STORE_ENV, "sqlite:/from/env.sqlite"),
            (KEY_FILE_ENV, "/from/env.key"),
            (MODELS_ENV, "/from/env.qvx"),
            (OPERATOR_ENV, "env-op"),
            (PG_SCHEMA_ENV, "env_schema"),
        ]
        .into_iter()
        .collect();
        let flags = CommonArgs {
            store: Some("postgres://u:secret@h/db".into()),
            key_file: Some("/from/flag.key".into()),
            models: Some("/from/flag.qvx".into()),
            operator: Some("flag-op".into()),
            pg_schema: Some("flag_schema".into()),
            confidence: Some(0.9),
            ..Default::default()
        };
        let s = Settings::merge(&flags, &env, &file).unwrap();
        assert_eq!(
            s.store,
            StoreLocation::Postgres("postgres://u:secret@h/db".into())
        );
        assert_eq!(s.store.display(), "postgres://u:***@h/db");
        assert_eq!(s.key, KeySource::File("/from/flag.key".into()));
        assert_eq!(s.models, PathBuf::from("/from/flag.qvx"));
        assert_eq!(s.operator, "flag-op");
        assert_eq!(s.pg_schema, "flag_schema");
        assert_eq!(s.engine.confidence, 0.9);

        let none = CommonArgs::default();
        let s = Settings::merge(&none, &env, &file).unwrap();
        assert_eq!(s.store, StoreLocation::Sqlite("/from/env.sqlite".into()));
        assert_eq!(s.key, KeySource::File("/from/env.key".into()));
        assert_eq!(s.models, PathBuf::from("/from/env.qvx"));
        assert_eq!(s.operator, "env-op");
        assert_eq!(s.pg_schema, "env_schema");
        assert_eq!(s.engine.confidence, 0.95);
        assert!(!s.sqlite.durable_commits);

        // The key itself in the environment beats a key-file path anywhere but the flag.
        let mut with_key = env.clone();
        with_key.insert(KEY_ENV_VAR, "00");
        let s = Settings::merge(&none, &with_key, &file).unwrap();
        assert_eq!(s.key, KeySource::Env);

        let empty: BTreeMap<&str, &str> = BTreeMap::new();
        let s = Settings::merge(&none, &empty, &file).unwrap();
        assert_eq!(s.store, StoreLocation::Sqlite("/from/file.sqlite".into()));
        assert_eq!(s.key, KeySource::File("/from/file.key".into()));
        assert_eq!(s.models, PathBuf::from("/from/file.qvx"));
        assert_eq!(s.operator, "file-op");
        assert_eq!(s.pg_schema, "file_schema");

        let s = Settings::merge(&none, &empty, &ConfigFile::default()).unwrap();
        assert_eq!(s.store, StoreLocation::Sqlite(DEFAULT_STORE[7..].into()));
        assert_eq!(s.key, KeySource::File(DEFAULT_KEY_FILE.into()));
        assert_eq!(s.models, PathBuf::from(DEFAULT_MODELS));
        assert_eq!(s.operator, "quivox-cli");
        assert_eq!(s.pg_schema, DEFAULT_PG_SCHEMA);
        assert_eq!(s.engine, EngineOptions::default());
        // An empty environment value counts as unset.
        let blank: BTreeMap<&str, &str> = [(STORE_ENV, "")].into_iter().collect();
        let s = Settings::merge(&none, &blank, &ConfigFile::default()).unwrap();
        assert_eq!(s.store, StoreLocation::Sqlite(DEFAULT_STORE[7..].into()));
    }

    #[test]
    fn the_documented_example_config_parses_and_validates() {
        let text = include_str!("../quivox.example.toml");
        let file: ConfigFile = toml::from_str(text).unwrap();
        assert_eq!(file.operator.as_deref(), Some("agent-7"));
        assert_eq!(file.engine.as_ref().unwrap().confidence, 0.99);
        let empty: BTreeMap<&str, &str> = BTreeMap::new();
        let s = Settings::merge(&CommonArgs::default(), &empty, &file).unwrap();
        assert_eq!(
            s.store,
            StoreLocation::Sqlite("/var/lib/quivox/quivox.sqlite".into())
        );
        assert_eq!(s.engine, EngineOptions::default());
        assert_eq!(s.sqlite, SqliteOptions::default());
    }

    #[test]
    fn store_locations_parse() {
        assert_eq!(
            StoreLocation::parse("sqlite:a/b.db").unwrap(),
            StoreLocation::Sqlite("a/b.db".into())
        );
        assert_eq!(
            StoreLocation::parse("sqlite:///abs/b.db").unwrap(),
            StoreLocation::Sqlite("/abs/b.db".into())
        );
        assert_eq!(
            StoreLocation::parse("plain.sqlite").unwrap(),
            StoreLocation::Sqlite("plain.sqlite".into())
        );
        assert!(matches!(
            StoreLocation::parse("postgresql://h/db").unwrap(),
            StoreLocation::Postgres(_)
        ));
        assert!(StoreLocation::parse("mysql://h/db").is_err());
        assert!(StoreLocation::parse("sqlite:").is_err());
    }

    #[test]
    fn config_file_paths_are_relative_to_the_file_and_unknown_keys_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quivox.toml");
        std::fs::write(
            &path,
            "store = \"sqlite:s.sqlite\"\nkey_file = \"k.key\"\n[engine]\nconfidence = 0.97\n",
        )
        .unwrap();
        let f = ConfigFile::load(&path).unwrap();
        assert_eq!(
            f.store.as_deref(),
            Some(format!("sqlite:{}", dir.path().join("s.sqlite").display()).as_str())
        );
        assert_eq!(f.key_file, Some(dir.path().join("k.key")));
        assert_eq!(f.engine.unwrap().confidence, 0.97);
        std::fs::write(&path, "stor = \"typo\"\n").unwrap();
        let err = ConfigFile::load(&path).unwrap_err();
        assert_eq!(crate::outcome::exit_of(&err), Exit::Usage);
        // Out-of-range engine options are refused at resolution.
        let bad: ConfigFile = toml::from_str("[engine]\nconfidence = 1.5\n").unwrap();
        let empty: BTreeMap<&str, &str> = BTreeMap::new();
        assert!(Settings::merge(&CommonArgs::default(), &empty, &bad).is_err());
    }
}
