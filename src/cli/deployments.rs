//! `allot deployments …`: today, the plan.

use clap::Subcommand;
use serde_json::json;

use super::client::Client;
use super::output::{self, cell, say, Format};

#[derive(Subcommand)]
pub enum DeploymentsCommand {
    /// Show what deploying an app to a collection would do, changing nothing.
    Plan {
        /// The app's or book's adamId.
        #[arg(long)]
        app: String,
        /// The collection (name or id).
        #[arg(long)]
        collection: String,
        /// Tokens to draw licenses from, in order (default: every token holding the app).
        #[arg(long = "token")]
        tokens: Vec<String>,
        /// required, available, uninstall or revoke.
        #[arg(long, default_value = "required")]
        action: String,
        /// fail or wait, when licenses run out.
        #[arg(long, default_value = "fail")]
        on_shortage: String,
    },
}

pub async fn run(cmd: DeploymentsCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    let DeploymentsCommand::Plan {
        app,
        collection,
        tokens,
        action,
        on_shortage,
    } = cmd;
    let p = c
        .post("/api/v1/deployments/plan", json!({ "adamId": app, "collection": collection, "tokens": tokens, "action": action, "onShortage": on_shortage }))
        .await?;
    match format {
        Format::Json => output::json(&p),
        Format::Table => {
            say!("{}", cell(&p["summary"]));
            say!(
                "{} targets, {} licenses",
                cell(&p["targets"]),
                cell(&p["licenseType"])
            );
            let rows: Vec<Vec<String>> = p["tokens"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| vec![cell(&t["token"]), cell(&t["free"]), cell(&t["claims"])])
                .collect();
            output::table(&["TOKEN", "FREE", "WILL CLAIM"], &rows);
            if let Some(devices) = p["needsUserTargets"].as_array().filter(|a| !a.is_empty()) {
                say!(
                    "Need a user: {}",
                    devices.iter().map(cell).collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    Ok(())
}
