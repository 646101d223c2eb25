//! The commands that need the voice engine: `enroll`, `identify`, `verify` (through
//! `quivox::service::Service`, the engine + store glue).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use quivox::audio::{ChannelPolicy, Waveform};
use quivox::engine::CallInfo;
use quivox::recipe::read_telephone_wav;
use quivox::service::{EnrollRequest, Service, ServiceOptions};
use quivox::store::{Actor, Consent, SpeakerId};
use serde_json::json;

use crate::config::{CommonArgs, ProcessEnv, Settings};
use crate::mic::{self, Capture, Meter};
use crate::outcome::{print_json, progress_bar, spinner, CliError, Exit};
use crate::timeline::{event_json, event_line, exit_for};

/// Samples per streamed chunk: 20 ms at 8 kHz, as a telephone gateway delivers them.
const CHUNK_SAMPLES: usize = 160;

/// Where the audio comes from.
#[derive(Debug, Args)]
pub struct AudioArgs {
    /// Record from the default microphone instead of files (press Enter to stop early).
    #[arg(long)]
    pub mic: bool,
    /// Longest microphone recording, seconds.
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    pub seconds: f64,
    /// Use this channel (0-based) of multi-channel WAV files instead of requiring mono.
    #[arg(long, value_name = "N")]
    pub channel: Option<u16>,
}

/// Arguments of `quivox enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The speaker's id (the operator's customer id). An enrolled speaker gets the new audio
    /// added to their voiceprint.
    pub speaker: String,
    /// WAV recordings of the speaker (any rate; resampled to 8 kHz), enrolled as one session:
    /// concatenated in the order given, as one call.
    pub files: Vec<PathBuf>,
    /// Name shown to agents (default: the id).
    #[arg(long)]
    pub name: Option<String>,
    /// Customer id in the CRM, if different from the speaker id.
    #[arg(long)]
    pub external_id: Option<String>,
    /// Calling number the speaker is known on (repeatable).
    #[arg(long = "number", value_name = "NUMBER")]
    pub numbers: Vec<String>,
    /// How consent was given, e.g. "ivr-recorded", "written" (required).
    #[arg(long, value_name = "METHOD")]
    pub consent: String,
    /// Reference of the consent (document id, call id).
    #[arg(long, value_name = "REF", default_value = "")]
    pub consent_ref: String,
    /// Keep the enrollment audio in the store, encrypted (default: no audio is kept).
    #[arg(long)]
    pub keep_audio: bool,
    #[command(flatten)]
    pub audio: AudioArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `quivox identify`.
