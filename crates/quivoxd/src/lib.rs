//! `quivoxd`: the quivox caller-ID daemon.
//!
//! Audio from live calls comes in over Asterisk AudioSocket (TCP), RTP (UDP, G.711) or a sound
//! card; each call runs a streaming `quivox` session on a separate compute runtime; decisions go
//! out over an HTTP API (JSON, Server-Sent Events) and Prometheus metrics. See the crate README.

#![forbid(unsafe_code)]

pub mod audiosocket;
pub mod calls;
pub mod client;
pub mod config;
pub mod http;
pub mod metrics;
pub mod rtp;
pub mod sdnotify;
#[cfg(feature = "soundcard")]
pub mod soundcard;

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use quivox::audio::{ChannelPolicy, Waveform};
use quivox::engine::{CallInfo, CallOutcome, Session, SpeakerId};
use quivox::service::{EnrollRequest, Service, ServiceError, ServiceOptions};
use quivox::store::{Actor, Consent, SqliteStore, Store, StoreKey};

pub use calls::State;
pub use config::Config;

/// What an enrollment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollResult {
    /// The speaker was not enrolled before.
    pub new_speaker: bool,
    /// Net speech in the speaker's voiceprint now, ms.
    pub net_speech_ms: u64,
    /// Revision of the stored voiceprint.
    pub model_revision: u32,
}

/// The decision backend: a [`Service`] (engine + encrypted store, kept in step).
#[derive(Debug)]
pub struct Backend {
    service: Service,
    operator: String,
}

impl Backend {
    /// Loads the model file and opens the configured store (its voiceprints and number
    /// directory become live).
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let store: Box<dyn Store> = match config.store.kind.as_str() {
            "memory" => Box::new(SqliteStore::open_sqlite_in_memory(StoreKey::generate())?),
            "sqlite" => {
                let key = if config.store.key_file.as_os_str().is_empty() {
                    StoreKey::from_env()
                        .context("store key (set QUIVOX_STORE_KEY or [store] key_file)")?
                } else {
                    StoreKey::from_file(&config.store.key_file)
                        .with_context(|| format!("store key {}", config.store.key_file.display()))?
                };
                Box::new(
                    SqliteStore::open_sqlite(&config.store.path, key).with_context(|| {
                        format!("opening store {}", config.store.path.display())
                    })?,
                )
            }
            other => anyhow::bail!("[store] kind {other:?}: expected \"memory\" or \"sqlite\""),
        };
        let mut options = ServiceOptions::default();
        options.engine = config.engine.clone();
        let service = Service::open_model_file(&config.model.path, store, options)
            .with_context(|| format!("loading model {}", config.model.path.display()))?;
        let missing = service.speakers_without_voiceprint()?;
        if !missing.is_empty() {
            tracing::warn!(
                speakers = missing.len(),
                model_version = service.model_version(),
                "enrolled speakers have no voiceprint for these models and will not be recognised: \
                 move their voiceprints with `quivox migrate --from-models OLD` (when only the back \
                 ends changed) or re-enroll them"
            );
        }
        Ok(Self {
            service,
            operator: config.store.operator.clone(),
        })
    }

    fn actor(&self) -> Actor {
        Actor::now(&self.operator)
    }

    /// The service.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Model identity voiceprints are stored under.
    pub fn model_version(&self) -> &str {
        self.service.model_version()
    }

    /// Starts a call session.
    pub fn start_call(&self, info: CallInfo) -> Result<Session, ServiceError> {
        self.service.start_call(info)
    }

    /// Finishes a call session (audited; counted on the number when the voice agreed).
    pub fn finish_call(&self, session: Session) -> Result<CallOutcome, ServiceError> {
        self.service.finish_call(&self.actor(), session)
    }

    /// Enrolled speaker ids.
    pub fn speakers(&self) -> Vec<String> {
        self.service
            .engine()
            .population()
            .ids()
            .iter()
            .map(|s| s.0.clone())
            .collect()
    }

    /// Enrolls a speaker (or adds audio to one already enrolled) and links numbers.
    #[allow(clippy::too_many_arguments)]
    pub fn enroll(
        &self,
        speaker: &str,
        display_name: &str,
        numbers: &[String],
        recordings: Vec<Waveform>,
        consent_method: &str,
        consent_reference: &str,
    ) -> Result<EnrollResult, ServiceError> {
        let actor = self.actor();
        let report = self.service.enroll(
            &actor,
            &EnrollRequest {
                speaker: SpeakerId(speaker.to_string()),
                display_name: display_name.to_string(),
                external_id: None,
                numbers: numbers.to_vec(),
                consent: Consent {
                    given_at: actor.now,
                    method: consent_method.to_string(),
                    operator: self.operator.clone(),
                    reference: consent_reference.to_string(),
                },
                recordings,
                keep_audio: false,
            },
        )?;
        Ok(EnrollResult {
            new_speaker: report.new_speaker,
            net_speech_ms: report.total_speech_ms,
            model_revision: report.model_revision,
        })
    }

    /// Erases a speaker (store and memory); returns whether they were enrolled.
    pub fn remove(&self, speaker: &str) -> Result<bool, ServiceError> {
        let id = SpeakerId(speaker.to_string());
        if self.service.engine().voiceprint(&id).is_none() {
            return Ok(false);
        }
        self.service.forget(&self.actor(), &id)?;
        Ok(true)
    }
}

