//! `allot`: one binary for every role — the server, the Apple simulator, and the command-line
//! client of the server's API.

mod cli;

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ALLOT_LOG")
                .unwrap_or_else(|_| cli.default_log().into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
