//! Simulated-call evaluation of the caller-identification engine on a dev set.
//!
//! ```text
//! cargo run --release --example engine_eval -- [/work/shared/corpus/dev-read] [models/gmm-ubm.qvx] [--exact | --shortlist N] [--pass-growth F] [--no-noise-suppression]
//! ```
//!
//! `--no-noise-suppression` turns the engine's adaptive noise suppression off (enrollment and calls).
//!
//! `--exact` scores everybody exactly at every decision point (the reference path); `--shortlist N`
//! rescores only the best N by linear score (plus the calling line's members) exactly (default 32);
//! `--pass-growth F` redoes the linear pass and the GMM-UBM's cohort statistics when the scored
//! speech has grown by the factor F (default 1.5; 1 = at every decision point).
//!
//! Enrolls the open-set gallery (`ident_open_models.txt`, from `enroll.lst`), groups it into
//! households of 1–3 people sharing a number (seeded), then plays every `ident_open.txt` test
//! (7.000 s) as a call in 20-ms chunks:
//! - enrolled callers: 60 % from their own line, 20 % from another household's line (the voice
//!   must flag a `Mismatch`), 20 % withheld;
//! - impostors (speakers left out of the gallery): half from a household's line (spoofed), half
//!   withheld; any decision naming an enrolled speaker is a false accept.
//!
//! For several confidence thresholds it prints: correct identifications of enrolled callers
//! (final decision names the caller: `Identified` on the right line or withheld, `Mismatch` with
//! the right voice on a foreign line), wrong identifications, number-only fallbacks, closed-set
//! top-1 of the posterior at the end of the call (7 s), the unknown-caller false-accept rate, the
//! mismatch detection rate and the median net speech at the first voice decision.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quivox::audio::{ChannelPolicy, Waveform};
use quivox::engine::{
    CallInfo, CallOutcome, Decision, Engine, EngineOptions, ScoringOptions, SpeakerId, VoiceModels,
    VoiceSays,
};
use quivox::recipe::read_telephone_wav;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    OwnLine,
    ForeignLine,
    Withheld,
    ImpostorOnLine,
    ImpostorWithheld,
}

struct Call {
    wave: Waveform,
    truth: Option<SpeakerId>,
    number: Option<String>,
    scenario: Scenario,
}

fn read_lines(path: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

fn median(mut v: Vec<u64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    }
}

