//! The speaker-ID front end: MFCC + Δ + ΔΔ, sliding-window CMN, energy-VAD frame selection.

use serde::{Deserialize, Serialize};

use super::cmvn::{apply_sliding_cmn_into, SlidingCmnOptions, StreamingSlidingCmn};
use super::deltas::{compute_deltas_into, DeltaOptions, StreamingDeltas};
use super::mfcc::{check_dim, MfccExtractor, MfccOptions};
use super::queue::move_rows;
use super::vad::{compute_vad, compute_vad_running, StreamingVad, VadOptions};
use super::vad_noise::{compute_vad_noise_floor, NoiseFloorVadOptions};
use super::{FeatureError, FeatureMatrix};

/// Which mean log energy the VAD threshold uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VadMode {
    /// Mean over the whole utterance (Kaldi `compute-vad`); batch only.
    #[default]
    Utterance,
    /// Running mean over the frames seen so far ([`compute_vad_running`]); what
    /// [`StreamingFrontEnd`] always uses.
    Running,
    /// Noise-floor tracking ([`super::compute_vad_noise_floor`] with default
    /// [`super::NoiseFloorVadOptions`]): speech must also exceed the local noise floor, so the
    /// detector still works at 5–10 dB SNR; batch only.
    NoiseFloor,
}

/// VAD decisions (true = voiced) of natural-log frame energies with the threshold rule of `mode`.
pub fn compute_vad_with_mode(
    log_energy: &[f32],
    vad: &VadOptions,
    mode: VadMode,
) -> Result<Vec<bool>, FeatureError> {
    match mode {
        VadMode::Utterance => compute_vad(log_energy, vad),
        VadMode::Running => compute_vad_running(log_energy, vad),
        VadMode::NoiseFloor => {
            compute_vad_noise_floor(log_energy, vad, &NoiseFloorVadOptions::default())
        }
    }
}

/// Which frames the sliding CMN window averages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CmnScope {
    /// Voiced frames only: the VAD runs first and CMN normalises the selected frames, so the
    /// mean does not depend on how much silence or line noise surrounds the speech. Default
    /// (on `dev` it halves the GMM-UBM EER compared with [`CmnScope::AllFrames`]; see README).
    #[default]
    VoicedFrames,
    /// Every frame, then VAD selection (Kaldi `apply-cmvn-sliding` before `select-voiced-frames`).
    AllFrames,
}

/// Options of the speaker-ID front end. Defaults: the Kaldi sid 8 kHz recipe (20 MFCC + Δ + ΔΔ =
/// 60 dims, energy VAD 5.5 / 0.5 / context 2 / 0.12) with CMN over the voiced frames in a
/// centred 1000-frame window (10 s of speech: a whole 7-s call is normalised by its own mean),
/// and the frame energy floored at [`DIGITAL_SILENCE_ENERGY_FLOOR`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontEndOptions {
    /// MFCC options (the VAD always uses the frame log energy, whatever `use_energy` says).
    pub mfcc: MfccOptions,
    /// Delta options.
    pub deltas: DeltaOptions,
    /// Sliding-window CMN options.
    pub sliding_cmn: SlidingCmnOptions,
    /// Energy VAD options.
    pub vad: VadOptions,
    /// VAD threshold mean for the batch path.
    pub vad_mode: VadMode,
    /// Frames the CMN window covers.
    pub cmn_scope: CmnScope,
}

/// Floor (linear, 16-bit sample units squared, 25-ms frame at 8 kHz) on the frame energy of the
/// speaker-ID front end: 200 is what a frame of Kaldi's default dither (1 LSB rms) carries, so
/// ln 200 = 5.3 sits just under the VAD's constant 5.5 and a floored frame is never voiced.
///
/// Why: G.711 codes silence as exact zeros (μ-law ±0), and a quiet, narrow handset, a gated
/// line or a mobile network's discontinuous transmission can deliver whole pauses of digital
/// silence. Without dither or a floor each such frame has log energy ln FLT_EPSILON = −15.9,
/// which drags the VAD's mean-relative threshold (5.5 + 0.5 · mean) down by several nats, so
/// near-silent line noise passes as speech, and it puts the call's energy spread at ~130 dB.
/// Kaldi avoids it with random dither; the floor does the same deterministically (streaming =
/// batch bit for bit). Measured on `dev-read-handset` (README, Channel robustness).
pub const DIGITAL_SILENCE_ENERGY_FLOOR: f32 = 200.0;

impl Default for FrontEndOptions {
    fn default() -> Self {
        Self {
            mfcc: MfccOptions {
                energy_floor: DIGITAL_SILENCE_ENERGY_FLOOR,
                ..MfccOptions::default()
            },
            deltas: DeltaOptions::default(),
            sliding_cmn: SlidingCmnOptions {
                cmn_window: 1000,
                ..SlidingCmnOptions::default()
            },
            vad: VadOptions::default(),
            vad_mode: VadMode::default(),
            cmn_scope: CmnScope::default(),
        }
    }
}

