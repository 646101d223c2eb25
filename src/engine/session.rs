//! One call: audio in (PCM, μ-law, A-law, any chunk size), decisions out.
//!
//! The session runs the cheap streaming stages (MFCC → Δ → running-mean energy VAD) on every chunk
//! and keeps the voiced, not yet normalised, frames. At each decision point (every
//! `decision_interval_ms` of net speech from `min_net_speech_ms` on) it applies the front end's
//! sliding CMN to the buffered voiced frames, which for calls under the CMN window (10 s of speech)
//! equals the batch front end's whole-call mean, scores them against the population, and combines
//! the calibrated LLRs with the number prior by Bayes' rule. Decision points fall on exact voiced
//! frame counts, so decisions do not depend on how the audio was chunked.

use std::collections::VecDeque;
use std::sync::Arc;

use super::bayes::{caller_posterior, AgainstNumber, CallerPosterior, Verdict};
use super::decision::{CallOutcome, Decision, DecisionEvent, VoiceSays, VoiceShortfall};
use super::embedding_system::EmbeddingSum;
use super::engine::{adaptive_noise_suppression, snr_estimate_db, CallEnrollment};
use super::engine::{EngineError, EngineOptions, Population, VoiceModels, CLIP_LEVEL};
use super::fused::speech_embedding;
use super::number::{CallerPrior, SpeakerId};
use super::scoring::ShortlistState;
use crate::audio::g711::{decode_alaw_into, decode_ulaw_into};
use crate::calibration::TestQuality;
use crate::embedding::StreamingEmbedder;
use crate::features::{
    apply_sliding_cmn_into, AdaptiveNoiseSuppression, EnergyRange, FeatureMatrix, FrontEndOptions,
    MfccExtractor, MfccOptions, StreamingDeltas, StreamingVad,
};
use crate::gmm::AccumDiagGmm;

/// What the network says about a call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfo {
    /// Calling number as presented (ANI/CLI); `None` when withheld.
    pub caller_number: Option<String>,
    /// The integrator's call identifier (for logs), free form.
    pub call_id: String,
}

/// Samples converted per step (bounds the scratch buffer; any chunk size is accepted).
const CONVERT_BLOCK: usize = 1024;

/// The most probable enrolled speaker and its posterior, when anything was scored.
type TopSpeaker = Option<(SpeakerId, f64)>;

/// What a session captures for enrollment: every voiced frame (before CMN, up to a cap) and the
/// log energy of every frame.
#[derive(Debug)]
struct Capture {
    voiced: FeatureMatrix,
    max_frames: usize,
    log_energy: Vec<f32>,
}

/// The streaming stages of one front end: MFCC → Δ → running-mean energy VAD, with the frames
/// whose Δ or VAD decision is still to come (the two stages have different latencies) held until
/// both are known. Buffers are reused: no allocation per frame once they have grown.
#[derive(Debug)]
struct FramePipeline {
    mfcc: MfccExtractor,
    deltas: StreamingDeltas,
    vad: StreamingVad,
    mfcc_buf: FeatureMatrix,
    energy_buf: Vec<f32>,
    delta_buf: FeatureMatrix,
    /// Δ frames and VAD decisions not yet consumed (row t of one is decision t of the other).
    delta_pending: FeatureMatrix,
    vad_pending: Vec<bool>,
}

impl FramePipeline {
    fn new(mfcc: MfccOptions, fe: &FrontEndOptions) -> Result<Self, EngineError> {
        let ceps = fe.mfcc.num_ceps;
        let dim = fe.dim();
        Ok(Self {
            mfcc: MfccExtractor::new(mfcc)?,
            deltas: StreamingDeltas::new(ceps, &fe.deltas)?,
            vad: StreamingVad::new(&fe.vad)?,
            mfcc_buf: FeatureMatrix::with_capacity(ceps, 64),
            energy_buf: Vec::with_capacity(64),
            delta_buf: FeatureMatrix::with_capacity(dim, 64),
            delta_pending: FeatureMatrix::with_capacity(dim, 64),
            vad_pending: Vec::with_capacity(64),
        })
    }

