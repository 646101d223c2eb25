//! Enrolls speakers from WAV files and identifies a call WAV, printing the decision timeline.
//!
//! ```text
//! cargo run --release --example identify_file -- [--model models/gmm-ubm.qvx] [--number N] \
//!     [--link N=SPEAKER ...] --enroll SPEAKER=enroll.wav [--enroll ...] call.wav
//! ```
//! Without arguments it runs the `audio-fixtures/demo` scenario.

use std::path::{Path, PathBuf};

use quivox::audio::ChannelPolicy;
use quivox::engine::{CallInfo, Engine, EngineOptions, VoiceModels};
use quivox::recipe::read_telephone_wav;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn need<T>(v: Option<T>, what: &str) -> Result<T> {
    v.ok_or_else(|| what.into())
}

fn main() -> Result<()> {
    let mut model = PathBuf::from("models/gmm-ubm.qvx");
    let mut number = None;
    let mut links = Vec::new();
    let mut enroll = Vec::new();
    let mut call = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--model" => model = need(args.next(), "--model needs a path")?.into(),
            "--number" => number = Some(need(args.next(), "--number needs a number")?),
            "--link" => links.push(need(args.next(), "--link needs NUMBER=SPEAKER")?),
            "--enroll" => enroll.push(need(args.next(), "--enroll needs SPEAKER=WAV")?),
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}").into()),
            _ => call = Some(PathBuf::from(arg)),
        }
    }
    let demo = Path::new("audio-fixtures/demo");
    if enroll.is_empty() {
        for spk in ["so0457", "so1027", "so2061", "so2740"] {
            enroll.push(format!(
                "{spk}={}",
                demo.join(format!("{spk}-enroll.wav")).display()
            ));
        }
        for spk in ["so1027", "so2061", "so2740"] {
            links.push(format!("+15550001={spk}"));
        }
        number.get_or_insert("+15550001".to_string());
    }
    let call = call.unwrap_or_else(|| demo.join("so1027-call.wav"));

    let engine = Engine::new(VoiceModels::load(&model)?, EngineOptions::default())?;
    for item in &enroll {
        let (spk, path) = need(item.split_once('='), "--enroll SPEAKER=WAV")?;
        let wave = read_telephone_wav(Path::new(path), ChannelPolicy::RequireMono)?;
        engine.enroll(spk.into(), &[wave])?;
        println!("enrolled {spk} from {path}");
    }
    for item in &links {
        let (num, spk) = need(item.split_once('='), "--link NUMBER=SPEAKER")?;
        engine.link_number(num, spk.into())?;
    }
    let wave = read_telephone_wav(&call, ChannelPolicy::RequireMono)?;
    let mut session = engine.start_call(CallInfo {
        caller_number: number.clone(),
        call_id: call.display().to_string(),
    })?;
    println!(
        "call {} from {}",
        call.display(),
        number.as_deref().unwrap_or("(withheld)")
    );
    for chunk in wave.samples.chunks(160) {
        session.push_samples(chunk)?;
        while let Some(ev) = session.poll() {
            println!(
                "  {:>6} ms call, {:>5} ms speech: {:?}",
                ev.call_audio_ms, ev.net_speech_ms, ev.decision
            );
        }
    }
    let outcome = session.finish()?;
    println!(
        "final ({} ms call, {} ms speech): {:?}",
        outcome.call_audio_ms, outcome.net_speech_ms, outcome.final_decision.decision
    );
    Ok(())
}
