//! Daemon configuration: a TOML file, then `QUIVOXD_<SECTION>__<KEY>` environment overrides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use quivox::engine::EngineOptions;
use serde::{Deserialize, Serialize};

/// The whole configuration. Every section has defaults; an empty file is valid.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The voice model.
    pub model: ModelConfig,
    /// Voiceprint store.
    pub store: StoreConfig,
    /// HTTP API.
    pub http: HttpConfig,
    /// Asterisk AudioSocket ingress.
    pub audiosocket: AudioSocketConfig,
    /// RTP ingress.
    pub rtp: RtpConfig,
    /// Queue bounds and call bookkeeping.
    pub calls: CallsConfig,
    /// Engine options (confidence, decision points, prior); see `quivox::engine::EngineOptions`.
    pub engine: EngineOptions,
    /// Speakers enrolled at start (in memory; lost at exit).
    pub enroll: Vec<EnrollConfig>,
    /// Sound-card ingress (feature `soundcard`).
    pub soundcard: SoundcardConfig,
    /// Threads running decision sessions (0 = one per core).
    pub compute_threads: usize,
    /// Graceful-shutdown budget for in-flight calls to finish their decisions, ms.
    pub shutdown_timeout_ms: u64,
}

/// The voice model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Models: a folder (the fused GMM-UBM + i-vector + embedding system, default `models`) or a
    /// GMM-UBM system file (that system alone).
    pub path: PathBuf,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("models"),
        }
    }
}

/// The encrypted voiceprint store (`quivox::store`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory` (nothing kept after exit; for tests and trials) or `sqlite`.
    pub kind: String,
    /// SQLite database file (`kind = "sqlite"`).
    pub path: PathBuf,
    /// File holding the 32-byte key as 64 hex digits; empty = the `QUIVOX_STORE_KEY` variable.
    pub key_file: PathBuf,
    /// Operator name written in the audit log.
    pub operator: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: "memory".into(),
            path: PathBuf::from("/var/lib/quivoxd/quivox.sqlite"),
            key_file: PathBuf::new(),
            operator: "quivoxd".into(),
        }
    }
}

/// HTTP API listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// TCP address (port 0 = any free port).
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8740).into(),
        }
    }
}

/// AudioSocket listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioSocketConfig {
    /// Whether to listen at all.
    pub enabled: bool,
    /// TCP address Asterisk connects to.
    pub listen: SocketAddr,
    /// How long a call whose number was not announced yet waits for `POST /v1/calls` before its
    /// session starts with the number withheld, ms. Audio is buffered meanwhile.
    pub number_wait_ms: u64,
    /// A connection silent this long is closed, ms.
    pub idle_timeout_ms: u64,
    /// Largest audio payload accepted, bytes (Asterisk sends 320 = 20 ms).
    pub max_audio_payload_bytes: u16,
}

impl Default for AudioSocketConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: ([127, 0, 0, 1], 8741).into(),
            number_wait_ms: 2000,
            idle_timeout_ms: 10_000,
            max_audio_payload_bytes: 3200,
        }
    }
}

/// RTP ingress: each call announced with `transport = "rtp"` gets a UDP port from the range.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    /// Whether RTP calls can be announced.
    pub enabled: bool,
    /// Address the per-call UDP sockets bind to.
    pub bind_ip: std::net::IpAddr,
    /// First port of the range (0 with `port_max` 0 = any free port).
    pub port_min: u16,
    /// Last port of the range.
    pub port_max: u16,
    /// Packets the jitter buffer holds before declaring the oldest missing one lost.
    pub jitter_depth_packets: usize,
    /// A call whose RTP stops this long is ended, ms.
    pub idle_timeout_ms: u64,
    /// Packets from a new SSRC needed in a row before the stream switches to it.
    pub ssrc_switch_packets: u32,
    /// A fixed UDP address shared by calls announced with an `ssrc` (demultiplexed by SSRC);
    /// absent = disabled.
    pub shared_listen: Option<SocketAddr>,
}

impl Default for RtpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bind_ip: [127, 0, 0, 1].into(),
            port_min: 40000,
            port_max: 40999,
            jitter_depth_packets: 5,
            idle_timeout_ms: 30_000,
            ssrc_switch_packets: 3,
            shared_listen: None,
        }
    }
}

