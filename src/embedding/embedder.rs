//! Utterance embeddings: the batch [`SpeakerEmbedder`] and the [`StreamingEmbedder`].

use std::sync::Arc;

use super::arch::{
    EMBEDDING_DIM, ENCODER_SAMPLE_RATE_HZ, HOP_SAMPLES, MEL_BANDS, N_FFT, PARTIAL_FRAMES,
    TELEPHONE_SAMPLE_RATE_HZ,
};
use super::encoder::{l2_normalize, LstmBatch, SpeakerEncoder, WindowTail};
use super::error::EmbeddingError;
use super::mel::MelExtractor;
use super::partials::{padded_length, partial_step_frames, partial_window_starts};
use super::preprocess::{
    trim_silence, upsample_8k_to_16k, volume_gain, SilenceTrimmer, Upsampler, INT16_SCALE,
};
use crate::audio::Waveform;

/// Options of the embedders.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EmbedderOptions {
    /// Apply Resemblyzer's `preprocess_wav` steps (volume normalisation, silence trimming).
    /// Default true; false feeds the resampled waveform to the encoder as is.
    pub preprocess: bool,
    /// Streaming only: audio (ms, at the start of the call) over which the volume-normalisation
    /// gain is measured before it is frozen. The batch path measures it over the whole call;
    /// the two agree exactly for calls no longer than this. Default 2000 ms; 100 ..= 60 000.
    pub streaming_gain_window_ms: u32,
    /// Stationary-noise suppression of the 16 kHz power spectrum before the mel bank (the MFCC
    /// front end's suppressor, [`crate::features::NoiseSuppressor`]), after volume normalisation
    /// and silence trimming. Default `None`: the encoder sees what Resemblyzer feeds it. The
    /// engine and `quivox eval` use it for the recordings their adaptive noise suppression gates
    /// ([`crate::features::AdaptiveNoiseSuppression`]), as for the MFCC features.
    pub noise_suppression: Option<crate::features::NoiseSuppressionOptions>,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        EmbedderOptions {
            preprocess: true,
            streaming_gain_window_ms: 2000,
            noise_suppression: None,
        }
    }
}

impl EmbedderOptions {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), EmbeddingError> {
        if !(100..=60_000).contains(&self.streaming_gain_window_ms) {
            return Err(EmbeddingError::InvalidOption {
                name: "streaming_gain_window_ms",
                reason: format!(
                    "{} ms, expected 100 ..= 60000",
                    self.streaming_gain_window_ms
                ),
            });
        }
        if let Some(ns) = &self.noise_suppression {
            ns.validate().map_err(|e| EmbeddingError::InvalidOption {
                name: "noise_suppression",
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// These options with the noise suppression `noise_suppression` (builder style: the struct
    /// is non-exhaustive).
    pub fn with_noise_suppression(
        mut self,
        noise_suppression: Option<crate::features::NoiseSuppressionOptions>,
    ) -> Self {
        self.noise_suppression = noise_suppression;
        self
    }

    /// The mel extractor these options ask for.
    fn mel_extractor(&self) -> Result<MelExtractor, EmbeddingError> {
        match &self.noise_suppression {
            Some(ns) => MelExtractor::with_noise_suppression(ns),
            None => Ok(MelExtractor::new()),
        }
    }
}

/// Result of embedding one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct UtteranceEmbedding {
    /// L2-normalised mean of the partial embeddings (256).
    pub embedding: Vec<f32>,
    /// Partial-window embeddings, each L2-normalised, `windows × 256` row-major.
    pub partials: Vec<f32>,
    /// Samples at 16 kHz that reached the mel spectrogram (after trimming, before padding).
    pub speech_samples_16k: usize,
}

impl UtteranceEmbedding {
    /// Number of partial windows.
    pub fn partial_count(&self) -> usize {
        self.partials.len() / EMBEDDING_DIM
    }
}

fn mean_embedding(partials: &[f32]) -> Vec<f32> {
    let mut mean = vec![0.0f32; EMBEDDING_DIM];
    for partial in partials.chunks_exact(EMBEDDING_DIM) {
        mean.iter_mut().zip(partial).for_each(|(m, p)| *m += p);
    }
    l2_normalize(&mut mean);
    mean
}

fn check_samples(samples: &[f32]) -> Result<(), EmbeddingError> {
    // a branch-free (vectorised) pass first; the index is searched only when there is one
    let all_finite = samples
        .chunks(1024)
        .all(|chunk| chunk.iter().fold(true, |ok, x| ok & x.is_finite()));
    if all_finite {
        return Ok(());
    }
    match samples.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(EmbeddingError::NonFiniteSample { index }),
        None => Ok(()),
    }
}

/// Whole-utterance embedder: owns its scratch, reuse it across calls.
#[derive(Debug)]
pub struct SpeakerEmbedder {
    encoder: Arc<SpeakerEncoder>,
    options: EmbedderOptions,
    mel: MelExtractor,
    batch: LstmBatch,
}

impl SpeakerEmbedder {
    /// An embedder over a shared encoder.
    pub fn new(
        encoder: Arc<SpeakerEncoder>,
        options: EmbedderOptions,
    ) -> Result<Self, EmbeddingError> {
        options.validate()?;
        Ok(SpeakerEmbedder {
            encoder,
            mel: options.mel_extractor()?,
            options,
            batch: LstmBatch::new(8),
        })
    }

