//! Exit codes, error classification and printing, JSON/human output, progress bars.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use quivox::audio::AudioError;
use quivox::engine::EngineError;
use quivox::model_io::ModelIoError;
use quivox::service::ServiceError;
use quivox::store::StoreError;
use serde::Serialize;

/// The process exit codes (documented in the crate README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success (identify: the voice identified an enrolled caller; verify: accepted).
    Ok = 0,
    /// 1: any other error (I/O, bad model file, internal).
    Error = 1,
    /// 2: bad usage: unknown command or flag, malformed argument or config file.
    Usage = 2,
    /// 3: something named does not exist: speaker, number link, input file, store file.
    NotFound = 3,
    /// 4: enrollment audio refused by a quality check (too little speech, clipping, noise).
    Refused = 4,
    /// 5: store or key problem: wrong or malformed key, missing key file, undecryptable blob,
    /// corrupt or unreachable database, failed integrity check.
    Store = 5,
    /// 6: identify/verify made no voice decision (too little or unusable speech; identify may
    /// still have a number-only answer).
    NoDecision = 6,
    /// 7: the voice was rejected: identify heard an unknown caller or a voice contradicting the
    /// calling number; verify did not accept the claimed identity.
    Rejected = 7,
    /// 8: no usable audio input device (microphone).
    NoDevice = 8,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// A short name, used in JSON errors.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Error => "error",
            Exit::Usage => "usage",
            Exit::NotFound => "not_found",
            Exit::Refused => "refused",
            Exit::Store => "store",
            Exit::NoDecision => "no_decision",
            Exit::Rejected => "rejected",
            Exit::NoDevice => "no_device",
        }
    }
}

/// An error that carries its exit code.
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub exit: Exit,
    /// Message.
    pub message: String,
}

impl CliError {
    /// A new error.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

fn exit_of_store(e: &StoreError) -> Exit {
    match e {
        StoreError::NotFound { .. } => Exit::NotFound,
        StoreError::InvalidInput { .. } => Exit::Usage,
        StoreError::AlreadyExists { .. } => Exit::Error,
        _ => Exit::Store,
    }
}

fn exit_of_engine(e: &EngineError) -> Option<Exit> {
    Some(match e {
        EngineError::EnrollmentRefused { .. } => Exit::Refused,
        EngineError::UnknownSpeaker(_) => Exit::NotFound,
        EngineError::Number(_) | EngineError::InvalidOption { .. } => Exit::Usage,
        _ => return None,
    })
}

/// The exit code of an error: the first cause in its chain that says something specific.
pub fn exit_of(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<CliError>() {
            return e.exit;
        }
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            return exit_of_store(e);
        }
        if let Some(e) = cause.downcast_ref::<EngineError>() {
            if let Some(exit) = exit_of_engine(e) {
                return exit;
            }
        }
        if let Some(e) = cause.downcast_ref::<ServiceError>() {
            match e {
                ServiceError::Engine(e) => {
                    if let Some(exit) = exit_of_engine(e) {
                        return exit;
                    }
                }
                ServiceError::Store(e) => return exit_of_store(e),
                ServiceError::UnknownSpeaker(_) => return Exit::NotFound,
                ServiceError::InvalidRequest { .. } => return Exit::Usage,
                ServiceError::ModelFile { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Exit::NotFound
                }
                _ => {}
            }
        }
        if let Some(AudioError::Io { source, .. }) = cause.downcast_ref::<AudioError>() {
            if source.kind() == std::io::ErrorKind::NotFound {
                return Exit::NotFound;
            }
        }
        if let Some(ModelIoError::Io { source, .. }) = cause.downcast_ref::<ModelIoError>() {
            if source.kind() == std::io::ErrorKind::NotFound {
                return Exit::NotFound;
            }
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            if e.kind() == std::io::ErrorKind::NotFound {
                return Exit::NotFound;
            }
        }
    }
    Exit::Error
}

/// An error and its causes joined by ": ", as `{error:#}` prints them, except that a cause whose
/// message the previous one already ends with is left out: several library errors print their
/// source in their own message and also return it from `source()`, which would show it twice
/// ("cannot read F: No such file…: No such file…").
pub fn chain_message(error: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in error.chain() {
        let message = cause.to_string();
        if !last.is_empty() && last.ends_with(&message) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&message);
        last = message;
    }
    out
}

