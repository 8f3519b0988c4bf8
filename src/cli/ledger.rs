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
    /// Give back to Apple the licenses the diff lists as orphans or leaks (--dry-run first).
    Clean {
        /// orphan or leak (default both).
        #[arg(long)]
        kind: Option<String>,
        /// One token (name or id).
        #[arg(long)]
        token: Option<String>,
        /// Only list what would be revoked.
        #[arg(long)]
        dry_run: bool,
        /// Revoke them (without --dry-run).
        #[arg(long)]
        yes: bool,
    },
    /// What clean-ups asked of Apple, newest first.
    Actions,
}

pub async fn run(cmd: LedgerCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    let (token, refresh) = match cmd {
        LedgerCommand::Diff { token, refresh } => (token, refresh),
        LedgerCommand::Clean {
            kind,
            token,
            dry_run,
            yes,
        } => return clean(c, format, kind, token, dry_run, yes).await,
        LedgerCommand::Actions => return actions(c, format).await,
    };
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
                        output::words(&r["kind"]),
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

async fn clean(
    c: &Client,
    format: Format,
    kind: Option<String>,
    token: Option<String>,
    dry_run: bool,
    yes: bool,
) -> anyhow::Result<()> {
    if !dry_run && !yes {
        anyhow::bail!(
            "this revokes licenses at Apple: run it with --dry-run to see which, then with --yes"
        );
    }
    let res = c
        .post(
            "/api/v1/ledger/clean?confirm=true",
            serde_json::json!({ "kind": kind, "token": token, "dryRun": dry_run }),
        )
        .await?;
    match format {
        Format::Json => output::json(&res),
        Format::Table => {
            let table: Vec<Vec<String>> = res["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    vec![
                        output::words(&r["kind"]),
                        cell(&r["token"]),
                        cell(&r["adamId"]),
                        format!("{} {}", cell(&r["holderKind"]), cell(&r["holder"])),
                        cell(&r["outcome"]),
                    ]
                })
                .collect();
            if table.is_empty() {
                output::write_line(format_args!("Nothing to revoke"));
            } else {
                output::table(&["KIND", "TOKEN", "APP", "HOLDER", "OUTCOME"], &table);
            }
        }
    }
    Ok(())
}

async fn actions(c: &Client, format: Format) -> anyhow::Result<()> {
    let rows: Value = c.get("/api/v1/ledger/actions").await?;
    match format {
        Format::Json => output::json(&rows),
        Format::Table => {
            let table: Vec<Vec<String>> = rows
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    vec![
                        cell(&r["at"]),
                        cell(&r["actor"]),
                        output::words(&r["kind"]),
                        cell(&r["adamId"]),
                        format!("{} {}", cell(&r["holderKind"]), cell(&r["holder"])),
                        cell(&r["outcome"]),
                    ]
                })
                .collect();
            output::table(&["AT", "WHO", "KIND", "APP", "HOLDER", "OUTCOME"], &table);
        }
    }
    Ok(())
}
