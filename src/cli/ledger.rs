//! `allot ledger diff`: where Allot's intents and Apple's assignments disagree (orphans, leaks,
//! missing licenses).

use clap::Subcommand;
use serde_json::Value;

use super::client::{segment, Client};
use super::output::{self, cell, Format};

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Licenses no deployment serves (orphan), given up but still held (leak), or said to be held
    /// with none at Apple (missing).
    Diff {
        /// One token (name or id).
        #[arg(long)]
        token: Option<String>,
        /// Re-read the tokens from Apple first (a full sync each).
        #[arg(long)]
        refresh: bool,
    },
}

pub async fn run(cmd: LedgerCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    let LedgerCommand::Diff { token, refresh } = cmd;
    let mut path = format!("/api/v1/ledger/diff?refresh={refresh}");
    if let Some(t) = &token {
        path.push_str(&format!("&token={}", segment(t)));
    }
    let rows: Value = c.get(&path).await?;
    match format {
        Format::Json => output::json(&rows),
        Format::Table => {
            let table: Vec<Vec<String>> = rows
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    vec![
                        cell(&r["kind"]),
                        cell(&r["token"]),
                        cell(&r["adamId"]),
                        format!("{} {}", cell(&r["holderKind"]), cell(&r["holder"])),
                        cell(&r["email"]),
                        cell(&r["reason"]),
                    ]
                })
                .collect();
            if table.is_empty() {
                output::write_line(format_args!(
                    "No differences: every license at Apple is served by a deployment, and every licensed target holds one"
                ));
            } else {
                output::table(
                    &["KIND", "TOKEN", "APP", "HOLDER", "EMAIL", "REASON"],
                    &table,
                );
            }
        }
    }
    Ok(())
}
