//! `quivox`: the operator CLI (enroll, identify, verify, manage the store, train, evaluate).
//!
//! - `cmd_voice`: `enroll`, `identify`, `verify` through `quivox::service::Service`;
//! - `cmd_store`: the store commands (`init`, `keygen`, `list`, `show`, `link-number`,
//!   `unlink-number`, `forget`, `export`, `rotate-key`, `retention`, `purge`, `check`) straight
//!   on the `quivox::store::Store` trait;
//! - `config`: flags > environment > TOML file > defaults; `outcome`: exit codes, errors, JSON,
//!   progress bars; `mic`: microphone capture (cpal) resampled to 8 kHz; `timeline`: decisions.
//!
//! Exit codes are listed on [`outcome::Exit`] and in the crate README.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_augment;
mod cmd_demo;
mod cmd_eval;
mod cmd_features;
mod cmd_store;
mod cmd_train;
mod cmd_train_backend;
mod cmd_voice;
mod config;
mod mic;
mod outcome;
mod timeline;

use outcome::Exit;

#[derive(Parser)]
#[command(
    name = "quivox",
    version,
    about = "Voice-biometrics caller identification",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 refused by quality checks, \
                  5 store/key error, 6 no voice decision, 7 voice rejected, 8 no audio input device."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print version information.
    Version {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Enroll a speaker from WAV files or the microphone (or add audio to an enrolled one).
    Enroll(cmd_voice::EnrollArgs),
    /// Identify the caller of a recording (or the microphone), printing the decision timeline.
    Identify(cmd_voice::IdentifyArgs),
    /// Check a claimed identity against recordings (or the microphone).
    Verify(cmd_voice::VerifyArgs),
    /// Create the key file (if missing, mode 0600) and the store.
    Init(cmd_store::InitArgs),
    /// Write a new random store key to a file (mode 0600).
    Keygen(cmd_store::KeygenArgs),
    /// List enrolled speakers.
    List(cmd_store::PlainArgs),
    /// Show one speaker: details, voiceprints, numbers, consent (no biometric data).
    Show(cmd_store::SpeakerArgs),
    /// Link a calling number to a speaker.
    LinkNumber(cmd_store::LinkArgs),
    /// Remove a number ↔ speaker link.
    UnlinkNumber(cmd_store::LinkArgs),
    /// Erase a speaker everywhere (voiceprints, numbers, consent, kept audio); audited.
    Forget(cmd_store::ForgetArgs),
    /// Everything held about a speaker, as JSON (GDPR access request); audited.
    Export(cmd_store::ExportArgs),
    /// Re-encrypt every voiceprint and kept recording under a new random key.
    RotateKey(cmd_store::RotateKeyArgs),
    /// Show or set the retention policy.
    Retention(cmd_store::RetentionArgs),
    /// Apply the retention policy now.
    Purge(cmd_store::PurgeArgs),
    /// Check the store's integrity (every blob decrypts, consent present, no orphans).
    Check(cmd_store::PlainArgs),
    /// Move the voiceprints enrolled with older models to the loaded ones, from their stored
    /// statistics (no audio; when only MAP, cohort, i-vector back end, calibration or fusion
    /// changed); audited.
    Migrate(cmd_voice::MigrateArgs),
    /// Enroll the fixture speakers into a temporary store and identify held-out calls.
    Demo(cmd_demo::DemoArgs),
    /// Compute Kaldi-compatible MFCC features of a WAV (.npy or .csv).
    Features(cmd_features::FeaturesArgs),
    /// Train the GMM-UBM system (UBM + held-out calibration) on a background folder.
    TrainUbm(cmd_train::TrainUbmArgs),
    /// Give a GMM-UBM system an adaptive S-norm cohort from background speakers and recalibrate it.
    TrainCohort(cmd_train::TrainCohortArgs),
    /// Train the i-vector / embedding PLDA back ends, their calibrations and the fusion.
    TrainBackend(cmd_train_backend::TrainBackendArgs),
    /// Evaluate on development sets: EER, minDCF, Cllr, identification.
    Eval(cmd_eval::EvalArgs),
    /// Render a dev set's tests through phone channels (codec, noise, handset, packet loss).
    AugmentSet(cmd_augment::AugmentSetArgs),
}

fn run(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Version { json } => {
            if json {
                outcome::print_json(&serde_json::json!({"version": env!("CARGO_PKG_VERSION")}))?;
            } else {
                println!("quivox {}", env!("CARGO_PKG_VERSION"));
            }
        }
        Command::Enroll(args) => return cmd_voice::enroll(&args),
        Command::Identify(args) => return cmd_voice::identify(&args),
        Command::Verify(args) => return cmd_voice::verify(&args),
        Command::Init(args) => cmd_store::init(&args)?,
        Command::Keygen(args) => cmd_store::keygen(&args)?,
        Command::List(args) => cmd_store::list(&args)?,
        Command::Show(args) => cmd_store::show(&args)?,
        Command::LinkNumber(args) => cmd_store::link_number(&args)?,
        Command::UnlinkNumber(args) => cmd_store::unlink_number(&args)?,
        Command::Forget(args) => cmd_store::forget(&args)?,
        Command::Export(args) => cmd_store::export(&args)?,
        Command::RotateKey(args) => cmd_store::rotate_key(&args)?,
        Command::Retention(args) => cmd_store::retention(&args)?,
        Command::Purge(args) => cmd_store::purge(&args)?,
        Command::Check(args) => cmd_store::check(&args)?,
        Command::Migrate(args) => return cmd_voice::migrate(&args),
        Command::Demo(args) => cmd_demo::run(&args)?,
        Command::Features(args) => cmd_features::run(&args)?,
        Command::TrainUbm(args) => cmd_train::run(&args)?,
        Command::TrainCohort(args) => cmd_train::run_cohort(&args)?,
        Command::TrainBackend(args) => cmd_train_backend::run(&args)?,
        Command::Eval(args) => cmd_eval::run(&args)?,
        Command::AugmentSet(args) => cmd_augment::run(&args)?,
    }
    Ok(Exit::Ok)
}

/// Whether the command line asked for JSON output (for error reports).
fn wants_json() -> bool {
    std::env::args().skip(1).any(|a| a == "--json")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = wants_json();
    outcome::set_json_mode(json);
    match run(cli.command) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => ExitCode::from(outcome::report_error(&error, json).code()),
    }
}