    /// Runs every stage as far as its input allows; `energy` sees the log energy of each new
    /// MFCC frame (before the VAD does).
    fn pump(&mut self, energy: impl FnOnce(&[f32])) -> Result<(), EngineError> {
        self.mfcc
            .pop_frames_with_energy(&mut self.mfcc_buf, &mut self.energy_buf)?;
        energy(&self.energy_buf);
        if !self.mfcc_buf.is_empty() {
            self.deltas.accept_frames(&self.mfcc_buf)?;
            self.vad.accept_log_energy(&self.energy_buf);
        }
        self.mfcc_buf.clear();
        self.energy_buf.clear();
        self.deltas.pop_frames(&mut self.delta_buf)?;
        for row in self.delta_buf.rows() {
            self.delta_pending.push_row(row);
        }
        self.delta_buf.clear();
        self.vad.pop_decisions(&mut self.vad_pending);
        Ok(())
    }

    /// Frames whose Δ and VAD decision are both known.
    fn ready(&self) -> usize {
        self.delta_pending.num_frames().min(self.vad_pending.len())
    }

    /// Forgets the first `n` ready frames.
    fn consume(&mut self, n: usize) {
        self.delta_pending.drain_front(n);
        self.vad_pending.drain(..n);
    }
}

/// The noise-suppressed front end of a session ([`AdaptiveNoiseSuppression`]): the same samples
/// through MFCC with the suppressor, Δ, and the VAD on the suppressed energies, kept frame for
/// frame in step with the plain front end (both stages have the same latencies).
#[derive(Debug)]
struct SuppressedPath {
    gate: AdaptiveNoiseSuppression,
    pipe: FramePipeline,
    /// Voiced Δ frames before CMN (capacity `max_scored_frames`).
    voiced: FeatureMatrix,
    /// Every voiced frame up to the capture's cap, when the call is captured.
    captured: Option<FeatureMatrix>,
    /// Frames consumed (voiced or not).
    decided: u64,
    /// Voiced frames consumed (not capped).
    voiced_total: u64,
}

impl SuppressedPath {
    /// Consumes ready frames until `frames` have been decided in all.
    fn advance_to(&mut self, frames: u64, max_scored: usize, max_captured: usize) {
        let n = self
            .pipe
            .ready()
            .min(frames.saturating_sub(self.decided) as usize);
        for t in 0..n {
            if !self.pipe.vad_pending[t] {
                continue;
            }
            self.voiced_total += 1;
            let row = self.pipe.delta_pending.row(t);
            if self.voiced.num_frames() < max_scored {
                self.voiced.push_row(row);
            }
            if let Some(c) = &mut self.captured {
                if c.num_frames() < max_captured {
                    c.push_row(row);
                }
            }
        }
        self.pipe.consume(n);
        self.decided += n as u64;
    }
}

/// A call in progress. Not shared between threads (it is `Send`: move it to the call's thread).
#[derive(Debug)]
pub struct Session {
    models: Arc<VoiceModels>,
    options: EngineOptions,
    population: Arc<Population>,
    prior: CallerPrior,
    info: CallInfo,
    /// The models' front end.
    pipe: FramePipeline,
    /// The noise-suppressed front end, when adaptive suppression is on.
    suppressed: Option<SuppressedPath>,
    scratch: Vec<f32>,
    /// Voiced Δ frames before CMN (capacity `max_scored_frames`).
    voiced: FeatureMatrix,
    normalised: FeatureMatrix,
    /// Log energies of every decided frame so far (the SNR estimate, the adaptive gate and the
    /// fusion's quality measure): fed frame by frame in step with the decisions, so a decision
    /// point sees the same frames whatever the chunk size.
    energy: EnergyRange,
    /// Log energies of frames out of the MFCC but not yet decided (Δ / VAD look-ahead).
    energy_pending: VecDeque<f32>,
    frames_decided: u64,
    voiced_frames: u64,
    samples_in: u64,
    clipped_samples: u64,
    next_decision_frames: u64,
    frame_ms: f64,
    min_frames: u64,
    max_frames: u64,
    interval_frames: u64,
    revision_frames: u64,
    max_scored_frames: usize,
    /// The last linear pass over the population (see [`super::scoring`]).
    shortlist: ShortlistState,
    /// Speech kept for enrollment, when the call is captured.
    capture: Option<Capture>,
    pending: VecDeque<DecisionEvent>,
    timeline: Vec<DecisionEvent>,
    /// The call's audio through the neural encoder (fused models only).
    embedder: Option<StreamingEmbedder>,
    /// The same through the noise suppressor, beside it when adaptive suppression is on: the
    /// embedding of a call noisy enough for the suppressed front end comes from here.
    suppressed_embedder: Option<StreamingEmbedder>,
    /// Samples received but not yet given to the embedder (it is fed up to the start of the
    /// first undecided frame, so its state at a decision point does not depend on chunking).
    embed_pending: Vec<f32>,
    /// Scratch: per-speaker LLRs of the i-vector and embedding systems.
    ivector_llrs: Vec<f64>,
    embedding_llrs: Vec<f64>,
}