impl FrontEndOptions {
    /// Validates every part.
    pub fn validate(&self) -> Result<(), FeatureError> {
        self.mfcc.validate()?;
        self.deltas.validate()?;
        self.sliding_cmn.validate()?;
        self.vad.validate()
    }

    /// Output feature dimension: `num_ceps · (order + 1)`.
    pub fn dim(&self) -> usize {
        self.mfcc.num_ceps * (self.deltas.order + 1)
    }
}

/// Result of the batch front end.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontEndOutput {
    /// Normalised features of the voiced frames only.
    pub features: FeatureMatrix,
    /// VAD decision of every frame (true = voiced, kept in `features`).
    pub voiced: Vec<bool>,
}

/// Batch speaker-ID front end (owns an [`MfccExtractor`]; reuse it across utterances).
#[derive(Debug)]
pub struct FrontEnd {
    opts: FrontEndOptions,
    mfcc: MfccExtractor,
    mfcc_buf: FeatureMatrix,
    log_energy: Vec<f32>,
    delta_buf: FeatureMatrix,
    cmn_buf: FeatureMatrix,
}

impl FrontEnd {
    /// Validates the options and plans the MFCC extractor.
    pub fn new(opts: FrontEndOptions) -> Result<Self, FeatureError> {
        opts.validate()?;
        Ok(Self {
            mfcc: MfccExtractor::new(opts.mfcc.clone())?,
            mfcc_buf: FeatureMatrix::new(opts.mfcc.num_ceps),
            log_energy: Vec::new(),
            delta_buf: FeatureMatrix::new(opts.dim()),
            cmn_buf: FeatureMatrix::new(opts.dim()),
            opts,
        })
    }

    /// The options in use.
    pub fn options(&self) -> &FrontEndOptions {
        &self.opts
    }

    /// Output feature dimension.
    pub fn dim(&self) -> usize {
        self.opts.dim()
    }

    /// Natural-log energy of every frame of the last utterance computed (voiced or not).
    pub fn log_energy(&self) -> &[f32] {
        &self.log_energy
    }

    /// Features of one utterance (samples in 16-bit scale at `mfcc.sample_rate_hz`).
    pub fn compute(&mut self, samples: &[f32]) -> Result<FrontEndOutput, FeatureError> {
        let mut output = FrontEndOutput {
            features: FeatureMatrix::new(self.dim()),
            voiced: Vec::new(),
        };
        self.compute_into(samples, &mut output)?;
        Ok(output)
    }

