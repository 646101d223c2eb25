//! The commands that work straight on the store: `init`, `keygen`, `list`, `show`,
//! `link-number`, `unlink-number`, `forget`, `export`, `rotate-key`, `retention`, `purge`, `check`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use quivox::store::{
    Actor, PhoneNumber, RetentionPolicy, SpeakerId, SpeakerRecord, StoreKey, KEY_ENV_VAR,
};
use serde_json::json;
use zeroize::Zeroizing;

use crate::config::{CommonArgs, KeySource, Settings, StoreLocation};
use crate::outcome::{print_json, spinner, utc, CliError, Exit};

/// Arguments of `quivox keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (64 hex digits, file mode 0600). Refuses to overwrite.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `quivox init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of commands that only need the common options.
#[derive(Debug, Args)]
pub struct PlainArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of commands about one speaker.
#[derive(Debug, Args)]
pub struct SpeakerArgs {
    /// The speaker's id.
    pub speaker: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `quivox forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The speaker's id.
    pub speaker: String,
    /// Confirms the erasure (required: it cannot be undone).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `quivox export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The speaker's id.
    pub speaker: String,
    /// Include the decrypted voiceprints and kept audio (base64-free: byte arrays).
    #[arg(long)]
    pub include_biometrics: bool,
    /// Write the JSON document to this file (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `link-number` and `unlink-number`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The calling number (E.164 or with separators).
    pub number: String,
    /// The speaker's id.
    pub speaker: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `quivox rotate-key`.
#[derive(Debug, Args)]
pub struct RotateKeyArgs {
    /// Write the new key here instead of replacing the key file (required when the key comes
    /// from QUIVOX_STORE_KEY).
    #[arg(long, value_name = "FILE")]
    pub new_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `quivox retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Erase speakers with neither a call nor an update for this many days ("none": never).
    #[arg(long, value_name = "DAYS|none")]
    pub max_idle_days: Option<String>,
    /// Delete kept audio older than this many days ("none": never).
    #[arg(long, value_name = "DAYS|none")]
    pub max_audio_age_days: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `quivox purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Confirms the erasures (required).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

const DAY_S: i64 = 86_400;

/// Writes `parts` to `path` with mode 0600, flushed to disk. With `overwrite`, an existing file
/// is replaced and its mode reset to 0600; without, an existing file is refused (exit 2).
fn write_private(path: &Path, parts: &[&[u8]], overwrite: bool, what: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::new(
                Exit::Usage,
                format!(
                    "writing the {what} {}: {e} (refusing to overwrite it: move it away first)",
                    path.display()
                ),
            )
        } else {
            CliError::new(
                Exit::Error,
                format!("writing the {what} {}: {e}", path.display()),
            )
        }
    })?;
    #[cfg(unix)]
    if overwrite {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to mode 0600", path.display()))?;
    }
    for part in parts {
        file.write_all(part)
            .with_context(|| format!("writing the {what} {}", path.display()))?;
    }
    file.sync_all()
        .with_context(|| format!("writing the {what} {}", path.display()))
}

/// Writes a key as 64 hex digits to a new file with mode 0600 (flushed to disk); refuses to
/// overwrite an existing file.
pub fn write_key_file(path: &Path, key_hex: &str) -> anyhow::Result<()> {
    write_private(path, &[key_hex.as_bytes(), b"\n"], false, "key file")
}

/// A new random key and its hex text (both wiped from memory when dropped).
fn new_key() -> (StoreKey, Zeroizing<String>) {
    let mut bytes = Zeroizing::new([0u8; quivox::store::KEY_LEN]);
    // The thread RNG is seeded from the operating system and reseeds itself (as StoreKey::generate).
    rand::RngCore::fill_bytes(&mut rand::rng(), bytes.as_mut());
    let mut hex = Zeroizing::new(String::with_capacity(2 * bytes.len()));
    for b in bytes.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    (StoreKey::from_bytes(*bytes), hex)
}

/// `quivox keygen`.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<()> {
    let (key, hex) = new_key();
    write_key_file(&args.out, &hex)?;
    if args.json {
        print_json(&json!({"key_file": args.out, "fingerprint": key.fingerprint()}))?;
    } else {
        println!(
            "wrote a new store key to {} (mode 0600), fingerprint {}",
            args.out.display(),
            key.fingerprint()
        );
    }
    Ok(())
}

