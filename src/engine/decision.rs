//! The decisions a call session emits: typed, timestamped, never a silent guess.

use super::number::SpeakerId;

/// Why the voice could not settle who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VoiceShortfall {
    /// No speech was detected at all.
    NoSpeech,
    /// Some speech, but less than the minimum needed for a voice decision.
    TooLittleSpeech,
    /// The audio's dynamic range (speech over noise floor) is below the configured minimum SNR:
    /// stationary noise or a bad line.
    LowSnr,
    /// Enough clean speech, but the posterior never reached the configured confidence.
    Inconclusive,
}

/// One caller decision.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decision {
    /// The voice identifies an enrolled speaker (consistent with the calling number, or the number
    /// is withheld / has nobody known on it).
    Identified {
        /// Who is speaking.
        speaker: SpeakerId,
        /// Calibrated voice log-likelihood ratio of that speaker (natural log).
        llr: f64,
        /// Posterior probability of that speaker given voice and number.
        posterior: f64,
    },
    /// Open set: the voice belongs to nobody enrolled (number withheld or with nobody known on it).
    Unknown {
        /// Posterior probability of "nobody enrolled".
        posterior: f64,
    },
    /// The voice is unusable or inconclusive; the answer rests on the calling number alone and is
    /// flagged as such. `candidates` are the people known on the number, most frequent caller first.
    NumberOnly {
        /// People known on the calling number with their number-only prior probability.
        candidates: Vec<(SpeakerId, f64)>,
        /// Why the voice did not decide.
        reason: VoiceShortfall,
    },
    /// The voice contradicts the number: another enrolled person (household member or not) or
    /// nobody enrolled (`voice_says = None`: possibly a spoofed or lent number).
    Mismatch {
        /// People known on the calling number.
        number_says: Vec<SpeakerId>,
        /// Who the voice says it is (`None` = nobody enrolled).
        voice_says: Option<SpeakerId>,
        /// Calibrated LLR of `voice_says` (0 for nobody enrolled, by definition).
        llr: f64,
        /// Posterior probability of `voice_says`.
        posterior: f64,
    },
    /// Not enough usable voice yet and no number to fall back on.
    NeedMoreAudio {
        /// What is missing.
        reason: VoiceShortfall,
    },
}

impl Decision {
    /// The speaker this decision names with voice evidence (`Identified`, or the voice side of a
    /// `Mismatch`).
    pub fn voice_speaker(&self) -> Option<&SpeakerId> {
        match self {
            Decision::Identified { speaker, .. } => Some(speaker),
            Decision::Mismatch { voice_says, .. } => voice_says.as_ref(),
            _ => None,
        }
    }

    /// Same kind and same named speaker (ignores the probabilities): used to emit an event only
    /// when the decision actually changes.
    pub fn same_verdict(&self, other: &Decision) -> bool {
        use Decision::*;
        match (self, other) {
            (Identified { speaker: a, .. }, Identified { speaker: b, .. }) => a == b,
            (Unknown { .. }, Unknown { .. }) => true,
            (NumberOnly { reason: a, .. }, NumberOnly { reason: b, .. }) => a == b,
            (Mismatch { voice_says: a, .. }, Mismatch { voice_says: b, .. }) => a == b,
            (NeedMoreAudio { reason: a }, NeedMoreAudio { reason: b }) => a == b,
            _ => false,
        }
    }
}

/// A decision on the call's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionEvent {
    /// The decision.
    pub decision: Decision,
    /// Call audio heard when it was made (ms from the start of the call, at 10-ms frame resolution).
    pub call_audio_ms: u64,
    /// Net speech (voiced frames) behind it, ms.
    pub net_speech_ms: u64,
    /// The most probable enrolled speaker by the posterior at this point (even when below the
    /// confidence), with its posterior; `None` when nothing was scored or nobody is enrolled.
    pub top_speaker: Option<(SpeakerId, f64)>,
}

/// Everything a finished call produced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CallOutcome {
    /// The decision on all the call's audio.
    pub final_decision: DecisionEvent,
    /// Every event emitted during the call, in order (the final one included last if it differs).
    pub timeline: Vec<DecisionEvent>,
    /// Total call audio, ms.
    pub call_audio_ms: u64,
    /// Total net speech, ms.
    pub net_speech_ms: u64,
    /// The call's speech statistics for enrollment, when the session captured it
    /// ([`super::Session::capture_for_enrollment`]); `None` otherwise.
    pub enrollment: Option<super::engine::CallEnrollment>,
}
