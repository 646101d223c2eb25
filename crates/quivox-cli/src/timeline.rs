//! How caller decisions are shown: one human line, or a JSON object.

use quivox::engine::{Decision, DecisionEvent, VoiceShortfall};
use serde_json::{json, Value};

use crate::outcome::Exit;

/// One human-readable line for a decision.
pub fn describe(d: &Decision) -> String {
    match d {
        Decision::Identified {
            speaker,
            llr,
            posterior,
        } => format!("IDENTIFIED {speaker} (posterior {posterior:.3}, LLR {llr:.1})"),
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
            format!(
                "MISMATCH: number says {}, voice says {voice_says} (posterior {posterior:.3})",
                n.join("/")
            )
        }
        Decision::NeedMoreAudio { reason } => format!("need more audio ({reason:?})"),
        other => format!("{other:?}"),
    }
}

fn shortfall(reason: &VoiceShortfall) -> &'static str {
    match reason {
        VoiceShortfall::NoSpeech => "no_speech",
        VoiceShortfall::TooLittleSpeech => "too_little_speech",
        VoiceShortfall::LowSnr => "low_snr",
        VoiceShortfall::Inconclusive => "inconclusive",
        _ => "other",
    }
}

/// A decision as JSON: `{"kind": ..., ...}`.
pub fn decision_json(d: &Decision) -> Value {
    match d {
        Decision::Identified {
            speaker,
            llr,
            posterior,
        } => {
            json!({"kind": "identified", "speaker": speaker.0, "llr": llr, "posterior": posterior})
        }
        Decision::Unknown { posterior } => json!({"kind": "unknown", "posterior": posterior}),
        Decision::NumberOnly { candidates, reason } => json!({
            "kind": "number_only",
            "candidates": candidates.iter().map(|(s, p)| json!({"speaker": s.0, "prior": p})).collect::<Vec<_>>(),
            "reason": shortfall(reason),
        }),
        Decision::Mismatch {
            number_says,
            voice_says,
            llr,
            posterior,
        } => json!({
            "kind": "mismatch",
            "number_says": number_says.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
            "voice": voice_says.code(),
            "voice_says": voice_says.speaker().map(|s| s.0.clone()),
            "llr": llr.is_finite().then_some(*llr),
            "posterior": posterior,
        }),
        Decision::NeedMoreAudio { reason } => {
            json!({"kind": "need_more_audio", "reason": shortfall(reason)})
        }
        other => json!({"kind": "other", "debug": format!("{other:?}")}),
    }
}

/// A timeline event as JSON.
pub fn event_json(e: &DecisionEvent) -> Value {
    json!({
        "call_audio_ms": e.call_audio_ms,
        "net_speech_ms": e.net_speech_ms,
        "decision": decision_json(&e.decision),
        "top_speaker": e.top_speaker.as_ref().map(|(s, p)| json!({"speaker": s.0, "posterior": p})),
    })
}

/// One human line for a timeline event.
pub fn event_line(prefix: &str, e: &DecisionEvent) -> String {
    format!(
        "{prefix} {:>6} ms call / {:>6} ms speech: {}",
        e.call_audio_ms,
        e.net_speech_ms,
        describe(&e.decision)
    )
}

/// The exit code of `identify` for a final decision (see [`Exit`]).
pub fn exit_for(d: &Decision) -> Exit {
    match d {
        Decision::Identified { .. } => Exit::Ok,
        Decision::Unknown { .. } | Decision::Mismatch { .. } => Exit::Rejected,
        _ => Exit::NoDecision,
    }
}