/// `quivox init`: creates the key file if missing, then creates (or opens) the store.
pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    let mut created_key = false;
    if let KeySource::File(path) = &settings.key {
        if !path.exists() {
            let (_, hex) = new_key();
            write_key_file(path, &hex)?;
            created_key = true;
        }
    }
    let key = settings.load_key()?;
    let fingerprint = key.fingerprint();
    let existed = match &settings.store {
        StoreLocation::Sqlite(p) => p.exists(),
        StoreLocation::Postgres(_) => true,
    };
    let mut store = settings.open_store_with(key, true)?;
    let version = store.schema_version()?;
    let speakers = store.list_speakers()?.len();
    if settings.json {
        print_json(&json!({
            "store": settings.store.display(),
            "backend": store.backend_name(),
            "schema_version": version,
            "created_store": !existed,
            "key": key_source_text(&settings.key),
            "created_key": created_key,
            "key_fingerprint": fingerprint,
            "speakers": speakers,
        }))?;
    } else {
        if created_key {
            println!(
                "wrote a new store key to {} (mode 0600): back it up; without it the voiceprints are lost",
                key_source_text(&settings.key)
            );
        }
        println!(
            "store {} ({} schema v{version}) {}, key fingerprint {fingerprint}, {speakers} speakers",
            settings.store.display(),
            store.backend_name(),
            if existed { "ready" } else { "created" }
        );
    }
    Ok(())
}

fn key_source_text(key: &KeySource) -> String {
    match key {
        KeySource::Env => KEY_ENV_VAR.to_string(),
        KeySource::File(p) => p.display().to_string(),
    }
}

fn speaker_id(text: &str) -> SpeakerId {
    SpeakerId(text.to_string())
}

fn phone(text: &str) -> anyhow::Result<PhoneNumber> {
    PhoneNumber::parse(text)
        .map_err(|e| CliError::new(Exit::Usage, format!("number {text:?}: {e}")).into())
}

/// `quivox list`.
pub fn list(args: &PlainArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    let mut store = settings.open_store(false)?;
    let speakers = store.list_speakers()?;
    if settings.json {
        return print_json(&speakers);
    }
    if speakers.is_empty() {
        println!("no speakers enrolled");
        return Ok(());
    }
    let id_width = speakers
        .iter()
        .map(|s| s.id.0.len())
        .max()
        .unwrap_or(2)
        .max(2);
    println!(
        "{:<id_width$}  {:<24}  {:<23}  last call",
        "id", "name", "enrolled"
    );
    for s in &speakers {
        println!(
            "{:<id_width$}  {:<24}  {:<23}  {}",
            s.id.0,
            s.display_name,
            utc(s.created_at),
            s.last_call_at.map_or("never".to_string(), utc)
        );
    }
    println!("{} speakers", speakers.len());
    Ok(())
}

fn print_record(r: &SpeakerRecord) {
    println!("speaker     {}", r.info.id);
    println!("name        {}", r.info.display_name);
    if let Some(x) = &r.info.external_id {
        println!("external id {x}");
    }
    println!("enrolled    {}", utc(r.info.created_at));
    println!("updated     {}", utc(r.info.updated_at));
    println!(
        "last call   {}",
        r.info.last_call_at.map_or("never".to_string(), utc)
    );
    println!("voiceprints");
    for m in &r.models {
        println!(
            "  {} (models {}), revision {}, updated {}",
            m.kind,
            m.model_version,
            m.revision,
            utc(m.updated_at)
        );
    }
    println!("numbers");
    if r.numbers.is_empty() {
        println!("  none");
    }
    for n in &r.numbers {
        println!(
            "  {}: {} calls, linked {}",
            n.number,
            n.call_count,
            utc(n.linked_at)
        );
    }
    println!("consent");
    for c in &r.consents {
        println!(
            "  {} by {} on {} (reference {:?})",
            c.method,
            c.operator,
            utc(c.given_at),
            c.reference
        );
    }
    println!("kept audio  {} recordings", r.kept_audio_count);
}

/// `quivox show`.
pub fn show(args: &SpeakerArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    let mut store = settings.open_store(false)?;
    let record = store.show(&speaker_id(&args.speaker))?;
    if settings.json {
        return print_json(&record);
    }
    print_record(&record);
    Ok(())
}

