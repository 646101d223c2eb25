//! `quivox demo`: enroll the fixture speakers into a temporary encrypted store, then identify
//! held-out calls (one from an unknown caller), with and without the calling number.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use quivox::audio::ChannelPolicy;
use quivox::engine::voice::{front_end_fingerprint, GmmUbmSystem};
use quivox::engine::{
    caller_posterior, Best, NumberDirectory, PhoneNumber, PriorOptions, SpeakerId,
};
use quivox::features::FrontEnd;
use quivox::gmm::{DiagGmm, SpeakerBank};
use quivox::model_io::{kinds, FrontEndCheck, ModelFile};
use quivox::recipe::read_telephone_wav;
use quivox::store::{Actor, Consent, Enrollment, ModelBlob, SqliteStore, Store, StoreKey};

/// Arguments of `quivox demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder with `<speaker>-enroll.wav` and `<speaker>-call.wav` files.
    #[arg(long, default_value = "audio-fixtures/demo")]
    pub fixtures: PathBuf,
    /// GMM-UBM system file.
    #[arg(long, default_value = "models/gmm-ubm.qvx")]
    pub gmm: PathBuf,
    /// Posterior probability needed to name a caller.
    #[arg(long, default_value_t = 0.9)]
    pub confidence: f64,
}

const ENROLLED: [(&str, &str, &str); 4] = [
    ("so0457", "Alex Martin", "+44 20 7946 0001"),
    ("so1027", "Sam Martin", "+44 20 7946 0001"),
    ("so2061", "Kim Durand", "+33 1 23 45 67 89"),
    ("so2740", "Lee Chen", "+1 555 0100"),
];

/// (call file speaker, calling number or None when withheld, what the scenario shows).
const CALLS: [(&str, Option<&str>, &str); 6] = [
    (
        "so0457",
        Some("+44 20 7946 0001"),
        "household line, the right member",
    ),
    (
        "so1027",
        Some("+44 20 7946 0001"),
        "household line, the other member",
    ),
    ("so2061", None, "withheld number: voice only"),
    (
        "so2740",
        Some("+33 1 23 45 67 89"),
        "someone else's number: the voice disagrees",
    ),
    (
        "so9614",
        Some("+1 555 0100"),
        "caller nobody enrolled, on a known number",
    ),
    ("so9614", None, "caller nobody enrolled, number withheld"),
];

