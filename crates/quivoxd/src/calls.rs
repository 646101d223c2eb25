//! Calls: the table of announced/active/finished calls, the per-call decision worker, and the
//! decision events it publishes.
//!
//! Ingress tasks (AudioSocket, RTP, sound card) own an [`AudioSink`]: a bounded queue to the
//! call's worker. Pushing never waits: when the worker is behind, the frame is dropped and
//! counted (`quivoxd_audio_frames_dropped_total{reason="queue_full"}`). Dropping the sink ends
//! the call: the worker drains what is queued, finishes the session and publishes the final
//! decision.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quivox::engine::{CallInfo, Decision, DecisionEvent, Session};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch, Notify};

use crate::metrics::{DropReason, Metrics};
use crate::Backend;

/// How audio reaches the daemon for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Asterisk AudioSocket over TCP.
    Audiosocket,
    /// RTP over UDP (G.711).
    Rtp,
    /// Local sound card (cpal).
    Soundcard,
}

/// One decision event as published on the API (JSON).
#[derive(Debug, Clone, Serialize)]
pub struct EventJson {
    /// Call id.
    pub call_id: String,
    /// Event number within the call, from 1.
    pub seq: u32,
    /// True for the decision on all the call's audio, published when the call ends.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// `identified`, `unknown`, `number_only`, `mismatch`, `need_more_audio`.
    pub kind: &'static str,
    /// Call audio heard when the decision was made, ms.
    pub call_audio_ms: u64,
    /// Net speech behind it, ms.
    pub net_speech_ms: u64,
    /// Identified speaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// Posterior probability of the decision's hypothesis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posterior: Option<f64>,
    /// Calibrated voice LLR (natural log) of the named speaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llr: Option<f64>,
    /// Why the voice did not decide (`no_speech`, `too_little_speech`, `low_snr`, `inconclusive`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Number-only candidates with their prior probability.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<(String, f64)>,
    /// Mismatch: people known on the number.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub number_says: Vec<String>,
    /// Mismatch: what the voice says instead of the number: `speaker` (named in `voice_says`),
    /// `nobody_enrolled`, or `none_of_them` (the number's people ruled out, nobody named).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice_verdict: Option<&'static str>,
    /// Mismatch: the enrolled speaker the voice names, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice_says: Option<String>,
    /// Most probable enrolled speaker and posterior, even below the confidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_speaker: Option<(String, f64)>,
    /// Wall time since the call started when the event was published, ms.
    pub wall_ms: u64,
    /// Unix time of publication, ms.
    pub unix_ms: u64,
}

fn shortfall(r: &quivox::engine::VoiceShortfall) -> String {
    use quivox::engine::VoiceShortfall::*;
    match r {
        NoSpeech => "no_speech",
        TooLittleSpeech => "too_little_speech",
        LowSnr => "low_snr",
        Inconclusive => "inconclusive",
        _ => "other",
    }
    .to_string()
}