impl Session {
    pub(crate) fn new(
        models: Arc<VoiceModels>,
        options: EngineOptions,
        population: Arc<Population>,
        prior: CallerPrior,
        info: CallInfo,
    ) -> Result<Self, EngineError> {
        let fe = &models.front_end;
        let dim = fe.dim();
        let frame_ms =
            fe.mfcc.frame_shift_samples() as f64 * 1000.0 / fe.mfcc.sample_rate_hz as f64;
        let to_frames = |ms: u64| ((ms as f64 / frame_ms).ceil() as u64).max(1);
        let min_frames = to_frames(options.min_net_speech_ms);
        let max_frames = to_frames(options.max_net_speech_ms);
        let interval_frames = to_frames(options.decision_interval_ms);
        let revision_frames = to_frames(options.revision_interval_ms);
        let max_scored_frames = to_frames(options.max_scored_speech_ms) as usize;
        let suppressed = match adaptive_noise_suppression(&options, &models) {
            Some(gate) => Some(SuppressedPath {
                pipe: FramePipeline::new(gate.suppressed_mfcc(&fe.mfcc), fe)?,
                gate: gate.clone(),
                voiced: FeatureMatrix::with_capacity(dim, max_scored_frames),
                captured: None,
                decided: 0,
                voiced_total: 0,
            }),
            None => None,
        };
        let (embedder, suppressed_embedder) = match &models.backends {
            Some(b) => (
                Some(b.streaming_embedder(None)?),
                match &suppressed {
                    Some(path) => Some(b.streaming_embedder(Some(&path.gate.suppression))?),
                    None => None,
                },
            ),
            None => (None, None),
        };
        Ok(Self {
            embedder,
            suppressed_embedder,
            embed_pending: Vec::with_capacity(4 * CONVERT_BLOCK),
            ivector_llrs: Vec::new(),
            embedding_llrs: Vec::new(),
            capture: None,
            shortlist: ShortlistState::new(options.scoring.clone()),
            pipe: FramePipeline::new(fe.mfcc.clone(), fe)?,
            suppressed,
            scratch: Vec::with_capacity(CONVERT_BLOCK),
            voiced: FeatureMatrix::with_capacity(dim, max_scored_frames),
            normalised: FeatureMatrix::with_capacity(dim, max_scored_frames),
            energy: EnergyRange::new(),
            energy_pending: VecDeque::with_capacity(64),
            frames_decided: 0,
            voiced_frames: 0,
            samples_in: 0,
            clipped_samples: 0,
            next_decision_frames: min_frames,
            frame_ms,
            min_frames,
            max_frames,
            interval_frames,
            revision_frames,
            max_scored_frames,
            pending: VecDeque::new(),
            timeline: Vec::new(),
            models,
            options,
            population,
            prior,
            info,
        })
    }

    /// The call's information.
    pub fn info(&self) -> &CallInfo {
        &self.info
    }

    /// Call audio received so far, ms.
    pub fn call_audio_ms(&self) -> u64 {
        self.samples_in * 1000 / u64::from(self.models.front_end.mfcc.sample_rate_hz)
    }

    /// Net speech so far, ms: the voiced frames of the front end the call is scored with (the
    /// noise-suppressed one's, whose VAD runs on the suppressed energies, when the call's energy
    /// spread is under the adaptive gate; in noise the plain energy VAD takes nearly every frame
    /// for speech).
    pub fn net_speech_ms(&self) -> u64 {
        self.frames_to_ms(self.net_frames(0))
    }

    /// Voiced frames of the active front end; `ahead` = voiced frames of the suppressed front
    /// end already decided but not yet consumed by it (see [`Session::drain_frontend`]).
    fn net_frames(&self, ahead: u64) -> u64 {
        match self.active_suppressed() {
            Some(s) => s.voiced_total + ahead,
            None => self.voiced_frames,
        }
    }

    fn frames_to_ms(&self, frames: u64) -> u64 {
        (frames as f64 * self.frame_ms).round() as u64
    }

    /// Feeds 16-bit linear PCM at the models' rate (8 kHz), any chunk size.
    pub fn push_pcm(&mut self, samples: &[i16]) -> Result<(), EngineError> {
        for block in samples.chunks(CONVERT_BLOCK) {
            self.scratch.clear();
            self.scratch.extend(block.iter().map(|&s| f32::from(s)));
            self.process_scratch()?;
        }
        Ok(())
    }