    /// Embeds a call: 8 kHz (resampled to 16 kHz) or 16 kHz samples in 16-bit integer scale.
    pub fn embed(&mut self, wav: &Waveform) -> Result<UtteranceEmbedding, EmbeddingError> {
        check_samples(&wav.samples)?;
        let unit: Vec<f32> = wav.samples.iter().map(|x| x / INT16_SCALE).collect();
        let wav16 = match wav.sample_rate_hz {
            TELEPHONE_SAMPLE_RATE_HZ => upsample_8k_to_16k(&unit)?,
            ENCODER_SAMPLE_RATE_HZ => unit,
            found => {
                return Err(EmbeddingError::SampleRate {
                    expected: "8000 Hz (telephone, resampled) or 16000 Hz (the encoder rate)",
                    found,
                })
            }
        };
        let speech = if self.options.preprocess {
            let mut wav16 = wav16;
            let gain = volume_gain(&wav16);
            wav16.iter_mut().for_each(|x| *x *= gain);
            trim_silence(&wav16)
        } else {
            wav16
        };
        self.embed_16k(&speech)
    }

    /// Embeds a session recorded as several clips (an enrollment list, a speaker's consecutive
    /// utterances): the clips are joined into one stream first, so that partial windows span
    /// clip boundaries as they span the words and pauses of a call, and volume normalisation and
    /// silence trimming see the whole session. Embedded one by one, a clip shorter than a
    /// partial window (1.6 s) gives a single zero-padded window, a condition no call shows.
    /// Every clip must have the same sample rate (8 or 16 kHz).
    pub fn embed_session(
        &mut self,
        clips: &[Waveform],
    ) -> Result<UtteranceEmbedding, EmbeddingError> {
        match clips {
            [] => Err(EmbeddingError::NoSpeech(
                "a session of no recordings".into(),
            )),
            [one] => self.embed(one),
            _ => match Waveform::concatenate(clips) {
                Some(joined) => self.embed(&joined),
                None => Err(EmbeddingError::SampleRate {
                    expected: "the rate of the session's first clip",
                    found: clips
                        .iter()
                        .map(|c| c.sample_rate_hz)
                        .find(|&r| r != clips[0].sample_rate_hz)
                        .unwrap_or(0),
                }),
            },
        }
    }

    /// Embeds a preprocessed 16 kHz waveform in [-1, 1] scale (Resemblyzer's `embed_utterance`).
    pub fn embed_16k(&mut self, speech: &[f32]) -> Result<UtteranceEmbedding, EmbeddingError> {
        check_samples(speech)?;
        if speech.is_empty() {
            return Err(EmbeddingError::NoSpeech(
                "no samples left after silence trimming".into(),
            ));
        }
        let starts = partial_window_starts(speech.len());
        let mut padded = speech.to_vec();
        padded.resize(padded_length(speech.len(), &starts), 0.0);
        let mel = self.mel.spectrogram(&padded);
        self.embed_mel(&mel, speech.len())
    }

