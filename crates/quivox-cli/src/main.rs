//! `quivox`: the operator CLI (enroll, identify, verify, train, evaluate).

use clap::{Parser, Subcommand};

mod cmd_demo;
mod cmd_eval;
mod cmd_features;
mod cmd_train;
mod cmd_train_backend;

#[derive(Parser)]
#[command(
    name = "quivox",
    version,
    about = "Voice-biometrics caller identification"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print version information.
    Version,
    /// Enroll the fixture speakers into a temporary store and identify held-out calls.
    Demo(cmd_demo::DemoArgs),
    /// Compute Kaldi-compatible MFCC features of a WAV (.npy or .csv).
    Features(cmd_features::FeaturesArgs),
    /// Train the GMM-UBM system (UBM + held-out calibration) on a background folder.
    TrainUbm(cmd_train::TrainUbmArgs),
    /// Train the i-vector / embedding PLDA back ends, their calibrations and the fusion.
    TrainBackend(cmd_train_backend::TrainBackendArgs),
    /// Evaluate on development sets: EER, minDCF, Cllr, identification.
    Eval(cmd_eval::EvalArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("quivox {}", env!("CARGO_PKG_VERSION")),
        Command::Demo(args) => cmd_demo::run(&args)?,
        Command::Features(args) => cmd_features::run(&args)?,
        Command::TrainUbm(args) => cmd_train::run(&args)?,
        Command::TrainBackend(args) => cmd_train_backend::run(&args)?,
        Command::Eval(args) => cmd_eval::run(&args)?,
    }
    Ok(())
}