impl EventJson {
    fn new(call: &Call, seq: u32, is_final: bool, e: &DecisionEvent) -> Self {
        let mut j = EventJson {
            call_id: call.id.clone(),
            seq,
            is_final,
            kind: "other",
            call_audio_ms: e.call_audio_ms,
            net_speech_ms: e.net_speech_ms,
            speaker: None,
            posterior: None,
            llr: None,
            reason: None,
            candidates: Vec::new(),
            number_says: Vec::new(),
            voice_verdict: None,
            voice_says: None,
            top_speaker: e.top_speaker.as_ref().map(|(s, p)| (s.0.clone(), *p)),
            wall_ms: call.started.elapsed().as_millis() as u64,
            unix_ms: unix_ms(),
        };
        match &e.decision {
            Decision::Identified {
                speaker,
                llr,
                posterior,
            } => {
                j.kind = "identified";
                j.speaker = Some(speaker.0.clone());
                j.llr = Some(*llr);
                j.posterior = Some(*posterior);
            }
            Decision::Unknown { posterior } => {
                j.kind = "unknown";
                j.posterior = Some(*posterior);
            }
            Decision::NumberOnly { candidates, reason } => {
                j.kind = "number_only";
                j.candidates = candidates.iter().map(|(s, p)| (s.0.clone(), *p)).collect();
                j.reason = Some(shortfall(reason));
            }
            Decision::Mismatch {
                number_says,
                voice_says,
                llr,
                posterior,
            } => {
                j.kind = "mismatch";
                j.number_says = number_says.iter().map(|s| s.0.clone()).collect();
                j.voice_verdict = Some(voice_says.code());
                j.voice_says = voice_says.speaker().map(|s| s.0.clone());
                j.llr = llr.is_finite().then_some(*llr);
                j.posterior = Some(*posterior);
            }
            Decision::NeedMoreAudio { reason } => {
                j.kind = "need_more_audio";
                j.reason = Some(shortfall(reason));
            }
            _ => {}
        }
        j
    }
}