/// `quivox link-number`.
pub fn link_number(args: &LinkArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    let number = phone(&args.number)?;
    let mut store = settings.open_store(false)?;
    let actor = Actor::now(&settings.operator);
    let added = store.link_number(&actor, &number, &speaker_id(&args.speaker))?;
    if settings.json {
        print_json(
            &json!({"number": number, "speaker": args.speaker, "linked": true, "was_linked": !added}),
        )
    } else {
        if added {
            println!("linked {number} to {}", args.speaker);
        } else {
            println!("{number} was already linked to {}", args.speaker);
        }
        Ok(())
    }
}

/// `quivox unlink-number`.
pub fn unlink_number(args: &LinkArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    let number = phone(&args.number)?;
    let mut store = settings.open_store(false)?;
    let actor = Actor::now(&settings.operator);
    store.unlink_number(&actor, &number, &speaker_id(&args.speaker))?;
    if settings.json {
        print_json(&json!({"number": number, "speaker": args.speaker, "linked": false}))
    } else {
        println!("unlinked {number} from {}", args.speaker);
        Ok(())
    }
}

/// `quivox forget`.
pub fn forget(args: &ForgetArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    if !args.yes {
        return Err(CliError::new(
            Exit::Usage,
            format!(
                "forget erases {} everywhere (voiceprints, numbers, consent, kept audio) and cannot be undone: add --yes",
                args.speaker
            ),
        )
        .into());
    }
    let mut store = settings.open_store(false)?;
    let actor = Actor::now(&settings.operator);
    store.forget(&actor, &speaker_id(&args.speaker))?;
    if settings.json {
        print_json(&json!({"speaker": args.speaker, "erased": true}))
    } else {
        println!(
            "erased {} (voiceprints, numbers, consent, kept audio); the audit log keeps the erasure",
            args.speaker
        );
        Ok(())
    }
}