fn main() -> Result<()> {
    let mut scoring = ScoringOptions::default();
    let mut suppression = EngineOptions::default().adaptive_noise_suppression;
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--exact" => scoring = ScoringOptions::exact(),
            "--shortlist" => {
                scoring.shortlist = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--shortlist expects a number of speakers")?;
            }
            "--pass-growth" => {
                scoring.linear_pass_growth = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--pass-growth expects a factor ≥ 1")?;
            }
            "--no-noise-suppression" => suppression = None,
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let set = PathBuf::from(
        positional
            .next()
            .unwrap_or("/work/shared/corpus/dev-read".into()),
    );
    let model = PathBuf::from(positional.next().unwrap_or("models/gmm-ubm.qvx".into()));
    println!("scoring: {scoring:?}; adaptive noise suppression: {suppression:?}");
    let models = VoiceModels::load(&model)?;
    let mut base_opts = EngineOptions::default();
    base_opts.adaptive_noise_suppression = suppression.clone();
    let base = Engine::new(models.clone(), base_opts)?;

    // Enrollment.
    let gallery: Vec<String> = read_lines(&set.join("ident_open_models.txt"))?;
    let mut lists = BTreeMap::new();
    for line in read_lines(&set.join("enroll.lst"))? {
        let mut it = line.split_whitespace();
        let spk = it.next().unwrap_or_default().to_string();
        lists.insert(spk, it.map(|p| set.join(p)).collect::<Vec<_>>());
    }
    let mut enrolled = Vec::new();
    for spk in &gallery {
        let waves = lists
            .get(spk)
            .ok_or_else(|| format!("{spk} not in enroll.lst"))?
            .iter()
            .map(|p| read_telephone_wav(p, ChannelPolicy::RequireMono))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        match base.enroll(spk.as_str().into(), &waves) {
            Ok(()) => enrolled.push(SpeakerId::from(spk.as_str())),
            Err(e) => println!("enrollment refused: {e}"),
        }
    }

    // Households (seeded): shuffle, then groups of 1-3 on one number each.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut order = enrolled.clone();
    order.shuffle(&mut rng);
    let mut line_of = BTreeMap::new();
    let mut lines = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let size = rng.random_range(1..=3).min(order.len() - i);
        let number = format!("+4420790{:05}", lines.len());
        for spk in &order[i..i + size] {
            line_of.insert(spk.clone(), number.clone());
            base.link_number(&number, spk.clone())?;
        }
        lines.push(number);
        i += size;
    }

    // Calls.
    let mut calls = Vec::new();
    for line in read_lines(&set.join("ident_open.txt"))? {
        let mut it = line.split_whitespace();
        let (Some(wav), Some(truth)) = (it.next(), it.next()) else {
            continue;
        };
        let wave = read_telephone_wav(&set.join(wav), ChannelPolicy::RequireMono)?;
        let truth = SpeakerId::from(truth);
        let draw: f64 = rng.random();
        let call = if let Some(own) = line_of.get(&truth) {
            let (scenario, number) = if draw < 0.6 {
                (Scenario::OwnLine, Some(own.clone()))
            } else if draw < 0.8 && lines.len() > 1 {
                let mut other = own;
                while other == own {
                    other = &lines[rng.random_range(0..lines.len())];
                }
                (Scenario::ForeignLine, Some(other.clone()))
            } else {
                (Scenario::Withheld, None)
            };
            Call {
                wave,
                truth: Some(truth),
                number,
                scenario,
            }
        } else if draw < 0.5 {
            Call {
                wave,
                truth: None,
                number: Some(lines[rng.random_range(0..lines.len())].clone()),
                scenario: Scenario::ImpostorOnLine,
            }
        } else {
            Call {
                wave,
                truth: None,
                number: None,
                scenario: Scenario::ImpostorWithheld,
            }
        };
        calls.push(call);
    }
    // Streaming (running-mean) VAD in sessions vs the batch front end's utterance-mean VAD used
    // for enrollment: how much net speech each finds on the test calls.
    let (mut stream_ms, mut batch_ms) = (0u64, 0u64);
    for call in &calls {
        batch_ms +=
            quivox::engine::analyze(&models, &call.wave, base.adaptive_noise_suppression())?
                .net_speech_ms;
        let mut session = base.start_call(CallInfo::default())?;
        session.push_samples(&call.wave.samples)?;
        stream_ms += session.finish()?.net_speech_ms;
    }
    println!(
        "net speech per call: streaming VAD {:.0} ms, batch (utterance-mean) VAD {:.0} ms",
        stream_ms as f64 / calls.len().max(1) as f64,
        batch_ms as f64 / calls.len().max(1) as f64
    );
    let count = |s: Scenario| calls.iter().filter(|c| c.scenario == s).count();
    println!(
        "{}: {} enrolled in {} households; calls: {} own line, {} foreign line, {} withheld, {} impostor on a line, {} impostor withheld",
        set.display(),
        enrolled.len(),
        lines.len(),
        count(Scenario::OwnLine),
        count(Scenario::ForeignLine),
        count(Scenario::Withheld),
        count(Scenario::ImpostorOnLine),
        count(Scenario::ImpostorWithheld)
    );
    println!(
        "| confidence | enrolled: correct | wrong | number-only/none | top-1 (7 s, with number) | unknown FA | unknown → Unknown/Mismatch | mismatch detected | median speech to decision (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let prints: Vec<_> = enrolled
        .iter()
        .map(|s| (s.clone(), base.voiceprint(s).expect("enrolled")))
        .collect();
    for confidence in [0.95, 0.99, 0.995, 0.999] {
        let mut opts = EngineOptions::default();
        opts.confidence = confidence;
        opts.scoring = scoring.clone();
        opts.adaptive_noise_suppression = suppression.clone();
        let engine = Engine::new(models.clone(), opts)?;
        engine.insert_voiceprints(prints.iter().cloned())?;
        engine.set_directory(base.directory());
        let (mut correct, mut wrong, mut fallback, mut top1, mut n_enrolled) = (0, 0, 0, 0, 0);
        let (mut fa, mut rejected, mut n_impostor) = (0, 0, 0);
        let (mut mismatch_hit, mut n_foreign) = (0, 0);
        let mut time_to_decision = Vec::new();
        for call in &calls {
            let mut session = engine.start_call(CallInfo {
                caller_number: call.number.clone(),
                call_id: String::new(),
            })?;
            for chunk in call.wave.samples.chunks(160) {
                session.push_samples(chunk)?;
            }
            let outcome: CallOutcome = session.finish()?;
            if let Some(first) = outcome
                .timeline
                .iter()
                .find(|e| e.decision.is_voice_decision())
            {
                time_to_decision.push(first.net_speech_ms);
            }
            let decision = &outcome.final_decision.decision;
            let named = decision.voice_speaker();
            match &call.truth {
                Some(truth) => {
                    n_enrolled += 1;
                    match named {
                        Some(s) if s == truth => correct += 1,
                        Some(_) => wrong += 1,
                        None => fallback += 1,
                    }
                    if outcome.final_decision.top_speaker.as_ref().map(|t| &t.0) == Some(truth) {
                        top1 += 1;
                    }
                    if call.scenario == Scenario::ForeignLine {
                        n_foreign += 1;
                        if matches!(decision, Decision::Mismatch { .. }) {
                            mismatch_hit += 1;
                        }
                    }
                }
                None => {
                    n_impostor += 1;
                    if named.is_some() {
                        fa += 1;
                    }
                    // kept away from every enrolled identity: unknown, or the number's people
                    // ruled out without naming anyone else
                    if matches!(
                        decision,
                        Decision::Unknown { .. }
                            | Decision::Mismatch {
                                voice_says: VoiceSays::NobodyEnrolled | VoiceSays::NoneOfThem,
                                ..
                            }
                    ) {
                        rejected += 1;
                    }
                }
            }
        }
        let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
        println!(
            "| {confidence} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.1} % ({fa}/{n_impostor}) | {:.1} % | {:.1} % ({mismatch_hit}/{n_foreign}) | {:.0} |",
            pct(correct, n_enrolled),
            pct(wrong, n_enrolled),
            pct(fallback, n_enrolled),
            pct(top1, n_enrolled),
            pct(fa, n_impostor),
            pct(rejected, n_impostor),
            pct(mismatch_hit, n_foreign),
            median(time_to_decision)
        );
    }
    Ok(())
}