    /// Feeds f32 samples in 16-bit scale at the models' rate, any chunk size.
    pub fn push_samples(&mut self, samples: &[f32]) -> Result<(), EngineError> {
        for block in samples.chunks(CONVERT_BLOCK) {
            self.scratch.clear();
            self.scratch.extend_from_slice(block);
            self.process_scratch()?;
        }
        Ok(())
    }

    /// Feeds G.711 μ-law bytes, any chunk size.
    pub fn push_ulaw(&mut self, codes: &[u8]) -> Result<(), EngineError> {
        for block in codes.chunks(CONVERT_BLOCK) {
            self.scratch.resize(block.len(), 0.0);
            decode_ulaw_into(block, &mut self.scratch)
                .map_err(|e| EngineError::FrontEnd(e.to_string()))?;
            self.process_scratch()?;
        }
        Ok(())
    }

    /// Feeds G.711 A-law bytes, any chunk size.
    pub fn push_alaw(&mut self, codes: &[u8]) -> Result<(), EngineError> {
        for block in codes.chunks(CONVERT_BLOCK) {
            self.scratch.resize(block.len(), 0.0);
            decode_alaw_into(block, &mut self.scratch)
                .map_err(|e| EngineError::FrontEnd(e.to_string()))?;
            self.process_scratch()?;
        }
        Ok(())
    }

    /// Keeps this call's speech statistics for enrollment: [`CallOutcome::enrollment`] is then
    /// filled by [`Session::finish`], for [`super::Engine::enroll_from_call`] and
    /// [`super::Engine::add_call_audio`]. Must be called before any audio is pushed; holds the
    /// voiced frames (up to `max_capture_speech_ms`) until the call ends.
    pub fn capture_for_enrollment(&mut self) -> Result<(), EngineError> {
        if self.samples_in > 0 {
            return Err(EngineError::CaptureTooLate {
                samples: self.samples_in,
            });
        }
        if self.capture.is_none() {
            let max_frames = (self.options.max_capture_speech_ms as f64 / self.frame_ms).ceil();
            self.capture = Some(Capture {
                voiced: FeatureMatrix::new(self.models.front_end.dim()),
                max_frames: max_frames as usize,
                log_energy: Vec::new(),
            });
            if let Some(s) = &mut self.suppressed {
                s.captured = Some(FeatureMatrix::new(self.models.front_end.dim()));
            }
        }
        Ok(())
    }

    /// Whether the call is captured for enrollment.
    pub fn is_captured_for_enrollment(&self) -> bool {
        self.capture.is_some()
    }

    /// Enrollment statistics of the captured speech (CMN as the batch front end, then the
    /// UBM's full-posterior statistics, as [`super::Engine::enroll`] computes them).
    fn enrollment_stats(
        &self,
        embedding: EmbeddingSum,
    ) -> Result<Option<CallEnrollment>, EngineError> {
        let Some(capture) = &self.capture else {
            return Ok(None);
        };
        let ubm = &self.models.gmm.ubm;
        let mut stats = AccumDiagGmm::for_model(ubm);
        let voiced = match self.active_suppressed() {
            Some(SuppressedPath {
                captured: Some(c), ..
            }) => c,
            _ => &capture.voiced,
        };
        let mut normalised = FeatureMatrix::new(voiced.dim());
        if !voiced.is_empty() {
            apply_sliding_cmn_into(voiced, &self.models.front_end.sliding_cmn, &mut normalised)?;
            ubm.accumulate_stats(&normalised, &mut stats)?;
        }
        let backend = match self.models.backends.as_deref() {
            Some(b) => Some(super::fused::BackendStats {
                ivector: b.ivector_stats(&normalised)?,
                embedding,
            }),
            None => None,
        };
        Ok(Some(CallEnrollment {
            stats,
            net_speech_ms: self.frames_to_ms(voiced.num_frames() as u64),
            clipped_fraction: self.clipped_fraction(),
            snr_db: snr_estimate_db(&capture.log_energy),
            backend,
        }))
    }