/// Resolves once the watched flag is true (never, if the sender is gone while false).
pub async fn until_true(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Unix time, ms.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Whether the caller number is known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberState {
    /// Not announced yet (AudioSocket opened first); the worker waits `number_wait_ms`.
    Pending,
    /// Known: `Some(number)` or `None` (withheld, or not announced in time).
    Known(Option<String>),
}

/// What the API shows of a call.
#[derive(Debug, Default)]
pub struct CallStatus {
    /// Latest decision event.
    pub current: Option<Arc<EventJson>>,
    /// Every event, in order.
    pub timeline: Vec<Arc<EventJson>>,
    /// Finished (final event published).
    pub finished: bool,
    /// Why the ingress ended (hang-up, error, ...).
    pub end_reason: Option<String>,
}

/// One call.
#[derive(Debug)]
pub struct Call {
    /// Call id (AudioSocket: the UUID, lowercase hyphenated).
    pub id: String,
    /// Ingress.
    pub transport: Transport,
    /// When the call was opened.
    pub started: Instant,
    /// Unix time the call was opened, ms.
    pub started_unix_ms: u64,
    /// Allocated RTP port.
    pub rtp_port: Option<u16>,
    number: Mutex<NumberState>,
    number_notify: Notify,
    stop_tx: watch::Sender<bool>,
    done_tx: watch::Sender<bool>,
    status: Mutex<CallStatus>,
    /// Frames queued to the worker.
    pub frames_in: AtomicU64,
    /// Frames dropped because the worker's queue was full.
    pub frames_dropped: AtomicU64,
    stopping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Call {
    /// The number state.
    pub fn number(&self) -> NumberState {
        lock(&self.number).clone()
    }
    /// Sets the number if it is still pending; returns whether it was applied.
    pub fn set_number(&self, n: Option<String>) -> bool {
        let mut g = lock(&self.number);
        if *g == NumberState::Pending {
            *g = NumberState::Known(n);
            drop(g);
            self.number_notify.notify_one();
            true
        } else {
            false
        }
    }
    /// Asks the call's ingress to stop (HTTP end, shutdown); the worker then finishes.
    pub fn stop(&self, reason: &str) {
        if !self.stopping.swap(true, Relaxed) {
            lock(&self.status)
                .end_reason
                .get_or_insert(reason.to_string());
        }
        self.stop_tx.send_replace(true);
    }
    /// A receiver that turns `true` when the call must stop.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }
    /// Waits until the final decision is published, at most `limit`.
    pub async fn wait_done(&self, limit: Duration) -> bool {
        let mut rx = self.done_tx.subscribe();
        tokio::time::timeout(limit, until_true(&mut rx))
            .await
            .is_ok()
    }
    /// Records why the ingress ended (first reason wins).
    pub fn set_end_reason(&self, reason: &str) {
        lock(&self.status)
            .end_reason
            .get_or_insert(reason.to_string());
    }
    /// Snapshot for the API.
    pub fn snapshot(&self, timeline: bool) -> serde_json::Value {
        let st = lock(&self.status);
        let (number_known, number) = match self.number() {
            NumberState::Pending => (false, None),
            NumberState::Known(n) => (true, n),
        };
        let mut v = serde_json::json!({
            "call_id": self.id,
            "transport": self.transport,
            "state": if st.finished { "finished" } else { "active" },
            "caller_number": number,
            "number_known": number_known,
            "started_unix_ms": self.started_unix_ms,
            "frames_in": self.frames_in.load(Relaxed),
            "frames_dropped": self.frames_dropped.load(Relaxed),
            "decision": st.current.as_deref(),
            "end_reason": st.end_reason,
        });
        if let Some(p) = self.rtp_port {
            v["rtp_port"] = p.into();
        }
        if timeline {
            v["timeline"] =
                serde_json::to_value(st.timeline.iter().map(|e| &**e).collect::<Vec<_>>())
                    .unwrap_or_default();
        }
        v
    }
    /// Events so far (for SSE catch-up) and whether the call is finished.
    pub fn events_so_far(&self) -> (Vec<Arc<EventJson>>, bool) {
        let st = lock(&self.status);
        (st.timeline.clone(), st.finished)
    }
}

/// The push side of a call's bounded audio queue. Dropping it ends the call.
#[derive(Debug)]
pub struct AudioSink {
    tx: mpsc::Sender<Vec<i16>>,
    call: Arc<Call>,
    metrics: Arc<Metrics>,
}

impl AudioSink {
    /// Queues a frame of 8-kHz samples; never waits. Returns false when it was dropped.
    pub fn push(&self, pcm: Vec<i16>) -> bool {
        match self.tx.try_send(pcm) {
            Ok(()) => {
                self.metrics.frame_in();
                self.call.frames_in.fetch_add(1, Relaxed);
                true
            }
            Err(_) => {
                self.metrics.dropped(DropReason::QueueFull, 1);
                let n = self.call.frames_dropped.fetch_add(1, Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(call = %self.call.id, dropped = n, "decision worker behind: audio frame dropped");
                }
                false
            }
        }
    }
    /// The call.
    pub fn call(&self) -> &Arc<Call> {
        &self.call
    }
}

/// Why a call could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// A call with this id is in progress.
    Duplicate,
    /// `max_active` calls are in progress.
    TooMany,
    /// The daemon is shutting down.
    ShuttingDown,
}

#[derive(Debug, Default)]
struct Table {
    active: HashMap<String, Arc<Call>>,
    /// AudioSocket calls announced over HTTP before their socket opened: number, when.
    announced: HashMap<String, (Option<String>, Instant)>,
    finished: HashMap<String, Arc<Call>>,
    finished_order: VecDeque<String>,
}

/// Datagrams (with their sender) for a call on the shared RTP port.
pub type RtpTx = mpsc::Sender<(Vec<u8>, std::net::SocketAddr)>;

/// How long an announcement waits for its AudioSocket connection.
const ANNOUNCE_TTL: Duration = Duration::from_secs(120);

/// Shared daemon state.
pub struct State {
    /// Engine (and later store) access.
    pub backend: Backend,
    /// Configuration.
    pub config: crate::config::Config,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Decision events for SSE clients.
    pub events: broadcast::Sender<Arc<EventJson>>,
    /// Runtime running decision workers (separate from network I/O).
    pub compute: tokio::runtime::Handle,
    /// Turns true at shutdown.
    pub shutdown: watch::Sender<bool>,
    /// Set once listeners are up and the model is loaded.
    pub ready: AtomicBool,
    refusing: AtomicBool,
    rtp_demux: Mutex<HashMap<u32, RtpTx>>,
    rtp_shared_addr: Mutex<Option<std::net::SocketAddr>>,
    table: Mutex<Table>,
    all_finished: Notify,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl State {
    /// New state.
    pub fn new(
        backend: Backend,
        config: crate::config::Config,
        compute: tokio::runtime::Handle,
    ) -> Arc<Self> {
        let (events, _) = broadcast::channel(config.calls.event_queue);
        let (shutdown, _) = watch::channel(false);
        Arc::new(Self {
            backend,
            config,
            metrics: Arc::new(Metrics::new()),
            events,
            compute,
            shutdown,
            ready: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            rtp_demux: Mutex::new(HashMap::new()),
            rtp_shared_addr: Mutex::new(None),
            table: Mutex::new(Table::default()),
            all_finished: Notify::new(),
        })
    }

    /// Registers a call's SSRC on the shared RTP port; false if the SSRC is taken.
    pub fn rtp_demux_insert(&self, ssrc: u32, tx: RtpTx) -> bool {
        let mut m = lock(&self.rtp_demux);
        if m.contains_key(&ssrc) {
            return false;
        }
        m.insert(ssrc, tx);
        true
    }

    /// The queue of the call announced with `ssrc` on the shared RTP port.
    pub fn rtp_demux_get(&self, ssrc: u32) -> Option<RtpTx> {
        lock(&self.rtp_demux).get(&ssrc).cloned()
    }

    /// Unregisters an SSRC.
    pub fn rtp_demux_remove(&self, ssrc: u32) {
        lock(&self.rtp_demux).remove(&ssrc);
    }

    /// Records the bound shared RTP address.
    pub fn set_rtp_shared_addr(&self, a: std::net::SocketAddr) {
        *lock(&self.rtp_shared_addr) = Some(a);
    }

    /// The shared RTP address, when enabled.
    pub fn rtp_shared_addr(&self) -> Option<std::net::SocketAddr> {
        *lock(&self.rtp_shared_addr)
    }

    /// Whether shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.refusing.load(Relaxed) || *self.shutdown.borrow()
    }

    /// Refuses new calls from now on (first step of shutdown).
    pub fn begin_refusing(&self) {
        self.refusing.store(true, Relaxed);
    }

    /// An active or finished call.
    pub fn call(&self, id: &str) -> Option<Arc<Call>> {
        let t = lock(&self.table);
        t.active.get(id).or_else(|| t.finished.get(id)).cloned()
    }

    /// Active calls.
    pub fn active_calls(&self) -> Vec<Arc<Call>> {
        lock(&self.table).active.values().cloned().collect()
    }

    /// Number of announced AudioSocket calls whose socket has not opened.
    pub fn announced_count(&self) -> usize {
        lock(&self.table).announced.len()
    }

    /// Records an AudioSocket announcement (number before socket). Returns false when the table
    /// of announcements is full.
    pub fn announce(&self, id: &str, number: Option<String>) -> bool {
        let mut t = lock(&self.table);
        let now = Instant::now();
        t.announced
            .retain(|_, (_, at)| now.duration_since(*at) < ANNOUNCE_TTL);
        if t.announced.len() >= self.config.calls.max_active * 2 {
            return false;
        }
        t.announced.insert(id.to_string(), (number, now));
        true
    }

    /// Removes an announcement; returns whether there was one.
    pub fn cancel_announcement(&self, id: &str) -> bool {
        lock(&self.table).announced.remove(id).is_some()
    }

    /// Opens a call and starts its decision worker. `number = None` means "take the announced
    /// number, else wait for one" (AudioSocket); `Some(n)` is known at once.
    pub fn open_call(
        self: &Arc<Self>,
        id: &str,
        transport: Transport,
        number: Option<Option<String>>,
        rtp_port: Option<u16>,
    ) -> Result<AudioSink, OpenError> {
        let mut t = lock(&self.table);
        if self.shutting_down() {
            return Err(OpenError::ShuttingDown);
        }
        if t.active.contains_key(id) {
            return Err(OpenError::Duplicate);
        }
        if t.active.len() >= self.config.calls.max_active {
            return Err(OpenError::TooMany);
        }
        let number = match number {
            Some(n) => NumberState::Known(n),
            None => match t.announced.remove(id) {
                Some((n, _)) => NumberState::Known(n),
                None => NumberState::Pending,
            },
        };
        let (tx, rx) = mpsc::channel(self.config.calls.audio_queue_frames);
        let call = Arc::new(Call {
            id: id.to_string(),
            transport,
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            rtp_port,
            number: Mutex::new(number),
            number_notify: Notify::new(),
            stop_tx: watch::channel(false).0,
            done_tx: watch::channel(false).0,
            status: Mutex::new(CallStatus::default()),
            frames_in: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        t.finished.remove(id);
        t.active.insert(id.to_string(), Arc::clone(&call));
        drop(t);
        self.metrics.call_started();
        tracing::info!(call = %id, ?transport, "call started");
        self.compute
            .spawn(run_worker(Arc::clone(self), Arc::clone(&call), rx));
        Ok(AudioSink {
            tx,
            call,
            metrics: Arc::clone(&self.metrics),
        })
    }

    fn close_call(&self, call: &Arc<Call>) {
        let mut t = lock(&self.table);
        t.active.remove(&call.id);
        t.finished.insert(call.id.clone(), Arc::clone(call));
        t.finished_order.push_back(call.id.clone());
        while t.finished_order.len() > self.config.calls.finished_kept {
            if let Some(old) = t.finished_order.pop_front() {
                if t.finished.get(&old).is_some_and(|c| c.id == old) && !t.active.contains_key(&old)
                {
                    t.finished.remove(&old);
                }
            }
        }
        drop(t);
        self.metrics.call_finished();
    }

    /// Stops every call and waits (at most `limit`) for their final decisions. Returns the
    /// number of calls still unfinished at the end.
    pub async fn drain_calls(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        let mut stopped: Vec<Arc<Call>> = Vec::new();
        loop {
            let notified = self.all_finished.notified();
            let calls = self.active_calls();
            if calls.is_empty() {
                break;
            }
            for c in &calls {
                c.stop("shutdown");
            }
            stopped.extend(calls);
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.active_calls().len();
            }
        }
        // Every final event is out before the caller stops the SSE streams.
        for c in stopped {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            c.wait_done(left).await;
        }
        self.active_calls().len()
    }
}

struct Worker {
    state: Arc<State>,
    call: Arc<Call>,
    seq: u32,
    voice_decided: bool,
    closed: bool,
}

impl Worker {
    fn start_session(&self, number: Option<String>) -> Option<Session> {
        let info = CallInfo {
            caller_number: number.clone(),
            call_id: self.call.id.clone(),
        };
        match self.state.backend.start_call(info) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(call = %self.call.id, number = ?number, error = %e, "starting the session with the number failed; number treated as withheld");
                self.state
                    .backend
                    .start_call(CallInfo {
                        caller_number: None,
                        call_id: self.call.id.clone(),
                    })
                    .map_err(|e| tracing::error!(call = %self.call.id, error = %e, "session start failed"))
                    .ok()
            }
        }
    }

    fn publish(&mut self, e: &DecisionEvent, is_final: bool, processing: Option<Duration>) {
        self.seq += 1;
        let ev = Arc::new(EventJson::new(&self.call, self.seq, is_final, e));
        let m = &self.state.metrics;
        m.decision(ev.kind);
        if let Some(p) = processing {
            m.decision_processing(p.as_secs_f64());
        }
        if !self.voice_decided && matches!(ev.kind, "identified" | "unknown" | "mismatch") {
            self.voice_decided = true;
            m.time_to_decision(ev.call_audio_ms as f64 / 1000.0);
        }
        tracing::info!(call = %self.call.id, kind = ev.kind, speaker = ?ev.speaker, posterior = ?ev.posterior,
            call_audio_ms = ev.call_audio_ms, net_speech_ms = ev.net_speech_ms, is_final, "decision");
        {
            let mut st = lock(&self.call.status);
            st.current = Some(Arc::clone(&ev));
            st.timeline.push(Arc::clone(&ev));
            if is_final {
                st.finished = true;
            }
        }
        if is_final {
            // The call leaves the active table before its final event is visible to clients.
            self.state.close_call(&self.call);
            self.closed = true;
        }
        let _ = self.state.events.send(ev);
    }

    /// Pushes a frame; false when the engine refused it (the call then stops scoring).
    fn push(&mut self, session: &mut Session, pcm: &[i16]) -> bool {
        let t0 = Instant::now();
        if let Err(e) = session.push_pcm(pcm) {
            tracing::error!(call = %self.call.id, error = %e, "engine refused audio");
            return false;
        }
        let mut took = None;
        while let Some(ev) = session.poll() {
            let p = *took.get_or_insert_with(|| t0.elapsed());
            self.publish(&ev, false, Some(p));
        }
        true
    }
}

