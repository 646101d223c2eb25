//! `quivox demo`: enroll the fixture speakers through the engine into a temporary encrypted
//! store, reload them as a gateway would at start, and run six simulated calls through streaming
//! sessions (20-ms μ-law chunks), printing each call's decision timeline.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use quivox::audio::{g711, ChannelPolicy};
use quivox::engine::{
    CallInfo, Decision, DecisionEvent, Engine, EngineOptions, NumberDirectory, PhoneNumber,
    SpeakerId, VoiceModels, Voiceprint,
};
use quivox::recipe::read_telephone_wav;
use quivox::store::{Actor, Consent, Enrollment, ModelBlob, SqliteStore, Store, StoreKey};

/// Arguments of `quivox demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder with `<speaker>-enroll.wav` and `<speaker>-call.wav` files.
    #[arg(long, default_value = "audio-fixtures/demo")]
    pub fixtures: PathBuf,
    /// GMM-UBM system file.
    #[arg(long, default_value = "models/gmm-ubm.qvx")]
    pub gmm: PathBuf,
}

const ENROLLED: [(&str, &str, &str); 4] = [
    ("so0457", "Alex Martin", "+44 20 7946 0001"),
    ("so1027", "Sam Martin", "+44 20 7946 0001"),
    ("so2061", "Kim Durand", "+33 1 23 45 67 89"),
    ("so2740", "Lee Chen", "+1 555 0100"),
];

/// (call file speaker, calling number or None when withheld, what the scenario shows).
const CALLS: [(&str, Option<&str>, &str); 6] = [
    (
        "so0457",
        Some("+44 20 7946 0001"),
        "household line, the right member",
    ),
    (
        "so1027",
        Some("+44 20 7946 0001"),
        "household line, the other member",
    ),
    ("so2061", None, "withheld number: voice only"),
    (
        "so2740",
        Some("+33 1 23 45 67 89"),
        "someone else's number: the voice disagrees",
    ),
    (
        "so9614",
        Some("+1 555 0100"),
        "caller nobody enrolled, on a known number",
    ),
    ("so9614", None, "caller nobody enrolled, number withheld"),
];

const VOICEPRINT_KIND: &str = "gmm";

fn wav(dir: &Path, speaker: &str, what: &str) -> PathBuf {
    dir.join(format!("{speaker}-{what}.wav"))
}

fn describe(d: &Decision) -> String {
    match d {
        Decision::Identified {
            speaker,
            llr,
            posterior,
        } => {
            format!("IDENTIFIED {speaker} (posterior {posterior:.3}, LLR {llr:.1})")
        }
        Decision::Unknown { posterior } => format!("UNKNOWN caller (posterior {posterior:.3})"),
        Decision::NumberOnly { candidates, reason } => {
            let c: Vec<String> = candidates
                .iter()
                .map(|(s, p)| format!("{s} {p:.2}"))
                .collect();
            format!("NUMBER ONLY [{}] ({reason:?})", c.join(", "))
        }
        Decision::Mismatch {
            number_says,
            voice_says,
            posterior,
            ..
        } => {
            let n: Vec<String> = number_says.iter().map(ToString::to_string).collect();
            let v = voice_says
                .as_ref()
                .map_or("nobody enrolled".to_string(), ToString::to_string);
            format!(
                "MISMATCH: number says {}, voice says {v} (posterior {posterior:.3})",
                n.join("/")
            )
        }
        Decision::NeedMoreAudio { reason } => format!("need more audio ({reason:?})"),
        other => format!("{other:?}"),
    }
}