/// A running daemon.
pub struct Daemon {
    state: Arc<State>,
    http_addr: SocketAddr,
    audiosocket_addr: Option<SocketAddr>,
    rtp_shared_addr: Option<SocketAddr>,
    http_task: tokio::task::JoinHandle<()>,
    compute: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("http_addr", &self.http_addr)
            .field("audiosocket_addr", &self.audiosocket_addr)
            .finish_non_exhaustive()
    }
}

/// What a graceful shutdown did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Calls in progress when shutdown began.
    pub calls_in_flight: usize,
    /// Calls that had not finished their decision when the budget ran out.
    pub calls_unfinished: usize,
}

impl Daemon {
    /// Loads the model, enrolls the configured speakers, binds the listeners, starts serving.
    /// Call from inside a tokio runtime (it serves network I/O); decision sessions run on a
    /// runtime of their own (`compute_threads`).
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let threads = if config.compute_threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            config.compute_threads
        };
        let compute = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("quivoxd-compute")
            .enable_time()
            .build()
            .context("building the compute runtime")?;
        let cfg = config.clone();
        let backend = tokio::task::spawn_blocking(move || -> anyhow::Result<Backend> {
            let backend = Backend::open(&cfg)?;
            for e in &cfg.enroll {
                let mut waves = Vec::new();
                for p in &e.wav {
                    waves.push(
                        quivox::recipe::read_telephone_wav(p, ChannelPolicy::RequireMono)
                            .with_context(|| format!("enrolling {}: {}", e.speaker, p.display()))?,
                    );
                }
                let r = backend
                    .enroll(&e.speaker, &e.speaker, &e.numbers, waves, "config", "quivoxd [[enroll]]")
                    .with_context(|| format!("enrolling {}", e.speaker))?;
                tracing::info!(speaker = %e.speaker, net_speech_ms = r.net_speech_ms, "enrolled from config");
            }
            Ok(backend)
        })
        .await??;
        let state = State::new(backend, config.clone(), compute.handle().clone());

        let http_listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding HTTP {}", config.http.listen))?;
        let http_addr = http_listener.local_addr()?;
        let audiosocket_addr = if config.audiosocket.enabled {
            let l = tokio::net::TcpListener::bind(config.audiosocket.listen)
                .await
                .with_context(|| format!("binding AudioSocket {}", config.audiosocket.listen))?;
            let a = l.local_addr()?;
            tokio::spawn(audiosocket::serve(Arc::clone(&state), l));
            Some(a)
        } else {
            None
        };
        let rtp_shared_addr = match config.rtp.shared_listen {
            Some(addr) if config.rtp.enabled => {
                let sock = tokio::net::UdpSocket::bind(addr)
                    .await
                    .with_context(|| format!("binding shared RTP port {addr}"))?;
                let a = sock.local_addr()?;
                state.set_rtp_shared_addr(a);
                tokio::spawn(rtp::serve_shared(Arc::clone(&state), sock));
                Some(a)
            }
            _ => None,
        };
        let app = http::router(Arc::clone(&state));
        let mut sd = state.shutdown.subscribe();
        let http_task = tokio::spawn(async move {
            let r = axum::serve(http_listener, app)
                .with_graceful_shutdown(async move {
                    let _ = crate::calls::until_true(&mut sd).await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        #[cfg(feature = "soundcard")]
        if config.soundcard.enabled {
            soundcard::start(Arc::clone(&state))?;
        }
        state.ready.store(true, Relaxed);
        tracing::info!(%http_addr, audiosocket = ?audiosocket_addr, speakers = state.backend.speakers().len(),
            compute_threads = threads, "quivoxd ready");
        Ok(Self {
            state,
            http_addr,
            audiosocket_addr,
            rtp_shared_addr,
            http_task,
            compute: Some(compute),
        })
    }

    /// The HTTP API address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The AudioSocket address (when enabled).
    pub fn audiosocket_addr(&self) -> Option<SocketAddr> {
        self.audiosocket_addr
    }

    /// The shared RTP port (when `[rtp] shared_listen` is set).
    pub fn rtp_shared_addr(&self) -> Option<SocketAddr> {
        self.rtp_shared_addr
    }

    /// Shared state (metrics, calls).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Graceful shutdown: refuse new calls, end the ones in progress and wait (at most
    /// `shutdown_timeout_ms`) for their final decisions, then stop the HTTP server.
    pub async fn shutdown(mut self) -> ShutdownReport {
        let in_flight = self.state.active_calls().len();
        self.state.ready.store(false, Relaxed);
        tracing::info!(
            calls = in_flight,
            "shutting down: finishing calls in progress"
        );
        // Calls first (their final events still reach SSE clients), then the listeners.
        let budget = Duration::from_millis(self.state.config.shutdown_timeout_ms);
        let unfinished = drain(&self.state, budget).await;
        self.state.shutdown.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.http_task).await;
        if let Some(rt) = self.compute.take() {
            rt.shutdown_background();
        }
        tracing::info!(calls = in_flight, unfinished, "shutdown complete");
        ShutdownReport {
            calls_in_flight: in_flight,
            calls_unfinished: unfinished,
        }
    }
}

async fn drain(state: &Arc<State>, budget: Duration) -> usize {
    state.begin_refusing();
    state.drain_calls(budget).await
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.state.shutdown.send_replace(true);
        if let Some(rt) = self.compute.take() {
            rt.shutdown_background();
        }
    }
}