    /// Gives the embedder the received samples up to absolute sample `upto` (at most what was
    /// received).
    fn feed_embedder(&mut self, upto: u64) -> Result<(), EngineError> {
        let Some(embedder) = &mut self.embedder else {
            return Ok(());
        };
        // every received sample is either given to the embedder or pending
        let fed = self.samples_in - self.embed_pending.len() as u64;
        let n = (upto.saturating_sub(fed) as usize).min(self.embed_pending.len());
        if n == 0 {
            return Ok(());
        }
        embedder.accept_waveform(&self.embed_pending[..n])?;
        if let Some(s) = &mut self.suppressed_embedder {
            s.accept_waveform(&self.embed_pending[..n])?;
        }
        self.embed_pending.drain(..n);
        Ok(())
    }

    /// First sample of the first frame not yet decided (the embedder is fed up to here).
    fn decided_samples(&self) -> u64 {
        self.frames_decided * self.models.front_end.mfcc.frame_shift_samples() as u64
    }

    /// The next decision event, if one is waiting.
    pub fn poll(&mut self) -> Option<DecisionEvent> {
        self.pending.pop_front()
    }

    /// Every event emitted so far (polled or not).
    pub fn timeline(&self) -> &[DecisionEvent] {
        &self.timeline
    }

    /// The latest event emitted, if any.
    pub fn current(&self) -> Option<&DecisionEvent> {
        self.timeline.last()
    }

    fn process_scratch(&mut self) -> Result<(), EngineError> {
        self.samples_in += self.scratch.len() as u64;
        self.clipped_samples += self
            .scratch
            .iter()
            .filter(|x| x.abs() >= CLIP_LEVEL)
            .count() as u64;
        self.pipe.mfcc.accept_waveform(&self.scratch)?;
        if let Some(s) = &mut self.suppressed {
            s.pipe.mfcc.accept_waveform(&self.scratch)?;
        }
        if self.embedder.is_some() {
            self.embed_pending.extend_from_slice(&self.scratch);
        }
        self.drain_frontend()?;
        self.feed_embedder(self.decided_samples())
    }

    fn drain_frontend(&mut self) -> Result<(), EngineError> {
        let (pending, capture) = (&mut self.energy_pending, &mut self.capture);
        self.pipe.pump(|e| {
            pending.extend(e);
            if let Some(capture) = capture {
                capture.log_energy.extend_from_slice(e);
            }
        })?;
        if let Some(s) = &mut self.suppressed {
            s.pipe.pump(|_| {})?;
        }
        let n = self.pipe.ready();
        // voiced frames of the suppressed front end (in step with the plain one) decided in this
        // loop but not yet consumed by it: counted here, frame by frame, without draining it
        let mut ahead = 0u64;
        for t in 0..n {
            self.frames_decided += 1;
            if let Some(e) = self.energy_pending.pop_front() {
                self.energy.push(e);
            }
            if let Some(s) = &self.suppressed {
                let k = (self.frames_decided - 1 - s.decided) as usize;
                if s.pipe.vad_pending.get(k).copied().unwrap_or(false) {
                    ahead += 1;
                }
            }
            if self.pipe.vad_pending[t] {
                self.voiced_frames += 1;
                if let Some(capture) = &mut self.capture {
                    if capture.voiced.num_frames() < capture.max_frames {
                        capture.voiced.push_row(self.pipe.delta_pending.row(t));
                    }
                }
                if self.voiced.num_frames() < self.max_scored_frames {
                    self.voiced.push_row(self.pipe.delta_pending.row(t));
                }
            }
            // the decision pace follows the net speech of the front end the call is scored with
            let net = self.net_frames(ahead);
            if net >= self.next_decision_frames {
                // only while every voiced frame so far is buffered for scoring
                if net <= self.max_scored_frames as u64 {
                    self.sync_suppressed();
                    ahead = 0;
                    self.feed_embedder(self.decided_samples())?;
                    self.decision_point()?;
                }
                let step = if self.has_voice_decision() {
                    self.revision_frames
                } else {
                    self.interval_frames
                };
                let mut next = net + step;
                if net < self.max_frames {
                    next = next.min(self.max_frames);
                }
                self.next_decision_frames = next;
            }
        }
        self.pipe.consume(n);
        self.sync_suppressed();
        Ok(())
    }

    /// Brings the suppressed front end to the plain one's decided frames.
    fn sync_suppressed(&mut self) {
        let max_captured = self.capture.as_ref().map_or(0, |c| c.max_frames);
        if let Some(s) = &mut self.suppressed {
            s.advance_to(self.frames_decided, self.max_scored_frames, max_captured);
        }
    }

    /// The suppressed front end, when the call so far is noisy enough for it.
    fn active_suppressed(&self) -> Option<&SuppressedPath> {
        active_suppressed(&self.suppressed, &self.energy)
    }