    /// Embeds a mel spectrogram (`frames × 40`, power) of a waveform of `speech_samples` samples
    /// at 16 kHz zero-padded to the end of its last partial window.
    pub fn embed_mel(
        &mut self,
        mel: &[f32],
        speech_samples: usize,
    ) -> Result<UtteranceEmbedding, EmbeddingError> {
        let starts = partial_window_starts(speech_samples);
        if self.batch.capacity() < starts.len() {
            self.batch = LstmBatch::new(starts.len());
        }
        let mut partials = vec![0.0f32; starts.len() * EMBEDDING_DIM];
        self.encoder
            .embed_windows(mel, &starts, PARTIAL_FRAMES, &mut self.batch, &mut partials)?;
        Ok(UtteranceEmbedding {
            embedding: mean_embedding(&partials),
            partials,
            speech_samples_16k: speech_samples,
        })
    }
}

/// A whole-utterance embedder and, when noise suppression is asked for, a second one whose mel
/// spectrum goes through the suppressor ([`EmbedderOptions::noise_suppression`]): recordings
/// that an adaptive gate finds noisy take the second, the others the first (what the engine and
/// `quivox eval` do with [`crate::features::AdaptiveNoiseSuppression`]).
#[derive(Debug)]
pub struct GatedEmbedder {
    plain: SpeakerEmbedder,
    suppressed: Option<SpeakerEmbedder>,
}

impl GatedEmbedder {
    /// `options` for the plain embedder; the same with `suppression` for the other, if any
    /// (`options.noise_suppression` is ignored).
    pub fn new(
        encoder: Arc<SpeakerEncoder>,
        options: EmbedderOptions,
        suppression: Option<&crate::features::NoiseSuppressionOptions>,
    ) -> Result<Self, EmbeddingError> {
        let suppressed = match suppression {
            Some(ns) => Some(SpeakerEmbedder::new(
                Arc::clone(&encoder),
                options.clone().with_noise_suppression(Some(ns.clone())),
            )?),
            None => None,
        };
        Ok(Self {
            plain: SpeakerEmbedder::new(encoder, options.with_noise_suppression(None))?,
            suppressed,
        })
    }

