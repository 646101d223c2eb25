//! `quivox`: the operator CLI (enroll, identify, verify, train, evaluate).

use clap::{Parser, Subcommand};

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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("quivox {}", env!("CARGO_PKG_VERSION")),
    }
    Ok(())
}
