//! The plain C form of a caller decision.

use std::ffi::c_char;

use quivox_core::engine::{Decision, DecisionEvent, VoiceSays, VoiceShortfall};

use crate::args::copy_to_array;

/// Bytes of the speaker-id arrays in `quivox_decision`: 256 bytes of id and a NUL. Ids the C
/// API enrolls are at most 256 bytes; a longer one (non-ASCII ids of up to 256 characters enrolled
/// by other tools) is cut at a character boundary and flagged `speaker_id_truncated`.
pub const QUIVOX_SPEAKER_ID_CAPACITY: usize = 257;

/// Kind of a caller decision.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum quivox_decision_kind {
    /// Not enough usable voice yet, and no calling number to fall back on (`reason` says why).
    NeedMoreAudio = 0,
    /// The voice identifies `speaker_id` (consistent with the calling number, or the number is
    /// withheld or has nobody known on it); `llr` and `posterior` are that speaker's.
    Identified = 1,
    /// The voice belongs to nobody enrolled; `posterior` is P(nobody enrolled).
    Unknown = 2,
    /// The voice is unusable or inconclusive (`reason`); the answer rests on the calling number:
    /// `number_speaker_id` is its most frequent caller, `posterior` that person's number-only prior.
    NumberOnly = 3,
    /// The voice contradicts the number: the people known on it are left a posterior of
    /// 1 − confidence or less. `voice_verdict` says what the voice says instead (`speaker_id` when
    /// it names someone), `number_speaker_id` is the first person known on the number.
    Mismatch = 4,
    /// A kind added by a newer library than this header knows: treat as "no decision".
    Other = 5,
}

/// What the voice says when it contradicts the calling number (`MISMATCH`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum quivox_voice_verdict {
    /// Not a mismatch.
    None = 0,
    /// An enrolled person not known on the number (`speaker_id`, with its `llr` and `posterior`).
    Speaker = 1,
    /// Nobody enrolled; `posterior` is P(nobody enrolled).
    NobodyEnrolled = 2,
    /// None of the number's people, without naming who at the confidence; `posterior` is
    /// P(none of the number's people).
    NoneOfThem = 3,
    /// A verdict added by a newer library than this header knows.
    Other = 4,
}

/// Why the voice did not decide (for `NEED_MORE_AUDIO` and `NUMBER_ONLY`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum quivox_shortfall {
    /// Not applicable: the voice decided.
    None = 0,
    /// No speech detected.
    NoSpeech = 1,
    /// Some speech, less than the minimum for a voice decision.
    TooLittleSpeech = 2,
    /// Speech barely above the noise floor.
    LowSnr = 3,
    /// Enough clean speech, but the posterior did not reach the configured confidence.
    Inconclusive = 4,
    /// A reason added by a newer library than this header knows.
    Other = 5,
}

/// One caller decision, as a plain struct the caller owns (written by `quivox_session_poll`,
/// `quivox_session_finish`, or passed to a `quivox_decision_callback`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct quivox_decision {
    /// What was decided.
    pub kind: quivox_decision_kind,
    /// Why the voice did not decide (`QUIVOX_SHORTFALL_NONE` when it did).
    pub reason: quivox_shortfall,
    /// The speaker the voice names (`IDENTIFIED`, and `MISMATCH` when the voice names someone),
    /// NUL-terminated UTF-8; empty otherwise.
    pub speaker_id: [c_char; QUIVOX_SPEAKER_ID_CAPACITY],
    /// The first person the calling number names (`NUMBER_ONLY`, `MISMATCH`), NUL-terminated UTF-8;
    /// empty otherwise.
    pub number_speaker_id: [c_char; QUIVOX_SPEAKER_ID_CAPACITY],
    /// True when an id above was cut to fit its array.
    pub speaker_id_truncated: bool,
    /// How many people the calling number names (`NUMBER_ONLY`, `MISMATCH`), else 0.
    pub number_candidates: u32,
    /// Calibrated voice log-likelihood ratio of `speaker_id` (natural log); NaN when the decision
    /// names no speaker by voice.
    pub llr: f64,
    /// Posterior probability of what the decision states, in [0, 1] (see the kinds); NaN for
    /// `NEED_MORE_AUDIO`.
    pub posterior: f64,
    /// Call audio heard when the decision was made, ms from the start of the call.
    pub call_ms: u64,
    /// Net speech (voiced audio) behind the decision, ms.
    pub speech_ms: u64,
    /// True for the final decision written by `quivox_session_finish`.
    pub is_final: bool,
    /// What the voice says instead of the number (`MISMATCH`; `QUIVOX_VOICE_VERDICT_NONE` for
    /// every other kind).
    pub voice_verdict: quivox_voice_verdict,
}

