//! `quivox demo`: enroll the fixture speakers through `quivox::service::Service` into a
//! temporary encrypted store, reload them as a gateway would at start, and run six simulated calls through streaming
//! sessions (20-ms μ-law chunks), printing each call's decision timeline.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use quivox::audio::{g711, ChannelPolicy};
use quivox::engine::{CallInfo, DecisionEvent, SpeakerId};
use quivox::recipe::read_telephone_wav;
use quivox::service::{EnrollRequest, Service, ServiceOptions};
use quivox::store::{Actor, Consent, SqliteStore, StoreKey};

use crate::outcome::{CliError, Exit};
use crate::timeline::event_line;

/// Arguments of `quivox demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder with `<speaker>-enroll.wav` and `<speaker>-call.wav` files.
    #[arg(long, default_value = "audio-fixtures/demo")]
    pub fixtures: PathBuf,
    /// Models: a folder gives the fused system (GMM-UBM, i-vector PLDA, embedding PLDA and
    /// their fusion), a GMM-UBM `.qvx` file the GMM-UBM alone.
    #[arg(long, alias = "gmm", default_value = "models")]
    pub models: PathBuf,
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

fn wav(dir: &Path, speaker: &str, what: &str) -> PathBuf {
    dir.join(format!("{speaker}-{what}.wav"))
}

fn print_event(prefix: &str, e: &DecisionEvent) {
    println!("    {}", event_line(prefix, e));
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    if !args.models.exists() {
        return Err(CliError::new(
            Exit::NotFound,
            format!(
                "{}: models not found (run from the repository root, or give --models)",
                args.models.display()
            ),
        )
        .into());
    }
    if !args.fixtures.is_dir() {
        return Err(CliError::new(
            Exit::NotFound,
            format!(
                "{}: expected the demo fixtures folder (run from the repository root)",
                args.fixtures.display()
            ),
        )
        .into());
    }
    let options = ServiceOptions::default();
    let confidence = options.engine.confidence;
    let store_dir = tempfile::tempdir()?;
    let store_path = store_dir.path().join("demo.sqlite");
    let store = SqliteStore::open_sqlite(&store_path, StoreKey::generate())?;
    let service = Service::open_model_file(&args.models, Box::new(store), options)
        .with_context(|| format!("loading {}", args.models.display()))?;
    let actor = Actor::now("quivox-demo");

    let models = service.engine().models();
    println!(
        "quivox demo: {} ({}, UBM of {} components), store {}",
        args.models.display(),
        if models.is_fused() {
            "GMM-UBM + i-vector PLDA + GE2E embedding PLDA, fused"
        } else {
            "GMM-UBM alone"
        },
        models.gmm.ubm.num_components(),
        store_path.display()
    );
    println!("\n== enrollment (voiceprints encrypted at rest, no raw audio kept)");
    for (id, name, number) in ENROLLED {
        let wave = read_telephone_wav(
            &wav(&args.fixtures, id, "enroll"),
            ChannelPolicy::RequireMono,
        )?;
        let duration_s = wave.duration_s();
        service.enroll(
            &actor,
            &EnrollRequest {
                speaker: SpeakerId(id.to_string()),
                display_name: name.to_string(),
                external_id: None,
                numbers: vec![number.to_string()],
                consent: Consent {
                    given_at: actor.now,
                    method: "demo".into(),
                    operator: "quivox-demo".into(),
                    reference: "audio-fixtures/demo".into(),
                },
                recordings: vec![wave],
                keep_audio: false,
            },
        )?;
        println!("  {id} ({name}, {number}): {duration_s:.1} s of audio");
    }

    // What a gateway does at start: load the population and the number directory from the store.
    service.reload()?;

    println!("\n== calls, streamed in 20-ms G.711 μ-law chunks (confidence needed: {confidence})");
    for (caller, number, scenario) in CALLS {
        let wave = read_telephone_wav(
            &wav(&args.fixtures, caller, "call"),
            ChannelPolicy::RequireMono,
        )?;
        let pcm = wave.to_i16()?;
        let mut ulaw = vec![0u8; pcm.len()];
        g711::encode_ulaw_into(&pcm, &mut ulaw)?;
        let mut session = service.start_call(CallInfo {
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
        // Audited; the call counts on the number only when the voice agreed with it (a
        // mismatch, possibly a spoofed number, must not link the voice to the number).
        let outcome = service.finish_call(&actor, session)?;
        print_event("=>", &outcome.final_decision);
    }
    let integrity = service.store().integrity_check()?;
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