    /// [`compute`](Self::compute) into a reused output (no allocation once buffers are large
    /// enough, except the VAD decisions).
    pub fn compute_into(
        &mut self,
        samples: &[f32],
        output: &mut FrontEndOutput,
    ) -> Result<(), FeatureError> {
        check_dim(&output.features, self.dim())?;
        self.mfcc
            .compute_into(samples, &mut self.mfcc_buf, &mut self.log_energy)?;
        compute_deltas_into(&self.mfcc_buf, &self.opts.deltas, &mut self.delta_buf)?;
        output.voiced =
            compute_vad_with_mode(&self.log_energy, &self.opts.vad, self.opts.vad_mode)?;
        output.features.clear();
        match self.opts.cmn_scope {
            CmnScope::AllFrames => {
                apply_sliding_cmn_into(&self.delta_buf, &self.opts.sliding_cmn, &mut self.cmn_buf)?;
                for (row, &voiced) in self.cmn_buf.rows().zip(&output.voiced) {
                    if voiced {
                        output.features.push_row(row);
                    }
                }
            }
            CmnScope::VoicedFrames => {
                self.cmn_buf.clear();
                for (row, &voiced) in self.delta_buf.rows().zip(&output.voiced) {
                    if voiced {
                        self.cmn_buf.push_row(row);
                    }
                }
                if !self.cmn_buf.is_empty() {
                    apply_sliding_cmn_into(
                        &self.cmn_buf,
                        &self.opts.sliding_cmn,
                        &mut output.features,
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Streaming speaker-ID front end: waveform chunks in, normalised voiced frames out. It uses
/// the running-mean VAD ([`VadMode::Running`]) whatever `vad_mode` says, since the utterance
/// mean is unknown until the end; its output is bit-identical to [`FrontEnd::compute`] with
/// `vad_mode = Running`. Latency: `cmn_window / 2` frames with a centred CMN window.
#[derive(Debug)]
pub struct StreamingFrontEnd {
    mfcc: MfccExtractor,
    deltas: StreamingDeltas,
    cmn: StreamingSlidingCmn,
    vad: StreamingVad,
    mfcc_buf: FeatureMatrix,
    energy_buf: Vec<f32>,
    delta_buf: FeatureMatrix,
    cmn_pending: FeatureMatrix,
    vad_pending: Vec<bool>,
    /// Δ frames waiting for their VAD decision ([`CmnScope::VoicedFrames`]).
    delta_pending: FeatureMatrix,
    voiced_buf: FeatureMatrix,
    scope: CmnScope,
    frames_decided: usize,
    ready: FeatureMatrix,
}

impl StreamingFrontEnd {
    /// Validates the options and builds every stage.
    pub fn new(opts: FrontEndOptions) -> Result<Self, FeatureError> {
        opts.validate()?;
        let ceps = opts.mfcc.num_ceps;
        let dim = opts.dim();
        Ok(Self {
            mfcc: MfccExtractor::new(opts.mfcc.clone())?,
            deltas: StreamingDeltas::new(ceps, &opts.deltas)?,
            cmn: StreamingSlidingCmn::new(dim, &opts.sliding_cmn)?,
            vad: StreamingVad::new(&opts.vad)?,
            mfcc_buf: FeatureMatrix::new(ceps),
            energy_buf: Vec::new(),
            delta_buf: FeatureMatrix::new(dim),
            cmn_pending: FeatureMatrix::new(dim),
            vad_pending: Vec::new(),
            delta_pending: FeatureMatrix::new(dim),
            voiced_buf: FeatureMatrix::new(dim),
            scope: opts.cmn_scope,
            frames_decided: 0,
            ready: FeatureMatrix::new(dim),
        })
    }

    /// Output feature dimension.
    pub fn dim(&self) -> usize {
        self.cmn.dim()
    }

    /// Frames (voiced or not) whose decision and features are final.
    pub fn num_frames_decided(&self) -> usize {
        self.frames_decided
    }

    /// Starts a new utterance.
    pub fn reset(&mut self) {
        self.mfcc.reset();
        self.deltas.reset();
        self.cmn.reset();
        self.vad.reset();
        self.mfcc_buf.clear();
        self.energy_buf.clear();
        self.delta_buf.clear();
        self.cmn_pending.clear();
        self.vad_pending.clear();
        self.delta_pending.clear();
        self.voiced_buf.clear();
        self.frames_decided = 0;
        self.ready.clear();
    }

    /// Feeds the next samples (16-bit scale), any chunk size.
    pub fn accept_waveform(&mut self, samples: &[f32]) -> Result<(), FeatureError> {
        self.mfcc.accept_waveform(samples)?;
        self.mfcc
            .pop_frames_with_energy(&mut self.mfcc_buf, &mut self.energy_buf)?;
        self.deltas.accept_frames(&self.mfcc_buf)?;
        self.vad.accept_log_energy(&self.energy_buf);
        self.mfcc_buf.clear();
        self.energy_buf.clear();
        self.deltas.pop_frames(&mut self.delta_buf)?;
        self.route_deltas()?;
        self.collect()
    }

    /// Sends finished Δ frames to the CMN: all of them ([`CmnScope::AllFrames`]) or, once their
    /// VAD decision is known, only the voiced ones ([`CmnScope::VoicedFrames`]).
    fn route_deltas(&mut self) -> Result<(), FeatureError> {
        match self.scope {
            CmnScope::AllFrames => self.cmn.accept_frames(&self.delta_buf)?,
            CmnScope::VoicedFrames => {
                move_rows(&mut self.delta_buf, &mut self.delta_pending)?;
                self.vad.pop_decisions(&mut self.vad_pending);
                let n = self.delta_pending.num_frames().min(self.vad_pending.len());
                self.voiced_buf.clear();
                for (t, &voiced) in self.vad_pending[..n].iter().enumerate() {
                    if voiced {
                        self.voiced_buf.push_row(self.delta_pending.row(t));
                    }
                }
                self.cmn.accept_frames(&self.voiced_buf)?;
                self.delta_pending.drain_front(n);
                self.vad_pending.drain(..n);
                self.frames_decided += n;
            }
        }
        self.delta_buf.clear();
        Ok(())
    }

    /// Marks the end of the utterance and flushes every stage.
    pub fn input_finished(&mut self) -> Result<(), FeatureError> {
        self.mfcc.input_finished();
        self.deltas.input_finished();
        self.vad.input_finished();
        self.deltas.pop_frames(&mut self.delta_buf)?;
        self.route_deltas()?;
        self.cmn.input_finished();
        self.collect()
    }

    /// Moves the voiced frames finished so far to the end of `out`; returns how many.
    pub fn pop_frames(&mut self, out: &mut FeatureMatrix) -> Result<usize, FeatureError> {
        move_rows(&mut self.ready, out)
    }

    fn collect(&mut self) -> Result<(), FeatureError> {
        if self.scope == CmnScope::VoicedFrames {
            // Every frame reaching the CMN is voiced; decisions were counted in route_deltas.
            self.cmn.pop_frames(&mut self.ready)?;
            return Ok(());
        }
        self.cmn.pop_frames(&mut self.cmn_pending)?;
        self.vad.pop_decisions(&mut self.vad_pending);
        let n = self.cmn_pending.num_frames().min(self.vad_pending.len());
        for (t, &voiced) in self.vad_pending[..n].iter().enumerate() {
            if voiced {
                self.ready.push_row(self.cmn_pending.row(t));
            }
        }
        self.cmn_pending.drain_front(n);
        self.vad_pending.drain(..n);
        self.frames_decided += n;
        Ok(())
    }
}
