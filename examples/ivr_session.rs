//! A simulated IVR call: the demo speakers are enrolled, a household line is set up, and a call
//! is streamed as 20-ms G.711 μ-law packets (160 bytes), printing each decision as it arrives.
//!
//! ```text
//! cargo run --release --example ivr_session -- [call.wav] [calling number | withheld]
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quivox::audio::g711::i16_to_ulaw;
use quivox::audio::ChannelPolicy;
use quivox::engine::{CallInfo, Decision, Engine, EngineOptions, VoiceModels};
use quivox::recipe::read_telephone_wav;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = Path::new("audio-fixtures/demo");
    let mut args = std::env::args().skip(1);
    let call = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| demo.join("so0457-call.wav"));
    let number = match args.next().as_deref() {
        Some("withheld") => None,
        Some(n) => Some(n.to_string()),
        None => Some("+44 20 7946 0001".to_string()),
    };

    let engine = Arc::new(Engine::new(
        VoiceModels::load(Path::new("models/gmm-ubm.qvx"))?,
        EngineOptions::default(),
    )?);
    for spk in ["so0457", "so1027", "so2061", "so2740"] {
        let wave = read_telephone_wav(
            &demo.join(format!("{spk}-enroll.wav")),
            ChannelPolicy::RequireMono,
        )?;
        engine.enroll(spk.into(), &[wave])?;
    }
    // A household: three people share one line; so1027 calls most.
    for spk in ["so1027", "so2061", "so2740"] {
        engine.link_number("+44 20 7946 0001", spk.into())?;
    }
    engine.record_call("+44 20 7946 0001", "so1027".into())?;

    // The network delivers μ-law packets of 20 ms.
    let wave = read_telephone_wav(&call, ChannelPolicy::RequireMono)?;
    let packets: Vec<u8> = wave
        .samples
        .iter()
        .map(|&x| i16_to_ulaw(x as i16))
        .collect();
    let mut session = engine.start_call(CallInfo {
        caller_number: number.clone(),
        call_id: "ivr-demo-1".into(),
    })?;
    println!(
        "call {} from {}",
        call.display(),
        number.as_deref().unwrap_or("(withheld)")
    );
    for packet in packets.chunks(160) {
        session.push_ulaw(packet)?;
        while let Some(event) = session.poll() {
            let what = match &event.decision {
                Decision::Identified {
                    speaker, posterior, ..
                } => {
                    format!("identified {speaker} (P = {posterior:.4})")
                }
                Decision::Mismatch {
                    number_says,
                    voice_says,
                    posterior,
                    ..
                } => format!(
                    "MISMATCH: number says {:?}, voice says {} (P = {posterior:.4})",
                    number_says.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
                    voice_says
                ),
                other => format!("{other:?}"),
            };
            println!(
                "  at {:>5} ms of call ({:>5} ms of speech): {what}",
                event.call_audio_ms, event.net_speech_ms
            );
        }
    }
    let outcome = session.finish()?;
    println!(
        "hang-up after {} ms ({} ms speech); final: {:?}",
        outcome.call_audio_ms, outcome.net_speech_ms, outcome.final_decision.decision
    );
    Ok(())
}