fn print_event(prefix: &str, e: &DecisionEvent) {
    println!(
        "      {prefix} {:>5} ms call / {:>5} ms speech: {}",
        e.call_audio_ms,
        e.net_speech_ms,
        describe(&e.decision)
    );
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let models =
        VoiceModels::load(&args.gmm).with_context(|| format!("loading {}", args.gmm.display()))?;
    if !args.fixtures.is_dir() {
        bail!(
            "{}: expected the demo fixtures folder (run from the repository root)",
            args.fixtures.display()
        );
    }
    let model_version = format!("gmm-ubm-{}", &sha_hex(&std::fs::read(&args.gmm)?)[..16]);
    let options = EngineOptions::default();
    let confidence = options.confidence;
    let store_dir = tempfile::tempdir()?;
    let store_path = store_dir.path().join("demo.sqlite");
    let mut store = SqliteStore::open_sqlite(&store_path, StoreKey::generate())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let actor = Actor::new("quivox-demo", now);

    println!(
        "quivox demo: {} ({} components), store {}",
        args.gmm.display(),
        models.gmm.ubm.num_components(),
        store_path.display()
    );
    println!("\n== enrollment (voiceprints encrypted at rest, no raw audio kept)");
    {
        let enroller = Engine::new(models.clone(), options.clone())?;
        for (id, name, number) in ENROLLED {
            let wave = read_telephone_wav(
                &wav(&args.fixtures, id, "enroll"),
                ChannelPolicy::RequireMono,
            )?;
            let speaker = SpeakerId(id.to_string());
            enroller.enroll(speaker.clone(), std::slice::from_ref(&wave))?;
            let print = enroller
                .voiceprint(&speaker)
                .context("voiceprint just enrolled")?;
            store.enroll(
                &actor,
                &Enrollment {
                    speaker,
                    display_name: name.to_string(),
                    external_id: None,
                    models: vec![ModelBlob {
                        kind: VOICEPRINT_KIND.into(),
                        model_version: model_version.clone(),
                        bytes: print.to_bytes(),
                    }],
                    numbers: vec![PhoneNumber::parse(number)?],
                    consent: Consent {
                        given_at: now,
                        method: "demo".into(),
                        operator: "quivox-demo".into(),
                        reference: "audio-fixtures/demo".into(),
                    },
                    keep_audio: Vec::new(),
                },
            )?;
            println!(
                "  {id} ({name}, {number}): {:.1} s of audio",
                wave.duration_s()
            );
        }
    }

    // What a gateway does at start: load the population and the number directory from the store.
    let engine = Engine::new(models, options)?;
    let mut prints = Vec::new();
    for (speaker, bytes) in store.load_models(VOICEPRINT_KIND, &model_version)? {
        prints.push((speaker, Voiceprint::from_bytes(&bytes)?));
    }
    engine.insert_voiceprints(prints)?;
    let mut directory = NumberDirectory::new();
    for (number, speaker, calls) in store.load_number_links()? {
        directory.set_call_count(number, speaker, calls);
    }
    engine.set_directory(directory);

    println!("\n== calls, streamed in 20-ms G.711 μ-law chunks (confidence needed: {confidence})");
    for (caller, number, scenario) in CALLS {
        let wave = read_telephone_wav(
            &wav(&args.fixtures, caller, "call"),
            ChannelPolicy::RequireMono,
        )?;
        let pcm = wave.to_i16()?;
        let mut ulaw = vec![0u8; pcm.len()];
        g711::encode_ulaw_into(&pcm, &mut ulaw)?;
        let mut session = engine.start_call(CallInfo {
            caller_number: number.map(str::to_string),
            call_id: format!("demo-{caller}"),
        })?;
        let shown = number.unwrap_or("withheld");
        println!("  call from {shown:<17} [{scenario}; true caller {caller}]");
        for chunk in ulaw.chunks(160) {
            session.push_ulaw(chunk)?;
            while let Some(event) = session.poll() {
                print_event("..", &event);
            }
        }
        let outcome = session.finish()?;
        print_event("=>", &outcome.final_decision);
        // Call history learns only from agreeing evidence: a mismatch (possibly a spoofed number)
        // must not link the voice to the number.
        if let (Some(n), Decision::Identified { speaker, .. }) =
            (number, &outcome.final_decision.decision)
        {
            store.record_call(&actor, &PhoneNumber::parse(n)?, speaker)?;
        }
    }
    let integrity = store.integrity_check()?;
    println!(
        "\nstore integrity: {} speakers, {} voiceprints, {} number links, problems: {}",
        integrity.speakers,
        integrity.models,
        integrity.number_links,
        if integrity.problems.is_empty() {
            "none".to_string()
        } else {
            integrity.problems.join("; ")
        }
    );
    Ok(())
}

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