#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// WAV recording of the call (any rate; resampled to 8 kHz). Omit with --mic.
    pub file: Option<PathBuf>,
    /// Calling number (omit when withheld).
    #[arg(long)]
    pub number: Option<String>,
    /// Call id for the audit log.
    #[arg(long, default_value = "cli")]
    pub call_id: String,
    #[command(flatten)]
    pub audio: AudioArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Arguments of `quivox verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The claimed identity.
    pub speaker: String,
    /// WAV recordings to check. Omit with --mic.
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub audio: AudioArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn open_service(settings: &Settings) -> anyhow::Result<Service> {
    if !settings.models.exists() {
        return Err(CliError::new(
            Exit::NotFound,
            format!(
                "model file {} does not exist (set --models / QUIVOX_MODELS, or run from the repository root)",
                settings.models.display()
            ),
        )
        .into());
    }
    let store = settings.open_store(false)?;
    let bar = spinner("loading models and voiceprints");
    let mut options = ServiceOptions::default();
    options.engine = settings.engine.clone();
    if let Some(prior) = settings.verify_prior {
        options.verify_prior = prior;
    }
    let service = Service::open_model_file(&settings.models, store, options)
        .with_context(|| format!("opening the engine with {}", settings.models.display()));
    bar.finish_and_clear();
    let service = service?;
    let missing = service.speakers_without_voiceprint()?;
    if !missing.is_empty() {
        crate::outcome::warn(&format!(
            "{} enrolled speakers have no voiceprint for the models {} ({}): re-enroll them, load their models, or move their voiceprints with `quivox migrate --from-models DIR` when only the back ends changed",
            missing.len(),
            service.model_version(),
            missing.iter().take(5).map(|s| s.0.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(service)
}

/// Arguments of `quivox migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The models the stored voiceprints were enrolled with (a models folder or a GMM-UBM
    /// file); the voiceprints move to the loaded models (`--models`).
    #[arg(long, value_name = "PATH")]
    pub from_models: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `quivox migrate`: re-derives the voiceprints enrolled with older models for the loaded ones
/// from their stored statistics (no audio), when the statistics carry over.
pub fn migrate(args: &MigrateArgs) -> anyhow::Result<Exit> {
    let settings = Settings::resolve(&args.common, &ProcessEnv)?;
    if !args.from_models.exists() {
        return Err(CliError::new(
            Exit::NotFound,
            format!("older models {} do not exist", args.from_models.display()),
        )
        .into());
    }
    let older = quivox::engine::VoiceModels::load(&args.from_models)
        .with_context(|| format!("loading the older models {}", args.from_models.display()))?;
    let service = open_service(&settings)?;
    let report = service
        .migrate_voiceprints(&Actor::now(&settings.operator), &older)
        .map_err(|e| match e {
            quivox::service::ServiceError::InvalidRequest { .. } => {
                CliError::new(Exit::Usage, e.to_string()).into()
            }
            other => anyhow::Error::from(other),
        })?;
    let exit = if report.not_migrated.is_empty() {
        Exit::Ok
    } else {
        Exit::Refused
    };
    if settings.json {
        print_json(&report)?;
        return Ok(exit);
    }
    for failure in &report.not_migrated {
        crate::outcome::warn(&format!(
            "{} not moved (its voiceprint of {} stays; re-enroll): {}",
            failure.speaker.0, report.from_version, failure.problem
        ));
    }
    println!(
        "moved {} voiceprints from models {} to {}{}",
        report.migrated.len(),
        report.from_version,
        report.to_version,
        if report.migrated.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                report
                    .migrated
                    .iter()
                    .map(|s| s.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    Ok(exit)
}

fn read_files(files: &[PathBuf], audio: &AudioArgs) -> anyhow::Result<Vec<Waveform>> {
    let policy = audio
        .channel
        .map_or(ChannelPolicy::RequireMono, ChannelPolicy::Select);
    let bar = progress_bar(files.len() as u64, "reading");
    let waves = files
        .iter()
        .map(|path| {
            let wave = read_wav_file(path, policy);
            bar.inc(1);
            wave
        })
        .collect();
    bar.finish_and_clear();
    waves
}

fn read_wav_file(path: &Path, policy: ChannelPolicy) -> anyhow::Result<Waveform> {
    if !path.exists() {
        return Err(
            CliError::new(Exit::NotFound, format!("{}: no such file", path.display())).into(),
        );
    }
    Ok(read_telephone_wav(path, policy)?)
}

/// Reads the WAV files, or opens the microphone (after checking the arguments).
fn open_inputs(
    files: &[PathBuf],
    audio: &AudioArgs,
) -> anyhow::Result<(Vec<Waveform>, Option<Capture>)> {
    if audio.mic {
        Ok((Vec::new(), Some(Capture::open()?)))
    } else {
        Ok((read_files(files, audio)?, None))
    }
}

fn check_sources(files_given: bool, audio: &AudioArgs, what: &str) -> anyhow::Result<()> {
    if audio.mic && files_given {
        return Err(CliError::new(
            Exit::Usage,
            format!("{what}: give WAV files or --mic, not both"),
        )
        .into());
    }
    if !audio.mic && !files_given {
        return Err(CliError::new(Exit::Usage, format!("{what}: give WAV files or --mic")).into());
    }
    if !(audio.seconds > 0.0 && audio.seconds <= 3600.0) {
        return Err(CliError::new(
            Exit::Usage,
            format!("--seconds {}: expected 0 < seconds ≤ 3600", audio.seconds),
        )
        .into());
    }
    Ok(())
}

/// Records from the microphone, showing the level and the net speech towards `goal_ms`; stops at
/// the goal (when `stop_at_goal`), at `--seconds`, or on Enter.
fn record_mic(
    capture: Capture,
    service: &Service,
    audio: &AudioArgs,
    goal_ms: u64,
    stop_at_goal: bool,
) -> anyhow::Result<Waveform> {
    // A session with no number counts net speech exactly as the engine will.
    let mut counter = service.engine().start_call(CallInfo {
        caller_number: None,
        call_id: "cli-mic-meter".into(),
    })?;
    let meter = Meter::new(goal_ms);
    crate::outcome::status("recording (press Enter to stop)...");
    let wave = mic::record(capture, audio.seconds, |capture, block| {
        counter.push_samples(block)?;
        while counter.poll().is_some() {}
        let speech = counter.net_speech_ms();
        meter.update(block, speech, capture.recorded_s());
        Ok(stop_at_goal && speech >= goal_ms)
    });
    meter.finish();
    let wave = wave?;
    crate::outcome::status(&format!(
        "recorded {:.1} s, {:.1} s of net speech",
        wave.duration_s(),
        counter.net_speech_ms() as f64 / 1000.0
    ));
    Ok(wave)
}

/// `quivox enroll`.
pub fn enroll(args: &EnrollArgs) -> anyhow::Result<Exit> {
    let settings = Settings::resolve(&args.common, &ProcessEnv)?;
    check_sources(!args.files.is_empty(), &args.audio, "enroll")?;
    if args.consent.trim().is_empty() {
        return Err(CliError::new(
            Exit::Usage,
            "--consent: expected how consent was given (e.g. \"written\")",
        )
        .into());
    }
    // Inputs first (a missing file or microphone fails before anything is loaded).
    let (recordings, capture) = open_inputs(&args.files, &args.audio)?;
    let service = open_service(&settings)?;
    let recordings = match capture {
        Some(capture) => {
            // 20 % over the minimum: the enrollment's batch speech count can differ a little from the
            // streaming count shown while recording.
            let goal = settings.engine.min_enroll_speech_ms * 6 / 5;
            vec![record_mic(capture, &service, &args.audio, goal, true)?]
        }
        None => recordings,
    };
    let actor = Actor::now(&settings.operator);
    let request = EnrollRequest {
        speaker: SpeakerId(args.speaker.clone()),
        display_name: args.name.clone().unwrap_or_else(|| args.speaker.clone()),
        external_id: args.external_id.clone(),
        numbers: args.numbers.clone(),
        consent: Consent {
            given_at: actor.now,
            method: args.consent.clone(),
            operator: settings.operator.clone(),
            reference: args.consent_ref.clone(),
        },
        recordings,
        keep_audio: args.keep_audio,
    };
    let bar = spinner("enrolling");
    let report = service.enroll(&actor, &request);
    bar.finish_and_clear();
    let report = report?;
    if settings.json {
        print_json(&report)?;
    } else {
        println!(
            "enrolled {} ({}): {:.1} s of net speech added, {:.1} s in total, voiceprint revision {}{}",
            report.speaker,
            if report.new_speaker { "new speaker" } else { "audio added" },
            report.added_speech_ms as f64 / 1000.0,
            report.total_speech_ms as f64 / 1000.0,
            report.model_revision,
            if report.audio_kept > 0 {
                format!("; {} recordings kept, encrypted", report.audio_kept)
            } else {
                "; no audio kept".to_string()
            }
        );
    }
    Ok(Exit::Ok)
}

/// `quivox identify`: streams the call through a session in 20-ms chunks and prints the
/// decision timeline; the exit code follows the final decision.
pub fn identify(args: &IdentifyArgs) -> anyhow::Result<Exit> {
    let settings = Settings::resolve(&args.common, &ProcessEnv)?;
    check_sources(args.file.is_some(), &args.audio, "identify")?;
    let files: Vec<PathBuf> = args.file.iter().cloned().collect();
    let (mut recordings, capture) = open_inputs(&files, &args.audio)?;
    let service = open_service(&settings)?;
    let info = CallInfo {
        caller_number: args.number.clone(),
        call_id: args.call_id.clone(),
    };
    let mut session = service.start_call(info)?;
    let json = settings.json;
    // Human output shows the timeline live; JSON gives the session's whole timeline at the end.
    let on_event = |event: quivox::engine::DecisionEvent| {
        if !json {
            println!("{}", event_line("  ..", &event));
        }
    };
    if !json {
        println!(
            "call from {} ({} enrolled speakers)",
            args.number.as_deref().unwrap_or("a withheld number"),
            service.engine().population().len()
        );
    }
    match capture {
        None => {
            let wave = recordings.pop().unwrap_or(Waveform {
                sample_rate_hz: mic::TARGET_RATE_HZ,
                samples: Vec::new(),
            });
            for chunk in wave.samples.chunks(CHUNK_SAMPLES) {
                session.push_samples(chunk)?;
                while let Some(event) = session.poll() {
                    on_event(event);
                }
            }
        }
        Some(capture) => {
            let max_ms = settings.engine.max_net_speech_ms;
            let meter = Meter::new(max_ms);
            crate::outcome::status("listening (press Enter to stop)...");
            let recorded = mic::record(capture, args.audio.seconds, |capture, block| {
                for chunk in block.chunks(CHUNK_SAMPLES) {
                    session.push_samples(chunk)?;
                }
                while let Some(event) = session.poll() {
                    // Printed above the live meter.
                    meter.suspend(|| on_event(event));
                }
                meter.update(block, session.net_speech_ms(), capture.recorded_s());
                Ok(session.net_speech_ms() >= max_ms)
            });
            meter.finish();
            recorded?;
        }
    }
    let outcome = service.finish_call(&Actor::now(&settings.operator), session)?;
    let exit = exit_for(&outcome.final_decision.decision);
    if json {
        print_json(&json!({
            "number": args.number,
            "call_audio_ms": outcome.call_audio_ms,
            "net_speech_ms": outcome.net_speech_ms,
            "timeline": outcome.timeline.iter().map(event_json).collect::<Vec<_>>(),
            "final": event_json(&outcome.final_decision),
            "exit_code": exit.code(),
        }))?;
    } else {
        println!("{}", event_line("  =>", &outcome.final_decision));
    }
    Ok(exit)
}

/// `quivox verify`: claimed identity against recordings; exit 0 accepted, 7 rejected, 6 too
/// little speech.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<Exit> {
    let settings = Settings::resolve(&args.common, &ProcessEnv)?;
    check_sources(!args.files.is_empty(), &args.audio, "verify")?;
    let (recordings, capture) = open_inputs(&args.files, &args.audio)?;
    let service = open_service(&settings)?;
    let recordings = match capture {
        Some(capture) => {
            let goal = settings.engine.max_net_speech_ms;
            vec![record_mic(capture, &service, &args.audio, goal, true)?]
        }
        None => recordings,
    };
    let speaker = SpeakerId(args.speaker.clone());
    let v = service.verify(&Actor::now(&settings.operator), &speaker, &recordings)?;
    let exit = if v.net_speech_ms < settings.engine.min_net_speech_ms {
        Exit::NoDecision
    } else if v.accepted {
        Exit::Ok
    } else {
        Exit::Rejected
    };
    if settings.json {
        print_json(&json!({
            "speaker": v.speaker.0,
            "llr": v.llr,
            "posterior": v.posterior,
            "accepted": v.accepted,
            "net_speech_ms": v.net_speech_ms,
            "exit_code": exit.code(),
        }))?;
    } else {
        println!(
            "{} {} (posterior {:.3}, LLR {:.1}, {:.1} s of net speech)",
            match exit {
                Exit::Ok => "ACCEPTED",
                Exit::NoDecision => "NO DECISION (too little speech) for",
                _ => "REJECTED",
            },
            v.speaker,
            v.posterior,
            v.llr,
            v.net_speech_ms as f64 / 1000.0
        );
    }
    Ok(exit)
}
