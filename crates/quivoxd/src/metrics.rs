//! Prometheus metrics, rendered by hand in the text exposition format (no registry crate).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Decision kinds counted by `quivoxd_decisions_total{kind=...}`.
pub const DECISION_KINDS: [&str; 6] = [
    "identified",
    "unknown",
    "number_only",
    "mismatch",
    "need_more_audio",
    "other",
];

/// Why audio or input was dropped or refused (`reason` label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The call's bounded audio queue was full (the decision worker is behind).
    QueueFull,
    /// An RTP packet arrived after its slot was played out.
    RtpLate,
    /// The same RTP sequence number arrived twice.
    RtpDuplicate,
    /// A gap in RTP sequence numbers that the jitter buffer had to conceal.
    RtpLost,
}

impl DropReason {
    const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::RtpLate,
        DropReason::RtpDuplicate,
        DropReason::RtpLost,
    ];
    fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::RtpLate => "rtp_late",
            DropReason::RtpDuplicate => "rtp_duplicate",
            DropReason::RtpLost => "rtp_lost",
        }
    }
}

/// Bad input counted by `quivoxd_bad_input_total{source,reason}`.
pub const BAD_INPUT: [(&str, &str); 14] = [
    ("audiosocket", "expected_uuid_first"),
    ("audiosocket", "bad_length"),
    ("audiosocket", "unknown_type"),
    ("audiosocket", "truncated"),
    ("audiosocket", "peer_error"),
    ("audiosocket", "duplicate_call"),
    ("audiosocket", "idle_timeout"),
    ("rtp", "malformed"),
    ("rtp", "payload_type"),
    ("rtp", "unannounced_ssrc"),
    ("http", "bad_request"),
    ("audiosocket", "abrupt_disconnect"),
    ("audiosocket", "too_many_calls"),
    ("rtp", "too_many_calls"),
];

/// Upper bounds (seconds of call audio) of the time-to-decision histogram.
const TTD_BUCKETS: [f64; 10] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 30.0];
/// Upper bounds (seconds of wall time) of the decision-point processing histogram.
const PROC_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A histogram with fixed buckets; sums kept in microunits.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micro: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micro: AtomicU64::new(0),
        }
    }
    fn observe(&self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if v <= *b {
                c.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micro.fetch_add((v.max(0.0) * 1e6) as u64, Relaxed);
    }
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", c.load(Relaxed));
        }
        let n = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micro.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {n}");
    }
}

