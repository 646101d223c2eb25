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

/// What the voice says when it contradicts the calling number ([`Decision::Mismatch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VoiceSays {
    /// An enrolled person not known on the number, at the configured confidence.
    Speaker(SpeakerId),
    /// Nobody enrolled, at the configured confidence.
    NobodyEnrolled,
    /// None of the number's people, but the voice does not settle who it is (an enrolled person
    /// off the number or nobody enrolled) at the configured confidence.
    NoneOfThem,
}

impl VoiceSays {
    /// The enrolled speaker named, if any.
    pub fn speaker(&self) -> Option<&SpeakerId> {
        match self {
            VoiceSays::Speaker(s) => Some(s),
            _ => None,
        }
    }

    /// A stable machine-readable name of the verdict: `speaker`, `nobody_enrolled` or
    /// `none_of_them` (the daemon's and the CLI's JSON).
    pub fn code(&self) -> &'static str {
        match self {
            VoiceSays::Speaker(_) => "speaker",
            VoiceSays::NobodyEnrolled => "nobody_enrolled",
            VoiceSays::NoneOfThem => "none_of_them",
        }
    }
}

impl std::fmt::Display for VoiceSays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VoiceSays::Speaker(s) => write!(f, "{s}"),
            VoiceSays::NobodyEnrolled => f.write_str("nobody enrolled"),
            VoiceSays::NoneOfThem => f.write_str("none of the number's people"),
        }
    }
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
    /// The voice contradicts the number: given voice and number, the probability that the caller
    /// is one of the people known on the number has fallen to 1 − confidence or below. The voice
    /// may also name who it is (an enrolled person not on the number, or nobody enrolled: possibly
    /// a spoofed or lent number), or only rule the number's people out.
    Mismatch {
        /// People known on the calling number.
        number_says: Vec<SpeakerId>,
        /// What the voice says instead.
        voice_says: VoiceSays,
        /// Calibrated LLR of the speaker of [`VoiceSays::Speaker`]; 0 for
        /// [`VoiceSays::NobodyEnrolled`] (by definition); NaN for [`VoiceSays::NoneOfThem`].
        llr: f64,
        /// Posterior probability of what `voice_says` states (for [`VoiceSays::NoneOfThem`]: that
        /// the caller is none of the number's people).
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
            Decision::Mismatch { voice_says, .. } => voice_says.speaker(),
            _ => None,
        }
    }

    /// Whether the voice decided (`Identified`, `Unknown` or `Mismatch`), as opposed to a
    /// shortfall (`NumberOnly`, `NeedMoreAudio`).
    pub fn is_voice_decision(&self) -> bool {
        matches!(
            self,
            Decision::Identified { .. } | Decision::Unknown { .. } | Decision::Mismatch { .. }
        )
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
