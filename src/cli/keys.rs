//! `allot keys`: API keys for automation — list (with last use), create (shown once), revoke.

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, cell, say, Format};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Every key with its role, last use and whether it was revoked.
    List,
    /// Make a key; it is printed once.
    Create {
        /// What the key is for (`jamf-sync`, `reporting`).
        name: String,
        /// `admin` or `read_only`.
        #[arg(long, default_value = "read_only")]
        role: String,
    },
    /// Revoke a key by its id: it is refused from now on.
    Revoke {
        id: i64,
        /// Confirm: scripts using the key stop working.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(cmd: KeysCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List => {
            let list: Value = c.get("/api/v1/api-keys").await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let rows: Vec<Vec<String>> = list["keys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|k| {
                            vec![
                                cell(&k["id"]),
                                cell(&k["name"]),
                                cell(&k["role"]),
                                cell(&k["lastUsedAt"]),
                                if k["revokedAt"].is_string() {
                                    format!("revoked {}", cell(&k["revokedAt"]))
                                } else {
                                    "active".into()
                                },
                            ]
                        })
                        .collect();
                    output::table(&["ID", "NAME", "ROLE", "LAST USED", "STATE"], &rows);
                }
            }
        }
        KeysCommand::Create { name, role } => {
            let k = c
                .post("/api/v1/api-keys", json!({ "name": name, "role": role }))
                .await?;
            match format {
                Format::Json => output::json(&k),
                Format::Table => say!(
                    "API key {} ({}, {}) — shown only now:\n  {}",
                    cell(&k["id"]),
                    cell(&k["name"]),
                    cell(&k["role"]),
                    cell(&k["secret"])
                ),
            }
        }
        KeysCommand::Revoke { id, yes } => {
            if !yes {
                anyhow::bail!(
                    "scripts using key {id} will stop working: run again with --yes to confirm"
                );
            }
            c.delete(&format!("/api/v1/api-keys/{id}?confirm=true"))
                .await?;
            say!("Revoked API key {id}");
        }
    }
    Ok(())
}