    /// Whether the call is scored with the noise-suppressed embedding (there is one and the
    /// call so far is noisy enough for it), at decision points and at the end alike.
    fn scores_suppressed_embedding(&self) -> bool {
        self.suppressed_embedder.is_some() && self.active_suppressed().is_some()
    }

    /// Whether the voice has named the caller (an enrolled speaker or nobody enrolled): decision
    /// points then slow to the revision pace. A mismatch that only rules out the number's people
    /// does not count: the voice has yet to say who is calling.
    fn has_voice_decision(&self) -> bool {
        self.timeline.iter().any(|e| {
            matches!(
                e.decision,
                Decision::Identified { .. }
                    | Decision::Unknown { .. }
                    | Decision::Mismatch {
                        voice_says: VoiceSays::Speaker(_) | VoiceSays::NobodyEnrolled,
                        ..
                    }
            )
        })
    }

    /// SNR estimate of the call so far: 90th − 10th percentile of frame log energies, dB.
    fn snr_db(&self) -> f64 {
        self.energy.spread_db()
    }

    fn candidates(&self) -> Vec<(SpeakerId, f64)> {
        let mut c: Vec<(SpeakerId, f64)> = self
            .population
            .ids()
            .iter()
            .zip(&self.prior.on_line)
            .zip(&self.prior.log_prior)
            .filter(|((_, &on), _)| on)
            .map(|((id, _), lp)| (id.clone(), lp.exp()))
            .collect();
        c.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        c
    }

    fn shortfall(&self, reason: VoiceShortfall) -> Decision {
        if self.prior.has_line_members() {
            Decision::NumberOnly {
                candidates: self.candidates(),
                reason,
            }
        } else {
            Decision::NeedMoreAudio { reason }
        }
    }

    /// Scores the buffered speech and returns the decision (or the shortfall), with the top speaker.
    fn evaluate(&mut self, force: bool) -> Result<(Decision, TopSpeaker), EngineError> {
        // the suppressed front end's frames when the call so far is noisy enough, else the plain
        // one's (borrowed field by field: the normalised copy below is written meanwhile)
        let voiced =
            active_suppressed(&self.suppressed, &self.energy).map_or(&self.voiced, |s| &s.voiced);
        let frames = voiced.num_frames() as u64;
        if frames == 0 {
            return Ok((self.shortfall(VoiceShortfall::NoSpeech), None));
        }
        if frames < self.min_frames {
            return Ok((self.shortfall(VoiceShortfall::TooLittleSpeech), None));
        }
        if self.snr_db() < self.options.min_snr_db {
            return Ok((self.shortfall(VoiceShortfall::LowSnr), None));
        }
        apply_sliding_cmn_into(
            voiced,
            &self.models.front_end.sliding_cmn,
            &mut self.normalised,
        )?;
        let mut llrs = self.score_population(force)?;
        self.fuse_backends(&mut llrs)?;
        let post = caller_posterior(&self.prior, &llrs);
        let top = top_speaker(&post).map(|(i, p)| (self.population.ids()[i].clone(), p));
        let decision = match post.verdict(&self.prior.on_line, self.options.confidence) {
            Verdict::Identified(i, posterior) => Decision::Identified {
                speaker: self.population.ids()[i].clone(),
                llr: llrs[i],
                posterior,
            },
            Verdict::Unknown(posterior) => Decision::Unknown { posterior },
            Verdict::Mismatch(says, posterior) => {
                let (voice_says, llr) = match says {
                    AgainstNumber::Speaker(i) => (
                        VoiceSays::Speaker(self.population.ids()[i].clone()),
                        llrs[i],
                    ),
                    AgainstNumber::NobodyEnrolled => (VoiceSays::NobodyEnrolled, 0.0),
                    AgainstNumber::NoneOfThem => (VoiceSays::NoneOfThem, f64::NAN),
                };
                Decision::Mismatch {
                    number_says: self.candidates().into_iter().map(|c| c.0).collect(),
                    voice_says,
                    llr,
                    posterior,
                }
            }
            Verdict::Undecided if force => self.shortfall(VoiceShortfall::Inconclusive),
            Verdict::Undecided => {
                return Ok((
                    Decision::NeedMoreAudio {
                        reason: VoiceShortfall::Inconclusive,
                    },
                    top,
                ))
            }
        };
        Ok((decision, top))
    }