/// Queue bounds and call bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// Audio frames queued per call before new ones are dropped (back-pressure never blocks
    /// ingestion).
    pub audio_queue_frames: usize,
    /// Decision events buffered for SSE clients; a client further behind loses events.
    pub event_queue: usize,
    /// Calls in progress at most; more are refused.
    pub max_active: usize,
    /// Finished calls kept for `GET /v1/calls/{id}`.
    pub finished_kept: usize,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            audio_queue_frames: 500,
            event_queue: 4096,
            max_active: 2000,
            finished_kept: 2000,
        }
    }
}

/// A speaker enrolled at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollConfig {
    /// Speaker id.
    pub speaker: String,
    /// Enrollment recordings (WAV, resampled to 8 kHz).
    pub wav: Vec<PathBuf>,
    /// Numbers the speaker is known on.
    #[serde(default)]
    pub numbers: Vec<String>,
}

/// Sound-card ingress: one long "call" per capture session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoundcardConfig {
    /// Capture at start.
    pub enabled: bool,
    /// cpal input device name (empty = the host's default input).
    pub device: String,
    /// Call id of the capture session.
    pub call_id: String,
    /// Caller number to assume (empty = withheld).
    pub caller_number: String,
    /// Capture length, ms of audio captured (0 = until shutdown or `DELETE /v1/calls/{id}`).
    pub duration_ms: u64,
}

impl Config {
    /// Reads `path` (when given), applies environment overrides from `env`, validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("reading config {}: {e}", p.display()))?,
            None => String::new(),
        };
        let mut value: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("config is not valid TOML: {e}"))?;
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("QUIVOXD_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            let parsed = parse_scalar(&v);
            let entry = value
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => {
                    t.insert(key, parsed);
                }
                _ => anyhow::bail!("{k}: [{section}] is not a table in the config"),
            }
        }
        let mut config: Config = toml::Value::Table(value)
            .try_into()
            .map_err(|e| anyhow::anyhow!("config: {e}"))?;
        if config.shutdown_timeout_ms == 0 {
            config.shutdown_timeout_ms = 10_000;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks values a type cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.engine
            .validate()
            .map_err(|e| anyhow::anyhow!("[engine]: {e}"))?;
        if self.rtp.port_min > self.rtp.port_max {
            anyhow::bail!(
                "[rtp] port_min {} > port_max {}: expected a non-empty range",
                self.rtp.port_min,
                self.rtp.port_max
            );
        }
        if self.rtp.jitter_depth_packets == 0 || self.rtp.jitter_depth_packets > 100 {
            anyhow::bail!(
                "[rtp] jitter_depth_packets {}: expected 1..=100",
                self.rtp.jitter_depth_packets
            );
        }
        if self.calls.audio_queue_frames == 0 || self.calls.event_queue == 0 {
            anyhow::bail!("[calls] audio_queue_frames and event_queue must be at least 1");
        }
        if self.audiosocket.max_audio_payload_bytes < 2 {
            anyhow::bail!("[audiosocket] max_audio_payload_bytes must be at least 2");
        }
        Ok(())
    }
}

/// An environment value as TOML: integer, float, boolean, else string.
fn parse_scalar(v: &str) -> toml::Value {
    if let Ok(i) = v.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if let Ok(f) = v.parse::<f64>() {
        return toml::Value::Float(f);
    }
    match v {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.toml");
        std::fs::write(
            &p,
            "[http]\nlisten = \"127.0.0.1:1\"\n[audiosocket]\nnumber_wait_ms = 5\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&p),
            [
                ("QUIVOXD_HTTP__LISTEN".into(), "0.0.0.0:9".into()),
                ("QUIVOXD_RTP__PORT_MIN".into(), "100".into()),
                ("QUIVOXD_ENGINE__CONFIDENCE".into(), "0.9".into()),
                ("OTHER".into(), "x".into()),
            ],
        )
        .unwrap();
        assert_eq!(c.http.listen, "0.0.0.0:9".parse().unwrap());
        assert_eq!(c.audiosocket.number_wait_ms, 5);
        assert_eq!(c.rtp.port_min, 100);
        assert_eq!(c.engine.confidence, 0.9);
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/quivoxd.toml");
        let c = Config::load(Some(&p), []).unwrap();
        assert_eq!(c.store.kind, "sqlite");
        assert_eq!(c.audiosocket.listen.port(), 8741);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let bad = |text: &str| {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("q.toml");
            std::fs::write(&p, text).unwrap();
            Config::load(Some(&p), []).is_err()
        };
        assert!(bad("[http]\nlisen = \"127.0.0.1:1\"\n"));
        assert!(bad("[rtp]\nport_min = 10\nport_max = 5\n"));
        assert!(bad("[engine]\nconfidence = 1.5\n"));
        assert!(!bad(""));
    }
}
