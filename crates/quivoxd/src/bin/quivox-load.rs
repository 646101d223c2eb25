//! `quivox-load`: N simultaneous AudioSocket calls paced in real time on loopback.
//!
//! Starts an in-process `quivoxd` with the demo fixture speakers enrolled (or targets a running
//! one with `--http`/`--audiosocket`), then for each N in `--calls`: N clients announce their
//! call (`POST /v1/calls`), stream a recorded fixture call in 20-ms AudioSocket frames at real
//! time (start times spread over the first second) and hang up. One SSE client receives every
//! decision. Reported per N: frames the daemon dropped (queue full), decision latency behind
//! real time (event arrival − the moment the audio it rests on had been sent) p50/p99/max,
//! calls identified correctly, and how late the senders themselves ran (client overload).
//!
//! `quivox-load --calls 50,100,200 [--seconds 7] [--fixtures audio-fixtures/demo]
//!  [--model models/gmm-ubm.qvx] [--compute-threads 0]` (the GMM-UBM alone by default, as the
//! published load figures; `--model models` loads the fused system)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use quivox::audio::ChannelPolicy;
use quivoxd::client::{self, AudioSocketClient, SseClient};
use quivoxd::config::EnrollConfig;
use quivoxd::{Config, Daemon};
use serde_json::json;

const CALLERS: [(&str, &str); 2] = [
    ("so0457", "+44 20 7946 0001"),
    ("so1027", "+44 20 7946 0001"),
];
const ENROLLED: [(&str, &str); 4] = [
    ("so0457", "+44 20 7946 0001"),
    ("so1027", "+44 20 7946 0001"),
    ("so2061", "+33 1 23 45 67 89"),
    ("so2740", "+1 555 0100"),
];