    /// The embedder for a recording the gate found noisy (`gated`) or not; the plain one when
    /// there is no suppression.
    pub fn embedder(&mut self, gated: bool) -> &mut SpeakerEmbedder {
        match (&mut self.suppressed, gated) {
            (Some(s), true) => s,
            _ => &mut self.plain,
        }
    }
}

/// Samples `frame·160 − 200 .. frame·160 + 200` of the speech (held from absolute index
/// `offset` on, `len` samples in all) into `out` (400), zeros outside the speech.
fn speech_frame(speech: &[f32], offset: usize, len: usize, frame: usize, out: &mut [f32]) {
    let first = (frame * HOP_SAMPLES) as isize - (N_FFT / 2) as isize;
    for (k, dst) in out.iter_mut().enumerate() {
        let pos = first + k as isize;
        *dst = if pos >= offset as isize && (pos as usize) < len {
            speech[pos as usize - offset]
        } else {
            0.0
        };
    }
}

/// Most partial windows overlapping one frame (160-frame windows every 77 frames).
const MAX_OPEN_WINDOWS: usize = PARTIAL_FRAMES.div_ceil(77) + 1;

/// Mel frames the streaming embedder gathers before advancing its open windows through them
/// layer after layer (0.16 s of audio; at most 3 windows overlap a block, one fewer than the
/// slots, so a window can start in the block where another ends). Measured (`cargo bench --bench
/// embedding -- streaming`, quiet machine): 16 frames gives a whole 7-s call in 18.7 ms CPU and
/// the last chunk → embedding in 0.26 ms; 32 frames 18.6 / 0.80 ms; 64 frames 19.5 / 2.2 ms;
/// frame by frame (before) 29.9 / 1.4 ms.
const BLOCK_FRAMES: usize = 16;

/// Streaming embedder for one call: feed 8 kHz chunks of any size with [`accept_waveform`],
/// then [`finish`]. Each partial window advances through the LSTM as soon as its mel frames
/// exist, so `finish` only runs the frames of the last fraction of a second and the
/// zero-padded end of the last window(s).
///
/// [`accept_waveform`]: StreamingEmbedder::accept_waveform
/// [`finish`]: StreamingEmbedder::finish
#[derive(Debug)]
pub struct StreamingEmbedder {
    encoder: Arc<SpeakerEncoder>,
    options: EmbedderOptions,
    upsampler: Upsampler,
    /// Gain once frozen; until then the 16 kHz audio waits in `gain_buffer`.
    gain: Option<f32>,
    gain_buffer: Vec<f32>,
    gain_window_samples: usize,
    trimmer: SilenceTrimmer,
    /// Scratch for input in [-1, 1] scale and freshly resampled / trimmed samples.
    unit: Vec<f32>,
    resampled: Vec<f32>,
    trimmed: Vec<f32>,
    /// Speech samples (trimmed, 16 kHz) from absolute index `speech_offset` on.
    speech: Vec<f32>,
    speech_offset: usize,
    speech_len: usize,
    mel: MelExtractor,
    frame_samples: Vec<f32>,
    mel_frame: Vec<f32>,
    /// Mel frames fed to the LSTM so far.
    frames_done: usize,
    /// Mel frames computed after `frames_done`, waiting for the next block (`block_frames × 40`).
    block_mel: Vec<f32>,
    block_frames: usize,
    /// Scratch: the windows a block advances.
    tails: Vec<WindowTail>,
    /// Mel frames of the end of the call (`finish`), allocated up front.
    tail_mel: Vec<f32>,
    /// The noise suppressor's state before the end-of-call frames a snapshot computes ahead
    /// (put back after them, so later audio continues from where the call really is).
    saved_suppressor: Option<crate::features::NoiseSuppressor>,
    batch: LstmBatch,
    /// Start frame of the window in each LSTM slot.
    slot_start: [Option<usize>; MAX_OPEN_WINDOWS],
    /// (start frame, embedding) of completed windows.
    completed: Vec<(usize, [f32; EMBEDDING_DIM])>,
    step_frames: usize,
}

impl StreamingEmbedder {
    /// A new call.
    pub fn new(
        encoder: Arc<SpeakerEncoder>,
        options: EmbedderOptions,
    ) -> Result<Self, EmbeddingError> {
        options.validate()?;
        let gain_window_samples =
            ENCODER_SAMPLE_RATE_HZ as usize * options.streaming_gain_window_ms as usize / 1000;
        // the end of the call runs the open windows layer after layer: allocate that now
        let mut batch = LstmBatch::new(MAX_OPEN_WINDOWS);
        batch.reserve_frames(PARTIAL_FRAMES);
        let mel = options.mel_extractor()?;
        let mut saved_suppressor = None;
        mel.save(&mut saved_suppressor);
        Ok(StreamingEmbedder {
            encoder,
            upsampler: Upsampler::new()?,
            gain: if options.preprocess { None } else { Some(1.0) },
            gain_buffer: Vec::with_capacity(gain_window_samples + 1024),
            gain_window_samples,
            options,
            trimmer: SilenceTrimmer::new(),
            unit: Vec::with_capacity(2048),
            resampled: Vec::with_capacity(4096),
            trimmed: Vec::with_capacity(8192),
            speech: Vec::with_capacity(16_384),
            speech_offset: 0,
            speech_len: 0,
            mel,
            saved_suppressor,
            frame_samples: vec![0.0; N_FFT],
            mel_frame: vec![0.0; MEL_BANDS],
            frames_done: 0,
            block_mel: Vec::with_capacity(BLOCK_FRAMES * MEL_BANDS),
            block_frames: 0,
            tails: Vec::with_capacity(MAX_OPEN_WINDOWS),
            tail_mel: vec![0.0; PARTIAL_FRAMES * MEL_BANDS],
            batch,
            slot_start: [None; MAX_OPEN_WINDOWS],
            completed: Vec::new(),
            step_frames: partial_step_frames(),
        })
    }

    /// Adds 8 kHz samples in 16-bit integer scale (any chunk size).
    pub fn accept_waveform(&mut self, samples: &[f32]) -> Result<(), EmbeddingError> {
        check_samples(samples)?;
        self.resampled.clear();
        self.unit.clear();
        self.unit.extend(samples.iter().map(|x| x / INT16_SCALE));
        self.upsampler.push(&self.unit, &mut self.resampled)?;
        self.take_resampled(false, false);
        self.advance_frames()
    }

