//! `allot`: one binary for every role — the server, the Apple simulator, and the command-line
//! client of the server's API.

mod cli;
mod logging;

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cli::Cli::parse();
    logging::init(cli.default_log());
    if let Err(e) = cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
