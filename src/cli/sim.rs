//! `allot sim`: the Apple Apps and Books simulator.

use std::net::SocketAddr;
use std::path::PathBuf;

use allot_apple_sim::{GenerateSpec, Scenario, SimOptions};
use anyhow::Context;

#[derive(clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100", env = "ALLOT_SIM_LISTEN")]
    listen: SocketAddr,
    /// Scenario file (JSON, see docs/simulator.md); the built-in demo organization without it.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Write each location's content token to DIR/<location>.vpptoken.
    #[arg(long)]
    token_dir: Option<PathBuf>,
    /// Add generated locations, e.g. `seed=7,assets=500,serialNumbers=200000,users=50000,assignments=1000000`.
    /// May be repeated.
    #[arg(long)]
    generate: Vec<String>,
    /// Base URL clients reach the simulator at, when not the listen address.
    #[arg(long)]
    public_url: Option<String>,
    /// PEM certificates (one or more) that notification receivers' HTTPS may chain to, besides
    /// the public and the platform's roots: a receiver with a private CA.
    #[arg(long, env = "ALLOT_CA_FILE")]
    ca_file: Option<PathBuf>,
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let trust = allot_trust::Trust::from_optional_file(args.ca_file.as_deref())
        .map_err(|e| anyhow::anyhow!("--ca-file: {e}"))?;
    let mut scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Scenario::parse(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| path.display().to_string())?
        }
        None if args.generate.is_empty() => Scenario::demo(),
        None => Scenario::default(),
    };
    for g in &args.generate {
        scenario
            .generate
            .push(GenerateSpec::parse_flag(g).map_err(anyhow::Error::msg)?);
    }
    let sim = allot_apple_sim::start(SimOptions {
        listen: args.listen,
        scenario,
        token_dir: args.token_dir.clone(),
        public_url: args.public_url,
        trust,
    })
    .await?;
    {
        let w = sim.shared.lock().expect("world lock");
        println!("Apple Apps and Books simulator at {}", sim.apple_url());
        println!(
            "Control API at {}/_sim/ (see docs/simulator.md)",
            sim.base_url
        );
        let shown = w.locations.len().min(20);
        for loc in &w.locations[..shown] {
            println!(
                "  location {:<28} uId {}  ({}, {} assets)",
                loc.name,
                loc.uid,
                loc.org_name,
                loc.assets.len()
            );
        }
        if w.locations.len() > shown {
            println!("  … and {} more locations", w.locations.len() - shown);
        }
        if let Some(dir) = &args.token_dir {
            println!("Content tokens written to {}", dir.display());
        }
    }
    tokio::select! {
        _ = sim.wait() => {}
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    Ok(())
}
