//! `quivoxd`: the caller-ID daemon. `quivoxd [--config FILE]`; see the crate README.

use std::path::PathBuf;

use anyhow::Context as _;
use quivoxd::{sdnotify, Config, Daemon};
use tracing_subscriber::EnvFilter;

fn usage() -> ! {
    eprintln!(
        "usage: quivoxd [--config FILE] [--check-config]\n\
         environment: QUIVOXD_CONFIG (file), QUIVOXD_<SECTION>__<KEY> (overrides, e.g. \
         QUIVOXD_HTTP__LISTEN=0.0.0.0:8740), QUIVOXD_LOG / RUST_LOG (log filter), \
         QUIVOXD_LOG_FORMAT=json"
    );
    std::process::exit(2)
}

fn main() -> anyhow::Result<()> {
    let mut config_path: Option<PathBuf> = std::env::var_os("QUIVOXD_CONFIG").map(PathBuf::from);
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config_path = Some(args.next().map(PathBuf::from).unwrap_or_else(|| usage()))
            }
            "--check-config" => check = true,
            _ => usage(),
        }
    }
    let filter = std::env::var("QUIVOXD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    if std::env::var("QUIVOXD_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
    let config = Config::load(config_path.as_deref(), std::env::vars())?;
    if check {
        println!("{}", toml::to_string_pretty(&config)?);
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("quivoxd-io")
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let daemon = Daemon::start(config).await.context("starting quivoxd")?;
        let _ = sdnotify::notify(&format!(
            "READY=1\nSTATUS=serving HTTP on {} AudioSocket on {}\nMAINPID={}",
            daemon.http_addr(),
            daemon
                .audiosocket_addr()
                .map_or("-".to_string(), |a| a.to_string()),
            std::process::id()
        ));
        wait_for_signal().await;
        let _ = sdnotify::notify("STOPPING=1\nSTATUS=finishing calls in progress");
        let report = daemon.shutdown().await;
        tracing::info!(?report, "bye");
        anyhow::Ok(())
    })?;
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
    }
}