    /// Calibrated LLRs of the normalised speech against the population (see [`super::scoring`]).
    fn score_population(&mut self, force: bool) -> Result<Vec<f64>, EngineError> {
        let bank = self.population.bank();
        if bank.num_speakers() == 0 {
            return Ok(Vec::new());
        }
        let sel = self
            .models
            .gmm
            .ubm
            .gaussian_selection(&self.normalised, self.models.gmm.options.top_c)?;
        self.shortlist.llrs(
            &self.models,
            &self.normalised,
            &sel,
            bank,
            self.population.norms(),
            &self.prior.on_line,
            force,
        )
    }

    /// Fused models: replaces the GMM-UBM LLRs by the fusion of the three systems' calibrated
    /// LLRs (i-vector of the normalised speech, embedding of the audio so far).
    fn fuse_backends(&mut self, llrs: &mut [f64]) -> Result<(), EngineError> {
        let (Some(b), Some(bank)) = (self.models.backends.clone(), self.population.backend_bank())
        else {
            return Ok(());
        };
        if llrs.is_empty() {
            return Ok(());
        }
        let stats = b.ivector_stats(&self.normalised)?;
        b.ivector_llrs(
            bank,
            &stats,
            self.normalised.num_frames(),
            &mut self.ivector_llrs,
        )?;
        let embedder = if self.scores_suppressed_embedding() {
            self.suppressed_embedder.as_mut()
        } else {
            self.embedder.as_mut()
        };
        let embedding = match embedder {
            Some(e) => speech_embedding(e.snapshot())?,
            None => EmbeddingSum::zeros(),
        };
        b.embedding_llrs(bank, &embedding, &mut self.embedding_llrs)?;
        let quality = TestQuality::new(
            self.energy.spread_nats().unwrap_or(f64::NAN),
            self.normalised.num_frames(),
        );
        for ((g, &i), &e) in llrs
            .iter_mut()
            .zip(&self.ivector_llrs)
            .zip(&self.embedding_llrs)
        {
            *g = b.fuse(*g, i, e, &quality);
        }
        Ok(())
    }

    fn decision_point(&mut self) -> Result<(), EngineError> {
        let net = self.net_frames(0);
        let force = net >= self.max_frames;
        let (decision, top) = self.evaluate(force)?;
        let confident = !matches!(
            decision,
            Decision::NeedMoreAudio {
                reason: VoiceShortfall::Inconclusive
            }
        ) || force;
        if !confident {
            return Ok(());
        }
        let changed = self
            .timeline
            .last()
            .is_none_or(|last| !last.decision.same_verdict(&decision));
        if changed {
            let event = DecisionEvent {
                decision,
                call_audio_ms: self.frames_to_ms(self.frames_decided),
                net_speech_ms: self.frames_to_ms(net),
                top_speaker: top,
            };
            self.timeline.push(event.clone());
            self.pending.push_back(event);
        }
        Ok(())
    }

    /// Ends the call: flushes the front end, decides on all the buffered speech and returns the
    /// final decision and the timeline.
    pub fn finish(mut self) -> Result<CallOutcome, EngineError> {
        self.pipe.mfcc.input_finished();
        if let Some(s) = &mut self.suppressed {
            s.pipe.mfcc.input_finished();
        }
        self.drain_frontend()?;
        self.pipe.deltas.input_finished();
        self.pipe.vad.input_finished();
        if let Some(s) = &mut self.suppressed {
            s.pipe.deltas.input_finished();
            s.pipe.vad.input_finished();
        }
        self.drain_frontend()?;
        // every frame is decided by now; anything left (none expected) still counts
        while let Some(e) = self.energy_pending.pop_front() {
            self.energy.push(e);
        }
        self.feed_embedder(u64::MAX)?;
        let (decision, top) = self.evaluate(true)?;
        let earlier_voice_decision = self
            .timeline
            .iter()
            .rev()
            .find(|e| e.decision.is_voice_decision());
        let final_decision = match earlier_voice_decision {
            Some(e) if last_look_keeps(&e.decision, &decision) => e.clone(),
            _ => DecisionEvent {
                decision,
                call_audio_ms: self.call_audio_ms(),
                net_speech_ms: self.net_speech_ms(),
                top_speaker: top,
            },
        };
        if self
            .timeline
            .last()
            .is_none_or(|last| !last.decision.same_verdict(&final_decision.decision))
        {
            self.timeline.push(final_decision.clone());
        }
        // the embedding of the front end whose features the enrollment statistics take
        let embedder = if self.scores_suppressed_embedding() {
            self.suppressed_embedder.take()
        } else {
            self.embedder.take()
        };
        let embedding = match embedder {
            Some(e) if self.capture.is_some() => speech_embedding(e.finish())?,
            _ => EmbeddingSum::zeros(),
        };
        let enrollment = self.enrollment_stats(embedding)?;
        Ok(CallOutcome {
            enrollment,
            call_audio_ms: self.call_audio_ms(),
            net_speech_ms: self.net_speech_ms(),
            final_decision,
            timeline: self.timeline,
        })
    }