fn wav(dir: &Path, speaker: &str, what: &str) -> PathBuf {
    dir.join(format!("{speaker}-{what}.wav"))
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let (system, front_end_opts) =
        GmmUbmSystem::load(&args.gmm).with_context(|| format!("loading {}", args.gmm.display()))?;
    if !args.fixtures.is_dir() {
        bail!(
            "{}: expected the demo fixtures folder (run from the repository root)",
            args.fixtures.display()
        );
    }
    let mut front_end = FrontEnd::new(front_end_opts.clone())?;
    let fingerprint = front_end_fingerprint(&front_end_opts)?;
    let model_version = format!("gmm-ubm-{}", &sha_hex(&std::fs::read(&args.gmm)?)[..16]);
    let store_dir = tempfile::tempdir()?;
    let store_path = store_dir.path().join("demo.sqlite");
    let mut store = SqliteStore::open_sqlite(&store_path, StoreKey::generate())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let actor = Actor::new("quivox-demo", now);

    println!(
        "quivox demo: {} ({} components), store {}",
        args.gmm.display(),
        system.ubm.num_components(),
        store_path.display()
    );
    println!("\n== enrollment (voiceprints encrypted at rest, no raw audio kept)");
    for (id, name, number) in ENROLLED {
        let path = wav(&args.fixtures, id, "enroll");
        let wave = read_telephone_wav(&path, ChannelPolicy::RequireMono)?;
        let feats = front_end.compute(&wave.samples)?.features;
        let model = system.enroll(&feats)?;
        let bytes = model
            .to_model_writer(kinds::SPEAKER_GMM, Some(fingerprint.clone()))?
            .to_bytes()?;
        store.enroll(
            &actor,
            &Enrollment {
                speaker: SpeakerId(id.to_string()),
                display_name: name.to_string(),
                external_id: None,
                models: vec![ModelBlob {
                    kind: "gmm".into(),
                    model_version: model_version.clone(),
                    bytes,
                }],
                numbers: vec![PhoneNumber::parse(number)?],
                consent: Consent {
                    given_at: now,
                    method: "demo".into(),
                    operator: "quivox-demo".into(),
                    reference: "audio-fixtures/demo".into(),
                },
                keep_audio: Vec::new(),
            },
        )?;
        println!(
            "  {id} ({name}, {number}): {:.1} s of audio, {:.1} s of speech",
            wave.duration_s(),
            feats.num_frames() as f64 / 100.0
        );
    }

    // What a gateway does at start: load the population and the number directory from the store.
    let mut population = Vec::new();
    let mut models: Vec<DiagGmm> = Vec::new();
    for (speaker, bytes) in store.load_models("gmm", &model_version)? {
        let file = ModelFile::from_bytes(
            &bytes,
            kinds::SPEAKER_GMM,
            FrontEndCheck::Require(&fingerprint),
        )?;
        models.push(DiagGmm::from_model_file(&file)?);
        population.push(speaker);
    }
    let mut directory = NumberDirectory::new();
    for (number, speaker, calls) in store.load_number_links()? {
        directory.set_call_count(number, speaker, calls);
    }
    let refs: Vec<&DiagGmm> = models.iter().collect();
    let bank = SpeakerBank::new(&system.ubm, &refs)?;
    let prior_opts = PriorOptions::default();

    println!(
        "\n== calls (decision after the whole 7-s call; posterior needed: {:.2})",
        args.confidence
    );
    for (caller, number, scenario) in CALLS {
        let path = wav(&args.fixtures, caller, "call");
        let wave = read_telephone_wav(&path, ChannelPolicy::RequireMono)?;
        let feats = front_end.compute(&wave.samples)?.features;
        let llrs: Vec<f64> = system
            .raw_scores(&feats, &bank)?
            .iter()
            .map(|&s| system.calibrate(s, feats.num_frames()))
            .collect();
        let number = number.map(PhoneNumber::parse).transpose()?;
        let prior = directory.prior(number.as_ref(), &population, &prior_opts);
        let post = caller_posterior(&prior, &llrs);
        let line: Vec<String> = population
            .iter()
            .zip(&prior.on_line)
            .filter(|(_, &on)| on)
            .map(|(s, _)| s.to_string())
            .collect();
        let verdict = match post.best() {
            Best::Speaker(i, p) if p >= args.confidence => {
                if prior.has_line_members() && !prior.on_line[i] {
                    format!(
                        "MISMATCH: number says {}, voice says {} (posterior {p:.3}, LLR {:.1})",
                        line.join("/"),
                        population[i],
                        llrs[i]
                    )
                } else {
                    format!(
                        "IDENTIFIED {} (posterior {p:.3}, LLR {:.1})",
                        population[i], llrs[i]
                    )
                }
            }
            Best::Unknown(p) if p >= args.confidence => {
                format!("UNKNOWN caller (posterior {p:.3})")
            }
            Best::Speaker(i, p) => format!("undecided (best {} at {p:.3})", population[i]),
            Best::Unknown(p) => format!("undecided (unknown at {p:.3})"),
        };
        let shown = number
            .as_ref()
            .map_or("withheld".to_string(), |n| n.to_string());
        println!("  call from {shown:<14} [{scenario}; true caller {caller}]\n      -> {verdict}");
        // Call history only learns from agreeing evidence: a mismatch (possible spoofed number)
        // must not link the voice to the number.
        if let Best::Speaker(i, p) = post.best() {
            if p >= args.confidence && (prior.on_line[i] || !prior.has_line_members()) {
                if let Some(n) = &number {
                    store.record_call(&actor, n, &population[i])?;
                }
            }
        }
    }
    let integrity = store.integrity_check()?;
    println!(
        "\nstore integrity: {} speakers, {} voiceprints, {} number links, problems: {}",
        integrity.speakers,
        integrity.models,
        integrity.number_links,
        if integrity.problems.is_empty() {
            "none".to_string()
        } else {
            integrity.problems.join("; ")
        }
    );
    Ok(())
}

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