/// Prints an error (human: `error: ...` with its causes; JSON: one object) to stderr and returns
/// its exit code.
pub fn report_error(error: &anyhow::Error, json: bool) -> Exit {
    let exit = exit_of(error);
    let message = chain_message(error);
    if json {
        let doc = serde_json::json!({
            "error": message,
            "exit_code": exit.code(),
            "kind": exit.name(),
        });
        eprintln!("{doc}");
    } else {
        eprintln!("error: {message}");
    }
    exit
}

/// Whether `--json` was given (set once in `main`; shapes warnings and errors on stderr).
static JSON_MODE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records whether the command line asked for JSON.
pub fn set_json_mode(json: bool) {
    JSON_MODE.store(json, std::sync::atomic::Ordering::Relaxed);
}

/// Prints a warning on stderr: `warning: ...`, or a `{"warning": ...}` JSON line with `--json`.
pub fn warn(message: &str) {
    if JSON_MODE.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{}", serde_json::json!({ "warning": message }));
    } else {
        eprintln!("warning: {message}");
    }
}

/// Prints a status line on stderr (`{"status": ...}` with `--json`).
pub fn status(message: &str) {
    if JSON_MODE.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("{}", serde_json::json!({ "status": message }));
    } else {
        eprintln!("{message}");
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Whether progress bars and meters should be drawn (stderr is a terminal).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// A progress bar on stderr, or a hidden one when stderr is not a terminal.
pub fn progress_bar(len: u64, message: &str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(message.to_string());
    pb
}

/// A spinner on stderr, or a hidden one when stderr is not a terminal.
pub fn spinner(message: &str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_message(message.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
pub fn utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm, public domain description).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_matches_known_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 12:34:56 UTC (leap day), from `date -u -d @951827696`.
        assert_eq!(utc(951_827_696), "2000-02-29 12:34:56 UTC");
        // 1969-12-31 23:59:59 UTC.
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
        // 2026-11-23 00:00:00 UTC = 1795392000 (date -u -d 2026-11-23 +%s).
        assert_eq!(utc(1_795_392_000), "2026-11-23 00:00:00 UTC");
    }

    #[test]
    fn exit_codes_follow_the_cause() {
        let nf: anyhow::Error = StoreError::NotFound {
            what: "speaker",
            id: "x".into(),
        }
        .into();
        assert_eq!(exit_of(&nf.context("showing x")), Exit::NotFound);
        let wk: anyhow::Error = StoreError::WrongKey {
            expected: "a".into(),
            given: "b".into(),
        }
        .into();
        assert_eq!(exit_of(&wk), Exit::Store);
        let io: anyhow::Error = std::io::Error::new(std::io::ErrorKind::NotFound, "gone").into();
        assert_eq!(exit_of(&io), Exit::NotFound);
        assert_eq!(exit_of(&anyhow::anyhow!("other")), Exit::Error);
        let own: anyhow::Error = CliError::new(Exit::NoDevice, "no mic").into();
        assert_eq!(exit_of(&own.context("identify")), Exit::NoDevice);
    }

    #[test]
    fn a_cause_printed_by_its_parent_is_not_repeated() {
        // CorpusError::Io prints its source and returns it from source().
        let missing = std::path::Path::new("/nonexistent/quivox-test/enroll.lst");
        let err = quivox::eval::DevSet::load(std::path::Path::new("/nonexistent/quivox-test"))
            .map_err(anyhow::Error::from)
            .unwrap_err()
            .context("reading set /nonexistent/quivox-test");
        let io = std::fs::read_to_string(missing).unwrap_err().to_string();
        let message = chain_message(&err);
        assert_eq!(message.matches(&io).count(), 1, "{message}");
        assert!(
            message.starts_with("reading set /nonexistent/quivox-test: "),
            "{message}"
        );
        assert!(message.contains("enroll.lst"), "{message}");
        // the plain chain repeated it
        assert_eq!(format!("{err:#}").matches(&io).count(), 2);
        // causes that add something are all kept, in order
        let chained = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(chain_message(&chained), "outer: middle: inner");
    }
}