async fn run_worker(state: Arc<State>, call: Arc<Call>, mut rx: mpsc::Receiver<Vec<i16>>) {
    let wait = Duration::from_millis(state.config.audiosocket.number_wait_ms);
    let deadline = tokio::time::Instant::now() + wait;
    let mut w = Worker {
        state: Arc::clone(&state),
        call: Arc::clone(&call),
        seq: 0,
        voice_decided: false,
        closed: false,
    };
    let mut held: Vec<Vec<i16>> = Vec::new();
    let mut session: Option<Session> = None;
    let mut healthy = true;
    loop {
        if session.is_none() {
            if let NumberState::Known(n) = call.number() {
                session = w.start_session(n);
                if let Some(s) = session.as_mut() {
                    for pcm in held.drain(..) {
                        healthy = healthy && w.push(s, &pcm);
                    }
                } else {
                    break;
                }
                continue;
            }
            tokio::select! {
                m = rx.recv() => match m {
                    Some(pcm) => held.push(pcm),
                    None => break,
                },
                _ = call.number_notify.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    if call.set_number(None) {
                        tracing::info!(call = %call.id, wait_ms = wait.as_millis() as u64, "no caller number announced in time: treated as withheld");
                    }
                }
            }
        } else {
            match rx.recv().await {
                Some(pcm) => {
                    if healthy {
                        if let Some(s) = session.as_mut() {
                            healthy = w.push(s, &pcm);
                        }
                    }
                }
                None => break,
            }
        }
    }
    if session.is_none() {
        // Ingress ended before the number wait: decide on what was heard, number as known now.
        call.set_number(None);
        if let NumberState::Known(n) = call.number() {
            session = w.start_session(n);
        }
        if let Some(s) = session.as_mut() {
            for pcm in held.drain(..) {
                if !w.push(s, &pcm) {
                    break;
                }
            }
        }
    }
    if let Some(s) = session {
        let t0 = Instant::now();
        match state.backend.finish_call(s) {
            Ok(outcome) => {
                let took = t0.elapsed();
                w.publish(&outcome.final_decision, true, Some(took));
            }
            Err(e) => tracing::error!(call = %call.id, error = %e, "finishing the session failed"),
        }
    }
    lock(&call.status).finished = true;
    if !w.closed {
        state.close_call(&call);
    }
    call.done_tx.send_replace(true);
    // After the final event is out: shutdown may now stop the SSE streams.
    if state.active_calls().is_empty() {
        state.all_finished.notify_waiters();
    }
    tracing::info!(call = %call.id, frames = call.frames_in.load(Relaxed), dropped = call.frames_dropped.load(Relaxed), "call finished");
}