    /// Fraction of samples received at full scale (|x| ≥ 32000).
    pub fn clipped_fraction(&self) -> f64 {
        if self.samples_in == 0 {
            0.0
        } else {
            self.clipped_samples as f64 / self.samples_in as f64
        }
    }
}

/// `suppressed`, when a call with these frame log energies is noisy enough for it.
fn active_suppressed<'a>(
    suppressed: &'a Option<SuppressedPath>,
    energy: &EnergyRange,
) -> Option<&'a SuppressedPath> {
    suppressed.as_ref().filter(|s| s.gate.applies_to(energy))
}

/// Most probable enrolled speaker (ignoring "unknown") and its posterior.
fn top_speaker(post: &CallerPosterior) -> Option<(usize, f64)> {
    post.log_posterior
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(&a.0)))
        .map(|(i, lp)| (i, lp.exp()))
}

/// Whether a call's last look (`last`, on all its speech) keeps the earlier voice decision
/// `earlier` instead of replacing it. An inconclusive last look does not retract an earlier
/// confident decision (the posterior of a true decision wobbles around the threshold), and one
/// that only rules out the number's people does not retract an earlier mismatch that said who it is
/// instead (it agrees with it, less precisely); any other confident last look revises it.
fn last_look_keeps(earlier: &Decision, last: &Decision) -> bool {
    let inconclusive = matches!(
        last,
        Decision::NumberOnly {
            reason: VoiceShortfall::Inconclusive,
            ..
        } | Decision::NeedMoreAudio {
            reason: VoiceShortfall::Inconclusive
        }
    );
    let vaguer = matches!(
        (earlier, last),
        (
            Decision::Mismatch {
                voice_says: VoiceSays::Speaker(_) | VoiceSays::NobodyEnrolled,
                ..
            },
            Decision::Mismatch {
                voice_says: VoiceSays::NoneOfThem,
                ..
            }
        )
    );
    inconclusive || vaguer
}

#[cfg(test)]
mod last_look_tests {
    use super::*;

    fn mismatch(voice_says: VoiceSays) -> Decision {
        Decision::Mismatch {
            number_says: vec![SpeakerId::from("bob")],
            voice_says,
            llr: f64::NAN,
            posterior: 0.995,
        }
    }

    #[test]
    fn the_last_look_keeps_the_more_precise_of_two_agreeing_answers() {
        let alice = || VoiceSays::Speaker(SpeakerId::from("alice"));
        let identified = Decision::Identified {
            speaker: SpeakerId::from("bob"),
            llr: 6.0,
            posterior: 0.995,
        };
        let inconclusive = Decision::NumberOnly {
            candidates: vec![(SpeakerId::from("bob"), 0.9)],
            reason: VoiceShortfall::Inconclusive,
        };
        let too_little = Decision::NumberOnly {
            candidates: vec![(SpeakerId::from("bob"), 0.9)],
            reason: VoiceShortfall::TooLittleSpeech,
        };
        // inconclusive: keep whatever the voice said before
        assert!(last_look_keeps(&identified, &inconclusive));
        assert!(last_look_keeps(&mismatch(alice()), &inconclusive));
        // "none of the number's people" agrees with "alice" / "nobody enrolled", less precisely
        assert!(last_look_keeps(
            &mismatch(alice()),
            &mismatch(VoiceSays::NoneOfThem)
        ));
        assert!(last_look_keeps(
            &mismatch(VoiceSays::NobodyEnrolled),
            &mismatch(VoiceSays::NoneOfThem)
        ));
        // ... but contradicts an identification on the line, and is made precise later
        assert!(!last_look_keeps(
            &identified,
            &mismatch(VoiceSays::NoneOfThem)
        ));
        assert!(!last_look_keeps(
            &mismatch(VoiceSays::NoneOfThem),
            &mismatch(alice())
        ));
        // a confident last look revises; a non-inconclusive shortfall is not a voice answer
        assert!(!last_look_keeps(&mismatch(alice()), &identified));
        assert!(!last_look_keeps(&identified, &too_little));
    }
}