/// Every counter and gauge the daemon exports. Lock-free; shared through an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    calls_active: AtomicU64,
    calls_total: AtomicU64,
    decisions: [AtomicU64; 6],
    frames_in: AtomicU64,
    drops: [AtomicU64; 4],
    bad_input: Vec<AtomicU64>,
    sse_events_dropped: AtomicU64,
    sse_clients: AtomicU64,
    rtp_ssrc_changes: AtomicU64,
    dtmf: AtomicU64,
    late_numbers: AtomicU64,
    time_to_decision: Histogram,
    decision_processing: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All zero.
    pub fn new() -> Self {
        Self {
            calls_active: AtomicU64::new(0),
            calls_total: AtomicU64::new(0),
            decisions: Default::default(),
            frames_in: AtomicU64::new(0),
            drops: Default::default(),
            bad_input: BAD_INPUT.iter().map(|_| AtomicU64::new(0)).collect(),
            sse_events_dropped: AtomicU64::new(0),
            sse_clients: AtomicU64::new(0),
            rtp_ssrc_changes: AtomicU64::new(0),
            dtmf: AtomicU64::new(0),
            late_numbers: AtomicU64::new(0),
            time_to_decision: Histogram::new(&TTD_BUCKETS),
            decision_processing: Histogram::new(&PROC_BUCKETS),
        }
    }

    /// A call started.
    pub fn call_started(&self) {
        self.calls_active.fetch_add(1, Relaxed);
        self.calls_total.fetch_add(1, Relaxed);
    }
    /// A call finished.
    pub fn call_finished(&self) {
        self.calls_active.fetch_sub(1, Relaxed);
    }
    /// Calls in progress.
    pub fn calls_active(&self) -> u64 {
        self.calls_active.load(Relaxed)
    }
    /// A decision event of this kind (one of [`DECISION_KINDS`]).
    pub fn decision(&self, kind: &str) {
        let i = DECISION_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(DECISION_KINDS.len() - 1);
        self.decisions[i].fetch_add(1, Relaxed);
    }
    /// Decision events of this kind so far.
    pub fn decisions(&self, kind: &str) -> u64 {
        DECISION_KINDS
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| self.decisions[i].load(Relaxed))
    }
    /// An audio frame accepted into a call queue.
    pub fn frame_in(&self) {
        self.frames_in.fetch_add(1, Relaxed);
    }
    /// `n` frames/packets dropped for `why`.
    pub fn dropped(&self, why: DropReason, n: u64) {
        self.drops[why as usize].fetch_add(n, Relaxed);
    }
    /// Frames/packets dropped for `why` so far.
    pub fn drops(&self, why: DropReason) -> u64 {
        self.drops[why as usize].load(Relaxed)
    }
    /// One bad input event (`source`, `reason` from [`BAD_INPUT`]).
    pub fn bad_input(&self, source: &str, reason: &str) {
        if let Some(i) = BAD_INPUT
            .iter()
            .position(|(s, r)| *s == source && *r == reason)
        {
            self.bad_input[i].fetch_add(1, Relaxed);
        }
    }
    /// Bad input events counted so far for (`source`, `reason`).
    pub fn bad_inputs(&self, source: &str, reason: &str) -> u64 {
        BAD_INPUT
            .iter()
            .position(|(s, r)| *s == source && *r == reason)
            .map_or(0, |i| self.bad_input[i].load(Relaxed))
    }
    /// `n` events not delivered to a slow SSE client.
    pub fn sse_dropped(&self, n: u64) {
        self.sse_events_dropped.fetch_add(n, Relaxed);
    }
    /// SSE client count changes by `delta`.
    pub fn sse_client(&self, connected: bool) {
        if connected {
            self.sse_clients.fetch_add(1, Relaxed);
        } else {
            self.sse_clients.fetch_sub(1, Relaxed);
        }
    }
    /// An RTP stream switched SSRC.
    pub fn ssrc_change(&self) {
        self.rtp_ssrc_changes.fetch_add(1, Relaxed);
    }
    /// A DTMF digit was received.
    pub fn dtmf(&self) {
        self.dtmf.fetch_add(1, Relaxed);
    }
    /// A caller number arrived after the call's session had started without it.
    pub fn late_number(&self) {
        self.late_numbers.fetch_add(1, Relaxed);
    }
    /// First voice decision of a call after `audio_s` seconds of call audio.
    pub fn time_to_decision(&self, audio_s: f64) {
        self.time_to_decision.observe(audio_s);
    }
    /// Wall time spent in one engine push that produced a decision, seconds.
    pub fn decision_processing(&self, wall_s: f64) {
        self.decision_processing.observe(wall_s);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let mut scalar = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        scalar(
            "quivoxd_calls_active",
            "gauge",
            "Calls in progress.",
            self.calls_active.load(Relaxed),
        );
        scalar(
            "quivoxd_calls_total",
            "counter",
            "Calls started.",
            self.calls_total.load(Relaxed),
        );
        scalar(
            "quivoxd_audio_frames_total",
            "counter",
            "Audio frames queued to decision workers.",
            self.frames_in.load(Relaxed),
        );
        scalar(
            "quivoxd_sse_events_dropped_total",
            "counter",
            "Decision events not delivered to slow SSE clients.",
            self.sse_events_dropped.load(Relaxed),
        );
        scalar(
            "quivoxd_sse_clients",
            "gauge",
            "Connected SSE clients.",
            self.sse_clients.load(Relaxed),
        );
        scalar(
            "quivoxd_rtp_ssrc_changes_total",
            "counter",
            "RTP streams that switched SSRC.",
            self.rtp_ssrc_changes.load(Relaxed),
        );
        scalar(
            "quivoxd_dtmf_total",
            "counter",
            "DTMF digits received over AudioSocket.",
            self.dtmf.load(Relaxed),
        );
        scalar(
            "quivoxd_late_numbers_total",
            "counter",
            "Caller numbers announced after the call's session started without one.",
            self.late_numbers.load(Relaxed),
        );
        let _ = writeln!(
            o,
            "# HELP quivoxd_decisions_total Decision events by kind.\n# TYPE quivoxd_decisions_total counter"
        );
        for (k, c) in DECISION_KINDS.iter().zip(&self.decisions) {
            let _ = writeln!(
                o,
                "quivoxd_decisions_total{{kind=\"{k}\"}} {}",
                c.load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP quivoxd_audio_frames_dropped_total Audio frames or RTP packets dropped or concealed.\n# TYPE quivoxd_audio_frames_dropped_total counter"
        );
        for d in DropReason::ALL {
            let _ = writeln!(
                o,
                "quivoxd_audio_frames_dropped_total{{reason=\"{}\"}} {}",
                d.label(),
                self.drops[d as usize].load(Relaxed)
            );
        }
        let _ = writeln!(
            o,
            "# HELP quivoxd_bad_input_total Malformed or refused input by source and reason.\n# TYPE quivoxd_bad_input_total counter"
        );
        for ((s, r), c) in BAD_INPUT.iter().zip(&self.bad_input) {
            let _ = writeln!(
                o,
                "quivoxd_bad_input_total{{source=\"{s}\",reason=\"{r}\"}} {}",
                c.load(Relaxed)
            );
        }
        self.time_to_decision.render(
            &mut o,
            "quivoxd_time_to_decision_seconds",
            "Call audio heard before the first voice decision (identified, unknown or mismatch).",
        );
        self.decision_processing.render(
            &mut o,
            "quivoxd_decision_processing_seconds",
            "Wall time of the engine push that produced a decision event.",
        );
        o
    }
}