fn shortfall(reason: VoiceShortfall) -> quivox_shortfall {
    match reason {
        VoiceShortfall::NoSpeech => quivox_shortfall::NoSpeech,
        VoiceShortfall::TooLittleSpeech => quivox_shortfall::TooLittleSpeech,
        VoiceShortfall::LowSnr => quivox_shortfall::LowSnr,
        VoiceShortfall::Inconclusive => quivox_shortfall::Inconclusive,
        _ => quivox_shortfall::Other,
    }
}

impl quivox_decision {
    /// The C form of an event.
    pub(crate) fn from_event(event: &DecisionEvent, is_final: bool) -> Self {
        let mut out = Self {
            kind: quivox_decision_kind::Other,
            reason: quivox_shortfall::None,
            speaker_id: [0; QUIVOX_SPEAKER_ID_CAPACITY],
            number_speaker_id: [0; QUIVOX_SPEAKER_ID_CAPACITY],
            speaker_id_truncated: false,
            number_candidates: 0,
            llr: f64::NAN,
            posterior: f64::NAN,
            call_ms: event.call_audio_ms,
            speech_ms: event.net_speech_ms,
            is_final,
            voice_verdict: quivox_voice_verdict::None,
        };
        let mut truncated = false;
        match &event.decision {
            Decision::Identified {
                speaker,
                llr,
                posterior,
            } => {
                out.kind = quivox_decision_kind::Identified;
                truncated |= copy_to_array(&speaker.0, &mut out.speaker_id);
                out.llr = *llr;
                out.posterior = *posterior;
            }
            Decision::Unknown { posterior } => {
                out.kind = quivox_decision_kind::Unknown;
                out.posterior = *posterior;
            }
            Decision::NumberOnly { candidates, reason } => {
                out.kind = quivox_decision_kind::NumberOnly;
                out.reason = shortfall(*reason);
                out.number_candidates = u32::try_from(candidates.len()).unwrap_or(u32::MAX);
                if let Some((first, prior)) = candidates.first() {
                    truncated |= copy_to_array(&first.0, &mut out.number_speaker_id);
                    out.posterior = *prior;
                }
            }
            Decision::Mismatch {
                number_says,
                voice_says,
                llr,
                posterior,
            } => {
                out.kind = quivox_decision_kind::Mismatch;
                out.number_candidates = u32::try_from(number_says.len()).unwrap_or(u32::MAX);
                if let Some(first) = number_says.first() {
                    truncated |= copy_to_array(&first.0, &mut out.number_speaker_id);
                }
                out.voice_verdict = match voice_says {
                    VoiceSays::Speaker(voice) => {
                        truncated |= copy_to_array(&voice.0, &mut out.speaker_id);
                        out.llr = *llr;
                        quivox_voice_verdict::Speaker
                    }
                    VoiceSays::NobodyEnrolled => quivox_voice_verdict::NobodyEnrolled,
                    VoiceSays::NoneOfThem => quivox_voice_verdict::NoneOfThem,
                    _ => quivox_voice_verdict::Other,
                };
                out.posterior = *posterior;
            }
            Decision::NeedMoreAudio { reason } => {
                out.kind = quivox_decision_kind::NeedMoreAudio;
                out.reason = shortfall(*reason);
            }
            _ => {}
        }
        out.speaker_id_truncated = truncated;
        out
    }
}