struct Args {
    calls: Vec<usize>,
    seconds: f64,
    fixtures: PathBuf,
    model: PathBuf,
    compute_threads: usize,
    http: Option<SocketAddr>,
    audiosocket: Option<SocketAddr>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        calls: vec![10, 50, 100],
        seconds: 7.0,
        fixtures: "audio-fixtures/demo".into(),
        model: "models/gmm-ubm.qvx".into(),
        compute_threads: 0,
        http: None,
        audiosocket: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().with_context(|| format!("{k}: expected a value"));
        match k.as_str() {
            "--calls" => {
                a.calls = v()?
                    .split(',')
                    .map(|x| x.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--seconds" => a.seconds = v()?.parse()?,
            "--fixtures" => a.fixtures = v()?.into(),
            "--model" => a.model = v()?.into(),
            "--compute-threads" => a.compute_threads = v()?.parse()?,
            "--http" => a.http = Some(v()?.parse()?),
            "--audiosocket" => a.audiosocket = Some(v()?.parse()?),
            _ => anyhow::bail!(
                "unknown argument {k}; usage: quivox-load --calls 50,100 [--seconds 7] \
                 [--fixtures DIR] [--model FILE] [--compute-threads N] [--http ADDR --audiosocket ADDR]"
            ),
        }
    }
    Ok(a)
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Outcome {
    /// Latency of each decision event behind real time, ms.
    latencies_ms: Vec<f64>,
    /// Final decisions: call id → (kind, speaker).
    finals: HashMap<String, (String, String)>,
}

async fn run_n(
    n: usize,
    round: usize,
    http: SocketAddr,
    asock: SocketAddr,
    audio: &Arc<Vec<Vec<i16>>>,
    seconds: f64,
) -> anyhow::Result<()> {
    let before = client::get(http, "/metrics").await?.text();
    let starts: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let outcome: Arc<Mutex<Outcome>> = Arc::default();
    let mut sse = SseClient::connect(http, "/v1/events").await?;
    let (o2, s2) = (Arc::clone(&outcome), Arc::clone(&starts));
    let listener = tokio::spawn(async move {
        let mut finals = 0;
        while finals < n {
            let Ok(Some(e)) = sse.next().await else { break };
            let now = Instant::now();
            if e.event == "lagged" {
                eprintln!("SSE client lagged: {} events lost", e.data);
                continue;
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.data) else {
                continue;
            };
            let id = v["call_id"].as_str().unwrap_or("").to_string();
            let Some(start) = s2.lock().unwrap().get(&id).copied() else {
                continue;
            };
            let mut o = o2.lock().unwrap();
            if v["final"] == true {
                finals += 1;
                o.finals.insert(
                    id,
                    (
                        v["kind"].as_str().unwrap_or("").into(),
                        v["speaker"].as_str().unwrap_or("").into(),
                    ),
                );
            } else {
                let audio_ms = v["call_audio_ms"].as_f64().unwrap_or(0.0);
                let lat = now.duration_since(start).as_secs_f64() * 1000.0 - audio_ms;
                o.latencies_ms.push(lat);
            }
        }
    });
    let frames = (seconds * 50.0) as usize;
    let mut tasks = Vec::new();
    let t0 = tokio::time::Instant::now();
    let max_late = Arc::new(Mutex::new(0f64));
    for i in 0..n {
        let (speaker, number) = CALLERS[i % CALLERS.len()];
        let pcm = Arc::clone(audio);
        let starts = Arc::clone(&starts);
        let max_late = Arc::clone(&max_late);
        let mut uuid = [0u8; 16];
        uuid[..8].copy_from_slice(&(round as u64).to_be_bytes());
        uuid[8..].copy_from_slice(&(i as u64).to_be_bytes());
        let id = quivoxd::audiosocket::uuid_to_string(&uuid);
        let offset = Duration::from_secs_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(t0 + offset).await;
            client::post_json(
                http,
                "/v1/calls",
                &json!({"uuid": id, "caller_number": number}),
            )
            .await?;
            let mut c = AudioSocketClient::connect(asock, &uuid).await?;
            let audio = &pcm[i % CALLERS.len()];
            let start = tokio::time::Instant::now();
            starts.lock().unwrap().insert(id.clone(), start.into_std());
            let mut worst = 0f64;
            for k in 0..frames {
                let due = start + Duration::from_millis(20 * k as u64);
                tokio::time::sleep_until(due).await;
                worst = worst.max(due.elapsed().as_secs_f64() * 1000.0);
                let at = (k * 160) % audio.len().max(160);
                let end = (at + 160).min(audio.len());
                c.audio(&audio[at..end]).await?;
            }
            c.hangup().await?;
            let _ = c.closed_by_peer(Duration::from_secs(60)).await;
            let mut m = max_late.lock().unwrap();
            *m = m.max(worst);
            anyhow::Ok(speaker)
        }));
    }
    let mut failed = 0;
    let mut expected = HashMap::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await? {
            Ok(s) => {
                let mut uuid = [0u8; 16];
                uuid[..8].copy_from_slice(&(round as u64).to_be_bytes());
                uuid[8..].copy_from_slice(&(i as u64).to_be_bytes());
                expected.insert(quivoxd::audiosocket::uuid_to_string(&uuid), s);
            }
            Err(e) => {
                failed += 1;
                eprintln!("call {i} failed: {e}");
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), listener).await;
    let after = client::get(http, "/metrics").await?.text();
    let dropped = metric(
        &after,
        "quivoxd_audio_frames_dropped_total{reason=\"queue_full\"}",
    ) - metric(
        &before,
        "quivoxd_audio_frames_dropped_total{reason=\"queue_full\"}",
    );
    let o = outcome.lock().unwrap();
    let mut lat = o.latencies_ms.clone();
    lat.sort_by(f64::total_cmp);
    let correct = o
        .finals
        .iter()
        .filter(|(id, (k, s))| k == "identified" && expected.get(*id).is_some_and(|e| e == s))
        .count();
    println!(
        "N={n:4}  calls ok {:4}/{n}  frames dropped {dropped:6}  decision latency behind real time: \
         p50 {:7.1} ms  p99 {:7.1} ms  max {:7.1} ms ({} events)  identified correctly {correct}/{}  \
         sender max lateness {:.1} ms",
        n - failed,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len(),
        o.finals.len(),
        *max_late.lock().unwrap()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("QUIVOXD_LOG").unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let audio: Vec<Vec<i16>> = CALLERS
        .iter()
        .map(|(s, _)| {
            let p = args.fixtures.join(format!("{s}-call.wav"));
            quivox::recipe::read_telephone_wav(&p, ChannelPolicy::RequireMono)
                .with_context(|| p.display().to_string())?
                .to_i16()
                .context("fixture to 16-bit")
        })
        .collect::<anyhow::Result<_>>()?;
    let audio = Arc::new(audio);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let daemon = match (args.http, args.audiosocket) {
            (Some(_), Some(_)) => None,
            _ => {
                let mut c = Config::default();
                c.model.path = args.model.clone();
                c.http.listen = "127.0.0.1:0".parse()?;
                c.audiosocket.listen = "127.0.0.1:0".parse()?;
                c.compute_threads = args.compute_threads;
                c.calls.max_active = 10_000;
                c.calls.event_queue = 65_536;
                c.enroll = ENROLLED
                    .iter()
                    .map(|(s, n)| EnrollConfig {
                        speaker: s.to_string(),
                        wav: vec![args.fixtures.join(format!("{s}-enroll.wav"))],
                        numbers: vec![n.to_string()],
                    })
                    .collect();
                Some(Daemon::start(c).await?)
            }
        };
        let (http, asock) = match &daemon {
            Some(d) => (d.http_addr(), d.audiosocket_addr().context("audiosocket")?),
            None => (
                args.http.unwrap_or(([127, 0, 0, 1], 0).into()),
                args.audiosocket.unwrap_or(([127, 0, 0, 1], 0).into()),
            ),
        };
        println!(
            "quivox-load: {} s calls, 20-ms AudioSocket frames at real time, daemon {}",
            args.seconds,
            if daemon.is_some() {
                "in-process (4 enrolled speakers)"
            } else {
                "external"
            }
        );
        for (round, &n) in args.calls.iter().enumerate() {
            run_n(n, round, http, asock, &audio, args.seconds).await?;
        }
        if let Some(d) = daemon {
            d.shutdown().await;
        }
        anyhow::Ok(())
    })
}