    /// Moves freshly resampled audio through gain and trimming into the speech buffer. The gain
    /// is frozen once its window is full, or now with `freeze_gain`; `at_end` also flushes the
    /// silence trimmer (the call is over).
    fn take_resampled(&mut self, freeze_gain: bool, at_end: bool) {
        self.trimmed.clear();
        match self.gain {
            None => {
                self.gain_buffer.extend_from_slice(&self.resampled);
                if self.gain_buffer.len() >= self.gain_window_samples || freeze_gain {
                    // over exactly the window (not however much the last chunk brought), so
                    // the gain does not depend on chunk sizes
                    let window = self.gain_window_samples.min(self.gain_buffer.len());
                    let gain = volume_gain(&self.gain_buffer[..window]);
                    self.gain = Some(gain);
                    self.gain_buffer.iter_mut().for_each(|x| *x *= gain);
                    self.trimmer.push(&self.gain_buffer, &mut self.trimmed);
                    self.gain_buffer.clear();
                }
            }
            Some(gain) if self.options.preprocess => {
                self.resampled.iter_mut().for_each(|x| *x *= gain);
                self.trimmer.push(&self.resampled, &mut self.trimmed);
            }
            Some(_) => self.trimmed.extend_from_slice(&self.resampled),
        }
        if at_end && self.options.preprocess {
            self.trimmer.finish(&mut self.trimmed);
        }
        self.speech.extend_from_slice(&self.trimmed);
        self.speech_len += self.trimmed.len();
    }

    /// Computes every mel frame whose samples are all known; the open windows advance through
    /// them in blocks of [`BLOCK_FRAMES`] (layer after layer, see
    /// [`SpeakerEncoder::advance_windows`]).
    fn advance_frames(&mut self) -> Result<(), EmbeddingError> {
        loop {
            let frame = self.frames_done + self.block_frames;
            if frame * HOP_SAMPLES + N_FFT / 2 > self.speech_len {
                break;
            }
            if frame.is_multiple_of(self.step_frames) {
                if let Some(slot) = self.slot_start.iter().position(Option::is_none) {
                    self.slot_start[slot] = Some(frame);
                    self.batch.reset_slot(slot);
                }
            }
            speech_frame(
                &self.speech,
                self.speech_offset,
                self.speech_len,
                frame,
                &mut self.frame_samples,
            );
            self.mel.frame(&self.frame_samples, &mut self.mel_frame);
            self.block_mel.extend_from_slice(&self.mel_frame);
            self.block_frames += 1;
            // drop samples no later frame needs
            let keep_from =
                (((frame + 1) * HOP_SAMPLES) as isize - (N_FFT / 2) as isize).max(0) as usize;
            let keep_from = keep_from.min(self.speech_len);
            if keep_from > self.speech_offset + 8192 {
                self.speech.drain(..keep_from - self.speech_offset);
                self.speech_offset = keep_from;
            }
            if self.block_frames == BLOCK_FRAMES {
                self.run_block()?;
            }
        }
        Ok(())
    }

    /// Runs the open windows through the pending block of mel frames; windows that end in it
    /// are projected to their embedding and free their slot.
    fn run_block(&mut self) -> Result<(), EmbeddingError> {
        if self.block_frames == 0 {
            return Ok(());
        }
        let first = self.frames_done;
        let end = first + self.block_frames;
        self.tails.clear();
        for (slot, start) in self.slot_start.iter().enumerate() {
            if let Some(start) = *start {
                let from = start.max(first);
                let to = (start + PARTIAL_FRAMES).min(end);
                if to > from {
                    self.tails.push(WindowTail {
                        slot: Some(slot),
                        first_frame: from - first,
                        frames: to - from,
                    });
                }
            }
        }
        if !self.tails.is_empty() {
            self.encoder
                .advance_windows(&self.block_mel, &self.tails, &mut self.batch)?;
        }
        for slot in 0..MAX_OPEN_WINDOWS {
            if let Some(start) = self.slot_start[slot] {
                if start + PARTIAL_FRAMES <= end {
                    let mut embedding = [0.0f32; EMBEDDING_DIM];
                    self.encoder
                        .project(self.batch.top_hidden(slot), &mut embedding);
                    self.completed.push((start, embedding));
                    self.slot_start[slot] = None;
                }
            }
        }
        self.frames_done = end;
        self.block_frames = 0;
        self.block_mel.clear();
        Ok(())
    }