/// `quivox export`: always JSON (the GDPR access document).
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    let mut store = settings.open_store(false)?;
    let actor = Actor::now(&settings.operator);
    let export = store.export(&actor, &speaker_id(&args.speaker), args.include_biometrics)?;
    let text = serde_json::to_string_pretty(&export)?;
    match &args.out {
        Some(path) => {
            write_private(path, &[text.as_bytes()], true, "export")?;
            if settings.json {
                print_json(
                    &json!({"speaker": args.speaker, "out": path, "biometrics_included": args.include_biometrics}),
                )?;
            } else {
                println!(
                    "wrote the data held about {} to {} (mode 0600){}",
                    args.speaker,
                    path.display(),
                    if args.include_biometrics {
                        ", voiceprints and kept audio included"
                    } else {
                        ""
                    }
                );
            }
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// `quivox rotate-key`: a new random key re-encrypts every blob in one transaction.
///
/// With a key file and no `--new-key-file`: the new key is first written to `<key file>.new`
/// (0600, flushed), the store re-encrypted, then `<key file>.new` renamed over the key file. A
/// crash between the two last steps leaves the working key in `<key file>.new` (the error on the
/// next run names both fingerprints).
pub fn rotate_key(args: &RotateKeyArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    let old_key = settings.load_key()?;
    let old_fingerprint = old_key.fingerprint();
    let (target, replace) = match (&args.new_key_file, &settings.key) {
        (Some(path), _) => (path.clone(), None),
        (None, KeySource::File(path)) => {
            let mut staged = path.clone().into_os_string();
            staged.push(".new");
            (PathBuf::from(staged), Some(path.clone()))
        }
        (None, KeySource::Env) => {
            return Err(CliError::new(
                Exit::Usage,
                format!(
                    "the key comes from {KEY_ENV_VAR}: give --new-key-file to receive the new key"
                ),
            )
            .into())
        }
    };
    let mut store = settings.open_store_with(old_key, false)?;
    let (new_key, hex) = new_key();
    let new_fingerprint = new_key.fingerprint();
    write_key_file(&target, &hex)?;
    let actor = Actor::now(&settings.operator);
    let bar = spinner("re-encrypting");
    let rotated = store.rotate_key(&actor, new_key);
    bar.finish_and_clear();
    if let Err(e) = rotated {
        // Nothing changed in the store: the staged key is useless.
        let _ = std::fs::remove_file(&target);
        return Err(e.into());
    }
    if let Some(key_file) = &replace {
        std::fs::rename(&target, key_file).with_context(|| {
            format!(
                "the store now uses the key in {} (fingerprint {new_fingerprint}) but moving it over {} failed",
                target.display(),
                key_file.display()
            )
        })?;
    }
    let key_file = replace.unwrap_or(target);
    if settings.json {
        print_json(&json!({
            "old_fingerprint": old_fingerprint,
            "new_fingerprint": new_fingerprint,
            "key_file": key_file,
        }))
    } else {
        println!(
            "re-encrypted the store under a new key (fingerprint {old_fingerprint} -> {new_fingerprint}), now in {}",
            key_file.display()
        );
        if matches!(settings.key, KeySource::Env) {
            println!("update {KEY_ENV_VAR} with the new key from that file");
        }
        Ok(())
    }
}

fn parse_days(text: &str, field: &str) -> anyhow::Result<Option<i64>> {
    if text.eq_ignore_ascii_case("none") || text.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(days) if days > 0 && days < 1_000_000 => Ok(Some(days * DAY_S)),
        _ => Err(CliError::new(
            Exit::Usage,
            format!("{field} = {text:?}: expected a whole number of days ≥ 1, or \"none\""),
        )
        .into()),
    }
}

fn days_text(seconds: Option<i64>) -> String {
    seconds.map_or("never".to_string(), |s| {
        if s % DAY_S == 0 {
            format!("{} days", s / DAY_S)
        } else {
            format!("{s} s")
        }
    })
}

/// `quivox retention`: shows, or with options sets, the retention policy.
pub fn retention(args: &RetentionArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    let mut store = settings.open_store(false)?;
    let mut policy: RetentionPolicy = store.retention()?;
    let changing = args.max_idle_days.is_some() || args.max_audio_age_days.is_some();
    if let Some(text) = &args.max_idle_days {
        policy.max_idle_s = parse_days(text, "--max-idle-days")?;
    }
    if let Some(text) = &args.max_audio_age_days {
        policy.max_audio_age_s = parse_days(text, "--max-audio-age-days")?;
    }
    if changing {
        store.set_retention(&policy)?;
    }
    if settings.json {
        print_json(&policy)
    } else {
        println!(
            "retention{}: idle speakers erased after {}, kept audio deleted after {}",
            if changing { " set" } else { "" },
            days_text(policy.max_idle_s),
            days_text(policy.max_audio_age_s)
        );
        Ok(())
    }
}

/// `quivox purge`: applies the retention policy now.
pub fn purge(args: &PurgeArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    if !args.yes {
        return Err(CliError::new(
            Exit::Usage,
            "purge erases every speaker and recording past the retention policy: add --yes",
        )
        .into());
    }
    let mut store = settings.open_store(false)?;
    let report = store.purge_expired(&Actor::now(&settings.operator))?;
    if settings.json {
        print_json(&report)
    } else {
        println!(
            "purged {} idle speakers{} and {} old recordings",
            report.speakers_erased.len(),
            if report.speakers_erased.is_empty() {
                String::new()
            } else {
                let ids: Vec<&str> = report
                    .speakers_erased
                    .iter()
                    .map(|s| s.0.as_str())
                    .collect();
                format!(" ({})", ids.join(", "))
            },
            report.audio_deleted
        );
        Ok(())
    }
}

/// `quivox check`: the store's integrity check; exit code 5 when it finds problems.
pub fn check(args: &PlainArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.common, &crate::config::ProcessEnv)?;
    let mut store = settings.open_store(false)?;
    let bar = spinner("checking");
    let report = store.integrity_check()?;
    bar.finish_and_clear();
    if settings.json {
        print_json(&report)?;
    } else {
        println!(
            "store {}: {} speakers, {} voiceprints, {} number links, {} kept recordings, {} audit lines",
            settings.store.display(),
            report.speakers,
            report.models,
            report.number_links,
            report.kept_audio,
            report.audit_entries
        );
        for p in &report.problems {
            println!("PROBLEM: {p}");
        }
        if report.is_ok() {
            println!("integrity: ok");
        }
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(CliError::new(
            Exit::Store,
            format!("integrity check found {} problems", report.problems.len()),
        )
        .into())
    }
}
