//! `quivox`: the operator CLI (enroll, identify, verify, train, evaluate).

use clap::{Parser, Subcommand};

mod cmd_features;

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
    /// Compute Kaldi-compatible MFCC features of a WAV (.npy or .csv).
    Features(cmd_features::FeaturesArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("quivox {}", env!("CARGO_PKG_VERSION")),
        Command::Features(args) => cmd_features::run(&args)?,
    }
    Ok(())
}