    /// Ends the call and returns its embedding (as [`SpeakerEmbedder::embed`] would, but with the
    /// volume gain measured over the first `streaming_gain_window_ms`). The windows still open
    /// (and any that start in the last audio) run their remaining frames layer after layer from
    /// the state they reached, which is several times faster than frame by frame.
    pub fn finish(mut self) -> Result<UtteranceEmbedding, EmbeddingError> {
        self.resampled.clear();
        self.upsampler.finish(&mut self.resampled)?;
        self.take_resampled(true, true);
        self.advance_frames()?;
        self.embed_so_far()
    }

    /// The embedding of the audio accepted so far, without ending the call: the open windows
    /// are completed from copies of their state (their own state is untouched, so later audio
    /// continues them). Audio still inside the resampler (a few ms) and the silence trimmer's
    /// undecided last window are left out; if the volume-normalisation gain is not frozen yet, it
    /// is frozen now over the audio so far (as [`StreamingEmbedder::finish`] would).
    pub fn snapshot(&mut self) -> Result<UtteranceEmbedding, EmbeddingError> {
        if self.gain.is_none() && !self.gain_buffer.is_empty() {
            self.resampled.clear();
            self.take_resampled(true, false);
            self.advance_frames()?;
        }
        self.embed_so_far()
    }

    fn embed_so_far(&mut self) -> Result<UtteranceEmbedding, EmbeddingError> {
        self.run_block()?;
        if self.speech_len == 0 {
            return Err(EmbeddingError::NoSpeech(
                "no samples left after silence trimming".into(),
            ));
        }
        let starts = partial_window_starts(self.speech_len);
        let first = self.frames_done;
        let end = starts
            .last()
            .map_or(first, |&s| s + PARTIAL_FRAMES)
            .max(first);
        let mut tail_mel = std::mem::take(&mut self.tail_mel);
        tail_mel.clear();
        tail_mel.resize((end - first) * MEL_BANDS, 0.0);
        // frames computed ahead of the audio (zero-padded): the noise suppressor goes back to
        // its state afterwards, so a snapshot leaves the rest of the call unchanged
        self.mel.save(&mut self.saved_suppressor);
        for (frame, out) in (first..end).zip(tail_mel.chunks_exact_mut(MEL_BANDS)) {
            speech_frame(
                &self.speech,
                self.speech_offset,
                self.speech_len,
                frame,
                &mut self.frame_samples,
            );
            self.mel.frame(&self.frame_samples, out);
        }
        self.mel.restore(&self.saved_suppressor);
        let mut tails = Vec::with_capacity(MAX_OPEN_WINDOWS);
        let mut tail_starts = Vec::with_capacity(MAX_OPEN_WINDOWS);
        for &start in &starts {
            if self.completed.iter().any(|(s, _)| *s == start) {
                continue;
            }
            let slot = self.slot_start.iter().position(|s| *s == Some(start));
            let tail = match slot {
                Some(slot) => WindowTail {
                    slot: Some(slot),
                    first_frame: 0,
                    frames: start + PARTIAL_FRAMES - first,
                },
                None if start >= first => WindowTail {
                    slot: None,
                    first_frame: start - first,
                    frames: PARTIAL_FRAMES,
                },
                // a window that began while no slot was free cannot happen (the slots cover
                // every overlap); leave it out rather than fail the call
                None => continue,
            };
            tails.push(tail);
            tail_starts.push(start);
        }
        let mut tail_embeddings = vec![0.0f32; tails.len() * EMBEDDING_DIM];
        self.encoder
            .complete_windows(&tail_mel, &tails, &mut self.batch, &mut tail_embeddings)?;
        let mut partials = Vec::with_capacity(starts.len() * EMBEDDING_DIM);
        for start in &starts {
            if let Some((_, embedding)) = self.completed.iter().find(|(s, _)| s == start) {
                partials.extend_from_slice(embedding);
            } else if let Some(i) = tail_starts.iter().position(|s| s == start) {
                partials.extend_from_slice(
                    &tail_embeddings[i * EMBEDDING_DIM..(i + 1) * EMBEDDING_DIM],
                );
            }
        }
        self.tail_mel = tail_mel;
        Ok(UtteranceEmbedding {
            embedding: mean_embedding(&partials),
            partials,
            speech_samples_16k: self.speech_len,
        })
    }
}
